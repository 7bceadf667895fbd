/**
 * Runs ns2 as a user would (`ns2 serve --config FILE`, a child process), on a port picked at run
 * time, and stops it by PID. Every child still running when the test process exits is SIGKILLed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './named.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'src/cli.ts');

const live = new Set<ChildProcess>();
const killAll = () => {
  for (const c of live) if (c.exitCode === null) c.kill('SIGKILL');
};
process.on('exit', killAll);
// A signal skips 'exit': clean up, then die of the same signal.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = () => {
    killAll();
    process.removeListener(sig, onSignal);
    process.kill(process.pid, sig);
  };
  process.on(sig, onSignal);
}

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
  /** Environment variables added to (or, when undefined, removed from) the child's environment. */
  env?: Record<string, string | undefined>;
}

export async function startNs2(opts: Ns2Options): Promise<Ns2> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-test-'));
  const port = opts.port ?? (await freePort());
  const database = path.join(dir, 'ns2.db');
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      listen: [{ address: '127.0.0.1', port }],
      database,
      logLevel: 'debug',
      zones: opts.zones,
      // `npm test` runs the suite with the default (a worker per CPU, batched I/O), then a slice
      // with NS2_UDP=dgram NS2_TEST_WORKERS=1: the fallback path on the main thread alone.
      ...(process.env.NS2_TEST_WORKERS ? { workers: Number(process.env.NS2_TEST_WORKERS) } : {}),
      ...opts.extra,
    }),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--config', configFile], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ns2: Ns2 = {
    port,
    dir,
    database,
    configFile,
    pid: child.pid!,
    logLines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l)),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      live.delete(child);
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        const code = await exited;
        clearTimeout(timer);
        live.delete(child);
        return code;
      }
      live.delete(child);
      return child.exitCode;
    },
  };
  // Ready when it answers anything on UDP.
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ns2 exited with ${child.exitCode}: ${err}${out}`);
    if (await udpPing(port)) return ns2;
    await new Promise((r) => setTimeout(r, 100));
  }
  await ns2.stop();
  throw new Error(`ns2 did not answer within 15 s: ${err}${out}`);
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
    s.send(q, port, '127.0.0.1');
  });
}

/** Polls until `check` is true (bounded). */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
