import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { nameKey, textToName, toLower } from '../../src/dns/name.js';
import { migrate, SCHEMA_VERSION } from '../../src/store/schema.js';
import Database from '../../src/store/sqlite.js';
import { INLINE_TEXT, ownerKey, type ZoneRR, ZoneStore } from '../../src/store/zone-store.js';
import { a, exampleZone, rr } from '../harness/records.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-store-v4-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const Z = 'example.test';

describe('store schema v4', () => {
  it('migrates a v3 database keeping zones, records (stored order), text and history', () => {
    const file = path.join(dir, 'v3.db');
    const v3 = new Database(file);
    migrate(v3, 3);
    v3.prepare("INSERT INTO zones (name, serial, state, records) VALUES (?, 7, 'ok', 3)").run(Z);
    const ins = v3.prepare(
      `INSERT INTO records (zone, name, type, ttl, rdata, rtype, nkey, rdata_wire) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const key = (s: string) => nameKey(textToName(s));
    // Stored order at www: 192.0.2.9 before 192.0.2.1 (not key order).
    ins.run(Z, 'www.example.test', 'A', 60, '192.0.2.9', 1, key('www.example.test'), a('192.0.2.9'));
    ins.run(Z, 'www.example.test', 'A', 60, '192.0.2.1', 1, key('www.example.test'), a('192.0.2.1'));
    ins.run(Z, 'mail.example.test', 'A', 60, '192.0.2.2', 1, key('mail.example.test'), a('192.0.2.2'));
    v3.prepare(
      "INSERT INTO changes (zone, serial_from, serial_to, kind, applied_at, removed, added) VALUES (?, 6, 7, 'ixfr', 1, 0, 1)",
    ).run(Z);
    v3.close();

    const s = new ZoneStore(file);
    const v = s.db.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number };
    assert.equal(v.v, SCHEMA_VERSION);
    assert.deepEqual(s.zone(Z), {
      name: Z,
      serial: 7,
      state: 'ok',
      primary_addr: null,
      last_refresh: null,
      last_transfer: null,
      next_refresh: null,
      expires_at: null,
      records: 3,
      catalog: null,
      catalog_label: null,
    });
    const rows = s.db
      .prepare('SELECT name, type, ttl, rdata FROM records WHERE zone = ? ORDER BY name, id')
      .all(Z);
    assert.deepEqual(rows, [
      { name: 'mail.example.test', type: 'A', ttl: 60, rdata: '192.0.2.2' },
      { name: 'www.example.test', type: 'A', ttl: 60, rdata: '192.0.2.9' },
      { name: 'www.example.test', type: 'A', ttl: 60, rdata: '192.0.2.1' },
    ]);
    const www = s.reader(Z).node(key('www.example.test'));
    assert.deepEqual(www.get(1)?.rdatas, [a('192.0.2.9'), a('192.0.2.1')]);
    assert.deepEqual(
      [...s.scanZone(Z)].map(([, , , rd]) => rd),
      [a('192.0.2.9'), a('192.0.2.1'), a('192.0.2.2')], // key order: length-prefixed labels, www < mail
    );
    assert.equal((s.db.prepare('SELECT count(*) AS n FROM changes').get() as { n: number }).n, 1);
    // New RRs get seq values after the migrated ones.
    const next = s.db.prepare('SELECT next FROM rr_seq').pluck().get() as number;
    assert.ok(next > 3);
    s.close();
  });

  it('a large load commits without text; fillText completes it, the view then has every RR', () => {
    const s = new ZoneStore(path.join(dir, 'big.db'));
    const id = s.beginIncoming();
    const zone: ZoneRR[] = exampleZone(1);
    for (let i = 0; i < INLINE_TEXT + 10; i++)
      zone.push(rr(`h${i}.${Z}`, 'A', 60, a(`10.0.${i >> 8}.${i & 255}`)));
    s.addIncoming(id, zone);
    const result = s.commitIncoming(id, Z, { serial: 1, primary: 'p', now: 1 });
    s.dropIncoming(id);
    assert.equal(result.records, zone.length);
    const missing = () =>
      (
        s.db.prepare('SELECT count(*) AS n FROM records WHERE zone = ? AND rdata IS NULL').get(Z) as {
          n: number;
        }
      ).n;
    assert.equal(missing(), zone.length);
    assert.equal(s.textPending(), true);
    let batches = 0;
    while (s.fillText()) batches++;
    assert.ok(batches > 1, 'in several small transactions');
    assert.equal(missing(), 0);
    assert.equal(s.textPending(), false);
    assert.deepEqual(
      s.db.prepare('SELECT name, type, rdata FROM records WHERE zone = ? AND name = ?').all(Z, `h300.${Z}`),
      [{ name: `h300.${Z}`, type: 'A', rdata: '10.0.1.44' }],
    );
    s.close();
  });

  it('ownerKey is nameKey of the lower-cased owner', () => {
    for (const name of ['.', 'Example.TEST', 'a.b.c.d.e', 'x\\.y.z', '\\255\\000.q']) {
      const wire = textToName(name);
      assert.deepEqual(ownerKey(wire), nameKey(toLower(wire)), name);
    }
  });
});
