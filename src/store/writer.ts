/**
 * All writes to the zone database go through a StoreWriter. better-sqlite3 is synchronous: applying
 * a 1M-record transfer takes seconds, and on the main thread that would stall every query. The
 * daemon's writer is a worker thread with its own connection; the main thread's connection only
 * reads, and WAL lets it keep reading the last committed version while the worker writes.
 * (DirectWriter does the same writes in-process, for tests and `:memory:` databases.)
 */
import type { Worker } from 'node:worker_threads';
import { ImageSource, type ImageUpdate } from '../answer/image-source.js';
import { startThread } from '../thread.js';
import { GuardError } from '../xfrin/guards.js';
import type { Diff, TransferRow, ZoneRow, ZoneRowsDeleted, ZoneRR } from './zone-store.js';
import {
  type ApplyResult,
  type CommitGuards,
  InconsistentDiff,
  type StoreDurability,
  type TransferAudit,
  type ZoneStore,
} from './zone-store.js';

export type ZoneFields = Partial<Omit<ZoneRow, 'name'>>;
export type ApplyMeta = {
  serial: number;
  primary: string;
  now: number;
  guards?: CommitGuards;
  /** The transfer's audit row, written in the same commit (ZoneStore.TransferAudit). */
  audit?: TransferAudit;
};

export interface StoreWriter {
  updateZone(zone: string, fields: ZoneFields): Promise<void>;
  recordTransfer(row: TransferRow): Promise<void>;
  pruneHistory(zone: string, keep: number): Promise<number>;
  /** Starts staging a full zone; batches follow with addIncoming (no reply: errors surface at commit). */
  beginIncoming(): Promise<number>;
  addIncoming(id: number, rrs: ZoneRR[]): void;
  commitIncoming(id: number, zone: string, meta: ApplyMeta): Promise<ApplyResult>;
  dropIncoming(id: number): Promise<void>;
  applyDiffs(
    zone: string,
    diffs: Diff[],
    meta: Omit<ApplyMeta, 'serial'>,
  ): Promise<ApplyResult & { serial: number }>;
  /** Asks for the zone's image as stored now (start-up); it arrives through `onImage`. */
  buildImage(zone: string): Promise<void>;
  /** A zone configured at run time: its row (ZoneStore.addZone). */
  addZone(zone: string): Promise<void>;
  /** A zone no longer configured: every row of it, in one transaction (ZoneStore.deleteZone). */
  deleteZone(zone: string): Promise<ZoneRowsDeleted>;
  /** The writing connection's durability settings, read back (ZoneStore.durability). */
  durability(): Promise<StoreDurability>;
  close(): Promise<void>;
}

/**
 * Receives the zone image that follows each commit (answer/image-source.ts), before the commit's
 * promise resolves. `undefined` data means none could be built: serve the zone from SQLite.
 */
/** RRs per message to the writer when a whole zone held in memory is staged. */
const STAGING_BATCH = 2000;

/**
 * Replaces a zone by one held in memory (an AXFR-style IXFR answer, a catalog we produce) through
 * the staging path a streamed AXFR takes: one commit, the difference recorded as history.
 */
export async function replaceZone(
  writer: StoreWriter,
  zone: string,
  rrs: readonly ZoneRR[],
  meta: ApplyMeta,
): Promise<ApplyResult> {
  const staging = await writer.beginIncoming();
  try {
    for (let i = 0; i < rrs.length; i += STAGING_BATCH)
      writer.addIncoming(staging, rrs.slice(i, i + STAGING_BATCH));
    return await writer.commitIncoming(staging, zone, meta);
  } finally {
    await writer.dropIncoming(staging);
  }
}

export type OnImage = (update: ImageUpdate | { zone: string; error: string }) => void;

/**
 * RRs cross to the worker packed into one fresh ArrayBuffer: structured clone of the small Buffers
 * themselves would copy the 8 KiB pool slab behind each of them.
 * Layout per RR: owner length u8, owner, type u16, ttl u32, rdata length u16, rdata.
 */
export function packRRs(rrs: readonly ZoneRR[]): Uint8Array {
  let size = 0;
  for (const r of rrs) size += 1 + r.owner.length + 8 + r.rdata.length;
  const out = Buffer.from(new ArrayBuffer(size));
  let off = 0;
  for (const r of rrs) {
    out[off++] = r.owner.length;
    off += r.owner.copy(out, off);
    off = out.writeUInt16BE(r.type, off);
    off = out.writeUInt32BE(r.ttl, off);
    off = out.writeUInt16BE(r.rdata.length, off);
    off += r.rdata.copy(out, off);
  }
  return new Uint8Array(out.buffer);
}

export function unpackRRs(packed: Uint8Array): ZoneRR[] {
  const b = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  const out: ZoneRR[] = [];
  let off = 0;
  while (off < b.length) {
    const ol = b[off++];
    const owner = b.subarray(off, off + ol);
    off += ol;
    const type = b.readUInt16BE(off);
    const ttl = b.readUInt32BE(off + 2);
    const rl = b.readUInt16BE(off + 6);
    off += 8;
    out.push({ owner, type, ttl, rdata: b.subarray(off, off + rl) });
    off += rl;
  }
  return out;
}

type PackedDiff = Omit<Diff, 'deleted' | 'added'> & { deleted: Uint8Array; added: Uint8Array };
const packDiffs = (diffs: Diff[]): PackedDiff[] =>
  diffs.map((d) => ({ ...d, deleted: packRRs(d.deleted), added: packRRs(d.added) }));
const unpackDiffs = (diffs: PackedDiff[]): Diff[] =>
  diffs.map((d) => ({ ...d, deleted: unpackRRs(d.deleted), added: unpackRRs(d.added) }));

/** What one operation gives back: its value, and the zone image its commit produced. */
export interface Performed {
  value: unknown;
  image?: ImageUpdate | { zone: string; error: string };
}

/** The image after a commit; a failure to build one must not undo the commit. */
function imageOf(zone: string, build: () => ImageUpdate | undefined): Performed['image'] {
  try {
    return build();
  } catch (e) {
    return { zone, error: (e as Error).message };
  }
}

/** The operations a writer performs, by name: the worker protocol is `{ op, args }`. */
export function perform(store: ZoneStore, images: ImageSource, op: string, args: unknown[]): Performed {
  switch (op) {
    case 'updateZone':
      return { value: store.updateZone(...(args as [string, ZoneFields])) };
    case 'recordTransfer':
      return { value: store.recordTransfer(...(args as [TransferRow])) };
    case 'pruneHistory':
      return { value: store.pruneHistory(...(args as [string, number])) };
    case 'beginIncoming':
      return { value: store.beginIncoming() };
    case 'addIncoming':
      return { value: store.addIncoming(args[0] as number, unpackRRs(args[1] as Uint8Array)) };
    case 'commitIncoming': {
      const [id, zone, meta] = args as [number, string, ApplyMeta];
      const value = store.commitIncoming(id, zone, meta);
      return { value, image: imageOf(zone, () => images.base(zone)) };
    }
    case 'dropIncoming':
      return { value: store.dropIncoming(...(args as [number])) };
    case 'applyDiffs': {
      const zone = args[0] as string;
      const diffs = unpackDiffs(args[1] as PackedDiff[]);
      const value = store.applyDiffs(zone, diffs, args[2] as Omit<ApplyMeta, 'serial'>);
      return { value, image: imageOf(zone, () => images.afterDiffs(zone, value.serial, diffs)) };
    }
    case 'durability':
      return { value: store.durability() };
    case 'buildImage': {
      const zone = args[0] as string;
      return { value: undefined, image: imageOf(zone, () => images.base(zone)) };
    }
    case 'addZone':
      return { value: store.addZone(args[0] as string) };
    case 'deleteZone': {
      const zone = args[0] as string;
      images.forget(zone);
      return { value: store.deleteZone(zone) };
    }
    default:
      throw new Error(`unknown store operation ${op}`);
  }
}

/** Writes on the calling thread, through the given store. */
export class DirectWriter implements StoreWriter {
  /** Errors of fire-and-forget batches, reported by the next commit. */
  private failed = new Map<number, Error>();
  private readonly images: ImageSource;

  constructor(
    private readonly store: ZoneStore,
    private readonly onImage: OnImage = () => {},
  ) {
    this.images = new ImageSource(store);
  }

  private run<T>(op: string, ...args: unknown[]): T {
    const done = perform(this.store, this.images, op, args);
    if (done.image) this.onImage(done.image);
    return done.value as T;
  }

  async updateZone(zone: string, fields: ZoneFields) {
    this.store.updateZone(zone, fields);
  }
  async recordTransfer(row: TransferRow) {
    this.store.recordTransfer(row);
  }
  async pruneHistory(zone: string, keep: number) {
    return this.store.pruneHistory(zone, keep);
  }
  async beginIncoming() {
    return this.store.beginIncoming();
  }
  addIncoming(id: number, rrs: ZoneRR[]) {
    try {
      this.store.addIncoming(id, rrs);
    } catch (e) {
      this.failed.set(id, e as Error);
    }
  }
  async commitIncoming(id: number, zone: string, meta: ApplyMeta) {
    const e = this.failed.get(id);
    if (e) throw e;
    const result = this.run<ApplyResult>('commitIncoming', id, zone, meta);
    // In-process there is no idle thread to write the text later: finish it now.
    while (this.store.fillText()) {}
    return result;
  }
  async dropIncoming(id: number) {
    this.failed.delete(id);
    this.store.dropIncoming(id);
  }
  async applyDiffs(zone: string, diffs: Diff[], meta: Omit<ApplyMeta, 'serial'>) {
    return this.run<ApplyResult & { serial: number }>('applyDiffs', zone, packDiffs(diffs), meta);
  }
  async buildImage(zone: string) {
    this.run('buildImage', zone);
  }
  async addZone(zone: string) {
    this.run('addZone', zone);
  }
  async deleteZone(zone: string) {
    return this.run<ZoneRowsDeleted>('deleteZone', zone);
  }
  async durability() {
    return this.store.durability();
  }
  async close() {}
}

/** Errors the callers tell apart keep their class across the thread boundary. */
function revive(name: string, message: string): Error {
  if (name === 'InconsistentDiff') return new InconsistentDiff(message);
  if (name === 'GuardError') return new GuardError(message);
  return new Error(message);
}

type Reply =
  | ({ id: number; ok: true } & Performed)
  | { id: number; ok: false; name: string; message: string };

/**
 * The writer's young generation, small: V8's default one sat mostly empty between transfers,
 * resident (at 10 000 zones the writer's heap was 51 MB committed for 13 MB live; 30 MB with
 * this). Its garbage is per batch and short-lived.
 */
const WRITER_HEAP = { maxYoungGenerationSizeMb: 8 };

/** Writes in a worker thread with its own connection to the database file. */
export class WorkerWriter implements StoreWriter {
  private readonly worker: Worker;
  private seq = 0;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;

  /**
   * `onWrite` runs after each write the worker completed (the main connection's snapshot is
   * stale); `onImage` with the zone image a commit produced, before the commit's promise resolves.
   */
  constructor(
    file: string,
    private readonly onWrite: () => void = () => {},
    private readonly onImage: OnImage = () => {},
  ) {
    this.worker = startThread(import.meta.url, 'write-worker', { file }, WRITER_HEAP);
    this.worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      this.onWrite();
      if (r.ok && r.image) this.onImage(r.image);
      if (!p) return; // a background write of the worker's own (presentation text)
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(revive(r.name, r.message));
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`store writer exited (code ${code})`)));
  }

  private call<T>(op: string, ...args: unknown[]): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, args });
    });
  }

  updateZone(zone: string, fields: ZoneFields) {
    return this.call<void>('updateZone', zone, fields);
  }
  recordTransfer(row: TransferRow) {
    return this.call<void>('recordTransfer', row);
  }
  pruneHistory(zone: string, keep: number) {
    return this.call<number>('pruneHistory', zone, keep);
  }
  beginIncoming() {
    return this.call<number>('beginIncoming');
  }
  addIncoming(id: number, rrs: ZoneRR[]) {
    // id 0: the worker remembers a failure and reports it at commit.
    if (this.dead) return;
    const packed = packRRs(rrs);
    this.worker.postMessage({ id: 0, op: 'addIncoming', args: [id, packed] }, [packed.buffer as ArrayBuffer]);
  }
  commitIncoming(id: number, zone: string, meta: ApplyMeta) {
    return this.call<ApplyResult>('commitIncoming', id, zone, meta);
  }
  dropIncoming(id: number) {
    return this.call<void>('dropIncoming', id);
  }
  applyDiffs(zone: string, diffs: Diff[], meta: Omit<ApplyMeta, 'serial'>) {
    return this.call<ApplyResult & { serial: number }>('applyDiffs', zone, packDiffs(diffs), meta);
  }
  async buildImage(zone: string) {
    await this.call<void>('buildImage', zone);
  }
  addZone(zone: string) {
    return this.call<void>('addZone', zone);
  }
  deleteZone(zone: string) {
    return this.call<ZoneRowsDeleted>('deleteZone', zone);
  }
  durability() {
    return this.call<StoreDurability>('durability');
  }
  /** Waits for queued writes, then closes the worker's connection. */
  async close() {
    if (this.dead) return;
    await this.call<void>('close').catch(() => undefined);
    await this.worker.terminate();
  }
}
