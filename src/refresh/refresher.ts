/**
 * Bringing one zone up to date from its primaries (RFC 1034 §4.3.5): ask each primary in order
 * for its SOA serial; when it is newer than ours (RFC 1982), or we have no copy, transfer the zone
 * and apply it in one transaction. One check per zone at a time.
 */
import type { ZoneConfig } from '../config.js';
import { textToName } from '../dns/name.js';
import { isNewer } from '../dns/serial.js';
import type { Logger } from '../log.js';
import type { ZoneTable } from '../serve/zone-table.js';
import type { ZoneStore } from '../store/zone-store.js';
import { axfr } from '../xfrin/axfr.js';
import { probeSerial } from '../xfrin/soa-probe.js';
import { type Endpoint, endpointText } from '../xfrin/transport.js';

export type Trigger = 'startup' | 'timer' | 'notify' | 'cli';

export type CheckOutcome =
  | { result: 'transferred'; serial: number; primary: string }
  | { result: 'uptodate'; serial: number; primary: string }
  | { result: 'failed'; error: string };

export interface CheckOptions {
  /** Transfer the whole zone by AXFR even when the serial is unchanged (`ns2 retransfer`). */
  forceAxfr?: boolean;
}

const PROBE_TIMEOUT_MS = 3000;

export class Refresher {
  private running = new Map<string, Promise<CheckOutcome>>();

  constructor(
    private readonly store: ZoneStore,
    private readonly table: ZoneTable,
    private readonly log: Logger,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

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

  private async run(zone: ZoneConfig, trigger: Trigger, opts: CheckOptions): Promise<CheckOutcome> {
    const apex = textToName(zone.name);
    const log = this.log.child({ zone: zone.name });
    const errors: string[] = [];
    for (const p of zone.primaries) {
      const primary: Endpoint = { address: p.address, port: p.port };
      const peer = endpointText(primary);
      const ours = this.store.zone(zone.name)?.serial ?? null;
      try {
        const theirs = await probeSerial(primary, apex, PROBE_TIMEOUT_MS);
        if (ours !== null && !opts.forceAxfr && !isNewer(theirs, ours)) {
          this.store.updateZone(zone.name, { last_refresh: this.now() });
          log.debug({ serial: ours, primary_serial: theirs, primary: peer, trigger }, 'zone is up to date');
          return { result: 'uptodate', serial: ours, primary: peer };
        }
        const started = Date.now();
        const got = await axfr(primary, apex, zone);
        for (const d of got.dropped.slice(0, 20)) {
          log.warn(
            { owner: d.owner, type: d.type, primary: peer },
            'dropped out-of-zone record from transfer',
          );
        }
        if (got.dropped.length > 20)
          log.warn({ count: got.dropped.length }, 'more out-of-zone records dropped');
        const applied = this.store.replaceZone(zone.name, got.rrs, {
          serial: got.serial,
          primary: peer,
          now: this.now(),
        });
        const entry = this.table.get(zone.name);
        if (entry) entry.serving = true;
        log.info(
          {
            kind: 'axfr',
            serial_from: ours,
            serial_to: got.serial,
            serial: got.serial,
            records: applied.records,
            added: applied.added,
            removed: applied.removed,
            bytes: got.bytes,
            messages: got.messages,
            ms: Date.now() - started,
            primary: peer,
            trigger,
          },
          'zone transferred',
        );
        return { result: 'transferred', serial: got.serial, primary: peer };
      } catch (e) {
        const error = `${peer}: ${(e as Error).message}`;
        errors.push(error);
        log.warn(
          { primary: peer, serial: ours, trigger, error: (e as Error).message },
          'refresh from primary failed',
        );
      }
    }
    return { result: 'failed', error: errors.join('; ') };
  }
}
