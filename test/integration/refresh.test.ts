/**
 * Staying in sync with a real BIND primary (ixfr-from-differences, also-notify to ns2):
 * NOTIFY → SOA check → IXFR, several versions in one IXFR after a restart, IXFR from an edited
 * zone file, and expiry with recovery. A scripted primary covers the IXFR failures BIND does not
 * produce (refusal, inconsistent diff) and the AXFR fallback.
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
import { query, summarize } from '../harness/client.js';
import { sendNotify, startFakePrimary } from '../harness/fake-primary.js';
import { freePort, type Named, startNamed } from '../harness/named.js';
import { type Ns2, SHORT_EXPIRE_ZONE, startNs2, waitFor } from '../harness/ns2.js';
import { a, exampleZone, rr } from '../harness/records.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const ZONE = 'example.test';
const zoneText = fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8');

const reloadZone = (serial: number, www: string) => `$ORIGIN reload.test.
$TTL 300
@ SOA ns1 hostmaster ${serial} 3600 600 86400 300
  NS ns1
ns1 A 192.0.2.53
www A ${www}
static TXT "unchanged"
${Array.from({ length: 40 }, (_, i) => `host${i} A 198.51.100.${i}`).join('\n')}
`;
// The 40 hosts keep the diff small next to the zone: BIND answers AXFR-style when the delta
// exceeds max-ixfr-ratio (100% of the zone by default).

function sql<T>(ns2: Ns2, q: string, ...args: unknown[]): T[] {
  const db = new Database(ns2.database, { readonly: true });
  try {
    return db.prepare(q).all(...args) as T[];
  } finally {
    db.close();
  }
}

const serialOf = async (port: number, zone: string) => {
  const m = parseMessage(await query(port, zone, TYPE.SOA));
  const soaRr = m.answer.find((r) => r.type === TYPE.SOA);
  return soaRr ? soaRr.rdata.readUInt32BE(soaRr.rdata.length - 20) : undefined;
};

describe('refresh from a BIND primary: NOTIFY and IXFR', () => {
  let named: Named;
  let ns2: Ns2;
  let zones: unknown[];

  before(async () => {
    const port = await freePort();
    named = await startNamed({
      zones: [
        { name: ZONE, text: zoneText, alsoNotify: [port] },
        { name: 'reload.test', text: reloadZone(1, '192.0.2.1'), alsoNotify: [port], dynamic: false },
      ],
    });
    zones = [ZONE, 'reload.test'].map((name) => ({
      name,
      primaries: [{ address: '127.0.0.1', port: named.port }],
    }));
    ns2 = await startNs2({ port, zones });
    await waitFor(
      'both zones loaded',
      async () =>
        (await serialOf(port, ZONE)) !== undefined && (await serialOf(port, 'reload.test')) !== undefined,
    );
  });

  after(async () => {
    await ns2?.stop();
    await named?.stop();
  });

  // The zone's refresh is 3600 s: an answer within the liveness bound came by NOTIFY. How fast is
  // measured by `npm run bench:notify`, not here.
  it('nsupdate → NOTIFY → IXFR: the new data answers long before the refresh interval, equal to named', async () => {
    await named.nsupdate(
      `zone ${ZONE}
update add new.${ZONE}. 300 A 192.0.2.200
update delete mail.${ZONE}. AAAA
update delete ftp.${ZONE}. A
update add ftp.${ZONE}. 600 A 192.0.2.210
send`,
    );
    await waitFor(
      'ns2 to answer the new record',
      async () => summarize(await query(ns2.port, `new.${ZONE}`, TYPE.A)).answer.length === 1,
      15_000,
    );
    for (const [name, type] of [
      [`new.${ZONE}`, TYPE.A],
      [`mail.${ZONE}`, TYPE.AAAA],
      [`mail.${ZONE}`, TYPE.A],
      [`ftp.${ZONE}`, TYPE.A],
      [ZONE, TYPE.SOA],
    ] as const) {
      assert.deepEqual(
        summarize(await query(ns2.port, name, type)),
        summarize(await query(named.port, name, type)),
        name,
      );
    }
    const [change] = sql<{ kind: string; removed: number; added: number }>(
      ns2,
      'SELECT kind, removed, added FROM changes WHERE zone = ? ORDER BY id DESC LIMIT 1',
      ZONE,
    );
    assert.deepEqual({ ...change }, { kind: 'ixfr', removed: 3, added: 3 }); // SOA, AAAA, A out; SOA, 2 A in
    const [t] = sql<Record<string, unknown>>(
      ns2,
      'SELECT * FROM transfers WHERE zone = ? ORDER BY id DESC LIMIT 1',
      ZONE,
    );
    assert.equal(t.trigger, 'notify');
    assert.equal(t.kind_requested, 'ixfr');
    assert.equal(t.kind_performed, 'ixfr');
    assert.equal(t.result, 'transferred');
    assert.equal(t.fallback_reason, null);
  });

  it('an edited zone file + rndc reload reaches ns2 as IXFR from differences', async () => {
    const file = path.join(named.dir, 'reload.test.zone');
    fs.writeFileSync(file, reloadZone(2, '192.0.2.2'));
    await named.rndc(['reload', 'reload.test']);
    await waitFor('ns2 to reach serial 2', async () => (await serialOf(ns2.port, 'reload.test')) === 2);
    assert.deepEqual(
      summarize(await query(ns2.port, 'www.reload.test', TYPE.A)),
      summarize(await query(named.port, 'www.reload.test', TYPE.A)),
    );
    const [change] = sql<{ kind: string; serial_from: number; serial_to: number }>(
      ns2,
      'SELECT kind, serial_from, serial_to FROM changes WHERE zone = ? ORDER BY id DESC LIMIT 1',
      'reload.test',
    );
    const audit = sql(ns2, "SELECT * FROM transfers WHERE zone = 'reload.test' ORDER BY id DESC LIMIT 1");
    assert.deepEqual({ ...change }, { kind: 'ixfr', serial_from: 1, serial_to: 2 }, JSON.stringify(audit));
  });

  it('several updates while ns2 is stopped arrive as one IXFR of several versions on restart', async () => {
    assert.equal(await ns2.stop(), 0);
    const before = await serialOf(named.port, ZONE);
    for (let i = 1; i <= 3; i++)
      await named.nsupdate(`zone ${ZONE}\nupdate add v${i}.${ZONE}. 300 TXT "version ${i}"\nsend`);
    const target = await serialOf(named.port, ZONE);
    assert.notEqual(target, before);
    const lastChange = sql<{ id: number }>(ns2, 'SELECT max(id) AS id FROM changes')[0].id;
    const lastTransfer = sql<{ id: number }>(ns2, 'SELECT max(id) AS id FROM transfers')[0].id;
    ns2 = await startNs2({ dir: ns2.dir, port: ns2.port, zones });
    await waitFor('ns2 to catch up', async () => (await serialOf(ns2.port, ZONE)) === target);
    // The audit row is written after the new version is served: wait for it, don't race it.
    await waitFor(
      'the transfer audit row',
      () =>
        sql<{ n: number }>(
          ns2,
          "SELECT count(*) AS n FROM transfers WHERE zone = ? AND id > ? AND result = 'transferred'",
          ZONE,
          lastTransfer,
        )[0].n > 0,
    );
    const changes = sql<{ kind: string }>(
      ns2,
      'SELECT kind FROM changes WHERE zone = ? AND id > ?',
      ZONE,
      lastChange,
    );
    assert.deepEqual(
      changes.map((c) => c.kind),
      ['ixfr', 'ixfr', 'ixfr'],
    );
    const transfers = sql<{ kind_performed: string; trigger: string }>(
      ns2,
      "SELECT kind_performed, trigger FROM transfers WHERE zone = ? AND id > ? AND result = 'transferred'",
      ZONE,
      lastTransfer,
    );
    assert.equal(transfers.length, 1, 'one transfer brought all three versions');
    assert.equal(transfers[0].kind_performed, 'ixfr');
    for (let i = 1; i <= 3; i++) {
      assert.equal(summarize(await query(ns2.port, `v${i}.${ZONE}`, TYPE.TXT)).answer.length, 1);
    }
  });

  it('answers NOTIFY from others with REFUSED and for other zones with NOTAUTH', async () => {
    // From 127.0.0.1 (a primary address) it is accepted; the zone check is what differs here.
    assert.equal(await sendNotify(ns2.port, ZONE), 0);
    assert.equal(await sendNotify(ns2.port, 'other.test'), 9);
    assert.equal(await sendNotify(ns2.port, `www.${ZONE}`), 9);
  });
});

describe('expiry: primary gone past SOA expire, then back', () => {
  const text = SHORT_EXPIRE_ZONE;
  let named: Named | undefined;
  let ns2: Ns2;

  after(async () => {
    await ns2?.stop();
    await named?.stop();
  });

  it('retries, expires with SERVFAIL + EDE 24, and recovers by itself', async () => {
    named = await startNamed({ zones: [{ name: 'short.test', text, dynamic: false }] });
    const primaryPort = named.port;
    ns2 = await startNs2({
      zones: [{ name: 'short.test', primaries: [{ address: '127.0.0.1', port: primaryPort }] }],
    });
    await waitFor('zone loaded', async () => (await serialOf(ns2.port, 'short.test')) === 10);
    await named.stop();
    named = undefined;
    const stoppedAt = Date.now();
    let rcode = -1;
    let ede: number | undefined;
    await waitFor(
      'SERVFAIL after expire',
      async () => {
        const m = parseMessage(await query(ns2.port, 'short.test', TYPE.SOA, { edns: 1232 }));
        rcode = m.header.flags & 0xf;
        const opt = m.additional.find((r) => r.type === TYPE.OPT);
        ede = opt
          ? parseOptions(opt.rdata)
              .find((o) => o.code === OPTION.EDE)
              ?.data.readUInt16BE(0)
          : undefined;
        return rcode === 2;
      },
      15_000,
    );
    const waited = (Date.now() - stoppedAt) / 1000;
    assert.ok(waited >= 3, `expired after ${waited} s, before expire could pass`);
    assert.equal(ede, 24);
    // The zones row follows the served state through the writer thread: wait for its write.
    await waitFor(
      "zones.state = 'expired'",
      () =>
        sql<{ state: string }>(ns2, "SELECT state FROM zones WHERE name = 'short.test'")[0].state ===
        'expired',
    );
    const failed = sql<{ n: number }>(
      ns2,
      "SELECT count(*) AS n FROM transfers WHERE zone = 'short.test' AND result = 'failed'",
    )[0].n;
    assert.ok(failed >= 2, `retried (${failed} failed attempts)`);

    named = await startNamed({ zones: [{ name: 'short.test', text, dynamic: false }], port: primaryPort });
    await waitFor('recovery', async () => (await serialOf(ns2.port, 'short.test')) === 10, 10_000);
    await waitFor(
      'ok state recorded',
      () =>
        sql<{ state: string }>(ns2, "SELECT state FROM zones WHERE name = 'short.test'")[0].state === 'ok',
    );
  });
});

describe('IXFR failures fall back to AXFR (scripted primary)', () => {
  const v1 = exampleZone(1);
  const v2 = [...exampleZone(2), rr('added.example.test', 'A', 300, a('192.0.2.222'))];

  /** What the `transfers` row's fallback_reason says for each IXFR fault. */
  const reasons = {
    refused: /REFUSED/,
    notimp: /NOTIMP/,
    servfail: /SERVFAIL/,
    inconsistent: /inconsistent diff/,
    timeout: /no data from 127\.0\.0\.1#\d+ for 1000 ms/,
    broken: /closed the connection mid-stream/,
  } as const;
  for (const behaviour of ['refused', 'notimp', 'servfail', 'inconsistent', 'timeout', 'broken'] as const) {
    it(`IXFR answered ${behaviour} → AXFR, and the old zone serves until the AXFR succeeds`, async () => {
      const fake = await startFakePrimary(
        ZONE,
        new Map([
          [1, v1],
          [2, v2],
        ]),
        1,
      );
      const ns2 = await startNs2({
        // maxIdleSeconds 1: the IXFR timeout ends in a second, not the default minute.
        zones: [{ name: ZONE, primaries: [{ address: '127.0.0.1', port: fake.port }], maxIdleSeconds: 1 }],
      });
      try {
        await waitFor('first load', async () => (await serialOf(ns2.port, ZONE)) === 1);
        fake.current = 2;
        fake.ixfr = behaviour;
        fake.axfr = 'close';
        assert.equal(await sendNotify(ns2.port, ZONE), 0);
        await waitFor(
          'a failed attempt',
          () =>
            sql<{ n: number }>(ns2, "SELECT count(*) AS n FROM transfers WHERE result = 'failed'")[0].n > 0,
        );
        // IXFR failed, AXFR broke mid-stream: still the old version, whole.
        assert.equal(await serialOf(ns2.port, ZONE), 1);
        assert.equal(summarize(await query(ns2.port, 'added.example.test', TYPE.A)).rcode, 3);
        fake.axfr = 'ok';
        assert.equal(await sendNotify(ns2.port, ZONE), 0);
        await waitFor('serial 2', async () => (await serialOf(ns2.port, ZONE)) === 2);
        assert.equal(summarize(await query(ns2.port, 'added.example.test', TYPE.A)).answer.length, 1);
        // The audit row is written after the new version is served: wait for it.
        const transferred = () =>
          sql<Record<string, string>>(
            ns2,
            "SELECT * FROM transfers WHERE result = 'transferred' AND serial_after = 2 ORDER BY id DESC LIMIT 1",
          );
        await waitFor('the transfer recorded', async () => transferred().length === 1);
        const [t] = transferred();
        assert.equal(t.kind_requested, 'ixfr');
        assert.equal(t.kind_performed, 'axfr');
        assert.match(t.fallback_reason, reasons[behaviour]);
        // In the same check: the IXFR, then the AXFR, no retry timer in between.
        const last = fake.requests.lastIndexOf('tcp AXFR');
        assert.equal(fake.requests[last - 1], 'tcp IXFR', fake.requests.join(', '));
      } finally {
        await ns2.stop();
        await fake.stop();
      }
    });
  }

  it('a proper diff from the scripted primary is applied as IXFR', async () => {
    const fake = await startFakePrimary(
      ZONE,
      new Map([
        [1, v1],
        [2, v2],
      ]),
      1,
    );
    const ns2 = await startNs2({
      zones: [{ name: ZONE, primaries: [{ address: '127.0.0.1', port: fake.port }] }],
    });
    try {
      await waitFor('first load', async () => (await serialOf(ns2.port, ZONE)) === 1);
      fake.current = 2;
      fake.ixfr = 'diff';
      await sendNotify(ns2.port, ZONE);
      await waitFor('serial 2', async () => (await serialOf(ns2.port, ZONE)) === 2);
      const [t] = sql<Record<string, string>>(
        ns2,
        "SELECT * FROM transfers WHERE result = 'transferred' ORDER BY id DESC LIMIT 1",
      );
      assert.equal(t.kind_performed, 'ixfr');
    } finally {
      await ns2.stop();
      await fake.stop();
    }
  });
});
