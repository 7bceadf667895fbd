/**
 * The probes of ISC's EDNS compliance tester `genreport` (DNS-Compliance-Testing, genreport.c),
 * rebuilt from its source so tests can run them without the tool: the same request bytes per
 * probe (its `opts[]` table: EDNS size, flags, version, options, header bits, opcode, QTYPE, TCP)
 * and the same verdict rules (its `process()`), giving the same tags it prints ("ok", "formerr",
 * "noopt", "nsid", …). The TSIG probe (`dnswkk`) and the ICMP one are left out.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { textToName } from '../../src/dns/name.js';

export interface Probe {
  name: string;
  /** OPT rdata (options); undefined with udpsize 0 means no OPT. */
  rdata?: Buffer;
  udpsize: number;
  /** EDNS flags word (0x8000 = DO). */
  eflags: number;
  version: number;
  tcp: boolean;
  /** The OPT carries genreport's client cookie 0102030405060708. */
  cookie: boolean;
  /** Do not retry over TCP when the reply is truncated. */
  ignore: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  cd: boolean;
  ad: boolean;
  z: boolean;
  opcode: number;
  type: number;
}

const COOKIE = Buffer.from('000a00080102030405060708', 'hex');
const base: Probe = {
  name: '',
  udpsize: 0,
  eflags: 0,
  version: 0,
  tcp: false,
  cookie: false,
  ignore: false,
  tc: false,
  rd: false,
  ra: false,
  cd: false,
  ad: false,
  z: false,
  opcode: 0,
  type: 6,
};
const p = (name: string, o: Partial<Probe>): Probe => ({ ...base, name, ...o });
const E = 4096;

/** genreport's probes (DNS, EDNS and "full" groups, then the TYPE group), in its order. */
export const PROBES: readonly Probe[] = [
  p('dns', {}),
  p('aa', {}), // genreport's table sets aa, but dotest() never writes it into the request
  p('ad', { ad: true }),
  p('cd', { cd: true }),
  p('ra', { ra: true }),
  p('rd', { rd: true }),
  p('tc', { tc: true }),
  p('zflag', { z: true }),
  p('opcode', { opcode: 15, type: 0 }),
  p('opcodeflg', { opcode: 15, type: 0, tc: true, rd: true, ra: true, cd: true, ad: true, z: true }),
  p('type666', { type: 666 }),
  p('tcp', { tcp: true }),
  p('edns', { udpsize: E }),
  p('edns1', { udpsize: E, version: 1 }),
  p('edns@512', { udpsize: 512, ignore: true, type: 48 }),
  p('ednsopt', { udpsize: E, rdata: Buffer.from('00640000', 'hex') }),
  p('edns1opt', { udpsize: E, version: 1, rdata: Buffer.from('00640000', 'hex') }),
  p('do', { udpsize: E, eflags: 0x8000 }),
  p('docd', { udpsize: E, eflags: 0x8000, cd: true }),
  p('edns1do', { udpsize: E, eflags: 0x8000, version: 1 }),
  p('ednsflags', { udpsize: E, eflags: 0x0080 }),
  p('optlist', {
    udpsize: E,
    cookie: true,
    rdata: Buffer.concat([Buffer.from('00030000000800040001000000090000', 'hex'), COOKIE]),
  }),
  p('ednsnsid', { udpsize: E, rdata: Buffer.from('00030000', 'hex') }),
  p('ednscookie', { udpsize: E, cookie: true, rdata: COOKIE }),
  p('ednsexpire', { udpsize: E, rdata: Buffer.from('00090000', 'hex') }),
  p('ednssubnet', { udpsize: E, rdata: Buffer.from('0008000400010000', 'hex') }),
  p('edns1nsid', { udpsize: E, version: 1, rdata: Buffer.from('00030000', 'hex') }),
  p('edns1cookie', { udpsize: E, version: 1, cookie: true, rdata: COOKIE }),
  p('edns1expire', { udpsize: E, version: 1, rdata: Buffer.from('00090000', 'hex') }),
  p('edns1subnet', { udpsize: E, version: 1, rdata: Buffer.from('0008000400010000', 'hex') }),
  p('ednstcp', { udpsize: 512, eflags: 0x8000, tcp: true, type: 48 }),
  p('bind11', { udpsize: E, eflags: 0x8000, cookie: true, rdata: COOKIE }),
  p('dig11', { udpsize: E, cookie: true, rd: true, ad: true, rdata: COOKIE }),
  ...(
    [
      ['A', 1],
      ['NS', 2],
      ['MD', 3],
      ['MF', 4],
      ['CNAME', 5],
      ['SOA', 6],
      ['MB', 7],
      ['MG', 8],
      ['MR', 9],
      ['NULL', 10],
      ['WKS', 11],
      ['PTR', 12],
      ['HINFO', 13],
      ['MINFO', 14],
      ['MX', 15],
      ['TXT', 16],
      ['RP', 17],
      ['AFSDB', 18],
      ['X25', 19],
      ['ISDN', 20],
      ['RT', 21],
      ['NSAP', 22],
      ['NSAP-PTR', 23],
      ['SIG', 24],
      ['KEY', 25],
      ['PX', 26],
      ['GPOS', 27],
      ['AAAA', 28],
      ['LOC', 29],
      ['NXT', 30],
      ['SRV', 33],
      ['NAPTR', 35],
      ['KX', 36],
      ['CERT', 37],
      ['A6', 38],
      ['DNAME', 39],
      ['APL', 42],
      ['DS', 43],
      ['SSHFP', 44],
      ['IPSECKEY', 45],
      ['RRSIG', 46],
      ['NSEC', 47],
      ['DNSKEY', 48],
      ['DHCID', 49],
      ['NSEC3', 50],
      ['NSEC3PARAM', 51],
      ['TLSA', 52],
      ['SMIMEA', 53],
      ['HIP', 55],
      ['CDS', 59],
      ['CDNSKEY', 60],
      ['OPENPGPKEY', 61],
      ['SPF', 99],
      ['NID', 104],
      ['L32', 105],
      ['L64', 106],
      ['LP', 107],
      ['EUI48', 108],
      ['EUI64', 109],
      ['URI', 256],
      ['CAA', 257],
      ['AVC', 258],
      ['DOA', 259],
      ['DLV', 32769],
      ['TYPE1000', 1000],
    ] as const
  ).map(([name, type]) => p(name, { type })),
];

const u16 = (v: number) => Buffer.from([(v >> 8) & 0xff, v & 0xff]);

/** The request genreport's dotest() builds for `probe` about `zone`. */
export function request(probe: Probe, zone: string, id: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h[2] = (probe.opcode << 3) | (probe.tc ? 0x02 : 0) | (probe.rd ? 0x01 : 0);
  h[3] = (probe.ra ? 0x80 : 0) | (probe.z ? 0x40 : 0) | (probe.ad ? 0x20 : 0) | (probe.cd ? 0x10 : 0);
  // An opcode other than QUERY: the header alone, no question (genreport's fixup, opcode 15).
  if (probe.opcode !== 0) return h;
  h.writeUInt16BE(1, 4);
  const parts = [h, textToName(zone), u16(probe.type), u16(1)];
  if (probe.udpsize > 0) {
    const rdata = probe.rdata ?? Buffer.alloc(0);
    const ttl = Buffer.alloc(4);
    ttl.writeUInt32BE(((probe.version << 16) | probe.eflags) >>> 0);
    parts.push(Buffer.from([0]), u16(41), u16(probe.udpsize), ttl, u16(rdata.length), rdata);
    h.writeUInt16BE(1, 10);
  }
  return Buffer.concat(parts);
}

const RCODES = ['noerror', 'formerr', 'servfail', 'nxdomain', 'notimp', 'refused', 'yxdomain', 'yxrrset'];
const rcodeText = (c: number) =>
  c < RCODES.length
    ? RCODES[c]
    : c === 9
      ? 'notauth'
      : c === 10
        ? 'notzone'
        : c === 16
          ? 'badvers'
          : c === 23
            ? 'badcookie'
            : `rcode${c}`;
const OPCODES = ['query', 'iquery', 'status', 'opcode3', 'notify', 'update'];
const opcodeText = (c: number) => OPCODES[c] ?? `opcode${c}`;

/** Skips a (possibly compressed) name; -1 when it runs off the end or loops. */
function skipName(b: Buffer, pos: number): number {
  for (let hops = 0; hops < 128; hops++) {
    if (pos >= b.length) return -1;
    const l = b[pos];
    if (l === 0) return pos + 1;
    if ((l & 0xc0) === 0xc0) return pos + 2 <= b.length ? pos + 2 : -1;
    if (l > 63) return -1;
    pos += 1 + l;
  }
  return -1;
}

/** Lower-case dotted text of the name at `pos` (pointers followed), for genreport's strcasecmp. */
function nameText(b: Buffer, pos: number): string {
  const labels: string[] = [];
  for (let hops = 0; hops < 128; hops++) {
    const l = b[pos];
    if (l === undefined || l === 0) break;
    if ((l & 0xc0) === 0xc0) {
      pos = ((l & 0x3f) << 8) | b[pos + 1];
      continue;
    }
    labels.push(
      b
        .subarray(pos + 1, pos + 1 + l)
        .toString('latin1')
        .toLowerCase(),
    );
    pos += 1 + l;
  }
  return labels.join('.');
}

/**
 * genreport's verdict for `reply` to `probe`: its tags, space-separated ("ok", "ok nsid",
 * "formerr noopt", …), or "tc" when the reply is truncated and genreport would retry over TCP.
 */
export function verdict(probe: Probe, zone: string, reply: Buffer): string {
  if (reply.length < 12) return 'malformed';
  const tags: string[] = [];
  let ok = true;
  const bad = (tag: string) => {
    tags.push(tag);
    ok = false;
  };
  const b2 = reply[2];
  const b3 = reply[3];
  const opcode = (b2 >> 3) & 0xf;
  const aa = (b2 & 0x04) !== 0;
  const tc = (b2 & 0x02) !== 0;
  const rd = (b2 & 0x01) !== 0;
  const ra = (b3 & 0x80) !== 0;
  const z = (b3 & 0x40) !== 0;
  const ad = (b3 & 0x20) !== 0;
  const cd = (b3 & 0x10) !== 0;
  let rcode = b3 & 0xf;
  const [qd, an, ns, ar] = [4, 6, 8, 10].map((o) => reply.readUInt16BE(o));
  let pos = 12;
  let seensoa = false;
  let seenrrsig = false;
  let seenopt = false;
  let ednsttl = 0;
  let seennsid = false;
  let seenecs = false;
  let seenexpire = false;
  let seencookie = false;
  let goodcookie = false;
  let seenecho = false;
  const z0 = zone.toLowerCase();
  try {
    if (probe.opcode !== 0 && qd !== 0) bad('non-empty-question-section');
    else
      for (let i = 0; i < qd; i++) {
        const end = skipName(reply, pos);
        if (end < 0 || end + 4 > reply.length) return 'malformed';
        if (nameText(reply, pos) !== z0 || reply.readUInt16BE(end) !== probe.type) return 'mismatch';
        pos = end + 4;
      }
    if (tc && !probe.tcp && !probe.ignore) return 'tc';
    const section = (count: number, sectionIs: 'an' | 'ns' | 'ar') => {
      if (probe.opcode !== 0 && count !== 0) {
        bad(
          `non-empty-${sectionIs === 'an' ? 'answer' : sectionIs === 'ns' ? 'authority' : 'additional'}-section`,
        );
        return true;
      }
      for (let i = 0; i < count; i++) {
        const owner = pos;
        const end = skipName(reply, pos);
        if (end < 0 || end + 10 > reply.length) return false;
        const type = reply.readUInt16BE(end);
        const klass = reply.readUInt16BE(end + 2);
        const ttl = reply.readUInt32BE(end + 4);
        const rdlen = reply.readUInt16BE(end + 8);
        const rd0 = end + 10;
        if (rd0 + rdlen > reply.length) return false;
        if (sectionIs === 'an') {
          if (type === 6 && nameText(reply, owner) === z0) seensoa = true;
          if (type === 46) seenrrsig = true;
        }
        if (sectionIs === 'ar' && type === 41) {
          if (seenopt) return false;
          seenopt = true;
          ednsttl = ttl;
          void klass;
          let o = rd0;
          while (rd0 + rdlen - o >= 4) {
            const code = reply.readUInt16BE(o);
            const len = reply.readUInt16BE(o + 2);
            o += 4;
            if (rd0 + rdlen - o < len) return false;
            if (code === 3 && len > 0) seennsid = true;
            if (code === 8) seenecs = true;
            if (code === 9 && len === 4) seenexpire = true;
            if (code === 10 && len >= 16 && len <= 40) {
              seencookie = true;
              if (reply.subarray(o, o + 8).equals(COOKIE.subarray(4))) goodcookie = true;
              else if (probe.cookie) ok = false;
            }
            if (code === 100) seenecho = true;
            o += len;
          }
          if (o !== rd0 + rdlen) return false;
        }
        pos = rd0 + rdlen;
      }
      return true;
    };
    if (!section(an, 'an') || !section(ns, 'ns') || !section(ar, 'ar')) return 'malformed';
    if (pos !== reply.length) return 'malformed';
  } catch {
    return 'malformed';
  }
  rcode += (ednsttl >>> 24) << 4;
  let addrcode = true;
  if (probe.opcode !== opcode) bad(opcodeText(opcode));
  if (probe.version === 0) {
    if (
      probe.opcode === 0 &&
      ((rcode !== 0 && !probe.cookie) || (rcode !== 0 && (rcode !== 23 || !seencookie) && probe.cookie))
    ) {
      bad(rcodeText(rcode));
      addrcode = false;
    }
    if (probe.opcode !== 0 && rcode !== 4) {
      bad(rcodeText(rcode));
      addrcode = false;
    }
  }
  void addrcode;
  if (probe.version !== 0 && rcode !== 16) bad(rcodeText(rcode));
  const ednsvers = (ednsttl >>> 16) & 0xff;
  if (seenopt && ednsvers !== 0) bad('version-not-zero');
  if (seenopt && ((ednsvers < probe.version && rcode !== 16) || (ednsvers >= probe.version && rcode === 16)))
    bad('badversion');
  if (!seenopt && probe.udpsize) bad('noopt');
  if (seenopt && probe.udpsize === 0) bad('opt');
  if (probe.type === 6 && probe.version === 0 && !probe.ignore && !seensoa && rcode === 0) bad('nosoa');
  if (probe.type === 6 && seensoa && (probe.version !== 0 || rcode !== 0)) bad('soa');
  if (seenecho) bad('echoed');
  if (seenopt && probe.eflags & 0x8000 && (ednsttl & 0x8000) === 0 && seenrrsig) bad('nodo');
  if (seenopt && probe.eflags & 0x8000 && probe.cd && ednsttl & 0x8000 && !cd && seenrrsig) bad('nocd');
  if (!aa && probe.version === 0 && rcode === 0 && probe.opcode === 0) bad('noaa');
  if (aa && probe.opcode !== 0) bad('aa');
  if (ra && probe.opcode) bad('ra');
  if (rd && (probe.opcode || !probe.rd)) bad('rd');
  if (!rd && probe.rd && probe.opcode === 0) bad('nord');
  if (ad && (probe.opcode || (!probe.ad && (probe.eflags & 0x8000) === 0))) bad('ad');
  if (cd && (probe.opcode || !probe.cd)) bad('cd');
  if (z) bad('z');
  if ((ednsttl & 0x7fff) !== 0) bad('mbz');
  if (probe.ignore && reply.length > (probe.udpsize || 512)) bad('toobig');
  if (ok) tags.push('ok');
  if (seennsid) tags.push('nsid');
  if (seenexpire) tags.push('expire');
  if (seencookie && goodcookie && probe.cookie) tags.push(rcode === 23 ? 'cookie+badcookie' : 'cookie');
  else if (seencookie && probe.cookie)
    tags.push(rcode === 23 ? 'cookie-mismatch+badcookie' : 'cookie-mismatch');
  else if (seencookie) tags.push('cookie');
  if (seenecs) tags.push('subnet');
  return tags.join(' ');
}

function udp(port: number, msg: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on('message', (m) => {
      if (m.length < 2 || m.readUInt16BE(0) !== msg.readUInt16BE(0)) return;
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.send(msg, port, '127.0.0.1');
  });
}

function tcp(port: number, msg: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const done = (r: Buffer | undefined) => {
      clearTimeout(t);
      c.destroy();
      resolve(r);
    };
    const t = setTimeout(() => done(undefined), timeoutMs);
    c.on('connect', () => c.write(Buffer.concat([u16(msg.length), msg])));
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0))
        done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    c.on('error', () => done(undefined));
  });
}

/** Runs one probe as genreport does (UDP tried 3 times, TCP when asked or after TC): its verdict. */
export async function runProbe(port: number, probe: Probe, zone: string): Promise<string> {
  const msg = request(probe, zone, 1 + Math.floor(Math.random() * 65534));
  let reply: Buffer | undefined;
  if (!probe.tcp) for (let i = 0; i < 3 && !reply; i++) reply = await udp(port, msg, 1000);
  if (!reply && !probe.tcp) return 'timeout';
  let v = reply ? verdict(probe, zone, reply) : 'tc';
  if (v === 'tc') {
    reply = await tcp(port, msg, 3000);
    v = reply ? verdict({ ...probe, tcp: true }, zone, reply) : 'timeout';
  }
  return v;
}
