/**
 * The refresh scheduler (src/refresh/scheduler.ts) on an injected clock: nothing sleeps. A real
 * ZoneStore (a temp file, so a "restart" reopens what the last run wrote), the real ZoneTable and
 * writer; the refresher is scripted, so each check's outcome is the test's choice.
 *
 * Claims checked (README "Staying in sync"): refresh up to 10 % early (jitter), the clamps on
 * refresh/retry/expire, the primary's EDNS EXPIRE used instead of the SOA expire (RFC 7314 §4), the
 * zone expiring exactly at its deadline and recovering by itself, and the expiry deadline
 * surviving a restart.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig, type ZoneConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import type { CheckOutcome, Refresher } from '../../src/refresh/refresher.js';
import { clampTimers, jitter, Scheduler, type SchedulerClock } from '../../src/refresh/scheduler.js';
import { serveStored } from '../../src/reload/zone-set.js';
import { ZoneTable } from '../../src/serve/zone-table.js';
import { DirectWriter } from '../../src/store/writer.js';
import { ZoneStore } from '../../src/store/zone-store.js';
import { n, rr, soa } from '../harness/records.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-scheduler-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const log = createLogger('silent');
const T0 = 1_800_000_000;

/**
 * A fake clock: `advance` moves time, fires due timers and the once-a-second tick, as cron and
 * setTimeout would.
 */
class FakeClock implements SchedulerClock {
  ms = T0 * 1000;
  private ticks: (() => void)[] = [];
  private timers = new Map<number, { at: number; fn: () => void }>();
  private seq = 0;
  get t(): number {
    return Math.floor(this.ms / 1000);
  }
  set t(seconds: number) {
    this.ms = seconds * 1000;
  }
  now = () => this.t;
  monotonicMs = () => this.ms;
  everySecond(fn: () => void) {
    this.ticks.push(fn);
    return () => {
      this.ticks = this.ticks.filter((f) => f !== fn);
    };
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.ms + ms, fn });
    return id;
  }
  clearTimeout(timer: unknown): void {
    this.timers.delete(timer as number);
  }
  /** Moves time by `ms` milliseconds, firing timers that fall due (not the tick). */
  async advanceMs(ms: number): Promise<void> {
    this.ms += ms;
    for (const [id, t] of [...this.timers]) {
      if (t.at > this.ms) continue;
      this.timers.delete(id);
      t.fn();
    }
    await settle();
  }
  async advance(seconds: number): Promise<void> {
    await this.advanceMs(seconds * 1000);
    for (const f of this.ticks) f();
    await settle();
  }
  /** `seconds` one-second ticks, as the real clock would fire them. */
  async run(seconds: number): Promise<void> {
    for (let i = 0; i < seconds; i++) await this.advance(1);
  }
}

/** Lets the scripted check and the writer's promise chains run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** Refresher whose outcomes the test queues; records when each check ran. */
class ScriptedRefresher {
  outcomes: CheckOutcome[] = [];
  checks: number[] = [];
  constructor(private readonly clock: FakeClock) {}
  async check(): Promise<CheckOutcome> {
    this.checks.push(this.clock.t);
    return this.outcomes.shift() ?? { result: 'failed', error: 'primary down (scripted)' };
  }
  isRunning(): boolean {
    return false;
  }
}

function zoneConfig(name: string, extra: Record<string, unknown> = {}): ZoneConfig {
  const c = parseConfig({
    listen: [{ address: '127.0.0.1', port: 5353 }],
    database: ':memory:',
    zones: [{ name, primaries: [{ address: '127.0.0.1', port: 5300 }], ...extra }],
  });
  return c.zones[0];
}

/** SOA rdata with these timers. */
function soaWith(zone: string, t: { refresh: number; retry: number; expire: number }): Buffer {
  const r = soa(`ns1.${zone}`, `hostmaster.${zone}`, 1);
  r.writeUInt32BE(t.refresh, r.length - 16);
  r.writeUInt32BE(t.retry, r.length - 12);
  r.writeUInt32BE(t.expire, r.length - 8);
  return r;
}

/** A daemon's worth of scheduler over `file`: store, table (serveStored, as startDaemon) and writer. */
function boot(file: string, z: ZoneConfig, clock: FakeClock) {
  const store = new ZoneStore(file);
  store.ensureZone(z.name);
  const row = store.zone(z.name)!;
  const table = new ZoneTable();
  const entry = serveStored(table, store, z, row, clock.now());
  const refresher = new ScriptedRefresher(clock);
  const writer = new DirectWriter(store);
  const scheduler = new Scheduler(
    [z],
    store,
    writer,
    table,
    refresher as unknown as Refresher,
    log,
    4,
    clock,
  );
  return { store, table, entry, refresher, scheduler, row: () => store.zone(z.name)! };
}

function loaded(file: string, z: ZoneConfig, timers: { refresh: number; retry: number; expire: number }) {
  const s = new ZoneStore(file);
  s.replaceZone(
    z.name,
    [rr(z.name, 'SOA', 300, soaWith(z.name, timers)), rr(z.name, 'NS', 300, n(`ns1.${z.name}`))],
    { serial: 1, primary: '127.0.0.1', now: T0 },
  );
  s.close();
}

const ok = (expire?: number): CheckOutcome => ({
  result: 'uptodate',
  serial: 1,
  primary: '127.0.0.1',
  expire,
});

describe('refresh jitter', () => {
  it('is between 0 and 10 % of the period, stable per zone, and spread across zones', () => {
    const period = 3600;
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const name = `zone${i}.example`;
      const j = jitter(name, period);
      assert.ok(j >= 0 && j <= period * 0.1, `${name}: ${j}`);
      assert.equal(jitter(name, period), j, 'derived from the name: the same after a restart');
      seen.add(j);
    }
    // Not one fixed offset: 1000 zones land on many different seconds of the 360 s window.
    assert.ok(seen.size > 200, `only ${seen.size} distinct offsets`);
    assert.ok(Math.max(...seen) > period * 0.09, 'uses the whole 10 %');
  });

  it('the next check after a good one is due within [0.9, 1] × refresh, and not before', async () => {
    const z = zoneConfig('jitter.test');
    const file = path.join(dir, 'jitter.db');
    loaded(file, z, { refresh: 1000, retry: 100, expire: 100_000 });
    const clock = new FakeClock();
    const d = boot(file, z, clock);
    d.refresher.outcomes.push(ok());
    d.scheduler.start();
    await settle();
    const next = d.row().next_refresh!;
    assert.ok(next >= T0 + 900 && next <= T0 + 1000, `next_refresh ${next - T0} s after the check`);
    assert.equal(next, T0 + 1000 - jitter(z.name, 1000));
    await clock.advance(next - T0 - 1);
    assert.deepEqual(d.refresher.checks, [T0], 'no check before the deadline');
    await clock.advance(1);
    assert.deepEqual(d.refresher.checks, [T0, next], 'checked at the deadline');
    d.scheduler.stop();
    d.store.close();
  });
});

describe('timer clamps', () => {
  it('refresh, retry and expire are clamped by the zone config (pure)', () => {
    const z = zoneConfig('c.test', {
      refreshMin: 600,
      refreshMax: 7200,
      retryMin: 60,
      retryMax: 300,
      expireMin: 3600,
      expireMax: 604800,
    });
    assert.deepEqual(clampTimers({ refresh: 30, retry: 5, expire: 60 }, z), {
      refresh: 600,
      retry: 60,
      expire: 3600,
    });
    assert.deepEqual(clampTimers({ refresh: 86400, retry: 3600, expire: 2419200 }, z), {
      refresh: 7200,
      retry: 300,
      expire: 604800,
    });
    assert.deepEqual(clampTimers({ refresh: 1000, retry: 100, expire: 100_000 }, z), {
      refresh: 1000,
      retry: 100,
      expire: 100_000,
    });
    // Knot's defaults: 2 s minimums, no maxima.
    assert.deepEqual(clampTimers({ refresh: 1, retry: 1, expire: 1 }, zoneConfig('d.test')), {
      refresh: 2,
      retry: 2,
      expire: 2,
    });
  });

  it('the scheduler schedules by the clamped timers: refreshMax, retryMin, expireMax', async () => {
    const z = zoneConfig('clamp.test', { refreshMax: 500, retryMin: 120, expireMax: 5000 });
    const file = path.join(dir, 'clamp.db');
    loaded(file, z, { refresh: 86400, retry: 10, expire: 2_419_200 });
    const clock = new FakeClock();
    const d = boot(file, z, clock);
    d.refresher.outcomes.push(ok());
    d.scheduler.start();
    await settle();
    assert.equal(d.row().next_refresh, T0 + 500 - jitter(z.name, 500), 'refresh clamped to 500 s');
    assert.equal(d.row().expires_at, T0 + 5000, 'expire clamped to 5000 s');
    // The next check fails: retried after retryMin (120 s), not the SOA's 10 s.
    await clock.advance(500);
    const failedAt = d.refresher.checks.at(-1)!;
    assert.equal(d.row().next_refresh, failedAt + 120);
    await clock.advance(119);
    assert.equal(d.refresher.checks.at(-1), failedAt, 'not retried before retryMin');
    await clock.advance(1);
    assert.equal(d.refresher.checks.at(-1), failedAt + 120);
    d.scheduler.stop();
    d.store.close();
  });
});

describe('expiry', () => {
  it("uses the primary's EDNS EXPIRE instead of the SOA expire (RFC 7314 §4), clamped", async () => {
    const z = zoneConfig('edns.test', { expireMin: 1000 });
    const file = path.join(dir, 'edns.db');
    loaded(file, z, { refresh: 100_000, retry: 100_000, expire: 86400 });
    const clock = new FakeClock();
    const d = boot(file, z, clock);
    d.refresher.outcomes.push(ok(4000), ok(10));
    d.scheduler.start();
    await settle();
    assert.equal(d.row().expires_at, T0 + 4000, 'EDNS EXPIRE 4000 replaces the SOA expire 86400');
    assert.equal(d.entry.expiresAt, T0 + 4000, 'the served entry follows');
    d.scheduler.poke(z.name, 'cli');
    await settle();
    assert.equal(d.row().expires_at, T0 + 1000, 'EDNS EXPIRE 10 raised to expireMin 1000');
    d.scheduler.stop();
    d.store.close();
  });

  it('expires exactly at the deadline while checks fail, and recovers at the next good check', async () => {
    const z = zoneConfig('expire.test');
    const file = path.join(dir, 'expire.db');
    loaded(file, z, { refresh: 50, retry: 20, expire: 300 });
    const clock = new FakeClock();
    const d = boot(file, z, clock);
    d.refresher.outcomes.push(ok());
    d.scheduler.start();
    await settle();
    assert.equal(d.row().expires_at, T0 + 300);
    // Every later check fails (the scripted refresher's default).
    await clock.run(299);
    assert.equal(d.entry.state, 'ok', 'one second before the deadline');
    await clock.run(1);
    assert.equal(d.entry.state, 'expired', 'at the deadline');
    assert.equal(d.row().state, 'expired', 'recorded in zones');
    const failures = d.refresher.checks.length;
    assert.ok(failures >= 10, `retried every ~20 s: ${failures} checks`);
    d.refresher.outcomes.push(ok());
    await clock.run(20);
    assert.equal(d.entry.state, 'ok', 'recovered by itself');
    // The good check is the last one (the next is a refresh period away).
    assert.equal(
      d.row().expires_at,
      d.refresher.checks.at(-1)! + 300,
      'deadline renewed from the good check',
    );
    d.scheduler.stop();
    d.store.close();
  });

  it('the expiry deadline survives a restart: not renewed by the restart, enforced after it', async () => {
    const z = zoneConfig('restart.test');
    const file = path.join(dir, 'restart.db');
    loaded(file, z, { refresh: 50, retry: 20, expire: 1000 });
    const clock = new FakeClock();
    const first = boot(file, z, clock);
    first.refresher.outcomes.push(ok());
    first.scheduler.start();
    await settle();
    assert.equal(first.row().expires_at, T0 + 1000);
    first.scheduler.stop();
    first.store.close();

    // Down for 600 s, restarted with the primary unreachable: still ok, same deadline.
    clock.t = T0 + 600;
    const second = boot(file, z, clock);
    assert.equal(second.entry.state, 'ok');
    second.scheduler.start();
    await settle();
    assert.deepEqual(second.refresher.checks, [T0 + 600], 'checked at start-up');
    assert.equal(second.row().expires_at, T0 + 1000, 'a failed check at start-up does not renew it');
    await clock.run(399);
    assert.equal(second.entry.state, 'ok');
    assert.ok(second.refresher.checks.length > 10, 'retried meanwhile, every check failed');
    await clock.run(1);
    assert.equal(second.entry.state, 'expired', 'expired at the deadline set before the restart');
    second.scheduler.stop();
    second.store.close();

    // Restarted after the deadline (state still `ok` in the row if the process died first):
    // expired from the first answer on.
    const s = new ZoneStore(file);
    s.updateZone(z.name, { state: 'ok' });
    s.close();
    clock.t = T0 + 5000;
    const third = boot(file, z, clock);
    assert.equal(third.entry.state, 'expired');
    third.store.close();
  });
});

describe('NOTIFY coalescing', () => {
  it('1 000 NOTIFYs within one second cost exactly two checks (SOA queries)', async () => {
    const z = zoneConfig('flood.test');
    const file = path.join(dir, 'flood.db');
    loaded(file, z, { refresh: 100_000, retry: 100_000, expire: 1_000_000 });
    const clock = new FakeClock();
    const d = boot(file, z, clock);
    d.refresher.outcomes.push(ok());
    d.scheduler.start();
    await settle();
    assert.equal(d.refresher.checks.length, 1, 'the start-up check');
    await clock.advanceMs(5000);
    // One NOTIFY a millisecond for a second, no serial hint (or one not newer than ours).
    for (let i = 0; i < 1000; i++) {
      assert.equal(d.scheduler.notify(z.name, i % 2 ? undefined : 1), true);
      await clock.advanceMs(1);
    }
    await clock.advanceMs(5000);
    // Start-up, the first NOTIFY's at once, one more at the end of the 1 s spacing.
    assert.equal(d.refresher.checks.length - 1, 2, `${d.refresher.checks.length - 1} NOTIFY checks`);
    d.scheduler.stop();
    d.store.close();
  });

  it('a NOTIFY announcing a newer serial is checked at once, spacing or not', async () => {
    const z = zoneConfig('newer.test');
    const file = path.join(dir, 'newer.db');
    loaded(file, z, { refresh: 100_000, retry: 100_000, expire: 1_000_000 });
    const clock = new FakeClock();
    const d = boot(file, z, clock);
    d.refresher.outcomes.push(ok());
    d.scheduler.start();
    await settle();
    d.scheduler.notify(z.name);
    await settle();
    d.scheduler.notify(z.name, 2);
    await settle();
    assert.equal(d.refresher.checks.length, 3, 'start-up, the first NOTIFY, the newer serial at once');
    d.scheduler.stop();
    d.store.close();
  });
});
