/**
 * Message building with name compression (RFC 1035 §4.1.4) and a hard size limit, so a
 * response can be cut at an RRset boundary when it does not fit (RFC 2181 §9).
 * dns-packet does not compress, which turns a 67-byte answer into 108 bytes (STACK.md).
 */

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

/** Per name: label starts and the hashes of each suffix (a name has at most 127 labels). */
const STARTS = new Int32Array(128);
const FOLDED = new Int32Array(128);
const EXACT = new Int32Array(128);

/** Pointers can only address the first 16 KiB of a message. */
const MAX_POINTER = 0x3fff;

export class MessageWriter {
  readonly buf: Buffer;
  off = 0;
  private readonly limit: number;
  /** hash of a lower-cased wire suffix → offset where it was first written */
  private readonly names = new Map<number, number>();
  /** hash of an exact-case wire suffix → offset, for names inside rdata */
  private readonly exact = new Map<number, number>();
  /** Compression entries in the order they were added, for reset(). */
  private added: [Map<number, number>, number][] = [];

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
    // Suffixes are found by a hash of their octets (folded and exact), computed from the root
    // up in one pass, then confirmed against the bytes already written: no strings per label.
    let n = 0;
    let pos = 0;
    while (wire[pos] !== 0) {
      STARTS[n++] = pos;
      pos += 1 + wire[pos];
    }
    let hf = 0x811c9dc5 | 0;
    let he = hf;
    for (let i = n - 1; i >= 0; i--) {
      const s = STARTS[i];
      const len = wire[s];
      hf = Math.imul(hf ^ len, 0x01000193);
      he = Math.imul(he ^ len, 0x01000193);
      for (let j = s + 1; j <= s + len; j++) {
        const c = wire[j];
        hf = Math.imul(hf ^ (c >= 0x41 && c <= 0x5a ? c | 0x20 : c), 0x01000193);
        he = Math.imul(he ^ c, 0x01000193);
      }
      FOLDED[i] = hf & 0x3fffffff;
      EXACT[i] = he & 0x3fffffff;
    }
    for (let i = 0; i < n; i++) {
      const p = STARTS[i];
      const fk = FOLDED[i];
      const ek = EXACT[i];
      if (compress) {
        const at = exactCase ? this.exact.get(ek) : this.names.get(fk);
        if (at !== undefined && this.sameName(wire, p, at, !exactCase)) {
          this.u16(0xc000 | at);
          return;
        }
      }
      if (this.off <= MAX_POINTER) {
        if (!this.names.has(fk)) {
          this.names.set(fk, this.off);
          this.added.push([this.names, fk]);
        }
        if (!this.exact.has(ek)) {
          this.exact.set(ek, this.off);
          this.added.push([this.exact, ek]);
        }
      }
      const len = wire[p];
      this.need(1 + len);
      wire.copy(this.buf, this.off, p, p + 1 + len);
      this.off += 1 + len;
    }
    this.need(1);
    this.buf[this.off++] = 0;
  }

  /** Whether the suffix of `wire` at `p` equals the name written at `at` (pointers followed). */
  private sameName(wire: Buffer, p: number, at: number, fold: boolean): boolean {
    const b = this.buf;
    let q = at;
    for (let labels = 0; labels < 128; labels++) {
      let l = b[q];
      while ((l & 0xc0) === 0xc0) {
        q = ((l & 0x3f) << 8) | b[q + 1];
        l = b[q];
      }
      if (l !== wire[p]) return false;
      if (l === 0) return true;
      for (let j = 1; j <= l; j++) {
        let x = wire[p + j];
        let y = b[q + j];
        if (fold) {
          if (x >= 0x41 && x <= 0x5a) x |= 0x20;
          if (y >= 0x41 && y <= 0x5a) y |= 0x20;
        }
        if (x !== y) return false;
      }
      p += 1 + l;
      q += 1 + l;
    }
    return false;
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
