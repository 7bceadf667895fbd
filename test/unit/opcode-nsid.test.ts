/**
 * Header rules a BIND secondary follows (checked against named in integration/genreport.test.ts
 * and integration/malformed.test.ts; here as pure handler cases): unknown opcodes get NOTIMP with
 * no flags copied and no question (RFC 1035 §4.1.1), and NSID (RFC 5001) is sent only when asked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { nsidPayload, OPTION, parseOptions } from '../../src/dns/edns.js';
import { parseMessage } from '../../src/dns/message.js';
import { textToName } from '../../src/dns/name.js';
import { QueryHandler } from '../../src/serve/handler.js';
import type { ZoneTable } from '../../src/serve/zone-table.js';
import type { ZoneStore } from '../../src/store/zone-store.js';
import { exampleTable } from '../harness/example-table.js';

let store: ZoneStore;
let table: ZoneTable;
const make = (nsid?: string) =>
  new QueryHandler(
    table,
    { udpSize: 1232, identity: nsid ? { nsid } : undefined },
    pino({ level: 'silent' }),
  );

before(() => {
  ({ store, table } = exampleTable());
});
after(() => store.close());

const u16 = (v: number) => Buffer.from([v >> 8, v & 0xff]);
/** A query with the header flags word given, and an OPT with `options` when given. */
function query(flags: number, o: { qd?: boolean; options?: Buffer; type?: number } = {}): Buffer {
  const qd = o.qd ?? true;
  const opt = o.options
    ? Buffer.concat([Buffer.from([0]), u16(41), u16(1232), Buffer.alloc(4), u16(o.options.length), o.options])
    : Buffer.alloc(0);
  return Buffer.concat([
    u16(0x1234),
    u16(flags),
    u16(qd ? 1 : 0),
    u16(0),
    u16(0),
    u16(o.options ? 1 : 0),
    qd ? Buffer.concat([textToName('example.test'), u16(o.type ?? 6), u16(1)]) : Buffer.alloc(0),
    opt,
  ]);
}
const RD = 0x0100;
const CD = 0x0010;
const ALL = 0x0200 | RD | 0x0080 | 0x0040 | 0x0020 | CD | 0x0400; // TC RD RA Z AD CD AA

describe('unknown opcodes: NOTIMP with BIND header flags', () => {
  for (const opcode of [3, 6, 7, 15])
    for (const qd of [true, false])
      for (const flags of [0, ALL])
        it(`opcode ${opcode}, ${qd ? 'with' : 'without'} a question, flags ${flags.toString(16)}`, () => {
          const reply = make().handle(query((opcode << 11) | flags, { qd }), 'udp') as Buffer;
          const m = parseMessage(reply);
          assert.equal(m.header.flags & 0xf, 4, 'NOTIMP');
          assert.equal((m.header.flags >> 11) & 0xf, opcode, 'opcode echoed');
          // QR only: RD and CD are not copied for an opcode other than QUERY (dns_message_reply).
          assert.equal(m.header.flags & 0x87f0, 0x8000);
          assert.equal(m.header.qdcount + m.header.ancount + m.header.nscount + m.header.arcount, 0);
        });

  it('QUERY still copies RD and CD (RFC 1035 §4.1.1, RFC 4035 §3.1.6)', () => {
    const m = parseMessage(make().handle(query(RD | CD), 'udp') as Buffer);
    assert.equal(m.header.flags & (RD | CD), RD | CD);
  });

  it('UPDATE for our zone is REFUSED, for another NOTAUTH; NOTIFY must name an SOA', () => {
    const h = make();
    const update = query(5 << 11);
    assert.equal((h.handle(update, 'udp') as Buffer)[3] & 0xf, 5);
    const other = Buffer.from(update);
    other[13] = 0x66; // example.test → fxample.test
    assert.equal((h.handle(other, 'udp') as Buffer)[3] & 0xf, 9);
    assert.equal((h.handle(query(4 << 11, { type: 1 }), 'udp') as Buffer)[3] & 0xf, 1);
  });
});

describe('NSID (RFC 5001)', () => {
  const nsidOf = (reply: Buffer) => {
    const o = parseMessage(reply).additional.find((r) => r.type === 41);
    return o ? parseOptions(o.rdata).find((x) => x.code === OPTION.NSID)?.data : undefined;
  };
  const ASK = Buffer.from([0, 3, 0, 0]);

  it('text or hex: the payload', () => {
    assert.deepEqual(nsidPayload('ns2-a'), Buffer.from('ns2-a'));
    assert.deepEqual(nsidPayload('hex:6E7332'), Buffer.from('ns2'));
    for (const bad of ['', 'hex:', 'hex:abc', 'hex:zz', 'x'.repeat(129)])
      assert.equal(nsidPayload(bad), undefined);
  });

  it('sent only when asked, also after the same question was cached', () => {
    const h = make('hex:6e7332');
    assert.deepEqual(nsidOf(h.handle(query(0, { options: ASK }), 'udp') as Buffer), Buffer.from('ns2'));
    // A plain EDNS query (cacheable, twice so the second is a hit) carries none …
    const plain = query(0, { options: Buffer.alloc(0) });
    assert.equal(nsidOf(h.handle(plain, 'udp') as Buffer), undefined);
    assert.ok(h.cached > 0);
    assert.equal(nsidOf(h.handle(plain, 'udp') as Buffer), undefined);
    const out = Buffer.alloc(1232);
    assert.ok(h.fromCache(plain, 0, plain.length, out, 0) > 0, 'plain query hits the cache');
    // … and asking again after that still gets it: a query with options never hits the cache.
    const ask = query(0, { options: ASK });
    assert.equal(h.fromCache(ask, 0, ask.length, out, 0), 0);
    assert.deepEqual(nsidOf(h.handle(ask, 'udp') as Buffer), Buffer.from('ns2'));
  });

  it('none without identity.nsid, asked or not', () => {
    assert.equal(nsidOf(make().handle(query(0, { options: ASK }), 'udp') as Buffer), undefined);
  });
});
