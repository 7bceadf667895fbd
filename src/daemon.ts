/**
 * The daemon: config → store → zone table → server → refresh scheduler. Start-up serves whatever
 * SQLite holds at once (a restart with the primary down still answers), then the scheduler checks
 * every zone. Applied transfers NOTIFY our own secondaries, which transfer from us (xfrout).
 * SIGTERM/SIGINT close the sockets, stop the timers and close the database.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import type { Config } from './config.js';
import { type ControlServer, startControlServer } from './control/server.js';
import { textToName } from './dns/name.js';
import type { Logger } from './log.js';
import { nativeDatagram, reusePortAvailable } from './net/datagram.js';
import { NotifySender } from './refresh/notify-out.js';
import { Refresher } from './refresh/refresher.js';
import { Scheduler } from './refresh/scheduler.js';
import { acl } from './serve/acl.js';
import { QueryHandler } from './serve/handler.js';
import { DnsServer } from './serve/server.js';
import { TsigGate } from './serve/tsig-gate.js';
import { ServingWorkers, statusOf } from './serve/workers.js';
import { XfrOut } from './serve/xfrout.js';
import { ZoneTable } from './serve/zone-table.js';
import { DirectWriter, type OnImage, type StoreWriter, WorkerWriter } from './store/writer.js';
import { ZoneStore } from './store/zone-store.js';

export interface Daemon {
  store: ZoneStore;
  server: DnsServer;
  scheduler: Scheduler;
  stop(): Promise<void>;
}

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  const store = new ZoneStore(config.database);
  const table = new ZoneTable();
  const now = Math.floor(Date.now() / 1000);
  for (const z of config.zones) {
    store.ensureZone(z.name);
    const row = store.zone(z.name)!;
    const expired = row.state === 'ok' && row.expires_at !== null && row.expires_at <= now;
    // RFC 1996 §3.10: by default only the zone's primaries may NOTIFY us.
    const notifiers = z.allowNotify.length > 0 ? z.allowNotify : z.primaries.map((p) => p.address);
    table.add(z.name, textToName(z.name), store, {
      state: expired ? 'expired' : row.state,
      expiresAt: row.expires_at,
      allowNotify: acl(notifiers),
      allowTransfer: acl(z.allowTransfer),
    });
    log.info({ zone: z.name, serial: row.serial, state: row.state }, 'zone loaded from database');
  }
  const notifier = new NotifySender(store, config.keys, log, { self: config.listen });
  const workers = servingThreads(config, log);
  let pool: ServingWorkers | undefined;
  table.onChange = (e) => pool?.zone(e);
  // Each commit's zone image (built by the writer) is installed here and in every worker.
  const onImage: OnImage = (update) => {
    table.install(update);
    pool?.install(update);
    if ('error' in update)
      log.error({ zone: update.zone, err: update.error }, 'zone image not built: answering from SQLite');
  };
  // All writes from here on go through the writer thread; this connection only reads.
  const writer: StoreWriter =
    config.database === ':memory:'
      ? new DirectWriter(store, onImage)
      : new WorkerWriter(config.database, () => store.invalidate(), onImage);
  const refresher = new Refresher(store, writer, table, log, {
    keys: config.keys,
    onTransferred: (zone, serial) => void notifier.notify(zone, serial),
  });
  const scheduler = new Scheduler(config.zones, store, writer, table, refresher, log);
  const cookieSecret = randomBytes(16);
  const handler = new QueryHandler(
    table,
    {
      cookieSecret,
      // Each UDP-answering thread has its own; with UDP workers this one (TCP only) an eighth.
      cacheBytes: workers === 1 ? config.answerCacheBytes : Math.floor(config.answerCacheBytes / 8),
      udpSize: config.udpSize,
      onNotify: (zone, serial) => scheduler.notify(zone, serial),
      identity: config.identity,
    },
    log,
  );
  const server = new DnsServer(
    handler,
    {
      listen: config.listen,
      tcpIdleMs: config.tcpIdleSeconds * 1000,
      // With serving workers, UDP is theirs; the main thread keeps TCP.
      udp: workers === 1,
      udpReceiveBuffer: config.udpReceiveBuffer,
      maxTcpConnections: config.maxTcpConnections,
      gate: new TsigGate(config.keys, log),
      // Each outgoing transfer reads its own snapshot through a read-only connection.
      xfrout: new XfrOut(
        table,
        {
          openReader:
            config.database === ':memory:'
              ? undefined
              : () => new Database(config.database, { readonly: true, fileMustExist: true }),
          udpSize: config.udpSize,
        },
        log,
      ),
    },
    log,
  );
  if (workers > 1) {
    pool = new ServingWorkers(
      workers,
      {
        listen: [...config.listen],
        logLevel: config.logLevel,
        udpSize: config.udpSize,
        udpReceiveBuffer: config.udpReceiveBuffer,
        cacheBytes: config.answerCacheBytes,
        identity: config.identity,
        keys: new Map(config.keys),
        cookieSecret,
        zones: [...table.all()].map(statusOf),
      },
      (msg, peer) => server.answerForwarded(msg, peer),
      log,
    );
  }
  try {
    await server.start();
    await pool?.start();
  } catch (e) {
    await pool?.stop();
    await server.stop();
    await writer.close();
    store.close();
    throw e;
  }
  // Control endpoint (config.control): `ns2 refresh` / `ns2 retransfer` reach the scheduler here.
  let control: ControlServer | undefined;
  if (config.control) {
    control = await startControlServer(config.control, { store, scheduler, log }).catch(async (e) => {
      await server.stop();
      await writer.close();
      store.close();
      throw e;
    });
  }
  // Until its image is built (in the writer, off this thread) a zone is answered from SQLite.
  for (const e of table.all())
    if (store.zone(e.name)?.serial !== null)
      writer.buildImage(e.name).catch((err) => log.error({ zone: e.name, err }, 'zone image not built'));
  scheduler.start();
  let stopped = false;
  return {
    store,
    server,
    scheduler,
    async stop() {
      if (stopped) return;
      stopped = true;
      await control?.close();
      scheduler.stop();
      notifier.close();
      await pool?.stop();
      await server.stop();
      // The writer finishes the operation in hand (a commit is one transaction: it lands whole or
      // not at all), then closes its connection.
      await writer.close();
      store.close();
      log.info('stopped');
    },
  };
}

/**
 * Threads answering UDP: `workers`, unless every socket cannot share the port (SO_REUSEPORT needs
 * the native addon or Node >= 22.12) or the database lives in this process only.
 */
function servingThreads(config: Config, log: Logger): number {
  const native = nativeDatagram();
  if (!native.ok)
    log.warn(
      { reason: native.reason },
      'batched UDP I/O unavailable: using node:dgram (one system call per datagram)',
    );
  if (config.workers === 1) return 1;
  if (config.database === ':memory:') {
    log.warn(
      { workers: config.workers },
      'workers: an in-memory database is served by the main thread alone',
    );
    return 1;
  }
  if (!reusePortAvailable()) {
    log.warn(
      { workers: config.workers, node: process.version },
      'workers: sockets cannot share a port here (no native addon, Node < 22.12): answering UDP on one thread',
    );
    return 1;
  }
  return config.workers;
}
