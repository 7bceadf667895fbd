/**
 * The zones this server is authoritative for, found by closest enclosing apex. A configured zone
 * that has no served version yet (never loaded, or expired) is known but not served: SERVFAIL.
 */
import type { ImageUpdate } from '../answer/image-source.js';
import { type AnswerPolicy, DEFAULT_POLICY } from '../answer/minimal.js';
import { ZoneImage } from '../answer/zone-image.js';
import { labelCount, stripLabels, toLower } from '../dns/name.js';
import type { ZoneState, ZoneStore } from '../store/zone-store.js';
import type { AclMatch } from './acl.js';
import type { ZoneFinder, ZoneView } from './lookup.js';

export interface ZoneEntry {
  name: string;
  /** What lookups read: the zone image once one is installed, SQLite before (main thread only). */
  view: ZoneView;
  /** The in-memory image of the served version, when one is installed. */
  image?: ZoneImage;
  /** Bumped whenever this zone's data or state changes: answers cached before are stale. */
  version: number;
  /** Only `ok` zones are answered from; the others get SERVFAIL. */
  state: ZoneState;
  /**
   * False for a catalog zone ns2 consumes (RFC 9432): transferred and NOTIFYed like any zone,
   * but queries for it are REFUSED, as BIND does.
   */
  answers: boolean;
  /** Unix seconds when the zone expires without a successful refresh (null: not loaded). */
  expiresAt: number | null;
  /** Who may NOTIFY us for this zone (RFC 1996 §3.10): source address, or the TSIG key that signed. */
  allowNotify: AclMatch;
  /** Who may transfer the zone from us (AXFR/IXFR out); nobody by default. */
  allowTransfer: AclMatch;
  /** What optional data its answers carry (config minimalResponses, minimalAny). */
  policy: AnswerPolicy;
}

/** Without an image and without SQLite (a serving worker), a zone is answered elsewhere. */
const NO_READER: ZoneView['reader'] = {
  node: () => new Map(),
  hasChildren: () => false,
  nsecOwner: () => undefined,
  nsec3Owner: () => undefined,
};

export class ZoneTable implements ZoneFinder {
  private readonly byApex = new Map<string, ZoneEntry>();
  private readonly byName = new Map<string, ZoneEntry>();
  private maxLabels = 0;
  /** How many zones have an apex of each label count: maxLabels without a scan on removal. */
  private readonly apexLabels: number[] = [];
  private store: ZoneStore | undefined;
  /** Bumped whenever any zone's data or state changes: answers spanning zones are then stale. */
  generation = 0;
  /** Called after a zone's state or data changed (the daemon tells the serving workers). */
  onChange: ((entry: ZoneEntry, flush: boolean) => void) | undefined;

  /** `zone`'s data or state changed (undefined: some zone's, unknown which). */
  changed(zone?: string): void {
    this.generation++;
    this.store?.invalidate();
    const entries = zone === undefined ? this.byName.values() : [this.byName.get(zone)];
    for (const e of entries) {
      if (!e) continue;
      e.version++;
      this.onChange?.(e, true);
    }
  }

  /**
   * Only `zone`'s expiry moved (a successful SOA check): no answer changes, so cached ones stay;
   * the serving workers learn the new deadline (EDNS EXPIRE answers, RFC 7314).
   */
  expiryMoved(zone: string): void {
    const e = this.byName.get(zone);
    if (e) this.onChange?.(e, false);
  }

  /** Installs the image a commit produced (or drops it: the zone is read from SQLite again). */
  install(update: ImageUpdate | { zone: string; error: string }): void {
    const e = this.byName.get(update.zone);
    if (!e) return;
    e.image?.retire();
    if ('error' in update) e.image = undefined;
    else if (update.kind === 'base') e.image = ZoneImage.of(update.data, update.serial);
    else e.image = e.image?.withPatch(update.data, update.serial);
    e.view = { apex: e.view.apex, reader: e.image ?? this.store?.reader(e.name) ?? NO_READER };
    this.changed(e.name);
  }

  /** Whether lookups for this zone can be answered here (a worker without its image cannot). */
  answerable(e: ZoneEntry): boolean {
    return e.image !== undefined || this.store !== undefined;
  }

  /**
   * Runs `fn` (one whole answer) in one read transaction: every statement of it sees the same
   * committed version, even when the writer thread commits a transfer in between (WAL snapshot).
   */
  read<T>(fn: () => T): T {
    return this.store ? this.store.snapshot(fn) : fn();
  }

  add(
    name: string,
    apex: Buffer,
    store: ZoneStore | undefined,
    init: {
      state: ZoneState;
      expiresAt?: number | null;
      allowNotify?: AclMatch;
      allowTransfer?: AclMatch;
      answers?: boolean;
      policy?: AnswerPolicy;
    },
  ): ZoneEntry {
    this.store = store;
    const lower = toLower(apex);
    const entry: ZoneEntry = {
      name,
      version: 0,
      view: { apex: lower, reader: store?.reader(name) ?? NO_READER },
      state: init.state,
      answers: init.answers ?? true,
      expiresAt: init.expiresAt ?? null,
      allowNotify: init.allowNotify ?? (() => false),
      allowTransfer: init.allowTransfer ?? (() => false),
      policy: init.policy ?? DEFAULT_POLICY,
    };
    this.byApex.set(lower.toString('latin1'), entry);
    this.byName.set(name, entry);
    const n = labelCount(lower);
    this.apexLabels[n] = (this.apexLabels[n] ?? 0) + 1;
    this.maxLabels = Math.max(this.maxLabels, n);
    return entry;
  }

  /**
   * The zone is no longer served: queries for it are REFUSED from now on (or answered by an
   * enclosing zone we serve). Its version is bumped so answers cached from it are stale.
   */
  remove(name: string): ZoneEntry | undefined {
    const e = this.byName.get(name);
    if (!e) return undefined;
    this.byName.delete(name);
    this.byApex.delete(e.view.apex.toString('latin1'));
    e.state = 'never_loaded';
    e.image?.retire();
    e.image = undefined;
    this.apexLabels[labelCount(e.view.apex)]--;
    while (this.maxLabels > 0 && !this.apexLabels[this.maxLabels]) this.maxLabels--;
    this.generation++;
    e.version++;
    return e;
  }

  get(name: string): ZoneEntry | undefined {
    return this.byName.get(name);
  }

  all(): IterableIterator<ZoneEntry> {
    return this.byName.values();
  }

  /** Closest enclosing configured zone, served or not. */
  match(qname: Buffer): ZoneEntry | undefined {
    const lower = toLower(qname);
    const n = labelCount(lower);
    for (let strip = Math.max(0, n - this.maxLabels); strip <= n; strip++) {
      const e = this.byApex.get(stripLabels(lower, strip).toString('latin1'));
      if (e) return e;
    }
    return undefined;
  }

  find(name: Buffer): ZoneView | undefined {
    const e = this.match(name);
    return e?.state === 'ok' && e.answers && this.answerable(e) ? e.view : undefined;
  }
}
