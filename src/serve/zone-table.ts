/**
 * The zones this server is authoritative for, found by closest enclosing apex. A configured zone
 * that has no served version yet (never loaded, or expired) is known but not served: SERVFAIL.
 */
import { labelCount, stripLabels, toLower } from '../dns/name.js';
import type { ZoneState, ZoneStore } from '../store/zone-store.js';
import type { AclMatch } from './acl.js';
import type { ZoneFinder, ZoneView } from './lookup.js';

export interface ZoneEntry {
  name: string;
  view: ZoneView;
  /** Only `ok` zones are answered from; the others get SERVFAIL. */
  state: ZoneState;
  /** Unix seconds when the zone expires without a successful refresh (null: not loaded). */
  expiresAt: number | null;
  /** Who may NOTIFY us for this zone (RFC 1996 §3.10): source address, or the TSIG key that signed. */
  allowNotify: AclMatch;
  /** Who may transfer the zone from us (AXFR/IXFR out); nobody by default. */
  allowTransfer: AclMatch;
}

export class ZoneTable implements ZoneFinder {
  private readonly byApex = new Map<string, ZoneEntry>();
  private maxLabels = 0;
  private store: ZoneStore | undefined;
  /** Bumped whenever any zone's data or state changes: cached answers are then stale. */
  generation = 0;

  changed(): void {
    this.generation++;
    this.store?.invalidate();
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
    store: ZoneStore,
    init: {
      state: ZoneState;
      expiresAt?: number | null;
      allowNotify?: AclMatch;
      allowTransfer?: AclMatch;
    },
  ): ZoneEntry {
    this.store = store;
    const lower = toLower(apex);
    const entry: ZoneEntry = {
      name,
      view: { apex: lower, reader: store.reader(name) },
      state: init.state,
      expiresAt: init.expiresAt ?? null,
      allowNotify: init.allowNotify ?? (() => false),
      allowTransfer: init.allowTransfer ?? (() => false),
    };
    this.byApex.set(lower.toString('latin1'), entry);
    this.maxLabels = Math.max(this.maxLabels, labelCount(lower));
    return entry;
  }

  get(name: string): ZoneEntry | undefined {
    for (const e of this.byApex.values()) if (e.name === name) return e;
    return undefined;
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
    return e?.state === 'ok' ? e.view : undefined;
  }
}
