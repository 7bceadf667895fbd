/**
 * The scheduler with many zones: at most `maxConcurrent` checks at once,
 * every due zone checked exactly once per round, zones added at run time queued behind
 * those already waiting. A scripted refresher stands in for the network; the clock is injected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig, type ZoneConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import type { CheckOutcome, Refresher } from '../../src/refresh/refresher.js';
import { Scheduler, systemClock } from '../../src/refresh/scheduler.js';
import { ZoneTable } from '../../src/serve/zone-table.js';
import { DirectWriter } from '../../src/store/writer.js';
import { ZoneStore } from '../../src/store/zone-store.js';

const zonesOf = (n: number): ZoneConfig[] =>
  parseConfig({
    zones: Array.from({ length: n }, (_, i) => ({
      name: `z${i}.test`,
      primaries: [{ address: '192.0.2.1' }],
    })),
  }).zones as ZoneConfig[];

describe('scheduler queue', () => {
  it('checks 2 000 due zones at most 5 at a time, each exactly once', async () => {
    const zones = zonesOf(2000);
    const store = new ZoneStore(':memory:');
    const writer = new DirectWriter(store);
    const table = new ZoneTable();
    const clock = 1_000_000;
    for (const z of zones) store.ensureZone(z.name);
    const started: string[] = [];
    let running = 0;
    let peak = 0;
    const release: (() => void)[] = [];
    const refresher = {
      isRunning: () => false,
      check: (z: ZoneConfig): Promise<CheckOutcome> => {
        started.push(z.name);
        peak = Math.max(peak, ++running);
        return new Promise((resolve) =>
          release.push(() => {
            running--;
            resolve({ result: 'failed', error: 'scripted' });
          }),
        );
      },
    } as unknown as Refresher;
    const log = createLogger('silent');
    const s = new Scheduler(zones, store, writer, table, refresher, log, 5, {
      ...systemClock,
      now: () => clock,
    });
    s.tick('startup');
    while (started.length < zones.length) {
      assert.ok(release.length > 0, `stalled after ${started.length}`);
      const batch = release.splice(0);
      for (const r of batch) r();
      await new Promise((r) => setImmediate(r));
    }
    for (const r of release.splice(0)) r();
    s.stop();
    assert.equal(peak, 5);
    assert.equal(new Set(started).size, zones.length);
  });

  it('a zone added while every slot is busy starts when one frees, without waiting for a tick', async () => {
    const zones = zonesOf(3);
    const store = new ZoneStore(':memory:');
    for (const z of zones) store.ensureZone(z.name);
    const started: string[] = [];
    const release: (() => void)[] = [];
    const refresher = {
      isRunning: () => false,
      check: (z: ZoneConfig): Promise<CheckOutcome> => {
        started.push(z.name);
        return new Promise((resolve) => release.push(() => resolve({ result: 'failed', error: 'scripted' })));
      },
    } as unknown as Refresher;
    const s = new Scheduler(
      zones,
      store,
      new DirectWriter(store),
      new ZoneTable(),
      refresher,
      createLogger('silent'),
      3,
      { ...systemClock, now: () => 5 },
    );
    s.start();
    assert.equal(started.length, 3);
    const [extra] = zonesOf(4).slice(3);
    store.ensureZone(extra.name);
    s.addZone(extra);
    assert.equal(started.length, 3);
    release.shift()?.();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    s.stop();
    assert.deepEqual(started.slice(3), ['z3.test']);
  });
});
