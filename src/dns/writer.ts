/**
 * Message building with name compression (RFC 1035 §4.1.4) and a hard size limit, so a
 * response can be cut at an RRset boundary when it does not fit (RFC 2181 §9).
 * dns-packet does not compress, which turns a 67-byte answer into 108 bytes (STACK.md).
 */
import { RDATA_LAYOUTS } from './rdata-layout.js';

export class Overflow extends Error {}

/** A position to roll back to: the offset and how many compression entries existed. */
interface Mark {
  off: number;
  entries: number;
}

/**
 * How each type's rdata names are written, from the one layout table (dns/rdata-layout.ts):
 * `rfc1035` names may be compressed (RFC 3597 §4); `decompress` and `tabled` ones are written
 * whole, but BIND 9.18 still enters them in its compression table, so later names may point into
 * them (a CNAME target into a DNAME's, an owner into an RRSIG signer): the same here, for the
 * same message sizes. `none`: copied as opaque bytes.
 */
const NAMED_RDATA = new Map(
  [...RDATA_LAYOUTS].filter(([, l]) => l.names !== 'none').map(([type, l]) => [type, l]),
);

/** End of the uncompressed name at `pos` (stored rdata never holds pointers). */
function nameEnd(b: Buffer, pos: number): number {
  while (pos < b.length && b[pos] !== 0) pos += 1 + b[pos];
  if (pos >= b.length) throw new Error('malformed name in stored rdata');
  return pos + 1;
}

/** Pointers can only address the first 16 KiB of a message. */
const MAX_POINTER = 0x3fff;

/**
 * Name compression as BIND 9.18 does it (lib/dns/compress.c), so that ns2's answers are the size
 * of BIND's: matching is by exact octets (BIND compresses case-sensitively), a name is looked up
 * only as a whole and without its first label, and a name written out enters the table with its
 * first two suffixes only. Cheaper than a full suffix search, and the sizes operators and
 * resolvers saw from the BIND secondary ns2 replaces.
 */
export class MessageWriter {
  readonly buf: Buffer;
  off = 0;
  private readonly limit: number;
  /** wire suffix (latin1) → offset where it was first written */
  private readonly names = new Map<string, number>();
  /** Compression entries in the order they were added, for reset(). */
  private added: string[] = [];

  /** `scratch`: a buffer of at least `limit` bytes to write into, free until finish() copies out. */
  constructor(limit: number, scratch?: Buffer) {
    this.limit = limit;
    this.buf = scratch && scratch.length >= limit ? scratch : Buffer.allocUnsafe(limit);
  }

  private need(n: number): void {
    if (this.off + n > this.limit) throw new Overflow();
  }

  u16(v: number): void {
    this.need(2);
    this.buf.writeUInt16BE(v, this.off);
    this.off += 2;
  }

  u32(v: number): void {
    this.need(4);
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
  }

  bytes(b: Buffer): void {
    this.need(b.length);
    b.copy(this.buf, this.off);
    this.off += b.length;
  }

  /**
   * Writes `wire` (uncompressed, root-terminated), as a pointer to an earlier copy of the whole
   * name or of all but its first label when there is one (and `compress`). Names are served in
   * the case they are stored in, as BIND does.
   */
  name(wire: Buffer, compress = true): void {
    const first = wire[0];
    if (first === 0) {
      this.need(1);
      this.buf[this.off++] = 0;
      return;
    }
    const whole = wire.toString('latin1');
    if (compress) {
      let at = this.names.get(whole);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      // BIND tries the suffix after the first label only when it is not the root.
      if (wire[first + 1] !== 0) {
        at = this.names.get(whole.slice(first + 1));
        if (at !== undefined) {
          const start = this.off;
          this.need(first + 3);
          wire.copy(this.buf, this.off, 0, first + 1);
          this.off += first + 1;
          this.u16(0xc000 | at);
          this.enter(whole, start);
          return;
        }
      }
    }
    const start = this.off;
    this.bytes(wire);
    this.enter(whole, start);
    const second = first + 1;
    if (wire[second] !== 0) this.enter(whole.slice(second), start + second);
  }

  /** Adds a suffix written at `at` to the table (the first copy wins, as a pointer target). */
  private enter(suffix: string, at: number): void {
    if (at > MAX_POINTER || this.names.has(suffix)) return;
    this.names.set(suffix, at);
    this.added.push(suffix);
  }

  rr(owner: Buffer, type: number, klass: number, ttl: number, rdata: Buffer): void {
    this.name(owner);
    this.u16(type);
    this.u16(klass);
    this.u32(ttl);
    const layout = NAMED_RDATA.get(type);
    if (!layout) {
      this.u16(rdata.length);
      this.bytes(rdata);
      return;
    }
    // Names inside RFC 1035 rdata may be compressed too (RFC 3597 §4), as BIND does; the
    // others are written whole but entered in the table.
    const lenAt = this.off;
    this.u16(0);
    const compress = layout.names === 'rfc1035';
    let pos = 0;
    for (const f of layout.fields) {
      if (pos >= rdata.length) break;
      if (f === 'name') {
        const end = nameEnd(rdata, pos);
        this.name(rdata.subarray(pos, end), compress);
        pos = end;
      } else if (typeof f === 'number' || f === 'string' || f === 'string1') {
        const n = typeof f === 'number' ? f : 1 + rdata[pos];
        this.bytes(rdata.subarray(pos, pos + n));
        pos += n;
      } else break; // the rest holds no names: copied below
    }
    this.bytes(rdata.subarray(pos));
    this.setU16(lenAt, this.off - lenAt - 2);
  }

  /** Remembers the position and compression table, to roll back a partly written RRset. */
  mark(): Mark {
    return { off: this.off, entries: this.added.length };
  }

  /** Rolls back to `m`, forgetting compression targets written after it. */
  reset(m: Mark): void {
    this.off = m.off;
    while (this.added.length > m.entries) this.names.delete(this.added.pop()!);
  }

  setU16(at: number, v: number): void {
    this.buf.writeUInt16BE(v, at);
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.off));
  }
}
