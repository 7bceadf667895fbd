import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLAG_AA, FLAG_QR } from '../../src/dns/message.js';
import { TYPE } from '../../src/dns/types.js';
import { MessageWriter } from '../../src/dns/writer.js';
import { AxfrReader, XfrError } from '../../src/xfrin/axfr.js';
import { IxfrReader } from '../../src/xfrin/ixfr.js';
import { isMetaType, rdataProblem, rrProblem } from '../../src/xfrin/validate.js';
import { a, mx, n, soa, txt } from '../harness/records.js';

/** An RR as the test messages carry it: owner in wire form, class IN unless `cls` says otherwise. */
interface TestRR {
  owner: Buffer;
  type: number;
  ttl: number;
  rdata: Buffer;
  cls?: number;
}

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');
const wire = (owner: string, type: number, rdata: Buffer, cls = 1) => ({
  owner: n(owner),
  type,
  class: cls,
  ttl: 60,
  rdata,
});

describe('intake validation: types and classes', () => {
  it('meta and pseudo types are never zone data (RFC 6895 §3.1)', () => {
    for (const t of [0, 41, 128, 200, 249, 250, 251, 252, 253, 254, 255])
      assert.ok(isMetaType(t), `type ${t}`);
    for (const t of [1, 2, 6, 46, 65, 127, 256, 257, 65280]) assert.ok(!isMetaType(t), `type ${t}`);
    for (const [t, name] of [
      [41, 'OPT'],
      [250, 'TSIG'],
      [249, 'TKEY'],
      [251, 'IXFR'],
      [252, 'AXFR'],
      [253, 'MAILB'],
      [254, 'MAILA'],
      [255, 'ANY'],
    ] as const) {
      assert.equal(rrProblem(wire('x.test', t, Buffer.alloc(0))), `meta type ${name} inside a zone`);
    }
  });

  it('class IN only', () => {
    assert.equal(rrProblem(wire('x.test', 1, a('192.0.2.1'), 3)), 'class 3 in a class IN zone transfer');
    assert.equal(rrProblem(wire('x.test', 1, a('192.0.2.1'))), undefined);
  });

  it('unknown types are opaque (RFC 3597), any length, empty included', () => {
    assert.equal(rdataProblem(65280, Buffer.alloc(0)), undefined);
    assert.equal(rdataProblem(65280, Buffer.alloc(300)), undefined);
    assert.equal(rdataProblem(TYPE.NULL, Buffer.alloc(0)), undefined);
  });
});

describe('intake validation: rdata layouts', () => {
  const good: [string, number, Buffer][] = [
    ['A', TYPE.A, a('192.0.2.1')],
    ['MX', TYPE.MX, mx(10, 'mail.test')],
    ['MX to the root', TYPE.MX, hex('0000 00')],
    ['SOA', TYPE.SOA, soa('ns.test', 'h.test', 1)],
    ['TXT with an empty string', TYPE.TXT, txt('a', '', 'b c')],
    ['HINFO', TYPE.HINFO, txt('PDP-11', 'UNIX')],
    ['SRV to the root', TYPE.SRV, hex('0000 0000 0000 00')],
    ['DS', TYPE.DS, hex('3039 0d 02 0c72ac70')],
    ['CDS delete (0 0 0 00)', TYPE.CDS, hex('0000 00 00 00')],
    ['DNSKEY', TYPE.DNSKEY, hex('0101 03 0d aabbcc')],
    ['RRSIG', TYPE.RRSIG, Buffer.concat([Buffer.alloc(18), n('test'), hex('abcd')])],
    ['NSEC', TYPE.NSEC, Buffer.concat([n('b.test'), hex('0006 40000000 0003')])],
    ['NSEC3 with no types', TYPE.NSEC3, hex('01 00 000a 02 abcd 03 010203')],
    ['NSEC3PARAM', TYPE.NSEC3PARAM, hex('01 00 000a 02 abcd')],
    ['TLSA', TYPE.TLSA, hex('03 01 01 0c72')],
    ['CAA with an empty value', TYPE.CAA, Buffer.concat([hex('00 05'), Buffer.from('issue')])],
    ['LOC', TYPE.LOC, hex('00 12 16 13 89 17 2d d0 70 be 15 f0 00 98 8d 20')],
    ['SVCB alias', TYPE.SVCB, Buffer.concat([hex('0000'), n('target.test')])],
    [
      'HTTPS with params',
      TYPE.HTTPS,
      Buffer.concat([hex('0001 00'), hex('0001 0003 026832 0003 0002 01bb')]),
    ],
    ['EUI48', TYPE.EUI48, hex('00 11 22 33 44 55')],
    ['URI', TYPE.URI, Buffer.concat([hex('000a 0001'), Buffer.from('https://x.test/')])],
    ['APL', TYPE.APL, hex('0001 18 03 c00002 0002 20 01 20')],
    ['CSYNC', TYPE.CSYNC, hex('00000042 0003 0001 40')],
  ];
  for (const [what, type, rdata] of good) {
    it(`accepts ${what}`, () => assert.equal(rdataProblem(type, rdata), undefined));
  }

  const bad: [string, number, Buffer, RegExp][] = [
    ['A of 5 octets', TYPE.A, hex('c000020101'), /1 octets left over/],
    ['AAAA of 4 octets', TYPE.AAAA, a('192.0.2.1'), /runs past the end/],
    ['empty NS', TYPE.NS, Buffer.alloc(0), /name runs past the end/],
    ['NS with a compression pointer', TYPE.NS, hex('c00c'), /compression pointer/],
    ['NS with trailing octets', TYPE.NS, Buffer.concat([n('a.test'), hex('00')]), /left over/],
    ['MX without exchange', TYPE.MX, hex('000a'), /name runs past/],
    [
      'SOA one octet short',
      TYPE.SOA,
      soa('ns.test', 'h.test', 1).subarray(0, -1),
      /20-octet field runs past/,
    ],
    ['empty TXT', TYPE.TXT, Buffer.alloc(0), /no character-string/],
    ['TXT string longer than the rdata', TYPE.TXT, hex('05 6162'), /character-string runs past/],
    ['HINFO with one string', TYPE.HINFO, txt('cpu'), /character-string runs past/],
    ['DS without digest', TYPE.DS, hex('3039 0d 02'), /missing data/],
    ['RRSIG cut in the header', TYPE.RRSIG, Buffer.alloc(10), /18-octet field/],
    ['NSEC without a bitmap', TYPE.NSEC, n('b.test'), /empty type bitmap/],
    [
      'NSEC bitmap length 33',
      TYPE.NSEC,
      Buffer.concat([n('b.test'), hex('0021'), Buffer.alloc(33, 1)]),
      /window length 33/,
    ],
    [
      'NSEC bitmap windows out of order',
      TYPE.NSEC,
      Buffer.concat([n('b.test'), hex('0101 01 0001 40')]),
      /out of order/,
    ],
    ['NSEC bitmap ending in zero', TYPE.NSEC, Buffer.concat([n('b.test'), hex('0002 4000')]), /zero octet/],
    ['NSEC3 with an empty hash', TYPE.NSEC3, hex('01 00 000a 00 00'), /empty character-string/],
    ['NSEC3PARAM with trailing data', TYPE.NSEC3PARAM, hex('01 00 000a 00 ff'), /left over/],
    ['CAA with an empty tag', TYPE.CAA, hex('00 00'), /empty character-string/],
    [
      'LOC version 0 of 15 octets',
      TYPE.LOC,
      hex('00 12 16 13 89 17 2d d0 70 be 15 f0 00 98 8d'),
      /16 octets/,
    ],
    [
      'SVCB params out of order',
      TYPE.SVCB,
      Buffer.concat([hex('0001 00'), hex('0003 0000 0001 0000')]),
      /increasing/,
    ],
    [
      'SVCB param value past the end',
      TYPE.SVCB,
      Buffer.concat([hex('0001 00'), hex('0001 0005 02')]),
      /past the end/,
    ],
    [
      'name longer than 255 octets',
      TYPE.CNAME,
      Buffer.concat([...Array(5).fill(hex(`3f${'61'.repeat(63)}`)), hex('00')]),
      /longer than 255/,
    ],
    ['EUI64 of 6 octets', TYPE.EUI64, hex('001122334455'), /runs past/],
  ];
  for (const [what, type, rdata, re] of bad) {
    it(`refuses ${what}`, () => assert.match(rdataProblem(type, rdata) ?? 'accepted', re));
  }
});

describe('intake validation inside a transfer: one bad RR rejects it whole', () => {
  const ZONE = n('example.test');
  const ID = 7;
  const SOA = { owner: ZONE, type: TYPE.SOA, ttl: 60, rdata: soa('ns.example.test', 'h.example.test', 3) };
  const message = (rrs: TestRR[], qtype = 252) => {
    const w = new MessageWriter(65535);
    for (const v of [ID, FLAG_QR | FLAG_AA, 1, rrs.length, 0, 0]) w.u16(v);
    w.name(ZONE);
    w.u16(qtype);
    w.u16(1);
    for (const r of rrs) w.rr(r.owner, r.type, r.cls ?? 1, r.ttl, r.rdata);
    return w.finish();
  };
  const cases: [string, TestRR, RegExp][] = [
    ['an OPT record', { owner: ZONE, type: 41, ttl: 0, rdata: Buffer.alloc(0) }, /meta type OPT/],
    [
      'a TSIG-typed record mid-zone',
      { owner: n('x.example.test'), type: 250, ttl: 0, rdata: hex('00') },
      /meta type TSIG/,
    ],
    [
      'an ANY record',
      { owner: n('x.example.test'), type: 255, ttl: 0, rdata: Buffer.alloc(0) },
      /meta type ANY/,
    ],
    [
      'a CH-class record',
      { owner: n('x.example.test'), type: 16, ttl: 0, rdata: txt('x'), cls: 3 },
      /class 3/,
    ],
    [
      'a TXT with a bad string length',
      { owner: n('x.example.test'), type: 16, ttl: 0, rdata: hex('09 61') },
      /TXT rdata/,
    ],
    [
      'an A of 3 octets',
      { owner: n('x.example.test'), type: 1, ttl: 0, rdata: hex('c00002') },
      /A rdata must be 4 octets/,
    ],
    [
      'a bad RR even outside the zone',
      { owner: n('x.other.test'), type: 252, ttl: 0, rdata: Buffer.alloc(0) },
      /meta type AXFR/,
    ],
  ];
  for (const [what, bad, re] of cases) {
    it(`AXFR with ${what}`, () => {
      const r = new AxfrReader(ZONE, ID, 100);
      assert.throws(
        () => r.push(message([SOA, bad, SOA]), true),
        (e: Error) => e instanceof XfrError && re.test(e.message),
      );
    });
  }

  it('IXFR (incremental and AXFR-style) runs the same checks', () => {
    const old = { ...SOA, rdata: soa('ns.example.test', 'h.example.test', 2) };
    const bad = { owner: n('x.example.test'), type: 254, ttl: 0, rdata: Buffer.alloc(0) };
    assert.throws(
      () => new IxfrReader(ZONE, ID, 2, 100).push(message([SOA, old, SOA, bad, SOA], 251), true),
      /meta type MAILA/,
    );
    assert.throws(
      () => new IxfrReader(ZONE, ID, 2, 100).push(message([SOA, bad, SOA], 251), true),
      /meta type MAILA/,
    );
  });

  it('a malformed message is reported as such', () => {
    const msg = message([SOA, SOA]);
    assert.throws(
      () => new AxfrReader(ZONE, ID, 100).push(msg.subarray(0, msg.length - 3), true),
      (e: Error) => e instanceof XfrError && /^malformed transfer message: /.test(e.message),
    );
  });
});

describe('a cut-off transfer is never complete (CVE-2022-27227)', () => {
  const ZONE = n('example.test');
  const ID = 9;
  const S = (serial: number) => ({
    owner: ZONE,
    type: TYPE.SOA,
    ttl: 60,
    rdata: soa('ns.example.test', 'h.example.test', serial),
  });
  const www = (ip: string) => ({ owner: n('www.example.test'), type: TYPE.A, ttl: 60, rdata: a(ip) });
  const ns = { owner: ZONE, type: TYPE.NS, ttl: 60, rdata: n('ns.example.test') };
  const msg = (rrs: TestRR[], first: boolean) => {
    const w = new MessageWriter(65535);
    for (const v of [ID, FLAG_QR | FLAG_AA, first ? 1 : 0, rrs.length, 0, 0]) w.u16(v);
    if (first) {
      w.name(ZONE);
      w.u16(251);
      w.u16(1);
    }
    for (const r of rrs) w.rr(r.owner, r.type, r.cls ?? 1, r.ttl, r.rdata);
    return w.finish();
  };

  it('an AXFR-style IXFR cut before its closing SOA is incomplete, however much came', () => {
    const r = new IxfrReader(ZONE, ID, 1, 100);
    assert.equal(r.push(msg([S(5), ns, www('192.0.2.1')], true), true), false);
    assert.equal(r.push(msg([www('192.0.2.2'), www('192.0.2.3')], false), false), false);
    assert.throws(() => r.result(), /IXFR response incomplete/);
  });

  it('an SOA of another serial does not close an AXFR-style IXFR', () => {
    const r = new IxfrReader(ZONE, ID, 1, 100);
    assert.throws(() => r.push(msg([S(5), ns, S(4)], true), true), /closing SOA serial 4 differs/);
  });

  it('an incremental IXFR cut after a whole version is incomplete', () => {
    const r = new IxfrReader(ZONE, ID, 1, 100);
    assert.equal(r.push(msg([S(3), S(1), www('192.0.2.1'), S(2), www('192.0.2.2')], true), false), false);
    assert.throws(() => r.result(), /IXFR response incomplete/);
  });

  it('a lone SOA newer than ours is not "up to date" (falls back to AXFR)', () => {
    const r = new IxfrReader(ZONE, ID, 1, 100);
    assert.equal(r.push(msg([S(5)], true), true), true);
    assert.throws(() => r.result(), /single SOA of newer serial 5/);
  });

  it('an AXFR cut before its closing SOA is incomplete', () => {
    const r = new AxfrReader(ZONE, ID, 100);
    const axfrMsg = (rrs: TestRR[], first: boolean) => {
      const m = msg(rrs, first);
      if (first) m.writeUInt16BE(252, 12 + ZONE.length);
      return m;
    };
    assert.equal(r.push(axfrMsg([S(5), ns], true), true), false);
    assert.equal(r.finished, false);
  });
});
