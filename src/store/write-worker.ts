/**
 * The store writer thread (see writer.ts): one connection, one operation at a time, in order.
 * A failed fire-and-forget batch (addIncoming) is remembered and reported when its zone commits.
 * Between operations it writes the presentation text a large load left for later
 * (ZoneStore.fillText, a few milliseconds per batch), so a queued operation waits at most one batch.
 */
import fs from 'node:fs';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { ImageSource } from '../answer/image-source.js';
import { perform } from './writer.js';
import { ZoneStore } from './zone-store.js';

/** CFS weight 110 against 1024 for answering threads: ~10 % of a contended CPU. */
const WRITER_NICE = 10;

// Answering comes first: on a busy CPU this thread (a transfer's inserts, commit and image build)
// takes what the serving threads leave. Linux nice is per thread, set through its kernel TID.
try {
  const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  if (tid > 0) os.setPriority(tid, WRITER_NICE);
} catch {
  // Not Linux, or not allowed: the writer competes with the answering threads as equals.
}

const store = new ZoneStore((workerData as { file: string }).file);
const images = new ImageSource(store);
const failed = new Map<number, Error>();
let filling = false;
let closed = false;

/** One text batch per turn of the event loop, until none is left. */
function fill(): void {
  if (filling || closed) return;
  filling = true;
  const step = () => {
    let more = false;
    if (!closed) {
      try {
        more = store.fillText();
      } catch {
        more = false; // retried after the next operation (or at the next start)
      }
      // id 0 with no pending call: the main thread's read snapshot is stale, nothing more.
      parentPort!.postMessage({ id: 0, ok: true, value: undefined });
    }
    if (more) setImmediate(step);
    else {
      filling = false;
      if (!closed) shrinkWal();
    }
  };
  setImmediate(step);
}

/**
 * After a large load and its text, the WAL holds a zone's worth of pages: truncate it when no
 * reader is using it. Never waits (busy_timeout 0): with a reader in the way it just stays for
 * the next checkpoint (journal_size_limit bounds it).
 */
function shrinkWal(): void {
  const timeout = store.db.pragma('busy_timeout', { simple: true }) as number;
  try {
    store.db.pragma('busy_timeout = 0');
    store.db.pragma('wal_checkpoint(TRUNCATE)');
  } catch {
    // busy: next time
  } finally {
    store.db.pragma(`busy_timeout = ${timeout}`);
  }
}

type Msg = { id: number; op: string; args: unknown[] };

/**
 * Small row writes (a zone's state and timers, a transfer's audit row, history pruning, a new
 * zone's row): consecutive ones share one transaction, so one fsync (synchronous=FULL) covers
 * them all. With thousands of zones checked at start-up these are most of the writer's work.
 */
const SMALL = new Set(['updateZone', 'recordTransfer', 'pruneHistory', 'addZone']);
const GROUP_MAX = 512;
const queue: Msg[] = [];
let draining = false;

parentPort!.on('message', (m: Msg) => {
  if (m.op === 'close') {
    closed = true;
    queue.length = 0;
    store.close();
    parentPort!.postMessage({ id: m.id, ok: true, value: undefined });
    return;
  }
  queue.push(m);
  if (!draining) {
    draining = true;
    setImmediate(drain);
  }
});

function drain(): void {
  draining = false;
  while (queue.length > 0 && !closed) {
    const m = queue.shift()!;
    if (!SMALL.has(m.op) || queue.length === 0 || !SMALL.has(queue[0].op)) {
      handle(m);
      continue;
    }
    const group = [m];
    while (group.length < GROUP_MAX && queue.length > 0 && SMALL.has(queue[0].op)) group.push(queue.shift()!);
    handleGroup(group);
  }
}

const reply = (m: Msg, done: object) => {
  if (m.id !== 0) parentPort!.postMessage({ id: m.id, ok: true, ...done });
};

function replyError(m: Msg, e: unknown): void {
  const err = e as Error;
  if (m.id === 0) failed.set(m.args[0] as number, err);
  else
    parentPort!.postMessage({
      id: m.id,
      ok: false,
      name: err.name === 'GuardError' ? err.name : err.constructor.name,
      message: err.message,
    });
}

function handle(m: Msg): void {
  try {
    const staged = m.op === 'commitIncoming' ? failed.get(m.args[0] as number) : undefined;
    if (staged) throw staged;
    if (m.op === 'dropIncoming') failed.delete(m.args[0] as number);
    reply(m, perform(store, images, m.op, m.args));
  } catch (e) {
    replyError(m, e);
  }
  if (m.op === 'commitIncoming') fill();
}

/** Small writes in one transaction, each in a savepoint of its own: one failing fails alone. */
function handleGroup(group: Msg[]): void {
  const results: ({ ok: true; done: object } | { ok: false; err: unknown })[] = [];
  try {
    store.batch(() => {
      for (const m of group) {
        try {
          results.push({
            ok: true,
            done: store.db.transaction(() => perform(store, images, m.op, m.args))(),
          });
        } catch (err) {
          results.push({ ok: false, err });
        }
      }
    });
  } catch (err) {
    // The commit itself failed (disk full, I/O error): nothing of the group was written.
    for (const m of group) replyError(m, err);
    return;
  }
  group.forEach((m, i) => {
    const r = results[i];
    if (r.ok) reply(m, r.done);
    else replyError(m, r.err);
  });
}

fill(); // text a previous run left unfinished
