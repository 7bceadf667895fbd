/**
 * Runs Knot DNS (`knotd`, Debian package `knot`) on loopback as a downstream secondary for tests:
 * fresh temp dir, config written here, started in the foreground as a child process and stopped by
 * PID. Every server started here is SIGKILLed when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { digAt, freePort } from './named.js';

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

export interface Knot {
  port: number;
  dir: string;
  pid: number;
  /** knotd's stderr so far. */
  log(): string;
  dig(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

export async function startKnot(opts: KnotOptions): Promise<Knot> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-knot-'));
  const port = opts.port ?? (await freePort());
  const keys = opts.keys ?? [];
  const conf = `server:
    listen: 127.0.0.1@${port}
    rundir: ${dir}
    pidfile: ${path.join(dir, 'knot.pid')}
database:
    storage: ${dir}
log:
  - target: stderr
    any: info
${keys.length ? `key:\n${keys.map((k) => `  - id: ${k.id}\n    algorithm: ${k.algorithm}\n    secret: ${k.secret}\n`).join('')}` : ''}remote:
${opts.zones
  .map(
    (z, i) =>
      `  - id: up${i}\n    address: 127.0.0.1@${z.primaryPort}\n${z.key ? `    key: ${z.key}\n` : ''}`,
  )
  .join('')}acl:
${opts.zones
  .map(
    (z, i) =>
      `  - id: notify${i}\n    address: 127.0.0.1\n${z.key ? `    key: ${z.key}\n` : ''}    action: notify\n`,
  )
  .join('')}template:
  - id: default
    storage: ${dir}
    file: "%s.zone"
zone:
${opts.zones.map((z, i) => `  - domain: ${z.name}\n    master: up${i}\n    acl: notify${i}\n`).join('')}`;
  const confFile = path.join(dir, 'knot.conf');
  const logFile = path.join(dir, 'knot.log');
  fs.writeFileSync(confFile, conf);
  const logFd = fs.openSync(logFile, 'a');
  const child = spawn('knotd', ['-c', confFile], { stdio: ['ignore', logFd, logFd], cwd: dir });
  fs.closeSync(logFd);
  child.unref();
  child.once('error', () => undefined);
  if (child.pid === undefined) throw new Error('could not spawn knotd (is the knot package installed?)');
  live.add(child);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const log = () => {
    try {
      return fs.readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  let stopped: Promise<void> | undefined;
  const knot: Knot = {
    port,
    dir,
    pid: child.pid,
    log,
    dig: (args) => digAt(port, args),
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        live.delete(child);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  // Ready when it answers on its port (any rcode): the zones may still be transferring.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      const text = log();
      await knot.stop();
      throw new Error(`knotd exited with ${child.exitCode}:\n${text}`);
    }
    const ok = await digAt(port, ['+tries=1', '+time=1', 'version.server', 'CH', 'TXT']).then(
      () => true,
      () => false,
    );
    if (ok) return knot;
    if (Date.now() > deadline) {
      await knot.stop();
      throw new Error(`knotd not ready:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
