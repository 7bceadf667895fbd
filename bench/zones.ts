/**
 * Many zones from a catalog (issue "Thousands of zones"): a BIND 9.18 primary serves N member
 * zones of ~20 RRs and a catalog (RFC 9432) listing them; ns2, then a BIND 9.18 secondary with
 * `catalog-zones`, start empty with only the catalog configured. Measured for each, in the same
 * run, same primary, the secondary pinned to CPU 0 and the primary to CPU 1:
 *   - time from start to every member answering SOA (AA, NOERROR);
 *   - RSS and on-disk size after;
 *   - restart with N stored zones: time to the first member's answer, and to all;
 *   - for ns2: dnsperf qps over queries spread across all zones vs queries to one zone.
 *
 *   node --import tsx bench/zones.ts [--zones 10000] [--seconds 10] [--limit 900] [--no-bind] [--no-qps] [--keep]
 *
 * RSS is read twice: 2 s after the last zone answers, and 2 min later (V8 gives back the heap a
 * load grew only when its memory reducer runs, a minute or so into the quiet). `--no-bind` skips the BIND secondary (at 100 000 zones it
 * takes hours to converge), `--no-qps` the dnsperf rounds; `--limit` bounds each convergence, s.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catalogConsumerConf, startBindPrimary } from '../test/harness/named.js';
import { spawnNs2 } from '../test/harness/ns2.js';
import { freePort, HOST, type Proc, sleep, startProc } from '../test/harness/proc.js';
import { runDnsperf } from './lib/dnsperf.js';
import { timestamp, writeResults } from './lib/results.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('zones', 10_000);
const SECONDS = arg('seconds', 10);
const KEEP = process.argv.includes('--keep');
const BIND = !process.argv.includes('--no-bind');
const QPS = !process.argv.includes('--no-qps');
const LIMIT_MS = arg('limit', 900) * 1000;
const CAT = 'catalog.bench';
const zoneName = (i: number) => `z${i}.bench`;
/** One zone holding as many names as all members together: the one-zone qps baseline. */
const ONE = 'one.bench';
const NAMES = ['www', 'h1', 'h7', 'mail', 'ns1', '@'];

function oneText(): string {
  const lines = [
    `$ORIGIN ${ONE}.`,
    '$TTL 3600',
    '@ SOA ns1 hostmaster 1 3600 600 1209600 300',
    '  NS ns1',
    'ns1 A 192.0.2.1',
  ];
  for (let i = 0; i < N * NAMES.length; i++)
    lines.push(`n${i} A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  return `${lines.join('\n')}\n`;
}

function memberText(i: number): string {
  const hosts = Array.from({ length: 12 }, (_, h) => `h${h} A 10.${(i >> 8) & 255}.${i & 255}.${h}`).join(
    '\n',
  );
  return `$ORIGIN ${zoneName(i)}.
$TTL 3600
@ SOA ns1 hostmaster 1 3600 600 1209600 300
  NS ns1
  NS ns2
  MX 10 mail
  TXT "v=spf1 mx -all"
ns1 A 192.0.2.1
ns2 A 192.0.2.2
mail A 192.0.2.25
www CNAME @
@ A 192.0.2.80
${hosts}
`;
}

function catalogText(): string {
  const lines = [
    `$ORIGIN ${CAT}.`,
    '$TTL 0',
    '@ SOA invalid. invalid. 1 3600 600 2419200 0',
    '  NS invalid.',
    'version TXT "2"',
  ];
  for (let i = 0; i < N; i++) lines.push(`m${i}.zones PTR ${zoneName(i)}.`);
  lines.push(`one.zones PTR ${ONE}.`);
  return `${lines.join('\n')}\n`;
}

/** A SOA query for zone i (its ID i's low 16 bits: the reply's question names the zone). */
function soaQuery(i: number): Buffer {
  const labels = zoneName(i).split('.');
  const name = Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0]),
  ]);
  const h = Buffer.alloc(12);
  h.writeUInt16BE(i & 0xffff, 0);
  h.writeUInt16BE(1, 4);
  return Buffer.concat([h, name, Buffer.from([0, 6, 0, 1])]);
}

/** Polls every zone still pending until each answers AA NOERROR with an answer; ms from `t0`. */
async function allAnswer(
  port: number,
  t0: number,
  limitMs: number,
  done: Set<number> = new Set(),
): Promise<{ all: number; first: number }> {
  const sock = dgram.createSocket('udp4');
  let first = Number.NaN;
  sock.on('message', (m) => {
    if (m.length < 12) return;
    const ok = (m[2] & 0x04) !== 0 && (m[3] & 0x0f) === 0 && m.readUInt16BE(6) > 0;
    if (!ok) return;
    if (Number.isNaN(first)) first = performance.now() - t0;
    // The question's first label is z<i> (zoneName).
    done.add(Number(m.toString('latin1', 14, 13 + m[12])));
  });
  sock.on('error', () => undefined);
  await new Promise<void>((r) => sock.bind(0, HOST, () => r()));
  const queries = Array.from({ length: N }, (_, i) => soaQuery(i));
  try {
    while (done.size < N) {
      if (performance.now() - t0 > limitMs)
        throw new Error(`only ${done.size}/${N} zones answer after ${limitMs} ms`);
      let sent = 0;
      for (let i = 0; i < N; i++) {
        if (done.has(i)) continue;
        sock.send(queries[i], port, HOST);
        // Paced: ~20k queries/s, so the prober does not drown what it measures.
        if (++sent % 200 === 0) await sleep(10);
      }
      await sleep(200);
    }
    return { all: performance.now() - t0, first };
  } finally {
    sock.close();
  }
}

const rssMiB = (pid: number) => {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

function duMiB(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else total += fs.statSync(p).size;
    }
  };
  walk(dir);
  return total / 1024 / 1024;
}

interface Run {
  convergeMs: number;
  rssMiB: number;
  settledRssMiB: number;
  diskMiB: number;
  restartFirstMs: number;
  restartAllMs: number;
}

/** RSS once the load's garbage is given back: 2 min into the quiet after it. */
async function settledRss(pid: number): Promise<number> {
  await sleep(120_000);
  return rssMiB(pid);
}

async function measure(name: string, start: () => Proc, port: number, dataDir: string): Promise<Run> {
  const t0 = performance.now();
  let proc = start();
  const converge = await allAnswer(port, t0, LIMIT_MS);
  await sleep(2000); // writes settle (ns2's text backlog, BIND's zone files)
  const run: Partial<Run> = { convergeMs: converge.all, rssMiB: rssMiB(proc.pid), diskMiB: duMiB(dataDir) };
  run.settledRssMiB = await settledRss(proc.pid);
  console.log(
    `${name}: all ${N} zones answer after ${(converge.all / 1000).toFixed(1)} s; RSS ${run.rssMiB?.toFixed(0)} MiB, 2 min later ${run.settledRssMiB.toFixed(0)} MiB; disk ${run.diskMiB?.toFixed(1)} MiB`,
  );
  await proc.stop('SIGTERM', 30_000);
  const t1 = performance.now();
  proc = start();
  const again = await allAnswer(port, t1, LIMIT_MS);
  run.restartFirstMs = again.first;
  run.restartAllMs = again.all;
  console.log(
    `${name}: restart → first answer ${again.first.toFixed(0)} ms, all zones ${again.all.toFixed(0)} ms`,
  );
  await proc.stop('SIGTERM', 30_000);
  return run as Run;
}

/** dnsperf on ns2 (restarted once more): every zone vs one zone, same names within a zone. */
async function dnsperfRounds(
  dir: string,
  ndir: string,
  ns2Port: number,
  primaryPort: number,
): Promise<Record<string, number>> {
  const proc = spawnNs2({
    dir: ndir,
    port: ns2Port,
    cpus: '0',
    config: { workers: 1, catalogs: [{ name: CAT, primaries: [{ address: HOST, port: primaryPort }] }] },
  }).proc;
  await allAnswer(ns2Port, performance.now(), 60_000);
  // Zone images are built in the background after a start (answers come from SQLite until
  // then): measure once they are.
  await sleep(15_000);
  // The same number of distinct questions both ways: 6 names in each of N zones, or 6 × N
  // names in one zone.
  const spread = path.join(dir, 'spread.txt');
  const single = path.join(dir, 'single.txt');
  const question = (k: number) => ({ zone: (k * 7919) % N, name: k % NAMES.length });
  const lines = (text: (q: { zone: number; name: number }) => string) =>
    Array.from({ length: 100_000 }, (_, k) => `${text(question(k))} A`).join('\n');
  fs.writeFileSync(
    spread,
    `${lines(({ zone, name }) => (NAMES[name] === '@' ? zoneName(zone) : `${NAMES[name]}.${zoneName(zone)}`))}\n`,
  );
  fs.writeFileSync(single, `${lines(({ zone, name }) => `n${zone * NAMES.length + name}.${ONE}`)}\n`);
  const perf = async (file: string, tag: string) =>
    runDnsperf({
      port: ns2Port,
      queryFile: file,
      seconds: SECONDS,
      cpus: '1',
      outFile: path.join(dir, `${tag}.out`),
      cwd: dir,
    });
  const qps: Record<string, number> = {};
  for (const round of [1, 2]) {
    for (const [tag, file] of [
      ['spread', spread],
      ['single', single],
    ] as const) {
      const r = await perf(file, `${tag}${round}`);
      qps[tag] = Math.max(qps[tag] ?? 0, r.qps);
      console.log(`ns2 qps ${tag} (round ${round}): ${r.qps.toFixed(0)}, lost ${r.lost}`);
    }
  }
  await proc.stop('SIGTERM', 30_000);
  return qps;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-bench-zones-'));
  console.log(`bench:zones: ${N} zones in ${dir}`);
  const pdir = path.join(dir, 'primary');
  fs.mkdirSync(pdir, { recursive: true });
  const zones = [{ name: CAT, file: path.join(pdir, `${CAT}.zone`) }];
  fs.writeFileSync(zones[0].file, catalogText());
  zones.push({ name: ONE, file: path.join(pdir, `${ONE}.zone`) });
  fs.writeFileSync(zones[1].file, oneText());
  for (let i = 0; i < N; i++) {
    const file = path.join(pdir, `${zoneName(i)}.zone`);
    fs.writeFileSync(file, memberText(i));
    zones.push({ name: zoneName(i), file });
  }
  const primaryPort = await freePort();
  const primary = startBindPrimary(pdir, primaryPort, await freePort(), zones, [], { cpus: '1' });
  try {
    await allAnswer(primaryPort, performance.now(), 300_000);
    console.log('primary serves every zone');

    // ns2, pinned to CPU 0 with its threads (workers: 1, as one core).
    const ns2Port = await freePort();
    const ndir = path.join(dir, 'ns2');
    const ns2 = await measure(
      'ns2',
      () =>
        spawnNs2({
          dir: ndir,
          port: ns2Port,
          cpus: '0',
          config: {
            workers: 1,
            catalogs: [{ name: CAT, primaries: [{ address: HOST, port: primaryPort }] }],
          },
        }).proc,
      ns2Port,
      ndir,
    );

    const qps = QPS ? await dnsperfRounds(dir, ndir, ns2Port, primaryPort) : undefined;

    // BIND 9.18 secondary consuming the same catalog, pinned the same way.
    let bind: Run | undefined;
    if (BIND) {
      const bdir = path.join(dir, 'bind');
      fs.mkdirSync(bdir, { recursive: true });
      const bindPort = await freePort();
      const conf = path.join(bdir, 'named.conf');
      fs.writeFileSync(conf, catalogConsumerConf(bdir, bindPort, CAT, primaryPort, true));
      bind = await measure(
        'BIND',
        () =>
          startProc('named-secondary', 'named', ['-g', '-n', '1', '-c', conf], {
            cwd: bdir,
            logFile: path.join(bdir, 'named.log'),
            cpus: '0',
          }),
        bindPort,
        bdir,
      );
    }

    const fmt = (v: number, unit: string) => `${v.toFixed(unit === 'MiB' ? 1 : 0)} ${unit}`;
    const row = (label: string, a: number, b: number | undefined, unit: string) =>
      `| ${label} | ${fmt(a, unit)} | ${b === undefined ? '—' : fmt(b, unit)} | ${b === undefined ? '—' : (a / b).toFixed(2)} |`;
    const table = [
      `| ${N} zones from a catalog | ns2 | BIND 9.18 | ns2/BIND |`,
      '|---|---|---|---|',
      row('empty → every zone answers', ns2.convergeMs, bind?.convergeMs, 'ms'),
      row('RSS 2 s after', ns2.rssMiB, bind?.rssMiB, 'MiB'),
      row('RSS 2 min later', ns2.settledRssMiB, bind?.settledRssMiB, 'MiB'),
      row('on disk', ns2.diskMiB, bind?.diskMiB, 'MiB'),
      row('restart → first answer', ns2.restartFirstMs, bind?.restartFirstMs, 'ms'),
      row('restart → every zone answers', ns2.restartAllMs, bind?.restartAllMs, 'ms'),
      ...(qps
        ? [
            `| ns2 qps, queries spread over all zones vs one zone | ${qps.spread.toFixed(0)} | ${qps.single.toFixed(0)} (one zone, as many names) | ${(qps.spread / qps.single).toFixed(2)} |`,
          ]
        : []),
    ].join('\n');
    console.log(`\n${table}`);
    const file = writeResults('zones', { at: timestamp(), zones: N, ns2, bind, qps, table });
    console.log(`results: ${file}`);
  } finally {
    await primary.proc.stop('SIGTERM', 30_000);
    if (!KEEP) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
