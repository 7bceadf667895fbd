/**
 * Child processes for the bench: every process started here is tracked by its ChildProcess
 * (so by PID) and stopped in stop(), and SIGKILLed by the exit hook if the bench dies first.
 * Nothing is ever killed by name. Ports are picked at run time on 127.0.0.1.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';

export const HOST = '127.0.0.1';
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const now = () => performance.now();

// ---------------------------------------------------------------------------------------------
// Exit safety net

const live = new Set<ChildProcess>();
const isRunning = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

function killAllSync(): void {
  for (const c of live) if (isRunning(c)) c.kill('SIGKILL');
  live.clear();
}

let installed = false;
function installSafetyNet(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      process.stderr.write(`\nbench: ${sig}, stopping ${live.size} child process(es)\n`);
      killAllSync();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

// ---------------------------------------------------------------------------------------------
// Long-running children

export interface Proc {
  name: string;
  pid: number;
  child: ChildProcess;
  /** performance.now() just before spawn. */
  startedAt: number;
  logFile: string;
  running(): boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log(): string;
  /** SIGTERM (or `sig`), SIGKILL after `killAfterMs`; resolves when the process is gone. */
  stop(sig?: NodeJS.Signals, killAfterMs?: number): Promise<void>;
}

/** Spawns `cmd args` with stdout and stderr appended to `logFile` (no pipes to drain). */
export function startProc(
  name: string,
  cmd: string,
  args: string[],
  opts: { cwd: string; logFile: string; env?: NodeJS.ProcessEnv },
): Proc {
  installSafetyNet();
  const fd = fs.openSync(opts.logFile, 'a');
  const startedAt = now();
  const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', fd, fd], env: opts.env ?? process.env });
  fs.closeSync(fd);
  child.once('error', () => undefined);
  if (child.pid === undefined) throw new Error(`could not start ${name}: ${cmd} ${args.join(' ')}`);
  live.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const log = () => {
    try {
      return fs.readFileSync(opts.logFile, 'utf8');
    } catch {
      return '';
    }
  };
  let stopping: Promise<void> | undefined;
  return {
    name,
    pid: child.pid,
    child,
    startedAt,
    logFile: opts.logFile,
    running: () => isRunning(child),
    exited,
    log,
    stop(sig: NodeJS.Signals = 'SIGTERM', killAfterMs = 10_000) {
      stopping ??= (async () => {
        if (!isRunning(child)) return;
        child.kill(sig);
        const timer = setTimeout(() => {
          if (isRunning(child)) {
            process.stderr.write(`bench: ${name} (pid ${child.pid}) ignored ${sig}, SIGKILL\n`);
            child.kill('SIGKILL');
          }
        }, killAfterMs);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Short commands

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** execFile without a shell, bounded by `timeoutMs`; never rejects. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  installSafetyNet();
  const t0 = now();
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      {
        timeout: opts.timeoutMs ?? 30_000,
        killSignal: 'SIGKILL',
        maxBuffer: 256 * 1024 * 1024,
        encoding: 'utf8',
        cwd: opts.cwd,
      },
      (err, stdout, stderr) => {
        live.delete(child);
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({
          code,
          stdout,
          stderr: err && code === -1 ? `${stderr}${err.message}` : stderr,
          ms: now() - t0,
        });
      },
    );
    live.add(child);
    child.stdin?.end(opts.input ?? '');
  });
}

export async function mustRun(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Ports

/** A port free for both TCP and UDP on 127.0.0.1: the test harness's, not a second copy. */
export { freePort } from '../../test/harness/named.js';

// ---------------------------------------------------------------------------------------------
// Memory

/** KiB value of one field of /proc/PID/status, or undefined once the process is gone. */
function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Samples VmHWM (the kernel's own peak) and VmRSS of a process every `everyMs`; peak() is the
 * largest seen, in MiB.
 */
export class RssSampler {
  private maxKb = 0;
  private timer: NodeJS.Timeout;
  constructor(
    private readonly pid: number,
    everyMs = 50,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }
  sample(): void {
    for (const f of ['VmHWM', 'VmRSS'] as const) {
      const kb = statusKb(this.pid, f);
      if (kb !== undefined && kb > this.maxKb) this.maxKb = kb;
    }
  }
  /** Takes a last sample and stops. */
  stop(): number {
    this.sample();
    clearInterval(this.timer);
    return this.peakMiB();
  }
  peakMiB(): number {
    return this.maxKb / 1024;
  }
}

export function rssMiB(pid: number): number | undefined {
  const kb = statusKb(pid, 'VmRSS');
  return kb === undefined ? undefined : kb / 1024;
}

/** Bounded wait for a condition, polled every `everyMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms: number,
  everyMs = 50,
) {
  const deadline = now() + ms;
  while (now() < deadline) {
    if (await check()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

// ---------------------------------------------------------------------------------------------
// CPU time: less sensitive than wall time to other work on the machine (other sessions' tests
// share these two cores), so the bench reports it beside the wall-clock figures.

let clkTck: number | undefined;

/** user + system CPU seconds the process has used so far (all its threads), or undefined. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    clkTck ??= Number(execFileSyncText('getconf', ['CLK_TCK'])) || 100;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clkTck;
  } catch {
    return undefined;
  }
}

function execFileSyncText(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
}
