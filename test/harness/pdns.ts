/**
 * PowerDNS Authoritative (`pdns_server`, Debian packages `pdns-server pdns-backend-sqlite3`) on
 * loopback as a secondary with the gsqlite3 backend: a fresh SQLite database from the packaged
 * schema with the zone as a SLAVE row, `pdns_server --no-config --daemon=no` as a child process
 * (proc.ts), stopped by PID. Not waited for: the caller polls the zone's SOA. The packet cache
 * stays at its default (on), as users run it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HOST, mustRun, type Proc, startProc } from './proc.js';

export const PDNS_SCHEMA = '/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql';

export interface PdnsOptions {
  dir: string;
  port: number;
  zone: string;
  primaryPort: number;
  /** receiver-threads and distributor-threads, default 1. */
  threads?: number;
  /** `taskset -c CPUS`; undefined: not pinned. */
  cpus?: string;
}

export interface PdnsServer {
  proc: Proc;
  port: number;
  dir: string;
  database: string;
}

export function pdnsArgs(o: PdnsOptions, database: string): string[] {
  const t = String(o.threads ?? 1);
  return [
    '--no-config',
    '--daemon=no',
    '--guardian=no',
    '--disable-syslog=yes',
    '--write-pid=no',
    '--loglevel=5',
    '--launch=gsqlite3',
    `--gsqlite3-database=${database}`,
    '--secondary=yes',
    `--local-address=${HOST}`,
    `--local-port=${o.port}`,
    `--socket-dir=${o.dir}`,
    `--distributor-threads=${t}`,
    `--receiver-threads=${t}`,
    // Freshness checks of secondary zones every second (default 60 s): the first AXFR starts
    // at once instead of up to a minute after start.
    '--xfr-cycle-interval=1',
    `--allow-notify-from=${HOST}`,
    '--webserver=no',
    // No security-status query to secpoll.powerdns.com through the system resolver.
    '--security-poll-suffix=',
  ];
}

/** Creates DIR/pdns.sqlite3 (schema + the zone as SLAVE of 127.0.0.1:PORT) and starts pdns_server. */
export async function spawnPdns(o: PdnsOptions): Promise<PdnsServer> {
  fs.mkdirSync(o.dir, { recursive: true });
  const database = path.join(o.dir, 'pdns.sqlite3');
  if (!fs.existsSync(database)) {
    const schema = fs.readFileSync(PDNS_SCHEMA, 'utf8');
    await mustRun('sqlite3', [database], {
      input: `${schema}\nINSERT INTO domains (name, master, type) VALUES ('${o.zone}', '${HOST}:${o.primaryPort}', 'SLAVE');\n`,
    });
  }
  const proc = startProc('pdns', 'pdns_server', pdnsArgs(o, database), {
    cwd: o.dir,
    logFile: path.join(o.dir, 'pdns.log'),
    cpus: o.cpus,
  });
  return { proc, port: o.port, dir: o.dir, database };
}
