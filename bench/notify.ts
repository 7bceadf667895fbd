/**
 * `npm run bench:notify`: how fast a change reaches ns2. A real BIND primary with a small zone
 * NOTIFYs ns2 (and a BIND secondary, for reference) on every nsupdate; each run adds one A record
 * and times nsupdate start → the secondary answering it, polled every 2 ms. Prints the median and
 * p90 over the runs (default 20) and writes bench/results/<timestamp>-notify.json.
 *
 *   npm run bench:notify [-- --runs N] [-- --ns2 DIR] [-- --keep]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { notifySentAt, startBindPrimary, startBindSecondary } from '../test/harness/named.js';
import { ns2Root, spawnNs2Secondary } from '../test/harness/ns2.js';
import { freePort, now, type Proc, run, sleep, tail } from '../test/harness/proc.js';
import { aRecords, Prober, soaSerial } from './lib/dns.js';
import { environment, writeResults } from './lib/results.js';
import { writeZone } from './lib/zone.js';

process.env.PATH = `/usr/local/sbin:/usr/sbin:/sbin:${process.env.PATH ?? '/usr/bin:/bin'}`;

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    keep: { type: 'boolean', default: false },
    ns2: { type: 'string' },
  },
});
if (opt.ns2) process.env.NS2_BENCH_ROOT = path.resolve(opt.ns2);
const RUNS = Number(opt.runs);
const ZONE = 'notify.test';
const SERIAL = 1000;
const POLL_MS = 2;
const ANSWER_TIMEOUT_MS = 10_000;

interface Stats {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

/** Nearest-rank percentiles. */
function stats(xs: number[]): Stats | undefined {
  if (xs.length === 0) return undefined;
  const v = [...xs].sort((a, b) => a - b);
  const rank = (q: number) => v[Math.max(0, Math.ceil(q * v.length) - 1)];
  return { n: v.length, median: rank(0.5), p90: rank(0.9), min: v[0], max: v[v.length - 1] };
}

async function main(): Promise<number> {
  if (!(RUNS >= 1)) throw new Error('--runs must be a positive number');
  if (!fs.existsSync(path.join(ns2Root(), 'dist/cli.js')))
    throw new Error(`${ns2Root()}/dist/cli.js missing`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-bench-notify-'));
  const procs: Proc[] = [];
  const prober = new Prober();
  let failed = false;
  try {
    const env = environment();
    const z = writeZone(path.join(tmp, `${ZONE}.zone`), ZONE, 1000, SERIAL);
    const ports = {
      primary: await freePort(),
      primaryRndc: await freePort(),
      bind: await freePort(),
      bindRndc: await freePort(),
      ns2: await freePort(),
      ns2Control: await freePort(),
    };
    const primaryDir = path.join(tmp, 'primary');
    fs.mkdirSync(primaryDir);
    fs.copyFileSync(z.file, path.join(primaryDir, `${ZONE}.zone`));
    const primary = startBindPrimary(
      primaryDir,
      ports.primary,
      ports.primaryRndc,
      [{ name: ZONE, file: path.join(primaryDir, `${ZONE}.zone`) }],
      [ports.bind, ports.ns2],
    );
    procs.push(primary.proc);
    const soaIs = (serial: number) => (p: Parameters<typeof soaSerial>[0]) => soaSerial(p) === serial;
    await prober.pollUntil(ports.primary, ZONE, 'SOA', soaIs(SERIAL), { everyMs: 50, timeoutMs: 30_000 });
    const bind = startBindSecondary(path.join(tmp, 'bind'), ports.bind, ports.bindRndc, ZONE, ports.primary);
    procs.push(bind.proc);
    const ns2 = spawnNs2Secondary({
      dir: path.join(tmp, 'ns2'),
      port: ports.ns2,
      controlPort: ports.ns2Control,
      zone: ZONE,
      primaryPort: ports.primary,
    });
    procs.push(ns2.proc);
    for (const s of [bind, ns2]) {
      await prober
        .pollUntil(s.port, ZONE, 'SOA', soaIs(SERIAL), { everyMs: 20, timeoutMs: 30_000 })
        .catch((e) => {
          throw new Error(`${s.proc.name} did not load ${ZONE}: ${e.message}\n${tail(s.proc.log())}`);
        });
    }
    process.stderr.write(
      `primary, BIND secondary and ns2 serving ${ZONE} (${z.records} RRs); ${RUNS} runs\n`,
    );
    await sleep(500);

    const runs: {
      nsupdateMs: number;
      ns2?: number;
      bind?: number;
      ns2FromNotify?: number;
      bindFromNotify?: number;
    }[] = [];
    for (let k = 0; k < RUNS; k++) {
      const name = `new${k}.${ZONE}`;
      const ip = `192.0.2.${(k % 250) + 1}`;
      const start = now();
      const nsupdate = run('nsupdate', [], {
        input: `server 127.0.0.1 ${ports.primary}\nzone ${ZONE}\nupdate add ${name}. 300 IN A ${ip}\nsend\n`,
        timeoutMs: 20_000,
      });
      const answered = (port: number, proc: Proc) =>
        prober
          .pollUntil(port, name, 'A', (p) => aRecords(p, name).includes(ip), {
            everyMs: POLL_MS,
            timeoutMs: ANSWER_TIMEOUT_MS,
            abort: () => (proc.running() ? undefined : 'process exited'),
          })
          .then(
            (at) => ({ ms: at - start, epoch: Date.now() - (now() - at) }),
            () => undefined,
          );
      const [nu, n, b] = await Promise.all([
        nsupdate,
        answered(ns2.port, ns2.proc),
        answered(bind.port, bind.proc),
      ]);
      if (nu.code !== 0) throw new Error(`nsupdate failed: ${nu.stderr}`);
      const soa = await prober.query(ports.primary, ZONE, 'SOA', 2000);
      const sent = soa ? notifySentAt(primary.proc.log(), ZONE, soaSerial(soa) ?? -1) : undefined;
      const r = {
        nsupdateMs: nu.ms,
        ns2: n?.ms,
        bind: b?.ms,
        ns2FromNotify: n && sent !== undefined ? n.epoch - sent : undefined,
        bindFromNotify: b && sent !== undefined ? b.epoch - sent : undefined,
      };
      runs.push(r);
      if (!n) failed = true;
      process.stderr.write(
        `run ${String(k + 1).padStart(2)}: ns2 ${n ? `${n.ms.toFixed(1)} ms` : 'NOT ANSWERED'}, BIND ${b ? `${b.ms.toFixed(1)} ms` : 'not answered'} (nsupdate ${nu.ms.toFixed(0)} ms)\n`,
      );
      await sleep(300);
    }

    const pick = (f: (r: (typeof runs)[number]) => number | undefined) =>
      stats(runs.map(f).filter((x): x is number => x !== undefined));
    const summary = {
      ns2: pick((r) => r.ns2),
      bind: pick((r) => r.bind),
      ns2FromNotify: pick((r) => r.ns2FromNotify),
      bindFromNotify: pick((r) => r.bindFromNotify),
      nsupdate: pick((r) => r.nsupdateMs),
    };
    const f = (s?: Stats) =>
      s
        ? `median ${s.median.toFixed(1)} ms, p90 ${s.p90.toFixed(1)} ms (min ${s.min.toFixed(1)}, max ${s.max.toFixed(1)}, n=${s.n})`
        : 'no answers';
    process.stdout.write(
      `\nNOTIFY latency, ${RUNS} runs, ${ZONE} (${z.records} RRs), ns2 ${env.git.commit}${env.git.srcDirty ? '+dirty' : ''}\n` +
        `  nsupdate → ns2 answers the new record:   ${f(summary.ns2)}\n` +
        `  nsupdate → BIND secondary answers it:    ${f(summary.bind)}\n` +
        `  NOTIFY sent → ns2 answers (primary log): ${f(summary.ns2FromNotify)}\n` +
        `  NOTIFY sent → BIND answers:              ${f(summary.bindFromNotify)}\n` +
        `  nsupdate itself (spawn → exit):          ${f(summary.nsupdate)}\n`,
    );
    const file = writeResults('notify', {
      env,
      mode: 'notify',
      zone: ZONE,
      records: z.records,
      runs,
      summary,
    });
    process.stdout.write(`results: ${path.relative(process.cwd(), file)}\n`);
    return failed ? 1 : 0;
  } catch (e) {
    failed = true;
    process.stderr.write(`bench:notify failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 2;
  } finally {
    prober.close();
    for (const p of procs.reverse()) await p.stop();
    if (opt.keep || failed) process.stderr.write(`kept ${tmp}\n`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`bench:notify: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  },
);
