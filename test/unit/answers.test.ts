/**
 * Issue 11's table, one probe per row, through the query handler (no sockets): what a default
 * BIND 9.18 secondary puts in each section and how big the reply is. The differential test holds
 * the same rules to a running BIND; these pin each rule down where it is decided.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import packet from 'dns-packet';
import pino from 'pino';
import { type MinimalResponses, parseConfig } from '../../src/config.js';
import { textToName } from '../../src/dns/name.js';
import { TYPE } from '../../src/dns/types.js';
import { ZoneSet, type ZoneSetDeps } from '../../src/reload/zone-set.js';
import { QueryHandler } from '../../src/serve/handler.js';
import { ZoneTable } from '../../src/serve/zone-table.js';
import { type ZoneRR, ZoneStore } from '../../src/store/zone-store.js';
import { dataRRs, optRR } from '../harness/packet.js';
import { a, aaaa, mx, n, rr, soa, txt } from '../harness/records.js';

const ZONE = 'signed.test';

/** An RRSIG rdata over `covered` (the signature bytes are opaque to a server: RFC 4034 §3.1). */
function rrsig(covered: number, ttl: number, labels = 2): Buffer {
  const h = Buffer.alloc(18);
  h.writeUInt16BE(covered, 0);
  h[2] = 13;
  h[3] = labels;
  h.writeUInt32BE(ttl, 4);
  h.writeUInt32BE(2000000000, 8);
  h.writeUInt32BE(1700000000, 12);
  h.writeUInt16BE(4242, 16);
  return Buffer.concat([h, n(ZONE), Buffer.alloc(64, covered)]);
}

/** An RRset with its RRSIG. */
const signed = (owner: string, type: number, ttl: number, rdatas: Buffer[], labels?: number): ZoneRR[] => [
  ...rdatas.map((d) => rr(owner, type, ttl, d)),
  rr(owner, TYPE.RRSIG, ttl, rrsig(type, ttl, labels)),
];

function zone(): ZoneRR[] {
  const big = Array.from({ length: 6 }, (_, i) => txt('x'.repeat(200), String(i)));
  return [
    ...signed(ZONE, TYPE.SOA, 3600, [soa(`ns1.${ZONE}`, `hostmaster.${ZONE}`, 1)]),
    ...signed(ZONE, TYPE.NS, 86400, [n(`ns1.${ZONE}`), n('ns2.example.net')]),
    ...signed(ZONE, TYPE.MX, 600, [mx(10, `mail.${ZONE}`), mx(20, `mail2.${ZONE}`)]),
    ...signed(ZONE, TYPE.DNSKEY, 7200, [Buffer.concat([Buffer.from([1, 1, 3, 13]), Buffer.alloc(64, 7)])]),
    ...signed(`ns1.${ZONE}`, TYPE.A, 3600, [a('192.0.2.53')], 3),
    ...signed(`ns1.${ZONE}`, TYPE.AAAA, 3600, [aaaa('2001:db8::53')], 3),
    ...signed(`mail.${ZONE}`, TYPE.A, 3600, [a('192.0.2.25')], 3),
    ...signed(`mail2.${ZONE}`, TYPE.A, 3600, [a('192.0.2.26')], 3),
    ...signed(`big.${ZONE}`, TYPE.TXT, 3600, big, 3),
    ...signed(`redirect.${ZONE}`, TYPE.DNAME, 300, [n('example.net')], 3),
  ];
}

const stores: ZoneStore[] = [];
after(() => {
  for (const s of stores) s.close();
});

function handler(
  minimalResponses: MinimalResponses = 'no-auth-recursive',
  minimalAny = false,
  udpSize = 1232,
) {
  const store = new ZoneStore(':memory:');
  stores.push(store);
  store.replaceZone(ZONE, zone(), { serial: 1, primary: 't', now: 0 });
  const table = new ZoneTable();
  table.add(ZONE, textToName(ZONE), store, { state: 'ok', policy: { minimalResponses, minimalAny } });
  return new QueryHandler(table, { udpSize, cacheBytes: 0 }, pino({ level: 'silent' }));
}

interface Ask {
  rd?: boolean;
  /** EDNS UDP size; none: no OPT. */
  edns?: number;
  dnssec?: boolean;
  tcp?: boolean;
  /** AD set in the query. */
  ad?: boolean;
}

function ask(h: QueryHandler, name: string, type: string, o: Ask = {}) {
  const q = packet.encode({
    type: 'query',
    id: 1,
    flags: (o.rd ? packet.RECURSION_DESIRED : 0) | (o.ad ? packet.AUTHENTIC_DATA : 0),
    questions: [{ name, type } as packet.Question],
    additionals: o.edns === undefined ? [] : [optRR(o.edns, { flags: o.dnssec ? packet.DNSSEC_OK : 0 })],
  });
  const reply = h.handle(q, o.tcp ? 'tcp' : 'udp') as Buffer;
  const m = packet.decode(reply);
  return {
    size: reply.length,
    tc: (m.flags! & 0x0200) !== 0,
    ad: (m.flags! & 0x0020) !== 0,
    an: dataRRs(m.answers),
    ns: dataRRs(m.authorities),
    ar: m.additionals ?? [],
    counts: [m.answers?.length ?? 0, m.authorities?.length ?? 0, m.additionals?.length ?? 0],
  };
}

describe('answers as a default BIND 9.18 secondary gives them (issue 11)', () => {
  const h = handler();

  it('SOA +norec at EDNS 512: the answer alone (BIND: authority 0, additional only OPT)', () => {
    const r = ask(h, ZONE, 'SOA', { edns: 512 });
    assert.deepEqual(r.counts, [1, 0, 1]);
    assert.equal(r.ar[0].type, 'OPT');
    // At 1232 the same question gets the zone's NS and their addresses (RD clear).
    const full = ask(h, ZONE, 'SOA', { edns: 1232 });
    assert.deepEqual(full.counts, [1, 2, 3]);
    assert.ok(full.size > r.size);
    // With our own EDNS size at 512 (BIND's max-udp-size 512), every EDNS client is a 512 one.
    assert.deepEqual(
      ask(handler('no-auth-recursive', false, 512), ZONE, 'SOA', { edns: 1232 }).counts,
      [1, 0, 1],
    );
  });

  it('MX with DO at EDNS 512: answer and its RRSIG only, no authority or additional', () => {
    const r = ask(h, ZONE, 'MX', { edns: 512, dnssec: true });
    assert.deepEqual(r.counts, [3, 0, 1]);
    assert.deepEqual(r.an.map((x) => x.type).sort(), ['MX', 'MX', 'RRSIG']);
    // With room, BIND adds the MX targets' addresses and their RRSIGs (and no NS: RD set).
    const roomy = ask(h, ZONE, 'MX', { edns: 1232, dnssec: true, rd: true });
    assert.deepEqual(roomy.counts, [3, 0, 5]);
  });

  it('ANY with DO over TCP: every RRset with its RRSIG, no additional records', () => {
    const r = ask(h, ZONE, 'ANY', { edns: 4096, dnssec: true, tcp: true, rd: true });
    assert.deepEqual(r.counts, [10, 0, 1]);
    // Without RD the zone's NS is already in the answer: still nothing added.
    assert.deepEqual(ask(h, ZONE, 'ANY', { edns: 4096, dnssec: true, tcp: true }).counts, [10, 0, 1]);
  });

  it('a big TXT RRset without EDNS: TC with the RRs that fit (not an empty answer)', () => {
    const r = ask(h, `big.${ZONE}`, 'TXT');
    assert.equal(r.tc, true);
    assert.equal(r.counts[0], 2, 'two 217-octet TXT RRs fit in 512 octets');
    assert.ok(r.size <= 512 && r.size > 400, `size ${r.size}`);
    // With EDNS, a truncated reply carries the question alone, as BIND's does.
    const e = ask(h, `big.${ZONE}`, 'TXT', { edns: 1232 });
    assert.equal(e.tc, true);
    assert.deepEqual(e.counts, [0, 0, 1]);
    // BIND's AD: set for a query with AD, cleared by the first whole RRset written, so it
    // survives only a cut inside the first RRset of a reply without EDNS.
    assert.equal(ask(h, `big.${ZONE}`, 'TXT', { ad: true }).ad, true);
    assert.equal(ask(h, `big.${ZONE}`, 'TXT', { ad: true, edns: 1232 }).ad, false);
    assert.equal(ask(h, `mail.${ZONE}`, 'A', { ad: true }).ad, false);
  });

  it('QTYPE=RRSIG: each RRSIG RRset with the TTL of the RRset it covers (RFC 4034 §3)', () => {
    const r = ask(h, ZONE, 'RRSIG', { rd: true, tcp: true });
    const ttls = new Map(r.an.map((x) => [(x.data as { typeCovered: string }).typeCovered, x.ttl]));
    assert.deepEqual(Object.fromEntries(ttls), { SOA: 3600, NS: 86400, MX: 600, DNSKEY: 7200 });
    assert.deepEqual(r.counts, [4, 0, 0], 'no NS and no addresses with RD set');
  });

  it('DS below a DNAME: the CNAME target is compressed into the DNAME target, as BIND does', () => {
    const r = ask(h, `x.redirect.${ZONE}`, 'DS', { tcp: true });
    assert.deepEqual(
      r.an.map((x) => `${x.name} ${x.type} ${x.data}`),
      [`redirect.${ZONE} DNAME example.net`, `x.redirect.${ZONE} CNAME x.example.net`],
    );
    // header 12 + question 28 + DNAME (2+10+13) + CNAME (2+10+2+2: "x" and a pointer to
    // "example.net" inside the DNAME rdata) = 81; without that pointer it would be 92.
    assert.equal(r.size, 81);
  });
});

describe('minimalResponses and minimalAny', () => {
  it('each setting leaves out what BIND leaves out', () => {
    const counts = (setting: MinimalResponses, rd: boolean) =>
      ask(handler(setting), `mail.${ZONE}`, 'A', { rd, edns: 1232 }).counts;
    assert.deepEqual(counts('no-auth-recursive', false), [1, 2, 3]);
    assert.deepEqual(counts('no-auth-recursive', true), [1, 0, 1]);
    assert.deepEqual(counts('no-auth', false), [1, 0, 1]);
    assert.deepEqual(counts('no', true), [1, 2, 3]);
    assert.deepEqual(counts('yes', false), [1, 0, 1]);
    // An NS question always gets the addresses, even with `yes`.
    assert.deepEqual(ask(handler('yes'), ZONE, 'NS', { edns: 1232 }).counts, [2, 0, 3]);
  });

  it('minimalAny answers ANY over UDP with one RRset (RFC 8482 §4.1), in full over TCP', () => {
    const h = handler('no-auth-recursive', true);
    const udp = ask(h, ZONE, 'ANY', { edns: 1232 });
    assert.equal(new Set(udp.an.map((x) => x.type)).size, 1);
    assert.ok(!udp.an.some((x) => x.type === 'RRSIG'), 'no RRSIG without DO');
    const withDo = ask(h, ZONE, 'ANY', { edns: 1232, dnssec: true });
    assert.deepEqual(withDo.an.map((x) => x.type).sort(), [udp.an[0].type, 'RRSIG'].sort());
    assert.deepEqual(ask(h, ZONE, 'ANY', { edns: 1232, tcp: true }).counts[0], 10);
  });
});

describe('a reload that changes minimalResponses', () => {
  it('applies the new policy and makes the zone’s cached answers stale', () => {
    const table = new ZoneTable();
    const entry = table.add(ZONE, textToName(ZONE), undefined, { state: 'ok' });
    const seen: string[] = [];
    table.onChange = (e) => seen.push(`${e.name} ${e.policy.minimalResponses}`);
    const zones = new ZoneSet({
      table,
      scheduler: { updateZone: () => undefined },
      log: pino({ level: 'silent' }),
    } as unknown as ZoneSetDeps);
    const [z] = parseConfig({
      listen: [{ address: '127.0.0.1', port: 5353 }],
      zones: [{ name: ZONE, primaries: [{ address: '192.0.2.1' }], minimalResponses: 'yes' }],
    }).zones;
    const version = entry.version;
    zones.update(z, ['minimalResponses']);
    assert.equal(entry.policy.minimalResponses, 'yes');
    assert.ok(entry.version > version, 'cached answers made under the old policy are stale');
    assert.deepEqual(seen, [`${ZONE} yes`], 'the serving workers are told (ZoneStatus carries the policy)');
    zones.update(z, ['allowTransfer']);
    assert.equal(seen.length, 1, 'an unchanged policy changes nothing');
  });
});
