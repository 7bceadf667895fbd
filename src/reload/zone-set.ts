/**
 * The zones the running daemon serves, changed at run time: a reload of the config file
 * (reload/reloader.ts) and catalog zones (RFC 9432) add, reconfigure and remove zones here.
 *
 *   add(zone)     row in `zones` (writer) → zone table (main thread, then every serving worker)
 *                 → scheduler: first check at once; what the database already holds is served
 *   update(zone)  ACLs on the table entry, the rest (primaries, keys, limits, timers) to the
 *                 scheduler for the next check; nothing is transferred because of it
 *   remove(name)  scheduler and refresher let go → zone table and every worker drop it (REFUSED
 *                 from then on; cached answers from it go stale) → every row of it deleted in one
 *                 transaction on the writer thread
 *
 * Each resolves once the change holds everywhere (the workers acknowledged it), so a caller that
 * awaits it can tell its client "done".
 */

import type { AnswerPolicy } from '../answer/minimal.js';
import type { ZoneConfig } from '../config.js';
import { textToName } from '../dns/name.js';
import type { Logger } from '../log.js';
import type { Refresher, Trigger } from '../refresh/refresher.js';
import type { Scheduler } from '../refresh/scheduler.js';
import { acl, transferAcl } from '../serve/acl.js';
import type { ServingWorkers } from '../serve/workers.js';
import type { ZoneEntry, ZoneTable } from '../serve/zone-table.js';
import type { StoreWriter } from '../store/writer.js';
import type { ZoneRow, ZoneRowsDeleted, ZoneStore } from '../store/zone-store.js';

/** RFC 1996 §3.10: by default only the zone's primaries may NOTIFY us. */
function notifyAcl(z: ZoneConfig) {
  return acl(z.allowNotify.length > 0 ? z.allowNotify : z.primaries.map((p) => p.address));
}

/** Puts a zone into the table as the database holds it (state, expiry) with its ACLs. */
export function serveStored(
  table: ZoneTable,
  store: ZoneStore,
  z: ZoneConfig,
  row: ZoneRow,
  now: number = Math.floor(Date.now() / 1000),
  answers = true,
): ZoneEntry {
  const expired = row.state === 'ok' && row.expires_at !== null && row.expires_at <= now;
  return table.add(z.name, textToName(z.name), store, {
    state: expired ? 'expired' : row.state,
    expiresAt: row.expires_at,
    allowNotify: notifyAcl(z),
    allowTransfer: transferAcl(z),
    answers,
    policy: policyOf(z),
  });
}

/** What optional data the zone's answers carry (answer/minimal.ts). */
const policyOf = (z: ZoneConfig): AnswerPolicy => ({
  minimalResponses: z.minimalResponses,
  minimalAny: z.minimalAny,
});

export interface ZoneSetDeps {
  store: ZoneStore;
  table: ZoneTable;
  writer: StoreWriter;
  scheduler: Scheduler;
  refresher: Refresher;
  /** The serving workers, when UDP is answered by worker threads. */
  workers: () => ServingWorkers | undefined;
  log: Logger;
}

/** What happened to a zone, for subsystems that keep per-zone state (metrics, catalogs). */
export type ZoneSetEvent = { kind: 'added' | 'changed' | 'removed'; zone: string };

export class ZoneSet {
  private readonly listeners: ((e: ZoneSetEvent) => void)[] = [];
  /** Zones whose add() is under way (their row exists before their table entry). */
  private readonly adding = new Set<string>();

  constructor(private readonly deps: ZoneSetDeps) {}

  /** Called after each add, update and remove has taken effect. */
  onChange(fn: (e: ZoneSetEvent) => void): void {
    this.listeners.push(fn);
  }

  private emit(e: ZoneSetEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        this.deps.log.error({ zone: e.zone, err }, 'zone change listener failed');
      }
    }
  }

  has(name: string): boolean {
    return this.deps.table.get(name) !== undefined || this.adding.has(name);
  }

  /**
   * Zones the database holds but nobody serves: removed from the config while ns2 was stopped
   * (a restart never deletes zones; a reload does, see reloader.ts).
   */
  unserved(): string[] {
    return this.deps.store
      .zones()
      .map((z) => z.name)
      .filter((n) => !this.has(n));
  }

  /**
   * Starts serving a zone (resolved config, name normalised). Its first check starts at once;
   * data the database still holds for it is served meanwhile. Throws if it is served already.
   * `trigger` is recorded with its first check (transfers.trigger). `answers` false: transferred
   * and stored but REFUSED to queries (a catalog zone we consume).
   */
  async add(z: ZoneConfig, trigger: Trigger = 'reload', answers = true): Promise<void> {
    const { store, table, writer, scheduler, refresher, log } = this.deps;
    if (this.has(z.name)) throw new Error(`zone ${z.name} is already served`);
    refresher.restore(z.name);
    this.adding.add(z.name);
    let row: ZoneRow | undefined;
    try {
      await writer.addZone(z.name);
      store.invalidate(); // the row was written on the writer's connection
      row = store.zone(z.name);
    } finally {
      this.adding.delete(z.name);
    }
    if (!row) throw new Error(`zone ${z.name}: no row after adding it`);
    const entry = serveStored(table, store, z, row, undefined, answers);
    table.changed(z.name); // answers cached while the name was REFUSED are stale; workers learn it
    // So are answers an enclosing zone gave for names now in this one (a referral, NXDOMAIN).
    for (let n = z.name; n.includes('.'); ) {
      n = n.slice(n.indexOf('.') + 1);
      if (table.get(n)) table.changed(n);
    }
    if (row.serial !== null)
      writer.buildImage(z.name).catch((err) => log.error({ zone: z.name, err }, 'zone image not built'));
    scheduler.addZone(z, trigger);
    await this.deps.workers()?.sync();
    log.info({ zone: z.name, serial: row.serial, state: entry.state }, 'zone added');
    this.emit({ kind: 'added', zone: z.name });
  }

  /** New settings for a served zone; `fields` (what changed) is for the log only. */
  update(z: ZoneConfig, fields: readonly string[] = []): void {
    const entry = this.deps.table.get(z.name);
    if (!entry) throw new Error(`zone ${z.name} is not served`);
    entry.allowNotify = notifyAcl(z);
    entry.allowTransfer = transferAcl(z);
    const policy = policyOf(z);
    if (
      policy.minimalResponses !== entry.policy.minimalResponses ||
      policy.minimalAny !== entry.policy.minimalAny
    ) {
      entry.policy = policy;
      // Answers cached under the old policy are stale; the serving workers learn the new one.
      this.deps.table.changed(z.name);
    }
    this.deps.scheduler.updateZone(z);
    this.deps.log.info({ zone: z.name, fields }, 'zone settings changed');
    this.emit({ kind: 'changed', zone: z.name });
  }

  /**
   * Stops serving a zone on every thread and deletes every row of it (zones, rr, rr_text,
   * text_backlog, changes, change_records, change_text_backlog, transfers) in one transaction.
   * A zone only in the database (not served) has its rows deleted all the same.
   */
  async remove(name: string): Promise<ZoneRowsDeleted> {
    const { store, table, writer, scheduler, refresher, log } = this.deps;
    scheduler.removeZone(name);
    refresher.retire(name);
    const served = table.remove(name) !== undefined;
    const workers = this.deps.workers();
    workers?.remove(name);
    const deleted = await writer.deleteZone(name);
    store.forget(name);
    store.invalidate();
    await workers?.sync();
    log.info({ zone: name, served, deleted }, 'zone removed: no longer served, its rows deleted');
    this.emit({ kind: 'removed', zone: name });
    return deleted;
  }
}
