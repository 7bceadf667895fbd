/**
 * Bringing one zone up to date from its primaries (RFC 1034 §4.3.5, RFC 1995):
 *
 *   SOA query ──same serial──► up to date      ──older serial (RFC 1982)──► behind: keep ours
 *        │newer (or no copy)
 *        ▼
 *   IXFR query ──any failure: rcode, timeout, broken stream, diff that doesn't apply──► AXFR query
 *        │incremental → apply diff   │AXFR-style → replace zone              replace zone │
 *        ▼                           ▼                                                    ▼
 *   applied (one transaction) ──► onTransferred: NOTIFY our own secondaries (notify-out.ts)
 *
 * Commit guards (xfrin/guards.ts: SOA and NS at the apex, CNAME alone, maxRecordsPerType,
 * maxTypesPerName, maxDeletePercent) check what a transfer would leave: an incremental IXFR here,
 * before it is applied (the touched nodes as we hold them, plus the diff); a full zone (AXFR, or an
 * AXFR-style IXFR) in the writer's commit over the staged zone. A refusal (GuardError) fails the
 * attempt without an AXFR fallback: the primary's data is the problem, not the diff.
 *
 * A primary behind us is not followed and does not renew the expiry; the next primary is asked,
 * and without a better answer the outcome is `behind` (checked again at the next refresh).
 *
 * With a primary `key`, every query is TSIG-signed and every reply must verify (RFC 8945); an
 * unsigned or badly signed reply fails that step like any other error, and the zone we hold keeps
 * being served. Primaries are tried in order; the first that answers the SOA query serves the
 * check. Every attempt leaves one `transfers` row. One check per zone at a time.
 *
 * A primary with `tls` is asked everything over TLS (RFC 9103; xfrin/transport.ts): a TLS failure
 * (certificate, name, handshake) fails the attempt with its reason like any other error.
 */
import type { Primary, TsigKey, ZoneConfig } from '../config.js';
import { nameKey, textToName } from '../dns/name.js';
import { rcodeText } from '../dns/rcode.js';
import { isNewer } from '../dns/serial.js';
import type { Logger } from '../log.js';
import type { ZoneTable } from '../serve/zone-table.js';
import { replaceZone, type StoreWriter } from '../store/writer.js';
import {
  type CommitGuards,
  InconsistentDiff,
  type TransferRow,
  type ZoneStore,
} from '../store/zone-store.js';
import { axfr, XfrError } from '../xfrin/axfr.js';
import { checkDiffs, deleteProblem, diffRemovals, GuardError } from '../xfrin/guards.js';
import { ixfr, type ZoneDiff } from '../xfrin/ixfr.js';
import { probeSerial } from '../xfrin/soa-probe.js';
import { endpointText } from '../xfrin/transport.js';

export type Trigger = 'startup' | 'timer' | 'notify' | 'cli' | 'reload' | 'catalog';

export interface CheckOptions {
  /** Transfer the whole zone by AXFR even when the serial is unchanged (`ns2 retransfer`). */
  forceAxfr?: boolean;
}

export type CheckOutcome =
  | { result: 'transferred'; serial: number; primary: string; kind: 'ixfr' | 'axfr'; expire?: number }
  | { result: 'uptodate'; serial: number; primary: string; expire?: number }
  | { result: 'behind'; serial: number; primary: string; primarySerial: number }
  | { result: 'failed'; error: string };

const PROBE_TIMEOUT_MS = 3000;
const REMOVED: CheckOutcome = { result: 'failed', error: 'zone is no longer configured' };

type Dropped = { owner: string; type: number }[];

export interface RefresherOptions {
  /** TSIG keys by name, for the primaries' `key`. */
  keys?: ReadonlyMap<string, TsigKey>;
  /** Called after each applied transfer (NOTIFY out). */
  onTransferred?: (zone: ZoneConfig, serial: number) => void;
  /** Called with each attempt's audit row once it is recorded (metrics). */
  onAttempt?: (zone: ZoneConfig, row: Readonly<TransferRow>) => void;
  now?: () => number;
}

export class Refresher {
  private running = new Map<string, Promise<CheckOutcome>>();
  private readonly retired = new Set<string>();
  private readonly now: () => number;

  constructor(
    private readonly store: ZoneStore,
    private readonly writer: StoreWriter,
    private readonly table: ZoneTable,
    private readonly log: Logger,
    private readonly opts: RefresherOptions = {},
  ) {
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Runs a check, or joins the one already running for this zone (never two at once). */
  check(zone: ZoneConfig, trigger: Trigger, opts: CheckOptions = {}): Promise<CheckOutcome> {
    const running = this.running.get(zone.name);
    if (running) return running;
    const p = this.run(zone, trigger, opts)
      .catch((e): CheckOutcome => {
        this.log.error({ zone: zone.name, err: e }, 'refresh failed unexpectedly');
        return { result: 'failed', error: (e as Error).message };
      })
      .finally(() => this.running.delete(zone.name));
    this.running.set(zone.name, p);
    return p;
  }

  isRunning(zone: string): boolean {
    return this.running.has(zone);
  }

  /**
   * The zone was removed (reload, catalog): a check of it still running stops at its next step
   * instead of transferring a zone nobody serves. `restore` when it is configured again.
   */
  retire(zone: string): void {
    this.retired.add(zone);
  }

  restore(zone: string): void {
    this.retired.delete(zone);
  }

  private async run(zone: ZoneConfig, trigger: Trigger, opts: CheckOptions): Promise<CheckOutcome> {
    const errors: string[] = [];
    let behind: CheckOutcome | undefined;
    for (const p of zone.primaries) {
      if (this.retired.has(zone.name)) return REMOVED;
      const outcome = await this.fromPrimary(zone, p, trigger, opts);
      if (outcome.result === 'behind') behind ??= outcome;
      else if (outcome.result !== 'failed') return outcome;
      else errors.push(outcome.error);
    }
    return behind ?? { result: 'failed', error: errors.join('; ') };
  }

  private async fromPrimary(
    zone: ZoneConfig,
    primary: Primary,
    trigger: Trigger,
    opts: CheckOptions,
  ): Promise<CheckOutcome> {
    const apex = textToName(zone.name);
    const peer = endpointText(primary);
    // Config guarantees the key exists; the log names it (never its secret).
    const key = primary.key === undefined ? undefined : this.opts.keys?.get(primary.key);
    const log = this.log.child({
      zone: zone.name,
      primary: peer,
      key: primary.key,
      transport: primary.tls ? 'tls' : undefined,
    });
    const started = Date.now();
    const ours = this.store.soaRecord(zone.name);
    const row: TransferRow = {
      zone: zone.name,
      started_at: this.now(),
      trigger,
      primary_addr: peer,
      serial_before: ours?.serial ?? null,
      result: 'failed',
    };
    const finish = async (r: Partial<TransferRow>) => {
      Object.assign(row, r, { duration_ms: Date.now() - started });
      try {
        await this.writer.recordTransfer(row);
      } finally {
        this.opts.onAttempt?.(zone, row);
      }
    };
    try {
      const probe = await probeSerial(primary, apex, PROBE_TIMEOUT_MS, key);
      row.primary_serial = probe.serial;
      if (ours && !opts.forceAxfr && !isNewer(probe.serial, ours.serial)) {
        if (probe.serial !== ours.serial) {
          const error = `primary serial ${probe.serial} is older than ours (${ours.serial}): kept ours`;
          await finish({ result: 'uptodate', serial_after: ours.serial, error });
          log.warn(
            { serial: ours.serial, primary_serial: probe.serial, trigger },
            'primary serial is older than ours',
          );
          return { result: 'behind', serial: ours.serial, primary: peer, primarySerial: probe.serial };
        }
        await finish({ result: 'uptodate', serial_after: ours.serial });
        log.debug({ serial: ours.serial, primary_serial: probe.serial, trigger }, 'zone is up to date');
        return { result: 'uptodate', serial: ours.serial, primary: peer, expire: probe.expire };
      }
      const wantIxfr = ours !== undefined && !opts.forceAxfr && zone.transfer === 'ixfr';
      row.kind_requested = wantIxfr ? 'ixfr' : 'axfr';
      if (wantIxfr) {
        try {
          const got = await ixfr(primary, apex, ours, zone, key);
          this.logDropped(log, got.dropped);
          Object.assign(row, { messages: got.messages, bytes: got.bytes });
          if (got.kind === 'uptodate') {
            await finish({ result: 'uptodate', serial_after: ours.serial });
            return { result: 'uptodate', serial: ours.serial, primary: peer, expire: probe.expire };
          }
          if (got.kind === 'ixfr') await this.guard(zone, apex, got.diffs);
          log.debug({ serial: got.serial, kind: got.kind }, 'committing transfer');
          const now = this.now();
          const records =
            got.kind === 'ixfr'
              ? got.diffs.reduce((n, d) => n + d.added.length + d.deleted.length, 0)
              : got.rrs.length;
          const fields = transferred(got.kind, got.serial, records, got);
          const audit = { row: { ...row, ...fields }, startedMs: started };
          const applied =
            got.kind === 'ixfr'
              ? await this.writer.applyDiffs(zone.name, got.diffs, { primary: peer, now, audit })
              : await replaceZone(this.writer, zone.name, got.rrs, {
                  serial: got.serial,
                  primary: peer,
                  now,
                  guards: guardsOf(zone),
                  audit,
                });
          return this.done(zone, log, row, fields, {
            kind: got.kind,
            serial: got.serial,
            records,
            applied,
            stats: got,
            started,
            expire: probe.expire,
            versions: got.kind === 'ixfr' ? got.diffs.length : undefined,
          });
        } catch (e) {
          if (e instanceof GuardError) throw e;
          // Every IXFR failure class falls back to AXFR (RFC 1995 §4 leaves it to us; we heal).
          row.fallback_reason = describe(e);
          if (e instanceof XfrError && e.rcode !== undefined) row.rcode = rcodeText(e.rcode);
          log.warn(
            { serial: ours.serial, reason: row.fallback_reason, trigger },
            'IXFR failed, falling back to AXFR',
          );
        }
      }
      if (this.retired.has(zone.name)) return REMOVED;
      // The zone streams into the writer's staging table as it arrives: never all in memory.
      const staging = await this.writer.beginIncoming();
      let got: Awaited<ReturnType<typeof axfr>>;
      let applied: Awaited<ReturnType<StoreWriter['commitIncoming']>>;
      let fields: Partial<TransferRow>;
      try {
        // The debug lines bracket the window in which a crash leaves the old version (crash.test.ts).
        let staged = false;
        got = await axfr(primary, apex, zone, key, (batch) => {
          this.writer.addIncoming(staging, batch);
          if (!staged) log.debug({ serial: probe.serial, records: batch.length }, 'first RRs staged');
          staged = true;
        });
        this.logDropped(log, got.dropped);
        log.debug({ serial: got.serial, kind: 'axfr' }, 'committing transfer');
        fields = transferred('axfr', got.serial, got.records, got);
        applied = await this.writer.commitIncoming(staging, zone.name, {
          serial: got.serial,
          primary: peer,
          now: this.now(),
          guards: guardsOf(zone),
          audit: { row: { ...row, ...fields }, startedMs: started },
        });
      } finally {
        await this.writer.dropIncoming(staging);
      }
      return this.done(zone, log, row, fields, {
        kind: 'axfr',
        serial: got.serial,
        records: got.records,
        applied,
        stats: got,
        started,
        expire: probe.expire,
      });
    } catch (e) {
      const error = describe(e);
      const rcode = e instanceof XfrError && e.rcode !== undefined ? rcodeText(e.rcode) : row.rcode;
      await finish({ result: 'failed', error, rcode }).catch((err) =>
        log.error({ err }, 'could not record the failed transfer'),
      );
      log.warn({ serial: ours?.serial ?? null, trigger, error }, 'refresh from primary failed');
      return { result: 'failed', error: `${peer}: ${error}` };
    }
  }

  private async done(
    zone: ZoneConfig,
    log: Logger,
    row: TransferRow,
    fields: Partial<TransferRow>,
    t: {
      kind: 'ixfr' | 'axfr';
      serial: number;
      records: number;
      applied: { added: number; removed: number; records: number };
      stats: { messages: number; bytes: number };
      started: number;
      expire?: number;
      versions?: number;
    },
  ): Promise<CheckOutcome> {
    this.table.changed(zone.name); // the new version is committed: cached answers are stale
    // The audit row went in with the commit; the hook (metrics) sees the same row.
    Object.assign(row, fields, { duration_ms: Date.now() - t.started });
    this.opts.onAttempt?.(zone, row);
    await this.writer.pruneHistory(zone.name, zone.historyLimit);
    log.info(
      {
        kind: t.kind,
        serial_from: row.serial_before,
        serial_to: t.serial,
        serial: t.serial,
        records: t.applied.records,
        added: t.applied.added,
        removed: t.applied.removed,
        versions: t.versions,
        bytes: t.stats.bytes,
        messages: t.stats.messages,
        ms: Date.now() - t.started,
        trigger: row.trigger,
        fallback_reason: row.fallback_reason ?? undefined,
      },
      'zone transferred',
    );
    this.opts.onTransferred?.(zone, t.serial);
    return {
      result: 'transferred',
      serial: t.serial,
      primary: row.primary_addr,
      kind: t.kind,
      expire: t.expire,
    };
  }

  /** Commit guards on an incremental IXFR before it is applied; a problem throws GuardError. */
  private async guard(zone: ZoneConfig, apex: Buffer, diffs: ZoneDiff[]): Promise<void> {
    const oldCount = this.store.zone(zone.name)?.records ?? 0;
    let problem = deleteProblem(oldCount, diffRemovals(diffs), zone.maxDeletePercent);
    const reader = this.store.reader(zone.name);
    problem ??= await checkDiffs(diffs, apex, zone, (owner) => reader.node(nameKey(owner)));
    if (problem) throw new GuardError(problem);
  }

  private logDropped(log: Logger, dropped: Dropped): void {
    for (const d of dropped.slice(0, 20))
      log.warn({ owner: d.owner, type: d.type }, 'dropped out-of-zone record');
    if (dropped.length > 20) log.warn({ count: dropped.length }, 'more out-of-zone records dropped');
  }
}

/** The audit fields of a transfer that commits (ZoneStore.TransferAudit). */
function transferred(
  kind: 'ixfr' | 'axfr',
  serial: number,
  records: number,
  stats: { messages: number; bytes: number },
): Partial<TransferRow> {
  return {
    result: 'transferred',
    kind_performed: kind,
    serial_after: serial,
    records,
    messages: stats.messages,
    bytes: stats.bytes,
  };
}

/** The commit guards of a full transfer, from the zone's config. */
function guardsOf(zone: ZoneConfig): CommitGuards {
  return {
    limits: { maxRecordsPerType: zone.maxRecordsPerType, maxTypesPerName: zone.maxTypesPerName },
    maxDeletePercent: zone.maxDeletePercent,
  };
}

function describe(e: unknown): string {
  if (e instanceof InconsistentDiff) return `inconsistent diff: ${e.message}`;
  return (e as Error).message;
}
