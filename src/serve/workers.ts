/**
 * Serving workers: `workers` threads answering UDP, each with its own socket on every listen
 * address (SO_REUSEPORT: the kernel spreads datagrams over them), its own answer cache, and the
 * zone images the writer builds — shared memory, so one copy whatever the thread count. The main
 * thread keeps TCP, the scheduler, the writer and the control endpoint, and answers what a worker
 * hands back: NOTIFY (the scheduler is here), zone transfer requests (xfrout reads SQLite here),
 * and queries for a zone whose image has not arrived yet (start-up: main answers from SQLite).
 *
 * Each commit reaches every worker as one message carrying the new image (or patch); a worker
 * answers each query wholly from one image, so no answer mixes two versions.
 */

import type { Worker } from 'node:worker_threads';
import type { ImageUpdate } from '../answer/image-source.js';
import type { AnswerPolicy } from '../answer/minimal.js';
import type { RateLimitConfig } from '../answer/rrl.js';
import type { TsigKey } from '../dns/tsig.js';
import type { Logger } from '../log.js';
import type { ZoneState } from '../store/zone-store.js';
import { startThread } from '../thread.js';
import { COUNTER_BYTES, QueryCounters } from './query-counters.js';
import type { Listen } from './server.js';
import type { ZoneEntry } from './zone-table.js';

/** What a worker is started with (structured-cloned). */
export interface WorkerSetup {
  listen: Listen[];
  logLevel: string;
  udpSize: number;
  udpReceiveBuffer: number;
  cacheBytes: number;
  identity?: { version?: string; hostname?: string; nsid?: string };
  keys: Map<string, TsigKey>;
  /** Shared by all threads, so a server cookie made by one verifies at another (RFC 7873). */
  cookieSecret: Buffer;
  zones: ZoneStatus[];
  /** Response rate limiting: the config and the table every thread shares (answer/rrl.ts). */
  rateLimit?: { config: RateLimitConfig; table: SharedArrayBuffer };
  /** This worker's query counters: shared memory the main thread reads at scrape time. */
  counters?: SharedArrayBuffer;
}

export interface ZoneStatus {
  name: string;
  apex: Buffer;
  state: ZoneState;
  expiresAt: number | null;
  answers: boolean;
  policy: AnswerPolicy;
}

export type ToWorker =
  | { t: 'image'; update: ImageUpdate | { zone: string; error: string } }
  | { t: 'zone'; zone: ZoneStatus; flush: boolean }
  | { t: 'remove'; zone: string }
  | { t: 'keys'; keys: Map<string, TsigKey> }
  | { t: 'logLevel'; level: string }
  | { t: 'sync'; id: number }
  | { t: 'reply'; id: number; reply?: Uint8Array };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'synced'; id: number }
  | { t: 'failed'; message: string }
  | { t: 'forward'; id: number; msg: Uint8Array; address: string };

/**
 * A message part that costs its own length: structured clone copies a view's whole ArrayBuffer,
 * and a small Buffer is a view into an 8 KiB pool slab, so a 40-byte query crossed as 8 KiB each
 * way — garbage that, under a flood of forwarded queries (NOTIFYs, transfer requests), piled up
 * in the main thread's malloc heap faster than GC freed it. An exact-size copy, then moved
 * (transferred), not cloned.
 */
function own(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** A worker's forward of `msg` (copied) and the transfer list to post it with. */
export function forwardMessage(id: number, msg: Uint8Array, address: string): [FromWorker, ArrayBuffer[]] {
  const bytes = own(msg);
  return [{ t: 'forward', id, msg: bytes, address }, [bytes.buffer as ArrayBuffer]];
}

/** The main thread's reply (copied) to forward `id`, and the transfer list to post it with. */
export function replyMessage(id: number, reply: Uint8Array | undefined): [ToWorker, ArrayBuffer[]] {
  const bytes = reply && own(reply);
  return [{ t: 'reply', id, reply: bytes }, bytes ? [bytes.buffer as ArrayBuffer] : []];
}

export const statusOf = (e: ZoneEntry): ZoneStatus => ({
  name: e.name,
  apex: e.view.apex,
  state: e.state,
  answers: e.answers,
  expiresAt: e.expiresAt,
  policy: e.policy,
});

export class ServingWorkers {
  private threads: Worker[] = [];
  /** One counter block per worker, in shared memory: the metrics read them, no message per query. */
  readonly counters: QueryCounters[];
  /** Image updates since each zone's last base: what a thread needs to catch up. */
  private readonly images = new Map<string, (ImageUpdate | { zone: string; error: string })[]>();
  private stopping = false;
  private syncSeq = 0;
  /** Threads yet to answer each sync, and what to call when none is left. */
  private readonly syncs = new Map<number, { left: Set<Worker>; done: () => void }>();

  constructor(
    private readonly count: number,
    private readonly setup: WorkerSetup,
    /** The main thread's answer to a forwarded request. */
    private readonly answer: (msg: Buffer, peer: string) => Buffer | undefined,
    private readonly log: Logger,
  ) {
    this.counters = Array.from(
      { length: count },
      () => new QueryCounters(new SharedArrayBuffer(COUNTER_BYTES)),
    );
  }

  /** Starts the threads; resolves when every one has bound its sockets. */
  async start(): Promise<void> {
    const started = [];
    for (let i = 0; i < this.count; i++) started.push(this.spawn(i));
    await Promise.all(started);
  }

  private spawn(index: number): Promise<void> {
    const counters = this.counters[index].slots.buffer as SharedArrayBuffer;
    const w = startThread(import.meta.url, 'serve-worker', { ...this.setup, counters });
    this.threads.push(w);
    for (const list of this.images.values()) for (const update of list) w.postMessage({ t: 'image', update });
    return new Promise((resolve, reject) => {
      w.on('message', (m: FromWorker) => {
        if (m.t === 'ready') resolve();
        else if (m.t === 'synced') this.synced(m.id, w);
        else if (m.t === 'failed') reject(new Error(m.message));
        else if (m.t === 'forward') {
          let reply: Buffer | undefined;
          try {
            // The message owns its bytes (forwardMessage): no copy.
            reply = this.answer(Buffer.from(m.msg.buffer, m.msg.byteOffset, m.msg.byteLength), m.address);
          } catch (e) {
            this.log.error({ err: e, peer: m.address }, 'unhandled error answering a forwarded query');
          }
          w.postMessage(...replyMessage(m.id, reply));
        }
      });
      w.on('error', (e) => {
        this.log.error({ err: e, worker: index }, 'serving worker failed');
        reject(e);
      });
      w.on('exit', (code) => {
        if (!this.stopping) this.log.error({ worker: index, code }, 'serving worker exited');
        for (const id of this.syncs.keys()) this.synced(id, w); // nobody left there to wait for
      });
    });
  }

  /** A commit's image: to every thread, and kept for threads that start later. */
  install(update: ImageUpdate | { zone: string; error: string }): void {
    const list = 'kind' in update && update.kind === 'patch' ? (this.images.get(update.zone) ?? []) : [];
    list.push(update);
    this.images.set(update.zone, list);
    this.post({ t: 'image', update });
  }

  zone(e: ZoneEntry, flush = true): void {
    this.post({ t: 'zone', zone: statusOf(e), flush });
  }

  /** The zone is no longer served: every thread drops it (and the answers it cached from it). */
  remove(zone: string): void {
    this.images.delete(zone);
    this.post({ t: 'remove', zone });
  }

  /** New TSIG keys (reload): each thread's gate verifies with them from its next request. */
  keys(keys: ReadonlyMap<string, TsigKey>): void {
    this.post({ t: 'keys', keys: new Map(keys) });
  }

  logLevel(level: string): void {
    this.post({ t: 'logLevel', level });
  }

  /** Resolves once every thread has handled all that was posted to it before. */
  sync(): Promise<void> {
    if (this.threads.length === 0) return Promise.resolve();
    const id = ++this.syncSeq;
    return new Promise((done) => {
      this.syncs.set(id, { left: new Set(this.threads), done });
      this.post({ t: 'sync', id });
    });
  }

  private synced(id: number, w: Worker): void {
    const s = this.syncs.get(id);
    if (!s) return;
    s.left.delete(w);
    if (s.left.size > 0) return;
    this.syncs.delete(id);
    s.done();
  }

  private post(m: ToWorker): void {
    for (const w of this.threads) w.postMessage(m);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.threads.map((w) => w.terminate()));
    this.threads = [];
    for (const s of this.syncs.values()) s.done();
    this.syncs.clear();
  }
}
