import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLAG_AA, FLAG_QR } from '../../src/dns/message.js';
import { MessageWriter } from '../../src/dns/writer.js';
import type { ZoneRR } from '../../src/store/zone-store.js';
import { AxfrReader, XfrError } from '../../src/xfrin/axfr.js';
import { a, n, rr, soa } from '../harness/records.js';

const ZONE = n('example.test');
const ID = 4242;

function message(rrs: ZoneRR[], opts: { id?: number; rcode?: number; question?: boolean } = {}): Buffer {
  const w = new MessageWriter(65535);
  w.u16(opts.id ?? ID);
  w.u16(FLAG_QR | FLAG_AA | (opts.rcode ?? 0));
  w.u16(opts.question === false ? 0 : 1);
  w.u16(rrs.length);
  w.u16(0);
  w.u16(0);
  if (opts.question !== false) {
    w.name(ZONE);
    w.u16(252);
    w.u16(1);
  }
  for (const r of rrs) w.rr(r.owner, r.type, 1, r.ttl, r.rdata);
  return w.finish();
}

const SOA1 = rr('example.test', 'SOA', 3600, soa('ns1.example.test', 'h.example.test', 7));
const www = rr('www.example.test', 'A', 60, a('192.0.2.1'));

describe('AXFR reader (RFC 5936)', () => {
  it('collects a multi-message transfer ending at the closing SOA', () => {
    const r = new AxfrReader(ZONE, ID, 100);
    assert.equal(r.push(message([SOA1, www]), true), false);
    assert.equal(
      r.push(message([rr('x.example.test', 'A', 60, a('192.0.2.2'))], { question: false }), false),
      false,
    );
    assert.equal(r.push(message([SOA1], { question: false }), false), true);
    assert.equal(r.zoneSerial, 7);
    assert.equal(r.rrs.length, 3);
  });

  it('drops and reports out-of-zone records, keeps the rest', () => {
    const r = new AxfrReader(ZONE, ID, 100);
    r.push(message([SOA1, rr('evil.example.net', 'A', 60, a('203.0.113.1')), www, SOA1]), true);
    assert.deepEqual(r.dropped, [{ owner: 'evil.example.net.', type: 1 }]);
    assert.equal(r.rrs.length, 2);
  });

  const bad: [string, () => void][] = [
    ['wrong ID', () => new AxfrReader(ZONE, ID, 100).push(message([SOA1], { id: 1 }), true)],
    ['REFUSED', () => new AxfrReader(ZONE, ID, 100).push(message([], { rcode: 5 }), true)],
    ['not starting with SOA', () => new AxfrReader(ZONE, ID, 100).push(message([www, SOA1]), true)],
    [
      'SOA below the apex',
      () =>
        new AxfrReader(ZONE, ID, 100).push(
          message([SOA1, rr('sub.example.test', 'SOA', 60, soa('a.test', 'b.test', 7)), SOA1]),
          true,
        ),
    ],
    [
      'closing SOA serial differs',
      () =>
        new AxfrReader(ZONE, ID, 100).push(
          message([SOA1, www, rr('example.test', 'SOA', 3600, soa('ns1.example.test', 'h.example.test', 8))]),
          true,
        ),
    ],
    [
      'records after the closing SOA',
      () => new AxfrReader(ZONE, ID, 100).push(message([SOA1, SOA1, www]), true),
    ],
    ['too many records', () => new AxfrReader(ZONE, ID, 1).push(message([SOA1, www, SOA1]), true)],
    [
      'first message without question',
      () => new AxfrReader(ZONE, ID, 100).push(message([SOA1], { question: false }), true),
    ],
    ['garbage', () => new AxfrReader(ZONE, ID, 100).push(Buffer.from('not a dns message at all'), true)],
  ];
  for (const [what, fn] of bad) {
    it(`rejects: ${what}`, () =>
      assert.throws(
        fn,
        (e: Error) => e instanceof XfrError || e.name === 'WireError' || e.constructor.name === 'WireError',
      ));
  }
});
