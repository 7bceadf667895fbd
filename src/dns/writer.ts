/**
 * Message building with name compression (RFC 1035 §4.1.4) and a hard size limit, so a
 * response can be cut at an RRset boundary when it does not fit (RFC 2181 §9).
 * dns-packet does not compress, which turns a 67-byte answer into 108 bytes (STACK.md).
 */
import { toLower } from './name.js';

export class Overflow extends Error {}

/** Pointers can only address the first 16 KiB of a message. */
const MAX_POINTER = 0x3fff;

export class MessageWriter {
  readonly buf: Buffer;
  off = 0;
  private readonly limit: number;
  /** lower-cased wire suffix (latin1 string) → offset where it was written */
  private names = new Map<string, number>();

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

  /** Writes `wire` (uncompressed, root-terminated), pointing at an earlier copy of any suffix. */
  name(wire: Buffer, compress = true): void {
    const lower = toLower(wire);
    let pos = 0;
    while (wire[pos] !== 0) {
      const key = lower.toString('latin1', pos);
      const at = compress ? this.names.get(key) : undefined;
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.off <= MAX_POINTER && !this.names.has(key)) this.names.set(key, this.off);
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
    this.u16(rdata.length);
    this.bytes(rdata);
  }

  /** Remembers the position and compression table, to roll back a partly written RRset. */
  mark(): { off: number; names: Map<string, number> } {
    return { off: this.off, names: new Map(this.names) };
  }

  reset(m: { off: number; names: Map<string, number> }): void {
    this.off = m.off;
    this.names = m.names;
  }

  setU16(at: number, v: number): void {
    this.buf.writeUInt16BE(v, at);
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.off));
  }
}
