/**
 * One serving worker thread (see workers.ts): UDP sockets on every listen address, a zone table
 * mirroring the main thread's (state from messages, data from the shared zone images), a query
 * handler with its own answer cache. What it cannot answer goes to the main thread and the reply
 * comes back to be sent from the same socket.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import type { TsigKey } from '../dns/tsig.js';
import { createLogger } from '../log.js';
import { QueryHandler } from './handler.js';
import { QueryCounters } from './query-counters.js';
import { DnsServer, udpRateLimit } from './server.js';
import { TsigGate } from './tsig-gate.js';
import {
  type FromWorker,
  forwardMessage,
  type ToWorker,
  type WorkerSetup,
  type ZoneStatus,
} from './workers.js';
import { ZoneTable } from './zone-table.js';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const log = createLogger(setup.logLevel).child({ worker: threadId });
const post = (m: FromWorker) => port.postMessage(m);

const table = new ZoneTable();
const status = (z: ZoneStatus) => {
  const e =
    table.get(z.name) ??
    table.add(z.name, Buffer.from(z.apex), undefined, {
      state: z.state,
      answers: z.answers,
      policy: z.policy,
    });
  e.state = z.state;
  e.policy = z.policy;
  e.expiresAt = z.expiresAt;
};
for (const z of setup.zones) status(z);

// Structured clone turned the secrets into plain Uint8Arrays. Replaced in place on reload.
const keys = new Map<string, TsigKey>();
const setKeys = (from: Map<string, TsigKey>) => {
  keys.clear();
  for (const [name, k] of from) keys.set(name, { ...k, secret: Buffer.from(k.secret) });
};
setKeys(setup.keys);

const pending = new Map<number, (reply: Buffer) => void>();
let seq = 0;

const handler = new QueryHandler(
  table,
  {
    udpSize: setup.udpSize,
    cacheBytes: setup.cacheBytes,
    identity: setup.identity,
    cookieSecret: Buffer.from(setup.cookieSecret),
    forward: true,
    rateLimit: setup.rateLimit !== undefined,
    // The main thread's view of this worker's counts (the buffer is shared, not copied).
    counters: setup.counters ? new QueryCounters(setup.counters) : undefined,
  },
  log,
);
const server = new DnsServer(
  handler,
  {
    listen: setup.listen,
    tcp: false,
    reusePort: true,
    udpReceiveBuffer: setup.udpReceiveBuffer,
    tcpIdleMs: 0,
    maxTcpConnections: 0,
    rateLimit: setup.rateLimit && udpRateLimit(setup.rateLimit.config, setup.rateLimit.table, log, true),
    gate: new TsigGate(keys, log),
    forward: (msg, peer, reply) => {
      const id = ++seq;
      pending.set(id, reply);
      port.postMessage(...forwardMessage(id, msg, peer.address));
    },
  },
  log,
);

port.on('message', (m: ToWorker) => {
  if (m.t === 'image') table.install(m.update);
  else if (m.t === 'zone') {
    status(m.zone);
    if (m.flush) table.changed(m.zone.name);
  } else if (m.t === 'remove') table.remove(m.zone);
  else if (m.t === 'keys') setKeys(m.keys);
  else if (m.t === 'logLevel') log.level = m.level;
  else if (m.t === 'sync') post({ t: 'synced', id: m.id });
  else if (m.t === 'reply') {
    const send = pending.get(m.id);
    pending.delete(m.id);
    if (send && m.reply) send(Buffer.from(m.reply.buffer, m.reply.byteOffset, m.reply.byteLength));
  }
});

server.start().then(
  () => post({ t: 'ready' }),
  (e: Error) => post({ t: 'failed', message: e.message }),
);
