/**
 * Prometheus metrics (prom-client), served at GET /metrics by the control endpoint and by the
 * optional `metrics` listener (control/server.ts). Names and labels are an interface (DESIGN.md,
 * docs/metrics.md): keep them.
 *
 * Three kinds of source, so that nothing on the query path pays for a metric:
 * - zone gauges (serial, state, records, timestamps, timers) are read at scrape time from the zone
 *   table (live state) and the store's `zones` rows: one SQL read per scrape, nothing between;
 * - query counters are plain Float64Array slots each answering thread bumps (serve/query-counters.ts,
 *   shared memory for the serving workers), summed at scrape time;
 * - transfer, NOTIFY and transfer-out counters are prom-client counters bumped by the events the
 *   refresher, the query handler, NOTIFY out and xfrout report (a few per transfer, not per query).
 *
 * Other modules add their own metrics through `counter()` / `gauge()` / `histogram()` (main thread),
 * or, for counts kept in shared memory by every answering thread (as response rate limiting does),
 * a counter whose collect callback reads them (`watchRateLimit` is the example).
 */
import {
  type CollectFunction,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  Registry,
} from 'prom-client';
import type { ZoneConfig } from '../config.js';
import { rcodeText } from '../dns/rcode.js';
import { isNewer } from '../dns/serial.js';
import type { NotifySentResult } from '../refresh/notify-out.js';
import { clampTimers, type Timers } from '../refresh/scheduler.js';
import type { NotifyResult } from '../serve/handler.js';
import { type QueryCounters, totalCounters } from '../serve/query-counters.js';
import type { TransferOutResult } from '../serve/xfrout.js';
import type { ZoneTable } from '../serve/zone-table.js';
import type { TransferRow, ZoneRow, ZoneState, ZoneStore } from '../store/zone-store.js';

/** Every zone state, so `ns2_zone_state` has one 0/1 series per state. */
const ZONE_STATES: readonly ZoneState[] = ['never_loaded', 'ok', 'expired'];

/** Transfer durations, seconds: from a small IXFR on loopback to a large AXFR over a slow link. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** One zone as the scrape sees it: the store's row with the live state from the zone table. */
export interface ZoneSnapshot {
  row: ZoneRow;
  state: ZoneState;
  expiresAt: number | null;
  /** Effective refresh/retry/expire (SOA timers after the zone's clamps); absent before a load. */
  timers?: Timers;
}

/** Where the zone gauges come from (read once per scrape). */
export type ZoneSource = () => ZoneSnapshot[];

/**
 * The daemon's zones as a scrape sees them: every zone in the zone table (the zones served: a row
 * left in the database for a zone no longer configured is skipped), its live state from the
 * table, the rest from its `zones` row, timers from its SOA after the zone's clamps.
 */
export function zoneSource(
  store: Pick<ZoneStore, 'zones' | 'soaTimers'>,
  table: Pick<ZoneTable, 'get'>,
  configOf: (zone: string) => ZoneConfig | undefined,
): ZoneSource {
  return () => {
    const out: ZoneSnapshot[] = [];
    for (const row of store.zones()) {
      const entry = table.get(row.name);
      if (!entry) continue;
      const soa = store.soaTimers(row.name);
      const zc = configOf(row.name);
      out.push({
        row,
        state: entry.state,
        expiresAt: entry.expiresAt,
        timers: soa && zc ? clampTimers(soa, zc) : soa,
      });
    }
    return out;
  };
}

type TransferKind = 'ixfr' | 'axfr';

const TRANSFER_OUT_RESULTS: readonly TransferOutResult[] = [
  'transferred',
  'uptodate',
  'refused',
  'notauth',
  'failed',
];

/** Every value fallbackReason() returns (rcode names as rcodeText() spells them, `rcode` for others). */
const FALLBACK_REASONS: readonly string[] = [
  ...Array.from({ length: 17 }, (_, r) => rcodeText(r).toLowerCase()),
  'rcode',
  'inconsistent',
  'tsig',
  'timeout',
  'limit',
  'connection',
  'malformed',
];

/**
 * Why an IXFR gave way to AXFR, as a bounded label (the reason text itself is in the `transfers`
 * row and the log): the primary's rcode, a diff that did not apply, TSIG, a timeout, a limit.
 */
export function fallbackReason(text: string): string {
  const rcode = /^primary answered ([A-Z]+)/.exec(text);
  if (rcode) return rcode[1].toLowerCase();
  if (text.startsWith('inconsistent diff')) return 'inconsistent';
  if (/TSIG|signature|MAC\b/i.test(text)) return 'tsig';
  if (/timed out|within \d+ ms|timeout/i.test(text)) return 'timeout';
  if (/exceeds|max[A-Z]/.test(text)) return 'limit';
  if (/connect|ECONN|closed|reset/i.test(text)) return 'connection';
  return 'malformed';
}

/** The kind an attempt is counted under: what was performed, else requested, else would have been. */
function attemptKind(zone: ZoneConfig, row: Readonly<TransferRow>): TransferKind {
  const kind = row.kind_performed ?? row.kind_requested;
  if (kind === 'ixfr' || kind === 'axfr') return kind;
  return row.serial_before !== null && row.serial_before !== undefined && zone.transfer === 'ixfr'
    ? 'ixfr'
    : 'axfr';
}

const BOTH_KINDS: readonly TransferKind[] = ['ixfr', 'axfr'];
const AXFR_ONLY: readonly TransferKind[] = ['axfr'];
const ATTEMPT_RESULTS = ['transferred', 'uptodate', 'failed'] as const;

/**
 * Makes `counter`'s scrape show 0 for every (zone, kind, result) of `zones()` not counted yet, so
 * `increase()` sees a zone's first failure. The zeros exist only in the scrape's output.
 */
function zeroSeries(
  counter: Counter<'zone' | 'kind' | 'result'>,
  zones: () => ReadonlyMap<string, readonly TransferKind[]>,
): void {
  const get = counter.get.bind(counter);
  counter.get = async () => {
    const m = await get();
    const seen = new Set(m.values.map((v) => `${v.labels.zone} ${v.labels.kind} ${v.labels.result}`));
    for (const [zone, kinds] of zones())
      for (const kind of kinds)
        for (const result of ATTEMPT_RESULTS)
          if (!seen.has(`${zone} ${kind} ${result}`))
            m.values.push({ value: 0, labels: { zone, kind, result } });
    return m;
  };
}

export class Metrics {
  readonly registry = new Registry();
  private zoneSource: ZoneSource = () => [];
  /** The scrape in progress reads this snapshot (taken once in render()). */
  private snapshot: ZoneSnapshot[] = [];
  private readonly queryThreads: QueryCounters[] = [];
  /** Response rate limiting's shared counters (answer/rrl.ts), when it is configured. */
  private rateLimit: (() => { dropped: number; slipped: number }) | undefined;
  /** Last serial each zone's primary showed (SOA check), by zone. */
  private readonly primarySerials = new Map<string, number>();
  /** Since when (Unix seconds) each zone's primary has shown a newer serial than ours. */
  private readonly behindSince = new Map<string, number>();

  private readonly transfers: Counter<'zone' | 'kind' | 'result'>;
  /**
   * Each configured zone's transfer kinds: its `ns2_transfers_total` series read 0 until counted.
   * Added at scrape time (zeroSeries), not held by prom-client: six label sets per zone were
   * 1.4 KB of heap per zone, 140 MB at 100 000 zones.
   */
  private readonly transferKinds = new Map<string, readonly TransferKind[]>();
  private readonly duration: Histogram<'kind'>;
  private readonly transferBytes: Counter<'zone'>;
  private readonly fallbacks: Counter<'zone' | 'reason'>;
  private readonly notifyIn: Counter<'zone' | 'result'>;
  private readonly notifyOut: Counter<'result'>;
  private readonly transfersOut: Counter<'zone' | 'kind' | 'result'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.zoneGauges();
    this.queryMetrics();
    this.transfers = this.counter(
      'ns2_transfers_total',
      'Refresh attempts (SOA check, then IXFR or AXFR when newer) by outcome.',
      ['zone', 'kind', 'result'],
    );
    zeroSeries(this.transfers, () => this.transferKinds);
    this.duration = this.histogram(
      'ns2_transfer_duration_seconds',
      'Time of each applied transfer, SOA check to commit.',
      ['kind'],
      DURATION_BUCKETS,
    );
    this.transferBytes = this.counter(
      'ns2_transfer_bytes_total',
      'Bytes of transfer messages received from primaries.',
      ['zone'],
    );
    this.fallbacks = this.counter(
      'ns2_ixfr_fallbacks_total',
      'IXFR attempts that fell back to AXFR, by reason.',
      ['zone', 'reason'],
    );
    this.notifyIn = this.counter(
      'ns2_notify_received_total',
      'NOTIFY messages answered, by result (zone is empty for a zone not served).',
      ['zone', 'result'],
    );
    this.notifyOut = this.counter(
      'ns2_notify_sent_total',
      'NOTIFY messages sent to our secondaries, one per target and change, by result.',
      ['result'],
    );
    this.transfersOut = this.counter(
      'ns2_transfers_out_total',
      'Zone transfer requests from our secondaries, by result (zone is empty for a zone not served).',
      ['zone', 'kind', 'result'],
    );
  }

  // ------------------------------------------------------------------------------------------
  // The API other modules register their metrics with (names start with ns2_).

  counter<L extends string>(
    name: `ns2_${string}_total`,
    help: string,
    labelNames: readonly L[] = [],
    collect?: CollectFunction<Counter<L>>,
  ): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry], collect });
  }

  gauge<L extends string>(
    name: `ns2_${string}`,
    help: string,
    labelNames: readonly L[] = [],
    collect?: CollectFunction<Gauge<L>>,
  ): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry], collect });
  }

  histogram<L extends string>(
    name: `ns2_${string}`,
    help: string,
    labelNames: readonly L[],
    buckets: number[],
  ): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  // ------------------------------------------------------------------------------------------
  // Sources

  /** The zones the scrape reports (the daemon passes the zone table and the store). */
  watchZones(source: ZoneSource): void {
    this.zoneSource = source;
  }

  /** Response rate limiting's counters, read at scrape time (they live in the shared RRL table). */
  watchRateLimit(stats: () => { dropped: number; slipped: number }): void {
    this.rateLimit = stats;
  }

  /** Member zones accepted from each consumed catalog (RFC 9432), read at scrape time. */
  watchCatalogs(counts: () => readonly { catalog: string; members: number }[]): void {
    this.gauge(
      'ns2_catalog_members',
      'Member zones served from each consumed catalog zone.',
      ['catalog'],
      function collect() {
        this.reset();
        for (const c of counts()) this.set({ catalog: c.catalog }, c.members);
      },
    );
  }

  /** A thread's query counters (the main thread's, each serving worker's shared buffer). */
  addQueryCounters(c: QueryCounters): void {
    this.queryThreads.push(c);
  }

  /**
   * A configured zone: its attempt counters start at 0 (so `increase()` sees the first failure),
   * and the primary serial its last recorded check saw (from the `transfers` table), if any.
   */
  addZone(zone: ZoneConfig, primarySerial?: number): void {
    this.transferKinds.set(zone.name, zone.transfer === 'ixfr' ? BOTH_KINDS : AXFR_ONLY);
    if (primarySerial !== undefined) this.primarySerials.set(zone.name, primarySerial);
  }

  /** A zone no longer served (reload): its series go, so dashboards stop showing it. */
  removeZone(zone: string): void {
    this.transferKinds.delete(zone);
    this.primarySerials.delete(zone);
    this.behindSince.delete(zone);
    for (const kind of ['ixfr', 'axfr'] as const) {
      for (const result of ['transferred', 'uptodate', 'failed'] as const)
        this.transfers.remove({ zone, kind, result });
      for (const result of TRANSFER_OUT_RESULTS) this.transfersOut.remove({ zone, kind, result });
    }
    this.transferBytes.remove({ zone });
    for (const reason of FALLBACK_REASONS) this.fallbacks.remove({ zone, reason });
    for (const result of ['accepted', 'refused'] as const) this.notifyIn.remove({ zone, result });
  }

  // ------------------------------------------------------------------------------------------
  // Events

  /** One refresh attempt ended (its `transfers` row). */
  transferAttempt(zone: ZoneConfig, row: Readonly<TransferRow>): void {
    const kind = attemptKind(zone, row);
    this.transfers.inc({ zone: zone.name, kind, result: row.result });
    if (row.bytes) this.transferBytes.inc({ zone: zone.name }, row.bytes);
    if (row.fallback_reason)
      this.fallbacks.inc({ zone: zone.name, reason: fallbackReason(row.fallback_reason) });
    if (row.result === 'transferred' && row.duration_ms !== undefined)
      this.duration.observe({ kind }, row.duration_ms / 1000);
    const primary = row.primary_serial;
    if (primary === null || primary === undefined) return;
    this.primarySerials.set(zone.name, primary);
    const ours = row.serial_after ?? row.serial_before;
    if (ours === null || ours === undefined || isNewer(primary, ours)) {
      if (!this.behindSince.has(zone.name)) this.behindSince.set(zone.name, row.started_at);
    } else this.behindSince.delete(zone.name);
  }

  notifyReceived(zone: string, result: NotifyResult): void {
    this.notifyIn.inc({ zone, result });
  }

  notifySent(result: NotifySentResult): void {
    this.notifyOut.inc({ result });
  }

  transferOut(zone: string, kind: 'axfr' | 'ixfr', result: TransferOutResult): void {
    this.transfersOut.inc({ zone, kind, result });
  }

  // ------------------------------------------------------------------------------------------

  /** The Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.snapshot = this.zoneSource();
    try {
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    } finally {
      this.snapshot = [];
    }
  }

  /** Gauges filled from the scrape's zone snapshot; a zone no longer configured disappears. */
  private zoneGauges(): void {
    const perZone = (
      name: `ns2_zone_${string}`,
      help: string,
      value: (z: ZoneSnapshot) => number | null | undefined,
    ) => {
      const self = this;
      this.gauge(name, help, ['zone'], function collect() {
        this.reset();
        for (const z of self.snapshot) {
          const v = value(z);
          if (v !== null && v !== undefined) this.set({ zone: z.row.name }, v);
        }
      });
    };
    perZone('ns2_zone_serial', 'SOA serial of the zone version served.', (z) => z.row.serial);
    perZone('ns2_zone_primary_serial', "SOA serial the primary's answer to the last SOA check showed.", (z) =>
      this.primarySerials.get(z.row.name),
    );
    perZone('ns2_zone_records', 'Resource records in the served version.', (z) => z.row.records);
    perZone(
      'ns2_zone_last_refresh_timestamp_seconds',
      'Unix time of the last successful SOA check (up to date or transferred).',
      (z) => z.row.last_refresh,
    );
    perZone(
      'ns2_zone_last_transfer_timestamp_seconds',
      'Unix time the last transfer was applied.',
      (z) => z.row.last_transfer,
    );
    perZone(
      'ns2_zone_expiry_timestamp_seconds',
      'Unix time the zone expires (answers SERVFAIL) unless a refresh succeeds before.',
      (z) => z.expiresAt,
    );
    perZone(
      'ns2_zone_refresh_seconds',
      'Effective SOA refresh interval (after refreshMin/refreshMax).',
      (z) => z.timers?.refresh,
    );
    perZone(
      'ns2_zone_retry_seconds',
      'Effective SOA retry interval (after retryMin/retryMax).',
      (z) => z.timers?.retry,
    );
    perZone(
      'ns2_zone_behind_since_timestamp_seconds',
      "Unix time since which the primary's SOA has shown a newer serial than ours (absent when in sync).",
      (z) => this.behindSince.get(z.row.name),
    );
    const self = this;
    this.gauge('ns2_zone_state', 'Zone state: 1 for the current one.', ['zone', 'state'], function collect() {
      this.reset();
      for (const z of self.snapshot)
        for (const state of ZONE_STATES) this.set({ zone: z.row.name, state }, z.state === state ? 1 : 0);
    });
  }

  /** Counters read from every answering thread's slots at scrape time. */
  private queryMetrics(): void {
    // A few hundred additions per thread: summed afresh by each counter's collect.
    const sum = () => totalCounters(this.queryThreads);
    this.counter(
      'ns2_queries_total',
      'Replies sent to queries (UDP and TCP, every answering thread), by rcode.',
      ['transport', 'rcode'],
      function collect() {
        this.reset();
        for (const q of sum().queries) this.inc({ transport: q.transport, rcode: q.rcode }, q.value);
      },
    );
    this.counter(
      'ns2_query_types_total',
      'Replies sent by query type (common types; the rest as "other").',
      ['qtype'],
      function collect() {
        this.reset();
        for (const t of sum().qtypes) this.inc({ qtype: t.qtype }, t.value);
      },
    );
    const rrl = (name: `ns2_rrl_${string}_total`, help: string, pick: 'dropped' | 'slipped') =>
      this.counter(name, help, [], function collect() {
        this.reset();
        this.inc(self.rateLimit?.()[pick] ?? 0);
      });
    const self = this;
    rrl('ns2_rrl_dropped_total', 'Responses not sent because of response rate limiting.', 'dropped');
    rrl(
      'ns2_rrl_slipped_total',
      'Rate-limited responses sent truncated (TC) instead of dropped (slip).',
      'slipped',
    );
  }
}
