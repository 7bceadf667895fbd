/**
 * ZoneStore.deleteZone (a zone removed by reload or a catalog): every row keyed by the zone goes,
 * in every table, the other zones' rows stay; a transfer of it finishing afterwards cannot bring
 * it back until addZone names it again.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { INLINE_TEXT, type ZoneRR, ZoneStore } from '../../src/store/zone-store.js';
import { a, n, rr, soa } from '../harness/records.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-zone-delete-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function zone(z: string, serial: number, hosts: number): ZoneRR[] {
  const out = [
    rr(z, 'SOA', 3600, soa(`ns1.${z}`, `hostmaster.${z}`, serial)),
    rr(z, 'NS', 3600, n(`ns1.${z}`)),
    rr(`ns1.${z}`, 'A', 3600, a('192.0.2.53')),
  ];
  for (let i = 0; i < hosts; i++)
    out.push(rr(`h${i}.${z}`, 'A', 300, a(`10.0.${(i >> 8) & 255}.${i & 255}`)));
  return out;
}

/** Rows of `zone` in each table keyed by it (directly or through zone id, seq or change id). */
function rowsOf(store: ZoneStore, zone: string): Record<string, number> {
  const q = (sql: string) => store.db.prepare(sql).pluck().get(zone) as number;
  const id = '(SELECT id FROM zones WHERE name = ?)';
  const changes = '(SELECT id FROM changes WHERE zone = ?)';
  return {
    zones: q('SELECT count(*) FROM zones WHERE name = ?'),
    rr: q(`SELECT count(*) FROM rr WHERE zone_id = ${id}`),
    records: q('SELECT count(*) FROM records WHERE zone = ?'),
    rr_text: q(`SELECT count(*) FROM rr_text WHERE seq IN (SELECT seq FROM rr WHERE zone_id = ${id})`),
    text_backlog: q(`SELECT count(*) FROM text_backlog WHERE zone_id = ${id}`),
    changes: q('SELECT count(*) FROM changes WHERE zone = ?'),
    change_records: q(`SELECT count(*) FROM change_records WHERE change_id IN ${changes}`),
    change_text_backlog: q(`SELECT count(*) FROM change_text_backlog WHERE change_id IN ${changes}`),
    transfers: q('SELECT count(*) FROM transfers WHERE zone = ?'),
  };
}

describe('ZoneStore.deleteZone', () => {
  it('deletes every row of the zone in one go and leaves the others', () => {
    const store = new ZoneStore(path.join(dir, 'a.db'));
    try {
      const meta = (serial: number) => ({ serial, primary: '127.0.0.1#53', now: 1_700_000_000 });
      store.replaceZone('keep.test', zone('keep.test', 1, 10), meta(1));
      // A large load leaves its text for later (text_backlog): delete it before it is written.
      const big = zone('gone.test', 1, INLINE_TEXT + 100);
      const id = store.beginIncoming();
      store.addIncoming(id, big);
      store.commitIncoming(id, 'gone.test', meta(1));
      store.dropIncoming(id);
      store.replaceZone('gone.test', zone('gone.test', 2, 5), meta(2)); // history with RRs
      store.recordTransfer({
        zone: 'gone.test',
        started_at: 1_700_000_000,
        trigger: 'timer',
        primary_addr: '127.0.0.1#53',
        result: 'transferred',
      });
      const before = rowsOf(store, 'gone.test');
      assert.ok(before.rr > 5 && before.changes === 2 && before.change_records > 0 && before.transfers === 1);
      const kept = rowsOf(store, 'keep.test');

      const deleted = store.deleteZone('gone.test');
      assert.equal(deleted.zones, 1);
      assert.equal(deleted.rr, before.rr);
      assert.equal(deleted.changes, 2);
      assert.equal(deleted.transfers, 1);
      assert.deepEqual(
        Object.values(rowsOf(store, 'gone.test')).filter((v) => v !== 0),
        [],
      );
      assert.deepEqual(rowsOf(store, 'keep.test'), kept);
      assert.equal(
        store
          .zones()
          .map((z) => z.name)
          .join(','),
        'keep.test',
      );

      // A transfer still in flight when the zone went: refused, no row comes back.
      const late = store.beginIncoming();
      store.addIncoming(late, zone('gone.test', 3, 1));
      assert.throws(() => store.commitIncoming(late, 'gone.test', meta(3)), /no longer configured/);
      store.dropIncoming(late);
      store.recordTransfer({
        zone: 'gone.test',
        started_at: 1_700_000_001,
        trigger: 'timer',
        primary_addr: '127.0.0.1#53',
        result: 'failed',
      });
      assert.equal(rowsOf(store, 'gone.test').transfers, 0);
      assert.equal(store.zone('gone.test'), undefined);

      // Configured again: it loads afresh.
      store.addZone('gone.test');
      store.replaceZone('gone.test', zone('gone.test', 4, 2), meta(4));
      assert.equal(store.zone('gone.test')?.serial, 4);
      assert.equal(store.zone('gone.test')?.records, 5);
      assert.equal(rowsOf(store, 'gone.test').records, 5);
    } finally {
      store.close();
    }
  });
});
