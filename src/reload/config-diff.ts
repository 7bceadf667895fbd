/**
 * What a reload changes: the running config against the one just read (both already validated
 * and resolved, so `defaults` are folded into each zone). Pure: no I/O, unit-tested.
 *
 *   zones  ──► added (start, first check at once) │ removed (stop serving, delete rows)
 *              │ changed (new primaries, ACLs, limits, timers: no re-transfer)
 *   keys   ──► names whose algorithm or secret changed, appeared or went (applied in place)
 *   catalogs ──► applied by the catalog consumer, a reload participant (refresh/catalog-consumer.ts)
 *   others ──► applied live when in LIVE_KEYS; otherwise they need a restart (reported, the rest
 *              is still applied)
 *
 * A top-level key not named in LIVE_KEYS needs a restart by default, so a key added later is
 * never silently ignored: a subsystem that can apply its key live adds it here and registers a
 * reload participant (reload/reloader.ts).
 */
import { isDeepStrictEqual } from 'node:util';
import type { Config, TsigKey, ZoneConfig } from '../config.js';

/** Top-level keys a reload applies without restarting. */
export const LIVE_KEYS: ReadonlySet<string> = new Set(['zones', 'keys', 'logLevel', 'catalogs']);

export interface ZoneChange {
  zone: ZoneConfig;
  /** The ZoneConfig fields that differ (sorted), e.g. ["allowTransfer", "primaries"]. */
  fields: string[];
}

export interface ConfigDiff {
  added: ZoneConfig[];
  /** Names of zones no longer configured. */
  removed: string[];
  changed: ZoneChange[];
  /** TSIG key names added, removed or changed (never their secrets). */
  keys: string[];
  /** Live top-level keys other than zones and keys whose value changed (e.g. logLevel). */
  live: string[];
  /** Top-level keys that changed but take effect only after a restart (sorted). */
  restart: string[];
}

function sameKey(a: TsigKey | undefined, b: TsigKey | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.algorithm === b.algorithm && a.secret.equals(b.secret);
}

/** Fields of two resolved zone configs that differ. */
export function zoneFieldsChanged(a: ZoneConfig, b: ZoneConfig): string[] {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...names]
    .filter((k) => !isDeepStrictEqual(a[k as keyof ZoneConfig], b[k as keyof ZoneConfig]))
    .sort();
}

export function diffConfig(running: Config, next: Config): ConfigDiff {
  const before = new Map(running.zones.map((z) => [z.name, z]));
  const after = new Map(next.zones.map((z) => [z.name, z]));
  const added = next.zones.filter((z) => !before.has(z.name));
  const removed = running.zones.filter((z) => !after.has(z.name)).map((z) => z.name);
  const changed: ZoneChange[] = [];
  for (const z of next.zones) {
    const old = before.get(z.name);
    if (!old) continue;
    const fields = zoneFieldsChanged(old, z);
    if (fields.length > 0) changed.push({ zone: z, fields });
  }
  const keyNames = new Set([...running.keys.keys(), ...next.keys.keys()]);
  const keys = [...keyNames].filter((k) => !sameKey(running.keys.get(k), next.keys.get(k))).sort();
  const live: string[] = [];
  const restart: string[] = [];
  const top = new Set([...Object.keys(running), ...Object.keys(next)]);
  for (const k of [...top].sort()) {
    if (k === 'zones' || k === 'keys') continue;
    const a = (running as unknown as Record<string, unknown>)[k];
    const b = (next as unknown as Record<string, unknown>)[k];
    if (isDeepStrictEqual(a, b)) continue;
    (LIVE_KEYS.has(k) ? live : restart).push(k);
  }
  return { added, removed, changed, keys, live, restart };
}

/** True when applying the diff changes nothing. */
export function isEmptyDiff(d: ConfigDiff): boolean {
  return (
    d.added.length +
      d.removed.length +
      d.changed.length +
      d.keys.length +
      d.live.length +
      d.restart.length ===
    0
  );
}
