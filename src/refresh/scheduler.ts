/**
 * Per-zone refresh timers (RFC 1034 §4.3.5, RFC 1996):
 *
 *   check ok ──► next check at SOA refresh (clamped, jittered), expiry pushed to now + expire
 *   check failed ──► next check at SOA retry; once expires_at passes the zone is expired
 *   primary behind us ──► next check at SOA refresh, expiry not pushed (no retry loop)
 *   expired ──► SERVFAIL until a check succeeds, then back to ok by itself
 *
 * Deadlines are absolute Unix seconds kept in `zones` (next_refresh, expires_at), so a restart
 * resumes them. One node-cron tick per second looks for due zones: node-cron cannot express an
 * arbitrary period and setTimeout overflows past 2^31 ms (STACK.md), a tick has neither problem.
 * Due zones start longest-overdue first, `maxConcurrent` at a time; a finished check frees its
 * slot for the next due zone at once.
 *
 * NOTIFY checks a zone at once, but at most once per NOTIFY_INTERVAL_MS: NOTIFYs arriving during
 * a check or within that interval coalesce into one more check when it is over, so a flood of
 * 1 000 NOTIFYs in a second costs two SOA queries.
 */

import cron, { type ScheduledTask } from 'node-cron';
import type { ZoneConfig } from '../config.js';
import { isNewer } from '../dns/serial.js';
import type { Logger } from '../log.js';
import type { ZoneTable } from '../serve/zone-table.js';
import type { StoreWriter, ZoneFields } from '../store/writer.js';
import type { ZoneStore } from '../store/zone-store.js';
import type { CheckOptions, CheckOutcome, Refresher, Trigger } from './refresher.js';

export interface Timers {
  refresh: number;
  retry: number;
  expire: number;
}

/** Applies the zone's configured clamps to the SOA timers, as Knot's *-min/*-max options do. */
export function clampTimers(soa: Timers, z: ZoneConfig): Timers {
  const clamp = (v: number, min: number, max?: number) =>
    Math.max(min, max === undefined ? v : Math.min(v, max));
  return {
    refresh: clamp(soa.refresh, z.refreshMin, z.refreshMax),
    retry: clamp(soa.retry, z.retryMin, z.retryMax),
    expire: clamp(soa.expire, z.expireMin, z.expireMax),
  };
}

/** Up to 10% earlier, derived from the zone name so restarts keep one zone's rhythm stable. */
export function jitter(name: string, seconds: number): number {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return Math.floor(seconds * 0.1 * ((h % 1000) / 1000));
}

/**
 * Time as the scheduler sees it: wall-clock Unix seconds for deadlines, a monotonic millisecond
 * clock for NOTIFY spacing, a once-a-second tick and one-shot timers. Tests inject a fake one.
 */
export interface SchedulerClock {
  /** Unix seconds. */
  now(): number;
  /** Monotonic milliseconds. */
  monotonicMs(): number;
  /** Calls `fn` once a second until the returned function is called. */
  everySecond(fn: () => void): () => void;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

/** The real clock: one node-cron tick per second (STACK.md: no setTimeout overflow). */
export const systemClock: SchedulerClock = {
  now: () => Math.floor(Date.now() / 1000),
  monotonicMs: () => performance.now(),
  everySecond(fn) {
    const task: ScheduledTask = cron.schedule('* * * * * *', fn, { noOverlap: false });
    return () => {
      task.stop();
      void task.destroy();
    };
  },
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};

/** Retry period for a zone we have never loaded (no SOA to read timers from). */
const FIRST_LOAD_RETRY = 5;

/** Least time between two NOTIFY-triggered checks of one zone, milliseconds. */
const NOTIFY_INTERVAL_MS = 1000;

export class Scheduler {
  private stopTicks: (() => void) | undefined;
  private due = new Map<string, number>();
  private active = 0;
  private stopped = false;
  /** Zones notified while a check was running: check once more when it ends. */
  private again = new Set<string>();
  /** When each zone's last NOTIFY-triggered check started (clock.monotonicMs()). */
  private lastNotifyCheck = new Map<string, number>();
  /** NOTIFY-triggered checks waiting for NOTIFY_INTERVAL_MS to pass. */
  private deferred = new Map<string, unknown>();
  /** Due zones waiting for a check slot, longest overdue first (from `head` on). */
  private queue: string[] = [];
  private head = 0;
  /** The zones scheduled, by name; reload and catalogs add, replace and remove them. */
  private readonly zones = new Map<string, ZoneConfig>();

  constructor(
    zones: readonly ZoneConfig[],
    private readonly store: ZoneStore,
    private readonly writer: StoreWriter,
    private readonly table: ZoneTable,
    private readonly refresher: Refresher,
    private readonly log: Logger,
    private readonly maxConcurrent = 4,
    private readonly clock: SchedulerClock = systemClock,
  ) {
    for (const z of zones) this.zones.set(z.name, z);
  }

  /** The config a scheduled zone is checked with (metrics: its timer clamps). */
  zoneConfig(name: string): ZoneConfig | undefined {
    return this.zones.get(name);
  }

  /**
   * A zone configured at run time: checked at once (its first transfer, when it has no copy);
   * `trigger` is what the transfers table records for that check.
   */
  addZone(z: ZoneConfig, trigger: Trigger = 'reload'): void {
    this.zones.set(z.name, z);
    if (!this.stopTicks || this.stopped || this.active >= this.maxConcurrent) {
      this.due.set(z.name, this.now()); // start() or the next free slot takes it
      this.queue.push(z.name);
      return;
    }
    this.due.set(z.name, Number.POSITIVE_INFINITY); // not again until this check ends
    void this.run(z, trigger);
  }

  /**
   * New settings for a scheduled zone (primaries, keys, ACLs, limits, timers): the next check uses
   * them. A change of the timer clamps moves the next check to what they give from the last
   * refresh; nothing is transferred because of the change itself.
   */
  updateZone(z: ZoneConfig): void {
    const old = this.zones.get(z.name);
    if (!old) return;
    this.zones.set(z.name, z);
    const timers = ['refreshMin', 'refreshMax', 'retryMin', 'retryMax'] as const;
    if (timers.every((k) => old[k] === z[k])) return;
    const due = this.due.get(z.name);
    if (due === undefined || due === Number.POSITIVE_INFINITY) return; // a check runs: it reschedules
    const soa = this.store.soaTimers(z.name);
    const row = this.store.zone(z.name);
    if (!soa || row?.last_refresh == null) return;
    const t = clampTimers(soa, z);
    const next = row.state === 'ok' ? row.last_refresh + t.refresh - jitter(z.name, t.refresh) : due;
    if (next === due) return;
    this.due.set(z.name, next);
    this.persist(z.name, { next_refresh: next });
    this.log.info({ zone: z.name, next_refresh: next }, 'refresh timer rescheduled by new config');
  }

  /** Stops checking the zone (a check already running ends on its own; its result is dropped). */
  removeZone(name: string): void {
    this.zones.delete(name);
    this.due.delete(name);
    this.again.delete(name);
    this.lastNotifyCheck.delete(name);
    const t = this.deferred.get(name);
    if (t) this.clock.clearTimeout(t);
    this.deferred.delete(name);
  }

  private now(): number {
    return this.clock.now();
  }

  start(): void {
    // Every zone is checked at start-up, as BIND and NSD do: changes made while we were down
    // arrive at once. The expiry deadline is not reset by a restart, only by a successful check.
    const now = this.now();
    for (const z of this.zones.values()) this.due.set(z.name, now);
    this.tick('startup');
    this.stopTicks = this.clock.everySecond(() => this.tick('timer'));
  }

  stop(): void {
    this.stopped = true;
    this.stopTicks?.();
    this.stopTicks = undefined;
    for (const t of this.deferred.values()) this.clock.clearTimeout(t);
    this.deferred.clear();
  }

  /** Checks a zone now (NOTIFY, operator request); `forceAxfr` transfers even when up to date. */
  poke(name: string, trigger: Trigger, opts: CheckOptions = {}): Promise<CheckOutcome> | undefined {
    const z = this.zones.get(name);
    if (!z) return undefined;
    return this.run(z, trigger, opts);
  }

  /**
   * NOTIFY (RFC 1996 §4.7): check now. A NOTIFY whose SOA hint is not newer than our serial is
   * ignored (BIND does the same); one announcing a newer serial is checked at once. Others —
   * no hint, or arriving while a check runs — coalesce: at most one NOTIFY-triggered check per
   * NOTIFY_INTERVAL_MS, plus one after a running check, so a burst costs at most two SOA queries.
   */
  notify(name: string, serial?: number): boolean {
    const z = this.zones.get(name);
    if (!z || this.stopped) return false;
    const ours = this.store.soaRecord(z.name)?.serial;
    if (serial !== undefined && ours !== undefined && !isNewer(serial, ours)) return true;
    this.notifyCheck(z, serial !== undefined && ours !== undefined);
    return true;
  }

  private notifyCheck(z: ZoneConfig, newer = false): void {
    if (this.stopped) return;
    const pending = this.deferred.get(z.name);
    if (pending && !newer) return;
    if (pending) {
      this.clock.clearTimeout(pending);
      this.deferred.delete(z.name);
    }
    if (this.refresher.isRunning(z.name)) {
      this.again.add(z.name);
      return;
    }
    const wait = newer
      ? 0
      : (this.lastNotifyCheck.get(z.name) ?? Number.NEGATIVE_INFINITY) +
        NOTIFY_INTERVAL_MS -
        this.clock.monotonicMs();
    if (wait > 0) {
      const timer = this.clock.setTimeout(() => {
        this.deferred.delete(z.name);
        const current = this.zones.get(z.name);
        if (current) this.notifyCheck(current);
      }, wait);
      this.deferred.set(z.name, timer);
      return;
    }
    this.lastNotifyCheck.set(z.name, this.clock.monotonicMs());
    void this.run(z, 'notify');
  }

  /**
   * Once a second (and at start-up): expires what is past its expiry, queues every due zone
   * longest overdue first, and starts as many as there are free slots. The queue is what a
   * finished check takes its successor from, so with 100 000 zones a slot freed costs O(1),
   * not a scan and a sort of every zone.
   */
  tick(trigger: Trigger): void {
    if (this.stopped) return;
    const now = this.now();
    const due: { name: string; at: number }[] = [];
    for (const z of this.zones.values()) {
      this.expireIfDue(z, now);
      const at = this.due.get(z.name) ?? now;
      if (at <= now) due.push({ name: z.name, at });
    }
    // Longest overdue first, so zones with short timers cannot starve the others of check slots.
    due.sort((x, y) => x.at - y.at);
    this.queue = due.map((d) => d.name);
    this.head = 0;
    this.startQueued(trigger);
  }

  /** Starts queued zones that are still due while slots are free. */
  private startQueued(trigger: Trigger): void {
    const now = this.now();
    while (this.active < this.maxConcurrent && this.head < this.queue.length) {
      const name = this.queue[this.head++];
      const z = this.zones.get(name);
      // Removed, started meanwhile (due = +Infinity) or rescheduled since it was queued.
      if (!z || (this.due.get(name) ?? now) > now) continue;
      this.due.set(name, Number.POSITIVE_INFINITY); // not again until this check ends
      void this.run(z, trigger);
    }
  }

  /** The in-memory zone entry is the live state; the database row follows through the writer. */
  private expireIfDue(z: ZoneConfig, now: number): void {
    const entry = this.table.get(z.name);
    if (entry?.state !== 'ok' || entry.expiresAt === null || entry.expiresAt > now) return;
    entry.state = 'expired';
    this.table.changed(z.name);
    this.persist(z.name, { state: 'expired' });
    this.log.error({ zone: z.name }, 'zone expired: no successful refresh within SOA expire');
  }

  private persist(zone: string, fields: ZoneFields): void {
    this.writer.updateZone(zone, fields).catch((err) => {
      if (!this.stopped) this.log.error({ zone, err }, 'could not record zone state');
    });
  }

  private async run(z: ZoneConfig, trigger: Trigger, opts: CheckOptions = {}): Promise<CheckOutcome> {
    this.active++;
    try {
      const outcome = await this.refresher.check(z, trigger, opts);
      // After stop() the database is closed: the outcome is not recorded, the next start redoes it.
      // A zone removed meanwhile is not rescheduled; one reconfigured is, with its new settings.
      const current = this.zones.get(z.name);
      if (!this.stopped && current) this.reschedule(current, outcome);
      return outcome;
    } finally {
      this.active--;
      const current = this.zones.get(z.name);
      if (this.again.delete(z.name) && current) this.notifyCheck(current);
      // A slot is free: start a zone that is waiting for one now rather than at the next tick.
      if (!this.stopped) this.startQueued('timer');
    }
  }

  private reschedule(z: ZoneConfig, outcome: CheckOutcome): void {
    const now = this.now();
    const soa = this.store.soaTimers(z.name);
    if (outcome.result === 'failed') {
      const retry = soa ? clampTimers(soa, z).retry : Math.max(z.retryMin, FIRST_LOAD_RETRY);
      const next = now + retry;
      this.due.set(z.name, next);
      this.persist(z.name, { next_refresh: next });
      this.expireIfDue(z, now);
      return;
    }
    if (outcome.result === 'behind') {
      // Our copy is newer than the primary's: nothing to retry, and nothing renews the expiry.
      const refresh = soa ? clampTimers(soa, z).refresh : z.refreshMin;
      const next = now + refresh - jitter(z.name, refresh);
      this.due.set(z.name, next);
      this.persist(z.name, { next_refresh: next });
      this.expireIfDue(z, now);
      return;
    }
    // RFC 7314 §4: the primary's EDNS EXPIRE, when given, replaces the SOA expire.
    const t = clampTimers({ ...soa!, expire: outcome.expire ?? soa!.expire }, z);
    const next = now + t.refresh - jitter(z.name, t.refresh);
    this.due.set(z.name, next);
    const entry = this.table.get(z.name);
    const wasExpired = entry?.state === 'expired';
    this.persist(z.name, {
      state: 'ok',
      last_refresh: now,
      next_refresh: next,
      expires_at: now + t.expire,
      primary_addr: outcome.primary,
    });
    if (entry) {
      const was = entry.state;
      entry.state = 'ok';
      entry.expiresAt = now + t.expire;
      // Answers change when the state does (first load, back from expiry; a transfer installs
      // its own image); an up-to-date check must not flush the zone's cached answers.
      if (was !== 'ok') this.table.changed(z.name);
      else this.table.expiryMoved(z.name);
    }
    if (wasExpired) this.log.info({ zone: z.name, serial: outcome.serial }, 'zone recovered from expiry');
  }
}
