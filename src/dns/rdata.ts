/**
 * RDATA on the wire: reading it out of a message with names expanded (readRdata), and printing it
 * in the presentation format dig (BIND 9.18) uses in single-line mode (rdataToText).
 *
 * Anything rdataToText cannot parse for its type, and every type without a printer here, comes out
 * in the RFC 3597 §5 generic form `\# <len> <hex>`, so the text never loses bytes.
 */
import { formatIPv6 } from '../ip-text.js';
import { nameToText, readName, WireError } from './name.js';
import { fixedLength, RDATA_LAYOUTS } from './rdata-layout.js';
import { hasMnemonic, TYPE, typeToText } from './types.js';

/** RFC 1035 §3.2.1: RDLENGTH is 16 bits; BIND rejects expanded rdata longer than that. */
const MAX_RDATA = 0xffff;

// ---------------------------------------------------------------------------------------------
// readRdata

/**
 * The RDATA at msg[off, off+len) as a standalone Buffer. Names in the types whose layout
 * (dns/rdata-layout.ts) may carry compressed names are expanded and the layout is checked; other
 * types are copied unchanged (RFC 3597 §4: unknown rdata is opaque and must be kept byte-exact).
 * Throws WireError when the rdata is malformed for its type.
 */
export function readRdata(msg: Buffer, off: number, len: number, type: number): Buffer {
  const end = off + len;
  if (off < 0 || len < 0 || end > msg.length) throw new WireError('rdata runs past end of message');
  const fixed = fixedLength(type);
  if (fixed !== undefined && len !== fixed) {
    throw new WireError(`${typeToText(type)} rdata must be ${fixed} octets, got ${len}`);
  }
  const layout = RDATA_LAYOUTS.get(type);
  if (!layout || layout.names === 'none' || layout.names === 'tabled')
    return Buffer.from(msg.subarray(off, end));

  const what = `${typeToText(type)} rdata`;
  const parts: Buffer[] = [];
  let pos = off;
  for (const field of layout.fields) {
    if (field === 'name') {
      const { name, end: after } = readName(msg, pos);
      if (after > end) throw new WireError(`${what}: name runs past end of rdata`);
      parts.push(name);
      pos = after;
    } else if (field === 'string' || field === 'string1') {
      if (pos >= end) throw new WireError(`${what}: missing character-string`);
      const next = pos + 1 + msg[pos];
      if (next > end) throw new WireError(`${what}: character-string runs past end of rdata`);
      parts.push(msg.subarray(pos, next));
      pos = next;
    } else if (typeof field !== 'number') {
      // The rest (finer rules for it are rdataProblem's).
      parts.push(msg.subarray(pos, end));
      pos = end;
    } else {
      if (pos + field > end) throw new WireError(`${what}: truncated (needs ${field} more octets)`);
      parts.push(msg.subarray(pos, pos + field));
      pos += field;
    }
  }
  if (pos !== end) throw new WireError(`${what}: ${end - pos} octets left over`);
  const out = Buffer.concat(parts);
  if (out.length > MAX_RDATA) throw new WireError(`${what} longer than 65535 octets once expanded`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading uncompressed rdata for printing

/** Thrown inside printers when rdata does not fit its type; rdataToText turns it into `\#`. */
class BadRdata extends Error {}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  get left(): number {
    return this.buf.length - this.pos;
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new BadRdata('truncated');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  rest(): Buffer {
    return this.bytes(this.left);
  }

  /** <character-string> (RFC 1035 §3.3): length octet + data. */
  string(): Buffer {
    return this.bytes(this.u8());
  }

  /** An uncompressed name (stored rdata never holds pointers), as its wire bytes. */
  name(): Buffer {
    const start = this.pos;
    let p = this.pos;
    for (;;) {
      if (p >= this.buf.length) throw new BadRdata('name runs past end of rdata');
      const n = this.buf[p];
      if (n === 0) break;
      if (n > 63) throw new BadRdata('compressed or extended label in rdata');
      p += 1 + n;
    }
    p++;
    if (p - start > 255) throw new BadRdata('name longer than 255 octets');
    this.pos = p;
    return this.buf.subarray(start, p);
  }

  nameText(): string {
    return nameToText(this.name());
  }

  end(): void {
    if (this.left !== 0) throw new BadRdata('trailing octets');
  }
}

// ---------------------------------------------------------------------------------------------
// Text helpers

/** dig splits long base64 and hex fields into 56-character words in single-line mode. */
const SPLIT = 56;

function split(s: string): string {
  if (s.length <= SPLIT) return s;
  const words: string[] = [];
  for (let i = 0; i < s.length; i += SPLIT) words.push(s.slice(i, i + SPLIT));
  return words.join(' ');
}

const hex = (b: Buffer): string => b.toString('hex').toUpperCase();
const base64 = (b: Buffer): string => b.toString('base64');

function ddd(c: number): string {
  return `\\${c.toString().padStart(3, '0')}`;
}

/**
 * A quoted <character-string> (RFC 1035 §5.1) as BIND prints it: '"' and '\' escaped with '\',
 * octets outside 0x20-0x7e as \DDD, everything else (including ';' and space) literal.
 */
function quoted(b: Buffer): string {
  let s = '"';
  for (const c of b) {
    if (c < 0x20 || c >= 0x7f) s += ddd(c);
    else if (c === 0x22 || c === 0x5c) s += `\\${String.fromCharCode(c)}`;
    else s += String.fromCharCode(c);
  }
  return `${s}"`;
}

function ipv4(b: Buffer, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** IPv6 text as BIND/glibc inet_ntop writes it (RFC 5952 form, dotted tail for ::a.b.c.d, ::ffff:a.b.c.d). */
const ipv6 = (b: Buffer, off = 0): string => formatIPv6(b, off);

/**
 * RRSIG/SIG times (RFC 4034 §3.2): YYYYMMDDHHmmSS in UTC. The 32-bit value is taken as the
 * instant within 2^31 s of now (RFC 1982 serial arithmetic), as BIND's dns_time32_totext does,
 * so dig's rendering of far-off times depends on the current date too.
 */
function timeText(v: number, nowMs = Date.now()): string {
  const now = Math.floor(nowMs / 1000);
  const ahead = (v - now) >>> 0; // (value - now) mod 2^32
  const t = ahead > 0 && ahead < 0x80000000 ? now + ahead : now - ((now - v) >>> 0);
  const d = new Date(t * 1000);
  const p = (n: number, w = 2) => n.toString().padStart(w, '0');
  return (
    p(d.getUTCFullYear(), 4) +
    p(d.getUTCMonth() + 1) +
    p(d.getUTCDate()) +
    p(d.getUTCHours()) +
    p(d.getUTCMinutes()) +
    p(d.getUTCSeconds())
  );
}

const B32HEX = '0123456789ABCDEFGHIJKLMNOPQRSTUV';

/** Base 32 "extended hex" without padding (RFC 4648 §7; RFC 5155 §3.3 next hashed owner). */
function base32hex(b: Buffer): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const c of b) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out += B32HEX[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32HEX[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * NSEC-style type bitmap (RFC 4034 §4.1.2) as mnemonics. Checks what BIND checks: windows in
 * increasing order, 1-32 octets each, no trailing zero octet.
 */
function typeBitmap(b: Buffer, allowEmpty: boolean): string[] {
  const types: string[] = [];
  let pos = 0;
  let lastWindow = -1;
  if (b.length === 0 && !allowEmpty) throw new BadRdata('empty type bitmap');
  while (pos < b.length) {
    if (pos + 2 > b.length) throw new BadRdata('truncated bitmap window');
    const window = b[pos];
    const len = b[pos + 1];
    if (window <= lastWindow) throw new BadRdata('bitmap windows out of order');
    if (len < 1 || len > 32 || pos + 2 + len > b.length) throw new BadRdata('bad bitmap length');
    if (b[pos + 1 + len] === 0) throw new BadRdata('trailing zero octet in bitmap');
    for (let i = 0; i < len; i++) {
      const octet = b[pos + 2 + i];
      for (let bit = 0; bit < 8; bit++) {
        if (octet & (0x80 >> bit)) types.push(typeToText(window * 256 + i * 8 + bit));
      }
    }
    lastWindow = window;
    pos += 2 + len;
  }
  return types;
}

const joinTypes = (types: string[]): string => (types.length ? ` ${types.join(' ')}` : '');

/** BIND has an implementation, though no mnemonic, for its private KEYDATA type. */
const KEYDATA = 65533;

/** Old-style type fields (SIG type covered, NXT bitmap): mnemonic if BIND knows the type,
 * otherwise the bare number (BIND's sig_24.c / nxt_30.c). */
function oldTypeText(t: number): string {
  if (t === 0 || !(hasMnemonic(t) || t === KEYDATA)) return String(t);
  return typeToText(t);
}

// DNSSEC algorithm mnemonics (RFC 4034 App. A.1, RFC 8624) as BIND's dns_secalg_totext spells them.
const SECALG = new Map<number, string>([
  [1, 'RSAMD5'],
  [2, 'DH'],
  [3, 'DSA'],
  [5, 'RSASHA1'],
  [6, 'NSEC3DSA'],
  [7, 'NSEC3RSASHA1'],
  [8, 'RSASHA256'],
  [10, 'RSASHA512'],
  [12, 'ECCGOST'],
  [13, 'ECDSAP256SHA256'],
  [14, 'ECDSAP384SHA384'],
  [15, 'ED25519'],
  [16, 'ED448'],
  [252, 'INDIRECT'],
  [253, 'PRIVATEDNS'],
  [254, 'PRIVATEOID'],
]);

// CERT types (RFC 4398 §2.1).
const CERT_TYPES = new Map<number, string>([
  [1, 'PKIX'],
  [2, 'SPKI'],
  [3, 'PGP'],
  [4, 'IPKIX'],
  [5, 'ISPKI'],
  [6, 'IPGP'],
  [7, 'ACPKIX'],
  [8, 'IACPKIX'],
  [253, 'URI'],
  [254, 'OID'],
]);

// ---------------------------------------------------------------------------------------------
// Printers, one per rdata layout

type Printer = (r: Reader) => string;

const name1: Printer = (r) => r.nameText();
const name2: Printer = (r) => `${r.nameText()} ${r.nameText()}`;
const prefName: Printer = (r) => `${r.u16()} ${r.nameText()}`;

/** TXT-like: one or more <character-string>s (RFC 1035 §3.3.14). */
const strings: Printer = (r) => {
  const out: string[] = [];
  do out.push(quoted(r.string()));
  while (r.left > 0);
  return out.join(' ');
};

const soa: Printer = (r) => {
  const mname = r.nameText();
  const rname = r.nameText();
  const n = [r.u32(), r.u32(), r.u32(), r.u32(), r.u32()];
  return `${mname} ${rname} ${n.join(' ')}`;
};

const a: Printer = (r) => ipv4(r.bytes(4));
const aaaa: Printer = (r) => ipv6(r.bytes(16));

/** RFC 1035 §3.4.2: address, protocol, bitmap of ports. */
const wks: Printer = (r) => {
  const addr = ipv4(r.bytes(4));
  const proto = r.u8();
  const bitmap = r.rest();
  const ports: number[] = [];
  bitmap.forEach((octet, i) => {
    for (let bit = 0; bit < 8; bit++) if (octet & (0x80 >> bit)) ports.push(i * 8 + bit);
  });
  return [addr, proto, ...ports].join(' ');
};

const hinfo: Printer = (r) => `${quoted(r.string())} ${quoted(r.string())}`;

/** RFC 1183 §3.2: ISDN address and optional subaddress. */
const isdn: Printer = (r) => {
  const addr = quoted(r.string());
  return r.left > 0 ? `${addr} ${quoted(r.string())}` : addr;
};

const x25: Printer = (r) => quoted(r.string());
const gpos: Printer = (r) => `${quoted(r.string())} ${quoted(r.string())} ${quoted(r.string())}`;

const px: Printer = (r) => `${r.u16()} ${r.nameText()} ${r.nameText()}`;

const srv: Printer = (r) => `${r.u16()} ${r.u16()} ${r.u16()} ${r.nameText()}`;

const naptr: Printer = (r) => {
  const order = r.u16();
  const pref = r.u16();
  const texts = [quoted(r.string()), quoted(r.string()), quoted(r.string())];
  return `${order} ${pref} ${texts.join(' ')} ${r.nameText()}`;
};

/** RFC 1876 §3 with BIND's rounding of the size/precision fields ("%lum" or "0.%02lum"). */
function locSize(v: number): string {
  const mant = v >> 4;
  const exp = v & 0x0f;
  if (mant > 9 || exp > 9) throw new BadRdata('LOC size out of range');
  return exp > 1 ? `${mant * 10 ** (exp - 2)}m` : `0.${(mant * 10 ** exp).toString().padStart(2, '0')}m`;
}

function locAngle(v: number, max: number, pos: string, neg: string): string {
  const ref = 0x80000000;
  if (v < ref - max * 3600000 || v > ref + max * 3600000) throw new BadRdata('LOC angle out of range');
  const abs = v >= ref ? v - ref : ref - v;
  const ms = abs % 1000;
  const s = Math.floor(abs / 1000) % 60;
  const m = Math.floor(abs / 60000) % 60;
  const d = Math.floor(abs / 3600000);
  return `${d} ${m} ${s}.${ms.toString().padStart(3, '0')} ${v >= ref ? pos : neg}`;
}

const loc: Printer = (r) => {
  if (r.u8() !== 0) throw new BadRdata('LOC version not 0');
  const size = r.u8();
  const hp = r.u8();
  const vp = r.u8();
  // BIND accepts a zero octet as "0.00m" but otherwise requires mantissa 1-9.
  for (const v of [size, hp, vp]) if (v !== 0 && v >> 4 === 0) throw new BadRdata('LOC mantissa 0');
  const lat = locAngle(r.u32(), 90, 'N', 'S');
  const lon = locAngle(r.u32(), 180, 'E', 'W');
  const alt = r.u32();
  const base = 10000000; // altitude is in cm above -100000 m
  const below = alt < base;
  const cm = below ? base - alt : alt - base;
  const altText = `${below ? '-' : ''}${Math.floor(cm / 100)}.${(cm % 100).toString().padStart(2, '0')}m`;
  return `${lat} ${lon} ${altText} ${locSize(size)} ${locSize(hp)} ${locSize(vp)}`;
};

/** RFC 2535 §5.2 NXT: next name and the original (window-less) type bitmap, which BIND wants
 * without the extension bit (type 0), at most 16 octets and without a trailing zero octet. */
const nxt: Printer = (r) => {
  const next = r.nameText();
  const bitmap = r.rest();
  if (bitmap.length > 0 && (bitmap[0] & 0x80 || bitmap.length > 16 || bitmap[bitmap.length - 1] === 0)) {
    throw new BadRdata('bad NXT bitmap');
  }
  const types: string[] = [];
  bitmap.forEach((octet, i) => {
    for (let bit = 0; bit < 8; bit++) if (octet & (0x80 >> bit)) types.push(oldTypeText(i * 8 + bit));
  });
  return next + joinTypes(types);
};

/** Digest lengths BIND insists on: SHA-1 (RFC 4034), SHA-256 (RFC 4509), SHA-384 (RFC 6605). */
const DS_DIGEST_LENGTH = new Map([
  [1, 20],
  [2, 32],
  [4, 48],
]);

/** DS, CDS, DLV, TA (RFC 4034 §5.3): key tag, algorithm, digest type, hex digest. */
const ds: Printer = (r) => {
  const tag = r.u16();
  const alg = r.u8();
  const digestType = r.u8();
  const digest = r.rest();
  const want = DS_DIGEST_LENGTH.get(digestType);
  if ((want !== undefined && digest.length !== want) || digest.length === 0) {
    throw new BadRdata('bad digest length');
  }
  return `${tag} ${alg} ${digestType} ${split(hex(digest))}`;
};

/** RFC 4255 §3.1; BIND checks the length of SHA-1 (1) and SHA-256 (2) fingerprints. */
const sshfp: Printer = (r) => {
  const alg = r.u8();
  const fpType = r.u8();
  const fp = r.rest();
  if ((fpType === 1 && fp.length !== 20) || (fpType === 2 && fp.length !== 32)) {
    throw new BadRdata('bad fingerprint length');
  }
  return fp.length ? `${alg} ${fpType} ${split(hex(fp))}` : `${alg} ${fpType}`;
};

/** What BIND demands of key material: present, and starting with a name for PRIVATEDNS
 * (RFC 4034 App. A.1.1). */
function checkKey(alg: number, key: Buffer): void {
  if (key.length === 0) throw new BadRdata('empty key');
  if (alg === 253) new Reader(key).name();
}

/** DNSKEY, CDNSKEY, KEY, RKEY (RFC 4034 §2.2): flags, protocol, algorithm, base64 key. */
function keyPrinter(type: number): Printer {
  return (r) => {
    const flags = r.u16();
    const proto = r.u8();
    const alg = r.u8();
    const head = `${flags} ${proto} ${alg}`;
    if (type === TYPE.RKEY && flags !== 0) throw new BadRdata('RKEY flags must be 0');
    // RFC 2535 §3.1.2: a KEY with both "no key" bits set stops after the algorithm.
    if (type === TYPE.KEY && (flags & 0xc000) === 0xc000) return head;
    const key = r.rest();
    checkKey(alg, key);
    return `${head} ${split(base64(key))}`;
  };
}

/** RRSIG (RFC 4034 §3.2) and SIG (RFC 2535 §4.1, type covered printed the old way). */
function sigPrinter(typeText: (t: number) => string): Printer {
  return (r) => {
    const covered = typeText(r.u16());
    const alg = r.u8();
    const labels = r.u8();
    const ttl = r.u32();
    const exp = timeText(r.u32());
    const inc = timeText(r.u32());
    const tag = r.u16();
    const signer = r.nameText();
    const sig = r.rest();
    if (sig.length === 0) throw new BadRdata('empty signature');
    return `${covered} ${alg} ${labels} ${ttl} ${exp} ${inc} ${tag} ${signer} ${split(base64(sig))}`;
  };
}
const rrsig = sigPrinter(typeToText);
const sig = sigPrinter(oldTypeText);

const nsec: Printer = (r) => {
  const next = r.nameText();
  return next + joinTypes(typeBitmap(r.rest(), false));
};

const salt = (b: Buffer): string => (b.length ? hex(b) : '-');

/** RFC 5155 §3.3: hash algorithm, flags, iterations, salt, next hashed owner, type bitmap. */
const nsec3: Printer = (r) => {
  const hashAlg = r.u8();
  const head = `${hashAlg} ${r.u8()} ${r.u16()} ${salt(r.string())}`;
  const next = r.string();
  // BIND wants a non-empty hash, of SHA-1 length (20) for hash algorithm 1.
  if (next.length === 0 || (hashAlg === 1 && next.length !== 20)) {
    throw new BadRdata('bad next hashed owner length');
  }
  return `${head} ${base32hex(next)}${joinTypes(typeBitmap(r.rest(), true))}`;
};

/** RFC 5155 §4.3. */
const nsec3param: Printer = (r) => `${r.u8()} ${r.u8()} ${r.u16()} ${salt(r.string())}`;

/** TLSA (RFC 6698 §2.2) and SMIMEA (RFC 8162). */
const tlsa: Printer = (r) => {
  const head = `${r.u8()} ${r.u8()} ${r.u8()}`;
  const data = r.rest();
  if (data.length === 0) throw new BadRdata('empty association data');
  return `${head} ${split(hex(data))}`;
};

/** Opaque base64 data: OPENPGPKEY (RFC 7929 §2.3), DHCID (RFC 4701 §3.3), HHIT, BRID (RFC 9886). */
const base64Data: Printer = (r) => {
  const data = r.rest();
  if (data.length === 0) throw new BadRdata('empty data');
  return split(base64(data));
};

/** RFC 8976 §2.2: serial, scheme, hash algorithm, digest. BIND wants 48 octets for SHA-384 (1),
 * 64 for SHA-512 (2), and at least 12 otherwise (§2.2.4). */
const zonemd: Printer = (r) => {
  const serial = r.u32();
  const scheme = r.u8();
  const alg = r.u8();
  const head = `${serial} ${scheme} ${alg}`;
  const digest = r.rest();
  const want = alg === 1 ? 48 : alg === 2 ? 64 : undefined;
  if (want !== undefined ? digest.length !== want : digest.length < 12) {
    throw new BadRdata('bad ZONEMD digest length');
  }
  return `${head} ${split(hex(digest))}`;
};

/** RFC 4398 §2.2: type, key tag, algorithm (mnemonics where known), base64 certificate. */
const cert: Printer = (r) => {
  const certType = r.u16();
  const tag = r.u16();
  const alg = r.u8();
  const data = r.rest();
  if (data.length === 0) throw new BadRdata('empty certificate');
  const typeText = CERT_TYPES.get(certType) ?? String(certType);
  const algText = SECALG.get(alg) ?? String(alg);
  return `${typeText} ${tag} ${algText} ${split(base64(data))}`;
};

/** RFC 7043 §3.2/§4.2: hex pairs joined by '-'. */
function euiPrinter(len: number): Printer {
  return (r) => [...r.bytes(len)].map((c) => c.toString(16).padStart(2, '0')).join('-');
}

/** RFC 7553 §4.4: priority, weight, target as a quoted string. */
const uri: Printer = (r) => {
  const head = `${r.u16()} ${r.u16()}`;
  return `${head} ${quoted(r.rest())}`;
};

/** RFC 8659 §4.1: flags, tag (alphanumerics; BIND does not enforce the 15-octet limit), value. */
const caa: Printer = (r) => {
  const flags = r.u8();
  const tag = r.string();
  if (!/^[A-Za-z0-9]+$/.test(tag.toString('latin1'))) {
    throw new BadRdata('bad CAA tag');
  }
  return `${flags} ${tag.toString('latin1')} ${quoted(r.rest())}`;
};

/** RFC 6742: locators as four 16-bit hex groups without leading zeros (NID, L64). */
function locator64(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

const nid: Printer = (r) => `${r.u16()} ${locator64(r.bytes(8))}`;
const l32: Printer = (r) => `${r.u16()} ${ipv4(r.bytes(4))}`;

/** RFC 4025 §3: precedence, gateway type, algorithm, gateway, base64 key. */
const ipseckey: Printer = (r) => {
  const prec = r.u8();
  const gwType = r.u8();
  const alg = r.u8();
  let gw: string;
  if (gwType === 0) gw = '.';
  else if (gwType === 1) gw = ipv4(r.bytes(4));
  else if (gwType === 2) gw = ipv6(r.bytes(16));
  else if (gwType === 3) gw = r.nameText();
  else throw new BadRdata('unknown IPSECKEY gateway type');
  // BIND requires key material even though RFC 4025 §2.4 allows none.
  const key = r.rest();
  if (key.length === 0) throw new BadRdata('empty IPSECKEY key');
  return `${prec} ${gwType} ${alg} ${gw} ${split(base64(key))}`;
};

/** RFC 7477 §2: SOA serial, flags, type bitmap. */
const csync: Printer = (r) => `${r.u32()} ${r.u16()}${joinTypes(typeBitmap(r.rest(), true))}`;

/** RFC 8777 §4.2: precedence, discovery-optional bit, relay type, relay. */
const amtrelay: Printer = (r) => {
  const prec = r.u8();
  const dt = r.u8();
  const d = dt >> 7;
  const relayType = dt & 0x7f;
  let relay: string;
  if (relayType === 0) relay = '.';
  else if (relayType === 1) relay = ipv4(r.bytes(4));
  else if (relayType === 2) relay = ipv6(r.bytes(16));
  else if (relayType === 3) relay = r.nameText();
  else throw new BadRdata('unknown AMTRELAY relay type');
  return `${prec} ${d} ${relayType} ${relay}`;
};

/** RFC 3123: address prefix lists, "[!]afi:address/prefix" per item. */
const apl: Printer = (r) => {
  const items: string[] = [];
  while (r.left > 0) {
    const afi = r.u16();
    const prefix = r.u8();
    const nl = r.u8();
    const neg = nl & 0x80 ? '!' : '';
    const afd = r.bytes(nl & 0x7f);
    let addr: string;
    if (afi === 1) {
      if (afd.length > 4 || prefix > 32) throw new BadRdata('bad APL IPv4 item');
      addr = ipv4(Buffer.concat([afd, Buffer.alloc(4 - afd.length)]));
    } else if (afi === 2) {
      if (afd.length > 16 || prefix > 128) throw new BadRdata('bad APL IPv6 item');
      addr = ipv6(Buffer.concat([afd, Buffer.alloc(16 - afd.length)]));
    } else {
      throw new BadRdata('unknown APL address family');
    }
    // RFC 3123 §4: AFDPART must not carry trailing zero octets.
    if (afd.length > 0 && afd[afd.length - 1] === 0) throw new BadRdata('APL trailing zero');
    items.push(`${neg}${afi}:${addr}/${prefix}`);
  }
  return items.join(' ');
};

/** RFC 2874 §3.1: prefix length, address suffix, prefix name. */
const a6: Printer = (r) => {
  const plen = r.u8();
  if (plen > 128) throw new BadRdata('A6 prefix length > 128');
  const octets = 16 - Math.floor(plen / 8);
  const addr = Buffer.alloc(16);
  r.bytes(octets).copy(addr, 16 - octets);
  // Bits covered by the prefix must be zero in the suffix.
  if (octets > 0 && addr[16 - octets] & ~(0xff >> (plen % 8)) & 0xff) throw new BadRdata('A6 pad bits set');
  // With a 128-bit prefix the suffix is empty and BIND prints nothing between the spaces.
  const suffix = plen === 128 ? '' : ipv6(addr);
  return plen > 0 ? `${plen} ${suffix} ${r.nameText()}` : `${plen} ${suffix}`;
};

/** RFC 8005 §5: HIT and public key, then rendezvous servers. */
const hip: Printer = (r) => {
  const hitLen = r.u8();
  const alg = r.u8();
  const pkLen = r.u16();
  const hit = r.bytes(hitLen);
  const pk = r.bytes(pkLen);
  if (hitLen === 0 || pkLen === 0) throw new BadRdata('empty HIT or key');
  const out = [`${alg}`, hex(hit), base64(pk)];
  while (r.left > 0) out.push(r.nameText());
  return out.join(' ');
};

/** RFC 9460 §2.1 SVCB/HTTPS key names BIND 9.18 prints; others (incl. dohpath=7) as keyNNN. */
const SVC_KEYS = ['mandatory', 'alpn', 'no-default-alpn', 'port', 'ipv4hint', 'ech', 'ipv6hint'];

const svcKey = (k: number): string => SVC_KEYS[k] ?? `key${k}`;

/** Keys whose value may not be empty: mandatory, alpn, port, ipv4hint, ipv6hint, dohpath. */
const NON_EMPTY_SVC_KEYS = new Set([0, 1, 3, 4, 6, 7]);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** RFC 9461 §5: a relative URI template (leading '/') in UTF-8 containing "{?dns}". */
function validDohpath(v: Buffer): boolean {
  try {
    return v.length >= 7 && v[0] === 0x2f && utf8.decode(v).includes('{?dns}');
  } catch {
    return false;
  }
}

/** An alpn-id inside the quoted alpn list: ',' and '\' are escaped once for the list and once
 * more for the quoted string (RFC 9460 App. A.1), so they print as \\, and \\\\. */
function alpnId(b: Buffer): string {
  let s = '';
  for (const c of b) {
    if (c < 0x21 || c >= 0x7f) s += ddd(c);
    else if (c === 0x2c) s += '\\\\,';
    else if (c === 0x5c) s += '\\\\\\\\';
    else if (c === 0x22) s += '\\"';
    else s += String.fromCharCode(c);
  }
  return s;
}

function svcValue(key: number, v: Buffer): string {
  const list = (size: number, fmt: (b: Buffer, off: number) => string): string => {
    if (v.length === 0 || v.length % size !== 0) throw new BadRdata('bad SvcParam list length');
    const items: string[] = [];
    for (let i = 0; i < v.length; i += size) items.push(fmt(v, i));
    return items.join(',');
  };
  switch (key) {
    case 0: {
      const keys = list(2, (b, i) => svcKey(b.readUInt16BE(i)));
      for (let i = 2; i < v.length; i += 2) {
        if (v.readUInt16BE(i) <= v.readUInt16BE(i - 2)) throw new BadRdata('mandatory keys out of order');
      }
      if (v.readUInt16BE(0) === 0) throw new BadRdata('mandatory lists itself');
      return keys;
    }
    case 1: {
      const ids: string[] = [];
      const r = new Reader(v);
      while (r.left > 0) {
        const id = r.string();
        if (id.length === 0) throw new BadRdata('empty alpn-id');
        ids.push(alpnId(id));
      }
      return `"${ids.join(',')}"`;
    }
    case 2:
      throw new BadRdata('no-default-alpn with a value');
    case 3:
      if (v.length !== 2) throw new BadRdata('bad port length');
      return String(v.readUInt16BE(0));
    case 4:
      return list(4, ipv4);
    case 5:
      return base64(v);
    case 6:
      return list(16, ipv6);
    case 7:
      if (!validDohpath(v)) throw new BadRdata('bad dohpath');
      return quoted(v);
    default:
      return quoted(v);
  }
}

/** RFC 9460 §2.2: priority, target, SvcParams in strictly increasing key order. */
const svcb: Printer = (r) => {
  const prio = r.u16();
  const out = [String(prio), r.nameText()];
  let last = -1;
  let haveAlpn = false;
  let mandatory: number[] = [];
  const seen = new Set<number>();
  while (r.left > 0) {
    const key = r.u16();
    const v = r.bytes(r.u16());
    if (key <= last) throw new BadRdata('SvcParamKeys out of order');
    last = key;
    seen.add(key);
    if (key === 1) haveAlpn = true;
    if (key === 2 && !haveAlpn) throw new BadRdata('no-default-alpn without alpn');
    if (key === 0) {
      mandatory = [];
      for (let i = 0; i + 1 < v.length; i += 2) mandatory.push(v.readUInt16BE(i));
    }
    if (v.length > 0) out.push(`${svcKey(key)}=${svcValue(key, v)}`);
    else if (NON_EMPTY_SVC_KEYS.has(key)) throw new BadRdata(`empty value for ${svcKey(key)}`);
    else out.push(svcKey(key));
  }
  // RFC 9460 §8: every key listed in mandatory must be present.
  for (const k of mandatory) if (!seen.has(k)) throw new BadRdata('mandatory key missing');
  return out.join(' ');
};

/** draft-ietf-dnsop-generalized-notify: RR type, scheme (1 = NOTIFY), port, target. */
const dsync: Printer = (r) => {
  const rrtype = typeToText(r.u16());
  const scheme = r.u8();
  return `${rrtype} ${scheme === 1 ? 'NOTIFY' : scheme} ${r.u16()} ${r.nameText()}`;
};

/** RFC 2230: preference and name, like MX. */
const kx: Printer = prefName;

/** BIND prints NSAP as 0x + lower-case hex (RFC 1706 §5). */
const nsap: Printer = (r) => {
  const data = r.rest();
  if (data.length === 0) throw new BadRdata('empty NSAP');
  return `0x${data.toString('hex')}`;
};

/** EID, NIMLOC: hex data. */
const hexData: Printer = (r) => {
  const data = r.rest();
  if (data.length === 0) throw new BadRdata('empty data');
  return split(hex(data));
};

/** ATM address: format 0 is AESA (hex), format 1 is E.164 ("+" then digits). */
const atma: Printer = (r) => {
  const format = r.u8();
  const data = r.rest();
  if (data.length === 0) throw new BadRdata('empty ATMA');
  if (format === 0) return data.toString('hex');
  if (format === 1) {
    if (!/^[0-9]+$/.test(data.toString('latin1'))) throw new BadRdata('bad E.164 digits');
    return `+${data.toString('latin1')}`;
  }
  throw new BadRdata('unknown ATMA format');
};

/** draft-eastlake-kitchen-sink: meaning, coding, subcoding, base64 data. */
const sink: Printer = (r) => {
  const head = `${r.u8()} ${r.u8()} ${r.u8()}`;
  const data = r.rest();
  return data.length ? `${head} ${split(base64(data))}` : head;
};

/** draft-durand-doa-over-dns: enterprise, type, location, media type, base64 data or "-". */
const doa: Printer = (r) => {
  const head = `${r.u32()} ${r.u32()} ${r.u8()} ${quoted(r.string())}`;
  const data = r.rest();
  return `${head} ${data.length ? base64(data) : '-'}`;
};

const PRINTERS = new Map<number, Printer>([
  [TYPE.A, a],
  [TYPE.NS, name1],
  [TYPE.MD, name1],
  [TYPE.MF, name1],
  [TYPE.CNAME, name1],
  [TYPE.SOA, soa],
  [TYPE.MB, name1],
  [TYPE.MG, name1],
  [TYPE.MR, name1],
  [TYPE.WKS, wks],
  [TYPE.PTR, name1],
  [TYPE.HINFO, hinfo],
  [TYPE.MINFO, name2],
  [TYPE.MX, prefName],
  [TYPE.TXT, strings],
  [TYPE.RP, name2],
  [TYPE.AFSDB, prefName],
  [TYPE.X25, x25],
  [TYPE.ISDN, isdn],
  [TYPE.RT, prefName],
  [TYPE.NSAP, nsap],
  [TYPE['NSAP-PTR'], name1],
  [TYPE.SIG, sig],
  [TYPE.KEY, keyPrinter(TYPE.KEY)],
  [TYPE.PX, px],
  [TYPE.GPOS, gpos],
  [TYPE.AAAA, aaaa],
  [TYPE.LOC, loc],
  [TYPE.NXT, nxt],
  [TYPE.EID, hexData],
  [TYPE.NIMLOC, hexData],
  [TYPE.SRV, srv],
  [TYPE.ATMA, atma],
  [TYPE.NAPTR, naptr],
  [TYPE.KX, kx],
  [TYPE.CERT, cert],
  [TYPE.A6, a6],
  [TYPE.DNAME, name1],
  [TYPE.SINK, sink],
  [TYPE.APL, apl],
  [TYPE.DS, ds],
  [TYPE.SSHFP, sshfp],
  [TYPE.IPSECKEY, ipseckey],
  [TYPE.RRSIG, rrsig],
  [TYPE.NSEC, nsec],
  [TYPE.DNSKEY, keyPrinter(TYPE.DNSKEY)],
  [TYPE.DHCID, base64Data],
  [TYPE.NSEC3, nsec3],
  [TYPE.NSEC3PARAM, nsec3param],
  [TYPE.TLSA, tlsa],
  [TYPE.SMIMEA, tlsa],
  [TYPE.HIP, hip],
  [TYPE.NINFO, strings],
  [TYPE.RKEY, keyPrinter(TYPE.RKEY)],
  [TYPE.TALINK, name2],
  [TYPE.CDS, ds],
  [TYPE.CDNSKEY, keyPrinter(TYPE.CDNSKEY)],
  [TYPE.OPENPGPKEY, base64Data],
  [TYPE.CSYNC, csync],
  [TYPE.ZONEMD, zonemd],
  [TYPE.SVCB, svcb],
  [TYPE.HTTPS, svcb],
  [TYPE.DSYNC, dsync],
  [TYPE.HHIT, base64Data],
  [TYPE.BRID, base64Data],
  [TYPE.SPF, strings],
  [TYPE.NID, nid],
  [TYPE.L32, l32],
  [TYPE.L64, nid],
  [TYPE.LP, prefName],
  [TYPE.EUI48, euiPrinter(6)],
  [TYPE.EUI64, euiPrinter(8)],
  [TYPE.URI, uri],
  [TYPE.CAA, caa],
  [TYPE.AVC, strings],
  [TYPE.DOA, doa],
  [TYPE.AMTRELAY, amtrelay],
  [TYPE.RESINFO, strings],
  [TYPE.WALLET, strings],
  [TYPE.TA, ds],
  [TYPE.DLV, ds],
]);

/** The RFC 3597 §5 generic form, hex split into 56-character words like dig. */
export function genericRdataText(rdata: Buffer): string {
  return rdata.length === 0 ? '\\# 0' : `\\# ${rdata.length} ${split(hex(rdata))}`;
}

/** Types rdataToText prints in their own presentation format (others print as `\#`). */
export function hasPresentation(type: number): boolean {
  return PRINTERS.has(type);
}

/**
 * Presentation text of uncompressed rdata exactly as dig (BIND 9.18) prints it on one line.
 * Unknown types and rdata that does not parse for its type give the `\#` generic form.
 */
export function rdataToText(type: number, rdata: Buffer): string {
  const printer = PRINTERS.get(type);
  if (!printer) return genericRdataText(rdata);
  try {
    const r = new Reader(rdata);
    const text = printer(r);
    r.end();
    return text;
  } catch (err) {
    if (err instanceof BadRdata || err instanceof RangeError || err instanceof WireError) {
      return genericRdataText(rdata);
    }
    throw err;
  }
}
