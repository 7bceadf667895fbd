/**
 * Multiple primaries tried in order, and EDNS EXPIRE (RFC 7314) both ways: ns2 asks its primary
 * for it, and answers it for its zones with the time left before expiry.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { OPTION, parseOptions } from '../../src/dns/edns.js';
import { parseMessage } from '../../src/dns/message.js';
import { TYPE } from '../../src/dns/types.js';
import Database from '../../src/store/sqlite.js';
import { buildQuery, exchange, query, summarize } from '../harness/client.js';
import { freePort, type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
let named: Named;
let ns2: Ns2;
let dead: number;

before(async () => {
  named = await startNamed({
    zones: [
      { name: 'example.test', text: fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8') },
    ],
  });
  dead = await freePort(); // nothing listens here
  ns2 = await startNs2({
    zones: [
      {
        name: 'example.test',
        primaries: [
          { address: '127.0.0.1', port: dead },
          { address: '127.0.0.1', port: named.port },
        ],
      },
    ],
  });
  await waitFor(
    'zone loaded',
    async () => summarize(await query(ns2.port, 'example.test', TYPE.SOA)).answer.length === 1,
  );
});

after(async () => {
  await ns2?.stop();
  await named?.stop();
});

describe('primaries and EDNS EXPIRE', () => {
  it('tries the primaries in order and records the one that answered', () => {
    const db = new Database(ns2.database, { readonly: true });
    try {
      const zone = db.prepare("SELECT primary_addr FROM zones WHERE name = 'example.test'").get() as {
        primary_addr: string;
      };
      assert.equal(zone.primary_addr, `127.0.0.1#${named.port}`);
      const failed = db
        .prepare(
          "SELECT count(*) AS n FROM transfers WHERE zone = 'example.test' AND result = 'failed' AND primary_addr = ?",
        )
        .get(`127.0.0.1#${dead}`) as { n: number };
      assert.ok(failed.n >= 1, 'the dead primary was tried first and recorded');
    } finally {
      db.close();
    }
  });

  it('answers EDNS EXPIRE for its zone with the time left (≤ the SOA expire, 86400)', async () => {
    const q = buildQuery('example.test', TYPE.SOA, { edns: 1232 });
    // Append an empty EXPIRE option (code 9) to the OPT record and fix its rdata length.
    const withExpire = Buffer.concat([q, Buffer.from([0, 9, 0, 0])]);
    withExpire.writeUInt16BE(4, q.length - 2);
    const m = parseMessage(await exchange(ns2.port, withExpire));
    const opt = m.additional.find((r) => r.type === TYPE.OPT)!;
    const expire = parseOptions(opt.rdata).find((o) => o.code === OPTION.EXPIRE);
    assert.ok(expire, 'EXPIRE option in the reply');
    const left = expire.data.readUInt32BE(0);
    assert.ok(left > 86_000 && left <= 86_400, `expire left ${left}`);
  });

  it('does not add EXPIRE when the query did not ask for it', async () => {
    const m = parseMessage(await query(ns2.port, 'example.test', TYPE.SOA, { edns: 1232 }));
    const opt = m.additional.find((r) => r.type === TYPE.OPT)!;
    assert.deepEqual(parseOptions(opt.rdata), []);
  });
});
