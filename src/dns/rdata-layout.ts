/**
 * Rdata layouts: the one table saying, for each type ns2 knows the shape of, which fields its
 * rdata has and how the domain names in it travel. Three places read it, so a new type is added
 * here only:
 *
 *   dns/rdata.ts        readRdata expands compressed names in `rfc1035` and `decompress` types
 *   dns/writer.ts       MessageWriter compresses names in `rfc1035` types only (and enters
 *                       the others' names in its table, as BIND)
 *   xfrin/validate.ts   rdataProblem (below) checks every RR of a transfer against its layout,
 *                       and serve/query.ts checks RRs that come with a query
 *
 * RFC 3597 §4: names may be compressed on output only in the RFC 1035 types (NS MD MF CNAME SOA
 * MB MG MR PTR MINFO MX); receivers also decompress RP AFSDB RT SIG PX NXT NAPTR SRV (RFC 2052
 * senders compressed SRV), and ns2 expands DNAME (RFC 6672 §2.5) and KX too, for senders that
 * compress them anyway: a label length octet ≥ 0xC0 cannot be anything but a pointer. Names in
 * every other type (RRSIG, NSEC, SVCB, …) are never compressed (RFC 4034 §6.2, RFC 9460 §2.2).
 * Types without an entry are opaque (RFC 3597) and kept byte for byte.
 */
import { TYPE, typeToText } from './types.js';

/**
 * One piece of an rdata layout: a fixed number of octets, a domain name, a <character-string>,
 * or a rule for everything that is left.
 */
export type Field =
  | number
  | 'name'
  | 'string'
  /** a <character-string> of at least one octet */
  | 'string1'
  /** the rest, possibly empty */
  | 'rest'
  /** the rest, at least one octet */
  | 'rest1'
  /** one or more <character-string>s filling the rest (TXT, SPF) */
  | 'strings'
  /** an NSEC-style type bitmap (RFC 4034 §4.1.2), at least one window */
  | 'bitmap'
  /** a type bitmap that may be empty (NSEC3, CSYNC) */
  | 'bitmap0'
  /** SvcParams (RFC 9460 §2.2): keys strictly increasing, each value inside the rdata */
  | 'svcparams'
  /** APL items (RFC 3123 §4) */
  | 'apl'
  /** octets with a 16-bit length in front (TKEY key and other data, RFC 2930 §2) */
  | 'data16';

/**
 * How the names in a type's rdata travel: `rfc1035` compressed on output and expanded on input;
 * `decompress` expanded on input, written whole; `tabled` never expanded, written whole — both
 * entered in the writer's compression table as BIND 9.18 does (dns/writer.ts); `none` opaque.
 */
export type NameCompression = 'rfc1035' | 'decompress' | 'tabled' | 'none';

export interface RdataLayout {
  readonly fields: readonly Field[];
  readonly names: NameCompression;
}

export const RDATA_LAYOUTS: ReadonlyMap<number, RdataLayout> = new Map<number, RdataLayout>([
  [TYPE.A, { fields: [4], names: 'none' }],
  [TYPE.AAAA, { fields: [16], names: 'none' }],
  [TYPE.LOC, { fields: [1, 'rest'], names: 'none' }],
  [TYPE.NS, { fields: ['name'], names: 'rfc1035' }],
  [TYPE.MD, { fields: ['name'], names: 'rfc1035' }],
  [TYPE.MF, { fields: ['name'], names: 'rfc1035' }],
  [TYPE.CNAME, { fields: ['name'], names: 'rfc1035' }],
  [TYPE.SOA, { fields: ['name', 'name', 20], names: 'rfc1035' }],
  [TYPE.MB, { fields: ['name'], names: 'rfc1035' }],
  [TYPE.MG, { fields: ['name'], names: 'rfc1035' }],
  [TYPE.MR, { fields: ['name'], names: 'rfc1035' }],
  [TYPE.WKS, { fields: [4, 1, 'rest'], names: 'none' }],
  [TYPE.PTR, { fields: ['name'], names: 'rfc1035' }],
  [TYPE.HINFO, { fields: ['string', 'string'], names: 'none' }],
  [TYPE.MINFO, { fields: ['name', 'name'], names: 'rfc1035' }],
  [TYPE.MX, { fields: [2, 'name'], names: 'rfc1035' }],
  [TYPE.TXT, { fields: ['strings'], names: 'none' }],
  [TYPE.RP, { fields: ['name', 'name'], names: 'decompress' }],
  [TYPE.AFSDB, { fields: [2, 'name'], names: 'decompress' }],
  [TYPE.X25, { fields: ['string1'], names: 'none' }],
  [TYPE.RT, { fields: [2, 'name'], names: 'decompress' }],
  [TYPE['NSAP-PTR'], { fields: ['name'], names: 'tabled' }],
  [TYPE.SIG, { fields: [18, 'name', 'rest'], names: 'decompress' }],
  [TYPE.KEY, { fields: [4, 'rest'], names: 'none' }],
  [TYPE.PX, { fields: [2, 'name', 'name'], names: 'decompress' }],
  [TYPE.GPOS, { fields: ['string1', 'string1', 'string1'], names: 'none' }],
  [TYPE.NXT, { fields: ['name', 'rest'], names: 'decompress' }],
  [TYPE.SRV, { fields: [6, 'name'], names: 'decompress' }],
  [TYPE.NAPTR, { fields: [4, 'string', 'string', 'string', 'name'], names: 'decompress' }],
  [TYPE.KX, { fields: [2, 'name'], names: 'decompress' }],
  [TYPE.CERT, { fields: [5, 'rest'], names: 'none' }],
  [TYPE.DNAME, { fields: ['name'], names: 'decompress' }],
  [TYPE.APL, { fields: ['apl'], names: 'none' }],
  [TYPE.DS, { fields: [4, 'rest1'], names: 'none' }],
  [TYPE.SSHFP, { fields: [2, 'rest1'], names: 'none' }],
  [TYPE.RRSIG, { fields: [18, 'name', 'rest1'], names: 'tabled' }],
  [TYPE.NSEC, { fields: ['name', 'bitmap'], names: 'tabled' }],
  [TYPE.DNSKEY, { fields: [4, 'rest'], names: 'none' }],
  [TYPE.DHCID, { fields: ['rest1'], names: 'none' }],
  [TYPE.NSEC3, { fields: [4, 'string', 'string1', 'bitmap0'], names: 'none' }],
  [TYPE.NSEC3PARAM, { fields: [4, 'string'], names: 'none' }],
  [TYPE.TLSA, { fields: [3, 'rest1'], names: 'none' }],
  [TYPE.SMIMEA, { fields: [3, 'rest1'], names: 'none' }],
  [TYPE.CDS, { fields: [4, 'rest1'], names: 'none' }],
  [TYPE.CDNSKEY, { fields: [4, 'rest'], names: 'none' }],
  [TYPE.CSYNC, { fields: [6, 'bitmap0'], names: 'none' }],
  [TYPE.ZONEMD, { fields: [6, 'rest1'], names: 'none' }],
  [TYPE.SVCB, { fields: [2, 'name', 'svcparams'], names: 'none' }],
  [TYPE.HTTPS, { fields: [2, 'name', 'svcparams'], names: 'none' }],
  [TYPE.SPF, { fields: ['strings'], names: 'none' }],
  [TYPE.NID, { fields: [10], names: 'none' }],
  [TYPE.L32, { fields: [6], names: 'none' }],
  [TYPE.L64, { fields: [10], names: 'none' }],
  [TYPE.LP, { fields: [2, 'name'], names: 'none' }],
  [TYPE.EUI48, { fields: [6], names: 'none' }],
  [TYPE.EUI64, { fields: [8], names: 'none' }],
  [TYPE.URI, { fields: [4, 'rest'], names: 'none' }],
  [TYPE.CAA, { fields: [1, 'string1', 'rest'], names: 'none' }],
  [TYPE.NINFO, { fields: ['strings'], names: 'none' }],
  [TYPE.TALINK, { fields: ['name', 'name'], names: 'tabled' }],
  [TYPE.AVC, { fields: ['strings'], names: 'none' }],
  // RFC 2930 §2: algorithm, inception, expiration, mode, error, key data, other data. Never in a
  // zone (a meta type); checked in queries, as BIND reads it.
  [TYPE.TKEY, { fields: ['name', 4, 4, 2, 2, 'data16', 'data16'], names: 'none' }],
  [TYPE.TA, { fields: [4, 'rest1'], names: 'none' }],
  [TYPE.DLV, { fields: [4, 'rest1'], names: 'none' }],
]);

/** The RDATA length a type always has (A: 4, AAAA: 16, EUI48: 6, …), when its layout fixes one. */
export function fixedLength(type: number): number | undefined {
  const f = RDATA_LAYOUTS.get(type)?.fields;
  return f?.length === 1 && typeof f[0] === 'number' ? f[0] : undefined;
}

class Bad extends Error {}

/**
 * Why `rdata` (uncompressed, as stored) does not fit the layout of `type`, or undefined when it
 * does or the type has no layout we check.
 */
export function rdataProblem(type: number, rdata: Buffer): string | undefined {
  const layout = RDATA_LAYOUTS.get(type);
  if (!layout) return undefined;
  try {
    let pos = 0;
    for (const f of layout.fields) pos = field(rdata, pos, f);
    if (pos !== rdata.length) throw new Bad(`${rdata.length - pos} octets left over`);
    if (type === TYPE.LOC && rdata[0] === 0 && rdata.length !== 16)
      throw new Bad('LOC version 0 is 16 octets');
    return undefined;
  } catch (e) {
    if (!(e instanceof Bad)) throw e;
    return `${typeToText(type)} rdata of ${rdata.length} octets: ${e.message}`;
  }
}

function need(b: Buffer, pos: number, n: number, what: string): void {
  if (pos + n > b.length) throw new Bad(`${what} runs past the end`);
}

/** Reads one field at `pos`; returns the position after it. */
function field(b: Buffer, pos: number, f: Field): number {
  if (typeof f === 'number') {
    need(b, pos, f, `${f}-octet field`);
    return pos + f;
  }
  switch (f) {
    case 'name':
      return nameEnd(b, pos);
    case 'string':
    case 'string1': {
      need(b, pos, 1, 'character-string');
      if (f === 'string1' && b[pos] === 0) throw new Bad('empty character-string');
      need(b, pos + 1, b[pos], 'character-string');
      return pos + 1 + b[pos];
    }
    case 'rest':
      return b.length;
    case 'rest1':
      if (pos >= b.length) throw new Bad('missing data');
      return b.length;
    case 'strings':
      if (pos >= b.length) throw new Bad('no character-string');
      while (pos < b.length) pos = field(b, pos, 'string');
      return pos;
    case 'bitmap':
    case 'bitmap0':
      return bitmapEnd(b, pos, f === 'bitmap0');
    case 'svcparams':
      return svcParamsEnd(b, pos);
    case 'apl':
      return aplEnd(b, pos);
    case 'data16':
      need(b, pos, 2, 'length');
      need(b, pos + 2, b.readUInt16BE(pos), 'data');
      return pos + 2 + b.readUInt16BE(pos);
  }
}

/** An uncompressed name inside rdata: no pointers, labels ≤ 63, at most 255 octets. */
function nameEnd(b: Buffer, start: number): number {
  let pos = start;
  for (;;) {
    need(b, pos, 1, 'name');
    const n = b[pos];
    if (n === 0) break;
    if (n > 63) throw new Bad(n >= 0xc0 ? 'compression pointer in a name' : 'bad label type in a name');
    need(b, pos, 1 + n, 'name');
    pos += 1 + n;
    if (pos + 1 - start > 255) throw new Bad('name longer than 255 octets');
  }
  return pos + 1;
}

/** RFC 4034 §4.1.2: windows in increasing order, bitmap length 1..32, last octet non-zero. */
function bitmapEnd(b: Buffer, start: number, allowEmpty: boolean): number {
  let pos = start;
  let last = -1;
  if (pos === b.length && !allowEmpty) throw new Bad('empty type bitmap');
  while (pos < b.length) {
    need(b, pos, 2, 'type bitmap window');
    const window = b[pos];
    const len = b[pos + 1];
    if (window <= last) throw new Bad('type bitmap windows out of order');
    if (len < 1 || len > 32) throw new Bad(`type bitmap window length ${len}`);
    need(b, pos + 2, len, 'type bitmap');
    if (b[pos + 1 + len] === 0) throw new Bad('type bitmap window ends in a zero octet');
    last = window;
    pos += 2 + len;
  }
  return pos;
}

/** RFC 9460 §2.2: SvcParamKeys strictly increasing; each value fits. */
function svcParamsEnd(b: Buffer, start: number): number {
  let pos = start;
  let last = -1;
  while (pos < b.length) {
    need(b, pos, 4, 'SvcParam');
    const key = b.readUInt16BE(pos);
    if (key <= last) throw new Bad('SvcParamKeys not in strictly increasing order');
    const len = b.readUInt16BE(pos + 2);
    need(b, pos + 4, len, 'SvcParam value');
    last = key;
    pos += 4 + len;
  }
  return pos;
}

/** RFC 3123 §4: family (2), prefix (1), N|AFDLENGTH (1), AFDPART; zero or more items. */
function aplEnd(b: Buffer, start: number): number {
  let pos = start;
  while (pos < b.length) {
    need(b, pos, 4, 'APL item');
    const len = b[pos + 3] & 0x7f;
    need(b, pos + 4, len, 'APL address');
    pos += 4 + len;
  }
  return pos;
}
