/**
 * Runs a real BIND 9 primary on loopback for tests: fresh temp dir, ports picked at run time,
 * `named -g` as a child process stopped by PID. Every server started here is SIGKILLed when the
 * test process exits, so a failing test never leaks one.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface ZoneSpec {
  /** Zone name without trailing dot, e.g. "example.test". */
  name: string;
  /** Master-file text; the zone name is the default origin. */
  text: string;
  /** Ports on 127.0.0.1 to NOTIFY (also-notify) when the zone changes. */
  alsoNotify?: number[];
  /** address_match_list elements for allow-transfer, e.g. `key "xfr-key.";` (default `127.0.0.1;`). */
  allowTransfer?: string;
  /** false: no allow-update, so the zone file can be edited and `rndc reload`ed (default true). */
  dynamic?: boolean;
}

export interface NamedOptions {
  zones: ZoneSpec[];
  /** Extra statements placed inside `options { }`. */
  extraOptions?: string;
  /** Extra top-level statements, typically `key "name" { algorithm ...; secret "..."; };`. */
  keys?: string;
  /** Listen on this port (e.g. to bring a primary back where it was); default: a free one. */
  port?: number;
}

export interface Named {
  port: number;
  rndcPort: number;
  dir: string;
  pid: number;
  /** named's stderr so far. */
  log(): string;
  /** `dig @127.0.0.1 -p PORT ...args`, resolving to stdout. */
  dig(args: string[]): Promise<string>;
  /** Runs an nsupdate script against this server (`server` line added; `send` added if missing). */
  nsupdate(script: string): Promise<void>;
  /** `rndc` against this server's control channel, resolving to stdout. */
  rndc(args: string[]): Promise<string>;
  /**
   * Replaces a zone's master file and loads it: `rndc freeze`, write, `rndc thaw` (a plain
   * `rndc reload` is refused for zones with allow-update; zones with `dynamic: false` get
   * write + `rndc reload`). With ixfr-from-differences the change is journaled, so it can be
   * served as IXFR. Resolves once named has loaded it; throws if the new text does not load.
   */
  replaceZone(name: string, text: string): Promise<void>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const KILL_AFTER_MS = 5_000;
const TOOL_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// Process-exit safety net

const live = new Map<number, { child: ChildProcess; dir: string }>();
let netInstalled = false;

const running = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

/** Signals the child unless it has already exited (its PID may then belong to someone else). */
function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  if (running(child)) child.kill(sig);
}

/** Entries stay in `live` until their directory is gone, so an exit mid-stop() still cleans up. */
function killAllSync(): void {
  for (const { child, dir } of live.values()) {
    signal(child, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  live.clear();
}

function installSafetyNet(): void {
  if (netInstalled) return;
  netInstalled = true;
  process.on('exit', killAllSync);
  // A signal skips 'exit': clean up, then die of the same signal as we would have.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      killAllSync();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
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
// Running the tools

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** execFile without a shell; never rejects, so callers decide what a failure means. */
function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: TOOL_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr: err && code === -1 ? `${stderr}${err.message}` : stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

function failure(what: string, r: RunResult): Error {
  return new Error(`${what} exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

/** `dig @127.0.0.1 -p PORT ...args` against any server (e.g. ns2), resolving to stdout. */
export async function digAt(port: number, args: string[]): Promise<string> {
  const r = await run('dig', [`@${HOST}`, '-p', String(port), ...args]);
  if (r.code !== 0) throw failure(`dig ${args.join(' ')}`, r);
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------
// Configuration

function zoneFileName(zone: string): string {
  const safe = zone === '.' || zone === '' ? 'root' : zone.replace(/[^A-Za-z0-9._-]/g, '_');
  return `${safe}.zone`;
}

function matchList(elements: string): string {
  const t = elements.trim();
  return t.endsWith(';') ? t : `${t};`;
}

function zoneStanza(z: ZoneSpec, dir: string): string {
  const notify = z.alsoNotify?.length
    ? `  also-notify { ${z.alsoNotify.map((p) => `${HOST} port ${p};`).join(' ')} };\n`
    : '';
  return `zone "${z.name}" {
  type primary;
  file "${path.join(dir, zoneFileName(z.name))}";
  allow-transfer { ${matchList(z.allowTransfer ?? `${HOST};`)} };
${z.dynamic === false ? '' : `  allow-update { ${HOST}; };\n`}  ixfr-from-differences yes;
  notify explicit;
${notify}};
`;
}

function namedConf(dir: string, port: number, rndcPort: number, opts: NamedOptions): string {
  return `include "${path.join(dir, 'rndc.key')}";
${opts.keys ?? ''}
controls { inet ${HOST} port ${rndcPort} allow { ${HOST}; } keys { "rndc-key"; }; };
options {
  directory "${dir}";
  pid-file "${path.join(dir, 'named.pid')}";
  session-keyfile "${path.join(dir, 'session.key')}";
  managed-keys-directory "${dir}";
  listen-on port ${port} { ${HOST}; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify-source ${HOST};
  transfer-source ${HOST};
  notify-delay 0;
${opts.extraOptions ?? ''}
};
${opts.zones.map((z) => zoneStanza(z, dir)).join('')}`;
}

function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Start / stop

/** A port picked by freePort() was taken by someone else before named bound it. */
class PortInUse extends Error {}

/**
 * Writes config and zone files into a fresh temp dir, starts named and waits until every zone
 * answers. Retries with new ports when a port was grabbed in between (freePort cannot reserve).
 */
export async function startNamed(opts: NamedOptions): Promise<Named> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (!(err instanceof PortInUse) || attempt === 3 || opts.port !== undefined) throw err;
    }
  }
}

async function startOnce(opts: NamedOptions): Promise<Named> {
  installSafetyNet();
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'ns2-named-'));
  const port = opts.port ?? (await freePort());
  const rndcPort = await freePort();
  const keyFile = path.join(dir, 'rndc.key');
  const confFile = path.join(dir, 'named.conf');
  const logFile = path.join(dir, 'named.log');

  const secret = randomBytes(32).toString('base64');
  fs.writeFileSync(keyFile, `key "rndc-key" { algorithm hmac-sha256; secret "${secret}"; };\n`);
  for (const z of opts.zones) fs.writeFileSync(path.join(dir, zoneFileName(z.name)), z.text);
  fs.writeFileSync(confFile, namedConf(dir, port, rndcPort, opts));

  // named writes straight into the log file, so the log is complete even if we never read it.
  const logFd = fs.openSync(logFile, 'a');
  const child = spawn('named', ['-g', '-n', '1', '-c', confFile], {
    stdio: ['ignore', logFd, logFd],
    cwd: dir,
  });
  fs.closeSync(logFd);
  // Don't let a forgotten server keep the test process alive; the exit hook kills it.
  child.unref();

  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  child.once('error', () => undefined);
  if (child.pid === undefined) {
    await fs.promises.rm(dir, { recursive: true, force: true });
    throw new Error('could not spawn named (is bind9 installed?)');
  }
  const pid = child.pid;
  live.set(pid, { child, dir });

  const log = () => {
    try {
      return fs.readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (running(child)) {
        signal(child, 'SIGTERM');
        const timer = setTimeout(() => signal(child, 'SIGKILL'), KILL_AFTER_MS);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
      live.delete(pid);
    })();
    return stopped;
  };

  const rndc = async (args: string[]): Promise<string> => {
    const r = await run('rndc', ['-s', HOST, '-p', String(rndcPort), '-k', keyFile, ...args]);
    if (r.code !== 0) throw failure(`rndc ${args.join(' ')}`, r);
    return r.stdout;
  };

  const named: Named = {
    port,
    rndcPort,
    dir,
    pid,
    log,
    dig: (args) => digAt(port, args),
    rndc,
    stop,
    async replaceZone(name: string, text: string): Promise<void> {
      const loaded = new RegExp(`zone ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/IN: loaded serial`, 'g');
      const count = () => log().match(loaded)?.length ?? 0;
      const before = count();
      const logBefore = log().length;
      const file = path.join(dir, zoneFileName(name));
      if (opts.zones.find((z) => z.name === name)?.dynamic === false) {
        fs.writeFileSync(file, text);
        await rndc(['reload', name]);
      } else {
        await rndc(['freeze', name]);
        fs.writeFileSync(file, text);
        await rndc(['thaw', name]);
      }
      const deadline = Date.now() + READY_TIMEOUT_MS;
      while (count() === before) {
        const fresh = log().slice(logBefore);
        if (/not loaded due to errors/.test(fresh) || Date.now() > deadline) {
          throw new Error(`zone ${name} did not load\n--- named.log (tail) ---\n${tail(fresh)}`);
        }
        await sleep(20);
      }
    },
    async nsupdate(script: string): Promise<void> {
      const lines = script.split('\n').filter((l) => l.trim() !== '');
      if (lines.at(-1)?.trim() !== 'send') lines.push('send');
      const r = await run('nsupdate', [], `server ${HOST} ${port}\n${lines.join('\n')}\n`);
      if (r.code !== 0) throw failure('nsupdate', r);
    },
  };

  try {
    await waitReady(named, opts.zones, () => !running(child));
  } catch (err) {
    const text = tail(log());
    await stop();
    const message = `${(err as Error).message}\n--- named.log (tail) ---\n${text}`;
    throw err instanceof PortInUse ? new PortInUse(message) : new Error(message);
  }
  return named;
}

/** Problems named reports in its log that no amount of waiting will fix. */
function startupProblem(log: string): Error | undefined {
  if (/address in use/i.test(log)) return new PortInUse('a port named needs is already in use');
  const zone = /zone (\S+): not loaded due to errors/.exec(log);
  if (zone) return new Error(`zone ${zone[1]} not loaded due to errors`);
  return undefined;
}

/** Polls until every zone answers SOA and the control channel accepts `rndc status`. */
async function waitReady(named: Named, zones: ZoneSpec[], hasExited: () => boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const pending = zones.map((z) => z.name);
  let rndcOk = false;
  while (Date.now() < deadline) {
    const problem = startupProblem(named.log());
    if (problem) throw problem;
    if (hasExited()) throw new Error('named exited during startup');
    for (let i = pending.length - 1; i >= 0; i--) {
      const r = await run('dig', [
        `@${HOST}`,
        '-p',
        String(named.port),
        pending[i],
        'SOA',
        '+short',
        '+norec',
        '+tries=1',
        '+time=1',
      ]);
      if (r.code === 0 && r.stdout.trim() !== '') pending.splice(i, 1);
    }
    if (pending.length === 0 && !rndcOk) {
      rndcOk = await named.rndc(['status']).then(
        () => true,
        () => false,
      );
    }
    if (pending.length === 0 && rndcOk) return;
    await sleep(50);
  }
  throw new Error(
    `named not ready after ${READY_TIMEOUT_MS} ms (zones not answering: ${pending.join(', ') || 'none'}; rndc ${rndcOk ? 'ok' : 'not ready'})`,
  );
}
