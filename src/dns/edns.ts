/** EDNS(0) option lists (RFC 6891 §6.1.2): {code, length, data} triples in OPT rdata. */
import { WireError } from './name.js';

export const OPTION = {
  /** RFC 5001: name server identifier. */
  NSID: 3,
  /** RFC 7871 EDNS Client Subnet. */
  ECS: 8,
  /** RFC 7314: the secondary's remaining expire time for the zone. */
  EXPIRE: 9,
  COOKIE: 10,
  /** RFC 8914 Extended DNS Errors. */
  EDE: 15,
} as const;

/** RFC 8914 §4 info-codes used here. */
export const EDE = { NOT_READY: 14, INVALID_DATA: 24 } as const;

export interface EdnsOption {
  code: number;
  data: Buffer;
}

export function parseOptions(rdata: Buffer): EdnsOption[] {
  const out: EdnsOption[] = [];
  let off = 0;
  while (off < rdata.length) {
    if (off + 4 > rdata.length) throw new WireError('truncated EDNS option');
    const code = rdata.readUInt16BE(off);
    const len = rdata.readUInt16BE(off + 2);
    if (off + 4 + len > rdata.length) throw new WireError('EDNS option runs past OPT rdata');
    out.push({ code, data: rdata.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  return out;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Why an option in a request is malformed, or undefined. The length rules BIND 9 applies when it
 * reads OPT (lib/dns/rdata/generic/opt_41.c) and answers with FORMERR: LLQ (RFC 8764 §3.2),
 * ECS (RFC 7871 §6: family, prefix lengths, address octets, no bits past the prefix), EXPIRE
 * (RFC 7314 §2: empty or 4), COOKIE (RFC 7873 §4: 8, or 16 to 40), KEY-TAG (RFC 8145 §4.1: a
 * non-empty list of 16-bit tags), EDE (RFC 8914 §2: info-code and UTF-8 text without a BOM),
 * CLIENT-TAG/SERVER-TAG (2 octets).
 */
export function optionProblem(code: number, d: Buffer): string | undefined {
  switch (code) {
    case 1:
      return d.length === 18 ? undefined : 'LLQ option not 18 octets';
    case OPTION.ECS: {
      if (d.length < 4) return 'ECS option under 4 octets';
      const family = d.readUInt16BE(0);
      const source = d[2];
      const scope = d[3];
      const max = family === 1 ? 32 : family === 2 ? 128 : 0;
      if (family > 2 || source > max || scope > max) return 'ECS family or prefix length';
      // RFC 7871 §6: SCOPE PREFIX-LENGTH MUST be 0 in queries (BIND's process_ecs).
      if (scope !== 0) return 'ECS scope in a query';
      const bytes = (source + 7) >> 3;
      if (d.length !== 4 + bytes) return 'ECS address length';
      if (bytes > 0 && source % 8 !== 0 && (d[3 + bytes] & (0xff >> (source % 8))) !== 0)
        return 'ECS address bits past the prefix';
      return undefined;
    }
    case OPTION.EXPIRE:
      return d.length === 0 || d.length === 4 ? undefined : 'EXPIRE option length';
    case OPTION.COOKIE:
      return d.length === 8 || (d.length >= 16 && d.length <= 40) ? undefined : 'COOKIE option length';
    case 14:
      return d.length > 0 && d.length % 2 === 0 ? undefined : 'KEY-TAG option length';
    case OPTION.EDE: {
      if (d.length < 2) return 'EDE option under 2 octets';
      const text = d.subarray(2);
      if (text.length >= 3 && text[0] === 0xef && text[1] === 0xbb && text[2] === 0xbf)
        return 'EDE text has a BOM';
      try {
        UTF8.decode(text);
      } catch {
        return 'EDE text not UTF-8';
      }
      return undefined;
    }
    case 16:
    case 17:
      return d.length === 2 ? undefined : 'CLIENT-TAG/SERVER-TAG option length';
    default:
      return undefined;
  }
}

/** Longest NSID payload we send (RFC 5001 sets none; BIND's server-id is a name-sized string). */
const NSID_MAX = 128;

/**
 * The NSID option payload (RFC 5001 §2.3) for config `identity.nsid`: `hex:` and hex digits are
 * the octets themselves, anything else is sent as its UTF-8 text (as BIND's `server-id "…"`).
 * Undefined when empty, too long or not hex after `hex:`.
 */
export function nsidPayload(value: string): Buffer | undefined {
  const hex = /^hex:/i.test(value) ? value.slice(4) : undefined;
  if (hex !== undefined && !/^(?:[0-9a-f]{2})+$/i.test(hex)) return undefined;
  const b = hex !== undefined ? Buffer.from(hex, 'hex') : Buffer.from(value, 'utf8');
  return b.length > 0 && b.length <= NSID_MAX ? b : undefined;
}

export function encodeOptions(opts: readonly EdnsOption[]): Buffer {
  return Buffer.concat(
    opts.map((o) => {
      const h = Buffer.alloc(4);
      h.writeUInt16BE(o.code, 0);
      h.writeUInt16BE(o.data.length, 2);
      return Buffer.concat([h, o.data]);
    }),
  );
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}
