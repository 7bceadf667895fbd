import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { SCHEMA_VERSION } from '../../src/store/schema.js';
import Database from '../../src/store/sqlite.js';
import { type ZoneRR, ZoneStore } from '../../src/store/zone-store.js';
import { a, exampleZone, rr } from '../harness/records.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-store-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('zone store', () => {
  it('migrates a new database and records the schema version', () => {
    const s = new ZoneStore(path.join(dir, 'm.db'));
    const v = s.db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number };
    assert.equal(v.v, SCHEMA_VERSION);
    assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
    s.close();
    // Reopening does not migrate twice.
    const again = new ZoneStore(path.join(dir, 'm.db'));
    const rows = again.db.prepare('SELECT count(*) AS n FROM schema_version').get() as { n: number };
    assert.equal(rows.n, SCHEMA_VERSION);
    again.close();
  });

  it('a reader never sees half a zone: old version until commit, then the new one', () => {
    const file = path.join(dir, 'tx.db');
    const s = new ZoneStore(file);
    s.replaceZone('example.test', exampleZone(1), { serial: 1, primary: 'p', now: 1 });
    const reader = new Database(file, { readonly: true });
    const count = () =>
      (reader.prepare("SELECT count(*) AS n FROM records WHERE zone = 'example.test'").get() as { n: number })
        .n;
    const serial = () =>
      (reader.prepare("SELECT serial FROM zones WHERE name = 'example.test'").get() as { serial: number })
        .serial;
    const before = count();
    const seen: [number, number][] = [];
    function* v2(): Generator<ZoneRR> {
      const base = exampleZone(2);
      for (let i = 0; i < base.length; i++) {
        yield base[i];
        if (i === 5) seen.push([count(), serial()]); // mid-transfer, from another connection
      }
      for (let i = 0; i < 2000; i++) yield rr(`h${i}.example.test`, 'A', 60, a('192.0.2.1'));
      seen.push([count(), serial()]);
    }
    s.replaceZone('example.test', v2(), { serial: 2, primary: 'p', now: 2 });
    assert.deepEqual(seen, [
      [before, 1],
      [before, 1],
    ]);
    assert.equal(count(), before + 2000);
    assert.equal(serial(), 2);
    reader.close();
    s.close();
  });

  it('a transfer that fails midway leaves the old zone intact', () => {
    const s = new ZoneStore(path.join(dir, 'fail.db'));
    s.replaceZone('example.test', exampleZone(1), { serial: 1, primary: 'p', now: 1 });
    const n0 = s.zone('example.test')!.records;
    function* broken(): Generator<ZoneRR> {
      yield* exampleZone(2).slice(0, 3);
      throw new Error('stream broke');
    }
    assert.throws(
      () => s.replaceZone('example.test', broken(), { serial: 2, primary: 'p', now: 2 }),
      /stream broke/,
    );
    assert.equal(s.zone('example.test')!.serial, 1);
    assert.equal(s.zone('example.test')!.records, n0);
    s.close();
  });

  it('keeps the difference of each transfer in the history', () => {
    const s = new ZoneStore(':memory:');
    s.replaceZone('example.test', exampleZone(1), { serial: 1, primary: 'p', now: 1 });
    const v2 = exampleZone(2).filter((r) => !r.owner.toString('latin1').includes('mail'));
    v2.push(rr('new.example.test', 'A', 60, a('192.0.2.200')));
    const res = s.replaceZone('example.test', v2, { serial: 2, primary: 'p', now: 2 });
    const rows = s.db
      .prepare('SELECT op, name, type, rdata FROM change_records WHERE change_id = ? ORDER BY op, name, type')
      .all(res.changeId) as { op: string; name: string; type: string; rdata: string }[];
    const summary = rows.map((r) => `${r.op} ${r.name} ${r.type}`);
    assert.deepEqual(summary, [
      'add example.test SOA',
      'add new.example.test A',
      'del example.test SOA',
      'del mail.example.test A',
      'del mail.example.test AAAA',
    ]);
    assert.equal(res.added, 2);
    assert.equal(res.removed, 3);
    const change = s.db
      .prepare('SELECT serial_from, serial_to, kind FROM changes WHERE id = ?')
      .get(res.changeId);
    assert.deepEqual({ ...(change as object) }, { serial_from: 1, serial_to: 2, kind: 'axfr' });
    s.close();
  });
});
