/**
 * Malformed queries answered as BIND answers them: a bounded slice (3 000 seeded mutations) of
 * test/fuzz/malformed.ts (`npm run malformed` runs 30 000). Random bytes, cut-offs, appended bytes,
 * altered counts, unusual label octets, unknown classes and opcodes, non-OPT records in the
 * additional section and odd header flags, each sent over UDP to a default BIND 9.18 secondary
 * and to ns2, each reply reduced to a class (silence / rcode / rcode with records).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compareMalformed, type Servers, startServers, verdict } from '../fuzz/malformed.js';

let servers: Servers;
before(async () => {
  servers = await startServers();
});
after(async () => {
  await servers?.stop();
});

describe('malformed queries: the same class of reply as a default BIND 9.18 secondary', () => {
  it('3 000 mutations: ≥ 99 % agree, never records where BIND gives none', {
    timeout: 120_000,
  }, async (t) => {
    const seed = Number(process.env.NS2_MALFORMED_SEED ?? 20_261_201);
    const rep = await compareMalformed(servers, 3000, seed);
    t.diagnostic(
      `seed ${seed}: ${rep.agreed}/${rep.count} agree (${((100 * rep.agreed) / rep.count).toFixed(2)} %); ` +
        `differences ${JSON.stringify(rep.byPair)}; BIND's classes ${JSON.stringify(rep.bindClasses)}`,
    );
    assert.deepEqual(verdict(rep), [], JSON.stringify(rep.disagreements.slice(0, 10)));
    const errors = servers.ns2.logLines().filter((l) => (l.level as number) >= 50);
    assert.deepEqual(errors, []);
  });
});
