/**
 * RR type and class numbers with the mnemonics BIND 9.18 prints (IANA "Resource Record (RR) TYPEs"
 * registry). Unknown values use the RFC 3597 §5 generic forms TYPE<n> / CLASS<n>.
 */

export const TYPE = {
  A: 1,
  NS: 2,
  MD: 3,
  MF: 4,
  CNAME: 5,
  SOA: 6,
  MB: 7,
  MG: 8,
  MR: 9,
  NULL: 10,
  WKS: 11,
  PTR: 12,
  HINFO: 13,
  MINFO: 14,
  MX: 15,
  TXT: 16,
  RP: 17,
  AFSDB: 18,
  X25: 19,
  ISDN: 20,
  RT: 21,
  NSAP: 22,
  'NSAP-PTR': 23,
  SIG: 24,
  KEY: 25,
  PX: 26,
  GPOS: 27,
  AAAA: 28,
  LOC: 29,
  NXT: 30,
  EID: 31,
  NIMLOC: 32,
  SRV: 33,
  ATMA: 34,
  NAPTR: 35,
  KX: 36,
  CERT: 37,
  A6: 38,
  DNAME: 39,
  SINK: 40,
  OPT: 41,
  APL: 42,
  DS: 43,
  SSHFP: 44,
  IPSECKEY: 45,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  DHCID: 49,
  NSEC3: 50,
  NSEC3PARAM: 51,
  TLSA: 52,
  SMIMEA: 53,
  HIP: 55,
  NINFO: 56,
  RKEY: 57,
  TALINK: 58,
  CDS: 59,
  CDNSKEY: 60,
  OPENPGPKEY: 61,
  CSYNC: 62,
  ZONEMD: 63,
  SVCB: 64,
  HTTPS: 65,
  DSYNC: 66,
  HHIT: 67,
  BRID: 68,
  SPF: 99,
  UINFO: 100,
  UID: 101,
  GID: 102,
  UNSPEC: 103,
  NID: 104,
  L32: 105,
  L64: 106,
  LP: 107,
  EUI48: 108,
  EUI64: 109,
  TKEY: 249,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
  URI: 256,
  CAA: 257,
  AVC: 258,
  DOA: 259,
  AMTRELAY: 260,
  RESINFO: 261,
  WALLET: 262,
  TA: 32768,
  DLV: 32769,
} as const;

export type TypeName = keyof typeof TYPE;

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));
const TYPE_BY_NAME = new Map<string, number>(Object.entries(TYPE).map(([k, v]) => [k, v]));

/** Mnemonic for a type, or TYPE<n> (RFC 3597 §5) when it has none. */
export function typeToText(n: number): string {
  return TYPE_NAMES.get(n) ?? `TYPE${n}`;
}

/** True when the type has a mnemonic (BIND knows it by name). */
export function hasMnemonic(n: number): boolean {
  return TYPE_NAMES.has(n);
}

/** Parses a mnemonic (case-insensitive) or TYPE<n> with 0 ≤ n ≤ 65535; undefined otherwise. */
export function textToType(s: string): number | undefined {
  const upper = s.toUpperCase();
  const known = TYPE_BY_NAME.get(upper);
  if (known !== undefined) return known;
  return genericNumber(upper, 'TYPE');
}

export const CLASS = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 } as const;

export type ClassName = keyof typeof CLASS;

const CLASS_NAMES = new Map<number, string>(Object.entries(CLASS).map(([k, v]) => [v, k]));

/** Mnemonic for a class, or CLASS<n>; class 0 is RESERVED0 as BIND prints it. */
export function classToText(n: number): string {
  if (n === 0) return 'RESERVED0';
  return CLASS_NAMES.get(n) ?? `CLASS${n}`;
}

/** Parses IN/CH/HS/NONE/ANY (case-insensitive, CHAOS and HESIOD too) or CLASS<n>. */
export function textToClass(s: string): number | undefined {
  const upper = s.toUpperCase();
  if (upper === 'CHAOS') return CLASS.CH;
  if (upper === 'HESIOD') return CLASS.HS;
  if (upper === 'RESERVED0') return 0;
  if (Object.hasOwn(CLASS, upper)) return CLASS[upper as ClassName];
  return genericNumber(upper, 'CLASS');
}

/** `PREFIX<decimal>` with a value that fits 16 bits (RFC 3597 §5); no sign, no spaces. */
function genericNumber(upper: string, prefix: string): number | undefined {
  if (!upper.startsWith(prefix)) return undefined;
  const digits = upper.slice(prefix.length);
  if (!/^[0-9]{1,5}$/.test(digits)) return undefined;
  const n = Number(digits);
  return n <= 0xffff ? n : undefined;
}
