/**
 * TSIG against a real BIND primary that requires a key for transfers:
 * - per algorithm, a signed SOA query, a multi-message AXFR and an IXFR whose every message we
 *   verify (the MAC chain of RFC 8945 §5.3.1 as BIND produces it);
 * - ns2 with the right key replicates (AXFR, then IXFR after an nsupdate);
 * - ns2 with a wrong secret or a wrong algorithm fails the transfer with a log naming the key
 *   and the reason, and keeps answering with the zone it had.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseMessage } from '../../src/dns/message.js';
import { textToName } from '../../src/dns/name.js';
import { TSIG_ALGORITHMS, type TsigKey } from '../../src/dns/tsig.js';
import { TYPE } from '../../src/dns/types.js';
import Database from '../../src/store/sqlite.js';
import { axfr, XfrError } from '../../src/xfrin/axfr.js';
import { ixfr } from '../../src/xfrin/ixfr.js';
import { probeSerial } from '../../src/xfrin/soa-probe.js';
import { query } from '../harness/client.js';
import { startFakePrimary } from '../harness/fake-primary.js';
import { freePort, type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { exampleZone } from '../harness/records.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const ZONE = 'example.test';
const zoneText = fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8');

/** ~250 KB of TXT: BIND sends it in several messages, each signed. */
const bigZone = (serial: number) => `$ORIGIN big.test.
$TTL 300
@ SOA ns1 hostmaster ${serial} 3600 600 86400 300
  NS ns1
ns1 A 192.0.2.53
${Array.from({ length: 3000 }, (_, i) => `h${i} TXT "${'record-'.repeat(8)}${i}"`).join('\n')}
`;

const LIMITS = {
  maxRecords: 100_000,
  maxTransferBytes: 10_000_000,
  maxTransferSeconds: 30,
  maxIdleSeconds: 10,
};

const keyOf = (algorithm: TsigKey['algorithm']): TsigKey => ({
  name: `k-${algorithm}`,
  algorithm,
  secret: randomBytes(32),
});
const bindKey = (k: TsigKey) =>
  `key "${k.name}" { algorithm ${k.algorithm}; secret "${k.secret.toString('base64')}"; };`;

const serialOf = async (port: number, zone: string) => {
  const m = parseMessage(await query(port, zone, TYPE.SOA));
  const soa = m.answer.find((r) => r.type === TYPE.SOA);
  return soa ? soa.rdata.readUInt32BE(soa.rdata.length - 20) : undefined;
};

describe('TSIG with a BIND primary that requires the key', () => {
  let named: Named;
  const algKeys = TSIG_ALGORITHMS.map(keyOf);
  const xfrKey = { name: 'xfr-key', algorithm: 'hmac-sha256' as const, secret: randomBytes(32) };
  const xfrSecret = xfrKey.secret.toString('base64');
  let ns2Port: number;

  before(async () => {
    ns2Port = await freePort();
    named = await startNamed({
      keys: [...algKeys, xfrKey].map(bindKey).join('\n'),
      zones: [
        { name: ZONE, text: zoneText, allowTransfer: 'key "xfr-key";', alsoNotify: [ns2Port] },
        {
          name: 'big.test',
          text: bigZone(1),
          allowTransfer: algKeys.map((k) => `key "${k.name}";`).join(' '),
        },
      ],
    });
  });
  after(async () => {
    await named?.stop();
  });

  it('refuses an unsigned AXFR (the key is required)', async () => {
    await assert.rejects(
      axfr({ address: '127.0.0.1', port: named.port }, textToName('big.test'), LIMITS),
      (e) => e instanceof XfrError && /REFUSED/.test(e.message),
    );
  });

  it('verifies every message BIND signs, per algorithm: SOA query, multi-message AXFR, IXFR', async () => {
    const primary = { address: '127.0.0.1', port: named.port };
    const apex = textToName('big.test');
    const before: Record<string, { serial: number; ttl: number; rdata: Buffer }> = {};
    for (const k of algKeys) {
      assert.equal((await probeSerial(primary, apex, 3000, k)).serial, 1, k.algorithm);
      const got = await axfr(primary, apex, LIMITS, k);
      assert.ok(got.messages > 1, `${k.algorithm}: expected a multi-message AXFR, got ${got.messages}`);
      assert.equal(got.rrs.length, 3003, k.algorithm);
      const soa = got.rrs.find((r) => r.type === TYPE.SOA)!;
      before[k.name] = { serial: got.serial, ttl: soa.ttl, rdata: soa.rdata };
    }
    await named.nsupdate('zone big.test\nupdate add added.big.test. 300 A 192.0.2.77\n');
    for (const k of algKeys) {
      const got = await ixfr(primary, apex, before[k.name], LIMITS, k);
      assert.equal(got.kind, 'ixfr', k.algorithm);
      assert.equal(got.serial, 2, k.algorithm);
    }
  });

  it('a key BIND does not accept fails with BADSIG (wrong secret) or BADKEY (wrong algorithm)', async () => {
    const primary = { address: '127.0.0.1', port: named.port };
    const apex = textToName('big.test');
    const k = algKeys[3];
    await assert.rejects(
      probeSerial(primary, apex, 3000, { ...k, secret: randomBytes(32) }),
      /"k-hmac-sha256": BADSIG/,
    );
    await assert.rejects(
      probeSerial(primary, apex, 3000, { ...k, algorithm: 'hmac-sha1' }),
      /"k-hmac-sha256": BADKEY/,
    );
    await assert.rejects(axfr(primary, apex, LIMITS, { ...k, secret: randomBytes(32) }), /BADSIG/);
  });

  describe('ns2 replicating with the key', () => {
    let ns2: Ns2;
    const zones = (key: string) => [
      { name: ZONE, primaries: [{ address: '127.0.0.1', port: named.port, key }] },
    ];
    const keys = (k: { algorithm: string; secret: string }) => ({ keys: { 'xfr-key': k } });

    before(async () => {
      ns2 = await startNs2({
        port: ns2Port,
        zones: zones('xfr-key'),
        extra: keys({ algorithm: 'hmac-sha256', secret: xfrSecret }),
      });
      await waitFor('zone loaded', async () => (await serialOf(ns2Port, ZONE)) === 2024010101);
    });
    after(async () => {
      await ns2?.stop();
      if (ns2) fs.rmSync(ns2.dir, { recursive: true, force: true });
    });

    it('the right key: AXFR, then IXFR after an nsupdate', async () => {
      await named.nsupdate(`zone ${ZONE}\nupdate add tsig-new.${ZONE}. 300 A 192.0.2.88\n`);
      await waitFor('IXFR applied', async () => (await serialOf(ns2Port, ZONE)) === 2024010102);
      const db = new Database(ns2.database, { readonly: true });
      const kinds = db
        .prepare("SELECT kind_performed FROM transfers WHERE zone = ? AND result = 'transferred' ORDER BY id")
        .all(ZONE)
        .map((r) => (r as { kind_performed: string }).kind_performed);
      db.close();
      assert.deepEqual(kinds, ['axfr', 'ixfr']);
      const m = parseMessage(await query(ns2Port, `tsig-new.${ZONE}`, TYPE.A));
      assert.equal(m.answer.length, 1);
    });

    for (const [what, bad, reason] of [
      ['a wrong secret', { algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') }, /BADSIG/],
      ['a wrong algorithm', { algorithm: 'hmac-sha512', secret: xfrSecret }, /BADKEY/],
    ] as const) {
      it(`${what}: the transfer fails, the log names key and reason, the old zone still answers`, async () => {
        await ns2.stop();
        ns2 = await startNs2({ port: ns2Port, dir: ns2.dir, zones: zones('xfr-key'), extra: keys(bad) });
        // The zone in SQLite is served at once, whatever the primary says.
        assert.equal(await serialOf(ns2Port, ZONE), 2024010102);
        await named.nsupdate(`zone ${ZONE}\nupdate add never-${bad.algorithm}.${ZONE}. 300 A 192.0.2.99\n`);
        await waitFor('failed refresh logged', () =>
          ns2.logLines().some((l) => l.msg === 'refresh from primary failed'),
        );
        const line = ns2.logLines().find((l) => l.msg === 'refresh from primary failed')!;
        assert.equal(line.key, 'xfr-key');
        assert.equal(line.zone, ZONE);
        assert.match(String(line.error), /TSIG key "xfr-key"/);
        assert.match(String(line.error), reason);
        const db = new Database(ns2.database, { readonly: true });
        const row = db
          .prepare('SELECT result, error FROM transfers WHERE zone = ? ORDER BY id DESC LIMIT 1')
          .get(ZONE) as { result: string; error: string };
        db.close();
        assert.equal(row.result, 'failed');
        assert.match(row.error, reason);
        // Still serving the last good version.
        assert.equal(await serialOf(ns2Port, ZONE), 2024010102);
        const answer = parseMessage(await query(ns2Port, `tsig-new.${ZONE}`, TYPE.A));
        assert.equal(answer.answer.length, 1);
        // Secrets never reach the log.
        const text = JSON.stringify(ns2.logLines());
        assert.ok(!text.includes(bad.secret) && !text.includes(xfrSecret), 'a secret appeared in the log');
      });
    }
  });
});

describe('TSIG with a primary that answers unsigned', () => {
  it('fails the SOA query, IXFR and AXFR: "reply is not signed", naming the key', async () => {
    const fake = await startFakePrimary(ZONE, new Map([[2, exampleZone(2)]]), 2);
    try {
      const primary = { address: '127.0.0.1', port: fake.port };
      const k = keyOf('hmac-sha256');
      const apex = textToName(ZONE);
      await assert.rejects(
        probeSerial(primary, apex, 3000, k),
        /TSIG key "k-hmac-sha256": reply is not signed/,
      );
      await assert.rejects(axfr(primary, apex, LIMITS, k), /TSIG key "k-hmac-sha256": reply is not signed/);
      const soa = exampleZone(1)[0];
      await assert.rejects(
        ixfr(primary, apex, { serial: 1, ttl: soa.ttl, rdata: soa.rdata }, LIMITS, k),
        /reply is not signed/,
      );
      // Without a key the same primary is fine.
      assert.equal((await probeSerial(primary, apex, 3000)).serial, 2);
    } finally {
      await fake.stop();
    }
  });
});
