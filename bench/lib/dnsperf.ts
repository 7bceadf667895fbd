/**
 * dnsperf 2.x runs and their numbers. dnsperf prints qps, average/min/max latency and its stddev,
 * but no percentiles; with -v it prints one line per answered query (`> NOERROR name TYPE 0.000123`),
 * from which percentiles are computed here. -v costs dnsperf no measurable CPU when its stdout
 * is a file (checked on this machine: same user+sys time with and without it).
 * -S 1 adds a `epoch: qps` line every second, kept to show the spread within a run.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { HOST, type Proc, startProc } from '../../test/harness/proc.js';

export interface DnsperfResult {
  qps: number;
  sent: number;
  completed: number;
  lost: number;
  runSeconds: number;
  rcodes: Record<string, number>;
  latencyMs: { avg: number; min: number; max: number; stddev: number };
  /** From -v lines; undefined without -v. */
  percentilesMs?: { p50: number; p90: number; p99: number; p999: number };
  /** Per-second qps from -S 1: [epoch seconds at the end of the interval, qps]. */
  perSecond: [number, number][];
}

export interface DnsperfOptions {
  port: number;
  queryFile: string;
  seconds: number;
  clients?: number;
  outstanding?: number;
  verbose?: boolean;
  outFile: string;
  cwd: string;
  /** dnsperf -t: seconds before a query counts as lost (dnsperf's default 5). */
  timeoutSeconds?: number;
  /** `taskset -c CPUS` for dnsperf itself; undefined: not pinned. */
  cpus?: string;
}

export function dnsperfArgs(o: DnsperfOptions): string[] {
  return [
    '-s',
    HOST,
    '-p',
    String(o.port),
    '-d',
    o.queryFile,
    '-l',
    String(o.seconds),
    '-c',
    String(o.clients ?? 4),
    '-q',
    String(o.outstanding ?? 500),
    ...(o.timeoutSeconds === undefined ? [] : ['-t', String(o.timeoutSeconds)]),
    '-S',
    '1',
    ...(o.verbose ? ['-v'] : []),
  ];
}

/** Starts dnsperf with its stdout and stderr in `outFile`; parse with parseDnsperf() after exit. */
export function startDnsperf(o: DnsperfOptions): Proc {
  fs.rmSync(o.outFile, { force: true });
  return startProc('dnsperf', 'dnsperf', dnsperfArgs(o), { cwd: o.cwd, logFile: o.outFile, cpus: o.cpus });
}

export async function runDnsperf(o: DnsperfOptions): Promise<DnsperfResult> {
  const p = startDnsperf(o);
  // dnsperf stops itself after -l seconds (plus up to its 5 s query timeout); bound it anyway.
  const guard = setTimeout(() => void p.stop('SIGINT'), (o.seconds + 30) * 1000);
  const { code } = await p.exited;
  clearTimeout(guard);
  if (code !== 0)
    throw new Error(`dnsperf exited with ${code}:\n${fs.readFileSync(o.outFile, 'utf8').slice(-3000)}`);
  return parseDnsperf(o.outFile);
}

const num = (re: RegExp, text: string): number => {
  const m = re.exec(text);
  return m ? Number(m[1]) : Number.NaN;
};

/** Reads a dnsperf output file (statistics block, -S lines, -v lines); `requireStats` false accepts a run cut short. */
export async function parseDnsperf(file: string, requireStats = true): Promise<DnsperfResult> {
  const lat: number[] = [];
  const perSecond: [number, number][] = [];
  const stats: string[] = [];
  const rl = readline.createInterface({
    input: fs.createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of rl) {
    if (line.startsWith('> ')) {
      const sp = line.lastIndexOf(' ');
      const v = Number(line.slice(sp + 1));
      if (Number.isFinite(v)) lat.push(v * 1000);
      continue;
    }
    const m = /^(\d{9,}\.\d+): ([\d.]+)$/.exec(line);
    if (m) {
      perSecond.push([Number(m[1]), Number(m[2])]);
      continue;
    }
    if (!line.startsWith('[Timeout]')) stats.push(line);
  }
  const text = stats.join('\n');
  const rcodes: Record<string, number> = {};
  const rc = /Response codes:\s+(.*)/.exec(text);
  if (rc) for (const m of rc[1].matchAll(/([A-Z]+) (\d+)/g)) rcodes[m[1]] = Number(m[2]);
  const lm = /Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)/.exec(text);
  const result: DnsperfResult = {
    qps: num(/Queries per second:\s+([\d.]+)/, text),
    sent: num(/Queries sent:\s+(\d+)/, text),
    completed: num(/Queries completed:\s+(\d+)/, text),
    lost: num(/Queries lost:\s+(\d+)/, text),
    runSeconds: num(/Run time \(s\):\s+([\d.]+)/, text),
    rcodes,
    latencyMs: {
      avg: lm ? Number(lm[1]) * 1000 : Number.NaN,
      min: lm ? Number(lm[2]) * 1000 : Number.NaN,
      max: lm ? Number(lm[3]) * 1000 : Number.NaN,
      stddev: num(/Latency StdDev \(s\):\s+([\d.]+)/, text) * 1000,
    },
    perSecond,
  };
  if (lat.length > 0) {
    const sorted = Float64Array.from(lat).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    result.percentilesMs = { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999) };
  }
  if (requireStats && !Number.isFinite(result.qps))
    throw new Error(`no statistics in dnsperf output ${file}:\n${text.slice(-2000)}`);
  return result;
}

/**
 * Mean qps over [fromEpoch, toEpoch] from -S 1 samples: each sample covers the second before
 * its timestamp; partial overlaps are weighted by their overlap.
 */
export function qpsBetween(perSecond: [number, number][], fromEpoch: number, toEpoch: number): number {
  let queries = 0;
  let covered = 0;
  for (let i = 0; i < perSecond.length; i++) {
    const end = perSecond[i][0];
    const start = i > 0 ? perSecond[i - 1][0] : end - 1;
    const overlap = Math.min(end, toEpoch) - Math.max(start, fromEpoch);
    if (overlap <= 0) continue;
    queries += perSecond[i][1] * overlap;
    covered += overlap;
  }
  return covered > 0 ? queries / covered : Number.NaN;
}

/** Lowest per-second qps among samples wholly inside [fromEpoch, toEpoch]. */
export function minQpsBetween(perSecond: [number, number][], fromEpoch: number, toEpoch: number): number {
  let min = Number.NaN;
  for (let i = 1; i < perSecond.length; i++) {
    if (perSecond[i - 1][0] >= fromEpoch && perSecond[i][0] <= toEpoch) {
      if (!(perSecond[i][1] >= min)) min = perSecond[i][1];
    }
  }
  return min;
}
