/**
 * Reload against real BIND primaries (src/reload/): ns2 with `workers: 2` and a control endpoint,
 * its config file rewritten between steps, then SIGHUP or `ns2 reload` (a child process):
 * - SIGHUP adding zones: they transfer at once and answer as named does; one added below a served
 *   zone replaces the referral the workers had cached; the daemon lives on;
 * - SIGHUP removing a zone: from the `config reloaded` log line on, every UDP query (fresh source
 *   ports, so both workers, whose answer caches held the zone) and TCP is REFUSED; its rows are
 *   gone from every table (a read-only connection beside the daemon) and from `ns2 status`;
 * - `ns2 reload` with a broken config: exit 2, the problems name the key paths, old zones served;
 * - a changed primary, TSIG secret and allowTransfer, and a new key for signed queries (answered
 *   in the workers), take effect without re-transferring the unchanged zones (transfers table);
 * - dnsperf while 20 reloads (zones added and removed, ACLs changed) run: no query lost.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rcodeOf } from '../../src/dns/message.js';
import { signRequest, type TsigKey, TsigResponseVerifier } from '../../src/dns/tsig.js';
import { TYPE } from '../../src/dns/types.js';
import Database from '../../src/store/sqlite.js';
import { buildQuery, exchange, query, summarize } from '../harness/client.js';
import { digAt, freePort, type Named, startNamed } from '../harness/named.js';
import { ns2Cli as cli, type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { dnsperf } from '../harness/proc.js';

const HOST = '127.0.0.1';
const SECRET = randomBytes(32).toString('base64');
const WRONG = randomBytes(32).toString('base64');
/** A key for signed queries to ns2, known only once a reload adds it. */
const QUERY_KEY: TsigKey = { name: 'query-key', algorithm: 'hmac-sha256', secret: randomBytes(32) };
const KEYS = {
  'xfr-key': { algorithm: 'hmac-sha256', secret: SECRET },
  'query-key': { algorithm: 'hmac-sha256', secret: QUERY_KEY.secret.toString('base64') },
};
const unix = () => Math.floor(Date.now() / 1000);

/** A query signed with QUERY_KEY from a fresh socket (so a fresh port: either worker); its rcode. */
async function signedQuery(name: string, verify: boolean): Promise<number> {
  const req = signRequest(buildQuery(name, TYPE.SOA), QUERY_KEY, unix());
  const reply = await exchange(ns2.port, req.msg);
  if (verify) new TsigResponseVerifier(QUERY_KEY, req.mac, unix).verify(reply);
  return rcodeOf(reply.readUInt16BE(2));
}

/** A small zone with the shapes that differ between servers: data, CNAME, NXDOMAIN, referral. */
const zoneText = (origin: string, serial: number) => `$ORIGIN ${origin}.
$TTL 300
@     SOA  ns1 hostmaster ${serial} 3600 600 86400 300
      NS   ns1
      MX   10 mail
ns1   A    192.0.2.53
mail  A    192.0.2.25
www   A    192.0.2.80
      AAAA 2001:db8::80
alias CNAME www
*.wild TXT "wildcard"
sub   NS   ns.sub
ns.sub A   192.0.2.153
${Array.from({ length: 50 }, (_, i) => `h${i} A 10.0.0.${i}`).join('\n')}
`;

const SAMPLE = (z: string): [string, number][] => [
  [z, TYPE.SOA],
  [z, TYPE.NS],
  [z, TYPE.MX],
  [`www.${z}`, TYPE.A],
  [`www.${z}`, TYPE.AAAA],
  [`alias.${z}`, TYPE.A],
  [`x.wild.${z}`, TYPE.TXT],
  [`www.sub.${z}`, TYPE.A],
  [`nope.${z}`, TYPE.A],
  [`mail.${z}`, TYPE.TXT],
];

let named: Named;
let named2: Named;
let ns2: Ns2;
let controlPort: number;
let config: Record<string, unknown>;

const zone = (name: string, extra: Record<string, unknown> = {}, port = named.port) => ({
  name,
  primaries: [{ address: HOST, port }],
  ...extra,
});

/** Rewrites ns2's config file: the base (listen, database, …) with `change` applied. */
function writeConfig(change: (c: Record<string, unknown>) => void): void {
  const c = structuredClone(config);
  change(c);
  fs.writeFileSync(ns2.configFile, `${JSON.stringify(c, null, 2)}\n`);
}

/** SIGHUP, then waits for the reload's log line (written once every worker has applied it). */
async function sighup(): Promise<Record<string, unknown>> {
  const seen = ns2
    .logLines()
    .filter((l) => l.msg === 'config reloaded' || String(l.msg).startsWith('reload refused')).length;
  process.kill(ns2.pid, 'SIGHUP');
  let line: Record<string, unknown> | undefined;
  await waitFor('the reload to be logged', () => {
    const lines = ns2
      .logLines()
      .filter((l) => l.msg === 'config reloaded' || String(l.msg).startsWith('reload refused'));
    line = lines[seen];
    return line !== undefined;
  });
  return line!;
}

async function postReload(): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://${HOST}:${controlPort}/reload`, { method: 'POST' });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** One value from ns2's database, read as an operator would beside the running daemon (read-only). */
function sql(text: string): string {
  const db = new Database(ns2.database, { readonly: true, fileMustExist: true });
  try {
    return String(db.prepare(text).pluck().get());
  } finally {
    db.close();
  }
}

/** Rows of `zone` in every table keyed by it (directly, by zone id, rr seq or change id). */
function rowsOf(z: string): Record<string, number> {
  const id = `(SELECT id FROM zones WHERE name = '${z}')`;
  const changes = `(SELECT id FROM changes WHERE zone = '${z}')`;
  const counts = {
    zones: `SELECT count(*) FROM zones WHERE name = '${z}'`,
    rr: `SELECT count(*) FROM rr WHERE zone_id = ${id}`,
    records: `SELECT count(*) FROM records WHERE zone = '${z}'`,
    changes: `SELECT count(*) FROM changes WHERE zone = '${z}'`,
    change_records: `SELECT count(*) FROM change_records WHERE change_id IN ${changes}`,
    transfers: `SELECT count(*) FROM transfers WHERE zone = '${z}'`,
  };
  const out: Record<string, number> = {};
  for (const [k, q] of Object.entries(counts)) out[k] = Number(sql(q));
  // rr_text and the text backlogs have no zone column: nothing may point at a deleted zone.
  out.orphan_rr_text = Number(sql('SELECT count(*) FROM rr_text WHERE seq NOT IN (SELECT seq FROM rr)'));
  out.orphan_rr = Number(sql('SELECT count(*) FROM rr WHERE zone_id NOT IN (SELECT id FROM zones)'));
  out.orphan_text_backlog = Number(
    sql('SELECT count(*) FROM text_backlog WHERE zone_id NOT IN (SELECT id FROM zones)'),
  );
  return out;
}

const transferredRows = (z: string) =>
  Number(sql(`SELECT count(*) FROM transfers WHERE zone = '${z}' AND result = 'transferred'`));

async function assertSameAsNamed(z: string, primary: Named = named): Promise<void> {
  for (const [name, type] of SAMPLE(z)) {
    assert.deepEqual(
      summarize(await query(ns2.port, name, type)),
      summarize(await query(primary.port, name, type)),
      `${name} ${type}`,
    );
  }
}

const answers = async (z: string) => summarize(await query(ns2.port, z, TYPE.SOA)).answer.length === 1;

before(async () => {
  const keys = `key "xfr-key" { algorithm hmac-sha256; secret "${SECRET}"; };`;
  named = await startNamed({
    keys,
    zones: [
      { name: 'a.test', text: zoneText('a.test', 1) },
      { name: 'b.test', text: zoneText('b.test', 1) },
      { name: 'c.test', text: zoneText('c.test', 1) },
      { name: 'k.test', text: zoneText('k.test', 1), allowTransfer: 'key "xfr-key";' },
      { name: 'e.test', text: zoneText('e.test', 1) },
    ],
  });
  // A second primary with the same a.test (same serial): switching to it needs no transfer. It
  // also serves sub.a.test, which named only delegates.
  named2 = await startNamed({
    zones: [
      { name: 'a.test', text: zoneText('a.test', 1) },
      { name: 'sub.a.test', text: zoneText('sub.a.test', 1) },
    ],
  });
  controlPort = await freePort();
  ns2 = await startNs2({
    zones: [zone('a.test'), zone('b.test')],
    extra: { control: { address: HOST, port: controlPort }, workers: 2 },
  });
  config = JSON.parse(fs.readFileSync(ns2.configFile, 'utf8')) as Record<string, unknown>;
  await waitFor(
    'a.test and b.test loaded',
    async () => (await answers('a.test')) && (await answers('b.test')),
  );
});

after(async () => {
  await ns2?.stop();
  await named?.stop();
  await named2?.stop();
  if (ns2) fs.rmSync(ns2.dir, { recursive: true, force: true });
});

describe('reload', () => {
  it('SIGHUP adding a zone: it is transferred at once and answers as named does; ns2 keeps running', async () => {
    assert.equal(summarize(await query(ns2.port, 'c.test', TYPE.SOA)).rcode, 5); // REFUSED: not ours yet
    // Below a.test, a referral (cached by the workers) until sub.a.test is a zone of ours.
    for (let i = 0; i < 20; i++) {
      const referral = summarize(await query(ns2.port, 'www.sub.a.test', TYPE.A));
      assert.equal(referral.aa, false);
      assert.equal(referral.answer.length, 0);
    }
    writeConfig((c) => {
      c.zones = [zone('a.test'), zone('b.test'), zone('c.test'), zone('sub.a.test', {}, named2.port)];
    });
    const line = await sighup();
    assert.equal(line.msg, 'config reloaded');
    assert.deepEqual(line.added, ['c.test', 'sub.a.test']);
    assert.deepEqual(line.removed, []);
    await waitFor(
      'c.test and sub.a.test answered',
      async () => (await answers('c.test')) && (await answers('sub.a.test')),
    );
    // Over UDP from fresh ports: both workers, whose caches held the REFUSED and the referral.
    await assertSameAsNamed('c.test');
    await assertSameAsNamed('sub.a.test', named2);
    for (let i = 0; i < 20; i++)
      assert.equal(summarize(await query(ns2.port, 'www.sub.a.test', TYPE.A)).aa, true);
    const first = ns2.logLines().find((l) => l.msg === 'zone transferred' && l.zone === 'c.test');
    assert.equal(first?.trigger, 'reload');
    assert.equal(first?.kind, 'axfr');
    assert.ok(process.kill(ns2.pid, 0), 'ns2 still runs after SIGHUP');
  });

  it('SIGHUP removing a zone: REFUSED on every thread at once, its rows gone, not in ns2 status', async () => {
    // Fill the workers' answer caches with b.test answers first.
    for (let i = 0; i < 40; i++)
      assert.equal(summarize(await query(ns2.port, `www.b.test`, TYPE.A)).rcode, 0);
    const before = rowsOf('b.test');
    assert.ok(
      before.zones === 1 && before.rr > 50 && before.changes >= 1 && before.transfers >= 1,
      JSON.stringify(before),
    );
    writeConfig((c) => {
      c.zones = [zone('a.test'), zone('c.test')];
    });
    const line = await sighup();
    assert.deepEqual(line.removed, ['b.test', 'sub.a.test']);
    for (let i = 0; i < 40; i++) {
      const name = i % 2 ? 'www.b.test' : 'b.test';
      assert.equal(summarize(await query(ns2.port, name, TYPE.A)).rcode, 5, `${name} over UDP (query ${i})`);
    }
    assert.equal(summarize(await query(ns2.port, 'www.b.test', TYPE.A, { tcp: true })).rcode, 5);
    const removed = ns2.logLines().find((l) => l.msg === 'zone removed: no longer served, its rows deleted');
    assert.equal(removed?.zone, 'b.test');
    assert.equal((removed?.deleted as Record<string, number> | undefined)?.rr, before.rr);
    assert.deepEqual(rowsOf('b.test'), {
      zones: 0,
      rr: 0,
      records: 0,
      changes: 0,
      change_records: 0,
      transfers: 0,
      orphan_rr_text: 0,
      orphan_rr: 0,
      orphan_text_backlog: 0,
    });
    const status = await cli('status', '--config', ns2.configFile);
    assert.equal(status.code, 0, status.err);
    assert.match(status.out, /^a\.test /m);
    assert.doesNotMatch(status.out, /b\.test/);
    await assertSameAsNamed('a.test');
  });

  it('ns2 reload with a broken config: exit 2, the problems name the keys, the old zones stay served', async () => {
    writeConfig((c) => {
      c.keys = { 'xfr-key': { algorithm: 'hmac-sha256', secretFile: '/nonexistent/xfr.key' } };
      c.zones = [
        zone('a.test'),
        zone('k.test', { primaries: [{ address: HOST, port: named.port, key: 'no-such-key' }] }),
      ];
    });
    const r = await cli('reload', '--config', ns2.configFile);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.err, /keys\["xfr-key"\]\.secretFile: cannot read "\/nonexistent\/xfr\.key" \(ENOENT\)/);
    assert.match(r.err, /zones\[1\]\.primaries\[0\]\.key: unknown key "no-such-key"/);
    assert.match(r.err, /keeps running the previous one/);
    const refused = ns2
      .logLines()
      .filter((l) => String(l.msg).startsWith('reload refused'))
      .at(-1);
    assert.ok(
      ((refused?.problems as string[] | undefined) ?? []).some((p) =>
        p.startsWith('keys["xfr-key"].secretFile'),
      ),
    );
    // Still the old config: c.test served, k.test not.
    await assertSameAsNamed('c.test');
    await assertSameAsNamed('a.test');
    assert.equal(summarize(await query(ns2.port, 'k.test', TYPE.SOA)).rcode, 5);
  });

  it('a changed primary, TSIG secret and allowTransfer take effect without re-transferring', async () => {
    // k.test with the wrong secret: the primary refuses it (BADSIG), nothing loads.
    writeConfig((c) => {
      c.keys = { 'xfr-key': { algorithm: 'hmac-sha256', secret: WRONG } };
      c.zones = [
        zone('a.test'),
        zone('c.test'),
        zone('k.test', { primaries: [{ address: HOST, port: named.port, key: 'xfr-key' }] }),
      ];
    });
    const added = await postReload();
    assert.equal(added.status, 200, JSON.stringify(added.body));
    assert.deepEqual(added.body.added, ['k.test']);
    await waitFor(
      'the failed first transfer of k.test',
      async () =>
        Number(sql(`SELECT count(*) FROM transfers WHERE zone = 'k.test' AND result = 'failed'`)) > 0,
    );
    assert.equal(summarize(await query(ns2.port, 'k.test', TYPE.SOA)).rcode, 2); // SERVFAIL: not loaded
    assert.equal(transferredRows('k.test'), 0);
    const axfrRefused = await digAt(ns2.port, ['+tcp', 'AXFR', 'a.test']);
    assert.match(axfrRefused, /Transfer failed/);

    // Not yet a key of ours: NOTAUTH (BADKEY) from every thread.
    for (let i = 0; i < 10; i++) assert.equal(await signedQuery('a.test', false), 9);

    const aBefore = transferredRows('a.test');
    const cBefore = transferredRows('c.test');
    const serialA = sql(`SELECT serial FROM zones WHERE name = 'a.test'`);
    writeConfig((c) => {
      c.keys = KEYS;
      c.zones = [
        zone('a.test', { allowTransfer: [HOST] }, named2.port),
        zone('c.test'),
        zone('k.test', { primaries: [{ address: HOST, port: named.port, key: 'xfr-key' }] }),
      ];
    });
    const changed = await postReload();
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual(changed.body.keys, ['query-key', 'xfr-key']);
    assert.deepEqual(changed.body.changed, [{ zone: 'a.test', fields: ['allowTransfer', 'primaries'] }]);
    assert.deepEqual(changed.body.restartRequired, []);
    assert.doesNotMatch(
      JSON.stringify(ns2.logLines()),
      new RegExp(SECRET.slice(0, 16).replace(/[+/]/g, '.')),
    );

    // The new key verifies on every thread, and our replies are signed with it.
    for (let i = 0; i < 10; i++) assert.equal(await signedQuery('a.test', true), 0);
    // allowTransfer: now ours to give.
    const axfr = await digAt(ns2.port, ['+tcp', 'AXFR', 'a.test']);
    assert.doesNotMatch(axfr, /Transfer failed/);
    assert.match(axfr, /^www\.a\.test\.\s+300\s+IN\s+A\s+192\.0\.2\.80$/m);
    // Primary: the next check asks named2; same serial, so nothing is transferred.
    const refresh = await cli('refresh', 'a.test', '--config', ns2.configFile);
    assert.equal(refresh.code, 0, refresh.err);
    assert.equal(refresh.out, `a.test: up to date at serial ${serialA} (${HOST}#${named2.port})\n`);
    // Key: k.test now transfers with the right secret (by its retry timer, or this refresh).
    const k = await cli('refresh', 'k.test', '--config', ns2.configFile);
    assert.equal(k.code, 0, k.err);
    assert.match(
      k.out,
      new RegExp(`^k\\.test: (transferred serial 1 from |up to date at serial 1 \\()${HOST}#${named.port}`),
    );
    assert.equal(transferredRows('k.test'), 1);
    await assertSameAsNamed('k.test');
    // The unchanged zones were not transferred again by any of it.
    assert.equal(transferredRows('a.test'), aBefore);
    assert.equal(transferredRows('c.test'), cBefore);
    assert.equal(sql(`SELECT serial FROM zones WHERE name = 'a.test'`), serialA);
    // listen needs a restart: said in the reply (and the log), the rest applied.
    writeConfig((c) => {
      c.keys = KEYS;
      c.listen = [{ address: HOST, port: ns2.port + 1 }];
      c.zones = [zone('a.test', { allowTransfer: [HOST] }, named2.port), zone('c.test')];
    });
    const restart = await postReload();
    assert.equal(restart.status, 200);
    assert.deepEqual(restart.body.restartRequired, ['listen']);
    assert.deepEqual(restart.body.removed, ['k.test']);
    assert.equal(summarize(await query(ns2.port, 'k.test', TYPE.SOA)).rcode, 5);
    const cliRestart = await cli('reload', '--config', ns2.configFile);
    assert.equal(cliRestart.code, 0, cliRestart.err);
    assert.match(cliRestart.out, /restart needed for: listen/);
  });

  it('dnsperf during 20 reloads: no query lost', async () => {
    const file = path.join(ns2.dir, 'reload-queries.txt');
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const z = ['a.test', 'c.test', 'e.test'][i % 3];
      lines.push(i % 4 === 3 ? `nx${i}.${z} A` : `h${i % 50}.${z} A`);
    }
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const perf = dnsperf({ port: ns2.port, file, seconds: 12, qps: 3000 });
    let perfDone = false;
    void perf.then(() => {
      perfDone = true;
    });
    const replies: number[] = [];
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 20; i++) {
      // Odd reloads add e.test, even ones remove it again; the ACL of c.test flips.
      writeConfig((c) => {
        c.keys = KEYS;
        c.zones = [
          zone('a.test', { allowTransfer: [HOST] }, named2.port),
          zone('c.test', { allowTransfer: i % 2 ? [HOST] : [] }),
          ...(i % 2 ? [zone('e.test')] : []),
        ];
      });
      const r = await postReload();
      replies.push(r.status);
      assert.equal(r.body.ok, true, JSON.stringify(r.body));
      await new Promise((res) => setTimeout(res, 300));
    }
    assert.equal(perfDone, false, 'all 20 reloads ran while dnsperf was sending');
    const out = await perf;
    const sent = Number(/Queries sent:\s+(\d+)/.exec(out)?.[1]);
    const lost = Number(/Queries lost:\s+(\d+)/.exec(out)?.[1]);
    console.log(`dnsperf during 20 reloads: sent ${sent}, lost ${lost}`);
    assert.deepEqual(new Set(replies), new Set([200]));
    assert.ok(sent > 10_000, out);
    assert.equal(lost, 0, out);
    const reloads = ns2.logLines().filter((l) => l.msg === 'config reloaded' && l.trigger === 'control');
    assert.ok(reloads.length >= 20);
    await assertSameAsNamed('a.test');
  });

  it('ran on two serving workers, and nothing but the refused config was logged as an error', () => {
    const udp = ns2.logLines().filter((l) => l.msg === 'listening on UDP');
    assert.equal(new Set(udp.map((l) => l.worker)).size, 2, JSON.stringify(udp));
    const errors = ns2
      .logLines()
      // pino levels as numbers (50 = error) or as names.
      .filter(
        (l) =>
          (Number(l.level) >= 50 || l.level === 'error' || l.level === 'fatal') &&
          !String(l.msg).startsWith('reload refused'),
      );
    assert.deepEqual(errors, []);
  });
});
