/**
 * The zone store: every served zone lives in SQLite. Reads for answering are prepared point
 * queries; a transfer is applied in one transaction, so a reader (this process or an operator's
 * `sqlite3` session, thanks to WAL) sees the old version or the new one, never a mix.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { canonicalKey } from '../dns/dnssec.js';
import { nameKey, nameToText, textToName, toLower } from '../dns/name.js';
import { rdataToText } from '../dns/rdata.js';
import { parseSoa } from '../dns/soa.js';
import { TYPE, typeToText } from '../dns/types.js';
import { checkNodeRows, deleteProblem, GuardError, type NodeRow, type ZoneLimits } from '../xfrin/guards.js';
import { migrate } from './schema.js';

/** One RR of a zone as transferred: owner in wire form, rdata bytes with names uncompressed. */
export interface ZoneRR {
  owner: Buffer;
  type: number;
  ttl: number;
  rdata: Buffer;
}

export type ZoneState = 'never_loaded' | 'ok' | 'expired';

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

/** Audit rows kept per zone. */
const TRANSFERS_KEPT = 1000;

const INSERT_BATCH = 500;

export class ZoneStore {
  readonly db: Database.Database;
  private readonly stNode: Database.Statement;
  private readonly stChildren: Database.Statement;
  private readonly stNsec: Database.Statement;
  private readonly stNsec3: Database.Statement;
  private readonly stNsec3Last: Database.Statement;
  private incomingSeq = 0;
  private readonly stBegin: Database.Statement;
  private reading = false;
  private readonly stCommit: Database.Statement;

  constructor(file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(file);
    // WAL lets readers (and the operator's sqlite3 CLI) run beside a transfer's write.
    // synchronous=FULL: a committed zone version is served onward, so it must survive power loss.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    // Keeps the WAL file from staying huge after a big transfer (it is truncated at checkpoints).
    this.db.pragma('journal_size_limit = 67108864');
    migrate(this.db);
    this.stNode = this.db
      .prepare('SELECT rtype, ttl, rdata_wire FROM records WHERE zone = ? AND nkey = ? ORDER BY id')
      .raw();
    this.stChildren = this.db
      .prepare('SELECT 1 FROM records WHERE zone = ? AND nkey > ? AND nkey < ? LIMIT 1')
      .raw();
    this.stBegin = this.db.prepare('BEGIN');
    this.stCommit = this.db.prepare('COMMIT');
    this.stNsec = this.db
      .prepare(
        'SELECT nkey FROM records WHERE zone = ? AND rtype = 47 AND ckey <= ? ORDER BY ckey DESC LIMIT 1',
      )
      .raw();
    this.stNsec3 = this.db
      .prepare(
        'SELECT nkey FROM records WHERE zone = ? AND rtype = 50 AND nkey <= ? ORDER BY nkey DESC LIMIT 1',
      )
      .raw();
    this.stNsec3Last = this.db
      .prepare('SELECT nkey FROM records WHERE zone = ? AND rtype = 50 ORDER BY nkey DESC LIMIT 1')
      .raw();
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

  /** Makes sure a configured zone has its row (state never_loaded until the first transfer). */
  ensureZone(name: string): void {
    this.endRead();
    this.db.prepare('INSERT OR IGNORE INTO zones (name) VALUES (?)').run(name);
  }

  zone(name: string): ZoneRow | undefined {
    if (!this.db.inTransaction || this.reading) this.readView();
    return this.db.prepare('SELECT * FROM zones WHERE name = ?').get(name) as ZoneRow | undefined;
  }

  zones(): ZoneRow[] {
    if (!this.db.inTransaction || this.reading) this.readView();
    return this.db.prepare('SELECT * FROM zones ORDER BY name').all() as ZoneRow[];
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
    const row = this.db
      .prepare('SELECT ttl, rdata_wire FROM records WHERE zone = ? AND rtype = 6 AND nkey = ? LIMIT 1')
      .get(zone, nameKey(textToName(zone))) as { ttl: number; rdata_wire: Buffer } | undefined;
    if (!row) return undefined;
    return { ttl: row.ttl, rdata: row.rdata_wire, serial: parseSoa(row.rdata_wire).serial };
  }

  /**
   * Applies incremental versions (IXFR) in one transaction. Deleting an RR we don't hold, adding
   * one we already hold, or a first version not starting at our serial throws InconsistentDiff
   * and nothing is applied. Each version becomes one `changes` row with its RRs.
   */
  applyDiffs(
    zone: string,
    diffs: Diff[],
    meta: { primary: string; now: number },
  ): ApplyResult & { serial: number } {
    this.endRead();
    const db = this.db;
    const del = db.prepare(
      'DELETE FROM records WHERE zone = ? AND nkey = ? AND rtype = ? AND rdata_wire = ?',
    );
    const add = db.prepare(
      `INSERT OR IGNORE INTO records (zone, name, type, ttl, rdata, rtype, nkey, rdata_wire, ckey)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
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
      let added = 0;
      let removed = 0;
      let changeId = 0;
      for (const d of diffs) {
        changeId = Number(
          change.run(zone, d.from, d.to, meta.now, meta.primary, d.deleted.length, d.added.length)
            .lastInsertRowid,
        );
        for (const rr of d.deleted) {
          const row = rowOf(rr);
          if (del.run(zone, row[5], rr.type, rr.rdata).changes !== 1) {
            throw new InconsistentDiff(
              `version ${d.from}→${d.to} deletes ${row[0]} ${row[1]} ${row[3]}, which we do not hold`,
            );
          }
          changeRr.run(changeId, 'del', ...row.slice(0, 7));
        }
        for (const rr of d.added) {
          const row = rowOf(rr);
          if (add.run(zone, ...row).changes !== 1) {
            throw new InconsistentDiff(
              `version ${d.from}→${d.to} adds ${row[0]} ${row[1]} ${row[3]}, which we already hold`,
            );
          }
          changeRr.run(changeId, 'add', ...row.slice(0, 7));
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

  /** The served SOA's timers, or undefined before the first transfer. */
  soaTimers(zone: string): { refresh: number; retry: number; expire: number; serial: number } | undefined {
    if (!this.db.inTransaction || this.reading) this.readView();
    const row = this.db
      .prepare('SELECT rdata_wire FROM records WHERE zone = ? AND rtype = 6 AND nkey = ? LIMIT 1')
      .get(zone, nameKey(textToName(zone))) as { rdata_wire: Buffer } | undefined;
    if (!row) return undefined;
    const soa = parseSoa(row.rdata_wire);
    return { refresh: soa.refresh, retry: soa.retry, expire: soa.expire, serial: soa.serial };
  }

  /**
   * Every RR of the zone's committed version in owner order (nameKey bytes, as SQLite orders
   * BLOBs), RRs of one owner in the order they were stored: what an in-memory zone image is built
   * from (answer/zone-image.ts). Runs in one read transaction when called inside `snapshot`.
   */
  *scanZone(zone: string): IterableIterator<[nkey: Buffer, rtype: number, ttl: number, rdata: Buffer]> {
    if (!this.db.inTransaction || this.reading) this.readView();
    const st = this.db
      .prepare('SELECT nkey, rtype, ttl, rdata_wire FROM records WHERE zone = ? ORDER BY nkey, id')
      .raw();
    yield* st.iterate(zone) as IterableIterator<[Buffer, number, number, Buffer]>;
  }

  reader(zone: string): ZoneReader {
    const { stNode, stChildren, stNsec, stNsec3, stNsec3Last } = this;
    return {
      node(nkey) {
        const out = new Map<number, StoredRRset>();
        for (const [rtype, ttl, rdata] of stNode.all(zone, nkey) as [number, number, Buffer][]) {
          const key = rtype === TYPE.RRSIG && rdata.length >= 2 ? sigKey(rdata.readUInt16BE(0)) : rtype;
          const set = out.get(key);
          if (set) set.rdatas.push(rdata);
          else out.set(key, { ttl, rdatas: [rdata] });
        }
        return out;
      },
      hasChildren(nkey) {
        return stChildren.get(zone, nkey, Buffer.concat([nkey, Buffer.from([0xff])])) !== undefined;
      },
      nsecOwner(ckey) {
        return (stNsec.get(zone, ckey) as [Buffer] | undefined)?.[0];
      },
      nsec3Owner(nkey) {
        const hit = (stNsec3.get(zone, nkey) ?? stNsec3Last.get(zone)) as [Buffer] | undefined;
        return hit?.[0];
      },
    };
  }

  /**
   * Replaces the zone's content with a full transfer (AXFR). The RRs are staged in a temporary
   * table first (no lock on the zone data while they arrive), then one transaction changes the
   * records table by difference — old minus new deleted, new minus old inserted — and keeps that
   * difference in change_records, so history shows what each transfer changed.
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
      return this.commitIncoming(id, zone, meta);
    } finally {
      this.dropIncoming(id);
    }
  }

  /** Starts staging a full zone; returns the handle for addIncoming/commitIncoming. */
  beginIncoming(): number {
    this.endRead();
    const id = ++this.incomingSeq;
    this.db.exec(`CREATE TEMP TABLE incoming_${id} (
      name TEXT, type TEXT, ttl INTEGER, rdata TEXT, rtype INTEGER, nkey BLOB, rdata_wire BLOB, ckey BLOB)`);
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
  }

  /** Applies a staged zone in one transaction (see replaceZone). */
  commitIncoming(
    id: number,
    zone: string,
    meta: { serial: number; primary: string; now: number; guards?: CommitGuards },
  ): ApplyResult {
    this.endRead();
    const db = this.db;
    const t = `temp.incoming_${id}`;
    db.exec(`CREATE INDEX temp.incoming_${id}_key ON incoming_${id} (nkey, rtype, rdata_wire)`);
    if (meta.guards) {
      // Commit guards over the staged zone (xfrin/guards.ts): SOA and NS at the apex, CNAME
      // alone, maxRecordsPerType / maxTypesPerName — one pass in owner order.
      const rows = db
        .prepare(
          `SELECT name AS owner, rtype AS type, CASE WHEN rtype = 46 THEN substr(rdata_wire, 1, 2) END AS covered,
                  count(DISTINCT rdata_wire) AS count
             FROM ${t} GROUP BY nkey, rtype, covered ORDER BY nkey`,
        )
        .iterate() as Iterable<NodeRow>;
      const problem = checkNodeRows(rows, zone, meta.guards.limits);
      if (problem) throw new GuardError(problem);
    }
    const run = db.transaction((): ApplyResult => {
      this.ensureZone(zone);
      const prev = this.zone(zone)!;
      if (meta.guards?.maxDeletePercent !== undefined && prev.serial !== null) {
        // A TTL change deletes nothing: count RRs gone by owner, type and rdata.
        const { n } = db
          .prepare(
            `SELECT count(*) AS n FROM records r WHERE r.zone = ? AND NOT EXISTS
               (SELECT 1 FROM ${t} i WHERE i.nkey = r.nkey AND i.rtype = r.rtype AND i.rdata_wire = r.rdata_wire)`,
          )
          .get(zone) as { n: number };
        const problem = deleteProblem(prev.records, n, meta.guards.maxDeletePercent);
        if (problem) throw new GuardError(problem);
      }
      const change = db
        .prepare(
          `INSERT INTO changes (zone, serial_from, serial_to, kind, applied_at, primary_addr)
           VALUES (?, ?, ?, 'axfr', ?, ?)`,
        )
        .run(zone, prev.serial, meta.serial, meta.now, meta.primary);
      const changeId = Number(change.lastInsertRowid);
      const firstLoad = prev.serial === null;
      const cols = 'name, type, ttl, rdata, rtype, nkey, rdata_wire';
      const recordCols = `${cols}, ckey`;
      const gone = `NOT EXISTS (SELECT 1 FROM ${t} i WHERE i.nkey = r.nkey AND i.rtype = r.rtype
                      AND i.rdata_wire = r.rdata_wire AND i.ttl = r.ttl)`;
      const fresh = `NOT EXISTS (SELECT 1 FROM records r WHERE r.zone = @zone AND r.nkey = i.nkey
                       AND r.rtype = i.rtype AND r.rdata_wire = i.rdata_wire AND r.ttl = i.ttl)`;
      let removed = 0;
      if (!firstLoad) {
        // On a first load the whole zone is the change; history keeps only the count.
        db.prepare(
          `INSERT INTO change_records (change_id, op, ${cols})
           SELECT @changeId, 'del', ${cols} FROM records r WHERE r.zone = @zone AND ${gone}`,
        ).run({ changeId, zone });
        db.prepare(
          `INSERT INTO change_records (change_id, op, ${cols})
           SELECT DISTINCT @changeId, 'add', ${cols} FROM ${t} i WHERE ${fresh}`,
        ).run({ changeId, zone });
        removed = db
          .prepare(`DELETE FROM records AS r WHERE r.zone = @zone AND ${gone}`)
          .run({ zone }).changes;
      }
      const insert = firstLoad
        ? `INSERT OR IGNORE INTO records (zone, ${recordCols}) SELECT @zone, ${recordCols} FROM ${t} i ORDER BY rowid`
        : `INSERT OR IGNORE INTO records (zone, ${recordCols})
           SELECT @zone, ${recordCols} FROM ${t} i WHERE ${fresh} ORDER BY rowid`;
      const added = db.prepare(insert).run({ zone }).changes;
      const count = (firstLoad ? 0 : prev.records) - removed + added;
      db.prepare('UPDATE changes SET removed = ?, added = ? WHERE id = ?').run(removed, added, changeId);
      this.updateZone(zone, {
        serial: meta.serial,
        state: 'ok',
        primary_addr: meta.primary,
        last_refresh: meta.now,
        last_transfer: meta.now,
        records: count,
      });
      return { changeId, added, removed, records: count };
    });
    return run();
  }
}

/** Presentation and key columns for one RR, in the column order of `records`. */
function rowOf(rr: ZoneRR): unknown[] {
  const owner = toLower(rr.owner);
  return [
    nameToText(owner, false),
    typeToText(rr.type),
    rr.ttl,
    rdataToText(rr.type, rr.rdata),
    rr.type,
    nameKey(owner),
    rr.rdata,
    rr.type === TYPE.NSEC ? canonicalKey(nameKey(owner)) : null,
  ];
}

/** Multi-row INSERTs: far fewer statement executions than one per RR. */
function insertBatched(db: Database.Database, table: string, rrs: Iterable<ZoneRR>): void {
  const sql = (n: number) =>
    `INSERT INTO ${table} (name, type, ttl, rdata, rtype, nkey, rdata_wire, ckey) VALUES ${Array(n)
      .fill('(?, ?, ?, ?, ?, ?, ?, ?)')
      .join(', ')}`;
  const full = db.prepare(sql(INSERT_BATCH));
  let batch: unknown[] = [];
  let n = 0;
  for (const rr of rrs) {
    batch.push(...rowOf(rr));
    if (++n === INSERT_BATCH) {
      full.run(batch);
      batch = [];
      n = 0;
    }
  }
  if (n > 0) db.prepare(sql(n)).run(batch);
}
