/**
 * BIND 9 on loopback. For tests: startNamed(), a primary in a fresh temp dir on ports picked at
 * run time, waited for until every zone answers. For the bench: startBindPrimary() and
 * startBindSecondary(), long-lived servers in a given directory, started without waiting. All are
 * `named -g` children of this process (proc.ts), stopped by PID and SIGKILLed if this process
 * exits first.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  digAt,
  failure,
  freePort as freePortLocal,
  HOST,
  mustRun,
  type Proc,
  run,
  sleep,
  startProc,
  tail,
} from './proc.js';

// Older imports of these from named.ts keep working; their home is proc.ts.
export { digAt, freePort } from './proc.js';

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
  /** Restricts allow-transfer to a listener, e.g. `port 8853 transport tls` (BIND 9.18). */
  allowTransferOn?: string;
  /**
   * A secondary zone instead: transferred from 127.0.0.1#port (e.g. ns2), signed with `key` (a key
   * given in `keys`), over TLS with `tls` (the name of a `tls` block given in `keys`); `text` is
   * then ignored. startNamed waits until it has loaded.
   */
  secondaryOf?: { port: number; key?: string; tls?: string };
}

export interface NamedOptions {
  zones: ZoneSpec[];
  /** Extra statements placed inside `options { }`. */
  extraOptions?: string;
  /** Extra top-level statements, typically `key "name" { algorithm ...; secret "..."; };`. */
  keys?: string;
  /** Listen on this port (e.g. to bring a primary back where it was); default: a free one. */
  port?: number;
  /** named -d LEVEL (e.g. 1: TLS sessions are logged). */
  debugLevel?: number;
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

const READY_TIMEOUT_MS = 10_000;
const KILL_AFTER_MS = 5_000;
const TOOL_TIMEOUT_MS = 20_000;

const tool = (cmd: string, args: string[], input?: string) =>
  run(cmd, args, { input, timeoutMs: TOOL_TIMEOUT_MS });

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
  if (z.secondaryOf) {
    const key = z.secondaryOf.key ? ` key "${z.secondaryOf.key}"` : '';
    const tls = z.secondaryOf.tls ? ` tls ${z.secondaryOf.tls}` : '';
    return `zone "${z.name}" {
  type secondary;
  file "${path.join(dir, zoneFileName(z.name))}";
  primaries { ${HOST} port ${z.secondaryOf.port}${key}${tls}; };
  allow-notify { ${HOST}; };
  allow-transfer { ${HOST}; };
};
`;
  }
  const notify = z.alsoNotify?.length
    ? `  also-notify { ${z.alsoNotify.map((p) => `${HOST} port ${p};`).join(' ')} };\n`
    : '';
  return `zone "${z.name}" {
  type primary;
  file "${path.join(dir, zoneFileName(z.name))}";
  allow-transfer ${z.allowTransferOn ? `${z.allowTransferOn} ` : ''}{ ${matchList(z.allowTransfer ?? `${HOST};`)} };
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
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'ns2-named-'));
  const port = opts.port ?? (await freePortLocal());
  const rndcPort = await freePortLocal();
  const keyFile = path.join(dir, 'rndc.key');
  const confFile = path.join(dir, 'named.conf');
  const logFile = path.join(dir, 'named.log');

  const secret = randomBytes(32).toString('base64');
  fs.writeFileSync(keyFile, `key "rndc-key" { algorithm hmac-sha256; secret "${secret}"; };\n`);
  for (const z of opts.zones)
    if (!z.secondaryOf) fs.writeFileSync(path.join(dir, zoneFileName(z.name)), z.text);
  fs.writeFileSync(confFile, namedConf(dir, port, rndcPort, opts));

  // named writes straight into the log file, so the log is complete even if we never read it.
  // unref: a forgotten server does not keep the test process alive; the exit hook kills it.
  let proc: Proc;
  try {
    const debug = opts.debugLevel ? ['-d', String(opts.debugLevel)] : [];
    proc = startProc('named', 'named', ['-g', ...debug, '-n', '1', '-c', confFile], {
      cwd: dir,
      logFile,
      unref: true,
      removeDirOnExit: dir,
    });
  } catch {
    await fs.promises.rm(dir, { recursive: true, force: true });
    throw new Error('could not spawn named (is bind9 installed?)');
  }
  const log = proc.log;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await proc.stop('SIGTERM', KILL_AFTER_MS);
      fs.rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const rndc = async (args: string[]): Promise<string> => {
    const r = await tool('rndc', ['-s', HOST, '-p', String(rndcPort), '-k', keyFile, ...args]);
    if (r.code !== 0) throw failure(`rndc ${args.join(' ')}`, r);
    return r.stdout;
  };

  const named: Named = {
    port,
    rndcPort,
    dir,
    pid: proc.pid,
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
      const r = await tool('nsupdate', [], `server ${HOST} ${port}\n${lines.join('\n')}\n`);
      if (r.code !== 0) throw failure('nsupdate', r);
    },
  };

  try {
    await waitReady(named, opts.zones, () => !proc.running());
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
      const r = await tool('dig', [
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

// ---------------------------------------------------------------------------------------------
// Long-lived BIND servers in a given directory (the bench): started without waiting, the caller
// times readiness itself; zone files and ports are the caller's.

function rndcKeyFile(dir: string): string {
  const file = path.join(dir, 'rndc.key');
  fs.writeFileSync(
    file,
    `key "rndc-key" { algorithm hmac-sha256; secret "${randomBytes(32).toString('base64')}"; };\n`,
  );
  return file;
}

function serverOptions(dir: string, port: number): string {
  return `  directory "${dir}";
  pid-file "${path.join(dir, 'named.pid')}";
  session-keyfile "${path.join(dir, 'session.key')}";
  managed-keys-directory "${dir}";
  listen-on port ${port} { ${HOST}; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify-source ${HOST};
  transfer-source ${HOST};`;
}

export interface NamedServer {
  proc: Proc;
  port: number;
  rndcPort: number;
  dir: string;
  confFile: string;
  rndc(args: string[]): Promise<string>;
}

export interface NamedServerOptions {
  /** `taskset -c CPUS` (see proc.ts); undefined: not pinned. */
  cpus?: string;
  /** named -n (worker threads), default 1. */
  threads?: number;
  /** Extra statements inside `options { }` (startBindSecondary), e.g. `server-id "x";`. */
  extraOptions?: string;
}

function namedServer(
  name: string,
  dir: string,
  port: number,
  rndcPort: number,
  confFile: string,
  o: NamedServerOptions,
): NamedServer {
  const keyFile = path.join(dir, 'rndc.key');
  const proc = startProc(name, 'named', ['-g', '-n', String(o.threads ?? 1), '-c', confFile], {
    cwd: dir,
    logFile: path.join(dir, 'named.log'),
    cpus: o.cpus,
  });
  return {
    proc,
    port,
    rndcPort,
    dir,
    confFile,
    rndc: async (args) =>
      (
        await mustRun('rndc', ['-s', HOST, '-p', String(rndcPort), '-k', keyFile, ...args], {
          timeoutMs: 30_000,
        })
      ).stdout,
  };
}

export interface PrimaryZone {
  name: string;
  file: string;
}

/** BIND primary in `dir`: allow-update + ixfr-from-differences, NOTIFY to `notifyPorts` only. */
export function startBindPrimary(
  dir: string,
  port: number,
  rndcPort: number,
  zones: PrimaryZone[],
  notifyPorts: number[],
  o: NamedServerOptions = {},
): NamedServer {
  fs.mkdirSync(dir, { recursive: true });
  rndcKeyFile(dir);
  const zoneStanzas = zones
    .map(
      (z) => `zone "${z.name}" {
  type primary;
  file "${z.file}";
  allow-transfer { ${HOST}; };
  allow-update { ${HOST}; };
  ixfr-from-differences yes;
  max-ixfr-ratio unlimited;
  notify explicit;
  also-notify { ${notifyPorts.map((p) => `${HOST} port ${p};`).join(' ')} };
};
`,
    )
    .join('');
  const confFile = path.join(dir, 'named.conf');
  fs.writeFileSync(
    confFile,
    `include "${path.join(dir, 'rndc.key')}";
controls { inet ${HOST} port ${rndcPort} allow { ${HOST}; } keys { "rndc-key"; }; };
options {
${serverOptions(dir, port)}
  notify-delay 0;
  // BIND rate-limits NOTIFY (default 20/s = batches every 500 ms): at the default the second
  // also-notify target hears of a change 500 ms after the first. 10000/s = 1 ms batches, so
  // every secondary is told at once.
  notify-rate 10000;
};
${zoneStanzas}`,
  );
  return namedServer('named-primary', dir, port, rndcPort, confFile, o);
}

/**
 * BIND secondary of `zone` in `dir` (config written on first start only, so a restart reloads
 * the zone from its file); notifies nobody.
 */
export function startBindSecondary(
  dir: string,
  port: number,
  rndcPort: number,
  zone: string,
  primaryPort: number,
  o: NamedServerOptions = {},
): NamedServer {
  const confFile = path.join(dir, 'named.conf');
  if (!fs.existsSync(confFile)) {
    fs.mkdirSync(dir, { recursive: true });
    rndcKeyFile(dir);
    fs.writeFileSync(
      confFile,
      `include "${path.join(dir, 'rndc.key')}";
controls { inet ${HOST} port ${rndcPort} allow { ${HOST}; } keys { "rndc-key"; }; };
options {
${serverOptions(dir, port)}
  notify no;
${o.extraOptions ?? ''}
};
zone "${zone}" {
  type secondary;
  file "${path.join(dir, `${zone}.bk`)}";
  primaries { ${HOST} port ${primaryPort}; };
  allow-notify { ${HOST}; };
};
`,
    );
  }
  return namedServer('named-secondary', dir, port, rndcPort, confFile, o);
}

/** Epoch ms of named's `zone Z/IN: sending notifies (serial S)` log line (local time, ms). */
export function notifySentAt(log: string, zone: string, serial: number): number | undefined {
  const months = 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ');
  const re =
    /^(\d{2})-(\w{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2})\.(\d{3}) zone (\S+)\/IN: sending notifies \(serial (\d+)\)/gm;
  for (const m of log.matchAll(re)) {
    if (m[8] !== zone || Number(m[9]) !== serial) continue;
    const [d, mon, y, h, mi, sec, ms] = [m[1], m[2], m[3], m[4], m[5], m[6], m[7]];
    return new Date(+y, months.indexOf(mon), +d, +h, +mi, +sec, +ms).getTime();
  }
  return undefined;
}

/**
 * named.conf of a BIND secondary consuming catalog `catalog` (RFC 9432) from the primary at
 * 127.0.0.1#primaryPort, listening on `port`: members kept in memory, or as files in
 * DIR/catz with `zoneFiles`.
 */
export function catalogConsumerConf(
  dir: string,
  port: number,
  catalog: string,
  primaryPort: number,
  zoneFiles = false,
): string {
  const where = zoneFiles ? `zone-directory "${dir}/catz" in-memory no` : 'in-memory yes';
  if (zoneFiles) fs.mkdirSync(path.join(dir, 'catz'), { recursive: true });
  return `options {
  directory "${dir}";
  pid-file "${dir}/named.pid";
  listen-on port ${port} { ${HOST}; };
  listen-on-v6 { none; };
  recursion no;
  allow-new-zones yes;
  transfer-source ${HOST};
  catalog-zones {
    zone "${catalog}" default-primaries { ${HOST} port ${primaryPort}; } ${where} min-update-interval 1;
  };
};
zone "${catalog}" { type secondary; primaries { ${HOST} port ${primaryPort}; }; file "${dir}/catalog.db"; };
`;
}
