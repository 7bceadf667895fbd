/**
 * SipHash-2-4 (Aumasson & Bernstein), the MAC RFC 9018 §4.4 uses for interoperable DNS server
 * cookies. node:crypto has no SipHash; 64-bit lanes are BigInts, fast enough for one hash per
 * query that carries a cookie.
 */
const MASK = (1n << 64n) - 1n;
const rotl = (x: bigint, b: bigint): bigint => ((x << b) | (x >> (64n - b))) & MASK;

export function siphash24(key: Buffer, msg: Buffer): Buffer {
  if (key.length !== 16) throw new Error('SipHash key must be 16 bytes');
  const k0 = key.readBigUInt64LE(0);
  const k1 = key.readBigUInt64LE(8);
  let v0 = k0 ^ 0x736f6d6570736575n;
  let v1 = k1 ^ 0x646f72616e646f6dn;
  let v2 = k0 ^ 0x6c7967656e657261n;
  let v3 = k1 ^ 0x7465646279746573n;
  const round = () => {
    v0 = (v0 + v1) & MASK;
    v1 = rotl(v1, 13n) ^ v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & MASK;
    v3 = rotl(v3, 16n) ^ v2;
    v0 = (v0 + v3) & MASK;
    v3 = rotl(v3, 21n) ^ v0;
    v2 = (v2 + v1) & MASK;
    v1 = rotl(v1, 17n) ^ v2;
    v2 = rotl(v2, 32n);
  };
  const full = msg.length - (msg.length % 8);
  for (let i = 0; i < full; i += 8) {
    const m = msg.readBigUInt64LE(i);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  // Last block: remaining bytes, length in the top byte.
  const last = Buffer.alloc(8);
  msg.copy(last, 0, full);
  last[7] = msg.length & 0xff;
  const m = last.readBigUInt64LE(0);
  v3 ^= m;
  round();
  round();
  v0 ^= m;
  v2 ^= 0xffn;
  round();
  round();
  round();
  round();
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE((v0 ^ v1 ^ v2 ^ v3) & MASK);
  return out;
}
