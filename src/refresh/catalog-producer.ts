/**
 * Catalog producer (RFC 9432 §5): publishes a catalog of every zone ns2 serves, so a BIND, Knot
 * or ns2 secondary chained behind it follows zone additions and removals without per-zone config.
 *
 * The catalog is stored like any zone (SQLite rows, history), so AXFR and IXFR out, the zone
 * image and `ns2 dump` work on it unchanged. Each change of the zone list commits a new version
 * (serial: the Unix time, or the old serial + 1 when that is not greater, as BIND's
 * `serial-update-method unixtime`) and NOTIFYs `alsoNotify`. Member labels are derived from the
 * zone name, so a restart or a re-add never resets a member downstream (§5.4).
 */

import { keyToName } from '../dns/name.js';
import type { Logger } from '../log.js';
import { replaceZone, type StoreWriter } from '../store/writer.js';
import type { ZoneStore } from '../store/zone-store.js';
import { catalogRecords, parseCatalog } from './catalog.js';

/** Changes of the zone list within this many ms make one new catalog version. */
const COALESCE_MS = 200;

export class CatalogProducer {
  private timer: NodeJS.Timeout | undefined;
  private zones: readonly string[] = [];
  private running: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    readonly name: string,
    private readonly store: ZoneStore,
    private readonly writer: StoreWriter,
    /** Called after each committed version (state, NOTIFY). */
    private readonly published: (serial: number) => void,
    private readonly log: Logger,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  /** The zones served are now `zones`: publish them (coalesced; at once with `immediate`). */
  update(zones: Iterable<string>, immediate = false): void {
    this.zones = [...new Set(zones)].filter((z) => z !== this.name).sort();
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.running = this.running
          .then(() => this.publish())
          .catch((err) => {
            this.log.error({ zone: this.name, err }, 'produced catalog not written');
          });
      },
      immediate ? 0 : COALESCE_MS,
    );
  }

  /** Resolves once every update asked for so far is written. */
  async settled(): Promise<void> {
    while (this.timer) await new Promise((r) => setTimeout(r, COALESCE_MS / 4));
    await this.running;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private stored(): { serial: number | null; members: Set<string> | undefined } {
    const serial = this.store.zone(this.name)?.serial ?? null;
    if (serial === null) return { serial, members: undefined };
    const rrs = this.store.snapshot(() =>
      [...this.store.scanZone(this.name)].map(([nkey, type, ttl, rdata]) => ({
        owner: keyToName(nkey),
        type,
        ttl,
        rdata,
      })),
    );
    const p = parseCatalog(this.name, rrs);
    return { serial, members: p.ok ? new Set(p.members.keys()) : undefined };
  }

  private async publish(): Promise<void> {
    if (this.closed) return;
    const zones = this.zones;
    const old = this.stored();
    if (old.members && old.members.size === zones.length && zones.every((z) => old.members?.has(z))) {
      if (old.serial !== null) this.published(old.serial);
      return;
    }
    const now = this.now();
    const serial = old.serial === null ? now >>> 0 : Math.max(now, old.serial + 1) >>> 0;
    await replaceZone(this.writer, this.name, catalogRecords(this.name, serial, zones), {
      serial,
      primary: 'ns2',
      now,
    });
    this.log.info({ zone: this.name, serial, members: zones.length }, 'produced catalog updated');
    this.published(serial);
  }
}
