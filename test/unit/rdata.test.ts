/**
 * rdataToText against dig (BIND 9.18) itself:
 *  - every record of three real zones (the example fixture, and the types fixture signed once with
 *    NSEC and once with NSEC3) transferred with `dig AXFR` twice, plain and +unknownformat, so the
 *    wire bytes and dig's text of each record sit side by side;
 *  - the same zones by a raw TCP AXFR read through readRdata, which must undo BIND's compression;
 *  - hand-built edge-case rdata served by a tiny UDP responder and printed by dig.
 * Plus readRdata on hand-built messages and the type/class tables.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nameToText, readName, textToName, WireError } from '../../src/dns/name.js';
import { rdataToText, readRdata } from '../../src/dns/rdata.js';
import { CLASS, classToText, TYPE, textToClass, textToType, typeToText } from '../../src/dns/types.js';
import { digAt, type Named, startNamed } from '../harness/named.js';
import { signZone } from '../harness/sign.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const fixture = (f: string) => fs.readFileSync(path.join(FIXTURES, f), 'utf8');

// ---------------------------------------------------------------------------------------------
// Helpers

interface DigRR {
  owner: string;
  ttl: number;
  cls: string;
  type: string;
  rdata: string;
}

/**
 * Record lines of `dig +noall +answer`; columns are split on whitespace, the rdata kept as is.
 * `strict` fails on any other line; otherwise they are skipped (dig dumps packets it rejects).
 */
function parseDig(out: string, strict = true): DigRR[] {
  const rrs: DigRR[] = [];
  for (const line of out.split('\n')) {
    if (line === '' || line.startsWith(';')) continue;
    const m = /^(\S+)\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!strict && !m) continue;
    assert.ok(m, `unparsable dig line: ${JSON.stringify(line)}`);
    rrs.push({ owner: m[1], ttl: Number(m[2]), cls: m[3], type: m[4], rdata: m[5] ?? '' });
  }
  return rrs;
}

/** `\# <len> <hex words>` (RFC 3597 §5) back to bytes. */
function parseGeneric(text: string): Buffer {
  const m = /^\\# (\d+)((?: [0-9A-Fa-f]+)*)$/.exec(text);
  assert.ok(m, `not generic rdata: ${text}`);
  const bytes = Buffer.from(m[2].replace(/ /g, ''), 'hex');
  assert.equal(bytes.length, Number(m[1]));
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// A primary with three zones

const ZONES = ['example.test', 'types.test', 'nsec3.test'];
let named: Named;
let tmp: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-rdata-'));
  const types = fixture('types.test.zone');
  // RSA gives long keys and signatures (base64 split over several words); NSEC chain.
  const nsecZone = await signZone(
    tmp,
    'types.test',
    types,
    [
      ['-a', 'RSASHA256', '-b', '1024', '-f', 'KSK'],
      ['-a', 'RSASHA256', '-b', '1024'],
    ],
    [],
  );
  // ECDSA with NSEC3: salt, iterations, opt-out (flags 1), empty non-terminal hashes.
  const nsec3Zone = await signZone(
    tmp,
    'nsec3.test',
    types,
    [
      ['-a', 'ECDSAP256SHA256', '-f', 'KSK'],
      ['-a', 'ECDSAP256SHA256'],
    ],
    ['-3', 'C0FFEE', '-H', '3', '-A'],
  );
  named = await startNamed({
    zones: [
      { name: 'example.test', text: fixture('example.test.zone') },
      { name: 'types.test', text: nsecZone },
      { name: 'nsec3.test', text: nsec3Zone },
    ],
  });
});

after(async () => {
  await named?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('rdataToText matches dig on every record of real zones', () => {
  const seen = new Set<string>();

  for (const zone of ZONES) {
    it(`AXFR ${zone}: plain text equals rdataToText of the +unknownformat bytes`, async () => {
      const plain = parseDig(await named.dig(['+noall', '+answer', zone, 'AXFR']));
      const wire = parseDig(await named.dig(['+noall', '+answer', '+unknownformat', zone, 'AXFR']));
      assert.ok(plain.length > 20, `AXFR of ${zone} too small: ${plain.length}`);
      assert.equal(wire.length, plain.length);
      for (let i = 0; i < plain.length; i++) {
        const p = plain[i];
        const w = wire[i];
        const where = `${p.owner} ${p.type} (record ${i})`;
        assert.equal(w.owner, p.owner, where);
        assert.equal(w.ttl, p.ttl, where);
        const type = textToType(w.type);
        assert.ok(type !== undefined, `${where}: type ${w.type}`);
        assert.equal(typeToText(type), p.type, where);
        assert.equal(textToClass(w.cls), CLASS.IN, where);
        assert.equal(classToText(CLASS.IN), p.cls, where);
        assert.equal(rdataToText(type, parseGeneric(w.rdata)), p.rdata, where);
        seen.add(p.type);
      }
    });
  }

  it('covered every type the presentation code is meant for', () => {
    const wanted = [
      'A AAAA NS CNAME DNAME PTR MX SOA TXT SPF HINFO SRV CAA NAPTR SSHFP TLSA SMIMEA DS CDS DNSKEY',
      'CDNSKEY RRSIG NSEC NSEC3 NSEC3PARAM LOC URI SVCB HTTPS RP AFSDB KX OPENPGPKEY ZONEMD CERT',
      'EUI48 EUI64 TYPE65400 MB MG MR MINFO WKS X25 ISDN RT NSAP NSAP-PTR PX GPOS EID NIMLOC ATMA',
      'A6 SINK APL NULL UINFO NID L32 L64 LP AVC DOA AMTRELAY RESINFO WALLET DSYNC HHIT BRID',
      'IPSECKEY DHCID HIP NINFO RKEY TALINK CSYNC KEY TA DLV',
    ]
      .join(' ')
      .split(' ');
    const missing = wanted.filter((t) => !seen.has(t));
    assert.deepEqual(missing, []);
  });
});

// ---------------------------------------------------------------------------------------------
// Raw AXFR over TCP, RRs walked with readName/readRdata

interface RawRR {
  owner: Buffer;
  type: number;
  rdata: Buffer;
  compressed: boolean;
}

function axfrQuery(zone: string): Buffer {
  const qname = textToName(zone);
  const msg = Buffer.alloc(12 + qname.length + 4);
  msg.writeUInt16BE(0x4242, 0);
  msg.writeUInt16BE(1, 4); // QDCOUNT
  qname.copy(msg, 12);
  msg.writeUInt16BE(TYPE.AXFR, 12 + qname.length);
  msg.writeUInt16BE(CLASS.IN, 14 + qname.length);
  const framed = Buffer.alloc(2 + msg.length);
  framed.writeUInt16BE(msg.length, 0);
  msg.copy(framed, 2);
  return framed;
}

/** The answer RRs of one AXFR response message (RFC 5936 §2.2). */
function answerRRs(msg: Buffer): RawRR[] {
  assert.equal(msg.readUInt16BE(2) & 0x000f, 0, 'AXFR rcode');
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let off = 12;
  for (let i = 0; i < qd; i++) off = readName(msg, off).end + 4;
  const out: RawRR[] = [];
  for (let i = 0; i < an; i++) {
    const { name, end } = readName(msg, off);
    const type = msg.readUInt16BE(end);
    const rdlen = msg.readUInt16BE(end + 8);
    const rdata = readRdata(msg, end + 10, rdlen, type);
    out.push({ owner: name, type, rdata, compressed: rdata.length !== rdlen });
    off = end + 10 + rdlen;
  }
  assert.equal(off, msg.length, 'AXFR message has trailing bytes');
  return out;
}

function rawAxfr(port: number, zone: string): Promise<RawRR[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const rrs: RawRR[] = [];
    let buf = Buffer.alloc(0);
    let soas = 0;
    sock.setTimeout(10_000, () => sock.destroy(new Error('AXFR timed out')));
    sock.on('error', reject);
    sock.on('connect', () => sock.write(axfrQuery(zone)));
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        try {
          for (const rr of answerRRs(msg)) {
            rrs.push(rr);
            if (rr.type === TYPE.SOA) soas++;
          }
        } catch (err) {
          sock.destroy();
          reject(err);
          return;
        }
        if (soas === 2) {
          sock.end();
          resolve(rrs);
          return;
        }
      }
    });
  });
}

describe('readRdata on a real AXFR stream', () => {
  for (const zone of ZONES) {
    it(`${zone}: decompressed rdata prints exactly as dig prints it`, async () => {
      const raw = await rawAxfr(named.port, zone);
      const dig = parseDig(await named.dig(['+noall', '+answer', zone, 'AXFR']));
      const mine = raw.map(
        (rr) => `${nameToText(rr.owner)} ${typeToText(rr.type)} ${rdataToText(rr.type, rr.rdata)}`,
      );
      const theirs = dig.map((rr) => `${rr.owner} ${rr.type} ${rr.rdata}`);
      assert.deepEqual(mine.sort(), theirs.sort());
      // BIND compresses names in rdata of the RFC 1035 types: make sure we actually expanded some.
      assert.ok(raw.filter((rr) => rr.compressed).length > 3, 'no compressed rdata seen');
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Hand-built rdata printed by dig: a UDP responder answers "<base32hex index>.t." with one RR

interface Vector {
  type: number;
  hex: string;
  /** dig refuses this rdata (BIND's fromwire rejects it): ours must fall back to `\#`. */
  rejected?: true;
}

const h = (s: string): string => s.replace(/\s+/g, '');
const name = (s: string): string => textToName(s).toString('hex');
const str = (s: string): string => {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([Buffer.from([b.length]), b]).toString('hex');
};
const u32 = (v: number): string => v.toString(16).padStart(8, '0');
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex');

const VECTORS: Vector[] = [
  // names with awkward octets
  { type: TYPE.NS, hex: `05612e62223b03782829${'00'}` },
  { type: TYPE.CNAME, hex: `0800207f80ff40245c00` },
  // IPv6 text forms (compression of zero runs, embedded IPv4)
  ...[
    '00000000000000000000000000000000',
    '00000000000000000000000000000001',
    '00000000000000000000ffff01020304',
    '00000000000000000000000001020304',
    '0000000000000000ffff000001020304',
    '000000000000000000000000ffff0001',
    '20010db8000000010000000000000001',
    '20010db8000000000001000000000000',
    '00010000000000000000000000000000',
    'ffffffffffffffffffffffffffffffff',
  ].map((hex) => ({ type: TYPE.AAAA, hex })),
  // character-strings: every octet value, empty strings
  { type: TYPE.TXT, hex: str(Buffer.from(ALL_BYTES, 'hex').subarray(0, 128).toString('latin1')) },
  { type: TYPE.TXT, hex: str(Buffer.from(ALL_BYTES, 'hex').subarray(128).toString('latin1')) + str('') },
  { type: TYPE.CAA, hex: `80${str('issue')}${ALL_BYTES}` },
  { type: TYPE.URI, hex: `00010002${ALL_BYTES}` },
  { type: TYPE.URI, hex: '00010002' },
  { type: TYPE.NAPTR, hex: `00000000${str('')}${str('')}${str('')}00` },
  // LOC extremes: zero sizes, poles, lowest and highest altitude
  {
    type: TYPE.LOC,
    hex: `00000000${u32(0x80000000 - 90 * 3600000)}${u32(0x80000000 + 180 * 3600000)}00000000`,
  },
  { type: TYPE.LOC, hex: `00991011${u32(0x80000001)}${u32(0x7fffffff)}ffffffff` },
  // Version 1 is unknown to BIND, which then prints the generic form.
  { type: TYPE.LOC, hex: `01121613${u32(0x80000000)}${u32(0x80000000)}00989680` },
  { type: TYPE.LOC, hex: `00011011${u32(0x80000000)}${u32(0x80000000)}00989680`, rejected: true },
  // SIG prints an unknown covered type as a bare number, RRSIG as TYPEnnn; far-off times
  { type: TYPE.SIG, hex: `ff78 08 00 00000000 ${u32(0xffffffff)} 00000000 0000 00 01020304` },
  { type: TYPE.RRSIG, hex: `ff78 08 00 00000000 ${u32(0xffffffff)} 00000000 0000 00 01020304` },
  { type: TYPE.NXT, hex: `${name('b.x.')}62` },
  { type: TYPE.NXT, hex: `${name('b.x.')}6200`, rejected: true },
  // NSEC bitmaps: several windows; a trailing zero octet is invalid
  { type: TYPE.NSEC, hex: `${name('b.x.')}000762010000000003 0104ffffffff ff0101` },
  { type: TYPE.NSEC, hex: `${name('b.x.')}000100`, rejected: true },
  { type: TYPE.NSEC3, hex: `01 00 0000 00 14 ${'ab'.repeat(20)}` },
  { type: TYPE.NSEC3, hex: `01 00 0000 00 05 ${'ab'.repeat(5)}`, rejected: true },
  { type: TYPE.NSEC3PARAM, hex: `01 ff ffff 00` },
  // DS-like with an unknown digest type of odd length; known digest type with wrong length
  { type: TYPE.DS, hex: `0001 08 09 ${'5a'.repeat(3)}` },
  { type: TYPE.DS, hex: `0001 08 02 ${'5a'.repeat(20)}`, rejected: true },
  { type: TYPE.CERT, hex: `00fe 0005 fe 0102030405` },
  { type: TYPE.CERT, hex: `0003 0005 0d ${'00'.repeat(60)}` },
  { type: TYPE.DNSKEY, hex: `0100 03 fd ${name('private.example.')}0102` },
  { type: TYPE.KEY, hex: 'c000 03 08' },
  { type: TYPE.SSHFP, hex: '2a21' },
  { type: TYPE.SSHFP, hex: `0101${'00'.repeat(32)}`, rejected: true },
  { type: TYPE.ZONEMD, hex: `00000001 01 09 ${'00'.repeat(12)}` },
  { type: TYPE.ZONEMD, hex: `00000001 01 01 ${'00'.repeat(12)}`, rejected: true },
  // A6 with a prefix that is not a multiple of 8, and a full prefix (empty suffix)
  { type: TYPE.A6, hex: `41 7f00000000000001 ${name('p.example.')}` },
  { type: TYPE.A6, hex: `80 ${name('p.example.')}` },
  { type: TYPE.APL, hex: '' },
  { type: TYPE.APL, hex: `0001 18 03 c00002 0002 40 88 20010db800000001` },
  { type: TYPE.AMTRELAY, hex: '0a 04 0102' },
  { type: TYPE.NID, hex: `000a 0014030405060708` },
  // SvcParams: alpn escaping, keys without value, ech, key7 (dohpath, printed as key7 by 9.18)
  {
    type: TYPE.SVCB,
    hex: `0001 00 0001 001d 03612c62 03635c64 03652266 03672068 03693b6a 03007fff 0440242829`,
  },
  { type: TYPE.HTTPS, hex: `0001 00 0001 0003 026832 0002 0000 0005 0000 ffff 0000` },
  { type: TYPE.HTTPS, hex: `0001 00 0007 0010 ${Buffer.from('/dns-query{?dns}').toString('hex')}` },
  { type: TYPE.SVCB, hex: `0001 00 0000 0004 00010003 0001 0003 026832 0003 0002 01bb` },
  { type: TYPE.SVCB, hex: `0001 00 0003 0002 01bb 0001 0003 026832`, rejected: true },
  { type: TYPE.SVCB, hex: `0001 00 0002 0000`, rejected: true },
  { type: TYPE.CAA, hex: `00 00 78`, rejected: true },
  { type: TYPE.TXT, hex: '', rejected: true },
  { type: TYPE.TXT, hex: '0561', rejected: true },
  { type: 65401, hex: '' },
  { type: 65402, hex: ALL_BYTES },
];

/** base32hex label for an index: the responder must use names BIND accepts as NSEC3 owners. */
const label = (i: number): string => i.toString(32).toUpperCase().padStart(8, '0');

async function withResponder<T>(vectors: Vector[], fn: (port: number) => Promise<T>): Promise<T> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  sock.on('message', (q, rinfo) => {
    const { end } = readName(q, 12);
    const first = q.subarray(13, 13 + q[12]).toString('latin1');
    const v = vectors[Number.parseInt(first, 32)];
    const rdata = Buffer.from(h(v.hex), 'hex');
    const head = Buffer.from(q.subarray(0, 12));
    head.writeUInt16BE(0x8400, 2); // QR AA
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(1, 6);
    head.writeUInt32BE(0, 8);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(v.type, 2);
    rr.writeUInt16BE(CLASS.IN, 4);
    rr.writeUInt32BE(300, 6);
    rr.writeUInt16BE(rdata.length, 10);
    sock.send(Buffer.concat([head, q.subarray(12, end + 4), rr, rdata]), rinfo.port, rinfo.address);
  });
  try {
    return await fn((sock.address() as net.AddressInfo).port);
  } finally {
    sock.close();
  }
}

describe('rdataToText matches dig on hand-built rdata', () => {
  it('prints each vector as dig does, and falls back to \\# where BIND rejects the rdata', async () => {
    const out = await withResponder(VECTORS, (port) =>
      digAt(port, [
        '+noall',
        '+answer',
        '+tries=1',
        '+time=2',
        '+nocookie',
        ...VECTORS.flatMap((_, i) => [`${label(i)}.t.`, 'A']),
      ]),
    );
    const got = new Map<number, string>();
    for (const rr of parseDig(out, false)) {
      const m = /^([0-9A-V]{8})\.t\.$/.exec(rr.owner);
      if (m) got.set(Number.parseInt(m[1], 32), rr.rdata);
    }
    VECTORS.forEach((v, i) => {
      const mine = rdataToText(v.type, Buffer.from(h(v.hex), 'hex'));
      const where = `vector ${i}: ${typeToText(v.type)} ${h(v.hex)}`;
      if (v.rejected) {
        assert.equal(got.get(i), undefined, `${where}: dig was expected to reject it`);
        assert.match(mine, /^\\# \d+/, where);
      } else {
        assert.equal(mine, got.get(i), where);
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// readRdata on hand-built messages

/** A message whose question is example.test/A at offset 12, so pointers to 0xc00c name it. */
function message(...rdatas: string[]): { msg: Buffer; offs: number[] } {
  const parts = [
    Buffer.from(h('abcd 8400 0001 0000 0000 0000'), 'hex'),
    textToName('example.test'),
    Buffer.from('00010001', 'hex'),
  ];
  const offs: number[] = [];
  let off = parts.reduce((n, b) => n + b.length, 0);
  for (const r of rdatas) {
    const b = Buffer.from(h(r), 'hex');
    offs.push(off);
    parts.push(b);
    off += b.length;
  }
  return { msg: Buffer.concat(parts), offs };
}

const wire = (...names: string[]): string => names.map(name).join('');
const PTR = 'c00c'; // -> example.test.

describe('readRdata', () => {
  it('expands compressed names in MX, SOA, NS, SRV, NAPTR, RP, PX and CNAME', () => {
    const mx = `000a 046d61696c ${PTR}`;
    const soa = `036e7331 ${PTR} 0a686f73746d6173746572 ${PTR} 78a3f175 00000e10 00000258 00015180 0000012c`;
    const { msg, offs } = message(mx, soa);
    // NS pointing into the SOA's mname (ns1.example.test), itself a label + pointer: a chain.
    const nsRdata = `c0${offs[1].toString(16).padStart(2, '0')}`;
    const more = message(mx, soa, nsRdata);
    const cases: [number, Buffer, number, number, string][] = [
      [TYPE.MX, msg, offs[0], h(mx).length / 2, `000a${wire('mail.example.test')}`],
      [
        TYPE.SOA,
        msg,
        offs[1],
        h(soa).length / 2,
        wire('ns1.example.test', 'hostmaster.example.test') +
          h('78a3f175 00000e10 00000258 00015180 0000012c'),
      ],
      [TYPE.NS, more.msg, more.offs[2], 2, wire('ns1.example.test')],
    ];
    for (const [type, m, off, len, want] of cases) {
      assert.equal(readRdata(m, off, len, type).toString('hex'), want, typeToText(type));
    }
    const srv = `000a 003c 13c4 03736970 ${PTR}`;
    const naptr = `0064 000a ${str('S')} ${str('SIP+D2T')} ${str('')} 045f736970045f746370 ${PTR}`;
    const rp = `0a686f73746d6173746572 ${PTR} ${PTR}`;
    const px = `000a ${PTR} 036d6170 ${PTR}`;
    const cname = PTR;
    const m2 = message(srv, naptr, rp, px, cname);
    const len = (s: string) => h(s).length / 2;
    assert.equal(
      rdataToText(TYPE.SRV, readRdata(m2.msg, m2.offs[0], len(srv), TYPE.SRV)),
      '10 60 5060 sip.example.test.',
    );
    assert.equal(
      rdataToText(TYPE.NAPTR, readRdata(m2.msg, m2.offs[1], len(naptr), TYPE.NAPTR)),
      '100 10 "S" "SIP+D2T" "" _sip._tcp.example.test.',
    );
    assert.equal(
      rdataToText(TYPE.RP, readRdata(m2.msg, m2.offs[2], len(rp), TYPE.RP)),
      'hostmaster.example.test. example.test.',
    );
    assert.equal(
      rdataToText(TYPE.PX, readRdata(m2.msg, m2.offs[3], len(px), TYPE.PX)),
      '10 example.test. map.example.test.',
    );
    assert.equal(rdataToText(TYPE.CNAME, readRdata(m2.msg, m2.offs[4], 2, TYPE.CNAME)), 'example.test.');
    assert.equal(
      rdataToText(TYPE.SOA, readRdata(msg, offs[1], len(soa), TYPE.SOA)),
      'ns1.example.test. hostmaster.example.test. 2024010101 3600 600 86400 300',
    );
  });

  it('returns other types byte for byte, as a copy', () => {
    // Bytes that look like a compression pointer must stay as they are in opaque rdata.
    const opaque = `${PTR} 0a0b0c0d`;
    const sig = `0001 0d 02 0000012c 00000000 00000000 04d2 ${PTR} 01020304`;
    const { msg, offs } = message(opaque, sig);
    const out = readRdata(msg, offs[0], 6, 65400);
    assert.equal(out.toString('hex'), h(opaque));
    msg[offs[0]] = 0;
    assert.equal(out.toString('hex'), h(opaque), 'result must not alias the message');
    // RRSIG signer names must not be compressed (RFC 4034 §3.1.7): not touched.
    assert.equal(readRdata(msg, offs[1], h(sig).length / 2, TYPE.RRSIG).toString('hex'), h(sig));
    assert.equal(readRdata(msg, offs[1], 0, 65400).length, 0);
  });

  it('throws WireError on malformed rdata', () => {
    const soa = `036e7331 ${PTR} 0a686f73746d6173746572 ${PTR} 78a3f175 00000e10 00000258 00015180 0000012c`;
    const { msg, offs } = message(soa, 'c0ff', `000a ${PTR}`, '0102030405', '0a0b0c0d');
    const bad: [string, number, number, number][] = [
      ['truncated SOA', offs[0], h(soa).length / 2 - 1, TYPE.SOA],
      ['SOA with a trailing octet', offs[0], h(soa).length / 2 + 1, TYPE.SOA],
      ['SOA without its numbers', offs[0], 10, TYPE.SOA],
      ['forward compression pointer', offs[1], 2, TYPE.NS],
      ['pointer to itself', offs[1], 2, TYPE.CNAME],
      ['MX without a name', offs[2], 2, TYPE.MX],
      ['MX cut inside the preference', offs[2], 1, TYPE.MX],
      ['A of 5 octets', offs[3], 5, TYPE.A],
      ['A of 3 octets', offs[3], 3, TYPE.A],
      ['AAAA of 4 octets', offs[4], 4, TYPE.AAAA],
      ['rdata past the end of the message', offs[4], 5, 65400],
      ['empty NS', offs[4], 0, TYPE.NS],
    ];
    // Make the "pointer to itself" case real: a pointer at offs[1] that targets offs[1].
    const selfPtr = Buffer.from(msg);
    selfPtr.writeUInt16BE(0xc000 | offs[1], offs[1]);
    for (const [what, off, len, type] of bad) {
      const m = what === 'pointer to itself' ? selfPtr : msg;
      assert.throws(() => readRdata(m, off, len, type), WireError, what);
    }
    // A name whose labels run past RDLENGTH into the next record.
    const { msg: m3, offs: o3 } = message(`03616263 00`);
    assert.throws(() => readRdata(m3, o3[0], 3, TYPE.PTR), WireError);
    // NAPTR whose character-string overruns the rdata.
    const { msg: m4, offs: o4 } = message(`0064 000a 05 4142 00`);
    assert.throws(() => readRdata(m4, o4[0], 7, TYPE.NAPTR), WireError);
  });

  it('accepts A and AAAA of the right length', () => {
    const { msg, offs } = message('c0000201', '20010db8000000000000000000000001');
    assert.equal(rdataToText(TYPE.A, readRdata(msg, offs[0], 4, TYPE.A)), '192.0.2.1');
    assert.equal(rdataToText(TYPE.AAAA, readRdata(msg, offs[1], 16, TYPE.AAAA)), '2001:db8::1');
  });
});

describe('rdataToText fallbacks', () => {
  it('uses the generic form for unknown types and for rdata that does not parse', () => {
    assert.equal(rdataToText(65400, Buffer.from('0a0b0c0d', 'hex')), '\\# 4 0A0B0C0D');
    assert.equal(rdataToText(65400, Buffer.alloc(0)), '\\# 0');
    assert.equal(rdataToText(TYPE.A, Buffer.from('0102', 'hex')), '\\# 2 0102');
    assert.equal(rdataToText(TYPE.MX, Buffer.from('000ac00c', 'hex')), '\\# 4 000AC00C');
    assert.equal(
      rdataToText(TYPE.SOA, Buffer.from(wire('a.', 'b.'), 'hex')),
      `\\# 6 ${wire('a.', 'b.').toUpperCase()}`,
    );
    // 29 octets: the hex is split into 56-character words like dig does.
    assert.equal(rdataToText(65400, Buffer.alloc(29, 0xab)), `\\# 29 ${'AB'.repeat(28)} AB`);
  });
});

describe('type and class tables', () => {
  it('round-trips every mnemonic, case-insensitively', () => {
    for (const [mnemonic, value] of Object.entries(TYPE)) {
      assert.equal(typeToText(value), mnemonic);
      assert.equal(textToType(mnemonic), value);
      assert.equal(textToType(mnemonic.toLowerCase()), value);
    }
    assert.equal(new Set(Object.values(TYPE)).size, Object.keys(TYPE).length, 'duplicate type numbers');
  });

  it('uses TYPE<n> for types without a mnemonic (RFC 3597 §5)', () => {
    assert.equal(typeToText(65400), 'TYPE65400');
    assert.equal(textToType('TYPE65400'), 65400);
    assert.equal(textToType('type65400'), 65400);
    assert.equal(textToType(typeToText(54)), 54);
    assert.equal(textToType('TYPE1'), TYPE.A);
    assert.equal(textToType('TYPE65535'), 65535);
    for (const bad of ['TYPE65536', 'TYPE', 'TYPE-1', 'TYPE+1', 'TYPE 1', 'TYPE1x', 'FOO', '', 'NSAP_PTR']) {
      assert.equal(textToType(bad), undefined, bad);
    }
    assert.equal(textToType('nsap-ptr'), 23);
    assert.equal(TYPE.HTTPS, 65);
    assert.equal(TYPE.CAA, 257);
    assert.equal(TYPE.DLV, 32769);
  });

  it('prints classes like dig', () => {
    assert.equal(classToText(CLASS.IN), 'IN');
    assert.equal(classToText(CLASS.CH), 'CH');
    assert.equal(classToText(CLASS.HS), 'HS');
    assert.equal(classToText(CLASS.NONE), 'NONE');
    assert.equal(classToText(CLASS.ANY), 'ANY');
    assert.equal(classToText(2), 'CLASS2');
    assert.equal(classToText(0), 'RESERVED0');
    assert.equal(textToClass('in'), 1);
    assert.equal(textToClass('CLASS3'), 3);
    assert.equal(textToClass('CHAOS'), 3);
    assert.equal(textToClass('CLASS65536'), undefined);
  });
});
