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

/**
 * One image: a single buffer (shared across threads, not copied) seen as words `w` and bytes `b`,
 * and where each array lies in it. Two views per image, not one per array: every view is an
 * object in each thread holding the image (~100 bytes), and at 100 000 zones twelve of them per
 * image were a third of the main thread's heap. Structured-cloneable.
 */
export interface ImageData {
  w: Uint32Array;
  b: Uint8Array;
  owners: number;
  /** Word offsets into `w`. Owner i's nkey is b[keys + w[keyOff+i], keys + w[keyOff+i+1]). */
  keyOff: number;
  /** RRs of owner i are w[rrStart+i] .. w[rrStart+i+1]-1, in stored order. */
  rrStart: number;
  /** RRset key of each RR: the type, or sigKey(covered) for an RRSIG (store/zone-store.ts). */
  rrKey: number;
  rrTtl: number;
  /** rdata of RR r is b[rdata + w[rdOff+r], rdata + w[rdOff+r+1]). */
  rdOff: number;
  /** Owners holding an NSEC, sorted by canonical key: ckeys concatenated (nsecKeys) + owner index. */
  nsecOff: number;
  nsecNode: number;
  nsecCount: number;
  /** Owners holding an NSEC3, in owner order. */
  nsec3Node: number;
  nsec3Count: number;
  /** Open-addressing hash of the owners (index or FREE; size a power of two ≥ 2 × owners). */
  hash: number;
  hashMask: number;
  /** Byte offsets into `b`. */
  keys: number;
  rdata: number;
  nsecKeys: number;
}

/** A free hash slot. */
const FREE = 0xffffffff;

type Node = Map<number, StoredRRset>;

const shared = typeof SharedArrayBuffer === 'function';

/** A byte buffer that doubles as it fills. */
class Bytes {
  buf = Buffer.allocUnsafe(1 << 12);
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
  arr = new Uint32Array(1 << 10);
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

/** What a builder fills before finish() copies it out: the same few buffers for every build. */
interface Scratch {
  keys: Bytes;
  rdata: Bytes;
  nsecKeys: Bytes;
  keyOff: Words;
  rrStart: Words;
  rrKey: Words;
  rrTtl: Words;
  rdOff: Words;
  nsec: Words;
  nsec3: Words;
}

/**
 * The scratch of the last finished build, for the next one. The writer builds thousands of small
 * images back to back: fresh scratch each time was ~240 KB of short-lived buffers per image,
 * interleaved in malloc's arena with the long-lived images — fragmentation that stayed in RSS.
 * A builder left unfinished (a failed scan) just takes its scratch with it.
 */
let spare: Scratch | undefined;
/** Scratch grown past this (a large zone) is dropped after the build rather than kept. */
const SPARE_MAX_BYTES = 1 << 20;

function takeScratch(): Scratch {
  const s = spare;
  spare = undefined;
  if (!s)
    return {
      keys: new Bytes(),
      rdata: new Bytes(),
      nsecKeys: new Bytes(),
      keyOff: new Words(),
      rrStart: new Words(),
      rrKey: new Words(),
      rrTtl: new Words(),
      rdOff: new Words(),
      nsec: new Words(),
      nsec3: new Words(),
    };
  for (const b of [s.keys, s.rdata, s.nsecKeys]) b.len = 0;
  for (const w of [s.keyOff, s.rrStart, s.rrKey, s.rrTtl, s.rdOff, s.nsec, s.nsec3]) w.length = 0;
  return s;
}

function giveBack(s: Scratch): void {
  const bytes =
    s.keys.buf.length +
    s.rdata.buf.length +
    s.nsecKeys.buf.length +
    (s.rrKey.arr.length + s.rdOff.arr.length) * 8;
  if (bytes <= SPARE_MAX_BYTES) spare = s;
}

/**
 * Lays the image's arrays out in one buffer (shared when possible): one allocation per image, not
 * twelve — each buffer has a fixed cost in every thread that holds it (its object, V8's backing
 * store record, a malloc chunk), which dominated small zones.
 */
function pack(
  u32s: Record<
    'keyOff' | 'rrStart' | 'rrKey' | 'rrTtl' | 'rdOff' | 'nsecOff' | 'nsecNode' | 'nsec3Node',
    Words | Uint32Array
  >,
  hashSize: number,
  u8s: { keys: Bytes; rdata: Bytes; nsecKeys: Bytes },
): ImageData {
  const words = Object.values(u32s).reduce((n, a) => n + a.length, hashSize);
  const size = words * 4 + u8s.keys.len + u8s.rdata.len + u8s.nsecKeys.len;
  const buf = shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size);
  const w = new Uint32Array(buf, 0, words);
  const b = new Uint8Array(buf);
  w.fill(FREE, 0, hashSize);
  let at = hashSize;
  const put32 = (a: Words | Uint32Array): number => {
    w.set(a instanceof Words ? a.arr.subarray(0, a.length) : a, at);
    at += a.length;
    return at - a.length;
  };
  let byte = words * 4;
  const put8 = (a: Bytes): number => {
    b.set(a.buf.subarray(0, a.len), byte);
    byte += a.len;
    return byte - a.len;
  };
  return {
    w,
    b,
    owners: u32s.keyOff.length - 1,
    hash: 0,
    hashMask: hashSize - 1,
    keyOff: put32(u32s.keyOff),
    rrStart: put32(u32s.rrStart),
    rrKey: put32(u32s.rrKey),
    rrTtl: put32(u32s.rrTtl),
    rdOff: put32(u32s.rdOff),
    nsecOff: put32(u32s.nsecOff),
    nsecNode: put32(u32s.nsecNode),
    nsecCount: u32s.nsecNode.length,
    nsec3Node: put32(u32s.nsec3Node),
    nsec3Count: u32s.nsec3Node.length,
    keys: put8(u8s.keys),
    rdata: put8(u8s.rdata),
    nsecKeys: put8(u8s.nsecKeys),
  };
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
  private readonly s = takeScratch();
  private last: Buffer | undefined;

  constructor() {
    this.s.keyOff.push(0);
    this.s.rrStart.push(0);
    this.s.rdOff.push(0);
  }

  add(nkey: Buffer, rtype: number, ttl: number, rdata: Buffer): void {
    const s = this.s;
    const order = this.last ? Buffer.compare(this.last, nkey) : -1;
    if (order > 0) throw new Error('zone image: owners out of order');
    const owner = s.keyOff.length - 2; // index of the owner being filled, -1 before the first
    if (order !== 0) {
      s.keys.push(nkey);
      s.keyOff.push(s.keys.len);
      s.rrStart.push(s.rrKey.length);
      this.last = Buffer.from(nkey);
    }
    if (rtype < 0) return;
    const node = order === 0 ? owner : owner + 1;
    s.rrKey.push(rtype === TYPE.RRSIG && rdata.length >= 2 ? sigKey(rdata.readUInt16BE(0)) : rtype);
    s.rrTtl.push(ttl);
    s.rdata.push(rdata);
    s.rdOff.push(s.rdata.len);
    s.rrStart.arr[node + 1] = s.rrKey.length;
    if (rtype === TYPE.NSEC && s.nsec.last !== node) s.nsec.push(node);
    if (rtype === TYPE.NSEC3 && s.nsec3.last !== node) s.nsec3.push(node);
  }

  finish(): ImageData {
    const s = this.s;
    const keys = s.keys.buf;
    const off = s.keyOff.arr;
    const ck = [...s.nsec.arr.subarray(0, s.nsec.length)]
      .map((i) => ({ i, c: canonicalKey(keys.subarray(off[i], off[i + 1])) }))
      .sort((a, b) => Buffer.compare(a.c, b.c));
    const nsecOff = [0];
    for (const { c } of ck) {
      s.nsecKeys.push(c);
      nsecOff.push(s.nsecKeys.len);
    }
    const owners = s.keyOff.length - 1;
    let size = 16;
    while (size < owners * 2) size *= 2;
    const d = pack(
      {
        keyOff: s.keyOff,
        rrStart: s.rrStart,
        rrKey: s.rrKey,
        rrTtl: s.rrTtl,
        rdOff: s.rdOff,
        nsecOff: Uint32Array.from(nsecOff),
        nsecNode: Uint32Array.from(ck, (x) => x.i),
        nsec3Node: s.nsec3,
      },
      size,
      s,
    );
    const w = d.w;
    for (let i = 0; i < owners; i++) {
      let h = fnv(keys, off[i], off[i + 1] - off[i]) & (size - 1);
      while (w[h] !== FREE) h = (h + 1) & (size - 1);
      w[h] = i;
    }
    giveBack(s);
    return d;
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
export const ownerCount = (d: ImageData): number => d.owners;

/** FNV-1a over b[off, off+len). */
function fnv(b: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = off; i < off + len; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

/** Index of the owner `key` in `d`, or -1: one hash probe or a few, one comparison. */
function findOwner(d: ImageData, key: Uint8Array): number {
  const w = d.w;
  const mask = d.hashMask;
  const ko = d.keyOff;
  for (let h = fnv(key, 0, key.length) & mask; ; h = (h + 1) & mask) {
    const i = w[d.hash + h];
    if (i === FREE) return -1;
    const s = w[ko + i];
    if (cmp(d.b, d.keys + s, w[ko + i + 1] - s, key, 0, key.length) === 0) return i;
  }
}

/** Index of the first owner sorting after `key` (may be ownerCount). */
function firstAfter(d: ImageData, key: Uint8Array): number {
  const w = d.w;
  const ko = d.keyOff;
  let lo = 0;
  let hi = d.owners;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const s = w[ko + mid];
    if (cmp(d.b, d.keys + s, w[ko + mid + 1] - s, key, 0, key.length) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function ownerKey(d: ImageData, i: number): Buffer {
  const s = d.w[d.keyOff + i];
  return Buffer.from(d.b.buffer, d.b.byteOffset + d.keys + s, d.w[d.keyOff + i + 1] - s);
}

function hasPrefix(d: ImageData, i: number, prefix: Uint8Array): boolean {
  const s = d.w[d.keyOff + i];
  const len = d.w[d.keyOff + i + 1] - s;
  return len > prefix.length && cmp(d.b, d.keys + s, prefix.length, prefix, 0, prefix.length) === 0;
}

function decodeNode(d: ImageData, i: number): Node {
  const out: Node = new Map();
  const w = d.w;
  const rdBuf = d.b.buffer;
  const base = d.b.byteOffset + d.rdata;
  for (let r = w[d.rrStart + i]; r < w[d.rrStart + i + 1]; r++) {
    const start = w[d.rdOff + r];
    const rdata = Buffer.from(rdBuf, base + start, w[d.rdOff + r + 1] - start);
    const k = w[d.rrKey + r];
    const set = out.get(k);
    if (set) set.rdatas.push(rdata);
    else out.set(k, { ttl: w[d.rrTtl + r], rdatas: [rdata] });
  }
  return out;
}

/** Predecessor-or-equal of `key` among the NSEC owners' canonical keys: an NSEC index, or -1. */
function nsecAtOrBefore(d: ImageData, ckey: Uint8Array): number {
  const w = d.w;
  let lo = 0;
  let hi = d.nsecCount;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const s = w[d.nsecOff + mid];
    if (cmp(d.b, d.nsecKeys + s, w[d.nsecOff + mid + 1] - s, ckey, 0, ckey.length) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Predecessor-or-equal of `key` among the NSEC3 owners: an NSEC3 index, or -1. */
function nsec3AtOrBefore(d: ImageData, key: Uint8Array): number {
  const w = d.w;
  let lo = 0;
  let hi = d.nsec3Count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const i = w[d.nsec3Node + mid];
    const s = w[d.keyOff + i];
    if (cmp(d.b, d.keys + s, w[d.keyOff + i + 1] - s, key, 0, key.length) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Owner index of NSEC j / NSEC3 j. */
const nsecNode = (d: ImageData, j: number): number => d.w[d.nsecNode + j];
const nsec3Node = (d: ImageData, j: number): number => d.w[d.nsec3Node + j];

/**
 * Decoded owners kept, all images of this thread together (a few MB at most). A bound per image
 * grew with the number of zones: 100 000 zones each keeping its apex were 200 MB.
 */
const DECODED_MAX = 16384;
let decodedCount = 0;
/** The images holding some of those: all dropped at once when the total reaches the bound. */
const decodedIn = new Set<ZoneImage>();

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
   * popular names): the image never changes, so a decoded node stays right. Made on first use;
   * bounded over all images (remember()).
   */
  private decoded: Map<number, Node> | undefined;

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
    return this.decoded?.get(i) ?? this.decode(i);
  }

  /** This version is no longer served: its decoded owners go now, not at the next clear. */
  retire(): void {
    if (!this.decoded) return;
    decodedCount -= this.decoded.size;
    this.decoded = undefined;
    decodedIn.delete(this);
  }

  private decode(i: number): Node {
    const node = decodeNode(this.base, i);
    if (decodedCount >= DECODED_MAX) {
      for (const z of decodedIn) z.decoded = undefined;
      decodedIn.clear();
      decodedCount = 0;
    }
    if (!this.decoded) {
      this.decoded = new Map();
      decodedIn.add(this);
    }
    this.decoded.set(i, node);
    decodedCount++;
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
    while (j >= 0 && this.overlay && this.shadow(nsecNode(d, j))) j--;
    const fromBase =
      j >= 0 ? d.b.subarray(d.nsecKeys + d.w[d.nsecOff + j], d.nsecKeys + d.w[d.nsecOff + j + 1]) : undefined;
    const fromOverlay = this.overlay ? atOrBefore(this.overlay.nsec, ckey, (x) => x.ckey) : undefined;
    if (!fromOverlay) return j >= 0 ? ownerKey(d, nsecNode(d, j)) : undefined;
    if (!fromBase || Buffer.compare(fromOverlay.ckey, Buffer.from(fromBase)) >= 0) return fromOverlay.nkey;
    return ownerKey(d, nsecNode(d, j));
  }

  nsec3Owner(nkey: Buffer): Buffer | undefined {
    const d = this.base;
    const pick = (j: number): Buffer | undefined => {
      while (j >= 0 && this.overlay && this.shadow(nsec3Node(d, j))) j--;
      return j >= 0 ? ownerKey(d, nsec3Node(d, j)) : undefined;
    };
    const ov = this.overlay?.nsec3 ?? [];
    const hit = larger(
      pick(nsec3AtOrBefore(d, nkey)),
      atOrBefore(ov, nkey, (k) => k),
    );
    // RFC 5155 §7.2: the hash sorts before every owner: the last NSEC3 covers it (wrap-around).
    return hit ?? larger(pick(d.nsec3Count - 1), ov[ov.length - 1]);
  }
}
