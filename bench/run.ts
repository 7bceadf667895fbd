/**
 * `npm run bench`: ns2 against NSD, Knot DNS, PowerDNS (gsqlite3), BIND 9 and two Node.js UDP
 * echo ceilings, in one run, on this machine.
 *
 *   npm run bench                 full run: 1M-RR zone, dnsperf -l 10, 2 rounds      (~10-12 min)
 *   npm run bench -- --quick      100k-RR zone, dnsperf -l 2, 2 rounds                (~3 min)
 *   npm run bench -- --profile    ns2 only, under node --cpu-prof: (a) AXFR ingest, (b) dnsperf
 *   --seconds N --rounds R        dnsperf duration per measurement, number of alternating rounds
 *   --records N --queries N       zone size (RRs), lines per query file
 *   --clients N --outstanding N   dnsperf -c and -q (default 4 and 500)
 *   --ns2-io default|dgram|both   ns2's UDP path: its own choice, NS2_UDP=dgram, or both rows
 *   --only a,b,…                  measure only these servers (ids: see SERVERS below)
 *   --keep                        keep the temp dir (zones, configs, logs, databases)
 *   --ns2 DIR                     measure the ns2 built in DIR (dist/cli.js), default this repo
 *
 * One BIND primary (`named -g -n 1` on CPU 1, dynamic zone, ixfr-from-differences, also-notify
 * to the BIND secondary and ns2) serves a generated zone. Every secondary takes it by AXFR, one
 * after the other, each pinned to CPU 0 (`taskset -c 0`) and left running. ns2 and BIND then get
 * 10-change IXFRs (NOTIFY → answer) and a restart (process start → first correct answer). Then
 * dnsperf (`taskset -c 1 dnsperf -l 10 -c 4 -q 500`) measures one server at a time with two query
 * files, U (names uniform over the hosts) and Z (Zipf s = 1): for round r = 1..R every server's U
 * then Z, the server order rotated each round; medians per server. Last, ns2 and BIND serve
 * dnsperf during a forced full retransfer. Results: tables on stdout and
 * bench/results/<timestamp>.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { spawnKnot } from '../test/harness/knot.js';
import {
  type NamedServer,
  notifySentAt,
  startBindPrimary,
  startBindSecondary,
} from '../test/harness/named.js';
import {
  NS2_ROOT,
  type Ns2SecondarySpawn,
  type Ns2Server,
  ns2LogEvents,
  ns2Retransfer,
  ns2Root,
  spawnNs2Secondary,
} from '../test/harness/ns2.js';
import { spawnNsd } from '../test/harness/nsd.js';
import { spawnPdns } from '../test/harness/pdns.js';
import {
  cpuSeconds,
  dirMiB,
  freePort,
  now,
  type Proc,
  RssSampler,
  rssMiB,
  run,
  sleep,
  startProc,
  tail,
  waitFor,
} from '../test/harness/proc.js';
import { aRecords, Prober, type ProbeStats, soaSerial, startLatencyProbe } from './lib/dns.js';
import {
  type DnsperfResult,
  minQpsBetween,
  parseDnsperf,
  qpsBetween,
  runDnsperf,
  startDnsperf,
} from './lib/dnsperf.js';
import { type Row, table } from './lib/report.js';
import { environment, timestamp, writeResults } from './lib/results.js';
import { ipv4, writeQueries, writeZone, type ZoneInfo } from './lib/zone.js';
import { formatSummary, type ProfileSummary, summarise } from './top-profile.js';

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    ns2: { type: 'string' },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    records: { type: 'string' },
    queries: { type: 'string' },
    clients: { type: 'string' },
    outstanding: { type: 'string' },
    'ns2-io': { type: 'string', default: 'default' },
    only: { type: 'string' },
    // For trying the bench against an ns2 whose config does not know `workers` yet.
    'no-workers-key': { type: 'boolean', default: false },
  },
});
if (opt.ns2) process.env.NS2_BENCH_ROOT = path.resolve(opt.ns2);

const int = (v: string | undefined, dflt: number, what: string): number => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${what} must be a positive integer`);
  return n;
};
const QUICK = opt.quick;
const RECORDS = int(opt.records, QUICK ? 100_000 : 1_000_000, 'records');
const sizeLabel = (n: number) =>
  n >= 1_000_000 && n % 1_000_000 === 0
    ? `${n / 1_000_000}M`
    : n >= 1000 && n % 1000 === 0
      ? `${n / 1000}k`
      : String(n);
const BIG = {
  label: sizeLabel(RECORDS),
  records: RECORDS,
  zone: `b${sizeLabel(RECORDS).toLowerCase()}.test`,
};
const SIZES = [BIG];
const DNSPERF_SECONDS = int(opt.seconds, QUICK ? 2 : 10, 'seconds');
const ROUNDS = int(opt.rounds, 2, 'rounds');
const CLIENTS = int(opt.clients, 4, 'clients');
const OUTSTANDING = int(opt.outstanding, 500, 'outstanding');
const QUERY_LINES = int(opt.queries, 100_000, 'queries');
const WARMUP_SECONDS = QUICK ? 1 : 3;
const NS2_IO = opt['ns2-io'];
if (!['default', 'dgram', 'both'].includes(NS2_IO ?? ''))
  throw new Error('--ns2-io must be default, dgram or both');
const IXFR_ROUNDS = 3;
const SERIAL = 1000;
/** CPUs: every measured server on SERVER_CPU, dnsperf (and the primary) on LOAD_CPU. */
const SERVER_CPU = '0';
const LOAD_CPU = '1';
/** Bounds, so a slow or stuck server cannot hold the run forever. */
const PRIMARY_READY_MS = 180_000;
const INGEST_TIMEOUT_MS = QUICK ? 120_000 : 300_000;
const IXFR_TIMEOUT_MS = 60_000;
const RESTART_TIMEOUT_MS = 120_000;
const RETRANSFER_TIMEOUT_MS = QUICK ? 120_000 : 300_000;
const DNSPERF_ARGS = `-l ${DNSPERF_SECONDS} -c ${CLIENTS} -q ${OUTSTANDING}`;

const t0 = now();
const progress = (msg: string) =>
  process.stderr.write(`[${((now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

// ---------------------------------------------------------------------------------------------
// The servers compared. Each is one row of the table.

type ServerId =
  | 'nsd'
  | 'knot'
  | 'pdns'
  | 'bind'
  | 'ns2'
  | 'ns2-dgram'
  | 'echo-dgram'
  | 'echo-native'
  | 'ns2-w2';

interface ServerDef {
  id: ServerId;
  label: string;
  /** Pinned to SERVER_CPU, dnsperf to LOAD_CPU; false: neither is pinned. */
  pinned: boolean;
  /** Takes the zone by AXFR (the echoes don't). */
  secondary: boolean;
}

/** bench/echo.ts (`--io native|dgram --port N`): the ns2 batched-I/O echo, when it exists. */
const ECHO_TS = path.join(NS2_ROOT, 'bench/echo.ts');

const SERVERS: ServerDef[] = [
  { id: 'nsd', label: 'NSD', pinned: true, secondary: true },
  { id: 'knot', label: 'Knot DNS', pinned: true, secondary: true },
  { id: 'pdns', label: 'PowerDNS gsqlite3', pinned: true, secondary: true },
  { id: 'bind', label: 'BIND 9 (-n 1)', pinned: true, secondary: true },
  {
    id: 'ns2',
    label: `ns2 (workers: 1${NS2_IO === 'dgram' ? ', NS2_UDP=dgram' : ''})`,
    pinned: true,
    secondary: true,
  },
  ...(NS2_IO === 'both'
    ? [
        {
          id: 'ns2-dgram',
          label: 'ns2 (workers: 1, NS2_UDP=dgram)',
          pinned: true,
          secondary: true,
        } as ServerDef,
      ]
    : []),
  { id: 'echo-dgram', label: 'Node.js dgram echo (no DNS work)', pinned: true, secondary: false },
  { id: 'echo-native', label: 'ns2 batched echo (echo.ts --io native)', pinned: true, secondary: false },
  {
    id: 'ns2-w2',
    label: `ns2 (workers: 2${NS2_IO === 'dgram' ? ', NS2_UDP=dgram' : ''}) UNPINNED: server and dnsperf not pinned`,
    pinned: false,
    secondary: true,
  },
];
const ONLY = opt.only?.split(',').map((s) => s.trim());
if (ONLY) {
  for (const id of ONLY)
    if (!SERVERS.some((s) => s.id === id))
      throw new Error(`--only: unknown server ${id} (${SERVERS.map((s) => s.id).join(', ')})`);
  // ns2 and BIND carry the IXFR/restart/retransfer comparison: keep them whatever --only says.
}
const ACTIVE = SERVERS.filter((s) => !ONLY || ONLY.includes(s.id) || s.id === 'ns2' || s.id === 'bind');

// ---------------------------------------------------------------------------------------------

interface IngestResult {
  seconds?: number;
  /** CPU seconds the process used from its start to serving the serial. */
  cpuSeconds?: number;
  peakRssMiB?: number;
  rssAfterMiB?: number;
  diskMiB?: number;
  error?: string;
}

/** One dnsperf run against one server with one query file. */
interface Measure {
  round: number;
  file: 'U' | 'Z';
  qps?: number;
  sent?: number;
  completed?: number;
  lost?: number;
  lostPct?: number;
  avgMs?: number;
  p50Ms?: number;
  p99Ms?: number;
  p999Ms?: number;
  maxMs?: number;
  serverCpuSeconds?: number;
  answersPerCpuSecond?: number;
  /** Largest VmRSS of the server (its process tree) sampled during the run. */
  rssMiB?: number;
  loadAvgBefore?: number;
  rcodes?: Record<string, number>;
  error?: string;
}

/** Medians over the rounds for one query file. */
interface Summary {
  qps?: number;
  answersPerCpuSecond?: number;
  lostPct?: number;
  p99Ms?: number;
  avgMs?: number;
  runs: number;
}

interface Peer extends ServerDef {
  port: number;
  proc?: Proc;
  dir?: string;
  /** Why the server has no figures (could not start, wrong answers, …). */
  error?: string;
  ingest?: IngestResult;
  measures: Measure[];
  servingPeakRssMiB?: number;
  summary?: { U: Summary; Z: Summary };
}

interface ServerResults {
  ingest: Record<string, IngestResult>;
  ixfr: {
    /** Median nsupdate → answer. */
    ms?: number;
    /** Median NOTIFY sent → answer. */
    notifyMs?: number;
    rounds: (number | null)[];
    notifyRounds: (number | null)[];
    kinds: string[];
    error?: string;
  };
  restart: { ms?: number; stopMs?: number; rssAtAnswerMiB?: number; serialOk?: boolean; error?: string };
  /** Medians of the U-file runs, in dnsperf's shape, for the ns2-vs-BIND table. */
  dnsperf?: DnsperfResult & { queriesPerCpuSecond?: number; error?: string };
  duringRetransfer?: {
    seconds?: number;
    qps?: number;
    minPerSecondQps?: number;
    baselineQps?: number;
    lost?: number;
    /** A query every 10 ms beside dnsperf: the longest gap between answers is the longest stall. */
    probe?: ProbeStats;
    error?: string;
  };
}

const emptyResults = (): ServerResults => ({
  ingest: {},
  ixfr: { rounds: [], notifyRounds: [], kinds: [] },
  restart: {},
});

/** Files a server keeps its zone in: everything in its directory but logs, configs, keys, pids. */
const dataFile = (name: string) => !/(\.log|\.conf|\.json|\.key|\.pid|\.out)$/.test(name);

/** The inline dgram echo: one 'message' callback and one send per datagram, QR set, no DNS work. */
const DGRAM_ECHO = `import dgram from 'node:dgram';
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => { m[2] |= 0x80; s.send(m, r.port, r.address); });
s.bind(Number(process.argv[2]), '127.0.0.1', () => console.log('echo listening'));
`;

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-bench-'));
  const procs: Proc[] = [];
  const track = <T extends { proc: Proc }>(s: T): T => {
    procs.push(s.proc);
    return s;
  };
  const prober = new Prober();
  let failed = false;
  try {
    if (!fs.existsSync(path.join(ns2Root(), 'dist/cli.js'))) {
      throw new Error(`${ns2Root()}/dist/cli.js missing: run \`npx tsc\` first`);
    }
    const env = environment();
    if (env.loadAvg[0] > env.cpus / 2) {
      progress(
        `WARNING: load average ${env.loadAvg[0].toFixed(2)} on ${env.cpus} CPUs before starting: something else is running, wall-clock figures will be noisy (the CPU-second rows less so)`,
      );
    }
    if (env.cpus < 2) progress('WARNING: fewer than 2 CPUs: server and dnsperf cannot be pinned apart');
    progress(
      `temp dir ${tmp}; ns2 ${env.git.commit}${env.git.srcDirty ? ' (src/ has uncommitted changes)' : ''} from ${env.ns2Root}`,
    );

    // Zone and the two query files.
    const big = writeZone(path.join(tmp, `${BIG.zone}.zone`), BIG.zone, BIG.records, SERIAL);
    const zones: Record<string, ZoneInfo> = { [BIG.label]: big };
    const queryFiles = { U: path.join(tmp, 'queries-U.txt'), Z: path.join(tmp, 'queries-Z.txt') };
    writeQueries(queryFiles.U, big, QUERY_LINES, { dist: 'uniform', seed: 2 });
    writeQueries(queryFiles.Z, big, QUERY_LINES, { dist: 'zipf', zipfS: 1.0, seed: 3 });
    progress(
      `zone ${BIG.zone} ${big.records} RRs (${big.hosts} hosts); query files U and Z, ${QUERY_LINES} lines each`,
    );

    const ports = {
      primary: await freePort(),
      primaryRndc: await freePort(),
      bindRndc: await freePort(),
      ns2Control: await freePort(),
    };
    const peers: Peer[] = [];
    for (const d of ACTIVE) peers.push({ ...d, port: await freePort(), measures: [] });
    const peer = (id: ServerId) => peers.find((p) => p.id === id);
    const bindPeer = peer('bind')!;
    const ns2Peer = peer('ns2')!;

    // The primary, on the load CPU. Its zone file is a copy: BIND rewrites dynamic zones' files.
    const primaryDir = path.join(tmp, 'primary');
    fs.mkdirSync(primaryDir);
    const primaryFile = path.join(primaryDir, `${BIG.zone}.zone`);
    fs.copyFileSync(big.file, primaryFile);
    const primary = track(
      startBindPrimary(
        primaryDir,
        ports.primary,
        ports.primaryRndc,
        [{ name: BIG.zone, file: primaryFile }],
        opt.profile ? [ns2Peer.port] : [bindPeer.port, ns2Peer.port],
        { cpus: LOAD_CPU },
      ),
    );
    await prober
      .pollUntil(ports.primary, BIG.zone, 'SOA', (p) => soaSerial(p) === SERIAL, {
        everyMs: 100,
        timeoutMs: PRIMARY_READY_MS,
        abort: () => (primary.proc.running() ? undefined : 'primary exited'),
      })
      .catch((e) => {
        throw new Error(`${errText(e)}\n--- primary named.log ---\n${tail(primary.proc.log())}`);
      });
    progress(`primary ready on 127.0.0.1#${ports.primary}`);

    if (opt.profile)
      return await profileRun(tmp, { ...ports, ns2: ns2Peer.port }, big, queryFiles.U, prober, track);

    const res = { ns2: emptyResults(), bind: emptyResults(), nsupdateMs: [] as number[] };

    // ---- start every secondary, one after the other: AXFR ingest ---------------------------
    let bindServer: NamedServer | undefined;
    let ns2Server: Ns2Server | undefined;
    const ns2Options = (p: Peer): Ns2SecondarySpawn => ({
      dir: path.join(tmp, p.id),
      port: p.port,
      controlPort: p.id === 'ns2' ? ports.ns2Control : undefined,
      zone: BIG.zone,
      primaryPort: ports.primary,
      workers: opt['no-workers-key'] ? undefined : p.id === 'ns2-w2' ? 2 : 1,
      env: NS2_IO === 'dgram' || p.id === 'ns2-dgram' ? { NS2_UDP: 'dgram' } : undefined,
      cpus: p.pinned ? SERVER_CPU : undefined,
    });
    for (const p of peers.filter((x) => x.secondary)) {
      const cpus = p.pinned ? SERVER_CPU : undefined;
      p.dir = path.join(tmp, p.id);
      try {
        switch (p.id) {
          case 'bind':
            bindServer = track(
              startBindSecondary(p.dir, p.port, ports.bindRndc, BIG.zone, ports.primary, { cpus }),
            );
            p.proc = bindServer.proc;
            break;
          case 'knot':
            p.proc = track(
              spawnKnot({
                dir: p.dir,
                port: p.port,
                zones: [{ name: BIG.zone, primaryPort: ports.primary }],
                workers: 1,
                cpus,
              }),
            ).proc;
            break;
          case 'nsd':
            p.proc = track(
              spawnNsd({ dir: p.dir, port: p.port, zone: BIG.zone, primaryPort: ports.primary, cpus }),
            ).proc;
            break;
          case 'pdns':
            p.proc = track(
              await spawnPdns({ dir: p.dir, port: p.port, zone: BIG.zone, primaryPort: ports.primary, cpus }),
            ).proc;
            break;
          default: {
            const s = track(spawnNs2Secondary(ns2Options(p)));
            if (p.id === 'ns2') ns2Server = s;
            p.proc = s.proc;
          }
        }
      } catch (e) {
        p.error = `could not start: ${errText(e)}`;
        progress(`${p.label}: ${p.error}`);
        continue;
      }
      p.ingest = await ingest(p.id, p.proc, p.port, big, prober);
      if (p.ingest.error) {
        // First line (what failed) and the log's last line (usually why).
        const lines = p.ingest.error.split('\n').filter((l) => l.trim() !== '');
        p.error = lines.length > 1 ? `${lines[0]} … ${lines[lines.length - 1].trim()}` : lines[0];
      }
      progress(`${p.label} AXFR ingest: ${JSON.stringify(p.ingest)}`);
      if (p.id === 'ns2' && p.ingest.error) failed = true;
    }
    // Disk: once BIND has written its file and NSD its zone file (zonefiles-write), after all.
    await waitFor(
      'zone files written',
      () =>
        (!bindPeer.dir || fs.existsSync(path.join(bindPeer.dir, `${BIG.zone}.bk`))) &&
        (!peer('nsd')?.dir ||
          !peer('nsd')?.proc?.running() ||
          fs.existsSync(path.join(peer('nsd')!.dir!, `${BIG.zone}.zone`))),
      60_000,
      200,
    ).catch((e) => progress(`disk: ${errText(e)}`));
    await sleep(1000);
    for (const p of peers) {
      if (p.dir && p.ingest) p.ingest.diskMiB = dirMiB(p.dir, dataFile);
    }
    res.bind.ingest[BIG.label] = bindPeer.ingest ?? { error: bindPeer.error ?? 'not started' };
    res.ns2.ingest[BIG.label] = ns2Peer.ingest ?? { error: ns2Peer.error ?? 'not started' };

    // ---- the echo servers -------------------------------------------------------------------
    for (const p of peers.filter((x) => !x.secondary)) {
      const cpus = p.pinned ? SERVER_CPU : undefined;
      p.dir = path.join(tmp, p.id);
      fs.mkdirSync(p.dir, { recursive: true });
      const logFile = path.join(p.dir, `${p.id}.log`);
      if (fs.existsSync(ECHO_TS)) {
        // bench/echo.ts serves both: --io dgram (the plain Node ceiling) and --io native (batched).
        const io = p.id === 'echo-native' ? 'native' : 'dgram';
        p.proc = track({
          proc: startProc(
            p.id,
            process.execPath,
            ['--import', 'tsx', ECHO_TS, '--io', io, '--port', String(p.port)],
            {
              cwd: NS2_ROOT,
              logFile,
              cpus,
            },
          ),
        }).proc;
      } else if (p.id === 'echo-dgram') {
        const script = path.join(p.dir, 'echo-dgram.mjs');
        fs.writeFileSync(script, DGRAM_ECHO);
        p.proc = track({
          proc: startProc(p.id, process.execPath, [script, String(p.port)], { cwd: p.dir, logFile, cpus }),
        }).proc;
      } else {
        // Hook: the native echo is bench/echo.ts --io native; without that file there is no row.
        p.error = `${path.relative(NS2_ROOT, ECHO_TS)} not found (the batched echo is not in this checkout)`;
        progress(`${p.label}: ${p.error}`);
        continue;
      }
      const proc = p.proc;
      await prober
        .pollUntil(p.port, 'echo.test', 'A', () => true, {
          everyMs: 50,
          timeoutMs: 30_000,
          abort: () => (proc.running() ? undefined : 'process exited'),
        })
        .then(
          () => progress(`${p.label} answering on 127.0.0.1#${p.port}`),
          (e) => {
            p.error = `${errText(e)}: ${tail(proc.log(), 5)}`;
            progress(`${p.label}: ${p.error}`);
          },
        );
    }

    // ---- IXFR: 10 changes, from nsupdate to the secondary answering ------------------------
    const ixfrServers = () => ({
      bind: bindServer && !bindPeer.error ? bindServer : undefined,
      ns2: ns2Server && !ns2Peer.error ? ns2Server : undefined,
    });
    let serial = SERIAL;
    for (let r = 0; r < IXFR_ROUNDS; r++) {
      const out = await ixfrRound(r, big, primary, ixfrServers(), prober);
      serial = out.serial;
      res.nsupdateMs.push(out.nsupdateMs);
      for (const k of ['bind', 'ns2'] as const) {
        res[k].ixfr.rounds.push(out[k].ms ?? null);
        res[k].ixfr.notifyRounds.push(out[k].notifyMs ?? null);
        if (out[k].kind) res[k].ixfr.kinds.push(out[k].kind);
        if (out[k].error) res[k].ixfr.error = out[k].error;
      }
      progress(
        `IXFR round ${r + 1} (nsupdate ${out.nsupdateMs.toFixed(0)} ms): nsupdate/NOTIFY → answer: BIND ${fmtMs(out.bind.ms)} / ${fmtMs(out.bind.notifyMs)}, ns2 ${fmtMs(out.ns2.ms)} / ${fmtMs(out.ns2.notifyMs)} (${out.ns2.kind ?? out.ns2.error})`,
      );
      await sleep(500);
    }
    for (const k of ['bind', 'ns2'] as const) {
      res[k].ixfr.ms = median(res[k].ixfr.rounds);
      res[k].ixfr.notifyMs = median(res[k].ixfr.notifyRounds);
    }
    if (res.ns2.ixfr.error) failed = true;

    // ---- restart with the zone stored -------------------------------------------------------
    if (bindServer && !bindPeer.error) {
      const out = await restart(
        'BIND',
        bindServer.proc,
        () =>
          startBindSecondary(bindPeer.dir!, bindPeer.port, ports.bindRndc, BIG.zone, ports.primary, {
            cpus: SERVER_CPU,
          }),
        bindPeer.port,
        big,
        serial,
        prober,
      );
      res.bind.restart = out.result;
      bindServer = out.server ? track(out.server) : undefined;
      bindPeer.proc = bindServer?.proc;
      if (out.result.error) bindPeer.error = `restart: ${out.result.error.split('\n')[0]}`;
      progress(`BIND restart: ${JSON.stringify(res.bind.restart)}`);
    }
    if (ns2Server && !ns2Peer.error) {
      const out = await restart(
        'ns2',
        ns2Server.proc,
        () => spawnNs2Secondary({ ...ns2Options(ns2Peer), tag: 'ns2-restart' }),
        ns2Peer.port,
        big,
        serial,
        prober,
      );
      res.ns2.restart = out.result;
      if (out.result.error) {
        failed = true;
        ns2Peer.error = `restart: ${out.result.error.split('\n')[0]}`;
      }
      ns2Server = out.server ? track(out.server) : undefined;
      ns2Peer.proc = ns2Server?.proc;
      progress(`ns2 restart: ${JSON.stringify(res.ns2.restart)}`);
    } else {
      res.ns2.restart.error = `no ns2 holding the ${BIG.label} zone`;
    }

    // ---- dnsperf: alternating rounds, one server at a time -----------------------------------
    const measured = peers.filter((p) => p.proc && !p.error && (!ONLY || ONLY.includes(p.id)));
    for (const p of measured) {
      // Warm-up, not measured: JIT, caches, page cache after the restarts.
      await runDnsperf({
        port: p.port,
        queryFile: queryFiles.U,
        seconds: WARMUP_SECONDS,
        clients: CLIENTS,
        outstanding: OUTSTANDING,
        // Not measured: don't wait 5 s for the last lost queries.
        timeoutSeconds: 1,
        outFile: path.join(tmp, `dnsperf-warmup-${p.id}.out`),
        cwd: tmp,
        cpus: p.pinned ? LOAD_CPU : undefined,
      }).catch((e) => progress(`${p.label} warm-up: ${errText(e)}`));
    }
    for (let r = 0; r < ROUNDS; r++) {
      const order = measured.map((_, i) => measured[(i + r) % measured.length]);
      progress(`round ${r + 1}/${ROUNDS}: ${order.map((p) => p.id).join(', ')}`);
      for (const p of order) {
        for (const file of ['U', 'Z'] as const) {
          if (!p.proc?.running()) {
            p.measures.push({ round: r + 1, file, error: 'server not running' });
            continue;
          }
          await sleep(300);
          const m = await measure(p, file, r + 1, queryFiles[file], tmp);
          p.measures.push(m);
          progress(
            m.error
              ? `  ${p.id} ${file}: FAILED ${m.error}`
              : `  ${p.id} ${file}: ${Math.round(m.qps!)} q/s, ${Math.round(m.answersPerCpuSecond ?? Number.NaN)} answers/CPU-s, lost ${m.lostPct?.toFixed(2)}%, p99 ${m.p99Ms?.toFixed(2)} ms (load avg ${m.loadAvgBefore?.toFixed(2)})`,
          );
        }
      }
    }
    for (const p of measured) {
      p.summary = { U: summarize(p.measures, 'U'), Z: summarize(p.measures, 'Z') };
      const rss = p.measures.map((m) => m.rssMiB).filter((x): x is number => x !== undefined);
      p.servingPeakRssMiB = rss.length ? Math.max(...rss) : undefined;
      if (p.id === 'ns2' && p.summary.U.runs === 0) failed = true;
    }
    res.bind.dnsperf = asDnsperf(bindPeer.measures);
    res.ns2.dnsperf = asDnsperf(ns2Peer.measures);

    // ---- dnsperf during a forced full retransfer of the zone ---------------------------------
    if (ns2Server?.proc.running()) {
      const n = ns2Server;
      res.ns2.duringRetransfer = await duringRetransfer(
        'ns2',
        n.port,
        queryFiles.U,
        tmp,
        big,
        prober,
        async () => {
          const r = await ns2Retransfer(n, BIG.zone, RETRANSFER_TIMEOUT_MS);
          if (r.status !== 200 || !/"transferred"/.test(r.body))
            throw new Error(`retransfer: ${r.status} ${r.body}`);
        },
      );
      if (res.ns2.duringRetransfer.error) failed = true;
      progress(`ns2 during retransfer: ${JSON.stringify(res.ns2.duringRetransfer)}`);
    }
    if (bindServer?.proc.running()) {
      const b = bindServer;
      res.bind.duringRetransfer = await duringRetransfer(
        'BIND',
        b.port,
        queryFiles.U,
        tmp,
        big,
        prober,
        async () => {
          const done = new RegExp(`zone ${BIG.zone.replace(/\./g, '\\.')}/IN: transferred serial`, 'g');
          const count = () => b.proc.log().match(done)?.length ?? 0;
          const before = count();
          await b.rndc(['retransfer', BIG.zone]);
          await waitFor('BIND retransfer', () => count() > before, RETRANSFER_TIMEOUT_MS, 20);
        },
      );
      progress(`BIND during retransfer: ${JSON.stringify(res.bind.duringRetransfer)}`);
    }

    // ---- report ------------------------------------------------------------------------------
    const versions = [env.nsd, env.knot, env.pdns, env.named].filter(Boolean).join('; ');
    const head = `${env.date}, ${env.cpus} CPUs (${env.cpuModel}), Node ${env.node}, dnsperf ${env.dnsperf}, ns2 ${env.git.commit}${env.git.srcDirty ? '+dirty' : ''}${QUICK ? ', QUICK mode' : ''}`;
    const serversTable = peerTable(peers);
    const ratios = ratioTable(peers);
    const rows = buildRows(res);
    process.stdout.write(
      `\nAll servers: secondaries of one BIND primary, zone ${BIG.zone} (${big.records} RRs) by AXFR — ${head}\n${versions}\nPinned rows: server on CPU ${SERVER_CPU} (taskset -c ${SERVER_CPU}), taskset -c ${LOAD_CPU} dnsperf ${DNSPERF_ARGS}; medians of ${ROUNDS} alternating rounds; U = names uniform over ${big.hosts} hosts, Z = Zipf s=1.0; ${QUERY_LINES} queries a file (70% hits, 20% NXDOMAIN, 10% NODATA)\n\n${serversTable}\n\nns2 (workers: 1) ÷ each peer (same run):\n\n${ratios}\n\nns2 vs BIND 9 secondary, with issue #7's targets:\n\n${table(rows)}\n\n`,
    );
    const file = writeResults(QUICK ? 'quick' : undefined, {
      env,
      mode: QUICK ? 'quick' : 'full',
      settings: {
        records: BIG.records,
        zone: BIG.zone,
        dnsperf: DNSPERF_ARGS,
        rounds: ROUNDS,
        queryLines: QUERY_LINES,
        warmupSeconds: WARMUP_SECONDS,
        serverCpu: SERVER_CPU,
        loadCpu: LOAD_CPU,
        ns2Io: NS2_IO,
        workersKey: !opt['no-workers-key'],
        echo: fs.existsSync(ECHO_TS) ? 'bench/echo.ts' : 'inline dgram echo',
      },
      zones,
      servers: peers.map(({ proc, ...p }) => ({ ...p, pid: proc?.pid })),
      res,
      rows,
      tables: { servers: serversTable, ratios },
    });
    process.stdout.write(`results: ${path.relative(process.cwd(), file)}\n`);
    return failed ? 1 : 0;
  } catch (e) {
    failed = true;
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 2;
  } finally {
    prober.close();
    for (const p of procs.reverse()) await p.stop();
    if (opt.keep || failed) process.stderr.write(`kept ${tmp} (logs, configs, databases)\n`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

/** One dnsperf run: qps, lost, latency percentiles (-v), the server's CPU seconds and RSS. */
async function measure(
  p: Peer,
  file: 'U' | 'Z',
  round: number,
  queryFile: string,
  tmp: string,
): Promise<Measure> {
  const pid = p.proc!.pid;
  const outFile = path.join(tmp, `dnsperf-${p.id}-${file}-${round}.out`);
  const loadAvgBefore = os.loadavg()[0];
  const rss = new RssSampler(pid, 100, false);
  const cpu0 = cpuSeconds(pid);
  try {
    const d = await runDnsperf({
      port: p.port,
      queryFile,
      seconds: DNSPERF_SECONDS,
      clients: CLIENTS,
      outstanding: OUTSTANDING,
      verbose: true,
      outFile,
      cwd: tmp,
      cpus: p.pinned ? LOAD_CPU : undefined,
    });
    const cpu1 = cpuSeconds(pid);
    const serverCpuSeconds = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
    return {
      round,
      file,
      qps: d.qps,
      sent: d.sent,
      completed: d.completed,
      lost: d.lost,
      lostPct: d.sent > 0 ? (100 * d.lost) / d.sent : undefined,
      avgMs: d.latencyMs.avg,
      p50Ms: d.percentilesMs?.p50,
      p99Ms: d.percentilesMs?.p99,
      p999Ms: d.percentilesMs?.p999,
      maxMs: d.latencyMs.max,
      serverCpuSeconds,
      answersPerCpuSecond: serverCpuSeconds ? d.completed / serverCpuSeconds : undefined,
      rssMiB: rss.stop(),
      loadAvgBefore,
      rcodes: d.rcodes,
    };
  } catch (e) {
    rss.stop();
    return { round, file, loadAvgBefore, error: errText(e).split('\n')[0] };
  } finally {
    fs.rmSync(outFile, { force: true }); // large -v output
  }
}

function summarize(ms: Measure[], file: 'U' | 'Z'): Summary {
  const ok = ms.filter((m) => m.file === file && !m.error);
  const med = (f: (m: Measure) => number | undefined) => medianOf(ok.map(f));
  return {
    qps: med((m) => m.qps),
    answersPerCpuSecond: med((m) => m.answersPerCpuSecond),
    lostPct: med((m) => m.lostPct),
    p99Ms: med((m) => m.p99Ms),
    avgMs: med((m) => m.avgMs),
    runs: ok.length,
  };
}

/** The U runs' medians in dnsperf's result shape (for the ns2-vs-BIND rows). */
function asDnsperf(ms: Measure[]): ServerResults['dnsperf'] {
  const ok = ms.filter((m) => m.file === 'U' && !m.error);
  if (ok.length === 0)
    return { error: ms.find((m) => m.error)?.error ?? 'not measured' } as ServerResults['dnsperf'];
  const med = (f: (m: Measure) => number | undefined) => medianOf(ok.map(f)) ?? Number.NaN;
  return {
    qps: med((m) => m.qps),
    sent: med((m) => m.sent),
    completed: med((m) => m.completed),
    lost: med((m) => m.lost),
    runSeconds: DNSPERF_SECONDS,
    rcodes: ok[0].rcodes ?? {},
    latencyMs: { avg: med((m) => m.avgMs), min: Number.NaN, max: med((m) => m.maxMs), stddev: Number.NaN },
    percentilesMs: {
      p50: med((m) => m.p50Ms),
      p90: Number.NaN,
      p99: med((m) => m.p99Ms),
      p999: med((m) => m.p999Ms),
    },
    perSecond: [],
    queriesPerCpuSecond: med((m) => m.answersPerCpuSecond),
  };
}

/** Median of the defined values (undefined when none). */
function medianOf(xs: (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

async function ingest(
  who: string,
  proc: Proc,
  port: number,
  z: ZoneInfo,
  prober: Prober,
): Promise<IngestResult> {
  const rss = new RssSampler(proc.pid, 50);
  try {
    const at = await prober.pollUntil(port, z.name, 'SOA', (p) => soaSerial(p) === z.serial, {
      everyMs: 20,
      timeoutMs: INGEST_TIMEOUT_MS,
      abort: () => (proc.running() ? undefined : 'process exited'),
    });
    const seconds = (at - proc.startedAt) / 1000;
    const cpu = cpuSeconds(proc.pid);
    await sleep(1000);
    const peakRssMiB = rss.stop();
    const check = await checkHost(port, z, z.hosts - 1, prober);
    return {
      seconds,
      cpuSeconds: cpu,
      peakRssMiB,
      rssAfterMiB: rssMiB(proc.pid),
      ...(check ? { error: check } : {}),
    };
  } catch (e) {
    const peakRssMiB = rss.stop();
    return { peakRssMiB, error: `${who}: ${errText(e)}\n--- log tail ---\n${tail(proc.log())}` };
  }
}

/** undefined when h<i> answers its A record, else what was wrong. */
async function checkHost(port: number, z: ZoneInfo, i: number, prober: Prober): Promise<string | undefined> {
  const name = `h${i}.${z.name}`;
  const p = await prober.query(port, name, 'A', 2000);
  if (!p) return `no answer to ${name} A`;
  return aRecords(p, name).includes(ipv4(i)) ? undefined : `wrong answer to ${name} A`;
}

interface IxfrOutcome {
  /** nsupdate started → answer. */
  ms?: number;
  /** Primary logged "sending notifies" → answer. */
  notifyMs?: number;
  answeredAt?: number;
  kind?: string;
  error?: string;
}

/**
 * One nsupdate with 10 changes (5 new names, 5 A records deleted); the primary journals it and
 * NOTIFYs both secondaries. Times nsupdate start → each secondary answering the last new name.
 */
async function ixfrRound(
  r: number,
  z: ZoneInfo,
  primary: NamedServer,
  servers: { bind?: NamedServer; ns2?: Ns2Server },
  prober: Prober,
): Promise<{ serial: number; nsupdateMs: number; bind: IxfrOutcome; ns2: IxfrOutcome }> {
  const primaryPort = primary.port;
  const lines: string[] = [];
  for (let k = 0; k < 5; k++)
    lines.push(`update add ixfr${r}-${k}.${z.name}. 300 IN A 192.0.2.${10 * r + k + 1}`);
  const deleted: number[] = [];
  for (let k = 0; k < 5; k++) {
    const i = 1 + (((r * 5 + k) * 7919) % (z.hosts - 1));
    deleted.push(i);
    lines.push(`update delete h${i}.${z.name}. A`);
  }
  const probe = `ixfr${r}-4.${z.name}`;
  const probeIp = `192.0.2.${10 * r + 5}`;
  const script = `server 127.0.0.1 ${primaryPort}\nzone ${z.name}\n${lines.join('\n')}\nsend\n`;

  const bindLogAt = servers.bind?.proc.log().length ?? 0;
  const ns2Before = servers.ns2 ? ns2LogEvents(servers.ns2, 'zone transferred').length : 0;
  const start = now();
  const nsupdate = run('nsupdate', [], { input: script, timeoutMs: 30_000 });
  const wait = (s: { port: number; proc: Proc } | undefined): Promise<IxfrOutcome> =>
    s
      ? prober
          .pollUntil(s.port, probe, 'A', (p) => aRecords(p, probe).includes(probeIp), {
            everyMs: 10,
            timeoutMs: IXFR_TIMEOUT_MS,
            abort: () => (s.proc.running() ? undefined : 'process exited'),
          })
          .then(
            (at) => ({ ms: at - start, answeredAt: Date.now() - (now() - at) }),
            (e) => ({ error: errText(e) }),
          )
      : Promise.resolve({ error: 'not running' });
  const [nu, b, n] = await Promise.all([nsupdate, wait(servers.bind), wait(servers.ns2)]);
  if (nu.code !== 0) throw new Error(`nsupdate failed: ${nu.stderr}${nu.stdout}`);
  const soa = await prober.query(primaryPort, z.name, 'SOA', 2000);
  const serial = soa ? (soaSerial(soa) ?? Number.NaN) : Number.NaN;
  // The issue's measure starts at the NOTIFY: the primary logs when it sends them (ms, local time).
  const sentAt = notifySentAt(primary.proc.log(), z.name, serial);
  for (const o of [b, n]) {
    if (sentAt !== undefined && o.answeredAt !== undefined) o.notifyMs = o.answeredAt - sentAt;
  }

  // What each secondary did, and whether the deletions arrived too.
  await sleep(200);
  if (servers.bind) {
    const fresh = servers.bind.proc.log().slice(bindLogAt);
    // BIND 9.18 does not name the transfer type in its log; an IXFR carries a handful of records.
    const done = [...fresh.matchAll(/Transfer completed: \d+ messages, (\d+) records/g)];
    b.kind =
      done.length === 0
        ? 'none logged'
        : done.map((m) => (Number(m[1]) < z.records / 2 ? 'ixfr' : 'axfr')).join('+');
  }
  if (servers.ns2) {
    const ev = ns2LogEvents(servers.ns2, 'zone transferred').slice(ns2Before);
    n.kind = ev.map((e) => String(e.kind)).join('+') || 'none logged';
  }
  for (const [o, s] of [
    [b, servers.bind],
    [n, servers.ns2],
  ] as const) {
    if (!s || o.error) continue;
    for (const i of deleted) {
      const p = await prober.query(s.port, `h${i}.${z.name}`, 'A', 2000);
      if (!p || aRecords(p, `h${i}.${z.name}`).length > 0) o.error = `h${i} A still answered after the IXFR`;
    }
  }
  return { serial, nsupdateMs: nu.ms, bind: b, ns2: n };
}

/** Stop, start again, time process start → first correct answer for an existing name. */
async function restart<S extends { proc: Proc; port: number }>(
  who: string,
  old: Proc,
  start: () => S,
  port: number,
  z: ZoneInfo,
  serial: number,
  prober: Prober,
): Promise<{ result: ServerResults['restart']; server?: S }> {
  const stopStart = now();
  await old.stop();
  const stopMs = now() - stopStart;
  const server = start();
  const name = `h${z.hosts - 1}.${z.name}`;
  try {
    const at = await prober.pollUntil(port, name, 'A', (p) => aRecords(p, name).includes(ipv4(z.hosts - 1)), {
      everyMs: 10,
      timeoutMs: RESTART_TIMEOUT_MS,
      abort: () => (server.proc.running() ? undefined : 'process exited'),
    });
    const ms = at - server.proc.startedAt;
    const rssAtAnswerMiB = rssMiB(server.proc.pid);
    const soa = await prober.query(port, z.name, 'SOA', 2000);
    return {
      result: { ms, stopMs, rssAtAnswerMiB, serialOk: soa ? soaSerial(soa) === serial : false },
      server,
    };
  } catch (e) {
    return {
      result: { stopMs, error: `${who}: ${errText(e)}\n--- log tail ---\n${tail(server.proc.log())}` },
      server,
    };
  }
}

/** dnsperf for the whole of a forced retransfer (3 s before, 2 s after); qps within the window. */

async function duringRetransfer(
  who: string,
  port: number,
  queryFile: string,
  tmp: string,
  z: ZoneInfo,
  prober: Prober,
  retransfer: () => Promise<void>,
): Promise<NonNullable<ServerResults['duringRetransfer']>> {
  const outFile = path.join(tmp, `dnsperf-retransfer-${who}.out`);
  const dp = startDnsperf({
    port,
    queryFile,
    seconds: 900,
    clients: CLIENTS,
    outstanding: OUTSTANDING,
    verbose: false,
    outFile,
    cwd: tmp,
    cpus: LOAD_CPU,
  });
  let from = 0;
  let to = 0;
  let error: string | undefined;
  let probe: ProbeStats | undefined;
  try {
    await sleep(3000);
    from = Date.now() / 1000;
    const p = startLatencyProbe(prober, port, `h${z.hosts - 1}.${z.name}`, 'A', 10);
    try {
      await retransfer();
    } finally {
      to = Date.now() / 1000;
      probe = await p.stop();
    }
    await sleep(2000);
  } catch (e) {
    error = errText(e);
  } finally {
    await dp.stop('SIGINT');
  }
  try {
    const r = await parseDnsperf(outFile, false);
    if (error || !to) return { error: error ?? 'no transfer', lost: r.lost };
    const startEpoch = r.perSecond.length ? r.perSecond[0][0] - 1 : from - 3;
    return {
      seconds: to - from,
      qps: qpsBetween(r.perSecond, from, to),
      minPerSecondQps: minQpsBetween(r.perSecond, from, to),
      baselineQps: qpsBetween(r.perSecond, startEpoch + 0.5, from),
      lost: r.lost,
      probe,
    };
  } catch (e) {
    return { error: `${error ?? ''} ${errText(e)}`.trim() };
  }
}

// ---------------------------------------------------------------------------------------------
// Profile mode: ns2 only, under --cpu-prof

async function profileRun(
  tmp: string,
  ports: { primary: number; ns2: number; ns2Control: number },
  z: ZoneInfo,
  queryFile: string,
  prober: Prober,
  track: <T extends { proc: Proc }>(s: T) => T,
): Promise<number> {
  const stamp = timestamp();
  const profDir = path.join(NS2_ROOT, 'bench/results/profiles');
  fs.mkdirSync(profDir, { recursive: true });
  const base = {
    dir: path.join(tmp, 'ns2-prof'),
    port: ports.ns2,
    controlPort: ports.ns2Control,
    zone: z.name,
    primaryPort: ports.primary,
    workers: opt['no-workers-key'] ? undefined : 1,
    env: NS2_IO === 'dgram' ? { NS2_UDP: 'dgram' } : undefined,
    cpus: SERVER_CPU,
  };
  const flags = (name: string) => ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', name];
  const axfrName = `${stamp}-axfr-${BIG.label}.cpuprofile`;
  const serveName = `${stamp}-dnsperf-${BIG.label}.cpuprofile`;

  // (a) AXFR ingest: start, wait for the serial, stop (the profile is written at exit).
  const a = track(spawnNs2Secondary({ ...base, nodeFlags: flags(axfrName), tag: 'ns2-prof-axfr' }));
  const ing = await ingest('ns2', a.proc, ports.ns2, z, prober);
  progress(`ns2 under --cpu-prof, AXFR ${BIG.label}: ${JSON.stringify(ing)}`);
  await a.proc.stop('SIGTERM', 30_000);
  if (ing.error) throw new Error(ing.error);

  // (b) dnsperf: restart on the stored zone, wait for an answer, dnsperf, stop.
  const b = track(spawnNs2Secondary({ ...base, nodeFlags: flags(serveName), tag: 'ns2-prof-serve' }));
  const name = `h${z.hosts - 1}.${z.name}`;
  await prober.pollUntil(ports.ns2, name, 'A', (p) => aRecords(p, name).length > 0, {
    everyMs: 20,
    timeoutMs: RESTART_TIMEOUT_MS,
  });
  const d = await runDnsperf({
    port: ports.ns2,
    queryFile,
    seconds: DNSPERF_SECONDS,
    clients: CLIENTS,
    outstanding: OUTSTANDING,
    outFile: path.join(tmp, 'dnsperf-prof.out'),
    cwd: tmp,
    cpus: LOAD_CPU,
  });
  progress(`ns2 under --cpu-prof, dnsperf: ${Math.round(d.qps)} q/s (profiling slows it)`);
  await b.proc.stop('SIGTERM', 30_000);

  const summaries: ProfileSummary[] = [];
  for (const f of [axfrName, serveName]) {
    const file = path.join(profDir, f);
    if (!fs.existsSync(file))
      throw new Error(`no profile written: ${file} (did ns2 exit cleanly on SIGTERM?)`);
    const s = summarise(file, 15);
    summaries.push(s);
    process.stdout.write(`\n${formatSummary(s)}\n`);
  }
  const file = writeResults('profile', {
    env: environment(),
    mode: 'profile',
    zone: z,
    ingest: ing,
    dnsperfUnderProfiler: d,
    profiles: summaries.map((s) => ({ ...s, file: path.relative(NS2_ROOT, s.file) })),
  });
  process.stdout.write(
    `\nprofiles: ${path.relative(process.cwd(), profDir)}/${stamp}-*.cpuprofile\nresults: ${path.relative(process.cwd(), file)}\n`,
  );
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Rows: ns2 against BIND with issue #7's targets

function buildRows(res: { ns2: ServerResults; bind: ServerResults; nsupdateMs: number[] }): Row[] {
  const rows: Row[] = [];
  const { ns2, bind } = res;
  const firstLine = (s?: string) => s?.split('\n')[0];
  for (const s of SIZES) {
    const n = ns2.ingest[s.label] ?? {};
    const b = bind.ingest[s.label] ?? {};
    const isBig = s === BIG && !QUICK;
    const ingestRow: Row = {
      metric: `AXFR ingest ${s.label} RRs, start → serving serial`,
      unit: 's',
      ns2: n.seconds,
      bind: b.seconds,
      better: 'lower',
      error: firstLine(n.error),
      note: b.error ? `BIND: ${firstLine(b.error)}` : undefined,
    };
    const rssRow: Row = {
      metric: `peak RSS during ${s.label} ingest`,
      unit: 'MiB',
      ns2: n.error ? undefined : n.peakRssMiB,
      bind: b.peakRssMiB,
      better: 'lower',
    };
    if (isBig) {
      ingestRow.target = '≤ 1.0× BIND';
      ingestRow.met = n.seconds !== undefined && b.seconds !== undefined ? n.seconds <= b.seconds : false;
      rssRow.target = '≤ 0.25× BIND';
      rssRow.met =
        rssRow.ns2 !== undefined && b.peakRssMiB !== undefined ? rssRow.ns2 <= 0.25 * b.peakRssMiB : false;
    }
    rows.push(ingestRow, {
      metric: `CPU seconds used by then (${s.label})`,
      unit: 's',
      ns2: n.error ? undefined : n.cpuSeconds,
      bind: b.cpuSeconds,
      better: 'lower',
    });
    rows.push(rssRow);
    rows.push({
      metric: `on disk after ${s.label} ingest`,
      unit: 'MiB',
      ns2: n.diskMiB,
      bind: b.diskMiB,
      better: 'lower',
    });
  }
  rows.push({
    metric: `IXFR 10 changes into ${BIG.label}: NOTIFY sent → answer, median of ${IXFR_ROUNDS}`,
    unit: 'ms',
    ns2: ns2.ixfr.notifyMs,
    bind: bind.ixfr.notifyMs,
    better: 'lower',
    target: '< 100 ms',
    met: ns2.ixfr.notifyMs !== undefined && ns2.ixfr.notifyMs < 100,
    error: firstLine(ns2.ixfr.error),
    note: `from the primary's "sending notifies" log line (ms resolution); transfers seen: ns2 ${ns2.ixfr.kinds.join(', ') || 'none'}; BIND ${bind.ixfr.kinds.join(', ') || 'none'}`,
  });
  rows.push({
    metric: `IXFR 10 changes into ${BIG.label}: nsupdate → answer, median of ${IXFR_ROUNDS}`,
    unit: 'ms',
    ns2: ns2.ixfr.ms,
    bind: bind.ixfr.ms,
    better: 'lower',
    error: firstLine(ns2.ixfr.error),
    note: `includes nsupdate itself and the primary applying the update (nsupdate spawn → exit: median ${median(res.nsupdateMs)?.toFixed(0)} ms)`,
  });
  rows.push({
    metric: `restart → first correct answer, ${BIG.label} stored`,
    unit: 'ms',
    ns2: ns2.restart.ms,
    bind: bind.restart.ms,
    better: 'lower',
    target: '< 1000 ms',
    met: ns2.restart.ms !== undefined && ns2.restart.ms < 1000,
    error: firstLine(ns2.restart.error),
    note: ns2.restart.serialOk === false ? 'ns2 served a stale serial after restart' : undefined,
  });
  const dn = ns2.dnsperf;
  const db = bind.dnsperf;
  const ok = (d?: ServerResults['dnsperf']) => (d && !d.error ? d : undefined);
  rows.push({
    metric: `queries/s, U file, taskset -c ${LOAD_CPU} dnsperf ${DNSPERF_ARGS}, median of ${ROUNDS}, ${BIG.label} zone`,
    unit: 'q/s',
    ns2: ok(dn)?.qps,
    bind: ok(db)?.qps,
    better: 'higher',
    target: '≥ 1.0× BIND',
    met: ok(dn) && ok(db) ? dn!.qps >= db!.qps : false,
    error: firstLine(dn?.error),
  });
  rows.push({
    metric: 'answers per CPU-second of the server process, same run',
    unit: 'q/s',
    ns2: ok(dn)?.queriesPerCpuSecond,
    bind: ok(db)?.queriesPerCpuSecond,
    better: 'higher',
    note: 'less sensitive to other load on the machine than queries/s; every thread of the server counts (named -n 1 still runs a few helper threads)',
  });
  rows.push({
    metric: 'queries lost (timed out)',
    unit: '%',
    ns2: ok(dn) ? (100 * dn!.lost) / dn!.sent : undefined,
    bind: ok(db) ? (100 * db!.lost) / db!.sent : undefined,
    better: 'lower',
  });
  const lat = (
    label: string,
    pick: (d: DnsperfResult) => number | undefined,
    target?: string,
    factor?: number,
  ) => {
    const a = ok(dn) ? pick(dn!) : undefined;
    const c = ok(db) ? pick(db!) : undefined;
    rows.push({
      metric: `latency ${label} under that load`,
      unit: 'ms',
      ns2: a,
      bind: c,
      better: 'lower',
      target,
      met: factor === undefined ? undefined : a !== undefined && c !== undefined ? a <= factor * c : false,
    });
  };
  lat('average (U)', (d) => d.latencyMs.avg);
  lat('p50', (d) => d.percentilesMs?.p50);
  lat('p99', (d) => d.percentilesMs?.p99, '≤ 2× BIND', 2);
  lat('p99.9', (d) => d.percentilesMs?.p999);
  lat('max', (d) => d.latencyMs.max);
  const rn = ns2.duringRetransfer;
  const rb = bind.duringRetransfer;
  rows.push({
    metric: `queries/s during a forced ${BIG.label} AXFR (retransfer)`,
    unit: 'q/s',
    ns2: rn?.qps,
    bind: rb?.qps,
    better: 'higher',
    error: firstLine(rn?.error),
  });
  const frac = (r?: NonNullable<ServerResults['duringRetransfer']>, d?: DnsperfResult) =>
    r?.qps !== undefined && d && Number.isFinite(d.qps) ? r.qps / d.qps : undefined;
  const fn = frac(rn, ok(dn));
  rows.push({
    metric: 'queries/s during AXFR ÷ idle queries/s (same server)',
    unit: '×',
    ns2: fn,
    bind: frac(rb, ok(db)),
    better: 'higher',
    target: '≥ 0.8',
    met: fn !== undefined && fn >= 0.8,
  });
  rows.push({
    metric: 'lowest 1-second queries/s during that AXFR',
    unit: 'q/s',
    ns2: rn?.minPerSecondQps,
    bind: rb?.minPerSecondQps,
    better: 'higher',
  });
  rows.push({
    metric: 'longest stretch with no answer during that AXFR (probe every 10 ms)',
    unit: 'ms',
    ns2: rn?.probe?.maxGapMs,
    bind: rb?.probe?.maxGapMs,
    better: 'lower',
    note: [
      rn?.probe && `ns2 ${rn.probe.sent - rn.probe.answered}`,
      rb?.probe && `BIND ${rb.probe.sent - rb.probe.answered}`,
    ]
      .filter(Boolean)
      .join(', ')
      .replace(/^(.+)$/, 'probe queries left unanswered (dropped in a stall, or > 5 s): $1'),
  });
  rows.push({
    metric: `forced ${BIG.label} AXFR duration (retransfer → applied)`,
    unit: 's',
    ns2: rn?.seconds,
    bind: rb?.seconds,
    better: 'lower',
  });
  return rows;
}

function median(xs: (number | null)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length === 0 || v.length < xs.length) return undefined;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

const fmtMs = (ms?: number) => (ms === undefined ? 'failed' : `${ms.toFixed(1)} ms`);

// ---------------------------------------------------------------------------------------------
// Tables

const f0 = (v?: number) =>
  v === undefined || !Number.isFinite(v) ? '—' : Math.round(v).toLocaleString('en-US');
const f1 = (v?: number) => (v === undefined || !Number.isFinite(v) ? '—' : v < 10 ? v.toFixed(1) : f0(v));
const f2 = (v?: number) =>
  v === undefined || !Number.isFinite(v) ? '—' : v < 10 ? v.toFixed(2) : v.toFixed(1);

function markdown(head: string[], body: string[][], leftCols = 1): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < leftCols ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i < leftCols ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(head), sep, ...body.map(line)].join('\n');
}

/** The main table: one row per server. */
function peerTable(peers: Peer[]): string {
  const head = [
    'server (one core)',
    'AXFR ingest s',
    'peak RSS MiB (ingest / serving)',
    'disk MiB',
    'qps U',
    'qps Z',
    'answers per CPU-s U/Z',
    'lost % U/Z',
    'p99 ms U/Z',
  ];
  const notes: string[] = [];
  const body = peers.map((p) => {
    const u = p.summary?.U;
    const z = p.summary?.Z;
    if (p.error) notes.push(`  * ${p.label}: ${p.error}`);
    const ing = p.ingest;
    return [
      p.label,
      p.secondary ? (ing?.error ? 'failed' : f2(ing?.seconds)) : 'n/a',
      p.secondary ? `${f0(ing?.peakRssMiB)} / ${f0(p.servingPeakRssMiB)}` : `— / ${f0(p.servingPeakRssMiB)}`,
      p.secondary ? (ing?.error ? '—' : f1(ing?.diskMiB)) : 'n/a',
      f0(u?.qps),
      f0(z?.qps),
      `${f0(u?.answersPerCpuSecond)} / ${f0(z?.answersPerCpuSecond)}`,
      `${f2(u?.lostPct)} / ${f2(z?.lostPct)}`,
      `${f2(u?.p99Ms)} / ${f2(z?.p99Ms)}`,
    ];
  });
  return [markdown(head, body), ...(notes.length ? ['', 'notes:', ...notes] : [])].join('\n');
}

/** ns2 (workers: 1) ÷ every peer, per metric. */
function ratioTable(peers: Peer[]): string {
  const ns2 = peers.find((p) => p.id === 'ns2');
  const others = (['bind', 'pdns', 'knot', 'nsd'] as const)
    .map((id) => peers.find((p) => p.id === id))
    .filter((p): p is Peer => p !== undefined);
  if (!ns2) return '(no ns2)';
  const metrics: [string, 'lower' | 'higher', (p: Peer) => number | undefined][] = [
    ['AXFR ingest s', 'lower', (p) => (p.ingest?.error ? undefined : p.ingest?.seconds)],
    ['peak RSS during ingest MiB', 'lower', (p) => (p.ingest?.error ? undefined : p.ingest?.peakRssMiB)],
    ['peak RSS serving MiB', 'lower', (p) => p.servingPeakRssMiB],
    ['disk MiB', 'lower', (p) => (p.ingest?.error ? undefined : p.ingest?.diskMiB)],
    ['qps U', 'higher', (p) => p.summary?.U.qps],
    ['qps Z', 'higher', (p) => p.summary?.Z.qps],
    ['answers per CPU-s U', 'higher', (p) => p.summary?.U.answersPerCpuSecond],
    ['answers per CPU-s Z', 'higher', (p) => p.summary?.Z.answersPerCpuSecond],
    ['lost % U', 'lower', (p) => p.summary?.U.lostPct],
    ['lost % Z', 'lower', (p) => p.summary?.Z.lostPct],
    ['p99 ms U', 'lower', (p) => p.summary?.U.p99Ms],
    ['p99 ms Z', 'lower', (p) => p.summary?.Z.p99Ms],
  ];
  const head = ['metric (ns2 ÷ peer)', 'ns2', ...others.map((o) => `÷ ${o.label}`), 'better'];
  const body = metrics.map(([name, better, pick]) => {
    const a = pick(ns2);
    return [
      name,
      name.startsWith('qps') || name.startsWith('answers') ? f0(a) : f2(a),
      ...others.map((o) => {
        const b = pick(o);
        if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b)) return '—';
        if (b === 0) return a === 0 ? '= (both 0)' : '— (peer 0)';
        return `${(a / b).toFixed(2)}×`;
      }),
      better,
    ];
  });
  return markdown(head, body);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`bench: ${errText(e)}\n`);
    process.exitCode = 2;
  },
);
