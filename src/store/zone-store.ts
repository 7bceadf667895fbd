/**
 * The zone store: every served zone lives in SQLite. Reads for answering are prepared point
 * queries; a transfer is applied in one transaction, so a reader (this process or an operator's
 * `sqlite3` session, thanks to WAL) sees the old version or the new one, never a mix.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { nameKey, nameToText, textToName, toLower } from '../dns/name.js';
import { rdataToText } from '../dns/rdata.js';
import { parseSoa } from '../dns/soa.js';
import { typeToText } from '../dns/types.js';
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

/** Read view of one zone, keyed by nameKey() of the owner. */
export interface ZoneReader {
  /** All RRsets at a name; empty when the name owns no records. */
  node(nkey: Buffer): Map<number, StoredRRset>;
  /** True when some name strictly below `nkey` owns records (so `nkey` exists, RFC 4592 §2.2.2). */
  hasChildren(nkey: Buffer): boolean;
}

export interface ApplyResult {
  changeId: number;
  added: number;
  removed: number;
  records: number;
}

const INSERT_BATCH = 500;

export class ZoneStore {
  readonly db: Database.Database;
  private readonly stNode: Database.Statement;
  private readonly stChildren: Database.Statement;

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
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Makes sure a configured zone has its row (state never_loaded until the first transfer). */
  ensureZone(name: string): void {
    this.db.prepare('INSERT OR IGNORE INTO zones (name) VALUES (?)').run(name);
  }

  zone(name: string): ZoneRow | undefined {
    return this.db.prepare('SELECT * FROM zones WHERE name = ?').get(name) as ZoneRow | undefined;
  }

  zones(): ZoneRow[] {
    return this.db.prepare('SELECT * FROM zones ORDER BY name').all() as ZoneRow[];
  }

  updateZone(name: string, fields: Partial<Omit<ZoneRow, 'name'>>): void {
    const keys = Object.keys(fields);
    if (keys.length === 0) return;
    const set = keys.map((k) => `${k} = @${k}`).join(', ');
    this.db.prepare(`UPDATE zones SET ${set} WHERE name = @name`).run({ ...fields, name });
  }

  /** The served SOA's timers, or undefined before the first transfer. */
  soaTimers(zone: string): { refresh: number; retry: number; expire: number; serial: number } | undefined {
    const row = this.db
      .prepare('SELECT rdata_wire FROM records WHERE zone = ? AND rtype = 6 AND nkey = ? LIMIT 1')
      .get(zone, nameKey(textToName(zone))) as { rdata_wire: Buffer } | undefined;
    if (!row) return undefined;
    const soa = parseSoa(row.rdata_wire);
    return { refresh: soa.refresh, retry: soa.retry, expire: soa.expire, serial: soa.serial };
  }

  reader(zone: string): ZoneReader {
    const { stNode, stChildren } = this;
    return {
      node(nkey) {
        const out = new Map<number, StoredRRset>();
        for (const [rtype, ttl, rdata] of stNode.all(zone, nkey) as [number, number, Buffer][]) {
          const set = out.get(rtype);
          if (set) set.rdatas.push(rdata);
          else out.set(rtype, { ttl, rdatas: [rdata] });
        }
        return out;
      },
      hasChildren(nkey) {
        return stChildren.get(zone, nkey, Buffer.concat([nkey, Buffer.from([0xff])])) !== undefined;
      },
    };
  }

  /**
   * Replaces the zone's content with a full transfer (AXFR), in one transaction. The records
   * table is changed by difference (old minus new deleted, new minus old inserted) and the
   * difference is kept in change_records, so history shows what each transfer changed.
   */
  replaceZone(zone: string, rrs: Iterable<ZoneRR>, meta: { serial: number; primary: string; now: number }) {
    const db = this.db;
    const run = db.transaction((): ApplyResult => {
      this.ensureZone(zone);
      const prev = this.zone(zone)!;
      db.exec(`CREATE TEMP TABLE IF NOT EXISTS incoming (
        name TEXT, type TEXT, ttl INTEGER, rdata TEXT, rtype INTEGER, nkey BLOB, rdata_wire BLOB)`);
      db.exec('DELETE FROM temp.incoming');
      insertBatched(db, 'temp.incoming', rrs);
      db.exec('CREATE INDEX IF NOT EXISTS temp.incoming_key ON incoming (nkey, rtype, rdata_wire)');

      const change = db
        .prepare(
          `INSERT INTO changes (zone, serial_from, serial_to, kind, applied_at, primary_addr)
           VALUES (?, ?, ?, 'axfr', ?, ?)`,
        )
        .run(zone, prev.serial, meta.serial, meta.now, meta.primary);
      const changeId = Number(change.lastInsertRowid);
      const firstLoad = prev.serial === null;
      const cols = 'name, type, ttl, rdata, rtype, nkey, rdata_wire';
      const gone = `NOT EXISTS (SELECT 1 FROM temp.incoming i WHERE i.nkey = r.nkey AND i.rtype = r.rtype
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
           SELECT DISTINCT @changeId, 'add', ${cols} FROM temp.incoming i WHERE ${fresh}`,
        ).run({ changeId, zone });
        removed = db
          .prepare(`DELETE FROM records AS r WHERE r.zone = @zone AND ${gone}`)
          .run({ zone }).changes;
      }
      const added = db
        .prepare(
          `INSERT OR IGNORE INTO records (zone, ${cols})
           SELECT @zone, ${cols} FROM temp.incoming i WHERE ${fresh} ORDER BY rowid`,
        )
        .run({ zone }).changes;
      db.exec('DELETE FROM temp.incoming');
      const count = (
        db.prepare('SELECT count(*) AS n FROM records WHERE zone = ?').get(zone) as { n: number }
      ).n;
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
  ];
}

/** Multi-row INSERTs: far fewer statement executions than one per RR. */
function insertBatched(db: Database.Database, table: string, rrs: Iterable<ZoneRR>): void {
  const sql = (n: number) =>
    `INSERT INTO ${table} (name, type, ttl, rdata, rtype, nkey, rdata_wire) VALUES ${Array(n)
      .fill('(?, ?, ?, ?, ?, ?, ?)')
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
