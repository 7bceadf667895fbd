/**
 * Knot DNS (`knotd`, Debian package `knot`) on loopback as a secondary: config written here,
 * started in the foreground as a child process (proc.ts) and stopped by PID. Tests use
 * startKnot() (fresh temp dir, waits until it answers on its port; a downstream of ns2); the
 * bench uses spawnKnot() (its own directory, pinned, one thread of each kind, no waiting).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { digAt, freePort, HOST, type Proc, sleep, startProc } from './proc.js';

export interface KnotZone {
  name: string;
  /** Port of the primary on 127.0.0.1 (e.g. ns2). */
  primaryPort: number;
  /** TSIG key id (from `keys`) for transfers from, and NOTIFY by, the primary. */
  key?: string;
}

export interface KnotOptions {
  zones: KnotZone[];
  keys?: { id: string; algorithm: string; secret: string }[];
  port?: number;
}

export interface KnotSpawnOptions extends KnotOptions {
  port: number;
  /** Directory for config, zone files, journal and log (created). */
  dir: string;
  /** udp-workers, tcp-workers and background-workers (default: Knot's own, one per CPU). */
  workers?: number;
  /** `taskset -c CPUS`; undefined: not pinned. */
  cpus?: string;
  /** Delete the directory if the exit hook kills the process (tests). */
  removeDirOnExit?: boolean;
}

export interface KnotServer {
  proc: Proc;
  port: number;
  dir: string;
}

export interface Knot {
  port: number;
  dir: string;
  pid: number;
  /** knotd's stderr so far. */
  log(): string;
  dig(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export function knotConf(o: KnotSpawnOptions): string {
  const { dir, port } = o;
  const keys = o.keys ?? [];
  const workers =
    o.workers === undefined
      ? ''
      : `    udp-workers: ${o.workers}\n    tcp-workers: ${o.workers}\n    background-workers: ${o.workers}\n`;
  return `server:
    listen: ${HOST}@${port}
    rundir: ${dir}
    pidfile: ${path.join(dir, 'knot.pid')}
${workers}database:
    storage: ${dir}
log:
  - target: stderr
    any: info
${keys.length ? `key:\n${keys.map((k) => `  - id: ${k.id}\n    algorithm: ${k.algorithm}\n    secret: ${k.secret}\n`).join('')}` : ''}remote:
${o.zones
  .map(
    (z, i) => `  - id: up${i}\n    address: ${HOST}@${z.primaryPort}\n${z.key ? `    key: ${z.key}\n` : ''}`,
  )
  .join('')}acl:
${o.zones
  .map(
    (z, i) =>
      `  - id: notify${i}\n    address: ${HOST}\n${z.key ? `    key: ${z.key}\n` : ''}    action: notify\n`,
  )
  .join('')}template:
  - id: default
    storage: ${dir}
    file: "%s.zone"
zone:
${o.zones.map((z, i) => `  - domain: ${z.name}\n    master: up${i}\n    acl: notify${i}\n`).join('')}`;
}

/** Writes the config and starts knotd; does not wait. */
export function spawnKnot(o: KnotSpawnOptions): KnotServer {
  fs.mkdirSync(o.dir, { recursive: true });
  const confFile = path.join(o.dir, 'knot.conf');
  fs.writeFileSync(confFile, knotConf(o));
  const proc = startProc('knotd', 'knotd', ['-c', confFile], {
    cwd: o.dir,
    logFile: path.join(o.dir, 'knot.log'),
    cpus: o.cpus,
    unref: o.removeDirOnExit,
    removeDirOnExit: o.removeDirOnExit ? o.dir : undefined,
  });
  return { proc, port: o.port, dir: o.dir };
}

/** Fresh temp dir; resolves once knotd answers on its port (any rcode: zones may still be transferring). */
export async function startKnot(opts: KnotOptions): Promise<Knot> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-knot-'));
  const port = opts.port ?? (await freePort());
  let proc: Proc;
  try {
    proc = spawnKnot({ ...opts, port, dir, removeDirOnExit: true }).proc;
  } catch {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error('could not spawn knotd (is the knot package installed?)');
  }
  let stopped: Promise<void> | undefined;
  const knot: Knot = {
    port,
    dir,
    pid: proc.pid,
    log: proc.log,
    dig: (args) => digAt(port, args),
    stop() {
      stopped ??= (async () => {
        await proc.stop('SIGTERM', 5000);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (!proc.running()) {
      const text = proc.log();
      await knot.stop();
      throw new Error(`knotd exited with ${proc.child.exitCode}:\n${text}`);
    }
    const ok = await digAt(port, ['+tries=1', '+time=1', 'version.server', 'CH', 'TXT']).then(
      () => true,
      () => false,
    );
    if (ok) return knot;
    if (Date.now() > deadline) {
      const text = proc.log();
      await knot.stop();
      throw new Error(`knotd not ready:\n${text}`);
    }
    await sleep(50);
  }
}
