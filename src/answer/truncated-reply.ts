/**
 * The "slipped" form of a reply (BIND's RRL slip): the header with TC set and no records, the
 * question, and the OPT record when there was one (without options), so a real client behind a
 * rate-limited prefix retries over TCP (RFC 7766) while a reflection victim gets a reply no
 * larger than the query. The rcode is kept (NOERROR, or NXDOMAIN as BIND keeps it).
 */
import { FLAG_TC } from '../dns/message.js';

const OPT = 41;
const OPT_LEN = 11;

/** Past the (possibly compressed) name at `p`; -1 when it runs past `end`. */
function skipName(b: Uint8Array, p: number, end: number): number {
  while (p < end) {
    const l = b[p];
    if (l === 0) return p + 1;
    if ((l & 0xc0) === 0xc0) return p + 2;
    p += l + 1;
  }
  return -1;
}

/**
 * Rewrites the reply `b[off, off+len)` in place into its truncated form and returns the new
 * length (0 when the reply is not a well-formed message: then nothing is sent).
 */
export function truncateInPlace(b: Uint8Array, off: number, len: number): number {
  const end = off + len;
  if (len < 12) return 0;
  const qd = (b[off + 4] << 8) | b[off + 5];
  let p = off + 12;
  for (let i = 0; i < qd; i++) {
    p = skipName(b, p, end);
    if (p < 0 || p + 4 > end) return 0;
    p += 4;
  }
  const questionEnd = p;
  // Find the OPT among the remaining records: keep its fixed fields (payload size, extended
  // rcode, version, DO) and drop its options.
  const records =
    ((b[off + 6] << 8) | b[off + 7]) + ((b[off + 8] << 8) | b[off + 9]) + ((b[off + 10] << 8) | b[off + 11]);
  let opt = -1;
  for (let i = 0; i < records; i++) {
    const start = p;
    p = skipName(b, p, end);
    if (p < 0 || p + 10 > end) return 0;
    if (((b[p] << 8) | b[p + 1]) === OPT && b[start] === 0) opt = start;
    p += 10 + ((b[p + 8] << 8) | b[p + 9]);
    if (p > end) return 0;
  }
  b[off + 2] |= FLAG_TC >> 8;
  b[off + 6] = b[off + 7] = b[off + 8] = b[off + 9] = b[off + 10] = 0;
  b[off + 11] = opt >= 0 ? 1 : 0;
  if (opt < 0) return questionEnd - off;
  // The OPT starts after the question, so moving it down never overwrites bytes still to read.
  b.copyWithin(questionEnd, opt, opt + OPT_LEN - 2);
  b[questionEnd + OPT_LEN - 2] = 0;
  b[questionEnd + OPT_LEN - 1] = 0;
  return questionEnd - off + OPT_LEN;
}
