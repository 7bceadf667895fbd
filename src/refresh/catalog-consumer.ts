/**
 * Catalog consumer (RFC 9432 §5): keeps the zones ns2 serves equal to the members of the catalogs
 * it consumes. Each catalog is an ordinary secondary zone (refreshed, NOTIFYed, IXFRed, stored);
 * after each of its commits the whole catalog is read back from SQLite, parsed (catalog.ts) and
 * compared with the members accepted before:
 *
 *   new member        ──► zone added, first transfer at once
 *   member gone       ──► zone no longer served, its rows and history deleted (one transaction)
 *   new unique label  ──► zone reset: rows deleted, transferred from scratch (§5.4)
 *   other properties  ──► zone reconfigured (group settings), data kept
 *   coo → catalog B   ──► once B lists the zone, B owns it; data kept (§5.6)
 *
 * A reload (SIGHUP, `ns2 reload`) changes the catalogs consumed, as `rndc reconfig` with a new
 * `catalog-zones` block does for BIND (reconfigure()):
 *
 *   catalog added     ──► its zone transferred at once; its members follow from its first commit
 *   catalog removed   ──► its zone and rows deleted; each member another catalog lists moves there
 *                         (as by coo), every other member is deleted as if it had left the catalog
 *   catalog changed   ──► primaries, zoneDefaults, groups: new settings for the catalog zone and
 *                         each member they change, no transfer because of it
 *   static zone added ──► a member of that name stops being a member, keeping its data (release())
 *   static removed    ──► a catalog listing it serves it as a member from then on
 *
 * A catalog that cannot be processed (catalog.ts says why) is logged and changes nothing: the
 * last good member list stays served. A member that is also a static zone keeps the static
 * config (logged once); a member another consumed catalog already owns stays with that catalog
 * unless that catalog's `coo` hands it over.
 *
 * The accepted member list survives restarts in `zones.catalog` / `zones.catalog_label`, so a
 * restart serves every member at once without reading their records.
 */
import { isDeepStrictEqual } from 'node:util';
import { type CatalogConfig, memberConfig, type ZoneConfig } from '../config.js';
import { keyToName } from '../dns/name.js';
import type { Logger } from '../log.js';
import type { ZoneRow, ZoneRR, ZoneStore } from '../store/zone-store.js';
import { type CatalogMember, type CatalogParse, diffMembers, parseCatalog } from './catalog.js';

/** What the consumer asks of the daemon: the run-time zone add/remove path reload also uses. */
export interface MemberZones {
  /** Starts serving and transferring `zone`, recorded as a member of `catalog` under `label`. */
  add(zone: ZoneConfig, member: { catalog: string; label: string }): Promise<void>;
  /** New settings for a member zone; its data stays. */
  update(zone: ZoneConfig, member: { catalog: string; label: string }): Promise<void>;
  /** Stops serving `zone` and deletes every row of it. */
  remove(zone: string): Promise<void>;
  /** Starts transferring a catalog zone added by a reload (stored, never answered). */
  addCatalog(zone: ZoneConfig): Promise<void>;
  /** New settings (primaries) for a catalog zone. */
  updateCatalog(zone: ZoneConfig): Promise<void>;
  /** `zone` is no longer a member (it became a static zone): its rows stay, unmarked. */
  release(zone: string): Promise<void>;
}

/** Member changes applied at once. */
const PARALLEL = 64;

export interface MemberCount {
  catalog: string;
  members: number;
}

export class CatalogConsumer {
  private readonly catalogs = new Map<string, CatalogConfig>();
  /** Accepted members of each catalog. */
  private readonly members = new Map<string, Map<string, CatalogMember>>();
  /** Which catalog owns each member zone. */
  private readonly owner = new Map<string, string>();
  /** Members already reported as shadowed by a static zone (log once, not per catalog change). */
  private readonly shadowed = new Set<string>();
  /** The last parse of each catalog and the serial it was of (a 10 000-member parse is ~0.3 s). */
  private readonly parsed = new Map<string, { serial: number | null; result: CatalogParse }>();
  /** A resolved member config by catalog and group list (see configOf). */
  private readonly templates = new Map<string, ZoneConfig>();
  /** Catalogs dropped by release() (they became static zones) whose members reconfigure() handles. */
  private readonly departing = new Set<string>();
  /** One catalog processed at a time, in commit order. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    catalogs: readonly CatalogConfig[],
    /** Zones from the config's `zones`: they shadow members of the same name. */
    private staticZones: ReadonlySet<string>,
    private readonly store: ZoneStore,
    private readonly zones: MemberZones,
    private readonly log: Logger,
  ) {
    for (const c of catalogs) {
      this.catalogs.set(c.name, c);
      this.members.set(c.name, new Map());
    }
  }

  isCatalog(zone: string): boolean {
    return this.catalogs.has(zone);
  }

  /**
   * The member zones stored by an earlier run, with their configs: served at once at start-up.
   * Groups come from the stored catalog when it still parses (else the member gets zoneDefaults
   * until the next good catalog version).
   */
  stored(): { zone: ZoneConfig; row: ZoneRow }[] {
    const out: { zone: ZoneConfig; row: ZoneRow }[] = [];
    const parsed = new Map<string, ReadonlyMap<string, CatalogMember>>();
    const rows = this.store.zones();
    const serials = new Map(rows.map((r) => [r.name, r.serial]));
    for (const row of rows) {
      if (row.catalog === null || row.catalog_label === null) continue;
      const cat = this.catalogs.get(row.catalog);
      // Reconciled by the daemon's start (orphans()).
      if (!cat || this.staticZones.has(row.name) || this.catalogs.has(row.name)) continue;
      if (!parsed.has(cat.name)) {
        const p = this.parse(cat.name, serials.get(cat.name) ?? null);
        parsed.set(cat.name, p.ok ? p.members : new Map());
      }
      const known = parsed.get(cat.name)?.get(row.name);
      const member: CatalogMember =
        known?.id === row.catalog_label ? known : { zone: row.name, id: row.catalog_label, groups: [] };
      this.members.get(cat.name)?.set(row.name, member);
      this.owner.set(row.name, cat.name);
      out.push({ zone: this.configOf(cat, member), row });
    }
    return out;
  }

  /**
   * What start-up must reconcile: stored members of catalogs no longer configured (`deleted`), and
   * members that are static zones or consumed catalogs now (`released`: served as configured now,
   * data kept).
   */
  orphans(): { deleted: [string, string][]; released: [string, string][] } {
    const deleted: [string, string][] = [];
    const released: [string, string][] = [];
    for (const r of this.store.zones()) {
      if (r.catalog === null) continue;
      if (this.staticZones.has(r.name) || this.catalogs.has(r.name)) released.push([r.name, r.catalog]);
      else if (!this.catalogs.has(r.catalog)) deleted.push([r.name, r.catalog]);
    }
    return { deleted, released };
  }

  /** Accepted members by catalog (metrics, `ns2 status`). */
  counts(): MemberCount[] {
    return [...this.members].map(([catalog, m]) => ({ catalog, members: m.size }));
  }

  /** The catalog zone committed a new version: reconcile its members (queued, in order). */
  changed(catalog: string): Promise<void> {
    return this.enqueue(() => this.process(catalog));
  }

  /** Runs `fn` after every catalog change queued before it. */
  private enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * A reload is about to apply `nextStatic` (the new config's `zones`): members of those names stop
   * being members, keeping their data, for the reload to reconfigure them as static zones. Until
   * reconfigure(), static zones of the old config and the new one shadow members alike.
   */
  release(nextStatic: ReadonlySet<string>): Promise<void> {
    return this.enqueue(async () => {
      this.staticZones = new Set([...this.staticZones, ...nextStatic]);
      // A catalog that becomes a static zone goes now, so the reload adds the zone afresh; its
      // members are dealt with by reconfigure(), as for any catalog removed.
      for (const name of [...this.catalogs.keys()])
        if (nextStatic.has(name)) {
          this.departing.add(name);
          await this.dropCatalog(name);
        }
      for (const zone of nextStatic) {
        const catalog = this.owner.get(zone);
        if (catalog === undefined) continue;
        this.owner.delete(zone);
        this.members.get(catalog)?.delete(zone);
        this.shadowed.add(zone);
        await this.zones.release(zone);
        this.log.info(
          { zone, catalog },
          'catalog member is now a configured zone: its data is kept, the static config applies',
        );
      }
    });
  }

  /**
   * A reload's `catalogs` and `zones` (queued behind catalog changes in hand). Catalogs removed go
   * with every member no other catalog lists; catalogs added start transferring; changed ones
   * give their zone and their members the new settings where these differ, without a transfer;
   * then each stored catalog is compared with its members again (zones no longer static, members
   * of a removed catalog that another one lists).
   */
  reconfigure(catalogs: readonly CatalogConfig[], staticZones: ReadonlySet<string>): Promise<void> {
    return this.enqueue(() => this.apply(catalogs, staticZones));
  }

  private async apply(next: readonly CatalogConfig[], staticZones: ReadonlySet<string>): Promise<void> {
    this.staticZones = staticZones;
    for (const zone of this.shadowed)
      if (!staticZones.has(zone) && !next.some((c) => c.name === zone)) this.shadowed.delete(zone);
    // One catalog that cannot be applied (its name served already, …) does not stop the others.
    const failed: string[] = [];
    const step = async (zone: string, what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        failed.push(`${what} ${zone}: ${(err as Error).message}`);
        this.log.error({ zone, err }, `catalog reconfiguration failed: ${what}`);
      }
    };
    const before = new Map(this.catalogs);
    const wanted = new Set(next.map((c) => c.name));
    const dropped = [...before.keys()].filter((name) => !wanted.has(name));
    for (const name of dropped) await step(name, 'remove catalog', () => this.dropCatalog(name));
    const removed = [...dropped, ...this.departing];
    this.departing.clear();
    for (const cat of next) {
      const old = before.get(cat.name);
      if (old === undefined)
        await step(cat.name, 'add catalog', async () => {
          // A member zone of that name stops being one: the catalog is transferred afresh.
          const holder = this.owner.get(cat.name);
          if (holder !== undefined) {
            this.owner.delete(cat.name);
            this.members.get(holder)?.delete(cat.name);
            await this.zones.remove(cat.name);
          }
          this.catalogs.set(cat.name, cat);
          this.members.set(cat.name, new Map());
          try {
            await this.zones.addCatalog(cat.zone);
          } catch (err) {
            this.catalogs.delete(cat.name); // the next reload tries again
            this.members.delete(cat.name);
            throw err;
          }
          this.log.info({ zone: cat.name }, 'catalog added: transferring it');
        });
      else if (!isDeepStrictEqual(old, cat))
        await step(cat.name, 'change catalog', () => this.reconfigureCatalog(old, cat));
    }
    for (const name of this.catalogs.keys())
      if (this.store.zone(name)?.serial != null)
        await step(name, 'process catalog', () => this.process(name));
    for (const name of removed) {
      const left = [...(this.members.get(name)?.keys() ?? [])].filter((z) => this.owner.get(z) === name);
      await this.each(name, left, async (zone) => {
        this.owner.delete(zone);
        await this.zones.remove(zone);
        this.log.info({ zone, catalog: name }, 'catalog no longer configured: member zone deleted');
      });
      this.members.delete(name);
    }
    if (failed.length > 0) throw new Error(failed.join('; '));
  }

  /**
   * Stops consuming a catalog and deletes its zone. Its members stay owned by it (in `owner`) until
   * the other catalogs are asked whether they list them (apply()).
   */
  private async dropCatalog(name: string): Promise<void> {
    this.catalogs.delete(name);
    this.parsed.delete(name);
    this.dropTemplates(name);
    await this.zones.remove(name);
    this.log.info({ zone: name }, 'catalog no longer configured: catalog zone deleted');
  }

  /** New settings of a catalog: for its zone, and for each member whose resolved config they change. */
  private async reconfigureCatalog(old: CatalogConfig, cat: CatalogConfig): Promise<void> {
    this.catalogs.set(cat.name, cat);
    this.dropTemplates(cat.name);
    if (!isDeepStrictEqual(old.zone, cat.zone)) await this.zones.updateCatalog(cat.zone);
    // Members differ only by their group list: compare the two configs once per list.
    const differs = new Map<string, boolean>();
    const members = [...(this.members.get(cat.name)?.values() ?? [])].filter((m) => {
      const id = m.groups.join('\n');
      let d = differs.get(id);
      if (d === undefined) {
        d = !isDeepStrictEqual(memberConfig(old, '', m.groups), memberConfig(cat, '', m.groups));
        differs.set(id, d);
      }
      return d;
    });
    await this.each(cat.name, members, (m) =>
      this.zones.update(this.configOf(cat, m), { catalog: cat.name, label: m.id }),
    );
    this.log.info(
      { zone: cat.name, members: members.length },
      'catalog settings changed: applied to its members, nothing transferred',
    );
  }

  private dropTemplates(catalog: string): void {
    for (const id of this.templates.keys()) if (id.startsWith(`${catalog}\n`)) this.templates.delete(id);
  }

  /**
   * Runs `fn` for every item, PARALLEL at a time (a catalog of thousands of new members must not
   * wait for each zone's set-up in turn); a failure is logged and the others go on.
   */
  private async each<T extends CatalogMember | string>(
    catalog: string,
    items: readonly T[],
    fn: (item: T) => Promise<void>,
  ): Promise<void> {
    for (let i = 0; i < items.length; i += PARALLEL) {
      await Promise.all(
        items.slice(i, i + PARALLEL).map((item) =>
          fn(item).catch((err) => {
            const zone = typeof item === 'string' ? item : item.zone;
            this.log.error({ zone, catalog, err }, 'catalog member change failed');
          }),
        ),
      );
    }
  }

  /** The catalog's version `serial` parsed (once per version). */
  private parse(catalog: string, serial: number | null): CatalogParse {
    const last = this.parsed.get(catalog);
    if (last && last.serial === serial && serial !== null) return last.result;
    const result = parseCatalog(catalog, this.catalogRRs(catalog));
    this.parsed.set(catalog, { serial, result });
    return result;
  }

  private catalogRRs(catalog: string): ZoneRR[] {
    const rrs: ZoneRR[] = [];
    this.store.snapshot(() => {
      for (const [nkey, type, ttl, rdata] of this.store.scanZone(catalog))
        rrs.push({ owner: keyToName(nkey), type, ttl, rdata });
    });
    return rrs;
  }

  private configOf(cat: CatalogConfig, m: CatalogMember): ZoneConfig {
    const unknown = m.groups.filter((g) => !cat.groups.has(g));
    if (unknown.length > 0)
      this.log.warn(
        { zone: m.zone, catalog: cat.name, groups: unknown },
        'catalog member names groups not configured: their settings are not applied',
      );
    // Members differ only by name within a catalog and group list: resolve each list once.
    const id = `${cat.name}\n${m.groups.join('\n')}`;
    let template = this.templates.get(id);
    if (!template) {
      template = memberConfig(cat, m.zone, m.groups);
      this.templates.set(id, template);
    }
    return Object.freeze({ ...template, name: m.zone });
  }

  private async process(catalog: string): Promise<void> {
    const cat = this.catalogs.get(catalog);
    if (!cat) return;
    const serial = this.store.zone(catalog)?.serial ?? null;
    const parsed = this.parse(catalog, serial);
    if (!parsed.ok) {
      this.log.error(
        { zone: catalog, serial, err: parsed.error },
        'catalog refused: keeping the last good member list',
      );
      return;
    }
    // What this catalog may own: not static zones, not zones another catalog holds without
    // handing them over by coo (RFC 9432 §4.4.1).
    const wanted = new Map<string, CatalogMember>();
    const migrating = new Set<string>();
    for (const [zone, m] of parsed.members) {
      // A configured zone or catalog of that name keeps its config (logged once).
      const shadow = this.staticZones.has(zone)
        ? 'catalog member is also a configured zone: the static config is kept'
        : this.catalogs.has(zone)
          ? 'catalog member is a catalog ns2 consumes: not served as a member'
          : undefined;
      if (shadow !== undefined) {
        if (!this.shadowed.has(zone)) this.log.warn({ zone, catalog }, shadow);
        this.shadowed.add(zone);
        continue;
      }
      const holder = this.owner.get(zone);
      if (holder !== undefined && holder !== catalog) {
        // A holder no longer configured (reload) hands its members over like a coo would.
        if (this.catalogs.has(holder) && this.members.get(holder)?.get(zone)?.coo !== catalog) {
          if (m.coo === holder) continue; // we handed it over ourselves (coo)
          this.log.warn(
            { zone, catalog, owner: holder },
            'catalog member already belongs to another catalog',
          );
          continue;
        }
        migrating.add(zone);
      }
      wanted.set(zone, m);
    }
    const current = this.members.get(catalog)!;
    const d = diffMembers(current, wanted);
    const log = (m: CatalogMember | string, msg: string) =>
      this.log.info({ zone: typeof m === 'string' ? m : m.zone, catalog, serial }, msg);
    await this.each(catalog, d.removed, async (zone) => {
      current.delete(zone);
      if (this.owner.get(zone) !== catalog) return; // moved to another catalog by coo
      this.owner.delete(zone);
      await this.zones.remove(zone);
      log(zone, 'catalog member removed: zone deleted');
    });
    await this.each(catalog, d.added, async (m) => {
      current.set(m.zone, m);
      const member = { catalog, label: m.id };
      const from = migrating.has(m.zone) ? this.owner.get(m.zone) : undefined;
      this.owner.set(m.zone, catalog);
      if (from === undefined) {
        await this.zones.add(this.configOf(cat, m), member);
        log(m, 'catalog member added');
        return;
      }
      const before = this.members.get(from)?.get(m.zone);
      this.members.get(from)?.delete(m.zone);
      if (before?.id === m.id) await this.zones.update(this.configOf(cat, m), member);
      else {
        // RFC 9432 §4.4.1: a new unique label at the new owner resets the zone.
        await this.zones.remove(m.zone);
        await this.zones.add(this.configOf(cat, m), member);
      }
      const why = this.catalogs.has(from) ? 'coo' : 'its catalog is no longer configured';
      this.log.info({ zone: m.zone, catalog, from, serial }, `catalog member changed owner (${why})`);
    });
    await this.each(catalog, d.reset, async (m) => {
      current.set(m.zone, m);
      await this.zones.remove(m.zone);
      await this.zones.add(this.configOf(cat, m), { catalog, label: m.id });
      log(m, 'catalog member reset (new unique label): transferring it anew');
    });
    await this.each(catalog, d.changed, async (m) => {
      current.set(m.zone, m);
      await this.zones.update(this.configOf(cat, m), { catalog, label: m.id });
    });
    this.log.info(
      {
        zone: catalog,
        serial,
        members: current.size,
        added: d.added.length,
        removed: d.removed.length,
        reset: d.reset.length,
      },
      'catalog processed',
    );
  }
}
