/**
 * Metrics, health and readiness through their real interface: `ns2 serve` with a BIND primary,
 * scraped over HTTP as Prometheus does, queried with `dig` as a client does.
 *
 * - nsupdate on named → NOTIFY → IXFR: the serial gauge follows, the IXFR counter, the duration
 *   histogram's count and the bytes counter move, the NOTIFY is counted as accepted;
 * - dig over UDP (two serving workers, repeated questions so most are answer-cache hits) and over
 *   TCP: ns2_queries_total and ns2_query_types_total move by exactly the queries sent;
 * - /readyz 503 naming the zone before its first transfer (primary down), 200 after, 503 naming it
 *   expired once the primary has been gone past the SOA expire; `ns2 healthcheck` agrees;
 * - the `metrics` listener serves /metrics, /healthz, /readyz and nothing else;
 * - a config without zones logs a warning and is not ready.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseMessage } from '../../src/dns/message.js';
import { TYPE } from '../../src/dns/types.js';
import { query } from '../harness/client.js';
import { digAt, freePort, type Named, startNamed } from '../harness/named.js';
import { type Ns2, ns2Cli, SHORT_EXPIRE_ZONE, startNs2, waitFor } from '../harness/ns2.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ZONE = 'example.test';
const zoneText = fs.readFileSync(path.join(ROOT, 'test/fixtures/example.test.zone'), 'utf8');
const HOST = '127.0.0.1';

/** One sample of the exposition: metric name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the subset prom-client writes). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

class Scrape {
  constructor(readonly samples: Sample[]) {}
  /** The value of the one sample matching; 0 when there is none (a counter not yet moved). */
  get(name: string, labels: Record<string, string> = {}): number {
    const found = this.samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    return found.reduce((n, s) => n + s.value, 0);
  }
  has(name: string, labels: Record<string, string> = {}): boolean {
    return this.samples.some(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
  }
}

async function scrape(port: number): Promise<Scrape> {
  const r = await fetch(`http://${HOST}:${port}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return new Scrape(parseExposition(await r.text()));
}

/** ns2 answers DNS before its HTTP listeners are up: wait for one to accept. */
async function listening(port: number): Promise<void> {
  await waitFor(`HTTP on port ${port}`, () =>
    fetch(`http://${HOST}:${port}/healthz`).then(
      (r) => r.status === 200,
      () => false,
    ),
  );
}

async function readyz(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://${HOST}:${port}/readyz`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

const serialOf = async (port: number, zone: string) => {
  const m = parseMessage(await query(port, zone, TYPE.SOA));
  const soa = m.answer.find((r) => r.type === TYPE.SOA);
  return soa ? soa.rdata.readUInt32BE(soa.rdata.length - 20) : undefined;
};

describe('metrics of a secondary of BIND: transfers, NOTIFY, queries', () => {
  let named: Named;
  let ns2: Ns2;
  let metricsPort: number;
  let controlPort: number;

  before(async () => {
    const port = await freePort();
    named = await startNamed({ zones: [{ name: ZONE, text: zoneText, alsoNotify: [port] }] });
    metricsPort = await freePort();
    controlPort = await freePort();
    ns2 = await startNs2({
      port,
      zones: [{ name: ZONE, primaries: [{ address: HOST, port: named.port }] }],
      extra: {
        workers: 2,
        control: { address: HOST, port: controlPort },
        metrics: { address: HOST, port: metricsPort },
      },
    });
    await waitFor('zone loaded', async () => (await serialOf(ns2.port, ZONE)) !== undefined);
    await listening(metricsPort);
    // The first transfer's audit row (and so its counter) follows the commit.
    await waitFor('first transfer counted', async () =>
      (await scrape(metricsPort)).has('ns2_transfers_total', { zone: ZONE, result: 'transferred' }),
    );
  });

  after(async () => {
    await ns2?.stop();
    await named?.stop();
    if (ns2) fs.rmSync(ns2.dir, { recursive: true, force: true });
  });

  it('nsupdate → NOTIFY → IXFR moves the serial gauge, the IXFR counter and the histogram', async () => {
    const s0 = await scrape(metricsPort);
    const serial0 = await serialOf(named.port, ZONE);
    assert.equal(s0.get('ns2_zone_serial', { zone: ZONE }), serial0);
    assert.equal(s0.get('ns2_zone_state', { zone: ZONE, state: 'ok' }), 1);
    assert.equal(s0.get('ns2_zone_state', { zone: ZONE, state: 'expired' }), 0);
    await named.nsupdate(`zone ${ZONE}\nupdate add metrics.${ZONE}. 300 A 192.0.2.99\nsend`);
    const serial1 = await serialOf(named.port, ZONE);
    assert.notEqual(serial1, serial0);
    const ixfr = { zone: ZONE, kind: 'ixfr', result: 'transferred' };
    let s1 = s0;
    await waitFor('the IXFR counted', async () => {
      s1 = await scrape(metricsPort);
      return s1.get('ns2_transfers_total', ixfr) > s0.get('ns2_transfers_total', ixfr);
    });
    assert.equal(s1.get('ns2_transfers_total', ixfr), s0.get('ns2_transfers_total', ixfr) + 1);
    assert.equal(s1.get('ns2_zone_serial', { zone: ZONE }), serial1);
    assert.equal(s1.get('ns2_zone_primary_serial', { zone: ZONE }), serial1);
    assert.equal(
      s1.get('ns2_transfer_duration_seconds_count', { kind: 'ixfr' }),
      s0.get('ns2_transfer_duration_seconds_count', { kind: 'ixfr' }) + 1,
    );
    assert.ok(
      s1.get('ns2_transfer_duration_seconds_sum', { kind: 'ixfr' }) >
        s0.get('ns2_transfer_duration_seconds_sum', { kind: 'ixfr' }),
    );
    assert.ok(
      s1.get('ns2_transfer_bytes_total', { zone: ZONE }) > s0.get('ns2_transfer_bytes_total', { zone: ZONE }),
    );
    assert.ok(
      s1.get('ns2_notify_received_total', { zone: ZONE, result: 'accepted' }) >
        s0.get('ns2_notify_received_total', { zone: ZONE, result: 'accepted' }),
    );
    const lastTransfer = s1.get('ns2_zone_last_transfer_timestamp_seconds', { zone: ZONE });
    assert.ok(Math.abs(lastTransfer - Date.now() / 1000) < 60, `last transfer at ${lastTransfer}`);
    assert.ok(s1.get('ns2_zone_expiry_timestamp_seconds', { zone: ZONE }) > Date.now() / 1000);
    assert.ok(s1.get('ns2_zone_records', { zone: ZONE }) > 10);
    // No fallback happened: the IXFR applied.
    assert.equal(s1.get('ns2_ixfr_fallbacks_total', { zone: ZONE }), 0);
    // Process metrics (collectDefaultMetrics).
    assert.ok(s1.get('process_resident_memory_bytes') > 0);
  });

  it('query counters match the dig queries sent over UDP (workers, cache hits) and TCP', async () => {
    const logs = ns2.logLines().filter((l) => l.msg === 'listening on UDP' && l.worker !== undefined);
    const before = await scrape(metricsPort);
    // One dig per batch of questions: each question its own query, from its own socket (so the
    // kernel spreads them over both workers); repeats of one question are answer-cache hits.
    const repeat = (args: string[], n: number) => Array.from({ length: n }, () => args).flat();
    await digAt(ns2.port, ['+nocookie', '+tries=1', ...repeat([`www.${ZONE}`, 'A'], 30)]);
    await digAt(ns2.port, ['+nocookie', '+tries=1', ...repeat([`nope.${ZONE}`, 'AAAA'], 12)]);
    await digAt(ns2.port, ['+nocookie', '+tries=1', ...repeat(['www.elsewhere.example', 'TXT'], 5)]);
    await digAt(ns2.port, ['+tcp', '+tries=1', ...repeat([ZONE, 'MX'], 7)]);
    const after = await scrape(metricsPort);
    const delta = (name: string, labels: Record<string, string>) =>
      after.get(name, labels) - before.get(name, labels);
    assert.equal(delta('ns2_queries_total', { transport: 'udp', rcode: 'NOERROR' }), 30);
    assert.equal(delta('ns2_queries_total', { transport: 'udp', rcode: 'NXDOMAIN' }), 12);
    assert.equal(delta('ns2_queries_total', { transport: 'udp', rcode: 'REFUSED' }), 5);
    assert.equal(delta('ns2_queries_total', { transport: 'tcp', rcode: 'NOERROR' }), 7);
    assert.equal(delta('ns2_queries_total', {}), 54);
    assert.equal(delta('ns2_query_types_total', { qtype: 'A' }), 30);
    assert.equal(delta('ns2_query_types_total', { qtype: 'AAAA' }), 12);
    assert.equal(delta('ns2_query_types_total', { qtype: 'TXT' }), 5);
    assert.equal(delta('ns2_query_types_total', { qtype: 'MX' }), 7);
    assert.equal(delta('ns2_query_types_total', {}), 54);
    // The UDP answers came from the serving workers when the batched addon is here.
    if (logs.length > 0) assert.equal(logs.length, 2, 'two serving workers listening');
  });

  it('/healthz and /readyz on the control endpoint', async () => {
    const control = controlPort;
    const h = await fetch(`http://${HOST}:${control}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { ok: true });
    const r = await readyz(control);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ready: true, zones: 1, not_ready: [] });
    assert.equal((await fetch(`http://${HOST}:${control}/metrics`)).status, 200);
  });

  it('the metrics listener serves /metrics, /healthz, /readyz only', async () => {
    const base = `http://${HOST}:${metricsPort}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    for (const p of ['/zones', '/health/x', '/', `/zones/${ZONE}/refresh`]) {
      assert.equal((await fetch(`${base}${p}`)).status, 404, p);
    }
    const post = await fetch(`${base}/zones/${ZONE}/retransfer`, { method: 'POST' });
    assert.equal(post.status, 404);
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
    // A scrape by host name (Prometheus sends the target's name as Host) is served.
    const byName = await fetch(`${base}/metrics`, { headers: { host: `ns2-a.example:${metricsPort}` } });
    assert.equal(byName.status, 200);
  });
});

describe('readiness: before the first transfer, loaded, expired', () => {
  let named: Named | undefined;
  let ns2: Ns2;

  after(async () => {
    await ns2?.stop();
    await named?.stop();
    if (ns2) fs.rmSync(ns2.dir, { recursive: true, force: true });
  });

  it('503 naming the zone, then 200, then 503 expired; ns2 healthcheck agrees', async () => {
    const primaryPort = await freePort(); // nobody there yet
    const metricsPort = await freePort();
    ns2 = await startNs2({
      zones: [{ name: 'short.test', primaries: [{ address: HOST, port: primaryPort }] }],
      extra: { metrics: { address: HOST, port: metricsPort } },
    });
    await listening(metricsPort);
    let r = await readyz(metricsPort);
    assert.equal(r.status, 503);
    assert.deepEqual(r.body, {
      ready: false,
      zones: 1,
      not_ready: [{ zone: 'short.test', reason: 'not_loaded' }],
    });
    // The same server without HTTP endpoints in the config (the image's default): the healthcheck
    // queries the listen address and reads the database.
    const plainConfig = path.join(ns2.dir, 'plain.json');
    const { metrics: _, ...plain } = JSON.parse(fs.readFileSync(ns2.configFile, 'utf8'));
    fs.writeFileSync(plainConfig, JSON.stringify(plain));
    for (const file of [ns2.configFile, plainConfig]) {
      const unready = await ns2Cli('healthcheck', '--config', file);
      assert.equal(unready.code, 1, file);
      assert.match(unready.err, /^unhealthy: short\.test not_loaded/, file);
    }
    await waitFor('a failed attempt counted', async () =>
      (await scrape(metricsPort)).has('ns2_transfers_total', { zone: 'short.test', result: 'failed' }),
    );
    const s0 = await scrape(metricsPort);
    assert.equal(s0.get('ns2_zone_state', { zone: 'short.test', state: 'never_loaded' }), 1);
    assert.equal(s0.has('ns2_zone_serial', { zone: 'short.test' }), false);

    named = await startNamed({
      zones: [{ name: 'short.test', text: SHORT_EXPIRE_ZONE, dynamic: false }],
      port: primaryPort,
    });
    await waitFor('ready', async () => (await readyz(metricsPort)).status === 200, 20_000);
    r = await readyz(metricsPort);
    assert.deepEqual(r.body, { ready: true, zones: 1, not_ready: [] });
    for (const file of [ns2.configFile, plainConfig]) {
      const ready = await ns2Cli('healthcheck', '--config', file);
      assert.equal(ready.code, 0, `${file}: ${ready.err}`);
      assert.match(ready.out, /^ok: 1 zone ready/);
    }
    const s1 = await scrape(metricsPort);
    assert.equal(s1.get('ns2_zone_serial', { zone: 'short.test' }), 10);
    assert.equal(s1.get('ns2_zone_retry_seconds', { zone: 'short.test' }) > 0, true);

    await named.stop();
    named = undefined;
    await waitFor('expired', async () => (await readyz(metricsPort)).status === 503, 20_000);
    r = await readyz(metricsPort);
    const notReady = r.body.not_ready as { zone: string; reason: string; expired_at?: string }[];
    assert.equal(notReady.length, 1);
    assert.equal(notReady[0].zone, 'short.test');
    assert.equal(notReady[0].reason, 'expired');
    assert.ok(Date.parse(notReady[0].expired_at ?? '') <= Date.now());
    const s2 = await scrape(metricsPort);
    assert.equal(s2.get('ns2_zone_state', { zone: 'short.test', state: 'expired' }), 1);
    assert.equal(s2.get('ns2_zone_state', { zone: 'short.test', state: 'ok' }), 0);
    assert.ok(s2.get('ns2_zone_expiry_timestamp_seconds', { zone: 'short.test' }) <= Date.now() / 1000);
    const expired = await ns2Cli('healthcheck', '--config', plainConfig);
    assert.equal(expired.code, 1);
    assert.match(expired.err, /short\.test expired/);
  });

  it('a config without zones warns at start and is never ready', async () => {
    const metricsPort = await freePort();
    const empty = await startNs2({ zones: [], extra: { metrics: { address: HOST, port: metricsPort } } });
    try {
      await listening(metricsPort);
      assert.ok(
        empty
          .logLines()
          .some((l) =>
            l.level === 40 || l.level === 'warn' ? /no zones configured/.test(String(l.msg)) : false,
          ),
        'a warning about no zones',
      );
      const r = await readyz(metricsPort);
      assert.equal(r.status, 503);
      assert.deepEqual(r.body, { ready: false, zones: 0, error: 'no zones configured', not_ready: [] });
      const hc = await ns2Cli('healthcheck', '--config', empty.configFile);
      assert.equal(hc.code, 1);
      assert.match(hc.err, /no zones configured/);
    } finally {
      await empty.stop();
      fs.rmSync(empty.dir, { recursive: true, force: true });
    }
  });
});
