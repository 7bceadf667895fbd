/**
 * Catalog zones (RFC 9432) against real servers. A BIND 9.18 primary serves a catalog and its
 * members; ns2 is configured with the catalog only. nsupdate adds, removes and re-labels members
 * and breaks the catalog on purpose; dig (not ns2's decoder) judges what ns2 answers, SQLite what
 * it stores. ns2 also produces a catalog of what it serves, which a BIND 9.18 secondary with
 * `catalog-zones` consumes from ns2, following additions and removals.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from '../../src/store/sqlite.js';
import { catalogConsumerConf, freePort, type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { digAt, HOST, type Proc, run, startProc } from '../harness/proc.js';

const CAT = 'catalog.example';
const PRODUCED = 'catalog.ns2.test';

const memberZone = (name: string, serial = 1) => `$ORIGIN ${name}.
$TTL 300
@ SOA ns1 hostmaster ${serial} 3600 600 86400 300
  NS ns1
ns1 A 192.0.2.53
www A 192.0.2.80
`;

const catalogZone = `$ORIGIN ${CAT}.
$TTL 0
@ SOA invalid. invalid. 1 3600 600 2419200 0
  NS invalid.
version TXT "2"
m1.zones PTR a.example.
m2.zones PTR b.example.
group.m2.zones TXT "xfr"
`;

/** dig's status for NAME TYPE at PORT (dig decodes it: no ns2 code judges ns2's answer). */
async function status(port: number, name: string, type = 'SOA'): Promise<string> {
  const out = await digAt(port, [name, type, '+norec', '+noall', '+comments', '+tries=1', '+time=2']).catch(
    () => '', // not listening yet (dig exits 9)
  );
  return /status: (\w+)/.exec(out)?.[1] ?? 'no answer';
}

async function soaSerial(port: number, name: string): Promise<number | undefined> {
  const out = await digAt(port, [name, 'SOA', '+norec', '+short', '+tries=1', '+time=2']);
  const f = out.trim().split(/\s+/);
  return f.length >= 7 ? Number(f[2]) : undefined;
}

function rows<T>(ns2: Ns2, q: string, ...args: unknown[]): T[] {
  const db = new Database(ns2.database, { readonly: true });
  try {
    return db.prepare(q).all(...args) as T[];
  } finally {
    db.close();
  }
}

describe('catalog zones from a BIND primary', () => {
  let named: Named;
  let ns2: Ns2;
  let ns2Port: number;
  let extra: Record<string, unknown>;
  let controlPort: number;

  before(async () => {
    ns2Port = await freePort();
    controlPort = await freePort();
    const notify = [ns2Port];
    named = await startNamed({
      zones: [
        { name: CAT, text: catalogZone, alsoNotify: notify },
        ...['a.example', 'b.example', 'c.example', 'd.example'].map((name) => ({
          name,
          text: memberZone(name),
          alsoNotify: notify,
        })),
      ],
    });
    extra = {
      // Members have 5 RRs, the catalog a dozen: a catalog of 10× this is refused by the
      // transfer limit, like any zone too big.
      defaults: { maxRecords: 40 },
      control: { address: HOST, port: controlPort },
      catalogs: [
        {
          name: CAT,
          primaries: [{ address: HOST, port: named.port }],
          groups: { xfr: { allowTransfer: [HOST] } },
        },
      ],
    };
    ns2 = await startNs2({ port: ns2Port, zones: [], extra });
  });

  after(async () => {
    await ns2?.stop();
    await named?.stop();
  });

  it('serves every member of the catalog, and REFUSES queries for the catalog itself', async () => {
    await waitFor('members served', async () => (await status(ns2Port, 'b.example')) === 'NOERROR');
    await waitFor('a.example served', async () => (await status(ns2Port, 'a.example')) === 'NOERROR');
    assert.equal(await soaSerial(ns2Port, 'a.example'), await soaSerial(named.port, 'a.example'));
    assert.equal(await status(ns2Port, CAT), 'REFUSED');
    assert.equal(await status(ns2Port, `m1.zones.${CAT}`, 'PTR'), 'REFUSED');
    assert.equal(await status(ns2Port, 'c.example'), 'REFUSED'); // not a member (yet)
    const stored = rows<{ name: string; catalog: string | null; catalog_label: string | null }>(
      ns2,
      'SELECT name, catalog, catalog_label FROM zones ORDER BY name',
    );
    assert.deepEqual(stored, [
      { name: 'a.example', catalog: CAT, catalog_label: 'm1' },
      { name: 'b.example', catalog: CAT, catalog_label: 'm2' },
      { name: CAT, catalog: null, catalog_label: null },
    ]);
    const metrics = await (await fetch(`http://${HOST}:${controlPort}/metrics`)).text();
    assert.match(metrics, /^ns2_catalog_members\{catalog="catalog\.example"\} 2$/m);
  });

  it("applies the member's group settings (allowTransfer from group xfr)", async () => {
    const axfr = (zone: string) => digAt(ns2Port, [zone, 'AXFR', '+tries=1', '+time=3']);
    assert.match(await axfr('b.example'), /www\.b\.example\.\s+300\s+IN\s+A\s+192\.0\.2\.80/);
    assert.match(await axfr('a.example'), /Transfer failed/);
  });

  // The catalog's refresh is far longer than the wait: the member came by NOTIFY and IXFR.
  it('adds a member after nsupdate adds it to the catalog', async () => {
    await named.nsupdate(`zone ${CAT}\nupdate add m3.zones.${CAT} 0 PTR c.example.`);
    await waitFor('c.example served', async () => (await status(ns2Port, 'c.example')) === 'NOERROR');
  });

  it('removes a member: REFUSED, and every row of it gone', async () => {
    await named.nsupdate(`zone ${CAT}\nupdate delete m1.zones.${CAT} PTR`);
    await waitFor('a.example refused', async () => (await status(ns2Port, 'a.example')) === 'REFUSED');
    for (const table of [
      'zones WHERE name',
      'records WHERE zone',
      'changes WHERE zone',
      'transfers WHERE zone',
    ])
      assert.deepEqual(rows(ns2, `SELECT 1 FROM ${table} = ?`, 'a.example'), [], table);
  });

  it('re-transfers a member whose unique label changes (RFC 9432 §5.4)', async () => {
    const loads = () =>
      rows<{ n: number }>(
        ns2,
        "SELECT count(*) AS n FROM changes WHERE zone = 'c.example' AND serial_from IS NULL",
      )[0].n;
    assert.equal(loads(), 1);
    await named.nsupdate(
      `zone ${CAT}\nupdate delete m3.zones.${CAT} PTR\nupdate add m3b.zones.${CAT} 0 PTR c.example.`,
    );
    // A reset deletes the zone's history and loads it afresh: one first load, under the new label.
    await waitFor('c.example relabelled', () => {
      const r = rows<{ catalog_label: string }>(
        ns2,
        "SELECT catalog_label FROM zones WHERE name = 'c.example'",
      );
      return r[0]?.catalog_label === 'm3b';
    });
    await waitFor('c.example served again', async () => (await status(ns2Port, 'c.example')) === 'NOERROR');
    const log = ns2.logLines().filter((l) => l.zone === 'c.example' && /reset/.test(String(l.msg)));
    assert.equal(log.length, 1);
  });

  it('refuses a catalog listing one zone twice, or of another version, and keeps the last good one', async () => {
    const refused = () =>
      ns2.logLines().filter((l) => l.msg === 'catalog refused: keeping the last good member list');
    await named.nsupdate(
      `zone ${CAT}\nupdate add dup.zones.${CAT} 0 PTR b.example.\nupdate add m4.zones.${CAT} 0 PTR d.example.`,
    );
    await waitFor('duplicate refused', () => refused().some((l) => /listed twice/.test(String(l.err))));
    assert.equal(await status(ns2Port, 'd.example'), 'REFUSED'); // nothing of the bad version applied
    assert.equal(await status(ns2Port, 'b.example'), 'NOERROR');
    await named.nsupdate(`zone ${CAT}\nupdate delete dup.zones.${CAT} PTR`);
    await waitFor('d.example served', async () => (await status(ns2Port, 'd.example')) === 'NOERROR');
    await named.nsupdate(
      `zone ${CAT}\nupdate delete version.${CAT} TXT\nupdate add version.${CAT} 0 TXT "1"\nupdate delete m4.zones.${CAT} PTR`,
    );
    await waitFor('version 1 refused', () => refused().some((l) => /version "1"/.test(String(l.err))));
    assert.equal(await status(ns2Port, 'd.example'), 'NOERROR');
    await named.nsupdate(
      `zone ${CAT}\nupdate delete version.${CAT} TXT\nupdate add version.${CAT} 0 TXT "2"`,
    );
    await waitFor('d.example removed', async () => (await status(ns2Port, 'd.example')) === 'REFUSED');
    // A member name outside the DNS name syntax ns2 accepts for zones (a space in a label).
    await named.nsupdate(
      `zone ${CAT}\nupdate add m5.zones.${CAT} 0 PTR bad\\032name.example.\nupdate add m6.zones.${CAT} 0 PTR d.example.`,
    );
    await waitFor('odd member refused', () => refused().some((l) => /not allowed/.test(String(l.err))));
    assert.equal(await status(ns2Port, 'd.example'), 'REFUSED');
    await named.nsupdate(`zone ${CAT}\nupdate delete m5.zones.${CAT} PTR\nupdate delete m6.zones.${CAT} PTR`);
  });

  it('refuses a catalog of 10× maxRecords: the transfer fails, the last good catalog stays', async () => {
    const serial = await soaSerial(ns2Port, 'b.example');
    const adds = Array.from(
      { length: 400 },
      (_, i) => `update add big${i}.zones.${CAT} 0 PTR big${i}.example.`,
    );
    await named.nsupdate(`zone ${CAT}\n${adds.join('\n')}`);
    await waitFor('catalog transfer refused', () =>
      rows<{ error: string | null }>(
        ns2,
        "SELECT error FROM transfers WHERE zone = ? AND result = 'failed'",
        CAT,
      ).some((r) => /exceeds maxRecords/.test(r.error ?? '')),
    );
    assert.equal(await status(ns2Port, 'big1.example'), 'REFUSED');
    assert.equal(await status(ns2Port, 'b.example'), 'NOERROR');
    assert.equal(await soaSerial(ns2Port, 'b.example'), serial);
  });

  it('serves the stored members at once after a restart, primary down', async () => {
    await ns2.stop();
    await named.stop();
    ns2 = await startNs2({ port: ns2Port, dir: ns2.dir, zones: [], extra });
    assert.equal(await status(ns2Port, 'b.example'), 'NOERROR');
    assert.equal(await status(ns2Port, 'c.example'), 'NOERROR');
    assert.equal(await status(ns2Port, 'a.example'), 'REFUSED');
  });
});

describe('a catalog produced by ns2, consumed by a BIND 9.18 secondary', () => {
  let named: Named;
  let ns2: Ns2;
  let bind: Proc;
  let bindPort: number;
  let dir: string;

  before(async () => {
    const ns2Port = await freePort();
    bindPort = await freePort();
    named = await startNamed({
      zones: ['p.example', 'q.example'].map((name) => ({
        name,
        text: memberZone(name),
        alsoNotify: [ns2Port],
      })),
    });
    const primary = { address: HOST, port: named.port };
    ns2 = await startNs2({
      port: ns2Port,
      zones: [
        { name: 'p.example', primaries: [primary], allowTransfer: [HOST] },
        { name: 'q.example', primaries: [primary], allowTransfer: [HOST] },
      ],
      extra: {
        control: { address: HOST, port: await freePort() },
        produceCatalog: {
          name: PRODUCED,
          allowTransfer: [HOST],
          alsoNotify: [{ address: HOST, port: bindPort }],
        },
      },
    });
    await waitFor('ns2 serves its zones', async () => (await status(ns2Port, 'q.example')) === 'NOERROR');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-catz-bind-'));
    const conf = path.join(dir, 'named.conf');
    fs.writeFileSync(conf, catalogConsumerConf(dir, bindPort, PRODUCED, ns2Port));
    bind = startProc('named-catz', 'named', ['-g', '-n', '1', '-c', conf], {
      cwd: dir,
      logFile: path.join(dir, 'named.log'),
      unref: true,
      removeDirOnExit: dir,
    });
  });

  after(async () => {
    await bind?.stop('SIGTERM', 5000);
    await ns2?.stop();
    await named?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('BIND serves every zone ns2 serves, from ns2', async () => {
    for (const z of ['p.example', 'q.example'])
      await waitFor(`BIND serves ${z}`, async () => (await status(bindPort, z)) === 'NOERROR', 20_000);
    assert.equal(await soaSerial(bindPort, 'p.example'), await soaSerial(named.port, 'p.example'));
  });

  it('BIND follows a zone removed from ns2 (reload) and one added back', async () => {
    const cfg = JSON.parse(fs.readFileSync(ns2.configFile, 'utf8'));
    const full = cfg.zones;
    cfg.zones = full.filter((z: { name: string }) => z.name !== 'q.example');
    fs.writeFileSync(ns2.configFile, JSON.stringify(cfg));
    process.kill(ns2.pid, 'SIGHUP');
    await waitFor(
      'BIND drops q.example',
      async () => (await status(bindPort, 'q.example')) === 'REFUSED',
      20_000,
    );
    assert.equal(await status(bindPort, 'p.example'), 'NOERROR');
    cfg.zones = full;
    fs.writeFileSync(ns2.configFile, JSON.stringify(cfg));
    process.kill(ns2.pid, 'SIGHUP');
    await waitFor(
      'BIND serves q.example again',
      async () => (await status(bindPort, 'q.example')) === 'NOERROR',
      20_000,
    );
  });
});

describe('catalog zones from a Knot 3.2 primary (catalog-role: generate)', () => {
  const KCAT = 'catalog.knot';
  let knot: Proc;
  let ns2: Ns2;
  let dir: string;
  let ns2Port: number;
  let knotPort: number;

  /** Knot's config for these member zones; `knotc reload` applies a new one. */
  const conf = (members: string[]) => `server:
    listen: ${HOST}@${knotPort}
    rundir: ${dir}
database:
    storage: ${dir}
control:
    listen: ${dir}/knot.sock
log:
  - target: stderr
    any: info
remote:
  - id: ns2
    address: ${HOST}@${ns2Port}
acl:
  - id: xfr
    address: ${HOST}
    action: transfer
template:
  - id: default
    storage: ${dir}
    file: "%s.zone"
    acl: xfr
    notify: ns2
zone:
  - domain: ${KCAT}
    catalog-role: generate
${members.map((m) => `  - domain: ${m}\n    catalog-role: member\n    catalog-zone: ${KCAT}\n`).join('')}`;

  const knotc = async (...args: string[]) => {
    const r = await run('knotc', ['-s', `${dir}/knot.sock`, ...args], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`knotc ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  };

  before(async () => {
    ns2Port = await freePort();
    knotPort = await freePort();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-catz-knot-'));
    for (const z of ['k1.example', 'k2.example', 'k3.example'])
      fs.writeFileSync(path.join(dir, `${z}.zone`), memberZone(z));
    fs.writeFileSync(path.join(dir, 'knot.conf'), conf(['k1.example', 'k2.example']));
    knot = startProc('knotd-catz', 'knotd', ['-c', path.join(dir, 'knot.conf')], {
      cwd: dir,
      logFile: path.join(dir, 'knot.log'),
      unref: true,
      removeDirOnExit: dir,
    });
    // Knot answers REFUSED for the catalog it generates (as ns2 does for catalogs it consumes).
    await waitFor('knot serves k1.example', async () => (await status(knotPort, 'k1.example')) === 'NOERROR');
    ns2 = await startNs2({
      port: ns2Port,
      zones: [],
      extra: { catalogs: [{ name: KCAT, primaries: [{ address: HOST, port: knotPort }] }] },
    });
  });

  after(async () => {
    await ns2?.stop();
    await knot?.stop('SIGTERM', 5000);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("serves Knot's members, then follows a member added and one removed", async () => {
    for (const z of ['k1.example', 'k2.example'])
      await waitFor(`ns2 serves ${z}`, async () => (await status(ns2Port, z)) === 'NOERROR');
    assert.equal(await status(ns2Port, 'k3.example'), 'REFUSED');
    fs.writeFileSync(path.join(dir, 'knot.conf'), conf(['k2.example', 'k3.example']));
    await knotc('reload');
    await waitFor(
      'ns2 serves k3.example',
      async () => (await status(ns2Port, 'k3.example')) === 'NOERROR',
      10_000,
    );
    await waitFor(
      'ns2 drops k1.example',
      async () => (await status(ns2Port, 'k1.example')) === 'REFUSED',
      10_000,
    );
    assert.equal(await status(ns2Port, 'k2.example'), 'NOERROR');
    assert.deepEqual(
      rows<{ name: string }>(ns2, 'SELECT name FROM zones WHERE catalog = ? ORDER BY name', KCAT).map(
        (r) => r.name,
      ),
      ['k2.example', 'k3.example'],
    );
  });
});
