/**
 * The query path in-process, A/B between builds: CPU nanoseconds per query of the UDP answer-cache
 * hit (QueryHandler.fromCache, what a serving worker runs for most queries) and of the full path
 * (QueryHandler.handle on a query that cannot be cached), no sockets. For a change on the hot path
 * (e.g. the query counters of control/metrics.ts) where dnsperf's noise on a shared machine would
 * hide a few nanoseconds:
 *
 *   node --import tsx bench/query-path.ts DIST_A DIST_B [...]   # e.g. /tmp/main/dist dist
 *
 * Each DIR is a compiled `dist/` (`npx tsc` in a `git archive` of another commit). Builds alternate
 * in rotated order for ROUNDS rounds; CPU time (process.cpuUsage, so other sessions' load matters
 * less than for wall time) is reported as the median over rounds after two warm-up rounds. Give the
 * same build twice to see the noise floor.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROUNDS = 15;
const BATCHES = 20_000;
const BATCH = 64;
const SLOT = 512;

interface Handler {
  fromCache(data: Buffer, off: number, len: number, out: Buffer, outOff: number): number;
  handle(
    msg: Buffer,
    transport: 'udp' | 'tcp',
    peer: string,
    signed?: { key: string; reserve: number },
  ): unknown;
}

const silent = { info() {}, warn() {}, error() {}, debug() {}, child: () => silent };

/** A plain query for `name` A, ID `id`. */
function query(name: string, id: number): Buffer {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  return Buffer.concat([
    Buffer.from([id >> 8, id & 0xff, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels,
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
}

async function setup(dist: string) {
  const url = (f: string) => pathToFileURL(path.resolve(dist, f)).href;
  const { QueryHandler } = await import(url('serve/handler.js'));
  const { ZoneTable } = await import(url('serve/zone-table.js'));
  // No zones: every answer is REFUSED, cacheable, so the hit path runs for real.
  const h: Handler = new QueryHandler(new ZoneTable(), { udpSize: 1232, cacheBytes: 1 << 20 }, silent);
  const msgs = Array.from({ length: BATCH }, (_, i) => query(`h${i}.example.test`, i));
  const data = Buffer.alloc(BATCH * SLOT);
  msgs.forEach((m, i) => m.copy(data, i * SLOT));
  for (const m of msgs) h.handle(m, 'udp', '127.0.0.1');
  return { h, msgs, data, out: Buffer.alloc(BATCH * SLOT) };
}
type Setup = Awaited<ReturnType<typeof setup>>;

/** CPU ns per call of `fn` over `calls` calls. */
function cpuNs(calls: number, fn: () => void): number {
  const t = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t);
  return ((d.user + d.system) * 1000) / calls;
}

function hits(s: Setup): void {
  let n = 0;
  for (let b = 0; b < BATCHES; b++)
    for (let i = 0; i < BATCH; i++) n += s.h.fromCache(s.data, i * SLOT, s.msgs[i].length, s.out, i * SLOT);
  if (n === 0) throw new Error('no cache hits');
}

function full(s: Setup): void {
  // A signed request is never cached: the whole dispatch runs each time.
  const signed = { key: 'k', reserve: 0 };
  for (let b = 0; b < BATCHES / 8; b++)
    for (let i = 0; i < BATCH; i++) s.h.handle(s.msgs[i], 'tcp', '', signed);
}

const dists = process.argv.slice(2);
if (dists.length < 1) {
  process.stderr.write('usage: node --import tsx bench/query-path.ts DIST [DIST...]\n');
  process.exit(2);
}
const builds = await Promise.all(dists.map(setup));
const results = dists.map(() => ({ hit: [] as number[], full: [] as number[] }));
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < builds.length; k++) {
    const i = (k + r) % builds.length;
    results[i].hit.push(cpuNs(BATCHES * BATCH, () => hits(builds[i])));
    results[i].full.push(cpuNs((BATCHES / 8) * BATCH, () => full(builds[i])));
  }
}
const median = (a: number[]) => {
  const s = a.slice(2).sort((x, y) => x - y);
  return s[s.length >> 1];
};
for (const [i, d] of dists.entries())
  process.stdout.write(
    `${d.padEnd(40)} cache hit ${median(results[i].hit).toFixed(1)} ns/query   full path ${median(results[i].full).toFixed(0)} ns/query\n`,
  );
