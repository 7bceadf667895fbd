/**
 * DNSSEC helpers for answering (ns2 never signs): canonical name order (RFC 4034 §6.1) for
 * finding the NSEC that covers a name, and NSEC3 owner hashing (RFC 5155 §5).
 */
import { createHash } from 'node:crypto';
import { toLower } from './name.js';

/**
 * A byte string whose memcmp order is the canonical DNS name order, from a nameKey (root-first,
 * length-prefixed, lower case). Each label is written with 0x00 → 01 01 and 0x01 → 01 02 and
 * ends in 0x00, so a label sorts before any longer label it prefixes (RFC 4034 §6.1).
 */
export function canonicalKey(nkey: Buffer): Buffer {
  const out: number[] = [];
  let pos = 0;
  while (pos < nkey.length) {
    const len = nkey[pos];
    for (let i = pos + 1; i <= pos + len; i++) {
      const b = nkey[i];
      if (b <= 1) out.push(1, b + 1);
      else out.push(b);
    }
    out.push(0);
    pos += 1 + len;
  }
  return Buffer.from(out);
}

export interface Nsec3Param {
  algorithm: number;
  iterations: number;
  salt: Buffer;
}

/** NSEC3PARAM rdata: hash algorithm, flags, iterations, salt length, salt (RFC 5155 §4.2). */
export function parseNsec3Param(rdata: Buffer): Nsec3Param {
  const saltLen = rdata[4];
  return { algorithm: rdata[0], iterations: rdata.readUInt16BE(2), salt: rdata.subarray(5, 5 + saltLen) };
}

/** The opt-out flag of an NSEC3 record (RFC 5155 §3.1.2.1). */
export const nsec3OptOut = (rdata: Buffer): boolean => (rdata[1] & 1) === 1;

const B32HEX = '0123456789abcdefghijklmnopqrstuv';

function base32hex(b: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of b) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32HEX[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32HEX[(value << (5 - bits)) & 31];
  return out;
}

/** IH(salt, name, iterations) of RFC 5155 §5, as the lower-case base32hex owner label. */
export function nsec3Hash(name: Buffer, p: Nsec3Param): string {
  let h = createHash('sha1').update(toLower(name)).update(p.salt).digest();
  for (let i = 0; i < p.iterations; i++) h = createHash('sha1').update(h).update(p.salt).digest();
  return base32hex(h);
}
