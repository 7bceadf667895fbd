/**
 * `npm run bench`: ns2 against a BIND 9 secondary, in one run, on this machine (issue #7).
 *
 *   npm run bench                 full run: 100k and 1M-RR zones, dnsperf 20 s  (< 15 min)
 *   npm run bench -- --quick      100k zone only, dnsperf 5 s                    (~1-2 min)
 *   npm run bench -- --profile    ns2 only, under node --cpu-prof: (a) AXFR ingest, (b) dnsperf;
 *                                 prints the top functions by self time (add --quick for 100k)
 *   --keep                        keep the temp dir (zones, configs, logs, databases)
 *   --ns2 DIR                     measure the ns2 built in DIR (dist/cli.js), default this repo
 *
 * One BIND primary (`named -g -n 1`, dynamic zones, ixfr-from-differences, max-ixfr-ratio
 * unlimited, also-notify to both secondaries) serves generated zones. For each zone size a fresh
 * BIND secondary and a fresh ns2 transfer it, one after the other so they don't share the CPU.
 * With the largest zone loaded, both then get: 10-change IXFRs (NOTIFY → answer), a restart
 * (process start → first correct answer), dnsperf (one server at a time), and dnsperf during a
 * forced full retransfer. Results: a table on stdout and bench/results/<timestamp>.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { aRecords, Prober, type ProbeStats, soaSerial, startLatencyProbe } from './lib/dns.js';
import {
  type DnsperfResult,
  minQpsBetween,
  parseDnsperf,
  qpsBetween,
  runDnsperf,
  startDnsperf,
} from './lib/dnsperf.js';
import { cpuSeconds, freePort, now, type Proc, RssSampler, rssMiB, run, sleep, waitFor } from './lib/proc.js';
import { type Row, table } from './lib/report.js';
import { environment, timestamp, writeResults } from './lib/results.js';
import {
  type NamedServer,
  NS2_ROOT,
  type Ns2Server,
  notifySentAt,
  ns2LogEvents,
  ns2Retransfer,
  ns2Root,
  startBindSecondary,
  startNs2,
  startPrimary,
  tail,
} from './lib/servers.js';
import { ipv4, writeQueries, writeZone, type ZoneInfo } from './lib/zone.js';
import { formatSummary, type ProfileSummary, summarise } from './top-profile.js';

// named, rndc and nsupdate live in /usr/sbin and /usr/bin on Debian.
process.env.PATH = `/usr/local/sbin:/usr/sbin:/sbin:${process.env.PATH ?? '/usr/bin:/bin'}`;

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    ns2: { type: 'string' },
  },
});
if (opt.ns2) process.env.NS2_BENCH_ROOT = path.resolve(opt.ns2);

const QUICK = opt.quick;
const SIZES = QUICK
  ? [{ label: '100k', records: 100_000, zone: 'b100k.test' }]
  : [
      { label: '100k', records: 100_000, zone: 'b100k.test' },
      { label: '1M', records: 1_000_000, zone: 'b1m.test' },
    ];
const BIG = SIZES[SIZES.length - 1];
const DNSPERF_SECONDS = QUICK ? 5 : 20;
const WARMUP_SECONDS = QUICK ? 2 : 3;
const QUERY_LINES = 200_000;
const IXFR_ROUNDS = 3;
const SERIAL = 1000;
/** Bounds: the full run must end within 15 minutes even when ns2 is slow. */
const PRIMARY_READY_MS = 180_000;
const INGEST_TIMEOUT_MS = QUICK ? 120_000 : 300_000;
const IXFR_TIMEOUT_MS = 60_000;
const RESTART_TIMEOUT_MS = 120_000;
const RETRANSFER_TIMEOUT_MS = QUICK ? 120_000 : 300_000;

const t0 = now();
const progress = (msg: string) =>
  process.stderr.write(`[${((now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

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
  dnsperf?: DnsperfResult & {
    /** Server process CPU seconds during the measured run, and answers per CPU second. */
    serverCpuSeconds?: number;
    queriesPerCpuSecond?: number;
    /** 1-minute load average just before: other work on the machine skews wall-clock figures. */
    loadAvgBefore?: number;
    error?: string;
  };
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
    progress(
      `temp dir ${tmp}; ns2 ${env.git.commit}${env.git.srcDirty ? ' (src/ has uncommitted changes)' : ''} from ${env.ns2Root}`,
    );

    // Zones and queries.
    const zones: Record<string, ZoneInfo> = {};
    for (const s of SIZES) {
      zones[s.label] = writeZone(path.join(tmp, `${s.zone}.zone`), s.zone, s.records, SERIAL);
    }
    const queryFile = path.join(tmp, 'queries.txt');
    writeQueries(queryFile, zones[BIG.label], QUERY_LINES);
    progress(`zones written: ${SIZES.map((s) => `${s.zone} ${zones[s.label].records} RRs`).join(', ')}`);

    const ports = {
      primary: await freePort(),
      primaryRndc: await freePort(),
      bind: await freePort(),
      bindRndc: await freePort(),
      ns2: await freePort(),
      ns2Control: await freePort(),
    };

    // The primary. Its zone files are copies: BIND rewrites dynamic zones' files.
    const primaryDir = path.join(tmp, 'primary');
    fs.mkdirSync(primaryDir);
    const primaryZones = SIZES.map((s) => {
      const file = path.join(primaryDir, `${s.zone}.zone`);
      fs.copyFileSync(zones[s.label].file, file);
      return { name: s.zone, file };
    });
    const primary = track(
      startPrimary(
        primaryDir,
        ports.primary,
        ports.primaryRndc,
        primaryZones,
        opt.profile ? [ports.ns2] : [ports.bind, ports.ns2],
      ),
    );
    for (const s of SIZES) {
      await prober
        .pollUntil(ports.primary, s.zone, 'SOA', (p) => soaSerial(p) === SERIAL, {
          everyMs: 100,
          timeoutMs: PRIMARY_READY_MS,
          abort: () => (primary.proc.running() ? undefined : 'primary exited'),
        })
        .catch((e) => {
          throw new Error(`${errText(e)}\n--- primary named.log ---\n${tail(primary.proc.log())}`);
        });
    }
    progress(`primary ready on 127.0.0.1#${ports.primary}`);

    if (opt.profile) return await profileRun(tmp, ports, zones[BIG.label], queryFile, prober, track);

    const res = { ns2: emptyResults(), bind: emptyResults(), nsupdateMs: [] as number[] };
    let bind: NamedServer | undefined;
    let ns2: Ns2Server | undefined;

    // ---- AXFR ingest, per size, one server at a time -----------------------------------------
    for (const s of SIZES) {
      const z = zones[s.label];
      const last = s === BIG;
      const bindDir = path.join(tmp, `bind-${s.label}`);
      const b = track(startBindSecondary(bindDir, ports.bind, ports.bindRndc, s.zone, ports.primary));
      res.bind.ingest[s.label] = await ingest('BIND', b.proc, ports.bind, z, prober);
      res.bind.ingest[s.label].diskMiB = dirMiB(bindDir, `${s.zone}.bk`);
      progress(`BIND ${s.label}: ${JSON.stringify(res.bind.ingest[s.label])}`);
      if (last) bind = b;
      else await b.proc.stop();

      const n = track(
        startNs2({
          dir: path.join(tmp, `ns2-${s.label}`),
          port: ports.ns2,
          controlPort: ports.ns2Control,
          zone: s.zone,
          primaryPort: ports.primary,
        }),
      );
      res.ns2.ingest[s.label] = await ingest('ns2', n.proc, ports.ns2, z, prober);
      res.ns2.ingest[s.label].diskMiB = dirMiB(n.dir, 'ns2.db');
      progress(`ns2 ${s.label}: ${JSON.stringify(res.ns2.ingest[s.label])}`);
      if (res.ns2.ingest[s.label].error) failed = true;
      if (last && !res.ns2.ingest[s.label].error) ns2 = n;
      else await n.proc.stop();
    }
    const big = zones[BIG.label];
    const servers = { bind, ns2 };

    // ---- IXFR: 10 changes, from nsupdate to the secondary answering ------------------------
    let serial = SERIAL;
    for (let r = 0; r < IXFR_ROUNDS; r++) {
      const out = await ixfrRound(r, big, primary, servers, prober);
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

    // ---- restart with the big zone stored ----------------------------------------------------
    if (bind) {
      // BIND writes the zone file shortly after the transfer; restart from it, not from nothing.
      await waitFor(
        'BIND zone file',
        () => fs.existsSync(path.join(bind!.dir, `${BIG.zone}.bk`)),
        60_000,
      ).catch(() => undefined);
      const out = await restart(
        'BIND',
        bind.proc,
        () => startBindSecondary(bind!.dir, ports.bind, ports.bindRndc, BIG.zone, ports.primary),
        ports.bind,
        big,
        serial,
        prober,
      );
      res.bind.restart = out.result;
      bind = out.server ? track(out.server) : undefined;
      servers.bind = bind;
      progress(`BIND restart: ${JSON.stringify(res.bind.restart)}`);
    }
    if (ns2) {
      const cfg = ns2;
      const out = await restart(
        'ns2',
        ns2.proc,
        () =>
          startNs2({
            dir: cfg.dir,
            port: ports.ns2,
            controlPort: ports.ns2Control,
            zone: BIG.zone,
            primaryPort: ports.primary,
            tag: 'ns2-restart',
          }),
        ports.ns2,
        big,
        serial,
        prober,
      );
      res.ns2.restart = out.result;
      if (out.result.error) failed = true;
      ns2 = out.server ? track(out.server) : undefined;
      servers.ns2 = ns2;
      progress(`ns2 restart: ${JSON.stringify(res.ns2.restart)}`);
    } else {
      res.ns2.restart.error = `no ns2 holding the ${BIG.label} zone`;
    }

    // ---- dnsperf, one server at a time -------------------------------------------------------
    for (const [k, s] of [
      ['bind', servers.bind],
      ['ns2', servers.ns2],
    ] as const) {
      if (!s) continue;
      await sleep(1000);
      try {
        // Warm-up, not measured: JIT, SQLite page cache, BIND's caches after the restart.
        await runDnsperf({
          port: s.port,
          queryFile,
          seconds: WARMUP_SECONDS,
          outFile: path.join(tmp, `dnsperf-warmup-${k}.out`),
          cwd: tmp,
        });
        await sleep(500);
        const loadAvg = os.loadavg()[0];
        const cpu0 = cpuSeconds(s.proc.pid);
        const d = await runDnsperf({
          port: s.port,
          queryFile,
          seconds: DNSPERF_SECONDS,
          verbose: true,
          outFile: path.join(tmp, `dnsperf-${k}.out`),
          cwd: tmp,
        });
        const cpu1 = cpuSeconds(s.proc.pid);
        const serverCpuSeconds = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
        res[k].dnsperf = {
          ...d,
          loadAvgBefore: loadAvg,
          serverCpuSeconds,
          queriesPerCpuSecond: serverCpuSeconds ? d.completed / serverCpuSeconds : undefined,
        };
        progress(
          `dnsperf ${k}: ${Math.round(d.qps)} q/s, ${Math.round(res[k].dnsperf!.queriesPerCpuSecond ?? Number.NaN)} q/CPU-s, lost ${d.lost}, avg ${d.latencyMs.avg.toFixed(3)} ms, p99 ${d.percentilesMs?.p99.toFixed(3)} ms (load avg before ${loadAvg.toFixed(2)})`,
        );
        fs.rmSync(path.join(tmp, `dnsperf-${k}.out`), { force: true }); // large -v output
      } catch (e) {
        res[k].dnsperf = { error: errText(e) } as DnsperfResult & { error: string };
        if (k === 'ns2') failed = true;
        progress(`dnsperf ${k} failed: ${errText(e)}`);
      }
    }

    // ---- dnsperf during a forced full retransfer of the big zone -----------------------------
    if (servers.ns2) {
      const n = servers.ns2;
      res.ns2.duringRetransfer = await duringRetransfer(
        'ns2',
        n.port,
        queryFile,
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
    if (servers.bind) {
      const b = servers.bind;
      res.bind.duringRetransfer = await duringRetransfer(
        'BIND',
        b.port,
        queryFile,
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
    const rows = buildRows(res);
    const out = table(rows);
    process.stdout.write(
      `\nns2 vs BIND 9 secondary — ${env.date}, ${env.cpus} CPUs, ${env.named}, ns2 ${env.git.commit}${env.git.srcDirty ? '+dirty' : ''}${QUICK ? ', QUICK mode' : ''}\n\n${out}\n\n`,
    );
    const file = writeResults(QUICK ? 'quick' : undefined, {
      env,
      mode: QUICK ? 'quick' : 'full',
      zones,
      res,
      rows,
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

/** Process start → SOA with the zone's serial answered; peak RSS up to a second after that. */
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
  const dp = startDnsperf({ port, queryFile, seconds: 900, verbose: false, outFile, cwd: tmp });
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
  };
  const flags = (name: string) => ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', name];
  const axfrName = `${stamp}-axfr-${BIG.label}.cpuprofile`;
  const serveName = `${stamp}-dnsperf-${BIG.label}.cpuprofile`;

  // (a) AXFR ingest: start, wait for the serial, stop (the profile is written at exit).
  const a = track(startNs2({ ...base, nodeFlags: flags(axfrName), tag: 'ns2-prof-axfr' }));
  const ing = await ingest('ns2', a.proc, ports.ns2, z, prober);
  progress(`ns2 under --cpu-prof, AXFR ${BIG.label}: ${JSON.stringify(ing)}`);
  await a.proc.stop('SIGTERM', 30_000);
  if (ing.error) throw new Error(ing.error);

  // (b) dnsperf: restart on the stored zone, wait for an answer, dnsperf, stop.
  const b = track(startNs2({ ...base, nodeFlags: flags(serveName), tag: 'ns2-prof-serve' }));
  const name = `h${z.hosts - 1}.${z.name}`;
  await prober.pollUntil(ports.ns2, name, 'A', (p) => aRecords(p, name).length > 0, {
    everyMs: 20,
    timeoutMs: RESTART_TIMEOUT_MS,
  });
  const d = await runDnsperf({
    port: ports.ns2,
    queryFile,
    seconds: DNSPERF_SECONDS,
    outFile: path.join(tmp, 'dnsperf-prof.out'),
    cwd: tmp,
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
// Rows, results, environment

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
    metric: `queries/s, dnsperf -c 4 -q 200 -l ${DNSPERF_SECONDS}, ${BIG.label} zone`,
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
    note: 'less sensitive to other load on the machine than queries/s; named -n 1 still runs a few helper threads, counted here',
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
  lat('average', (d) => d.latencyMs.avg);
  lat('p50', (d) => d.percentilesMs?.p50);
  lat('p90', (d) => d.percentilesMs?.p90);
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

function dirMiB(dir: string, prefix: string): number | undefined {
  try {
    let bytes = 0;
    for (const f of fs.readdirSync(dir))
      if (f.startsWith(prefix)) bytes += fs.statSync(path.join(dir, f)).size;
    return bytes / 1024 / 1024;
  } catch {
    return undefined;
  }
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
