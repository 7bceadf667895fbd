/**
 * NSD (Debian package `nsd`) on loopback as a secondary of a primary on 127.0.0.1: config written
 * into its own directory, `nsd -d` (foreground) as a child process (proc.ts), stopped by PID.
 * Not waited for: the caller polls the zone's SOA.
 *
 * Debian's NSD ships with response rate limiting on (200 q/s per /24), which would make a
 * benchmark measure the limiter: it is turned off here (`rrl-ratelimit: 0`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { HOST, type Proc, startProc } from './proc.js';

export interface NsdOptions {
  dir: string;
  port: number;
  zone: string;
  primaryPort: number;
  /** server-count (answering processes), default 1. */
  servers?: number;
  /** `taskset -c CPUS`; undefined: not pinned. */
  cpus?: string;
}

export interface NsdServer {
  proc: Proc;
  port: number;
  dir: string;
}

export function nsdConf(o: NsdOptions): string {
  const d = o.dir;
  return `server:
    ip-address: ${HOST}@${o.port}
    do-ip6: no
    port: ${o.port}
    server-count: ${o.servers ?? 1}
    username: ""
    chroot: ""
    zonesdir: "${d}"
    # NSD 4.6 still knows the old nsd.db; "" keeps the zone in memory and in its zone file only.
    database: ""
    zonelistfile: "${path.join(d, 'zone.list')}"
    xfrdfile: "${path.join(d, 'xfrd.state')}"
    xfrdir: "${d}"
    pidfile: "${path.join(d, 'nsd.pid')}"
    logfile: "${path.join(d, 'nsd.log')}"
    # With database: "" the zone lives in memory; its file is written this often when changed.
    zonefiles-write: 5
    verbosity: 1
    hide-version: no
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "${o.zone}"
    zonefile: "${path.join(d, `${o.zone}.zone`)}"
    request-xfr: AXFR ${HOST}@${o.primaryPort} NOKEY
    allow-notify: ${HOST} NOKEY
`;
}

/** Writes the config and starts `nsd -d -c CONF`; does not wait. */
export function spawnNsd(o: NsdOptions): NsdServer {
  fs.mkdirSync(o.dir, { recursive: true });
  const confFile = path.join(o.dir, 'nsd.conf');
  fs.writeFileSync(confFile, nsdConf(o));
  const proc = startProc('nsd', 'nsd', ['-d', '-c', confFile], {
    cwd: o.dir,
    logFile: path.join(o.dir, 'nsd.log'),
    cpus: o.cpus,
  });
  return { proc, port: o.port, dir: o.dir };
}
