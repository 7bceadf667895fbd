/**
 * Encoded answers, reused while their zone does not change: a busy authoritative server answers
 * the same questions over and over. A hit is read straight off the request bytes — no parse into
 * objects, no string key — and costs a hash, one map lookup and two copies: the cached reply, then
 * the request's ID and question over it (the question is keyed in the case sent, so the copy
 * changes nothing but the ID).
 *
 * Only plain questions are cached: QUERY, one question, no answer/authority records, at most an
 * OPT of EDNS version 0 without options (so no cookie, EXPIRE or TSIG, whose replies depend on
 * more than the question). The key is everything else the reply depends on: the name as sent,
 * type, class, RD, CD and AD, EDNS presence and DO, and the size limit (TCP, or the UDP limit — which
 * also tells an EDNS-512 client, whose answers are minimal, from the others).
 *
 * Bounded by bytes, never emptied wholesale: when full, random entries go, except those hit since
 * they were last looked at (second chance). Random rather than oldest-first: a loop over more
 * questions than fit (a resolver farm walking a zone, dnsperf replaying a file) still hits in
 * proportion to the size, where oldest-first evicts every entry just before it is asked again. An entry is valid while its zone's
 * version is the one it was made from (ZoneTable bumps a zone's version on each change), so a
 * change to one zone leaves the others' answers cached.
 */
import type { ZoneEntry } from '../serve/zone-table.js';

interface Entry {
  key: Buffer;
  reply: Buffer;
  /** The zone answered from and its version then; undefined for answers from no zone. */
  zone: ZoneEntry | undefined;
  version: number;
  /** Depends on more than one zone (a CNAME/DNAME chain) or none: also needs `generation`. */
  global: boolean;
  generation: number;
  used: boolean;
  hash: number;
  /** How the reply counts for response rate limiting (answer/rrl.ts), and its bucket name. */
  rrlKind: number;
  rrlName: number;
  /** Index in `slots`. */
  slot: number;
}

const MAX_NAME = 255;
const PLAIN_UDP = 512;
const TCP_LIMIT = 65535;
/**
 * Per-entry bookkeeping beyond key and reply bytes: the Entry, two Buffer views, the ArrayBuffer
 * and its backing-store record, the map and array slots — 465 B of V8 heap measured per entry
 * over 100 000 entries, plus malloc's header for the bytes. (320 undercounted small answers by
 * about 1.4×, so the cache outgrew `answerCacheBytes`.)
 */
const OVERHEAD = 500;

export class AnswerCache {
  private readonly map = new Map<number, Entry>();
  /** The same entries in an array, for picking a random victim. */
  private readonly slots: Entry[] = [];
  private bytes = 0;
  /** xorshift32 state: eviction is random but repeatable. */
  private seed = 0x9e3779b9;
  /** The last probed question's key (name as sent, type, class, flags, limit) and hash. */
  private readonly key = Buffer.allocUnsafe(MAX_NAME + 7);
  private keyLen = 0;
  private hash = 0;
  /** Length of the last probed question (name + type + class) as sent. */
  questionLen = 0;
  /** The last hit (its RRL kind and name are read only when rate limiting is on). */
  private hit: Entry | undefined;

  constructor(
    private readonly maxBytes: number,
    /** Our EDNS UDP payload size: part of the UDP size limit. */
    private readonly udpSize: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /**
   * Reads `msg[off, off+len)` as a plain query and makes its key; false when it is not one
   * (the handler then answers it in full, and it is not cached).
   */
  probe(msg: Uint8Array, off: number, len: number, tcp: boolean): boolean {
    if (len < 17) return false;
    const end = off + len;
    const b2 = msg[off + 2];
    const b3 = msg[off + 3];
    // QR clear, opcode QUERY; one question, nothing in answer/authority, at most one additional.
    if ((b2 & 0xf8) !== 0) return false;
    if (msg[off + 4] !== 0 || msg[off + 5] !== 1 || msg[off + 6] | msg[off + 7] | msg[off + 8] | msg[off + 9])
      return false;
    if (msg[off + 10] !== 0 || msg[off + 11] > 1) return false;
    const key = this.key;
    let p = off + 12;
    let k = 0;
    for (;;) {
      if (p >= end) return false;
      const l = msg[p];
      if (l === 0) break;
      if (l > 63 || k + l + 1 >= MAX_NAME) return false; // pointers and bad labels: the full path
      key[k++] = l;
      p++;
      if (p + l > end) return false;
      // Exact case: owners are written in stored case and compressed case-sensitively (as
      // BIND does), so "WwW" gets a reply of another size than "www".
      for (let i = 0; i < l; i++) key[k++] = msg[p + i];
      p += l;
    }
    key[k++] = 0;
    p++;
    if (p + 4 > end) return false;
    for (let i = 0; i < 4; i++) key[k++] = msg[p + i];
    p += 4;
    this.questionLen = p - off - 12;
    let flags = (b2 & 0x01) | ((b3 & 0x10) >> 3) | ((b3 & 0x20) >> 1); // RD, CD, AD
    let limit = tcp ? TCP_LIMIT : PLAIN_UDP;
    if (msg[off + 11] === 1) {
      // OPT: root owner, type 41, class = payload size, ttl = ext-rcode, version, DO; no options.
      if (p + 11 !== end || msg[p] !== 0 || msg[p + 1] !== 0 || msg[p + 2] !== 41) return false;
      if (msg[p + 6] !== 0 || msg[p + 9] !== 0 || msg[p + 10] !== 0) return false;
      flags |= 0x04 | (msg[p + 7] & 0x80 ? 0x08 : 0);
      if (!tcp) limit = Math.max(PLAIN_UDP, Math.min((msg[p + 3] << 8) | msg[p + 4], this.udpSize));
    } else if (p !== end) return false;
    key[k++] = flags;
    key[k++] = limit >> 8;
    key[k++] = limit & 0xff;
    this.keyLen = k;
    // FNV-1a, 32 bits.
    let h = 0x811c9dc5;
    for (let i = 0; i < k; i++) h = Math.imul(h ^ key[i], 0x01000193);
    this.hash = h >>> 0;
    return true;
  }

  /** The cached reply for the last probed question, if still valid. */
  lookup(generation: number): Buffer | undefined {
    const e = this.map.get(this.hash);
    if (!e || e.key.length !== this.keyLen) return undefined;
    const key = this.key;
    for (let i = 0; i < this.keyLen; i++) if (e.key[i] !== key[i]) return undefined;
    if (e.zone ? e.zone.version !== e.version : false) return undefined;
    if ((e.global || !e.zone) && e.generation !== generation) return undefined;
    e.used = true;
    this.hit = e;
    return e.reply;
  }

  /** RRL kind (answer/rrl.ts) of the last hit. */
  get hitKind(): number {
    return this.hit?.rrlKind ?? 0;
  }

  /** RRL bucket name of the last hit. */
  get hitName(): number {
    return this.hit?.rrlName ?? 0;
  }

  /**
   * Writes `reply` (a lookup hit) for the query at `msg[off]` into `out` at `outOff`: the reply,
   * then the query's ID and question as sent. Returns the length written.
   */
  static patch(
    reply: Buffer,
    msg: Buffer,
    off: number,
    questionLen: number,
    out: Buffer,
    outOff: number,
  ): number {
    reply.copy(out, outOff);
    out[outOff] = msg[off];
    out[outOff + 1] = msg[off + 1];
    msg.copy(out, outOff + 12, off + 12, off + 12 + questionLen);
    return reply.length;
  }

  /** Caches `reply` under the last probed question (with its RRL kind and name, when limiting). */
  store(
    reply: Buffer,
    zone: ZoneEntry | undefined,
    global: boolean,
    generation: number,
    rrlKind = 0,
    rrlName = 0,
  ): void {
    const size = reply.length + this.keyLen + OVERHEAD;
    if (size > this.maxBytes) return;
    const old = this.map.get(this.hash);
    if (old) this.remove(old);
    while (this.bytes + size > this.maxBytes && this.slots.length > 0) this.evict();
    // One exact-size allocation per entry (not a slice of Node's shared pool, which would keep a
    // whole 8 KiB slab alive for one small entry): the byte bound then holds.
    const bytes = Buffer.allocUnsafeSlow(this.keyLen + reply.length);
    this.key.copy(bytes, 0, 0, this.keyLen);
    reply.copy(bytes, this.keyLen);
    const e: Entry = {
      key: bytes.subarray(0, this.keyLen),
      reply: bytes.subarray(this.keyLen),
      zone,
      version: zone?.version ?? 0,
      global,
      generation,
      used: false,
      hash: this.hash,
      rrlKind,
      rrlName,
      slot: this.slots.length,
    };
    this.slots.push(e);
    this.map.set(this.hash, e);
    this.bytes += size;
  }

  private remove(e: Entry): void {
    this.map.delete(e.hash);
    const last = this.slots.pop()!;
    if (last !== e) {
      this.slots[e.slot] = last;
      last.slot = e.slot;
    }
    this.bytes -= e.reply.length + e.key.length + OVERHEAD;
  }

  /** A random entry goes; one hit since it was last picked gets a second chance (a few tries). */
  private evict(): void {
    let victim = this.slots[this.random() % this.slots.length];
    for (let tries = 0; tries < 3; tries++) {
      const fresh = victim.zone === undefined || victim.zone.version === victim.version;
      if (!victim.used || !fresh) break;
      victim.used = false;
      victim = this.slots[this.random() % this.slots.length];
    }
    this.remove(victim);
  }

  private random(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x;
    return x >>> 0;
  }
}
