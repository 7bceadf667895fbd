/**
 * The control endpoint end to end: a real BIND primary, `ns2 serve` with `control` set, and the
 * operator commands (`ns2 refresh`, `retransfer`, `history`, `diff`) run as child processes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TYPE } from '../../src/dns/types.js';
import { query, summarize } from '../harness/client.js';
import { freePort, type Named, startNamed } from '../harness/named.js';
import { ns2Cli as cli, type Ns2, startNs2, waitFor } from '../harness/ns2.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = path.join(ROOT, 'test/fixtures');
const ZONE = 'example.test';
const SERIAL = 2024010101;
const zoneText = fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8');

let named: Named;
let ns2: Ns2;
let controlPort: number;
let base: string;

before(async () => {
  named = await startNamed({ zones: [{ name: ZONE, text: zoneText }] });
  controlPort = await freePort();
  base = `http://127.0.0.1:${controlPort}`;
  ns2 = await startNs2({
    zones: [{ name: ZONE, primaries: [{ address: '127.0.0.1', port: named.port }] }],
    extra: { control: { address: '127.0.0.1', port: controlPort } },
  });
  await waitFor('ns2 to load the zone', async () => {
    const r = summarize(await query(ns2.port, ZONE, TYPE.SOA));
    return r.rcode === 0 && r.answer.length === 1;
  });
});

after(async () => {
  await ns2?.stop();
  await named?.stop();
  if (ns2) fs.rmSync(ns2.dir, { recursive: true, force: true });
});

describe('control endpoint', () => {
  it('GET /health', async () => {
    const r = await fetch(`${base}/health`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await r.json(), { ok: true });
  });

  it('ns2 refresh: up to date, exit 0', async () => {
    const r = await cli('refresh', ZONE, '--config', ns2.configFile);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `${ZONE}: up to date at serial ${SERIAL} (127.0.0.1#${named.port})\n`);
  });

  it('ns2 retransfer: transferred by AXFR even though the serial is unchanged', async () => {
    const r = await cli('retransfer', `${ZONE}.`, '--config', ns2.configFile);
    assert.equal(r.code, 0, r.err);
    // `(axfr)` once the refresher reports the kind of transfer.
    assert.match(
      r.out,
      new RegExp(
        `^${ZONE}: transferred serial ${SERIAL} from 127\\.0\\.0\\.1#${named.port}( \\(axfr\\))?\n$`,
      ),
    );
  });

  it('GET /zones: the zone row with ISO timestamps and expires_in', async () => {
    const r = await fetch(`${base}/zones`);
    assert.equal(r.status, 200);
    const zones = (await r.json()) as Record<string, unknown>[];
    assert.equal(zones.length, 1);
    const z = zones[0];
    assert.equal(z.name, ZONE);
    assert.equal(z.serial, SERIAL);
    assert.equal(z.state, 'ok');
    assert.equal(z.primary, `127.0.0.1#${named.port}`);
    assert.ok((z.records as number) > 20);
    for (const k of ['last_refresh', 'last_transfer', 'next_refresh', 'expires_at']) {
      assert.match(String(z[k]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, k);
    }
    // SOA expire is 86400 s and the zone was refreshed moments ago.
    assert.ok((z.expires_in as number) > 86_000 && (z.expires_in as number) <= 86_400, String(z.expires_in));
  });

  it('unknown zones are 404, wrong methods 405, other paths 404', async () => {
    const unknown = await fetch(`${base}/zones/nothere.test/refresh`, { method: 'POST' });
    assert.equal(unknown.status, 404);
    assert.deepEqual(await unknown.json(), { error: 'unknown zone' });
    const get = await fetch(`${base}/zones/${ZONE}/retransfer`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    await get.body?.cancel();
    const other = await fetch(`${base}/zones/${ZONE}/frobnicate`, { method: 'POST' });
    assert.equal(other.status, 404);
    await other.body?.cancel();
    const cross = await fetch(`${base}/health`, { headers: { origin: 'http://evil.example' } });
    assert.equal(cross.status, 403);
    await cross.body?.cancel();
  });

  it('ns2 refresh of a zone the daemon does not serve fails with exit 1', async () => {
    const r = await cli('refresh', 'nothere.test', '--config', ns2.configFile);
    assert.equal(r.code, 1);
    assert.equal(r.err, 'ns2 refresh: zone "nothere.test" is not configured in the running daemon\n');
  });

  it('ns2 refresh without a control endpoint, or with no daemon behind it, fails clearly', async () => {
    const config = JSON.parse(fs.readFileSync(ns2.configFile, 'utf8'));
    const noControl = path.join(ns2.dir, 'no-control.json');
    fs.writeFileSync(noControl, JSON.stringify({ ...config, control: undefined }));
    let r = await cli('refresh', ZONE, '--config', noControl);
    assert.equal(r.code, 1);
    assert.match(r.err, /^ns2 refresh: no "control" endpoint in the config/);

    const deadPort = await freePort();
    const dead = path.join(ns2.dir, 'dead-control.json');
    fs.writeFileSync(dead, JSON.stringify({ ...config, control: { address: '127.0.0.1', port: deadPort } }));
    r = await cli('retransfer', ZONE, '--config', dead);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      new RegExp(
        `^ns2 retransfer: cannot reach the daemon's control endpoint at 127\\.0\\.0\\.1:${deadPort} \\(ECONNREFUSED\\)`,
      ),
    );
  });

  it('ns2 history: the initial load and the retransfer', async () => {
    const r = await cli('history', ZONE, '--config', ns2.configFile);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trimEnd().split('\n');
    assert.match(lines[0], /^id\s+applied_at\s+kind\s+serials\s+removed\s+added\s+primary$/);
    assert.equal(lines.length, 3, r.out);
    const p = `127\\.0\\.0\\.1#${named.port}`;
    const ts = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.000Z';
    assert.match(lines[1], new RegExp(`^1\\s+${ts}\\s+axfr\\s+- → ${SERIAL}\\s+0\\s+[1-9]\\d*\\s+${p}$`));
    assert.match(lines[2], new RegExp(`^2\\s+${ts}\\s+axfr\\s+${SERIAL} → ${SERIAL}\\s+0\\s+0\\s+${p}$`));
  });

  it('after a change on the primary: ns2 refresh transfers it and ns2 diff shows it', async () => {
    await named.nsupdate(`zone ${ZONE}\nupdate add new.${ZONE}. 300 IN A 192.0.2.77\nsend`);
    const next = SERIAL + 1;
    await waitFor('the primary to bump its serial', async () =>
      (await named.dig([ZONE, 'SOA', '+short'])).includes(` ${next} `),
    );
    const r = await cli('refresh', ZONE, '--config', ns2.configFile);
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      new RegExp(
        `^${ZONE}: transferred serial ${next} from 127\\.0\\.0\\.1#${named.port}( \\((ixfr|axfr)\\))?\n$`,
      ),
    );
    const d = await cli('diff', ZONE, String(SERIAL), String(next), '--config', ns2.configFile);
    assert.equal(d.code, 0, d.err);
    const soa = (s: number) => `ns1.example.test. hostmaster.example.test. ${s} 3600 600 86400 300`;
    assert.equal(
      d.out,
      [
        `--- ${ZONE} serial ${SERIAL}`,
        `+++ ${ZONE} serial ${next}`,
        `-${ZONE}.\t3600\tIN\tSOA\t${soa(SERIAL)}`,
        `+${ZONE}.\t3600\tIN\tSOA\t${soa(next)}`,
        `+new.${ZONE}.\t300\tIN\tA\t192.0.2.77`,
        '',
      ].join('\n'),
    );
    const broken = await cli('diff', ZONE, '1', String(next), '--config', ns2.configFile);
    assert.equal(broken.code, 1);
    assert.match(broken.err, /^ns2 diff: example\.test: /);
  });
});
