/**
 * The answer cache keys off the request bytes (answer/answer-cache.ts): a mutated query must never
 * get an answer the full path would not give. 3 000 seeded mutations of valid queries
 * (harness/mutations.ts), each asked after the valid queries were cached, must get byte for byte
 * the reply a handler without a cache gives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { QueryHandler } from '../../src/serve/handler.js';
import type { ZoneStore } from '../../src/store/zone-store.js';
import { rng, validQuery } from '../fuzz/packets.js';
import { exampleTable } from '../harness/example-table.js';
import { mutate } from '../harness/mutations.js';

let store: ZoneStore;
let cached: QueryHandler;
let uncached: QueryHandler;

before(() => {
  const made = exampleTable();
  store = made.store;
  const table = made.table;
  const secret = Buffer.alloc(16, 7);
  const now = () => 1_800_000_000;
  const log = pino({ level: 'silent' });
  cached = new QueryHandler(table, { udpSize: 1232, cookieSecret: secret, now }, log);
  uncached = new QueryHandler(table, { udpSize: 1232, cookieSecret: secret, now, cacheBytes: 0 }, log);
});
after(() => store.close());

describe('answer cache and malformed queries', () => {
  it('3 000 mutations of cached questions: the same reply as without a cache', () => {
    const r = rng(20_261_201);
    // Fill the cache with the valid forms first (each asked twice: stored, then hit).
    for (let i = 0; i < 2000; i++) {
      const q = validQuery(r, 'example.test');
      cached.handle(q, 'udp');
      cached.handle(q, 'udp');
    }
    assert.ok(cached.cached > 0);
    let hits = 0;
    for (let i = 0; i < 3000; i++) {
      const q = mutate(r, 'example.test');
      const out = Buffer.alloc(65535);
      const n = q.length >= 12 ? cached.fromCache(q, 0, q.length, out, 0) : 0;
      if (n > 0) hits++;
      const viaCache = n > 0 ? out.subarray(0, n) : cached.handle(q, 'udp');
      assert.deepEqual(viaCache, uncached.handle(q, 'udp'), q.toString('hex'));
    }
    assert.ok(hits > 100, `${hits} mutations hit the cache (the comparison must include hits)`);
  });
});
