/**
 * SQLite schema, applied by numbered migrations recorded in `schema_version`.
 * Each migration runs inside one transaction with its version bump, so a crash mid-migration
 * leaves the previous version intact.
 *
 * Operator-facing columns (documented in README): zones.*, records.{zone,name,type,ttl,rdata},
 * changes.*. Columns ending in _wire / nkey / rtype are what serving reads.
 * Since v4 `records` is a VIEW over `rr` (the RRs, keyed by integer zone id, owner key, type and
 * wire rdata: one B-tree, no second copy in an index) and `rr_text` (presentation text by `seq`,
 * written after a large load commits, see ZoneStore.fillText).
 * Timestamps are Unix seconds (INTEGER) everywhere: `datetime(col, 'unixepoch')` shows them.
 */
import type Database from 'better-sqlite3';
import { canonicalKey } from '../dns/dnssec.js';
import { TYPE, typeToText } from '../dns/types.js';

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
    trigger         TEXT NOT NULL,    -- startup | timer | notify | cli | reload | catalog
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
  // 4: integer zone ids; the RRs in one clustered B-tree; presentation text beside them.
  migrateV4,
  // 5: catalog zones (RFC 9432) — which catalog listed a zone, under which unique label.
  `
  ALTER TABLE zones ADD COLUMN catalog TEXT;        -- the catalog the zone is a member of; NULL: configured
  ALTER TABLE zones ADD COLUMN catalog_label TEXT;  -- its member node's unique label (a change resets it)
  `,
];

/**
 * v4 layout. `rr` is WITHOUT ROWID keyed by (zone_id, nkey, rtype, rdata_wire): node lookups,
 * "any name below", IXFR's exact delete and the duplicate check all read that one key, so no
 * index has to repeat the rdata (v3's records_lookup stored every RR twice). `seq` is a global
 * counter giving each RR its stored (arrival) order and its key into `rr_text`; a bulk load
 * assigns it in owner order so `rr_text` grows by appends. Text is written after a large load
 * commits (`text_backlog` says what is still missing), so `records.name`/`rdata` may be NULL
 * for a few seconds after a big transfer.
 */
export const V4_DDL = `
  CREATE TABLE rr (
    zone_id    INTEGER NOT NULL,  -- zones.id
    nkey       BLOB NOT NULL,     -- owner as root-first length-prefixed labels (dns/name.ts nameKey)
    rtype      INTEGER NOT NULL,  -- numeric type
    rdata_wire BLOB NOT NULL,     -- rdata exactly as transferred (names uncompressed)
    seq        INTEGER NOT NULL,  -- stored order (RRs of a node are served in seq order); rr_text key
    ttl        INTEGER NOT NULL,
    ckey       BLOB,              -- NSEC only: canonical-order key of the owner (RFC 4034 §6.1)
    PRIMARY KEY (zone_id, nkey, rtype, rdata_wire)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX rr_nsec ON rr (zone_id, ckey) WHERE rtype = 47;
  CREATE INDEX rr_nsec3 ON rr (zone_id, nkey) WHERE rtype = 50;

  CREATE TABLE rr_text (
    seq   INTEGER PRIMARY KEY,    -- rr.seq
    name  TEXT NOT NULL,          -- owner, presentation format, lower case, no trailing dot
    rdata TEXT NOT NULL           -- presentation format as dig prints it
  ) STRICT;

  -- Next rr.seq to hand out (one row).
  CREATE TABLE rr_seq (next INTEGER NOT NULL) STRICT;

  -- Zones whose RRs with seq >= min_seq may still lack rr_text; the fill walks rr in key order
  -- from the cursor (cur_*), one small transaction per batch.
  CREATE TABLE text_backlog (
    zone_id   INTEGER PRIMARY KEY,
    min_seq   INTEGER NOT NULL,
    cur_nkey  BLOB,
    cur_rtype INTEGER,
    cur_rdata BLOB
  ) STRICT;

  -- Changes whose change_records rows after rowid \`after\` may still lack name/rdata text.
  CREATE TABLE change_text_backlog (
    change_id INTEGER PRIMARY KEY REFERENCES changes(id) ON DELETE CASCADE,
    after     INTEGER NOT NULL
  ) STRICT;

  -- Type mnemonics for the records view (TYPEnnn for the others, RFC 3597).
  CREATE TABLE rr_types (rtype INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT;
`;

/** The operator's `records`: one row per RR with the v3 columns (zone, name, type, ttl, rdata, …). */
export const V4_VIEW = `
  CREATE VIEW records AS
    SELECT z.name AS zone, t.name AS name, coalesce(ty.name, 'TYPE' || r.rtype) AS type, r.ttl AS ttl,
           t.rdata AS rdata, r.rtype AS rtype, r.nkey AS nkey, r.rdata_wire AS rdata_wire, r.ckey AS ckey,
           r.seq AS id, r.zone_id AS zone_id
      FROM rr r JOIN zones z ON z.id = r.zone_id
      LEFT JOIN rr_text t ON t.seq = r.seq
      LEFT JOIN rr_types ty ON ty.rtype = r.rtype;
`;

function migrateV4(db: Database.Database): void {
  db.exec(`
    CREATE TABLE zones_v4 (
      id            INTEGER PRIMARY KEY,
      name          TEXT NOT NULL UNIQUE,      -- lower case, no trailing dot
      serial        INTEGER,                   -- SOA serial we serve; NULL before the first transfer
      state         TEXT NOT NULL DEFAULT 'never_loaded', -- never_loaded | ok | expired
      primary_addr  TEXT,                      -- primary that served the last transfer, "addr#port"
      last_refresh  INTEGER,                   -- last successful SOA check or transfer
      last_transfer INTEGER,                   -- last applied transfer
      next_refresh  INTEGER,                   -- when the next SOA check is due
      expires_at    INTEGER,                   -- when the zone stops being served without a refresh
      records       INTEGER NOT NULL DEFAULT 0 -- RR count of the served version
    ) STRICT;
    INSERT INTO zones_v4 (name, serial, state, primary_addr, last_refresh, last_transfer, next_refresh,
                          expires_at, records)
      SELECT name, serial, state, primary_addr, last_refresh, last_transfer, next_refresh, expires_at, records
        FROM zones ORDER BY name;
  `);
  db.exec(V4_DDL);
  // The old rowid order is the stored order: it becomes seq. Text moves over as it is.
  db.exec(`
    INSERT OR IGNORE INTO rr (zone_id, nkey, rtype, rdata_wire, seq, ttl, ckey)
      SELECT z.id, r.nkey, r.rtype, r.rdata_wire, r.id, r.ttl, r.ckey
        FROM records r JOIN zones_v4 z ON z.name = r.zone ORDER BY z.id, r.nkey, r.rtype, r.rdata_wire;
    INSERT INTO rr_text (seq, name, rdata) SELECT r.id, r.name, r.rdata FROM records r
      WHERE r.id IN (SELECT seq FROM rr);
    INSERT INTO rr_seq (next) SELECT coalesce(max(id), 0) + 1 FROM records;
    DROP TABLE records;
    DROP TABLE zones;
    ALTER TABLE zones_v4 RENAME TO zones;
  `);
  // change_records: name and rdata may wait for their text too (a large AXFR difference).
  db.exec(`
    CREATE TABLE change_records_v4 (
      change_id  INTEGER NOT NULL REFERENCES changes(id) ON DELETE CASCADE,
      op         TEXT NOT NULL,     -- del | add
      name       TEXT,              -- NULL until written (change_text_backlog)
      type       TEXT NOT NULL,
      ttl        INTEGER NOT NULL,
      rdata      TEXT,              -- NULL until written (change_text_backlog)
      rtype      INTEGER NOT NULL,
      nkey       BLOB NOT NULL,
      rdata_wire BLOB NOT NULL
    ) STRICT;
    INSERT INTO change_records_v4 (rowid, change_id, op, name, type, ttl, rdata, rtype, nkey, rdata_wire)
      SELECT rowid, change_id, op, name, type, ttl, rdata, rtype, nkey, rdata_wire FROM change_records ORDER BY rowid;
    DROP TABLE change_records;
    ALTER TABLE change_records_v4 RENAME TO change_records;
    CREATE INDEX change_records_by_change ON change_records (change_id);
  `);
  db.exec(V4_VIEW);
}

/** rr_types holds this ns2's mnemonics (a newer ns2 may know more): refreshed when they differ. */
function syncTypes(db: Database.Database): void {
  const known = [...new Set<number>(Object.values(TYPE))];
  const have = db.prepare('SELECT count(*) FROM rr_types').pluck().get() as number;
  if (have === known.length) return;
  db.transaction(() => {
    const types = db.prepare('INSERT OR REPLACE INTO rr_types (rtype, name) VALUES (?, ?)');
    for (const n of known) types.run(n, typeToText(n));
  })();
}

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to `target` (default: this ns2's version; lower only for tests). */
export function migrate(db: Database.Database, target = SCHEMA_VERSION): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT');
  const row = db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number | null };
  const current = row.v ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new Error(`database schema version ${current} is newer than this ns2 (${SCHEMA_VERSION})`);
  }
  for (let v = current; v < target; v++) {
    db.transaction(() => {
      const m = MIGRATIONS[v];
      if (typeof m === 'string') db.exec(m);
      else m(db);
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v + 1);
    })();
  }
  if (target >= 4) syncTypes(db);
}
