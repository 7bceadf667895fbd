/**
 * ns2 as a primary for its own secondaries:
 *
 *   named (requires xfr-key) ──IXFR/AXFR──► ns2 ──IXFR/AXFR (down-key)──► knotd
 *                      NOTIFY ─────────────►     ──NOTIFY (signed) ─────►
 *
 * - the allowTransfer ACL: no key / wrong key / address not listed → refused; the right key or
 *   a listed prefix → the whole zone, equal to the primary's AXFR;
 * - after an nsupdate on named, knotd gets the change by IXFR from ns2 and answers identically;
 * - over UDP: IXFR gets the SOA alone, AXFR FORMERR, signed when asked signed (the IXFR contents
 *   and these answers are compared with named's in bind-oracle.test.ts);
 * - transfers to several clients, one of them not reading, do not block queries;
 * - NOTIFY signed with an allowNotify key is accepted and the reply signed; signed queries get
 *   signed answers.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FLAG_AA, parseMessage, rcodeOf } from '../../src/dns/message.js';
import { textToName } from '../../src/dns/name.js';
import { findTsig, signRequest, TSIG_ERROR, type TsigKey, TsigResponseVerifier } from '../../src/dns/tsig.js';
import { TYPE } from '../../src/dns/types.js';
import { buildNotify } from '../../src/refresh/notify-out.js';
import { AxfrReader, axfr } from '../../src/xfrin/axfr.js';
import { buildIxfrQuery } from '../../src/xfrin/ixfr.js';
import { buildQuery as xfrQuery } from '../../src/xfrin/query.js';
import { buildQuery, exchange, query, summarize } from '../harness/client.js';
import { type Knot, startKnot } from '../harness/knot.js';
import { digAt, freePort, type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const ZONE = 'example.test';
const zoneText = fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8');
const BIG_RRS = 20_000;
const bigZone = `$ORIGIN big.test.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 300
  NS ns1
ns1 A 192.0.2.53
${Array.from({ length: BIG_RRS }, (_, i) => `host${i} A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`).join('\n')}
`;

const LIMITS = {
  maxRecords: 100_000,
  maxTransferBytes: 50_000_000,
  maxTransferSeconds: 30,
  maxIdleSeconds: 10,
};
const mkKey = (name: string): TsigKey => ({ name, algorithm: 'hmac-sha256', secret: randomBytes(32) });
const b64 = (k: TsigKey) => k.secret.toString('base64');
const local = (port: number) => ({ address: '127.0.0.1', port });

/** dig's AXFR output as comparable RR lines: owner lower-cased, whitespace normalised, no TSIG. */
function rrLines(digOut: string): string[] {
  return digOut
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith(';'))
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[3] !== 'TSIG')
    .map(([owner, ...rest]) => [owner.toLowerCase(), ...rest].join(' '))
    .sort();
}

const serialOf = async (port: number, zone: string) => {
  const m = parseMessage(await query(port, zone, TYPE.SOA));
  const soa = m.answer.find((r) => r.type === TYPE.SOA);
  return soa ? soa.rdata.readUInt32BE(soa.rdata.length - 20) : undefined;
};

describe('transfers out: named → ns2 → knotd, with TSIG', () => {
  let named: Named;
  let ns2: Ns2;
  let knot: Knot;
  const up = mkKey('xfr-key');
  const down = mkKey('down-key');
  const notifyKey = mkKey('notify-key');

  before(async () => {
    const ns2Port = await freePort();
    const knotPort = await freePort();
    named = await startNamed({
      keys: `key "xfr-key" { algorithm hmac-sha256; secret "${b64(up)}"; };`,
      zones: [
        { name: ZONE, text: zoneText, allowTransfer: 'key "xfr-key";', alsoNotify: [ns2Port] },
        { name: 'big.test', text: bigZone },
      ],
    });
    ns2 = await startNs2({
      port: ns2Port,
      zones: [
        {
          name: ZONE,
          primaries: [{ address: '127.0.0.1', port: named.port, key: 'xfr-key' }],
          allowTransfer: ['key:down-key'],
          alsoNotify: [{ address: '127.0.0.1', port: knotPort, key: 'down-key' }],
        },
        {
          name: 'big.test',
          primaries: [{ address: '127.0.0.1', port: named.port }],
          allowTransfer: ['127.0.0.0/8'],
          allowNotify: ['key:notify-key'],
        },
      ],
      extra: {
        keys: Object.fromEntries(
          [up, down, notifyKey].map((k) => [k.name, { algorithm: k.algorithm, secret: b64(k) }]),
        ),
      },
    });
    await waitFor('ns2 loaded both zones', async () => {
      return (await serialOf(ns2Port, ZONE)) === 2024010101 && (await serialOf(ns2Port, 'big.test')) === 1;
    });
    knot = await startKnot({
      port: knotPort,
      zones: [{ name: ZONE, primaryPort: ns2Port, key: 'down-key' }],
      keys: [{ id: 'down-key', algorithm: 'hmac-sha256', secret: b64(down) }],
    });
    await waitFor(
      'knotd loaded the zone from ns2',
      async () => (await serialOf(knotPort, ZONE)) === 2024010101,
    );
  });

  after(async () => {
    await knot?.stop();
    await ns2?.stop();
    await named?.stop();
    if (ns2) fs.rmSync(ns2.dir, { recursive: true, force: true });
  });

  it('refuses AXFR without the key: REFUSED, dig says "Transfer failed", logged', async () => {
    const out = await digAt(ns2.port, [ZONE, 'AXFR']);
    assert.match(out, /Transfer failed/);
    const reply = await exchange(ns2.port, buildQuery(ZONE, TYPE.AXFR), { tcp: true });
    assert.equal(rcodeOf(reply.readUInt16BE(2)), 5);
    const line = ns2.logLines().find((l) => l.msg === 'zone transfer refused: not in allowTransfer');
    assert.ok(line, 'refusal logged');
    assert.equal(line.zone, ZONE);
    assert.equal(line.peer, '127.0.0.1');
  });

  it('answers a wrongly signed AXFR with NOTAUTH/BADSIG, and a key of another zone with REFUSED', async () => {
    const bad = signRequest(buildQuery(ZONE, TYPE.AXFR), { ...down, secret: randomBytes(32) }, now());
    const reply = await exchange(ns2.port, bad.msg, { tcp: true });
    assert.equal(rcodeOf(reply.readUInt16BE(2)), 9);
    assert.equal(findTsig(reply)?.tsig.error, TSIG_ERROR.BADSIG);
    // notify-key is valid, but example.test only lets down-key transfer.
    const other = signRequest(buildQuery(ZONE, TYPE.AXFR), notifyKey, now());
    const refused = await exchange(ns2.port, other.msg, { tcp: true });
    assert.equal(rcodeOf(refused.readUInt16BE(2)), 5);
    new TsigResponseVerifier(notifyKey, other.mac, now).verify(refused);
  });

  it('with the key, AXFR gives the zone exactly as the primary transfers it', async () => {
    const ours = await digAt(ns2.port, ['-y', `hmac-sha256:down-key:${b64(down)}`, ZONE, 'AXFR']);
    const theirs = await digAt(named.port, ['-y', `hmac-sha256:xfr-key:${b64(up)}`, ZONE, 'AXFR']);
    assert.doesNotMatch(ours, /Transfer failed|Couldn't verify|could not be validated/);
    assert.deepEqual(rrLines(ours), rrLines(theirs));
    assert.ok(rrLines(ours).length > 40);
    // Ordinary signed queries get signed answers too (the TSIG gate in front of the handler).
    const soaOut = await digAt(ns2.port, ['-y', `hmac-sha256:down-key:${b64(down)}`, ZONE, 'SOA']);
    assert.match(soaOut, /TSIG PSEUDOSECTION/);
    assert.match(soaOut, /status: NOERROR/);
    assert.doesNotMatch(soaOut, /Couldn't verify|could not be validated/);
  });

  it('an address-allowed AXFR of 20k RRs is streamed in several messages', async () => {
    const got = await axfr(local(ns2.port), textToName('big.test'), LIMITS);
    assert.equal(got.rrs.length, BIG_RRS + 3);
    assert.ok(got.messages > 5, `${got.messages} messages`);
    const theirs = await axfr(local(named.port), textToName('big.test'), LIMITS);
    const key = (r: { owner: Buffer; type: number; ttl: number; rdata: Buffer }) =>
      `${r.owner.toString('hex')} ${r.type} ${r.ttl} ${r.rdata.toString('hex')}`;
    assert.deepEqual(got.rrs.map(key).sort(), theirs.rrs.map(key).sort());
  });

  it('transfers to several clients, one not reading, do not block queries', async () => {
    // A client that asks for the zone and then stops reading: its transfer waits on back-pressure.
    const stalled = net.connect({ host: '127.0.0.1', port: ns2.port });
    const { id, msg } = xfrQuery(textToName('big.test'), TYPE.AXFR);
    await new Promise<void>((r) => stalled.once('connect', () => r()));
    stalled.pause();
    const len = Buffer.alloc(2);
    len.writeUInt16BE(msg.length);
    stalled.write(Buffer.concat([len, msg]));
    try {
      let inFlight = 3;
      const transfers = Array.from({ length: 3 }, () =>
        axfr(local(ns2.port), textToName('big.test'), LIMITS).finally(() => inFlight--),
      );
      const latencies: number[] = [];
      let duringTransfers = 0;
      while (inFlight > 0 || latencies.length < 20) {
        const t0 = Date.now();
        const r = summarize(await query(ns2.port, 'host7.big.test', TYPE.A));
        latencies.push(Date.now() - t0);
        if (inFlight > 0) duringTransfers++;
        assert.equal(r.rcode, 0);
        assert.equal(r.answer.length, 1);
      }
      for (const t of await Promise.all(transfers)) assert.equal(t.rrs.length, BIG_RRS + 3);
      assert.ok(duringTransfers >= 3, `only ${duringTransfers} queries answered during the transfers`);
      // Liveness, not speed (speed is bench/'s): no query waited on a transfer for seconds.
      assert.ok(Math.max(...latencies) < 5000, `query latencies ${latencies}`);
      // The stalled client still gets the whole zone once it reads.
      const reader = new AxfrReader(textToName('big.test'), id, 100_000);
      await new Promise<void>((resolve, reject) => {
        let buf = Buffer.alloc(0);
        let first = true;
        stalled.on('data', (d) => {
          buf = Buffer.concat([buf, d]);
          while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
            const m = buf.subarray(2, 2 + buf.readUInt16BE(0));
            buf = buf.subarray(2 + m.length);
            try {
              if (reader.push(m, first)) resolve();
            } catch (e) {
              reject(e);
            }
            first = false;
          }
        });
        stalled.on('error', reject);
        stalled.resume();
      });
      assert.equal(reader.rrs.length, BIG_RRS + 3);
    } finally {
      stalled.destroy();
    }
  });

  it('chain: an nsupdate on named reaches knotd by IXFR from ns2, answers identical', async () => {
    await named.nsupdate(
      `zone ${ZONE}\nupdate add chain.${ZONE}. 300 A 192.0.2.123\nupdate delete ftp.${ZONE}. A\n`,
    );
    await waitFor('knotd at the new serial', async () => (await serialOf(knot.port, ZONE)) === 2024010102);
    const log = knot.log();
    assert.match(log, new RegExp(`IXFR, incoming, remote 127\\.0\\.0\\.1@${ns2.port}, finished`));
    assert.match(log, /notify, incoming, remote 127\.0\.0\.1@\d+, serial 2024010102/);
    for (const [name, type] of [
      [`chain.${ZONE}`, TYPE.A],
      [`ftp.${ZONE}`, TYPE.A],
      [ZONE, TYPE.SOA],
      [`www.${ZONE}`, TYPE.A],
      [`mail.${ZONE}`, TYPE.AAAA],
      [`x.wild.${ZONE}`, TYPE.TXT],
    ] as const) {
      const want = summarize(await query(named.port, name, type));
      assert.deepEqual(summarize(await query(ns2.port, name, type)), want, `ns2 ${name}`);
      // Knot answers minimally (no apex NS in authority): compare the data, and the SOA of negatives.
      const data = (s: ReturnType<typeof summarize>) => ({
        ...s,
        authority: s.authority.filter((l) => / SOA /.test(l)),
      });
      assert.deepEqual(data(summarize(await query(knot.port, name, type))), data(want), `knotd ${name}`);
    }
    const out = ns2.logLines().find((l) => l.msg === 'zone transferred out' && l.kind === 'ixfr');
    assert.ok(out, 'ns2 logged the IXFR out');
    assert.equal(out.key, 'down-key');
    assert.equal(out.serial_from, 2024010101);
    assert.equal(out.serial, 2024010102);
  });

  it('over UDP: IXFR gets the SOA alone (AA clear), AXFR is FORMERR, as named 9.18 answers', async () => {
    const apex = textToName(ZONE);
    const m = parseMessage(await query(ns2.port, ZONE, TYPE.SOA));
    const ixq = signRequest(buildIxfrQuery(apex, m.answer[0].ttl, m.answer[0].rdata).msg, down, now());
    const ixr = await exchange(ns2.port, ixq.msg);
    new TsigResponseVerifier(down, ixq.mac, now).verify(ixr);
    const ix = parseMessage(ixr);
    assert.equal(rcodeOf(ix.header.flags), 0);
    assert.equal(ix.header.flags & FLAG_AA, 0);
    assert.deepEqual(
      ix.answer.map((r) => r.type),
      [TYPE.SOA],
    );
    const axq = signRequest(buildQuery(ZONE, TYPE.AXFR), down, now());
    assert.equal(rcodeOf((await exchange(ns2.port, axq.msg)).readUInt16BE(2)), 1);
    // Not allowed: REFUSED first, over UDP too.
    assert.equal(rcodeOf((await exchange(ns2.port, buildQuery(ZONE, TYPE.AXFR))).readUInt16BE(2)), 5);
    // Not our zone: NOTAUTH.
    assert.equal(
      rcodeOf((await exchange(ns2.port, buildQuery(`www.${ZONE}`, TYPE.AXFR))).readUInt16BE(2)),
      9,
    );
  });

  it('NOTIFY signed with an allowNotify key is accepted and the reply signed; others are not', async () => {
    const m = parseMessage(await query(ns2.port, 'big.test', TYPE.SOA));
    const notify = () =>
      buildNotify(textToName('big.test'), { ttl: m.answer[0].ttl, rdata: m.answer[0].rdata }).msg;
    const signed = signRequest(notify(), notifyKey, now());
    const reply = await exchange(ns2.port, signed.msg);
    assert.equal(rcodeOf(reply.readUInt16BE(2)), 0);
    new TsigResponseVerifier(notifyKey, signed.mac, now).verify(reply);
    await waitFor('NOTIFY logged with its key', () =>
      ns2
        .logLines()
        .some((l) => l.msg === 'NOTIFY received' && l.zone === 'big.test' && l.key === 'notify-key'),
    );
    // Unsigned from the primary's own address: big.test takes NOTIFY only with the key.
    assert.equal(rcodeOf((await exchange(ns2.port, notify())).readUInt16BE(2)), 5);
    // Signed with a key ns2 holds but allowNotify does not list.
    const other = signRequest(notify(), down, now());
    assert.equal(rcodeOf((await exchange(ns2.port, other.msg)).readUInt16BE(2)), 5);
    // A bad signature: NOTAUTH with BADSIG, unsigned.
    const bad = signRequest(notify(), { ...notifyKey, secret: randomBytes(32) }, now());
    const badReply = await exchange(ns2.port, bad.msg);
    assert.equal(rcodeOf(badReply.readUInt16BE(2)), 9);
    assert.equal(findTsig(badReply)?.tsig.error, TSIG_ERROR.BADSIG);
  });
});

function now(): number {
  return Math.floor(Date.now() / 1000);
}
