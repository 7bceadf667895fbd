/**
 * Strict per-RR intake checks for zone transfers: what may enter a zone at all, whatever the
 * primary sends. Pure (no I/O); `rrProblem` is called on every RR of every AXFR and IXFR, and any
 * problem rejects the transfer whole.
 *
 *   class      IN only (ns2 serves class IN zones)
 *   type       no meta or pseudo types (RFC 6895 §3.1): 0, OPT (41) and the QTYPE/meta range
 *              128..255 (TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY and the unassigned rest), as
 *              BIND's dns_rdatatype_ismeta() refuses them
 *   rdata      consistent with its type where the type has a fixed layout (below); names inside
 *              rdata uncompressed, labels ≤ 63 octets, names ≤ 255 octets (RFC 1035 §2.3.4)
 *
 * Owner names were already bounded by readName (labels ≤ 63, names ≤ 255). Types without a
 * layout here (unknown types, NULL, OPENPGPKEY, …) are opaque (RFC 3597) and taken as they come.
 * readRdata (dns/rdata.ts) has already expanded and checked the RFC 1035-style types whose names
 * may be compressed; checking them again here is cheap and keeps this module the one place that
 * says what a valid RR is.
 */
import type { WireRR } from '../dns/message.js';
import { CLASS, TYPE, typeToText } from '../dns/types.js';

/**
 * One piece of an rdata layout: a fixed number of octets, an uncompressed domain name, a
 * <character-string>, or a rule for everything that is left.
 */
type Field =
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
  | 'apl';

const LAYOUT = new Map<number, readonly Field[]>([
  [TYPE.A, [4]],
  [TYPE.AAAA, [16]],
  [TYPE.LOC, [1, 'rest']],
  [TYPE.NS, ['name']],
  [TYPE.MD, ['name']],
  [TYPE.MF, ['name']],
  [TYPE.CNAME, ['name']],
  [TYPE.SOA, ['name', 'name', 20]],
  [TYPE.MB, ['name']],
  [TYPE.MG, ['name']],
  [TYPE.MR, ['name']],
  [TYPE.WKS, [4, 1, 'rest']],
  [TYPE.PTR, ['name']],
  [TYPE.HINFO, ['string', 'string']],
  [TYPE.MINFO, ['name', 'name']],
  [TYPE.MX, [2, 'name']],
  [TYPE.TXT, ['strings']],
  [TYPE.RP, ['name', 'name']],
  [TYPE.AFSDB, [2, 'name']],
  [TYPE.X25, ['string1']],
  [TYPE.RT, [2, 'name']],
  [TYPE.SIG, [18, 'name', 'rest']],
  [TYPE.KEY, [4, 'rest']],
  [TYPE.PX, [2, 'name', 'name']],
  [TYPE.GPOS, ['string1', 'string1', 'string1']],
  [TYPE.NXT, ['name', 'rest']],
  [TYPE.SRV, [6, 'name']],
  [TYPE.NAPTR, [4, 'string', 'string', 'string', 'name']],
  [TYPE.KX, [2, 'name']],
  [TYPE.CERT, [5, 'rest']],
  [TYPE.DNAME, ['name']],
  [TYPE.APL, ['apl']],
  [TYPE.DS, [4, 'rest1']],
  [TYPE.SSHFP, [2, 'rest1']],
  [TYPE.RRSIG, [18, 'name', 'rest1']],
  [TYPE.NSEC, ['name', 'bitmap']],
  [TYPE.DNSKEY, [4, 'rest']],
  [TYPE.DHCID, ['rest1']],
  [TYPE.NSEC3, [4, 'string', 'string1', 'bitmap0']],
  [TYPE.NSEC3PARAM, [4, 'string']],
  [TYPE.TLSA, [3, 'rest1']],
  [TYPE.SMIMEA, [3, 'rest1']],
  [TYPE.CDS, [4, 'rest1']],
  [TYPE.CDNSKEY, [4, 'rest']],
  [TYPE.CSYNC, [6, 'bitmap0']],
  [TYPE.ZONEMD, [6, 'rest1']],
  [TYPE.SVCB, [2, 'name', 'svcparams']],
  [TYPE.HTTPS, [2, 'name', 'svcparams']],
  [TYPE.SPF, ['strings']],
  [TYPE.NID, [10]],
  [TYPE.L32, [6]],
  [TYPE.L64, [10]],
  [TYPE.LP, [2, 'name']],
  [TYPE.EUI48, [6]],
  [TYPE.EUI64, [8]],
  [TYPE.URI, [4, 'rest']],
  [TYPE.CAA, [1, 'string1', 'rest']],
  [TYPE.TA, [4, 'rest1']],
  [TYPE.DLV, [4, 'rest1']],
]);

/** Meta and pseudo types (RFC 6895 §3.1): never data in a zone. */
export function isMetaType(type: number): boolean {
  return type === 0 || type === TYPE.OPT || (type >= 128 && type <= 255);
}

/** Why `rr` may not be part of a class IN zone, or undefined when it may. */
export function rrProblem(rr: WireRR): string | undefined {
  if (rr.class !== CLASS.IN) return `class ${rr.class} in a class IN zone transfer`;
  if (isMetaType(rr.type)) return `meta type ${typeToText(rr.type)} inside a zone`;
  return rdataProblem(rr.type, rr.rdata);
}

class Bad extends Error {}

/**
 * Why `rdata` (uncompressed, as stored) does not fit the layout of `type`, or undefined when it
 * does or the type has no layout we check.
 */
export function rdataProblem(type: number, rdata: Buffer): string | undefined {
  const layout = LAYOUT.get(type);
  if (!layout) return undefined;
  try {
    let pos = 0;
    for (const f of layout) pos = field(rdata, pos, f);
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
