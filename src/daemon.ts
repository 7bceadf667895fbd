/**
 * The daemon: config → store → zone table → server → refresh scheduler. Start-up serves whatever
 * SQLite holds at once (a restart with the primary down still answers), then the scheduler checks
 * every zone. Applied transfers NOTIFY our own secondaries, which transfer from us (xfrout).
 * SIGTERM/SIGINT close the sockets, stop the timers and close the database; SIGHUP and POST /reload
 * re-read the config file (reload/reloader.ts) and add, change and remove zones (reload/zone-set.ts)
 * and re-read the TLS certificates (`tlsListen`).
 */
import { randomBytes } from 'node:crypto';
import { createRrlTable, type RrlStats, rrlStats } from './answer/rrl.js';
import type { Config, ProducedCatalog } from './config.js';
import { Metrics, zoneSource } from './control/metrics.js';
import { readiness } from './control/readiness.js';
import { type ControlServer, startControlServer, startMetricsServer } from './control/server.js';
import { startHeapTrimmer } from './heap-trim.js';
import type { Logger } from './log.js';
import { nativeDatagram, reusePortAvailable } from './net/datagram.js';
import { CatalogConsumer, type MemberZones } from './refresh/catalog-consumer.js';
import { CatalogProducer } from './refresh/catalog-producer.js';
import { NotifySender } from './refresh/notify-out.js';
import { Refresher } from './refresh/refresher.js';
import { Scheduler } from './refresh/scheduler.js';
import {
  Reloader,
  type ReloadParticipant,
  type ReloadResult,
  type ReloadTrigger,
} from './reload/reloader.js';
import { serveStored, ZoneSet } from './reload/zone-set.js';
import { QueryHandler } from './serve/handler.js';
import { listenError } from './serve/listen-error.js';
import { DnsServer, udpRateLimit } from './serve/server.js';
import { TsigGate } from './serve/tsig-gate.js';
import { ServingWorkers, statusOf } from './serve/workers.js';
import { XfrOut } from './serve/xfrout.js';
import { ZoneTable } from './serve/zone-table.js';
import Database from './store/sqlite.js';
import { DirectWriter, type OnImage, type StoreWriter, WorkerWriter } from './store/writer.js';
import { ZoneStore } from './store/zone-store.js';

export interface Daemon {
  store: ZoneStore;
  server: DnsServer;
  scheduler: Scheduler;
  /** Zones added, reconfigured and removed at run time (reload, catalog zones). */
  zones: ZoneSet;
  /** Re-reads the config file (SIGHUP, POST /reload); never throws for a bad config. */
  reload(trigger: ReloadTrigger): Promise<ReloadResult>;
  /** A subsystem with state to refresh on every reload (certificates, …). */
  onReload(p: ReloadParticipant): void;
  /** Response rate limiting counters (all threads); absent when `rateLimit` is not configured. */
  rateLimit?: () => RrlStats & { maxTableSize: number };
  /** The Prometheus registry and its event hooks (control/metrics.ts). */
  metrics: Metrics;
  stop(): Promise<void>;
}

export interface DaemonOptions {
  /** The file `config` was read from: what a reload reads again. */
  configFile?: string;
}

export async function startDaemon(config: Config, log: Logger, opts: DaemonOptions = {}): Promise<Daemon> {
  const store = new ZoneStore(config.database);
  const table = new ZoneTable();
  const metrics = new Metrics();
  const now = Math.floor(Date.now() / 1000);
  if (config.zones.length === 0 && config.catalogs.length === 0)
    log.warn('no zones configured: every query is answered REFUSED and /readyz reports not ready');
  for (const z of config.zones) {
    store.ensureZone(z.name);
    const row = store.zone(z.name)!;
    serveStored(table, store, z, row, now);
    metrics.addZone(z, store.lastPrimarySerial(z.name));
    log.info({ zone: z.name, serial: row.serial, state: row.state }, 'zone loaded from database');
  }
  // Catalog zones (RFC 9432): each consumed catalog is a zone transferred but never answered;
  // its members stored by an earlier run are served at once, without reading their records.
  let zoneSet: ZoneSet | undefined;
  const consumer = new CatalogConsumer(
    config.catalogs,
    new Set(config.zones.map((z) => z.name)),
    store,
    memberZones(
      () => zoneSet!,
      () => writer,
    ),
    log,
  );
  const catalogZones = config.catalogs.map((c) => c.zone);
  for (const z of catalogZones) {
    store.ensureZone(z.name);
    serveStored(table, store, z, store.zone(z.name)!, now, false);
  }
  const members = consumer.stored();
  for (const m of members) {
    serveStored(table, store, m.zone, m.row, now);
    metrics.addZone(m.zone);
  }
  if (members.length > 0) log.info({ zones: members.length }, 'catalog member zones loaded from database');
  const produced = config.produceCatalog;
  if (produced) {
    store.ensureZone(produced.name);
    serveStored(table, store, produced.zone, store.zone(produced.name)!, now);
  }
  for (const z of store.zones())
    if (!table.get(z.name))
      log.warn(
        { zone: z.name },
        'zone in the database is not configured: not served; the next reload deletes it',
      );
  // One map of TSIG keys for every part that signs or verifies: a reload replaces its contents.
  const keys = new Map(config.keys);
  const notifier = new NotifySender(store, keys, log, {
    self: config.listen,
    onResult: (result) => metrics.notifySent(result),
  });
  const workers = servingThreads(config, log);
  let pool: ServingWorkers | undefined;
  table.onChange = (e, flush) => pool?.zone(e, flush);
  // Each commit frees what the previous version and the transfer held: the trimmer returns it.
  const trimmer = startHeapTrimmer();
  // Each commit's zone image (built by the writer) is installed here and in every worker.
  const onImage: OnImage = (update) => {
    trimmer.churned();
    if (!table.get(update.zone)) return; // committed just before its zone was removed
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
    keys,
    onTransferred: (zone, serial) => {
      void notifier.notify(zone, serial);
      if (consumer.isCatalog(zone.name)) void consumer.changed(zone.name);
    },
    onAttempt: (zone, row) => metrics.transferAttempt(zone, row),
  });
  const scheduler = new Scheduler(
    [...config.zones, ...catalogZones, ...members.map((m) => m.zone)],
    store,
    writer,
    table,
    refresher,
    log,
    config.maxConcurrentTransfers,
  );
  const cookieSecret = randomBytes(16);
  // One rate-limit table for every thread answering UDP (answer/rrl.ts says why).
  const rateLimit = config.rateLimit && {
    config: config.rateLimit,
    table: createRrlTable(config.rateLimit, Math.floor(Date.now() / 1000)),
  };
  const handler = new QueryHandler(
    table,
    {
      cookieSecret,
      // Each UDP-answering thread has its own; with UDP workers this one (TCP only) an eighth.
      cacheBytes: workers === 1 ? config.answerCacheBytes : Math.floor(config.answerCacheBytes / 8),
      udpSize: config.udpSize,
      onNotify: (zone, serial) => scheduler.notify(zone, serial),
      onNotifyResult: (zone, result) => metrics.notifyReceived(zone, result),
      identity: config.identity,
      rateLimit: rateLimit !== undefined && workers === 1,
    },
    log,
  );
  metrics.addQueryCounters(handler.counters);
  const server = new DnsServer(
    handler,
    {
      listen: config.listen,
      tlsListen: config.tlsListen,
      tcpIdleMs: config.tcpIdleSeconds * 1000,
      // With serving workers, UDP is theirs; the main thread keeps TCP.
      udp: workers === 1,
      udpReceiveBuffer: config.udpReceiveBuffer,
      maxTcpConnections: config.maxTcpConnections,
      rateLimit:
        rateLimit && workers === 1 ? udpRateLimit(rateLimit.config, rateLimit.table, log, false) : undefined,
      gate: new TsigGate(keys, log),
      // Each outgoing transfer reads its own snapshot through a read-only connection.
      xfrout: new XfrOut(
        table,
        {
          openReader:
            config.database === ':memory:'
              ? undefined
              : () => new Database(config.database, { readonly: true, fileMustExist: true }),
          udpSize: config.udpSize,
          onResult: (zone, kind, result) => metrics.transferOut(zone, kind, result),
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
        keys: new Map(keys),
        cookieSecret,
        zones: [...table.all()].map(statusOf),
        rateLimit,
      },
      (msg, peer) => server.answerForwarded(msg, peer),
      log,
    );
    for (const c of pool.counters) metrics.addQueryCounters(c);
  }
  // Zone gauges at scrape time (the zone table's zones, the store's rows, the SOA timers after the
  // zone's clamps); readiness from the zone table, whatever reloads add or remove.
  metrics.watchZones(zoneSource(store, table, (name) => scheduler.zoneConfig(name)));
  const probes = {
    metrics,
    readiness: () =>
      readiness(
        [...table.all()].map((e) => e.name),
        (name) => table.get(name),
        Math.floor(Date.now() / 1000),
      ),
    log,
  };
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
  // Counters shared by all threads (ns2_rrl_dropped_total, ns2_rrl_slipped_total).
  const rrl =
    rateLimit && (() => ({ ...rrlStats(rateLimit.table), maxTableSize: rateLimit.config.maxTableSize }));
  if (rrl) metrics.watchRateLimit(rrl);
  // Always: a reload may add the first catalog.
  metrics.watchCatalogs(() => consumer.counts());
  const zones = new ZoneSet({ store, table, writer, scheduler, refresher, workers: () => pool, log });
  zoneSet = zones;
  const producer = produced && startProducer(produced, { store, table, writer, zones, notifier, log });
  zones.onChange((e) => {
    const z = scheduler.zoneConfig(e.zone);
    if (e.kind === 'added' && z && !consumer.isCatalog(e.zone))
      metrics.addZone(z, store.lastPrimarySerial(e.zone));
    else if (e.kind === 'removed') metrics.removeZone(e.zone);
  });
  const reloader = new Reloader(opts.configFile, config, {
    zones,
    setKeys(next) {
      keys.clear();
      for (const [name, k] of next) keys.set(name, k);
      pool?.keys(keys);
    },
    setLogLevel(level) {
      log.level = level;
      pool?.logLevel(level);
    },
    log,
  });
  // The TLS listeners' certificates are read again on every reload (renewed files, no restart);
  // one that does not load refuses the reload, so the running certificate stays.
  reloader.register({
    name: 'tls',
    prepare: () => server.checkCertificates(),
    apply: () => void server.reloadCertificates(),
  });
  // Catalogs added, removed and changed by a reload (refresh/catalog-consumer.ts says how).
  reloader.register({
    name: 'catalogs',
    beforeZones: (next, _running, diff) =>
      diff.added.length > 0 ? consumer.release(new Set(next.zones.map((z) => z.name))) : undefined,
    apply: (next, _running, diff) =>
      diff.live.includes('catalogs') || diff.added.length + diff.removed.length > 0
        ? consumer.reconfigure(next.catalogs, new Set(next.zones.map((z) => z.name)))
        : undefined,
  });
  let stopped = false;
  const reload = (trigger: ReloadTrigger): Promise<ReloadResult> =>
    stopped
      ? Promise.resolve({ ok: false, problems: ['(root): the daemon is stopping'] })
      : reloader.reload(trigger);
  // Control endpoint (config.control): `ns2 refresh` / `ns2 retransfer` reach the scheduler here.
  // The metrics listener (config.metrics): /metrics, /healthz, /readyz only.
  let control: ControlServer | undefined;
  let scrape: ControlServer | undefined;
  // Which listener failed, for the message (address in use, permission denied, …).
  let opening: { address: string; port: number } | undefined;
  try {
    if (config.control) {
      opening = config.control;
      control = await startControlServer(config.control, {
        ...probes,
        store,
        scheduler,
        reload: () => reload('control'),
        rateLimit: rrl,
      });
    }
    if (config.metrics) {
      opening = config.metrics;
      scrape = await startMetricsServer(config.metrics, probes);
    }
  } catch (e) {
    await control?.close();
    await pool?.stop();
    await server.stop();
    await writer.close();
    store.close();
    throw opening ? listenError('HTTP', opening.address, opening.port, e) : e;
  }
  // Until its image is built (in the writer, off this thread) a zone is answered from SQLite.
  for (const row of store.zones())
    if (row.serial !== null && table.get(row.name))
      writer.buildImage(row.name).catch((err) => log.error({ zone: row.name, err }, 'zone image not built'));
  // What the connections really run with (PRAGMA reads), for operators and the crash test.
  log.info({ connection: 'reader', ...store.durability() }, 'database durability');
  writer
    .durability()
    .then((d) => log.info({ connection: 'writer', ...d }, 'database durability'))
    .catch((err) => log.error({ err }, 'could not read the writer connection settings'));
  scheduler.start();
  // Members of catalogs no longer configured go; members now configured statically stay, as
  // static zones; each stored catalog is compared with its members once, in case the config's
  // groups changed.
  const orphans = consumer.orphans();
  for (const [zone, catalog] of orphans.deleted) {
    log.info({ zone, catalog }, 'catalog member no longer belongs to a configured catalog: deleting it');
    zones.remove(zone).catch((err) => log.error({ zone, err }, 'catalog member not deleted'));
  }
  for (const [zone, catalog] of orphans.released) {
    log.info(
      { zone, catalog },
      'catalog member is now a configured zone: its data is kept, the static config applies',
    );
    writer
      .updateZone(zone, { catalog: null, catalog_label: null })
      .catch((err) => log.error({ zone, err }, 'catalog membership not cleared'));
  }
  for (const c of config.catalogs)
    if (store.zone(c.name)?.serial !== null)
      consumer.changed(c.name).catch((err) => log.error({ zone: c.name, err }, 'catalog not processed'));
  return {
    store,
    server,
    scheduler,
    zones,
    reload,
    onReload: (p) => reloader.register(p),
    rateLimit: rrl,
    metrics,
    async stop() {
      if (stopped) return;
      stopped = true;
      trimmer.stop();
      await scrape?.close();
      await control?.close();
      scheduler.stop();
      producer?.close();
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

/** The run-time zone path (reload's ZoneSet) as the catalog consumer uses it. */
function memberZones(zones: () => ZoneSet, writer: () => StoreWriter): MemberZones {
  // The membership is written before the zone is served, so a crash in between leaves a row
  // the next start recognises as a member, never an unconfigured zone.
  const mark = async (zone: string, m: { catalog: string; label: string }) => {
    await writer().addZone(zone);
    await writer().updateZone(zone, { catalog: m.catalog, catalog_label: m.label });
  };
  return {
    async add(z, m) {
      await mark(z.name, m);
      await zones().add(z, 'catalog');
    },
    async update(z, m) {
      await mark(z.name, m);
      zones().update(z);
    },
    async remove(zone) {
      await zones().remove(zone);
    },
    addCatalog: (z) => zones().add(z, 'reload', false),
    async updateCatalog(z) {
      zones().update(z);
    },
    release: (zone) => writer().updateZone(zone, { catalog: null, catalog_label: null }),
  };
}

/**
 * The catalog ns2 produces: rewritten whenever the zones served change, served like any zone,
 * NOTIFYed to its `alsoNotify`.
 */
function startProducer(
  produced: ProducedCatalog,
  d: {
    store: ZoneStore;
    table: ZoneTable;
    writer: StoreWriter;
    zones: ZoneSet;
    notifier: NotifySender;
    log: Logger;
  },
): CatalogProducer {
  const served = () =>
    [...d.table.all()].filter((e) => e.answers && e.name !== produced.name).map((e) => e.name);
  const producer = new CatalogProducer(
    produced.name,
    d.store,
    d.writer,
    (serial) => {
      const entry = d.table.get(produced.name);
      if (entry && entry.state !== 'ok') {
        entry.state = 'ok';
        d.table.changed(produced.name);
        d.writer
          .updateZone(produced.name, { state: 'ok', last_transfer: Math.floor(Date.now() / 1000) })
          .catch((err) => d.log.error({ zone: produced.name, err }, 'could not record zone state'));
      }
      void d.notifier.notify(produced.zone, serial);
    },
    d.log,
  );
  d.zones.onChange((e) => {
    if (e.kind !== 'changed') producer.update(served());
  });
  producer.update(served(), true);
  return producer;
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
