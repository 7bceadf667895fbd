/**
 * SQLite schema, applied by numbered migrations recorded in `schema_version`.
 * Each migration runs inside one transaction with its version bump, so a crash mid-migration
 * leaves the previous version intact.
 *
 * Operator-facing columns (documented in README): zones.*, records.{zone,name,type,ttl,rdata},
 * changes.*. Columns ending in _wire / nkey / rtype are what serving reads.
 * Timestamps are Unix seconds (INTEGER) everywhere: `datetime(col, 'unixepoch')` shows them.
 */
import type Database from 'better-sqlite3';
import { canonicalKey } from '../dns/dnssec.js';

type Migration = string | ((db: Database.Database) => void);

const MIGRATIONS: Migration[] = [
  // 1: zones, records, change history
  `
  CREATE TABLE zones (
    name          TEXT PRIMARY KEY,          -- lower case, no trailing dot
    serial        INTEGER,                   -- SOA serial we serve; NULL before the first transfer
    state         TEXT NOT NULL DEFAULT 'never_loaded', -- never_loaded | ok | expired
    primary_addr  TEXT,                      -- primary that served the last transfer, "addr#port"
    last_refresh  INTEGER,                   -- last successful SOA check or transfer
    last_transfer INTEGER,                   -- last applied transfer
    next_refresh  INTEGER,                   -- when the next SOA check is due
    expires_at    INTEGER,                   -- when the zone stops being served without a refresh
    records       INTEGER NOT NULL DEFAULT 0 -- RR count of the served version
  ) STRICT;

  CREATE TABLE records (
    id         INTEGER PRIMARY KEY,
    zone       TEXT NOT NULL REFERENCES zones(name) ON DELETE CASCADE,
    name       TEXT NOT NULL,     -- owner, presentation format, lower case, no trailing dot
    type       TEXT NOT NULL,     -- mnemonic, TYPEnnn when unknown (RFC 3597)
    ttl        INTEGER NOT NULL,
    rdata      TEXT NOT NULL,     -- presentation format as dig prints it
    rtype      INTEGER NOT NULL,  -- numeric type
    nkey       BLOB NOT NULL,     -- owner as root-first length-prefixed labels (see dns/name.ts nameKey)
    rdata_wire BLOB NOT NULL      -- rdata exactly as transferred (names uncompressed)
  ) STRICT;
  CREATE UNIQUE INDEX records_lookup ON records (zone, nkey, rtype, rdata_wire);
  CREATE INDEX records_by_name ON records (zone, name);

  CREATE TABLE changes (
    id          INTEGER PRIMARY KEY,
    zone        TEXT NOT NULL,
    serial_from INTEGER,           -- NULL for the first load
    serial_to   INTEGER NOT NULL,
    kind        TEXT NOT NULL,     -- axfr | ixfr
    applied_at  INTEGER NOT NULL,
    primary_addr TEXT,
    removed     INTEGER NOT NULL DEFAULT 0,
    added       INTEGER NOT NULL DEFAULT 0
  ) STRICT;
  CREATE INDEX changes_by_zone ON changes (zone, id);

  -- The RRs each change removed and added (IXFR deltas; for AXFR the whole difference).
  CREATE TABLE change_records (
    change_id  INTEGER NOT NULL REFERENCES changes(id) ON DELETE CASCADE,
    op         TEXT NOT NULL,     -- del | add
    name       TEXT NOT NULL,
    type       TEXT NOT NULL,
    ttl        INTEGER NOT NULL,
    rdata      TEXT NOT NULL,
    rtype      INTEGER NOT NULL,
    nkey       BLOB NOT NULL,
    rdata_wire BLOB NOT NULL
  ) STRICT;
  CREATE INDEX change_records_by_change ON change_records (change_id);
  `,
  // 2: one row per refresh attempt, to answer "why did it fall back / why did it stop"
  `
  CREATE TABLE transfers (
    id              INTEGER PRIMARY KEY,
    zone            TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    trigger         TEXT NOT NULL,    -- startup | timer | notify | cli
    primary_addr    TEXT NOT NULL,    -- addr#port asked
    primary_serial  INTEGER,          -- serial the primary's SOA showed
    kind_requested  TEXT,             -- ixfr | axfr; NULL when the SOA check found nothing to do
    kind_performed  TEXT,             -- ixfr | axfr (AXFR or AXFR-style IXFR); NULL when none applied
    fallback_reason TEXT,             -- why IXFR gave way to AXFR
    result          TEXT NOT NULL,    -- transferred | uptodate | failed
    rcode           TEXT,             -- rcode of a refused/failed request
    messages        INTEGER NOT NULL DEFAULT 0,
    bytes           INTEGER NOT NULL DEFAULT 0,
    records         INTEGER NOT NULL DEFAULT 0, -- RRs received
    duration_ms     INTEGER NOT NULL DEFAULT 0,
    serial_before   INTEGER,
    serial_after    INTEGER,
    error           TEXT
  ) STRICT;
  CREATE INDEX transfers_by_zone ON transfers (zone, id);
  `,
  // 3: DNSSEC denial lookups — the NSEC covering a name (canonical order key) and the NSEC3
  // covering a hash (NSEC3 owners are one label under the apex, so nkey order is hash order).
  (db) => {
    db.exec('ALTER TABLE records ADD COLUMN ckey BLOB');
    const set = db.prepare('UPDATE records SET ckey = ? WHERE id = ?');
    for (const r of db.prepare('SELECT id, nkey FROM records WHERE rtype = 47').all() as {
      id: number;
      nkey: Buffer;
    }[]) {
      set.run(canonicalKey(r.nkey), r.id);
    }
    db.exec(`
      CREATE INDEX records_nsec ON records (zone, ckey) WHERE rtype = 47;
      CREATE INDEX records_nsec3 ON records (zone, nkey) WHERE rtype = 50;
    `);
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT');
  const row = db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null };
  const current = row.v ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new Error(`database schema version ${current} is newer than this ns2 (${SCHEMA_VERSION})`);
  }
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      const m = MIGRATIONS[v];
      if (typeof m === 'string') db.exec(m);
      else m(db);
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v + 1);
    })();
  }
}
