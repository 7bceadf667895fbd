/**
 * The one process harness for tests and the bench: spawn a daemon in the foreground as a child
 * (stdout and stderr appended to a log file, no pipes to drain), stop it by PID (SIGTERM, then
 * SIGKILL), short commands without a shell, ports picked at run time on 127.0.0.1, and what
 * /proc says about a process (CPU seconds, RSS). Every child started here is SIGKILLed when this
 * process exits or is signalled, so a failing test or bench never leaks one. Nothing is ever
 * killed by name.
 *
 * Server starters built on it: named.ts (BIND primary and secondary), knot.ts, nsd.ts, pdns.ts,
 * ns2.ts.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';

export const HOST = '127.0.0.1';
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const now = () => performance.now();

// named, knotd, nsd, pdns_server, rndc live in /usr/sbin on Debian.
if (!/(^|:)\/usr\/sbin(:|$)/.test(process.env.PATH ?? '')) {
  process.env.PATH = `/usr/local/sbin:/usr/sbin:/sbin:${process.env.PATH ?? '/usr/bin:/bin'}`;
}

// ---------------------------------------------------------------------------------------------
// Exit safety net

interface LiveEntry {
  child: ChildProcess;
  /** Removed when the process is killed at exit (temp dirs of test servers). */
  removeDirOnExit?: string;
}
const live = new Set<LiveEntry>();
const isRunning = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

function killAllSync(): void {
  for (const e of live) {
    if (isRunning(e.child)) e.child.kill('SIGKILL');
    if (e.removeDirOnExit) fs.rmSync(e.removeDirOnExit, { recursive: true, force: true });
  }
  live.clear();
}

let installed = false;
function installSafetyNet(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllSync);
  // A signal skips 'exit': clean up, then die of the same signal as we would have.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      if (live.size) process.stderr.write(`\n${sig}: stopping ${live.size} child process(es)\n`);
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
  /** The log file so far (stdout and stderr). */
  log(): string;
  /** `sig` (default SIGTERM), SIGKILL after `killAfterMs`; resolves when the process is gone. */
  stop(sig?: NodeJS.Signals, killAfterMs?: number): Promise<void>;
  /** SIGKILL (a crash); resolves when the process is gone. */
  kill(): Promise<void>;
}

export interface StartOptions {
  cwd: string;
  logFile: string;
  env?: NodeJS.ProcessEnv;
  /**
   * CPUs to pin the process to with `taskset -c CPUS` (covers every thread and child it
   * spawns); undefined: not pinned.
   */
  cpus?: string;
  /** Don't keep this (test) process alive for the child; the exit hook still kills it. */
  unref?: boolean;
  /** Directory removed if the exit hook has to kill the process. */
  removeDirOnExit?: string;
}

/** Spawns `cmd args` (under `taskset -c CPUS` when `cpus` is set), output appended to `logFile`. */
export function startProc(name: string, cmd: string, args: string[], opts: StartOptions): Proc {
  installSafetyNet();
  const fd = fs.openSync(opts.logFile, 'a');
  const [file, argv] = opts.cpus === undefined ? [cmd, args] : ['taskset', ['-c', opts.cpus, cmd, ...args]];
  const startedAt = now();
  const child = spawn(file, argv, { cwd: opts.cwd, stdio: ['ignore', fd, fd], env: opts.env ?? process.env });
  fs.closeSync(fd);
  child.once('error', () => undefined);
  if (child.pid === undefined) throw new Error(`could not start ${name}: ${file} ${argv.join(' ')}`);
  if (opts.unref) child.unref();
  const entry: LiveEntry = { child, removeDirOnExit: opts.removeDirOnExit };
  live.add(entry);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(entry);
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
  const stop = (sig: NodeJS.Signals = 'SIGTERM', killAfterMs = 10_000): Promise<void> => {
    stopping ??= (async () => {
      if (!isRunning(child)) return;
      child.kill(sig);
      const timer = setTimeout(() => {
        if (isRunning(child)) {
          process.stderr.write(`${name} (pid ${child.pid}) ignored ${sig}, SIGKILL\n`);
          child.kill('SIGKILL');
        }
      }, killAfterMs);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };
  return {
    name,
    pid: child.pid,
    child,
    startedAt,
    logFile: opts.logFile,
    running: () => isRunning(child),
    exited,
    log,
    stop,
    async kill() {
      if (isRunning(child)) child.kill('SIGKILL');
      await exited;
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

/** execFile without a shell, bounded by `timeoutMs` (default 30 s); never rejects. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  installSafetyNet();
  const t0 = now();
  return new Promise((resolve) => {
    let entry: LiveEntry | undefined;
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
        if (entry) live.delete(entry);
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({
          code,
          stdout,
          stderr: err && code === -1 ? `${stderr}${err.message}` : stderr,
          ms: now() - t0,
        });
      },
    );
    entry = { child };
    live.add(entry);
    // A command that exits before reading its input (dig, sqlite3 with the SQL as an argument)
    // closes the pipe first: EPIPE on stdin is no failure of the command, its exit code says.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

export function failure(what: string, r: RunResult): Error {
  return new Error(`${what} exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

export async function mustRun(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw failure(`${cmd} ${args.join(' ')}`, r);
  return r;
}

/** `dig @127.0.0.1 -p PORT ...args` against any server, resolving to stdout. */
export async function digAt(port: number, args: string[]): Promise<string> {
  const r = await run('dig', [`@${HOST}`, '-p', String(port), ...args], { timeoutMs: 20_000 });
  if (r.code !== 0) throw failure(`dig ${args.join(' ')}`, r);
  return r.stdout;
}

/** Bounded wait for a condition, polled every `everyMs` (default 100). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 15_000,
  everyMs = 100,
): Promise<void> {
  const deadline = now() + ms;
  while (now() < deadline) {
    if (await check()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/**
 * dnsperf against 127.0.0.1#port for `seconds` at most `qps` queries a second from `file`
 * (`-c 2`, a query unanswered after `timeoutS` counts as lost); resolves to its output.
 */
export function dnsperf(o: { port: number; file: string; seconds: number; qps: number; timeoutS?: number }) {
  return new Promise<string>((resolve, reject) => {
    const args = ['-s', HOST, '-p', String(o.port), '-d', o.file, '-l', String(o.seconds), '-c', '2'];
    const p = spawn('dnsperf', [...args, '-Q', String(o.qps), '-t', String(o.timeoutS ?? 2)]);
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      out += d;
    });
    p.on('error', reject);
    p.on('exit', () => resolve(out));
  });
}

export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Ports

/** Ports already handed out by this process: a closed probe socket does not reserve its port. */
const handedOut = new Set<number>();

function probeTcp(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen({ port, host: HOST, exclusive: true }, () => {
      const got = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(got));
    });
  });
}

function probeUdp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', () => {
      sock.close();
      resolve(false);
    });
    sock.bind(port, HOST, () => sock.close(() => resolve(true)));
  });
}

/** A port currently free for both TCP and UDP on 127.0.0.1. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await probeTcp(0);
    if (port === undefined || handedOut.has(port)) continue;
    if (!(await probeUdp(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('freePort: no port free for both TCP and UDP after 50 tries');
}

// ---------------------------------------------------------------------------------------------
// /proc: CPU time and memory of a process and everything it spawned (a server may be several
// processes: taskset execs in place, but a daemon may fork workers).

/** pid and its descendants (via /proc/PID/task/TID/children), or [] once it is gone. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    let tasks: string[];
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      try {
        for (const c of fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' ')) {
          if (c.trim()) walk(Number(c));
        }
      } catch {
        /* thread gone */
      }
    }
  };
  walk(pid);
  return fs.existsSync(`/proc/${pid}`) ? out : [];
}

let clkTck: number | undefined;

/** user + system CPU seconds of one process so far (all its threads), or undefined. */
function ownCpuSeconds(pid: number): number | undefined {
  try {
    clkTck ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clkTck;
  } catch {
    return undefined;
  }
}

/**
 * utime + stime (all threads, /proc/PID/stat) of the process and its live descendants, in
 * seconds; undefined once the process is gone.
 */
export function cpuSeconds(pid: number): number | undefined {
  const own = ownCpuSeconds(pid);
  if (own === undefined) return undefined;
  let sum = own;
  for (const p of processTree(pid).slice(1)) sum += ownCpuSeconds(p) ?? 0;
  return sum;
}

/** KiB value of one field of /proc/PID/status, or undefined once the process is gone. */
function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Proportional set size of one process (shared pages split among their sharers), in KiB. */
function pssKb(pid: number): number | undefined {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Memory of a process tree in KiB. One process: its VmRSS or VmHWM. Several (a daemon that
 * forks answering processes after loading the zone, like NSD): the sum of their PSS, so pages
 * shared copy-on-write are counted once, not once per process; `VmHWM` then has no meaning
 * (undefined) and the caller's samples are the peak.
 */
function treeKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  const pids = processTree(pid);
  if (pids.length === 0) return undefined;
  if (pids.length === 1) return statusKb(pid, field);
  if (field === 'VmHWM') return undefined;
  return pids.reduce((s, p) => s + (pssKb(p) ?? 0), 0);
}

/**
 * Samples the memory of a process tree (treeKb) every `everyMs`; peakMiB() is the largest seen.
 * With `hwm` (default) the kernel's own peak VmHWM counts too (the peak since the process
 * started, for ingest); without, only VmRSS samples (the peak within the sampled window, for
 * serving).
 */
export class RssSampler {
  private maxKb = 0;
  private timer: NodeJS.Timeout;
  constructor(
    private readonly pid: number,
    everyMs = 50,
    private readonly hwm = true,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }
  sample(): void {
    for (const f of this.hwm ? (['VmHWM', 'VmRSS'] as const) : (['VmRSS'] as const)) {
      const kb = treeKb(this.pid, f);
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
  const kb = treeKb(pid, 'VmRSS');
  return kb === undefined ? undefined : kb / 1024;
}

/** Bytes of the files under `dir` (recursively) whose name passes `keep`, in MiB. */
export function dirMiB(dir: string, keep: (name: string) => boolean = () => true): number | undefined {
  let bytes = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && keep(e.name)) bytes += fs.statSync(p).size;
    }
  };
  try {
    walk(dir);
    return bytes / 1024 / 1024;
  } catch {
    return undefined;
  }
}
