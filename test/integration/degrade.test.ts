/**
 * Graceful degradation (issue #6): an operator's sqlite3 session holding a write lock or a long
 * read never stops ns2 answering; a transfer arriving meanwhile waits for the lock and lands.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TYPE } from '../../src/dns/types.js';
import Database from '../../src/store/sqlite.js';
import { query, summarize } from '../harness/client.js';
import { freePort, type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
let named: Named;
let ns2: Ns2;

before(async () => {
  const port = await freePort();
  named = await startNamed({
    zones: [
      {
        name: 'example.test',
        text: fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8'),
        alsoNotify: [port],
      },
    ],
  });
  ns2 = await startNs2({
    port,
    zones: [{ name: 'example.test', primaries: [{ address: '127.0.0.1', port: named.port }] }],
  });
  await waitFor(
    'zone loaded',
    async () => summarize(await query(port, 'example.test', TYPE.SOA)).answer.length === 1,
  );
});

after(async () => {
  await ns2?.stop();
  await named?.stop();
});

describe("an operator's session holding locks", () => {
  it('keeps answering under a held write lock; the IXFR waits and then lands', async () => {
    const op = new Database(ns2.database);
    op.exec('BEGIN IMMEDIATE'); // the write lock, as `sqlite3` with an open write transaction holds it
    const longRead = new Database(ns2.database, { readonly: true });
    longRead.exec('BEGIN');
    longRead.prepare('SELECT count(*) FROM records').get(); // and a read snapshot held open too
    try {
      await named.nsupdate('zone example.test\nupdate add locked.example.test. 300 A 192.0.2.44\nsend');
      // The IXFR has arrived and its commit is asked for: the writer now waits on the lock.
      await waitFor('the IXFR commit to wait on the lock', () =>
        ns2.logLines().some((l) => l.msg === 'committing transfer' && l.serial === 2024010102),
      );
      // Every query is answered meanwhile (each within query()'s 3 s, or it throws); no speed
      // threshold here, speed is bench/'s.
      for (let i = 0; i < 50; i++) {
        const r = summarize(await query(ns2.port, i % 2 ? 'www.example.test' : 'nx.example.test', TYPE.A));
        assert.equal(r.rcode, i % 2 ? 0 : 3);
        await new Promise((res) => setTimeout(res, 20));
      }
      assert.equal(
        summarize(await query(ns2.port, 'locked.example.test', TYPE.A)).rcode,
        3,
        'not applied yet',
      );
    } finally {
      op.exec('COMMIT');
      op.close();
      longRead.exec('COMMIT');
      longRead.close();
    }
    await waitFor(
      'the waiting IXFR to land',
      async () => summarize(await query(ns2.port, 'locked.example.test', TYPE.A)).answer.length === 1,
      10_000,
    );
    const db = new Database(ns2.database, { readonly: true });
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
  });
});
