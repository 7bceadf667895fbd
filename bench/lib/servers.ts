/**
 * The three kinds of server a bench run starts, each in its own directory under the run's temp
 * dir, on loopback ports picked at run time:
 *   - a BIND 9 primary (dynamic zones: nsupdate changes are journaled and NOTIFYed, served as IXFR);
 *   - a BIND 9 secondary (`named -g -n 1`, `type secondary`, zone kept in a file so a restart
 *     reloads it from disk);
 *   - ns2 (`node dist/cli.js serve --config FILE`, database in its directory, control endpoint on).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { HOST, mustRun, type Proc, startProc } from './proc.js';

/** The repository (results go under its bench/). */
export const NS2_ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * The ns2 build being measured: NS2_BENCH_ROOT (a directory with dist/ and node_modules/, e.g. a
 * build of another commit; `--ns2 DIR`), else this repository.
 */
export function ns2Root(): string {
  return path.resolve(process.env.NS2_BENCH_ROOT ?? NS2_ROOT);
}

function rndcKey(dir: string): string {
  const file = path.join(dir, 'rndc.key');
  fs.writeFileSync(
    file,
    `key "rndc-key" { algorithm hmac-sha256; secret "${randomBytes(32).toString('base64')}"; };\n`,
  );
  return file;
}

function commonOptions(dir: string, port: number): string {
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

function namedServer(
  name: string,
  dir: string,
  port: number,
  rndcPort: number,
  confFile: string,
): NamedServer {
  const keyFile = path.join(dir, 'rndc.key');
  const proc = startProc(name, 'named', ['-g', '-n', '1', '-c', confFile], {
    cwd: dir,
    logFile: path.join(dir, 'named.log'),
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

/** BIND primary: allow-update + ixfr-from-differences, NOTIFY to `notifyPorts` only. */
export function startPrimary(
  dir: string,
  port: number,
  rndcPort: number,
  zones: PrimaryZone[],
  notifyPorts: number[],
): NamedServer {
  fs.mkdirSync(dir, { recursive: true });
  rndcKey(dir);
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
${commonOptions(dir, port)}
  notify-delay 0;
  // BIND rate-limits NOTIFY (default 20/s = batches every 500 ms): at the default the second
  // also-notify target hears of a change 500 ms after the first. 10000/s = 1 ms batches, so
  // both secondaries are told at once.
  notify-rate 10000;
};
${zoneStanzas}`,
  );
  return namedServer('named-primary', dir, port, rndcPort, confFile);
}

/** BIND secondary of `zone`; notifies nobody (the zone's NS is not on loopback). */
export function startBindSecondary(
  dir: string,
  port: number,
  rndcPort: number,
  zone: string,
  primaryPort: number,
): NamedServer {
  const confFile = path.join(dir, 'named.conf');
  if (!fs.existsSync(confFile)) {
    fs.mkdirSync(dir, { recursive: true });
    rndcKey(dir);
    fs.writeFileSync(
      confFile,
      `include "${path.join(dir, 'rndc.key')}";
controls { inet ${HOST} port ${rndcPort} allow { ${HOST}; } keys { "rndc-key"; }; };
options {
${commonOptions(dir, port)}
  notify no;
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
  return namedServer('named-secondary', dir, port, rndcPort, confFile);
}

export interface Ns2Server {
  proc: Proc;
  port: number;
  controlPort: number;
  dir: string;
  configFile: string;
  database: string;
}

export interface Ns2Start {
  dir: string;
  port: number;
  controlPort: number;
  zone: string;
  primaryPort: number;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** Tag for the log file name (ns2-<tag>.log); default "ns2". */
  tag?: string;
}

export function startNs2(o: Ns2Start): Ns2Server {
  fs.mkdirSync(o.dir, { recursive: true });
  const configFile = path.join(o.dir, 'config.json');
  const database = path.join(o.dir, 'ns2.db');
  fs.writeFileSync(
    configFile,
    `${JSON.stringify(
      {
        listen: [{ address: HOST, port: o.port }],
        database,
        logLevel: 'info',
        control: { address: HOST, port: o.controlPort },
        zones: [{ name: o.zone, primaries: [{ address: HOST, port: o.primaryPort }] }],
      },
      null,
      2,
    )}\n`,
  );
  const proc = startProc(
    o.tag ?? 'ns2',
    process.execPath,
    [...(o.nodeFlags ?? []), path.join(ns2Root(), 'dist/cli.js'), 'serve', '--config', configFile],
    { cwd: o.dir, logFile: path.join(o.dir, `${o.tag ?? 'ns2'}.log`) },
  );
  return { proc, port: o.port, controlPort: o.controlPort, dir: o.dir, configFile, database };
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

/** The pino lines of ns2's log file with msg === `msg`. */
export function ns2LogEvents(ns2: Ns2Server | Proc, msg: string): Record<string, unknown>[] {
  const proc = 'proc' in ns2 ? ns2.proc : ns2;
  const out: Record<string, unknown>[] = [];
  for (const line of proc.log().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.msg === msg) out.push(o);
    } catch {
      /* a partial last line */
    }
  }
  return out;
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

export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
