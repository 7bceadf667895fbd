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

parentPort!.on('message', (m: { id: number; op: string; args: unknown[] }) => {
  if (m.op === 'close') {
    closed = true;
    store.close();
    parentPort!.postMessage({ id: m.id, ok: true, value: undefined });
    return;
  }
  try {
    const staged = m.op === 'commitIncoming' ? failed.get(m.args[0] as number) : undefined;
    if (staged) throw staged;
    if (m.op === 'dropIncoming') failed.delete(m.args[0] as number);
    const done = perform(store, images, m.op, m.args);
    if (m.id !== 0) parentPort!.postMessage({ id: m.id, ok: true, ...done });
  } catch (e) {
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
  if (m.op === 'commitIncoming') fill();
});

fill(); // text a previous run left unfinished
