/**
 * Runs ns2 as a user would (`ns2 serve --config FILE`, a child process of proc.ts), on a port
 * picked at run time, and stops it by PID. Every child still running when this process exits is
 * SIGKILLed.
 *
 * Tests use startNs2(): the TypeScript sources under tsx, a fresh temp dir, debug logs, resolves
 * once it answers on UDP. The bench uses spawnNs2(): the compiled dist/cli.js of ns2Root(), its
 * own directory, optionally pinned and with extra node flags or environment, no waiting.
 */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, HOST, type Proc, sleep, startProc } from './proc.js';

/** This repository. */
export const NS2_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(NS2_ROOT, 'src/cli.ts');

/**
 * The ns2 build the bench measures: NS2_BENCH_ROOT (a directory with dist/ and node_modules/,
 * e.g. a build of another commit; `--ns2 DIR`), else this repository.
 */
export function ns2Root(): string {
  return path.resolve(process.env.NS2_BENCH_ROOT ?? NS2_ROOT);
}

// ---------------------------------------------------------------------------------------------
// Spawning

export interface Ns2Spawn {
  dir: string;
  port: number;
  /** The config's keys other than listen and database (zones, control, workers, …). */
  config: Record<string, unknown>;
  logLevel?: string;
  /** 'dist': node ROOT/dist/cli.js (default ns2Root()); 'src': node --import tsx src/cli.ts. */
  build?: 'dist' | 'src';
  root?: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** Extra environment, e.g. { NS2_UDP: 'dgram' }; a key set to undefined is removed. */
  env?: Record<string, string | undefined>;
  /** `taskset -c CPUS`; undefined: not pinned. */
  cpus?: string;
  /** Process cwd (default `dir`). */
  cwd?: string;
  /** Tag for the process name and log file (TAG.log); default "ns2". */
  tag?: string;
  unref?: boolean;
}

export interface Ns2Server {
  proc: Proc;
  port: number;
  /** Control endpoint port, when the config has one. */
  controlPort?: number;
  dir: string;
  configFile: string;
  database: string;
}

function withEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
  return env;
}

/** Writes DIR/config.json and starts ns2 on it; does not wait. */
export function spawnNs2(o: Ns2Spawn): Ns2Server {
  fs.mkdirSync(o.dir, { recursive: true });
  const configFile = path.join(o.dir, 'config.json');
  const database = path.join(o.dir, 'ns2.db');
  fs.writeFileSync(
    configFile,
    `${JSON.stringify(
      { listen: [{ address: HOST, port: o.port }], database, logLevel: o.logLevel ?? 'info', ...o.config },
      null,
      2,
    )}\n`,
  );
  const args =
    o.build === 'src'
      ? ['--import', 'tsx', ...(o.nodeFlags ?? []), CLI]
      : [...(o.nodeFlags ?? []), path.join(o.root ?? ns2Root(), 'dist/cli.js')];
  const tag = o.tag ?? 'ns2';
  const proc = startProc(tag, process.execPath, [...args, 'serve', '--config', configFile], {
    cwd: o.cwd ?? o.dir,
    logFile: path.join(o.dir, `${tag}.log`),
    env: o.env ? withEnv(o.env) : undefined,
    cpus: o.cpus,
    unref: o.unref,
  });
  const control = o.config.control as { port?: number } | undefined;
  return { proc, port: o.port, controlPort: control?.port, dir: o.dir, configFile, database };
}

export interface Ns2SecondarySpawn extends Omit<Ns2Spawn, 'config'> {
  zone: string;
  primaryPort: number;
  /** Control endpoint on 127.0.0.1 at this port. */
  controlPort?: number;
  /** Config key `workers` (serving workers); left out when undefined. */
  workers?: number;
  /** More config keys. */
  extra?: Record<string, unknown>;
}

/** ns2 as the secondary of one zone whose primary is 127.0.0.1#primaryPort (the bench). */
export function spawnNs2Secondary(o: Ns2SecondarySpawn): Ns2Server {
  const { zone, primaryPort, controlPort, workers, extra, ...rest } = o;
  return spawnNs2({
    ...rest,
    config: {
      ...(controlPort === undefined ? {} : { control: { address: HOST, port: controlPort } }),
      ...(workers === undefined ? {} : { workers }),
      zones: [{ name: zone, primaries: [{ address: HOST, port: primaryPort }] }],
      ...extra,
    },
  });
}

/** The pino lines of ns2's log (complete lines only), optionally only those with msg === `msg`. */
/** pino's level names, lowest first: ns2 logs `"level":"info"`. */
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** Whether a parsed log line is at `level` or above (`"level":"warn"` counts for 'warn'). */
export function levelAtLeast(line: Record<string, unknown>, level: 'warn' | 'error'): boolean {
  const i = LEVELS.indexOf(String(line.level));
  if (i < 0) throw new Error(`log line without a level name: ${JSON.stringify(line).slice(0, 200)}`);
  return i >= LEVELS.indexOf(level);
}

export function ns2LogEvents(ns2: Ns2Server | Proc, msg?: string): Record<string, unknown>[] {
  const proc = 'proc' in ns2 ? ns2.proc : ns2;
  const out: Record<string, unknown>[] = [];
  for (const line of proc.log().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (msg === undefined || o.msg === msg) out.push(o);
    } catch {
      /* a partial last line */
    }
  }
  return out;
}

/** POST /zones/ZONE/retransfer on ns2's control endpoint; resolves to the reply body. */
export function ns2Retransfer(
  ns2: Ns2Server,
  zone: string,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: HOST,
        port: ns2.controlPort,
        method: 'POST',
        path: `/zones/${encodeURIComponent(zone)}/retransfer`,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`retransfer not answered within ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Tests

/** `ns2 ARGS...` as an operator runs it; async, so this process keeps reading ns2's output. */
export function ns2Cli(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), CLI, ...args],
      { cwd: NS2_ROOT, encoding: 'utf8', timeout: 30_000 },
      (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, out, err }),
    );
  });
}

/** A zone with SOA refresh 2, retry 2, expire 6 s: expiry within seconds of its primary going away. */
export const SHORT_EXPIRE_ZONE = `$ORIGIN short.test.
$TTL 60
@ SOA ns1 hostmaster 10 2 2 6 60
  NS ns1
ns1 A 192.0.2.53
`;

export interface Ns2 {
  port: number;
  dir: string;
  database: string;
  configFile: string;
  pid: number;
  /** stdout (pino JSON lines) so far. */
  logLines(): Record<string, unknown>[];
  /** SIGTERM, wait for exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash), wait for the process to be gone. */
  kill(): Promise<void>;
}

export interface Ns2Options {
  zones: unknown[];
  /** Reuse a directory (and so the database) of an earlier run. */
  dir?: string;
  port?: number;
  extra?: Record<string, unknown>;
  /** Environment for the ns2 child (see Ns2Spawn.env). */
  env?: Record<string, string | undefined>;
  /** Extra node flags for the ns2 child (see Ns2Spawn.nodeFlags). */
  nodeFlags?: string[];
}

export async function startNs2(opts: Ns2Options): Promise<Ns2> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-test-'));
  const port = opts.port ?? (await freePort());
  // A reused directory gets a fresh log, so logLines() is this run's only.
  fs.rmSync(path.join(dir, 'ns2.log'), { force: true });
  const s = spawnNs2({
    dir,
    port,
    config: {
      zones: opts.zones,
      // `npm test` runs the suite with the default (a worker per CPU, batched I/O), then a slice
      // with NS2_UDP=dgram NS2_TEST_WORKERS=1: the fallback path on the main thread alone.
      ...(process.env.NS2_TEST_WORKERS ? { workers: Number(process.env.NS2_TEST_WORKERS) } : {}),
      ...opts.extra,
    },
    env: opts.env,
    nodeFlags: opts.nodeFlags,
    logLevel: 'debug',
    build: 'src',
    cwd: NS2_ROOT,
  });
  const { proc } = s;
  const ns2: Ns2 = {
    port,
    dir,
    database: s.database,
    configFile: s.configFile,
    pid: proc.pid,
    logLines: () => ns2LogEvents(proc),
    kill: () => proc.kill(),
    async stop() {
      await proc.stop('SIGTERM', 5000);
      return (await proc.exited).code;
    },
  };
  // Ready when it answers anything on UDP.
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (!proc.running()) throw new Error(`ns2 exited with ${proc.child.exitCode}: ${proc.log()}`);
    if (await udpPing(port)) return ns2;
    await sleep(100);
  }
  await ns2.stop();
  throw new Error(`ns2 did not answer within 15 s: ${proc.log()}`);
}

function udpPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const q = Buffer.from('abcd000000010000000000000000060001', 'hex');
    const t = setTimeout(() => {
      s.close();
      resolve(false);
    }, 300);
    s.on('message', () => {
      clearTimeout(t);
      s.close();
      resolve(true);
    });
    s.on('error', () => {
      clearTimeout(t);
      s.close();
      resolve(false);
    });
    s.send(q, port, HOST);
  });
}

/** Polls until `check` is true (bounded, every 100 ms). */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}
