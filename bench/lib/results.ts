/** Where results go (bench/results/<timestamp>[-suffix].json) and what is recorded about the machine. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NS2_ROOT, ns2Root } from '../../test/harness/ns2.js';

/** ISO 8601 UTC to the second, with `-` for `:` so the name is portable: 2026-01-31T12-00-00Z. */
export function timestamp(): string {
  return new Date()
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
}

export function environment() {
  const root = ns2Root();
  const sh = (cmd: string) => {
    try {
      return execFileSync('sh', ['-c', cmd], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return '';
    }
  };
  return {
    date: new Date().toISOString(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memMiB: Math.round(os.totalmem() / 1024 / 1024),
    loadAvg: os.loadavg(),
    node: process.version,
    named: sh('named -v'),
    knot: sh('knotd -V'),
    nsd: sh('nsd -v 2>&1 | head -n 1'),
    pdns: sh(
      'pdns_server --version 2>&1 | sed -n "s/.*\\(PowerDNS Authoritative Server [^ ]*\\).*/\\1/p" | head -n 1',
    ),
    dnsperf: sh('dnsperf -h 2>&1 | sed -n "s/^Version //p"'),
    ns2Root: root,
    git: {
      // A build outside a git checkout may say which commit it is in a COMMIT file.
      commit: sh('git rev-parse --short HEAD 2>/dev/null || cat COMMIT'),
      /** ns2 was built from src/ with uncommitted changes (others may be editing it). */
      srcDirty: sh('git status --porcelain -- src') !== '',
    },
  };
}

export function writeResults(suffix: string | undefined, data: unknown): string {
  const dir = path.join(NS2_ROOT, 'bench/results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${timestamp()}${suffix ? `-${suffix}` : ''}.json`);
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}
