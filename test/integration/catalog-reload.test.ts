/**
 * Catalogs changed by a reload (SIGHUP), as `rndc reconfig` with a new `catalog-zones` block does
 * for BIND, and a catalog pulled over TLS (RFC 9103) with its members. One BIND 9.18 primary:
 *
 *   cat1.example (plain)     m1 → r1.example, m2 → r2.example (group "xfr"), m3 → s.example
 *   cat2.example (TLS only)  m1 → r1.example (the same unique label), t1 → t1.example (TLS only)
 *
 * ns2 starts with s.example as a static zone and no catalog; each step rewrites its config and
 * sends SIGHUP: cat1 added (members answer as named does; s.example stays static), the group's
 * allowTransfer opened and closed again (dig AXFR allowed, then refused; no transfer of the member
 * because of it), cat2 added over TLS (named's log shows the catalog and member AXFRs on TLS
 * sessions; plain TCP is refused by named), cat1 removed (r2.example REFUSED with no rows left,
 * r1.example handed to cat2 with its data, s.example untouched), t1.example made a static zone
 * (data kept, no transfer) and a member again once the static zone goes; a restart with it static
 * serves it from the database as a static zone.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from '../../src/store/sqlite.js';
import { makeCa } from '../harness/certs.js';
import { type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { digAt, freePort, HOST } from '../harness/proc.js';

const CAT1 = 'cat1.example';
const CAT2 = 'cat2.example';

const memberZone = (name: string) => `$ORIGIN ${name}.
$TTL 300
@ SOA ns1 hostmaster 7 3600 600 86400 300
  NS ns1
ns1 A 192.0.2.53
www A 192.0.2.80
`;

const catalog = (name: string, members: string) => `$ORIGIN ${name}.
$TTL 0
@ SOA invalid. invalid. 1 3600 600 2419200 0
  NS invalid.
version TXT "2"
${members}
`;

const dig = (port: number, args: string[]) =>
  digAt(port, [...args, '+norec', '+tries=1', '+time=2']).catch(() => '');

async function status(port: number, name: string): Promise<string> {
  return /status: (\w+)/.exec(await dig(port, [name, 'SOA', '+noall', '+comments']))?.[1] ?? 'no answer';
}

/** named's "TLS server session created for ADDR#PORT" lines: the client ports that came over TLS. */
const tlsClientPorts = (log: string): Set<string> =>
  new Set([...log.matchAll(/TLS server session created for 127\.0\.0\.1#(\d+)/g)].map((m) => m[1]));

/** The client ports named logged an AXFR of `zone` from. */
const axfrPorts = (log: string, zone: string): string[] =>
  [...log.matchAll(/127\.0\.0\.1#(\d+) \(([^)]+)\): transfer of '([^/]+)\/IN': AXFR started/g)]
    .filter((m) => m[3] === zone)
    .map((m) => m[1]);

describe('catalogs changed by reload (SIGHUP), and a catalog over TLS', () => {
  let dir: string;
  let named: Named;
  let ns2: Ns2;
  let tlsPort: number;
  let tlsPrimary: Record<string, unknown>;
  const catalogs: Record<string, unknown>[] = [];

  const rows = <T>(q: string, ...args: unknown[]): T[] => {
    const db = new Database(ns2.database, { readonly: true });
    try {
      return db.prepare(q).all(...args) as T[];
    } finally {
      db.close();
    }
  };
  const transferred = (zone: string) =>
    rows<{ n: number }>(
      "SELECT count(*) AS n FROM transfers WHERE zone = ? AND result = 'transferred'",
      zone,
    )[0].n;
  const catalogOf = (zone: string) =>
    rows<{ catalog: string | null }>('SELECT catalog FROM zones WHERE name = ?', zone)[0]?.catalog;

  /** Rewrites the config's `catalogs` (and `zones`), sends SIGHUP, resolves to the reload's log line. */
  async function reload(
    next: Record<string, unknown>[],
    zones?: unknown[],
  ): Promise<Record<string, unknown>> {
    const cfg = JSON.parse(fs.readFileSync(ns2.configFile, 'utf8'));
    cfg.catalogs = next;
    if (zones) cfg.zones = zones;
    fs.writeFileSync(ns2.configFile, JSON.stringify(cfg));
    const done = () => ns2.logLines().filter((l) => l.msg === 'config reloaded');
    const seen = done().length;
    process.kill(ns2.pid, 'SIGHUP');
    await waitFor('the reload', () => done().length > seen);
    return done()[seen];
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-catreload-'));
    const ca = await makeCa(path.join(dir, 'ca'));
    const cert = await ca.issue('primary', 'primary.test');
    const ns2Port = await freePort();
    tlsPort = await freePort();
    const notify = [ns2Port];
    const tlsOnly = `port ${tlsPort} transport tls`;
    named = await startNamed({
      debugLevel: 1, // logs "TLS server session created for …"
      keys: `tls primary { cert-file "${cert.certFile}"; key-file "${cert.keyFile}"; };`,
      extraOptions: `  listen-on port ${tlsPort} tls primary { ${HOST}; };`,
      zones: [
        {
          name: CAT1,
          text: catalog(
            CAT1,
            'm1.zones PTR r1.example.\nm2.zones PTR r2.example.\ngroup.m2.zones TXT "xfr"\nm3.zones PTR s.example.',
          ),
          alsoNotify: notify,
        },
        {
          name: CAT2,
          text: catalog(CAT2, 'm1.zones PTR r1.example.\nt1.zones PTR t1.example.'),
          alsoNotify: notify,
          allowTransferOn: tlsOnly,
        },
        ...['r1.example', 'r2.example', 's.example'].map((name) => ({
          name,
          text: memberZone(name),
          alsoNotify: notify,
        })),
        { name: 't1.example', text: memberZone('t1.example'), alsoNotify: notify, allowTransferOn: tlsOnly },
      ],
    });
    tlsPrimary = { address: HOST, port: tlsPort, tls: { caFile: ca.caFile, serverName: 'primary.test' } };
    ns2 = await startNs2({
      port: ns2Port,
      zones: [{ name: 's.example', primaries: [{ address: HOST, port: named.port }] }],
    });
    await waitFor('s.example served', async () => (await status(ns2.port, 's.example')) === 'NOERROR');
  });

  after(async () => {
    await ns2?.stop();
    await named?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a catalog added by SIGHUP: its members answer as named does; a static zone stays static', async () => {
    catalogs.push({
      name: CAT1,
      primaries: [{ address: HOST, port: named.port }],
      groups: { xfr: { allowTransfer: [] } },
    });
    const line = await reload(catalogs);
    assert.deepEqual(line.live, ['catalogs']);
    assert.deepEqual(line.restartRequired, []);
    for (const z of ['r1.example', 'r2.example'])
      await waitFor(`${z} served`, async () => (await status(ns2.port, z)) === 'NOERROR');
    for (const q of [
      ['r1.example', 'SOA'],
      ['www.r2.example', 'A'],
    ])
      assert.equal(await dig(ns2.port, [...q, '+short']), await dig(named.port, [...q, '+short']));
    assert.equal(await status(ns2.port, CAT1), 'REFUSED');
    assert.deepEqual(rows('SELECT name, catalog FROM zones ORDER BY name'), [
      { name: CAT1, catalog: null },
      { name: 'r1.example', catalog: CAT1 },
      { name: 'r2.example', catalog: CAT1 },
      { name: 's.example', catalog: null },
    ]);
  });

  it("a group's allowTransfer changed by SIGHUP: dig AXFR allowed, then refused; nothing transferred", async () => {
    const axfr = () => dig(ns2.port, ['r2.example', 'AXFR']);
    assert.match(await axfr(), /Transfer failed/);
    const before = transferred('r2.example');
    assert.equal(before, 1);
    const changed = () =>
      ns2.logLines().filter((l) => l.zone === CAT1 && /settings changed/.test(String(l.msg)));
    const open = { ...catalogs[0], groups: { xfr: { allowTransfer: [HOST] } } };
    await reload([open]);
    assert.equal(changed().at(-1)?.members, 1); // only r2.example is in group xfr
    assert.match(await axfr(), /www\.r2\.example\.\s+300\s+IN\s+A\s+192\.0\.2\.80/);
    await reload(catalogs);
    assert.match(await axfr(), /Transfer failed/);
    assert.equal(transferred('r2.example'), before);
  });

  it('a catalog added over TLS: catalog and member come over TLS (named log), plain TCP refused', async () => {
    catalogs.push({ name: CAT2, primaries: [tlsPrimary] });
    await reload(catalogs);
    await waitFor('t1.example served', async () => (await status(ns2.port, 't1.example')) === 'NOERROR');
    assert.equal(await dig(ns2.port, ['www.t1.example', 'A', '+short']), '192.0.2.80\n');
    const log = named.log();
    const tls = tlsClientPorts(log);
    for (const zone of [CAT2, 't1.example']) {
      const ports = axfrPorts(log, zone);
      assert.equal(ports.length, 1, `${zone}: ${ports}`);
      assert.ok(tls.has(ports[0]), `the AXFR of ${zone} came over TLS`);
    }
    assert.match(await dig(named.port, [CAT2, 'AXFR']), /Transfer failed/);
    assert.deepEqual(
      rows<{ primary_addr: string }>(
        'SELECT DISTINCT primary_addr FROM transfers WHERE zone IN (?, ?)',
        CAT2,
        't1.example',
      ),
      [{ primary_addr: `${HOST}#${tlsPort}` }],
    );
    // r1.example is listed by both: the first catalog keeps it.
    assert.equal(catalogOf('r1.example'), CAT1);
  });

  it('a catalog removed by SIGHUP: its member REFUSED with no rows left; one listed elsewhere moves', async () => {
    const r1Transfers = transferred('r1.example');
    catalogs.shift();
    const line = await reload(catalogs);
    assert.deepEqual(line.errors, []);
    // The reload's log line comes once the removal holds on every serving thread.
    assert.equal(await status(ns2.port, 'r2.example'), 'REFUSED');
    for (const zone of ['r2.example', CAT1])
      for (const table of [
        'zones WHERE name',
        'records WHERE zone',
        'changes WHERE zone',
        'transfers WHERE zone',
      ])
        assert.deepEqual(rows(`SELECT 1 FROM ${table} = ?`, zone), [], `${zone}: ${table}`);
    assert.equal(await status(ns2.port, 'r1.example'), 'NOERROR');
    assert.equal(catalogOf('r1.example'), CAT2);
    assert.equal(transferred('r1.example'), r1Transfers); // same unique label: its data is kept
    assert.equal(await status(ns2.port, 's.example'), 'NOERROR');
    assert.equal(catalogOf('s.example'), null);
    const moved = ns2.logLines().filter((l) => /member changed owner/.test(String(l.msg)));
    assert.deepEqual(
      moved.map((l) => [l.zone, l.from, l.catalog]),
      [['r1.example', CAT1, CAT2]],
    );
  });

  it('a member configured as a static zone keeps its data; listed again once the static zone goes', async () => {
    const t1 = { name: 't1.example', primaries: [tlsPrimary] };
    const before = transferred('t1.example');
    const line = await reload(catalogs, [t1]);
    assert.deepEqual(line.errors, []);
    assert.deepEqual(line.removed, ['s.example']);
    assert.equal(await status(ns2.port, 's.example'), 'REFUSED'); // listed by no catalog now
    assert.equal(await status(ns2.port, 't1.example'), 'NOERROR');
    assert.equal(catalogOf('t1.example'), null);
    assert.equal(transferred('t1.example'), before);
    await reload(catalogs, []);
    // Deleted as a static zone, then a member of cat2 again: transferred afresh (over TLS).
    await waitFor('t1.example a member again', () => catalogOf('t1.example') === CAT2);
    await waitFor('t1.example served', async () => (await status(ns2.port, 't1.example')) === 'NOERROR');
    assert.equal(transferred('t1.example'), 1);
  });

  it('a restart with a member now in zones serves it as a static zone with the data it had', async () => {
    const before = transferred('t1.example');
    await ns2.stop();
    const cfg = JSON.parse(fs.readFileSync(ns2.configFile, 'utf8'));
    ns2 = await startNs2({
      port: ns2.port,
      dir: ns2.dir,
      zones: [{ name: 't1.example', primaries: [tlsPrimary] }],
      extra: { catalogs: cfg.catalogs },
    });
    assert.equal(await status(ns2.port, 't1.example'), 'NOERROR'); // from the database, at once
    await waitFor('membership cleared', () => catalogOf('t1.example') === null);
    await waitFor('start-up check done', () =>
      ns2.logLines().some((l) => l.zone === 't1.example' && l.msg === 'zone is up to date'),
    );
    assert.equal(await status(ns2.port, 't1.example'), 'NOERROR');
    assert.equal(transferred('t1.example'), before);
  });
});
