/**
 * Message building with name compression (RFC 1035 §4.1.4) and a hard size limit, so a
 * response can be cut at an RRset boundary when it does not fit (RFC 2181 §9).
 * dns-packet does not compress, which turns a 67-byte answer into 108 bytes (STACK.md).
 */
import { toLower } from './name.js';

export class Overflow extends Error {}

/** A position to roll back to: the offset and how many compression entries existed. */
interface Mark {
  off: number;
  entries: number;
}

/** Rdata layouts of the RFC 1035 types, the only ones whose names may be compressed. */
const COMPRESSED_RDATA = new Map<number, readonly ('name' | number)[]>([
  [2, ['name']], // NS
  [3, ['name']], // MD
  [4, ['name']], // MF
  [5, ['name']], // CNAME
  [6, ['name', 'name', 20]], // SOA
  [7, ['name']], // MB
  [8, ['name']], // MG
  [9, ['name']], // MR
  [12, ['name']], // PTR
  [14, ['name', 'name']], // MINFO
  [15, [2, 'name']], // MX
]);

/** End of the uncompressed name at `pos` (stored rdata never holds pointers). */
function nameEnd(b: Buffer, pos: number): number {
  while (pos < b.length && b[pos] !== 0) pos += 1 + b[pos];
  if (pos >= b.length) throw new Error('malformed name in stored rdata');
  return pos + 1;
}

/** Pointers can only address the first 16 KiB of a message. */
const MAX_POINTER = 0x3fff;

export class MessageWriter {
  readonly buf: Buffer;
  off = 0;
  private readonly limit: number;
  /** lower-cased wire suffix (latin1 string) → offset where it was written */
  private readonly names = new Map<string, number>();
  /** exact-case wire suffix → offset, for names inside rdata */
  private readonly exact = new Map<string, number>();
  /** Compression entries in the order they were added, for reset(). */
  private added: [Map<string, number>, string][] = [];

  constructor(limit: number) {
    this.limit = limit;
    this.buf = Buffer.allocUnsafe(limit);
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
   * Writes `wire` (uncompressed, root-terminated), pointing at an earlier copy of any suffix.
   * Owner names match suffixes case-insensitively, so an answer's owner takes the case of the
   * question (0x20 resolvers check it); names inside rdata match only the exact same octets, so
   * their case is served as stored — both as BIND does.
   */
  name(wire: Buffer, compress = true, exactCase = false): void {
    const lower = toLower(wire);
    let pos = 0;
    while (wire[pos] !== 0) {
      const ikey = lower.toString('latin1', pos);
      const ekey = wire.toString('latin1', pos);
      const at = compress ? (exactCase ? this.exact.get(ekey) : this.names.get(ikey)) : undefined;
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.off <= MAX_POINTER) {
        if (!this.names.has(ikey)) {
          this.names.set(ikey, this.off);
          this.added.push([this.names, ikey]);
        }
        if (!this.exact.has(ekey)) {
          this.exact.set(ekey, this.off);
          this.added.push([this.exact, ekey]);
        }
      }
      const n = wire[pos];
      this.bytes(wire.subarray(pos, pos + 1 + n));
      pos += 1 + n;
    }
    this.need(1);
    this.buf[this.off++] = 0;
  }

  rr(owner: Buffer, type: number, klass: number, ttl: number, rdata: Buffer): void {
    this.name(owner);
    this.u16(type);
    this.u16(klass);
    this.u32(ttl);
    const layout = COMPRESSED_RDATA.get(type);
    if (!layout) {
      this.u16(rdata.length);
      this.bytes(rdata);
      return;
    }
    // Names inside RFC 1035 rdata may be compressed too (RFC 3597 §4), as BIND does.
    const lenAt = this.off;
    this.u16(0);
    let pos = 0;
    for (const f of layout) {
      if (f === 'name') {
        const end = nameEnd(rdata, pos);
        this.name(rdata.subarray(pos, end), true, true);
        pos = end;
      } else {
        this.bytes(rdata.subarray(pos, pos + f));
        pos += f;
      }
    }
    this.setU16(lenAt, this.off - lenAt - 2);
  }

  /** Remembers the position and compression table, to roll back a partly written RRset. */
  mark(): Mark {
    return { off: this.off, entries: this.added.length };
  }

  /** Rolls back to `m`, forgetting compression targets written after it. */
  reset(m: Mark): void {
    this.off = m.off;
    while (this.added.length > m.entries) {
      const [map, key] = this.added.pop()!;
      map.delete(key);
    }
  }

  setU16(at: number, v: number): void {
    this.buf.writeUInt16BE(v, at);
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.off));
  }
}
