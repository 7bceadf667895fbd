/** Operator commands that read the database or probe the running server. */

import type { Config } from './config.js';
import { controlRequest, controlTarget } from './control/client.js';
import { type Readiness, readiness, type ZoneStatusView } from './control/readiness.js';
import { keyToName, nameToText, ROOT, textToName } from './dns/name.js';
import { rdataToText } from './dns/rdata.js';
import { TYPE } from './dns/types.js';
import Database from './store/sqlite.js';
import { ZoneStore } from './store/zone-store.js';
import { buildQuery } from './xfrin/query.js';
import { udpExchange } from './xfrin/transport.js';

const iso = (t: number | null) => (t === null ? '-' : new Date(t * 1000).toISOString());

/** Columns padded to their widest cell, two spaces apart, one line each. */
export function formatTable(lines: string[][]): string {
  const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  return lines
    .map(
      (l) =>
        `${l
          .map((c, i) => c.padEnd(widths[i]))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** The `ns2 status` table. `expires_in` is seconds from `now` (negative once past), `-` if none. */
export function statusText(store: ZoneStore, now: number = Math.floor(Date.now() / 1000)): string {
  const lines = [
    [
      'zone',
      'serial',
      'state',
      'records',
      'primary',
      'last_refresh',
      'next_refresh',
      'expires_at',
      'expires_in',
      'catalog',
    ],
  ];
  for (const z of store.zones()) {
    lines.push([
      z.name,
      String(z.serial ?? '-'),
      z.state,
      String(z.records),
      z.primary_addr ?? '-',
      iso(z.last_refresh),
      iso(z.next_refresh),
      iso(z.expires_at),
      z.expires_at === null ? '-' : String(z.expires_at - now),
      z.catalog ?? '-',
    ]);
  }
  return formatTable(lines);
}

export function status(config: Config): number {
  const store = new ZoneStore(config.database, 'read');
  try {
    process.stdout.write(statusText(store));
    return 0;
  } finally {
    store.close();
  }
}

/** The zone as `dig AXFR` would print it: SOA first, then every RR, SOA again. */
export function dumpZone(config: Config, zone: string): number {
  const name = zone.toLowerCase().replace(/\.$/, '');
  const store = new ZoneStore(config.database, 'read');
  try {
    if (!store.zone(name)) {
      process.stderr.write(`ns2 dump: zone "${name}" is not in the database\n`);
      return 1;
    }
    const rows = store.db
      .prepare(
        `SELECT name, ttl, type, rdata, rtype, nkey, rdata_wire FROM records WHERE zone = ?
         ORDER BY rtype != 6, nkey, rtype, rdata_wire`,
      )
      .all(name) as {
      name: string | null;
      ttl: number;
      type: string;
      rdata: string | null;
      rtype: number;
      nkey: Buffer;
      rdata_wire: Buffer;
    }[];
    // Right after a large transfer the store may still be writing the text: derive what is missing.
    const line = (r: (typeof rows)[number]) =>
      `${r.name ?? nameToText(keyToName(r.nkey), false)}.\t${r.ttl}\tIN\t${r.type}\t${r.rdata ?? rdataToText(r.rtype, r.rdata_wire)}\n`;
    for (const r of rows) process.stdout.write(line(r));
    const soa = rows.find((r) => r.rtype === TYPE.SOA);
    if (soa) process.stdout.write(line(soa));
    return 0;
  } finally {
    store.close();
  }
}

/** Any well-formed reply on the first listen address means the server is answering. */
/**
 * `ns2 healthcheck` (the Docker HEALTHCHECK): exit 0 only when the daemon is ready — at least one
 * zone configured, every zone loaded and not expired (control/readiness.ts). With a `metrics` or
 * `control` endpoint the running daemon's GET /readyz decides; without one, the server must answer
 * a query on its first listen address and the database must show every zone ready.
 */
export async function healthcheck(config: Config): Promise<number> {
  const fail = (text: string) => {
    process.stderr.write(`unhealthy: ${text}\n`);
    return 1;
  };
  const endpoint = config.metrics ?? config.control;
  let r: Readiness;
  if (endpoint) {
    const target = controlTarget(endpoint);
    try {
      r = (await controlRequest(target, 'GET', '/readyz')).body as Readiness;
    } catch (e) {
      return fail(`no answer from ${target.address}#${target.port}/readyz: ${(e as Error).message}`);
    }
  } else {
    const l = config.listen[0];
    const address = l.address === '0.0.0.0' ? '127.0.0.1' : l.address === '::' ? '::1' : l.address;
    const zone = config.zones[0] ? textToName(config.zones[0].name) : ROOT;
    try {
      await udpExchange({ address, port: l.port }, buildQuery(zone, TYPE.SOA).msg, 2000);
    } catch (e) {
      return fail((e as Error).message);
    }
    r = readinessFromDatabase(config);
  }
  if (!r.ready) {
    const zones = (r.not_ready ?? []).map((z) => `${z.zone} ${z.reason}`);
    return fail([r.error, ...zones].filter(Boolean).join(', ') || 'not ready');
  }
  process.stdout.write(`ok: ${r.zones} zone${r.zones === 1 ? '' : 's'} ready\n`);
  return 0;
}

/** Readiness as the database records it (read-only; a missing database: nothing loaded). */
function readinessFromDatabase(config: Config): Readiness {
  const rows = new Map<string, ZoneStatusView>();
  if (config.database !== ':memory:') {
    try {
      const db = new Database(config.database, { readonly: true, fileMustExist: true });
      try {
        const all = db.prepare('SELECT name, state, expires_at FROM zones').all() as {
          name: string;
          state: ZoneStatusView['state'];
          expires_at: number | null;
        }[];
        for (const z of all) rows.set(z.name, { state: z.state, expiresAt: z.expires_at });
      } finally {
        db.close();
      }
    } catch {
      /* no database yet: every zone is reported not loaded */
    }
  }
  return readiness(
    config.zones.map((z) => z.name),
    (name) => rows.get(name) ?? { state: 'never_loaded', expiresAt: null },
    Math.floor(Date.now() / 1000),
  );
}

// ---------------------------------------------------------------------------------------------
// History: the `changes` and `change_records` tables.

const normalise = (zone: string) => zone.toLowerCase().replace(/\.$/, '');

interface ChangeRow {
  id: number;
  serial_from: number | null;
  serial_to: number;
  kind: string;
  applied_at: number;
  primary_addr: string | null;
  removed: number;
  added: number;
}

function changesOf(store: ZoneStore, zone: string): ChangeRow[] {
  return store.db
    .prepare(
      `SELECT id, serial_from, serial_to, kind, applied_at, primary_addr, removed, added
       FROM changes WHERE zone = ? ORDER BY id`,
    )
    .all(zone) as ChangeRow[];
}

/** The `ns2 history` table: one line per applied transfer, oldest first. */
export function historyText(store: ZoneStore, zone: string): string {
  const lines = [['id', 'applied_at', 'kind', 'serials', 'removed', 'added', 'primary']];
  for (const c of changesOf(store, normalise(zone))) {
    lines.push([
      String(c.id),
      iso(c.applied_at),
      c.kind,
      `${c.serial_from ?? '-'} → ${c.serial_to}`,
      String(c.removed),
      String(c.added),
      c.primary_addr ?? '-',
    ]);
  }
  return formatTable(lines);
}

export type DiffResult = { ok: true; text: string } | { ok: false; error: string };

/**
 * The changes leading from serial `from` to serial `to`, oldest first: the latest change that
 * reached `to`, then back through the changes before it, each of which must end at the serial the
 * next one started from, until one starts at `from`.
 */
function chain(changes: ChangeRow[], from: number, to: number): ChangeRow[] | string {
  let j = changes.length - 1;
  while (j >= 0 && changes[j].serial_to !== to) j--;
  if (j < 0) return `no recorded change reaches serial ${to}`;
  // FROM = TO: what re-transfers at that same serial changed, if the last change was one.
  if (from === to && changes[j].serial_from !== from) return [];
  const out: ChangeRow[] = [];
  for (let k = j; k >= 0; k--) {
    const c = changes[k];
    out.unshift(c);
    if (c.serial_from === from) return out;
    if (c.serial_from === null)
      return `serial ${from} does not come before serial ${to} in the recorded history`;
    const prev = changes[k - 1];
    if (!prev)
      return `chain broken: no recorded change ends at serial ${c.serial_from} (change ${c.id} starts there)`;
    if (prev.serial_to !== c.serial_from) {
      return `chain broken: no recorded change from serial ${prev.serial_to} to serial ${c.serial_from} (between changes ${prev.id} and ${c.id})`;
    }
  }
  return `serial ${from} does not come before serial ${to} in the recorded history`;
}

interface DiffRecord {
  op: 'del' | 'add';
  name: string | null;
  type: string;
  ttl: number;
  rdata: string | null;
  rtype: number;
  nkey: Buffer;
  rdata_wire: Buffer;
}

/**
 * `ns2 diff`: the net RRs removed and added from serial `from` to serial `to`, as a unified diff.
 * An RR removed and added again within the range (or added then removed) cancels out. Lines come
 * in `ns2 dump` order (SOA first, then by owner key, type), removals before additions.
 */
export function diffText(store: ZoneStore, zoneArg: string, from: number, to: number): DiffResult {
  const zone = normalise(zoneArg);
  const path = chain(changesOf(store, zone), from, to);
  if (typeof path === 'string') return { ok: false, error: `${zone}: ${path}` };
  const stRecords = store.db.prepare(
    `SELECT op, name, type, ttl, rdata, rtype, nkey, rdata_wire FROM change_records
     WHERE change_id = ? ORDER BY rowid`,
  );
  const net = new Map<string, { count: number; rr: DiffRecord }>();
  for (const c of path) {
    for (const r of stRecords.all(c.id) as DiffRecord[]) {
      const key = `${r.nkey.toString('hex')}/${r.rtype}/${r.ttl}/${r.rdata_wire.toString('hex')}`;
      const entry = net.get(key) ?? { count: 0, rr: r };
      entry.count += r.op === 'add' ? 1 : -1;
      entry.rr = r;
      net.set(key, entry);
    }
  }
  const changed = [...net.values()]
    .filter((e) => e.count !== 0)
    .map((e) => ({ sign: e.count > 0 ? '+' : '-', rr: e.rr }));
  changed.sort(
    (x, y) =>
      Number(x.rr.rtype !== TYPE.SOA) - Number(y.rr.rtype !== TYPE.SOA) ||
      Buffer.compare(x.rr.nkey, y.rr.nkey) ||
      x.rr.rtype - y.rr.rtype ||
      (x.sign === y.sign ? 0 : x.sign === '-' ? -1 : 1) ||
      Buffer.compare(x.rr.rdata_wire, y.rr.rdata_wire) ||
      x.rr.ttl - y.rr.ttl,
  );
  let text = `--- ${zone} serial ${from}\n+++ ${zone} serial ${to}\n`;
  for (const { sign, rr } of changed) {
    // Text of a large AXFR difference may still be being written: derive what is missing.
    const name = rr.name ?? nameToText(keyToName(rr.nkey), false);
    const rdata = rr.rdata ?? rdataToText(rr.rtype, rr.rdata_wire);
    text += `${sign}${name}.\t${rr.ttl}\tIN\t${rr.type}\t${rdata}\n`;
  }
  return { ok: true, text };
}

function withZone(
  config: Config,
  cmd: string,
  zoneArg: string,
  body: (store: ZoneStore, zone: string) => number,
) {
  const zone = normalise(zoneArg);
  const store = new ZoneStore(config.database, 'read');
  try {
    if (!store.zone(zone)) {
      process.stderr.write(`ns2 ${cmd}: zone "${zone}" is not in the database\n`);
      return 1;
    }
    return body(store, zone);
  } finally {
    store.close();
  }
}

export function history(config: Config, zoneArg: string): number {
  return withZone(config, 'history', zoneArg, (store, zone) => {
    process.stdout.write(historyText(store, zone));
    return 0;
  });
}

/** A serial as given on the command line: a decimal integer 0..2^32-1 (RFC 1982). */
export function parseSerial(text: string): number | undefined {
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffffffff ? n : undefined;
}

export function diff(config: Config, zoneArg: string, fromArg: string, toArg: string): number {
  const from = parseSerial(fromArg);
  const to = parseSerial(toArg);
  if (from === undefined || to === undefined) {
    const bad = from === undefined ? fromArg : toArg;
    process.stderr.write(`ns2 diff: "${bad}" is not a serial (an integer 0..4294967295)\n`);
    return 1;
  }
  return withZone(config, 'diff', zoneArg, (store, zone) => {
    const r = diffText(store, zone, from, to);
    if (!r.ok) {
      process.stderr.write(`ns2 diff: ${r.error}\n`);
      return 1;
    }
    process.stdout.write(r.text);
    return 0;
  });
}
