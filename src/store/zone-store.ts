/**
 * The zone store: every served zone lives in SQLite. Reads for answering are prepared point
 * queries; a transfer is applied in one transaction, so a reader (this process or an operator's
 * `sqlite3` session, thanks to WAL) sees the old version or the new one, never a mix.
 */
import type Database from 'better-sqlite3';
import { canonicalKey } from '../dns/dnssec.js';
import { keyToName, nameKey, nameToText, textToName, toLower } from '../dns/name.js';
import { rdataToText } from '../dns/rdata.js';
import { parseSoa } from '../dns/soa.js';
import { TYPE, typeToText } from '../dns/types.js';
import { checkNodeRows, deleteProblem, GuardError, type NodeRow, type ZoneLimits } from '../xfrin/guards.js';
import { type DatabaseMode, openDatabase } from './database-file.js';
import { migrate, SCHEMA_VERSION } from './schema.js';

/** One RR of a zone as transferred: owner in wire form, rdata bytes with names uncompressed. */
export interface ZoneRR {
  owner: Buffer;
  type: number;
  ttl: number;
  rdata: Buffer;
}

export type ZoneState = 'never_loaded' | 'ok' | 'expired';

/** PRAGMA synchronous values (https://www.sqlite.org/pragma.html#pragma_synchronous). */
const SYNCHRONOUS: Record<number, string> = { 0: 'OFF', 1: 'NORMAL', 2: 'FULL', 3: 'EXTRA' };

export interface StoreDurability {
  journal_mode: string;
  synchronous: string;
  journal_size_limit: number;
}

export interface ZoneRow {
  name: string;
  serial: number | null;
  state: ZoneState;
  primary_addr: string | null;
  last_refresh: number | null;
  last_transfer: number | null;
  next_refresh: number | null;
  expires_at: number | null;
  records: number;
  /** The catalog zone listing this zone (RFC 9432); null for a zone from the config's `zones`. */
  catalog: string | null;
  catalog_label: string | null;
}

/** Stored RRset: one TTL (the first seen, RFC 2181 §5.2) and the rdatas. */
export interface StoredRRset {
  ttl: number;
  rdatas: Buffer[];
}

/**
 * Key under which a node holds the RRSIGs covering `type` (RFC 4035 §3.1.1 answers each RRset
 * with its own signatures, so they are grouped by the type they cover).
 */
export const sigKey = (type: number): number => 0x10000 + type;

/** Read view of one zone, keyed by nameKey() of the owner. */
export interface ZoneReader {
  /** All RRsets at a name (RRSIGs under sigKey(covered)); empty when the name owns no records. */
  node(nkey: Buffer): Map<number, StoredRRset>;
  /** Owner nkey of the NSEC covering or matching a name, by canonical key (RFC 4034 §6.1). */
  nsecOwner(ckey: Buffer): Buffer | undefined;
  /** Owner nkey of the NSEC3 whose hash covers or matches, wrapping to the last (RFC 5155 §7.2). */
  nsec3Owner(nkey: Buffer): Buffer | undefined;
  /** True when some name strictly below `nkey` owns records (so `nkey` exists, RFC 4592 §2.2.2). */
  hasChildren(nkey: Buffer): boolean;
}

/** Rows deleteZone removed, by table. */
export interface ZoneRowsDeleted {
  zones: number;
  rr: number;
  rr_text: number;
  text_backlog: number;
  changes: number;
  change_records: number;
  change_text_backlog: number;
  transfers: number;
}

export interface ApplyResult {
  changeId: number;
  added: number;
  removed: number;
  records: number;
}

/** Checks a full transfer must pass before it commits (see xfrin/guards.ts). */
export interface CommitGuards {
  limits: ZoneLimits;
  maxDeletePercent?: number;
}

/** An incremental change that does not fit the zone we hold (RFC 1995 §5: fall back to AXFR). */
export class InconsistentDiff extends Error {}

/** One version step to apply; SOAs included in deleted/added (see xfrin/ixfr.ts ZoneDiff). */
export interface Diff {
  from: number;
  to: number;
  deleted: ZoneRR[];
  added: ZoneRR[];
}

export interface TransferRow {
  zone: string;
  started_at: number;
  trigger: string;
  primary_addr: string;
  primary_serial?: number | null;
  kind_requested?: string | null;
  kind_performed?: string | null;
  fallback_reason?: string | null;
  result: 'transferred' | 'uptodate' | 'failed';
  rcode?: string | null;
  messages?: number;
  bytes?: number;
  records?: number;
  duration_ms?: number;
  serial_before?: number | null;
  serial_after?: number | null;
  error?: string | null;
}

/**
 * A transfer's audit row written inside the commit that applies it, so whoever sees the new
 * version (a query, `ns2 history`) also finds the row in `transfers`. Its duration ends at the commit.
 */
export interface TransferAudit {
  row: TransferRow;
  /** Date.now() when the check began. */
  startedMs: number;
}

/** Audit rows kept per zone. */
const TRANSFERS_KEPT = 1000;

const INSERT_BATCH = 500;
/** Up to this many new RRs get their presentation text inside the commit; more are filled after. */
export const INLINE_TEXT = 20_000;
/** RRs per background text transaction (a few ms each, so writes queued behind it barely wait). */
const TEXT_BATCH = 4000;

const ZONE_COLS =
  'name, serial, state, primary_addr, last_refresh, last_transfer, next_refresh, expires_at, records, catalog, catalog_label';

function setUp(db: Database.Database): void {
  // WAL lets readers (and the operator's sqlite3 CLI) run beside a transfer's write.
  // synchronous=FULL: a committed zone version is served onward, so it must survive power loss.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  // Keeps the WAL file from staying huge after a big transfer (it is truncated at checkpoints).
  db.pragma('journal_size_limit = 67108864');
  migrate(db);
}

/** A read-only connection cannot migrate: it needs the schema this ns2 writes. */
function checkSchema(db: Database.Database): void {
  const has = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").get();
  const v = has
    ? (db.prepare('SELECT max(version) FROM schema_version').pluck().get() as number | null)
    : null;
  if (v === SCHEMA_VERSION) return;
  throw new Error(
    v === null
      ? 'not an ns2 database (no schema_version table)'
      : `schema version ${v}, this ns2 reads ${SCHEMA_VERSION}: ${v < SCHEMA_VERSION ? 'run ns2 serve once to migrate it' : 'use a newer ns2'}`,
  );
}

export class ZoneStore {
  readonly db: Database.Database;
  private readonly stNode: Database.Statement;
  private readonly stChildren: Database.Statement;
  private readonly stNsec: Database.Statement;
  private readonly stNsec3: Database.Statement;
  private readonly stNsec3Last: Database.Statement;
  private readonly stZoneId: Database.Statement;
  private readonly stZone: Database.Statement;
  private readonly stSoa: Database.Statement;
  private readonly zoneIds = new Map<string, number>();
  /** Zones deleted on this connection (deleteZone) and not added again. */
  private readonly retired = new Set<string>();
  private incomingSeq = 0;
  private readonly stBegin: Database.Statement;
  private reading = false;
  private readonly stCommit: Database.Statement;

  /**
   * `write` (the daemon and its writer thread) creates the file if need be and migrates it;
   * `read` (the operator commands) opens an existing database read-only and creates nothing.
   * Failures throw DatabaseOpenError naming the file and the reason.
   */
  constructor(file: string, mode: DatabaseMode = 'write') {
    this.db = openDatabase(file, mode, mode === 'read' ? checkSchema : setUp);
    this.stNode = this.db
      .prepare('SELECT rtype, ttl, rdata_wire FROM rr WHERE zone_id = ? AND nkey = ? ORDER BY seq')
      .raw();
    this.stChildren = this.db
      .prepare('SELECT 1 FROM rr WHERE zone_id = ? AND nkey > ? AND nkey < ? LIMIT 1')
      .raw();
    this.stBegin = this.db.prepare('BEGIN');
    this.stCommit = this.db.prepare('COMMIT');
    this.stNsec = this.db
      .prepare(
        'SELECT nkey FROM rr WHERE zone_id = ? AND rtype = 47 AND ckey <= ? ORDER BY ckey DESC LIMIT 1',
      )
      .raw();
    this.stNsec3 = this.db
      .prepare(
        'SELECT nkey FROM rr INDEXED BY rr_nsec3 WHERE zone_id = ? AND rtype = 50 AND nkey <= ? ORDER BY nkey DESC LIMIT 1',
      )
      .raw();
    this.stNsec3Last = this.db
      .prepare(
        'SELECT nkey FROM rr INDEXED BY rr_nsec3 WHERE zone_id = ? AND rtype = 50 ORDER BY nkey DESC LIMIT 1',
      )
      .raw();
    this.stZoneId = this.db.prepare('SELECT id FROM zones WHERE name = ?').pluck();
    this.stZone = this.db.prepare(`SELECT ${ZONE_COLS} FROM zones WHERE name = ?`);
    this.stSoa = this.db.prepare(
      'SELECT ttl, rdata_wire FROM rr WHERE zone_id = ? AND nkey = ? AND rtype = 6 LIMIT 1',
    );
  }

  /**
   * The durability settings as this connection reports them (PRAGMA reads, not what we asked for):
   * the daemon logs them for its reading and its writing connection, so a test (or an operator)
   * can see that every connection really runs WAL with synchronous=FULL.
   */
  durability(): StoreDurability {
    return {
      journal_mode: this.db.pragma('journal_mode', { simple: true }) as string,
      synchronous: SYNCHRONOUS[this.db.pragma('synchronous', { simple: true }) as number] ?? 'unknown',
      journal_size_limit: this.db.pragma('journal_size_limit', { simple: true }) as number,
    };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Runs `fn` against one consistent version of the database. The connection keeps a read
   * transaction open between calls (WAL snapshot) until `invalidate()` — which the daemon calls
   * when the writer thread commits — so answering costs no BEGIN/COMMIT per query and no answer
   * can see two versions.
   */
  snapshot<T>(fn: () => T): T {
    this.readView();
    return fn();
  }

  /**
   * The data changed under us (a commit on another connection): end the snapshot now, so the
   * next read sees the new version and an idle server holds no old snapshot that would keep a
   * WAL checkpoint from completing.
   */
  invalidate(): void {
    this.endRead();
  }

  private readView(): void {
    if (this.reading) return;
    this.stBegin.run();
    this.reading = true;
  }

  /** Writes on this connection first close the long-lived read transaction. */
  private endRead(): void {
    if (this.reading && this.db.inTransaction) this.stCommit.run();
    this.reading = false;
  }

  /** Runs `fn` (writes of this connection) in one transaction: one commit, one fsync. */
  batch(fn: () => void): void {
    this.endRead();
    this.db.transaction(fn)();
  }

  /** The zone's integer id (rows of `rr` carry it), or -1 while it has no row (matches nothing). */
  private idOf(zone: string): number {
    const known = this.zoneIds.get(zone);
    if (known !== undefined) return known;
    const id = this.stZoneId.get(zone) as number | undefined;
    if (id === undefined) return -1;
    this.zoneIds.set(zone, id);
    return id;
  }

  /** Makes sure a configured zone has its row (state never_loaded until the first transfer). */
  ensureZone(name: string): void {
    this.endRead();
    this.db.prepare('INSERT OR IGNORE INTO zones (name) VALUES (?)').run(name);
  }

  /**
   * A zone configured at run time (reload, catalog): its row, and writes for it accepted again
   * after an earlier deleteZone.
   */
  addZone(name: string): void {
    this.retired.delete(name);
    this.ensureZone(name);
  }

  /**
   * Deletes a zone that is no longer configured, in one transaction: its RRs and their text, its
   * history with the changes' RRs, its transfer log and its row. Until addZone names it again, a
   * transfer of it still in flight cannot bring it back (commitIncoming refuses, recordTransfer
   * skips). Returns the rows deleted per table.
   */
  deleteZone(name: string): ZoneRowsDeleted {
    this.endRead();
    this.retired.add(name);
    const db = this.db;
    const id = this.stZoneId.get(name) as number | undefined;
    const run = db.transaction((): ZoneRowsDeleted => {
      const changes = 'SELECT id FROM changes WHERE zone = ?';
      const n = (sql: string, ...args: unknown[]) => db.prepare(sql).run(...args).changes;
      const out: ZoneRowsDeleted = {
        rr_text: 0,
        rr: 0,
        text_backlog: 0,
        change_text_backlog: n(`DELETE FROM change_text_backlog WHERE change_id IN (${changes})`, name),
        change_records: n(`DELETE FROM change_records WHERE change_id IN (${changes})`, name),
        changes: n('DELETE FROM changes WHERE zone = ?', name),
        transfers: n('DELETE FROM transfers WHERE zone = ?', name),
        zones: 0,
      };
      if (id !== undefined) {
        out.rr_text = n('DELETE FROM rr_text WHERE seq IN (SELECT seq FROM rr WHERE zone_id = ?)', id);
        out.rr = n('DELETE FROM rr WHERE zone_id = ?', id);
        out.text_backlog = n('DELETE FROM text_backlog WHERE zone_id = ?', id);
        out.zones = n('DELETE FROM zones WHERE id = ?', id);
      }
      return out;
    });
    const deleted = run();
    this.forget(name);
    return deleted;
  }

  /** Drops what this connection remembers of a zone (its id): another connection deleted it. */
  forget(name: string): void {
    this.zoneIds.delete(name);
  }

  zone(name: string): ZoneRow | undefined {
    if (!this.db.inTransaction || this.reading) this.readView();
    return this.stZone.get(name) as ZoneRow | undefined;
  }

  zones(): ZoneRow[] {
    if (!this.db.inTransaction || this.reading) this.readView();
    return this.db.prepare(`SELECT ${ZONE_COLS} FROM zones ORDER BY name`).all() as ZoneRow[];
  }

  updateZone(name: string, fields: Partial<Omit<ZoneRow, 'name'>>): void {
    this.endRead();
    const keys = Object.keys(fields);
    if (keys.length === 0) return;
    const set = keys.map((k) => `${k} = @${k}`).join(', ');
    this.db.prepare(`UPDATE zones SET ${set} WHERE name = @name`).run({ ...fields, name });
  }

  /** The served SOA record (for the IXFR request), or undefined before the first transfer. */
  soaRecord(zone: string): { ttl: number; rdata: Buffer; serial: number } | undefined {
    if (!this.db.inTransaction || this.reading) this.readView();
    const row = this.stSoa.get(this.idOf(zone), nameKey(textToName(zone))) as
      | { ttl: number; rdata_wire: Buffer }
      | undefined;
    if (!row) return undefined;
    return { ttl: row.ttl, rdata: row.rdata_wire, serial: parseSoa(row.rdata_wire).serial };
  }

  /** Hands out `n` consecutive rr.seq values (inside the caller's write transaction). */
  private takeSeq(n: number): number {
    const base = this.db.prepare('SELECT next FROM rr_seq').pluck().get() as number;
    this.db.prepare('UPDATE rr_seq SET next = ?').run(base + n);
    return base;
  }

  /**
   * Applies incremental versions (IXFR) in one transaction. Deleting an RR we don't hold, adding
   * one we already hold, or a first version not starting at our serial throws InconsistentDiff
   * and nothing is applied. Each version becomes one `changes` row with its RRs.
   */
  applyDiffs(
    zone: string,
    diffs: Diff[],
    meta: { primary: string; now: number; audit?: TransferAudit },
  ): ApplyResult & { serial: number } {
    this.endRead();
    if (this.retired.has(zone)) throw new Error(`zone ${zone} is no longer configured`);
    const db = this.db;
    const del = db
      .prepare('DELETE FROM rr WHERE zone_id = ? AND nkey = ? AND rtype = ? AND rdata_wire = ? RETURNING seq')
      .pluck();
    const delText = db.prepare('DELETE FROM rr_text WHERE seq = ?');
    const add = db.prepare(
      `INSERT OR IGNORE INTO rr (zone_id, nkey, rtype, rdata_wire, seq, ttl, ckey) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    const addText = db.prepare('INSERT INTO rr_text (seq, name, rdata) VALUES (?, ?, ?)');
    const change = db.prepare(
      `INSERT INTO changes (zone, serial_from, serial_to, kind, applied_at, primary_addr, removed, added)
       VALUES (?, ?, ?, 'ixfr', ?, ?, ?, ?)`,
    );
    const changeRr = db.prepare(
      `INSERT INTO change_records (change_id, op, name, type, ttl, rdata, rtype, nkey, rdata_wire)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const run = db.transaction(() => {
      const prev = this.zone(zone);
      if (prev?.serial === null || prev?.serial === undefined)
        throw new InconsistentDiff('no zone to apply a diff to');
      if (diffs.length === 0 || diffs[0].from !== prev.serial) {
        throw new InconsistentDiff(`diff starts at serial ${diffs[0]?.from}, we hold ${prev.serial}`);
      }
      const zid = this.idOf(zone);
      let seq = this.takeSeq(diffs.reduce((n, d) => n + d.added.length, 0));
      let added = 0;
      let removed = 0;
      let changeId = 0;
      for (const d of diffs) {
        changeId = Number(
          change.run(zone, d.from, d.to, meta.now, meta.primary, d.deleted.length, d.added.length)
            .lastInsertRowid,
        );
        for (const rr of d.deleted) {
          const nkey = ownerKey(rr.owner);
          const gone = del.get(zid, nkey, rr.type, rr.rdata) as number | undefined;
          const text = textOf(rr, nkey);
          if (gone === undefined) {
            throw new InconsistentDiff(
              `version ${d.from}→${d.to} deletes ${text.name} ${text.type} ${text.rdata}, which we do not hold`,
            );
          }
          delText.run(gone);
          changeRr.run(changeId, 'del', text.name, text.type, rr.ttl, text.rdata, rr.type, nkey, rr.rdata);
        }
        for (const rr of d.added) {
          const nkey = ownerKey(rr.owner);
          const text = textOf(rr, nkey);
          const ckey = rr.type === TYPE.NSEC ? canonicalKey(nkey) : null;
          if (add.run(zid, nkey, rr.type, rr.rdata, seq, rr.ttl, ckey).changes !== 1) {
            throw new InconsistentDiff(
              `version ${d.from}→${d.to} adds ${text.name} ${text.type} ${text.rdata}, which we already hold`,
            );
          }
          addText.run(seq++, text.name, text.rdata);
          changeRr.run(changeId, 'add', text.name, text.type, rr.ttl, text.rdata, rr.type, nkey, rr.rdata);
        }
        added += d.added.length;
        removed += d.deleted.length;
      }
      const serial = diffs[diffs.length - 1].to;
      const soa = this.soaRecord(zone);
      if (soa?.serial !== serial)
        throw new InconsistentDiff(`after the diff the SOA serial is ${soa?.serial}, not ${serial}`);
      // Every delete and add above touched exactly one row: no need to count a large zone again.
      const count = prev.records + added - removed;
      this.updateZone(zone, {
        serial,
        state: 'ok',
        primary_addr: meta.primary,
        last_refresh: meta.now,
        last_transfer: meta.now,
        records: count,
      });
      if (meta.audit) this.insertTransfer(meta.audit);
      return { changeId, added, removed, records: count, serial };
    });
    return run();
  }

  /** Drops the oldest changes beyond `keep` (their RRs go with them, ON DELETE CASCADE). */
  pruneHistory(zone: string, keep: number): number {
    this.endRead();
    return this.db
      .prepare(
        `DELETE FROM changes WHERE zone = ? AND id NOT IN
           (SELECT id FROM changes WHERE zone = ? ORDER BY id DESC LIMIT ?)`,
      )
      .run(zone, zone, keep).changes;
  }

  recordTransfer(t: TransferRow): void {
    this.endRead();
    if (this.retired.has(t.zone)) return; // a check that ended after its zone was removed
    this.insertTransfer({ row: t });
  }

  private insertTransfer({ row: t, startedMs }: { row: TransferRow; startedMs?: number }): void {
    if (startedMs !== undefined) t = { ...t, duration_ms: Date.now() - startedMs };
    const row = Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined));
    const cols = Object.keys(row);
    this.db
      .prepare(`INSERT INTO transfers (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`)
      .run(row);
    this.db
      .prepare(
        `DELETE FROM transfers WHERE zone = ? AND id <= (SELECT id FROM transfers WHERE zone = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      )
      .run(t.zone, t.zone, TRANSFERS_KEPT);
  }

  /** The serial the primary's SOA showed at the zone's last recorded check, if any. */
  lastPrimarySerial(zone: string): number | undefined {
    const row = this.db
      .prepare(
        'SELECT primary_serial FROM transfers WHERE zone = ? AND primary_serial IS NOT NULL ORDER BY id DESC LIMIT 1',
      )
      .get(zone) as { primary_serial: number } | undefined;
    return row?.primary_serial;
  }

  /** The served SOA's timers, or undefined before the first transfer. */
  soaTimers(zone: string): { refresh: number; retry: number; expire: number; serial: number } | undefined {
    const soa = this.soaRecord(zone);
    if (!soa) return undefined;
    const t = parseSoa(soa.rdata);
    return { refresh: t.refresh, retry: t.retry, expire: t.expire, serial: t.serial };
  }

  /**
   * Every RR of the zone's committed version in owner order (nameKey bytes, as SQLite orders
   * BLOBs), RRs of one owner in the order they were stored: what an in-memory zone image is built
   * from (answer/zone-image.ts). Runs in one read transaction when called inside `snapshot`.
   */
  *scanZone(zone: string): IterableIterator<[nkey: Buffer, rtype: number, ttl: number, rdata: Buffer]> {
    if (!this.db.inTransaction || this.reading) this.readView();
    // A statement per scan: two scans may be under way at once.
    const st = this.db
      .prepare('SELECT nkey, rtype, ttl, rdata_wire FROM rr WHERE zone_id = ? ORDER BY nkey, seq')
      .raw();
    yield* st.iterate(this.idOf(zone)) as IterableIterator<[Buffer, number, number, Buffer]>;
  }

  reader(zone: string): ZoneReader {
    const { stNode, stChildren, stNsec, stNsec3, stNsec3Last } = this;
    const id = () => this.idOf(zone);
    return {
      node(nkey) {
        const out = new Map<number, StoredRRset>();
        for (const [rtype, ttl, rdata] of stNode.all(id(), nkey) as [number, number, Buffer][]) {
          const key = rtype === TYPE.RRSIG && rdata.length >= 2 ? sigKey(rdata.readUInt16BE(0)) : rtype;
          const set = out.get(key);
          if (set) set.rdatas.push(rdata);
          else out.set(key, { ttl, rdatas: [rdata] });
        }
        return out;
      },
      hasChildren(nkey) {
        return stChildren.get(id(), nkey, Buffer.concat([nkey, Buffer.from([0xff])])) !== undefined;
      },
      nsecOwner(ckey) {
        return (stNsec.get(id(), ckey) as [Buffer] | undefined)?.[0];
      },
      nsec3Owner(nkey) {
        const hit = (stNsec3.get(id(), nkey) ?? stNsec3Last.get(id())) as [Buffer] | undefined;
        return hit?.[0];
      },
    };
  }

  /**
   * Replaces the zone's content with a full transfer (AXFR). The RRs are staged in a temporary
   * table first (no lock on the zone data while they arrive), then one transaction changes the
   * records by difference — old minus new deleted, new minus old inserted — and keeps that
   * difference in change_records, so history shows what each transfer changed. Presentation text
   * is complete when this returns (fillText runs to the end).
   */
  replaceZone(zone: string, rrs: Iterable<ZoneRR>, meta: { serial: number; primary: string; now: number }) {
    const id = this.beginIncoming();
    try {
      let batch: ZoneRR[] = [];
      for (const rr of rrs) {
        batch.push(rr);
        if (batch.length === 5000) {
          this.addIncoming(id, batch);
          batch = [];
        }
      }
      this.addIncoming(id, batch);
      const result = this.commitIncoming(id, zone, meta);
      while (this.fillText()) {}
      return result;
    } finally {
      this.dropIncoming(id);
    }
  }

  /** Starts staging a full zone; returns the handle for addIncoming/commitIncoming. */
  beginIncoming(): number {
    this.endRead();
    const id = ++this.incomingSeq;
    this.db.exec(
      `CREATE TEMP TABLE incoming_${id} (nkey BLOB, rtype INTEGER, ttl INTEGER, rdata_wire BLOB, ckey BLOB)`,
    );
    return id;
  }

  /** Stages a batch of RRs (temp table only: nothing in the served data changes). */
  addIncoming(id: number, rrs: readonly ZoneRR[]): void {
    this.endRead();
    if (rrs.length === 0) return;
    this.db.transaction(() => insertBatched(this.db, `temp.incoming_${id}`, rrs))();
  }

  dropIncoming(id: number): void {
    this.endRead();
    this.db.exec(`DROP TABLE IF EXISTS temp.incoming_${id}`);
    this.db.exec(`DROP TABLE IF EXISTS temp.gone_${id}`);
    this.db.exec(`DROP TABLE IF EXISTS temp.fresh_${id}`);
  }

  /**
   * Applies a staged zone in one transaction (see replaceZone).
   *
   * The staged RRs are sorted once (an index on the temp table). A zone with no RRs yet is loaded
   * by one INSERT … SELECT in key order: appends to the rr B-tree, no per-row index upkeep, and a
   * repeated RR keeps its first copy. Otherwise the difference is computed in SQL (RRs we hold
   * that the transfer lacks, then RRs it brings that we lack) and applied row by row. New RRs get
   * their text in the commit when there are few (INLINE_TEXT); after a large load a text_backlog
   * row remains and fillText() writes the text in small transactions after the commit.
   */
  commitIncoming(
    id: number,
    zone: string,
    meta: { serial: number; primary: string; now: number; guards?: CommitGuards; audit?: TransferAudit },
  ): ApplyResult {
    this.endRead();
    if (this.retired.has(zone)) throw new Error(`zone ${zone} is no longer configured`);
    const db = this.db;
    const t = `temp.incoming_${id}`;
    const gone = `temp.gone_${id}`;
    const fresh = `temp.fresh_${id}`;
    const known = this.stZoneId.get(zone) as number | undefined;
    const loaded = known !== undefined && db.prepare('SELECT 1 FROM rr WHERE zone_id = ? LIMIT 1').get(known);
    // The difference probes the staged RRs by key (and TTL): index them. A first load only sorts.
    if (loaded)
      db.exec(`CREATE INDEX temp.incoming_${id}_key ON incoming_${id} (nkey, rtype, rdata_wire, ttl)`);
    const sameKey = 'i.nkey = r.nkey AND i.rtype = r.rtype AND i.rdata_wire = r.rdata_wire';
    const run = db.transaction((): ApplyResult => {
      this.ensureZone(zone);
      const prev = this.zone(zone)!;
      const zid = this.idOf(zone);
      const hasRows = db.prepare('SELECT 1 FROM rr WHERE zone_id = ? LIMIT 1').get(zid) !== undefined;
      const change = db
        .prepare(
          `INSERT INTO changes (zone, serial_from, serial_to, kind, applied_at, primary_addr)
           VALUES (?, ?, ?, 'axfr', ?, ?)`,
        )
        .run(zone, prev.serial, meta.serial, meta.now, meta.primary);
      const changeId = Number(change.lastInsertRowid);
      let removed = 0;
      let added: number;
      let base: number;
      let textLater: boolean;
      if (!hasRows) {
        // Bulk load in key order; seq in owner order, arrival order within an owner.
        base = this.takeSeq(db.prepare(`SELECT count(*) FROM ${t}`).pluck().get() as number);
        added = db
          .prepare(
            `INSERT OR IGNORE INTO rr (zone_id, nkey, rtype, rdata_wire, seq, ttl, ckey)
             SELECT ?, nkey, rtype, rdata_wire, ? + row_number() OVER (ORDER BY nkey, rowid), ttl, ckey
               FROM ${t} ORDER BY nkey, rowid`,
          )
          .run(zid, base - 1).changes;
        // The zone is only these RRs: when few, the fill below walks just them. On a first load
        // the whole zone is the change; history keeps only the count.
        textLater = added > INLINE_TEXT;
        this.queueText(zid, base);
        if (!textLater) while (this.fillText(zid, INLINE_TEXT + 1)) {}
      } else {
        // RRs we hold that the new version lacks, or has with another TTL (in key order).
        db.exec(`DROP TABLE IF EXISTS ${gone}`);
        db.exec(
          `CREATE TEMP TABLE gone_${id} (nkey BLOB, rtype INTEGER, rdata_wire BLOB, ttl INTEGER, seq INTEGER)`,
        );
        db.prepare(
          `INSERT INTO ${gone} SELECT r.nkey, r.rtype, r.rdata_wire, r.ttl, r.seq FROM rr r WHERE r.zone_id = ?
             AND NOT EXISTS (SELECT 1 FROM ${t} i WHERE ${sameKey} AND i.ttl = r.ttl)`,
        ).run(zid);
        if (meta.guards?.maxDeletePercent !== undefined && prev.serial !== null) {
          // A TTL change deletes nothing: count RRs gone by owner, type and rdata.
          const n = db
            .prepare(
              `SELECT count(*) FROM ${gone} r WHERE NOT EXISTS (SELECT 1 FROM ${t} i WHERE ${sameKey})`,
            )
            .pluck()
            .get() as number;
          const problem = deleteProblem(prev.records, n, meta.guards.maxDeletePercent);
          if (problem) throw new GuardError(problem);
        }
        this.recordChanges(changeId, 'del', gone);
        db.prepare(`DELETE FROM rr_text WHERE seq IN (SELECT seq FROM ${gone})`).run();
        removed = db
          .prepare(
            `DELETE FROM rr WHERE zone_id = ? AND (nkey, rtype, rdata_wire) IN
               (SELECT nkey, rtype, rdata_wire FROM ${gone})`,
          )
          .run(zid).changes;
        // What the new version brings that we now lack: the first staged copy of each RR
        // (a repeat with another TTL of an RR we kept stays out), in arrival order.
        db.exec(`DROP TABLE IF EXISTS ${fresh}`);
        db.exec(
          `CREATE TEMP TABLE fresh_${id} (pos INTEGER PRIMARY KEY, nkey BLOB, rtype INTEGER, rdata_wire BLOB, ttl INTEGER, ckey BLOB)`,
        );
        added = db
          .prepare(
            `INSERT INTO ${fresh} SELECT i.rowid, i.nkey, i.rtype, i.rdata_wire, i.ttl, i.ckey FROM ${t} i
              WHERE NOT EXISTS (SELECT 1 FROM rr r WHERE r.zone_id = ? AND ${sameKey})
                AND NOT EXISTS (SELECT 1 FROM ${t} j WHERE j.nkey = i.nkey AND j.rtype = i.rtype
                                  AND j.rdata_wire = i.rdata_wire AND j.rowid < i.rowid)
              ORDER BY i.rowid`,
          )
          .run(zid).changes;
        this.recordChanges(changeId, 'add', fresh);
        base = this.takeSeq(added);
        db.prepare(
          `INSERT INTO rr (zone_id, nkey, rtype, rdata_wire, seq, ttl, ckey)
           SELECT ?, nkey, rtype, rdata_wire, ? + row_number() OVER (ORDER BY pos), ttl, ckey
             FROM ${fresh} ORDER BY nkey, rtype, rdata_wire`,
        ).run(zid, base - 1);
        textLater = added > INLINE_TEXT;
        if (textLater) this.queueText(zid, base);
        else {
          // seq follows pos order (row_number above): the k-th fresh RR has base + k.
          const names = new OwnerNames();
          const out: unknown[] = [];
          let seq = base;
          for (const [nkey, rtype, rdata] of db
            .prepare(`SELECT nkey, rtype, rdata_wire FROM ${fresh} ORDER BY pos`)
            .raw()
            .all() as [Buffer, number, Buffer][]) {
            out.push(seq++, names.of(nkey), rdataToText(rtype, rdata));
          }
          insertText(db, out);
        }
      }
      // The guards look at the zone as it now is, before the commit (a problem rolls it back).
      if (meta.guards) this.checkZone(zid, zone, meta.guards);
      const count = (hasRows ? prev.records : 0) - removed + added;
      db.prepare('UPDATE changes SET removed = ?, added = ? WHERE id = ?').run(removed, added, changeId);
      this.updateZone(zone, {
        serial: meta.serial,
        state: 'ok',
        primary_addr: meta.primary,
        last_refresh: meta.now,
        last_transfer: meta.now,
        records: count,
      });
      if (meta.audit) this.insertTransfer(meta.audit);
      return { changeId, added, removed, records: count };
    });
    return run();
  }

  /** Notes that the zone's RRs from seq `base` on need their text (fillText walks the zone again). */
  private queueText(zid: number, base: number): void {
    this.db
      .prepare(
        `INSERT INTO text_backlog (zone_id, min_seq) VALUES (?, ?)
           ON CONFLICT (zone_id) DO UPDATE SET min_seq = min(min_seq, excluded.min_seq),
             cur_nkey = NULL, cur_rtype = NULL, cur_rdata = NULL`,
      )
      .run(zid, base);
  }

  /**
   * The commit guards (xfrin/guards.ts: SOA and NS at the apex, CNAME alone, maxRecordsPerType /
   * maxTypesPerName) over the zone as the transfer leaves it, inside the write transaction. One
   * aggregate pass in SQL over the rr key picks the owners that could break a rule — more RRs
   * than the smaller limit, a CNAME with a second one or with other data, a DNAME or SOA, the
   * apex — and only those owners are counted per RRset and handed to checkNodeRows, in key order.
   * (RRs are distinct by key in rr, so counts are of distinct rdata.)
   */
  private checkZone(zid: number, zone: string, guards: CommitGuards): void {
    const { maxRecordsPerType, maxTypesPerName } = guards.limits;
    const atCname = [TYPE.CNAME, TYPE.RRSIG, TYPE.NSEC, TYPE.SIG, TYPE.NXT, TYPE.KEY].join(', ');
    const suspects = this.db
      .prepare(
        `SELECT nkey FROM rr WHERE zone_id = ? GROUP BY nkey
          HAVING count(*) > ? OR nkey = ? OR max(rtype IN (${TYPE.SOA}, ${TYPE.DNAME}))
              OR (max(rtype = ${TYPE.CNAME}) AND (sum(rtype = ${TYPE.CNAME}) > 1 OR max(rtype NOT IN (${atCname}))))
          ORDER BY nkey`,
      )
      .pluck()
      .all(zid, Math.min(maxRecordsPerType, maxTypesPerName), nameKey(textToName(zone))) as Buffer[];
    const node = this.db.prepare(
      `SELECT rtype AS type, CASE WHEN rtype = 46 THEN substr(rdata_wire, 1, 2) END AS covered, count(*) AS count
         FROM rr WHERE zone_id = ? AND nkey = ? GROUP BY rtype, covered`,
    );
    const rows = function* (): Generator<NodeRow> {
      for (const nkey of suspects) {
        const owner = nameToText(keyToName(nkey), false);
        for (const r of node.all(zid, nkey) as Omit<NodeRow, 'owner'>[]) yield { owner, ...r };
      }
    };
    const problem = checkNodeRows(rows(), zone, guards.limits);
    if (problem) throw new GuardError(problem);
  }

  /**
   * History rows for a table of RRs (gone or fresh) of an AXFR applied by difference, in SQL: the
   * removed RRs take their text from rr_text, the added ones get it now when few, else after the
   * commit (change_text_backlog, fillText).
   */
  private recordChanges(changeId: number, op: 'del' | 'add', table: string): void {
    const db = this.db;
    const type = `coalesce((SELECT name FROM rr_types ty WHERE ty.rtype = g.rtype), 'TYPE' || g.rtype)`;
    const cols = 'change_id, op, name, type, ttl, rdata, rtype, nkey, rdata_wire';
    const n =
      op === 'del'
        ? db
            .prepare(
              `INSERT INTO change_records (${cols})
               SELECT ?, 'del', t.name, ${type}, g.ttl, t.rdata, g.rtype, g.nkey, g.rdata_wire
                 FROM ${table} g LEFT JOIN rr_text t ON t.seq = g.seq ORDER BY g.rowid`,
            )
            .run(changeId).changes
        : db
            .prepare(
              `INSERT INTO change_records (${cols})
               SELECT ?, 'add', NULL, ${type}, g.ttl, NULL, g.rtype, g.nkey, g.rdata_wire
                 FROM ${table} g ORDER BY g.pos`,
            )
            .run(changeId).changes;
    if (n === 0) return;
    db.prepare('INSERT OR IGNORE INTO change_text_backlog (change_id, after) VALUES (?, 0)').run(changeId);
    if (op === 'add' && n <= INLINE_TEXT) while (this.fillChangeText(changeId, INLINE_TEXT + 1)) {}
  }

  /** One batch of change_records text for a change in change_text_backlog; true while more remain. */
  private fillChangeText(changeId: number, limit: number): boolean {
    const db = this.db;
    const after = db
      .prepare('SELECT after FROM change_text_backlog WHERE change_id = ?')
      .pluck()
      .get(changeId) as number | undefined;
    if (after === undefined) return false;
    const rows = db
      .prepare(
        `SELECT rowid, name, rdata, rtype, nkey, rdata_wire FROM change_records
          WHERE change_id = ? AND rowid > ? ORDER BY rowid LIMIT ?`,
      )
      .raw()
      .all(changeId, after, limit) as [number, string | null, string | null, number, Buffer, Buffer][];
    const set = db.prepare('UPDATE change_records SET name = ?, rdata = ? WHERE rowid = ?');
    const names = new OwnerNames();
    for (const [rowid, name, rdata, rtype, nkey, wire] of rows) {
      if (name === null || rdata === null)
        set.run(name ?? names.of(nkey), rdata ?? rdataToText(rtype, wire), rowid);
    }
    if (rows.length < limit) {
      db.prepare('DELETE FROM change_text_backlog WHERE change_id = ?').run(changeId);
      return false;
    }
    db.prepare('UPDATE change_text_backlog SET after = ? WHERE change_id = ?').run(
      rows[rows.length - 1][0],
      changeId,
    );
    return true;
  }

  /**
   * Writes presentation text (rr_text) for RRs a large load committed without it: one batch of
   * up to `limit` RRs of one zone in the text_backlog, in its own transaction (or the caller's).
   * Returns true while work remains. The daemon's writer thread calls it between operations.
   */
  fillText(zoneId?: number, limit = TEXT_BATCH): boolean {
    this.endRead();
    const db = this.db;
    const job = (
      zoneId === undefined
        ? db.prepare('SELECT * FROM text_backlog ORDER BY zone_id LIMIT 1').get()
        : db.prepare('SELECT * FROM text_backlog WHERE zone_id = ?').get(zoneId)
    ) as
      | {
          zone_id: number;
          min_seq: number;
          cur_nkey: Buffer | null;
          cur_rtype: number | null;
          cur_rdata: Buffer | null;
        }
      | undefined;
    if (!job) {
      if (zoneId !== undefined) return false;
      const change = db.prepare('SELECT change_id FROM change_text_backlog LIMIT 1').pluck().get() as
        | number
        | undefined;
      if (change === undefined) return false;
      const more = db.inTransaction
        ? this.fillChangeText(change, limit)
        : db.transaction(() => this.fillChangeText(change, limit))();
      return more || this.backlog();
    }
    const step = () => {
      const from = job.cur_nkey === null ? '' : 'AND (nkey, rtype, rdata_wire) > (?, ?, ?)';
      const args: unknown[] = [job.zone_id];
      if (job.cur_nkey !== null) args.push(job.cur_nkey, job.cur_rtype, job.cur_rdata);
      const rows = db
        .prepare(
          `SELECT nkey, rtype, rdata_wire, seq FROM rr WHERE zone_id = ? ${from}
            ORDER BY nkey, rtype, rdata_wire LIMIT ?`,
        )
        .raw()
        .all(...args, limit) as [Buffer, number, Buffer, number][];
      const names = new OwnerNames();
      const out: unknown[] = [];
      for (const [nkey, rtype, rdata, seq] of rows) {
        if (seq >= job.min_seq) out.push(seq, names.of(nkey), rdataToText(rtype, rdata));
      }
      insertText(db, out);
      if (rows.length < limit) {
        db.prepare('DELETE FROM text_backlog WHERE zone_id = ?').run(job.zone_id);
        return false;
      }
      const last = rows[rows.length - 1];
      db.prepare('UPDATE text_backlog SET cur_nkey = ?, cur_rtype = ?, cur_rdata = ? WHERE zone_id = ?').run(
        last[0],
        last[1],
        last[2],
        job.zone_id,
      );
      return true;
    };
    const more = db.inTransaction ? step() : db.transaction(step)();
    return more || (zoneId === undefined && this.backlog());
  }

  /** True while some RRs still wait for their presentation text. */
  textPending(): boolean {
    if (!this.db.inTransaction || this.reading) this.readView();
    return this.backlog();
  }

  private backlog(): boolean {
    return (
      this.db
        .prepare('SELECT 1 FROM text_backlog UNION ALL SELECT 1 FROM change_text_backlog LIMIT 1')
        .get() !== undefined
    );
  }
}

/** Presentation names of owner keys, remembering the last one (RRs of an owner come together). */
class OwnerNames {
  private key: Buffer | undefined;
  private name = '';
  of(nkey: Buffer): string {
    if (this.key === undefined || !this.key.equals(nkey)) {
      this.key = nkey;
      this.name = nameToText(keyToName(nkey), false);
    }
    return this.name;
  }
}

/** Presentation text of one RR (IXFR history and rr_text). */
function textOf(rr: ZoneRR, nkey: Buffer): { name: string; type: string; rdata: string } {
  return {
    name: nameToText(keyToName(nkey), false),
    type: typeToText(rr.type),
    rdata: rdataToText(rr.type, rr.rdata),
  };
}

/**
 * nameKey(toLower(owner)) in one pass: labels root first, each as length + lower-cased octets.
 * Owners come from the transfer parser (uncompressed, terminated); anything else takes the slow path.
 */
export function ownerKey(wire: Buffer): Buffer {
  const starts: number[] = [];
  let p = 0;
  while (p < wire.length && wire[p] !== 0) {
    starts.push(p);
    p += wire[p] + 1;
  }
  if (p >= wire.length) return nameKey(toLower(wire));
  const out = Buffer.allocUnsafe(p);
  let o = 0;
  for (let i = starts.length - 1; i >= 0; i--) {
    const s = starts[i];
    const n = wire[s];
    out[o++] = n;
    for (let j = s + 1; j <= s + n; j++) {
      const c = wire[j];
      out[o++] = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
    }
  }
  return out;
}

/** Multi-row INSERTs into a staging table: far fewer statement executions than one per RR. */
function insertBatched(db: Database.Database, table: string, rrs: readonly ZoneRR[]): void {
  const sql = (n: number) =>
    `INSERT INTO ${table} (nkey, rtype, ttl, rdata_wire, ckey) VALUES ${Array(n).fill('(?, ?, ?, ?, ?)').join(', ')}`;
  const full = db.prepare(sql(INSERT_BATCH));
  const batch: unknown[] = new Array(INSERT_BATCH * 5);
  let n = 0;
  for (const rr of rrs) {
    const nkey = ownerKey(rr.owner);
    const o = n * 5;
    batch[o] = nkey;
    batch[o + 1] = rr.type;
    batch[o + 2] = rr.ttl;
    batch[o + 3] = rr.rdata;
    batch[o + 4] = rr.type === TYPE.NSEC ? canonicalKey(nkey) : null;
    if (++n === INSERT_BATCH) {
      full.run(batch);
      n = 0;
    }
  }
  if (n > 0) db.prepare(sql(n)).run(batch.slice(0, n * 5));
}

/** rr_text rows (seq, name, rdata flattened), in multi-row INSERTs. */
function insertText(db: Database.Database, flat: unknown[]): void {
  const sql = (n: number) =>
    `INSERT OR IGNORE INTO rr_text (seq, name, rdata) VALUES ${Array(n).fill('(?, ?, ?)').join(', ')}`;
  const per = INSERT_BATCH * 3;
  let i = 0;
  if (flat.length >= per) {
    const full = db.prepare(sql(INSERT_BATCH));
    for (; i + per <= flat.length; i += per) full.run(flat.slice(i, i + per));
  }
  if (i < flat.length) db.prepare(sql((flat.length - i) / 3)).run(flat.slice(i));
}
