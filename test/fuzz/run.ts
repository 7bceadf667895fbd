/**
 * Fuzz run: hostile UDP packets and malformed TCP streams against a real ns2 (a child process
 * serving example.test from a BIND primary, loopback only), for a bounded number of packets
 * and a bounded time. Between batches a valid query over UDP (and every few streams one over TCP)
 * must be answered correctly; ns2's RSS is sampled throughout.
 *
 *   npm run fuzz                                    1 000 000 packets, at most 900 s
 *   node --import tsx test/fuzz/run.ts --packets 200000 --seconds 60 --seed 7
 *
 * Exits 1 when ns2 died, stopped answering, logged an unhandled error, grew more RSS than its
 * bounded structures account for (rssLimitMb, below), sent fewer packets than asked in the time,
 * or answered a sample of the packets (--sample, default 20 000) unlike a default BIND 9.18
 * secondary of the same zone (fuzz/malformed.ts classes).
 * test/integration/fuzz.test.ts runs a 200 000-packet slice of it inside `npm test`.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseMessage } from '../../src/dns/message.js';
import { startBindSecondaryFrom } from '../harness/bind-secondary.js';
import { buildQuery, query } from '../harness/client.js';
import { startNamed } from '../harness/named.js';
import { levelAtLeast, startNs2, waitFor } from '../harness/ns2.js';
import { compareClasses, verdict } from './malformed.js';
import { packet, type Rng, rng, STRATEGIES, tcpStream } from './packets.js';

export interface FuzzOptions {
  /** UDP packets to send (hostile ones; the probes come on top). */
  packets: number;
  /** Stop sending after this long even when `packets` is not reached. */
  seconds: number;
  /** Malformed TCP streams to open (or as many as fit in the time). */
  tcpStreams: number;
  seed: number;
  /** Hostile packets also sent to a default BIND 9.18 secondary of the same zone, whose reply
   * classes ns2's must match (≥ 99 %, never records where BIND gives none); 0: none. */
  sample?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  seconds: number;
  udpSent: number;
  udpRepliesSeen: number;
  byStrategy: Record<string, number>;
  udpProbes: number;
  /** Probes asked again after a 1 s silence (a datagram lost under load), not failures. */
  udpProbeRetries: number;
  udpProbesAnswered: number;
  tcpStreams: number;
  tcpMessages: number;
  tcpProbes: number;
  tcpProbesAnswered: number;
  /** After start-up and 2 000 plain queries, before any hostile traffic. */
  rssColdMb: number;
  /** After the warm-up slice of hostile traffic: the baseline growth is measured from. */
  rssStartMb: number;
  rssPeakMb: number;
  rssEndMb: number;
  rssGrowthMb: number;
  /** What the growth may be (rssLimitMb()): the answer caches filling, plus a margin. */
  rssLimitMb: number;
  alive: boolean;
  /** Log lines at error level or above (unhandled errors while answering). */
  errors: string[];
  /** The sample judged against BIND: packets, agreeing classes, and the disagreements by pair. */
  sample: {
    count: number;
    agreed: number;
    byPair: Record<string, number>;
    bindClasses: Record<string, number>;
  };
  /** Why the run counts as failed; empty when it passed. */
  failures: string[];
}

const ZONE = 'example.test';
const FIXTURE = fileURLToPath(new URL('../fixtures/example.test.zone', import.meta.url));
/** In flight at most PIPELINES × (BATCH + 1) datagrams: well inside ns2's socket buffer. */
const BATCH = 40;
const PIPELINES = 3;
/** A probe is a client's query: it may be asked again, as a resolver would, before it counts as lost. */
const PROBE_TRIES = 3;
const TCP_CONCURRENCY = 8;
/** Each answering thread's answer cache (config answerCacheBytes): small, so a leak beyond it shows. */
const CACHE_BYTES = 4 * 1024 * 1024;
/**
 * ns2 runs under V8's predictable GC schedule (a fixed 4 MiB young generation, the old one
 * collected when it reaches 1.3 × what the last collection kept, no idle-time memory reducer), so
 * the growth measures what ns2 keeps, not when V8 chose to collect. With V8's adaptive defaults
 * the young generation grows from 1 to 16 MiB semi-spaces with the allocation rate (up to 64 MB
 * over the three answering threads) and the old one to 2–4 × live before a full collection: the
 * same run peaked anywhere from +43 to +70 MB with nothing leaked, and ended below its baseline.
 */
const GC_SCHEDULE = ['--predictable-gc-schedule'];
/**
 * Growth allowed beyond the caches: garbage awaiting the next full collection (about 0.3 × each
 * thread's live heap of ~20 MB, or V8's minimum step of a few MB) and the malloc heaps'
 * high-water mark. Measured under that schedule: +24.9 MB, caches included, with 3 000 000
 * packets and 20 000 TCP streams (seed 4); +12.6 MB for the 200 000-packet slice.
 */
const RSS_MARGIN_MB = 20;

/**
 * The RSS growth that is not a leak: every thread answering fills its answer cache (with `workers`
 * serving threads each has CACHE_BYTES and the main thread, answering TCP, an eighth; with one,
 * the main thread has all), which costs about twice its counted bytes in memory (entry objects and
 * buffer views: 10 300 entries, 4 MiB counted, 7.8 MB measured), plus RSS_MARGIN_MB.
 */
export function rssLimitMb(workers: number): number {
  const caches = workers > 1 ? workers + 1 / 8 : 1;
  return (caches * CACHE_BYTES * 2) / (1024 * 1024) + RSS_MARGIN_MB;
}
/** Hostile packets sent before the RSS baseline is taken (not counted in the report). */
const WARMUP = 20_000;

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const APEX_A = Buffer.from([192, 0, 2, 1]);
/** The probe: www.example.test A (a CNAME to the apex) must come back with the CNAME and the apex address. */
const probeOk = (reply: Buffer): boolean => {
  const m = parseMessage(reply);
  return (
    (m.header.flags & 0xf) === 0 &&
    m.answer.some((r) => r.type === 5) &&
    m.answer.some((r) => r.type === 1 && r.rdata.equals(APEX_A))
  );
};

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const log = opts.log ?? (() => undefined);
  // A real primary (BIND) serving the fixture zone, so a BIND secondary can serve the same data.
  const primary = await startNamed({ zones: [{ name: ZONE, text: fs.readFileSync(FIXTURE, 'utf8') }] });
  const ns2 = await startNs2({
    // allowTransfer as BIND 9.18's default (any): transfer requests are judged by what follows the ACL.
    zones: [
      { name: ZONE, primaries: [{ address: '127.0.0.1', port: primary.port }], allowTransfer: ['127.0.0.1'] },
    ],
    nodeFlags: GC_SCHEDULE,
    extra: { logLevel: 'warn', tcpIdleSeconds: 2, maxTcpConnections: 200, answerCacheBytes: CACHE_BYTES },
  });
  const report: FuzzReport = {
    seed: opts.seed,
    seconds: 0,
    udpSent: 0,
    udpRepliesSeen: 0,
    byStrategy: {},
    udpProbes: 0,
    udpProbeRetries: 0,
    udpProbesAnswered: 0,
    tcpStreams: 0,
    tcpMessages: 0,
    tcpProbes: 0,
    tcpProbesAnswered: 0,
    rssColdMb: 0,
    rssStartMb: 0,
    rssPeakMb: 0,
    rssEndMb: 0,
    rssGrowthMb: 0,
    // ns2's default `workers` (one per CPU, harness/ns2.ts) unless the test run sets it.
    rssLimitMb: rssLimitMb(Number(process.env.NS2_TEST_WORKERS ?? Math.min(64, os.availableParallelism()))),
    alive: false,
    errors: [],
    sample: { count: 0, agreed: 0, byPair: {}, bindClasses: {} },
    failures: [],
  };
  let sampler: NodeJS.Timeout | undefined;
  try {
    await waitFor('zone loaded', async () => {
      try {
        return probeOk(await query(ns2.port, `www.${ZONE}`, 1, { timeoutMs: 500 }));
      } catch {
        return false;
      }
    });
    // Warm up (JIT, V8 heap sizing, SQLite page cache) with a slice of the same traffic before
    // taking the RSS baseline: growth is measured on a process already in its steady state.
    for (let i = 0; i < 2000; i++) await query(ns2.port, `www.${ZONE}`, 1);
    report.rssColdMb = rssMb(ns2.pid);
    const warm = await fuzzPhase(ns2.port, rng(opts.seed ^ 0x5eed), WARMUP, WARMUP / 100, 60);
    report.failures.push(...warm.failures.map((f) => `warm-up: ${f}`));
    report.rssStartMb = rssMb(ns2.pid);
    report.rssPeakMb = report.rssStartMb;
    sampler = setInterval(() => {
      if (alive(ns2.pid)) report.rssPeakMb = Math.max(report.rssPeakMb, rssMb(ns2.pid));
    }, 250);
    const t0 = Date.now();
    const progress = setInterval(
      () =>
        log(
          `${((Date.now() - t0) / 1000).toFixed(0)} s: ${report.udpSent} UDP packets, ${report.tcpStreams} TCP streams, RSS ${rssMb(ns2.pid).toFixed(1)} MB`,
        ),
      5000,
    );
    try {
      await fuzzPhase(ns2.port, rng(opts.seed), opts.packets, opts.tcpStreams, opts.seconds, report);
    } finally {
      clearInterval(progress);
    }
    report.seconds = (Date.now() - t0) / 1000;
    // Honest about its size: a run that stopped at its time limit short of its packets failed.
    if (report.udpSent < opts.packets)
      report.failures.push(`sent ${report.udpSent} of ${opts.packets} UDP packets in ${opts.seconds} s`);
    if (report.tcpStreams < opts.tcpStreams)
      report.failures.push(
        `opened ${report.tcpStreams} of ${opts.tcpStreams} TCP streams in ${opts.seconds} s`,
      );
    if (opts.sample) await judgeAgainstBind(primary.port, ns2.port, opts, report);

    // Still alive and answering both ways at the end?
    report.alive = alive(ns2.pid);
    if (!report.alive) report.failures.push('ns2 died');
    else {
      try {
        if (!probeOk(await query(ns2.port, `www.${ZONE}`, 1)))
          report.failures.push('final UDP probe: wrong answer');
        if (!probeOk(await query(ns2.port, `www.${ZONE}`, 1, { tcp: true })))
          report.failures.push('final TCP probe: wrong answer');
      } catch (e) {
        report.failures.push(`final probe: ${(e as Error).message}`);
      }
      report.rssEndMb = rssMb(ns2.pid);
    }
    report.rssGrowthMb = report.rssPeakMb - report.rssStartMb;
    if (report.rssGrowthMb >= report.rssLimitMb)
      report.failures.push(
        `RSS grew ${report.rssGrowthMb.toFixed(1)} MB (limit ${report.rssLimitMb.toFixed(1)}: answer caches + ${RSS_MARGIN_MB} MB)`,
      );
    report.errors = ns2
      .logLines()
      .filter((l) => levelAtLeast(l, 'error'))
      .map((l) => JSON.stringify(l).slice(0, 300));
    if (report.errors.length > 0) report.failures.push(`${report.errors.length} error log lines`);
    return report;
  } finally {
    if (sampler) clearInterval(sampler);
    await ns2.stop();
    await primary.stop();
  }
}

/**
 * Replies to malformed queries as BIND answers the same packets: a seeded sample of the same
 * hostile traffic goes to a default BIND 9.18 secondary of the fuzzed zone and to ns2, and the
 * classes of the replies (fuzz/malformed.ts) must agree.
 */
async function judgeAgainstBind(primaryPort: number, port: number, opts: FuzzOptions, report: FuzzReport) {
  const bind = await startBindSecondaryFrom(ZONE, primaryPort);
  try {
    const r = rng(opts.seed ^ 0xb1d);
    const kinds: string[] = [];
    const packets = Array.from({ length: opts.sample ?? 0 }, () => {
      const k = r.pick(STRATEGIES);
      kinds.push(k);
      return packet(r, ZONE, k);
    });
    const rep = await compareClasses(bind.port, port, packets, kinds);
    report.sample = {
      count: rep.count,
      agreed: rep.agreed,
      byPair: rep.byPair,
      bindClasses: rep.bindClasses,
    };
    for (const f of verdict({ seed: opts.seed, ...rep })) report.failures.push(`against BIND: ${f}`);
  } finally {
    await bind.stop();
  }
}

type Counters = Pick<
  FuzzReport,
  | 'udpSent'
  | 'udpRepliesSeen'
  | 'byStrategy'
  | 'udpProbes'
  | 'udpProbeRetries'
  | 'udpProbesAnswered'
  | 'tcpStreams'
  | 'tcpMessages'
  | 'tcpProbes'
  | 'tcpProbesAnswered'
  | 'failures'
>;

const counters = (): Counters => ({
  udpSent: 0,
  udpRepliesSeen: 0,
  byStrategy: {},
  udpProbes: 0,
  udpProbeRetries: 0,
  udpProbesAnswered: 0,
  tcpStreams: 0,
  tcpMessages: 0,
  tcpProbes: 0,
  tcpProbesAnswered: 0,
  failures: [],
});

/**
 * One run of hostile traffic: PIPELINES UDP senders (a batch, then a probe that must be answered)
 * and TCP_CONCURRENCY malformed TCP streams at a time, until `packets` and `streams` are done or
 * `seconds` pass.
 */
async function fuzzPhase(
  port: number,
  r: Rng,
  packets: number,
  streams: number,
  seconds: number,
  k: Counters = counters(),
): Promise<Counters> {
  const deadline = Date.now() + seconds * 1000;
  const sockets: dgram.Socket[] = [];
  let stop = false;

  const udpProbe = (probe: dgram.Socket) => {
    const q = buildQuery(`www.${ZONE}`, 1);
    return new Promise<boolean>((res) => {
      const timer = setTimeout(() => {
        probe.off('message', onReply);
        res(false);
      }, 1000);
      const onReply = (m: Buffer) => {
        if (m.readUInt16BE(0) !== q.readUInt16BE(0)) return;
        clearTimeout(timer);
        probe.off('message', onReply);
        res(probeOk(m));
      };
      probe.on('message', onReply);
      probe.send(q, port, '127.0.0.1');
    });
  };

  const udpPipeline = async (n: number) => {
    const fuzz = dgram.createSocket('udp4');
    const probe = dgram.createSocket('udp4');
    sockets.push(fuzz, probe);
    fuzz.on('message', () => {
      k.udpRepliesSeen++;
    });
    fuzz.on('error', () => undefined);
    await new Promise<void>((res) => fuzz.bind(0, '127.0.0.1', () => res()));
    let lostInARow = 0;
    while (!stop && k.udpSent < packets && Date.now() < deadline) {
      for (let i = 0; i < BATCH; i++) {
        const strategy = r.pick(STRATEGIES);
        k.byStrategy[strategy] = (k.byStrategy[strategy] ?? 0) + 1;
        fuzz.send(packet(r, ZONE, strategy), port, '127.0.0.1');
        k.udpSent++;
      }
      k.udpProbes++;
      let ok = false;
      for (let attempt = 0; attempt < PROBE_TRIES && !ok; attempt++) {
        if (attempt > 0) k.udpProbeRetries++;
        ok = await udpProbe(probe);
      }
      if (ok) {
        k.udpProbesAnswered++;
        lostInARow = 0;
      } else if (++lostInARow >= 3) {
        k.failures.push(`UDP pipeline ${n}: 3 probes in a row unanswered`);
        stop = true;
      }
    }
  };

  const tcpWorker = async () => {
    while (!stop && k.tcpStreams < streams && Date.now() < deadline) {
      const s = tcpStream(r, ZONE);
      k.tcpStreams++;
      const c = net.connect({ host: '127.0.0.1', port });
      c.on('error', () => undefined);
      c.on('data', () => undefined);
      const closed = new Promise<void>((res) => c.once('close', () => res()));
      await new Promise<void>((res) => {
        c.once('connect', () => res());
        c.once('close', () => res());
      });
      for (const chunk of s.chunks) {
        if (c.destroyed) break;
        c.write(chunk);
        if (s.chunks.length > 1) await new Promise((res) => setImmediate(res));
      }
      k.tcpMessages += s.chunks.length;
      // Give the server a moment to answer or close, then hang up ourselves.
      await Promise.race([closed, new Promise((res) => setTimeout(res, 100))]);
      c.destroy();
      if (k.tcpStreams % 50 === 0) {
        k.tcpProbes++;
        try {
          if (probeOk(await query(port, `www.${ZONE}`, 1, { tcp: true, timeoutMs: 3000 })))
            k.tcpProbesAnswered++;
          else k.failures.push('a TCP probe got a wrong answer');
        } catch (e) {
          k.failures.push(`a TCP probe failed: ${(e as Error).message}`);
        }
      }
    }
  };

  try {
    await Promise.all([
      ...Array.from({ length: PIPELINES }, (_, i) => udpPipeline(i)),
      ...Array.from({ length: TCP_CONCURRENCY }, () => tcpWorker()),
    ]);
  } finally {
    for (const s of sockets) s.close();
  }
  if (k.udpProbesAnswered < k.udpProbes)
    k.failures.push(`${k.udpProbes - k.udpProbesAnswered} UDP probes unanswered`);
  return k;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const report = await runFuzz({
    packets: arg('packets', 1_000_000),
    seconds: arg('seconds', 300),
    tcpStreams: arg('streams', 20_000),
    sample: arg('sample', 20_000),
    seed: arg('seed', Date.now() % 1_000_000),
    log: (l) => console.log(l),
  });
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.failures.length === 0 ? 0 : 1);
}
