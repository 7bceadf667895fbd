/**
 * A zone version held in memory for answering: every owner name's RRsets in a handful of flat
 * typed arrays (no object per name), built once from SQLite by the writer thread and shared with
 * every serving thread (SharedArrayBuffer: one copy whatever the number of workers).
 *
 * Owners are sorted by nameKey() bytes — the order SQLite gives BLOBs — so the RFC 1034 walk's
 * questions are binary searches: a node is an exact match, "has descendants" is the next key
 * carrying this one as prefix (nameKey is prefix-free, dns/name.ts), the NSEC covering a name is
 * a predecessor by canonical key (RFC 4034 §6.1) and the NSEC3 covering a hash a predecessor by
 * nkey (NSEC3 owners are one label under the apex, RFC 5155 §7.2).
 *
 * An IXFR does not rebuild the image: the writer sends the touched owners as a small image of
 * their own (a patch, deleted owners as nodes without RRs) and the reader lays it over the base.
 * Past a size the writer builds a fresh base instead (see store/images.ts).
 */
import { canonicalKey } from '../dns/dnssec.js';
import { TYPE } from '../dns/types.js';
import { type StoredRRset, sigKey, type ZoneReader } from '../store/zone-store.js';

/** The arrays of one image; structured-cloneable, shared (not copied) across threads. */
export interface ImageData {
  /** Owner nkeys concatenated in sorted order; owner i is keys[keyOff[i], keyOff[i+1]). */
  keys: Uint8Array;
  keyOff: Uint32Array;
  /** RRs of owner i are rrStart[i] .. rrStart[i+1]-1, in stored order. */
  rrStart: Uint32Array;
  /** RRset key of each RR: the type, or sigKey(covered) for an RRSIG (store/zone-store.ts). */
  rrKey: Uint32Array;
  rrTtl: Uint32Array;
  /** rdata of RR r is rdata[rdOff[r], rdOff[r+1]). */
  rdOff: Uint32Array;
  rdata: Uint8Array;
  /** Owners holding an NSEC, sorted by canonical key: ckeys concatenated + owner index. */
  nsecKeys: Uint8Array;
  nsecOff: Uint32Array;
  nsecNode: Uint32Array;
  /** Owners holding an NSEC3, in owner order. */
  nsec3Node: Uint32Array;
  /** Open-addressing hash of the owners (index or -1; size a power of two ≥ 2 × owners). */
  hash: Int32Array;
}

type Node = Map<number, StoredRRset>;

const shared = typeof SharedArrayBuffer === 'function';

function u8(src: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(shared ? new SharedArrayBuffer(len) : new ArrayBuffer(len));
  out.set(src.subarray(0, len));
  return out;
}

function u32(src: Words | readonly number[]): Uint32Array {
  const len = src.length;
  const out = new Uint32Array(shared ? new SharedArrayBuffer(len * 4) : new ArrayBuffer(len * 4));
  if (src instanceof Words) out.set(src.arr.subarray(0, len));
  else out.set(src);
  return out;
}

/** A byte buffer that doubles as it fills. */
class Bytes {
  buf = Buffer.allocUnsafe(1 << 16);
  len = 0;
  push(b: Uint8Array): void {
    if (this.len + b.length > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + b.length));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    this.buf.set(b, this.len);
    this.len += b.length;
  }
}

/** A Uint32Array that doubles as it fills (a plain array of numbers costs twice the memory). */
class Words {
  arr = new Uint32Array(1 << 12);
  length = 0;
  push(v: number): void {
    if (this.length === this.arr.length) {
      const next = new Uint32Array(this.arr.length * 2);
      next.set(this.arr);
      this.arr = next;
    }
    this.arr[this.length++] = v;
  }
  get last(): number {
    return this.length > 0 ? this.arr[this.length - 1] : -1;
  }
}

/** Compares a[ao, ao+al) with b[bo, bo+bl) as memcmp then length (SQLite's BLOB order). */
function cmp(a: Uint8Array, ao: number, al: number, b: Uint8Array, bo: number, bl: number): number {
  const n = Math.min(al, bl);
  for (let i = 0; i < n; i++) {
    const d = a[ao + i] - b[bo + i];
    if (d !== 0) return d;
  }
  return al - bl;
}

/**
 * Builds an image from RRs given in owner order (ZoneStore.scanZone). An owner may be given
 * with no RR (`rtype` < 0): a patch uses that for an owner the change deleted.
 */
export class ImageBuilder {
  private readonly keys = new Bytes();
  private readonly rdata = new Bytes();
  private readonly keyOff = new Words();
  private readonly rrStart = new Words();
  private readonly rrKey = new Words();
  private readonly rrTtl = new Words();
  private readonly rdOff = new Words();
  private readonly nsec = new Words();
  private readonly nsec3 = new Words();
  private last: Buffer | undefined;

  constructor() {
    this.keyOff.push(0);
    this.rrStart.push(0);
    this.rdOff.push(0);
  }

  add(nkey: Buffer, rtype: number, ttl: number, rdata: Buffer): void {
    const order = this.last ? Buffer.compare(this.last, nkey) : -1;
    if (order > 0) throw new Error('zone image: owners out of order');
    const owner = this.keyOff.length - 2; // index of the owner being filled, -1 before the first
    if (order !== 0) {
      this.keys.push(nkey);
      this.keyOff.push(this.keys.len);
      this.rrStart.push(this.rrKey.length);
      this.last = Buffer.from(nkey);
    }
    if (rtype < 0) return;
    const node = order === 0 ? owner : owner + 1;
    this.rrKey.push(rtype === TYPE.RRSIG && rdata.length >= 2 ? sigKey(rdata.readUInt16BE(0)) : rtype);
    this.rrTtl.push(ttl);
    this.rdata.push(rdata);
    this.rdOff.push(this.rdata.len);
    this.rrStart.arr[node + 1] = this.rrKey.length;
    if (rtype === TYPE.NSEC && this.nsec.last !== node) this.nsec.push(node);
    if (rtype === TYPE.NSEC3 && this.nsec3.last !== node) this.nsec3.push(node);
  }

  finish(): ImageData {
    const keys = this.keys.buf;
    const off = this.keyOff.arr;
    const ck = [...this.nsec.arr.subarray(0, this.nsec.length)]
      .map((i) => ({ i, c: canonicalKey(keys.subarray(off[i], off[i + 1])) }))
      .sort((a, b) => Buffer.compare(a.c, b.c));
    const nsecKeys = new Bytes();
    const nsecOff = [0];
    for (const { c } of ck) {
      nsecKeys.push(c);
      nsecOff.push(nsecKeys.len);
    }
    const owners = this.keyOff.length - 1;
    let size = 16;
    while (size < owners * 2) size *= 2;
    const hash = new Int32Array(shared ? new SharedArrayBuffer(size * 4) : new ArrayBuffer(size * 4)).fill(
      -1,
    );
    for (let i = 0; i < owners; i++) {
      let h = fnv(keys, off[i], off[i + 1] - off[i]) & (size - 1);
      while (hash[h] !== -1) h = (h + 1) & (size - 1);
      hash[h] = i;
    }
    return {
      hash,
      keys: u8(keys, this.keys.len),
      keyOff: u32(this.keyOff),
      rrStart: u32(this.rrStart),
      rrKey: u32(this.rrKey),
      rrTtl: u32(this.rrTtl),
      rdOff: u32(this.rdOff),
      rdata: u8(this.rdata.buf, this.rdata.len),
      nsecKeys: u8(nsecKeys.buf, nsecKeys.len),
      nsecOff: u32(nsecOff),
      nsecNode: u32(ck.map((x) => x.i)),
      nsec3Node: u32(this.nsec3),
    };
  }
}

/** A patch: the given owners' whole new contents (an empty node: the owner is gone). */
export function buildPatch(nodes: Iterable<[nkey: Buffer, node: Node]>): ImageData {
  const sorted = [...nodes].sort((a, b) => Buffer.compare(a[0], b[0]));
  const b = new ImageBuilder();
  for (const [nkey, node] of sorted) {
    if (node.size === 0) b.add(nkey, -1, 0, EMPTY);
    for (const [k, set] of node)
      for (const rdata of set.rdatas) b.add(nkey, k >= 0x10000 ? TYPE.RRSIG : k, set.ttl, rdata);
  }
  return b.finish();
}

const EMPTY = Buffer.alloc(0);

export function buildImage(rows: Iterable<[Buffer, number, number, Buffer]>): ImageData {
  const b = new ImageBuilder();
  for (const [nkey, rtype, ttl, rdata] of rows) b.add(nkey, rtype, ttl, rdata);
  return b.finish();
}

/** Owners an image holds. */
export const ownerCount = (d: ImageData): number => d.keyOff.length - 1;

/** FNV-1a over b[off, off+len). */
function fnv(b: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = off; i < off + len; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

/** Index of the owner `key` in `d`, or -1: one hash probe or a few, one comparison. */
function findOwner(d: ImageData, key: Uint8Array): number {
  const mask = d.hash.length - 1;
  for (let h = fnv(key, 0, key.length) & mask; ; h = (h + 1) & mask) {
    const i = d.hash[h];
    if (i < 0) return -1;
    const s = d.keyOff[i];
    if (cmp(d.keys, s, d.keyOff[i + 1] - s, key, 0, key.length) === 0) return i;
  }
}

/** Index of the first owner sorting after `key` (may be ownerCount). */
function firstAfter(d: ImageData, key: Uint8Array): number {
  let lo = 0;
  let hi = d.keyOff.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const s = d.keyOff[mid];
    if (cmp(d.keys, s, d.keyOff[mid + 1] - s, key, 0, key.length) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function ownerKey(d: ImageData, i: number): Buffer {
  return Buffer.from(d.keys.buffer, d.keys.byteOffset + d.keyOff[i], d.keyOff[i + 1] - d.keyOff[i]);
}

function hasPrefix(d: ImageData, i: number, prefix: Uint8Array): boolean {
  const s = d.keyOff[i];
  const len = d.keyOff[i + 1] - s;
  return len > prefix.length && cmp(d.keys, s, prefix.length, prefix, 0, prefix.length) === 0;
}

function decodeNode(d: ImageData, i: number): Node {
  const out: Node = new Map();
  const rdBuf = d.rdata.buffer;
  const base = d.rdata.byteOffset;
  for (let r = d.rrStart[i]; r < d.rrStart[i + 1]; r++) {
    const rdata = Buffer.from(rdBuf, base + d.rdOff[r], d.rdOff[r + 1] - d.rdOff[r]);
    const k = d.rrKey[r];
    const set = out.get(k);
    if (set) set.rdatas.push(rdata);
    else out.set(k, { ttl: d.rrTtl[r], rdatas: [rdata] });
  }
  return out;
}

/** Predecessor-or-equal of `key` among d.nsecKeys: index into nsecNode, or -1. */
function nsecAtOrBefore(d: ImageData, ckey: Uint8Array): number {
  let lo = 0;
  let hi = d.nsecNode.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const s = d.nsecOff[mid];
    if (cmp(d.nsecKeys, s, d.nsecOff[mid + 1] - s, ckey, 0, ckey.length) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Predecessor-or-equal of `key` among the NSEC3 owners: index into nsec3Node, or -1. */
function nsec3AtOrBefore(d: ImageData, key: Uint8Array): number {
  let lo = 0;
  let hi = d.nsec3Node.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const i = d.nsec3Node[mid];
    const s = d.keyOff[i];
    if (cmp(d.keys, s, d.keyOff[i + 1] - s, key, 0, key.length) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Decoded owners kept per image (a few MB at most). */
const DECODED_MAX = 4096;

/** The owners an IXFR touched, laid over a base image; each replaces the base's node whole. */
interface Overlay {
  nodes: Map<string, Node>;
  /** Overlay owners with RRs, sorted. */
  keys: Buffer[];
  /** Overlay owners holding an NSEC: canonical key and nkey, sorted by ckey. */
  nsec: { ckey: Buffer; nkey: Buffer }[];
  /** Overlay owners holding an NSEC3, sorted. */
  nsec3: Buffer[];
}

const latin1 = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** Last element of sorted `list` that is <= `key` under `keyOf`, or undefined. */
function atOrBefore<T>(list: readonly T[], key: Buffer, keyOf: (t: T) => Buffer): T | undefined {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(keyOf(list[mid]), key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? list[lo - 1] : undefined;
}

const larger = (a: Buffer | undefined, b: Buffer | undefined): Buffer | undefined =>
  !a ? b : !b ? a : Buffer.compare(a, b) >= 0 ? a : b;

/** One zone version as a ZoneReader (serve/lookup.ts reads it like the SQLite reader). */
export class ZoneImage implements ZoneReader {
  /**
   * Owners decoded before (the apex — the first owner, it prefixes every key — NS and MX targets,
   * popular names): the image never changes, so a decoded node stays right. Bounded; cleared when full.
   */
  private readonly decoded = new Map<number, Node>();

  private constructor(
    readonly base: ImageData,
    readonly serial: number,
    private readonly overlay: Overlay | undefined,
  ) {}

  static of(base: ImageData, serial: number): ZoneImage {
    return new ZoneImage(base, serial, undefined);
  }

  /** The next version: this one with `patch`'s owners replacing ours (a new object; this stays). */
  withPatch(patch: ImageData, serial: number): ZoneImage {
    const nodes = new Map(this.overlay?.nodes);
    for (let i = 0; i < ownerCount(patch); i++) nodes.set(latin1(ownerKey(patch, i)), decodeNode(patch, i));
    const keys: Buffer[] = [];
    const nsec: Overlay['nsec'] = [];
    const nsec3: Buffer[] = [];
    for (const [k, node] of nodes) {
      if (node.size === 0) continue;
      const nkey = Buffer.from(k, 'latin1');
      keys.push(nkey);
      if (node.has(TYPE.NSEC)) nsec.push({ ckey: canonicalKey(nkey), nkey });
      if (node.has(TYPE.NSEC3)) nsec3.push(nkey);
    }
    keys.sort(Buffer.compare);
    nsec.sort((a, b) => Buffer.compare(a.ckey, b.ckey));
    nsec3.sort(Buffer.compare);
    return new ZoneImage(this.base, serial, { nodes, keys, nsec, nsec3 });
  }

  /** Owners laid over the base (the writer rebuilds the base when this grows). */
  get overlaid(): number {
    return this.overlay?.nodes.size ?? 0;
  }

  /** The overlay's version of base owner i, if the overlay has one. */
  private shadow(i: number): Node | undefined {
    return this.overlay?.nodes.get(latin1(ownerKey(this.base, i)));
  }

  node(nkey: Buffer): Node {
    if (this.overlay) {
      const n = this.overlay.nodes.get(latin1(nkey));
      if (n) return n;
    }
    const i = findOwner(this.base, nkey);
    if (i < 0) return new Map();
    let node = this.decoded.get(i);
    if (!node) {
      if (this.decoded.size >= DECODED_MAX) this.decoded.clear();
      node = decodeNode(this.base, i);
      this.decoded.set(i, node);
    }
    return node;
  }

  hasChildren(nkey: Buffer): boolean {
    const d = this.base;
    const end = ownerCount(d);
    for (let i = firstAfter(d, nkey); i < end && hasPrefix(d, i, nkey); i++) {
      const s = this.overlay ? this.shadow(i) : undefined;
      if (!s || s.size > 0) return true;
    }
    if (!this.overlay) return false;
    const keys = this.overlay.keys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(keys[mid], nkey) <= 0) lo = mid + 1;
      else hi = mid;
    }
    const k = keys[lo];
    return k !== undefined && k.length > nkey.length && k.compare(nkey, 0, nkey.length, 0, nkey.length) === 0;
  }

  nsecOwner(ckey: Buffer): Buffer | undefined {
    const d = this.base;
    let j = nsecAtOrBefore(d, ckey);
    while (j >= 0 && this.overlay && this.shadow(d.nsecNode[j])) j--;
    const fromBase = j >= 0 ? d.nsecKeys.subarray(d.nsecOff[j], d.nsecOff[j + 1]) : undefined;
    const fromOverlay = this.overlay ? atOrBefore(this.overlay.nsec, ckey, (x) => x.ckey) : undefined;
    if (!fromOverlay) return j >= 0 ? ownerKey(d, d.nsecNode[j]) : undefined;
    if (!fromBase || Buffer.compare(fromOverlay.ckey, Buffer.from(fromBase)) >= 0) return fromOverlay.nkey;
    return ownerKey(d, d.nsecNode[j]);
  }

  nsec3Owner(nkey: Buffer): Buffer | undefined {
    const d = this.base;
    const pick = (j: number): Buffer | undefined => {
      while (j >= 0 && this.overlay && this.shadow(d.nsec3Node[j])) j--;
      return j >= 0 ? ownerKey(d, d.nsec3Node[j]) : undefined;
    };
    const ov = this.overlay?.nsec3 ?? [];
    const hit = larger(
      pick(nsec3AtOrBefore(d, nkey)),
      atOrBefore(ov, nkey, (k) => k),
    );
    // RFC 5155 §7.2: the hash sorts before every owner: the last NSEC3 covers it (wrap-around).
    return hit ?? larger(pick(d.nsec3Node.length - 1), ov[ov.length - 1]);
  }
}
