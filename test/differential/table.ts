/**
 * `node --import tsx test/differential/table.ts [OLD_NS2_DIR]`: issue 11's probes with kdig
 * against a default BIND 9.18 secondary and ns2 (and, given a directory holding another ns2
 * build's dist/, that one too), one line per probe and server: flags, section counts, size.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setup } from '../harness/differential.js';
import { spawnNs2 } from '../harness/ns2.js';
import { freePort, sleep } from '../harness/proc.js';

const old = process.argv[2];
const s = await setup({ zones: ['nsec.test'] });
const servers: [string, number][] = [
  ['BIND', s.bind.port],
  ['ns2', s.ns2.port],
];
let oldProc: { stop(): Promise<void> } | undefined;
if (old) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-old-'));
  const port = await freePort();
  const o = spawnNs2({
    dir,
    port,
    root: old,
    build: 'dist',
    config: { zones: [{ name: 'nsec.test', primaries: [{ address: '127.0.0.1', port: s.primary.port }] }] },
  });
  oldProc = { stop: () => o.proc.stop() };
  await sleep(4000);
  servers.splice(1, 0, ['ns2 before', port]);
}
const PROBES: [string, string[]][] = [
  ['SOA +norec +bufsize=512', ['nsec.test', 'SOA', '+norec', '+bufsize=512']],
  ['MX +dnssec +bufsize=512', ['nsec.test', 'MX', '+dnssec', '+bufsize=512', '+ignore']],
  ['ANY +dnssec +tcp', ['nsec.test', 'ANY', '+dnssec', '+tcp']],
  ['big TXT +noedns', ['big.nsec.test', 'TXT', '+noedns', '+ignore']],
  ['RRSIG +norec +tcp', ['nsec.test', 'RRSIG', '+norec', '+tcp']],
  ['DS below a DNAME', ['x.redirect.nsec.test', 'DS']],
];
try {
  for (const [what, args] of PROBES) {
    for (const [who, port] of servers) {
      const out = execFileSync('kdig', [`@127.0.0.1`, '-p', String(port), '+nocookie', ...args], {
        encoding: 'utf8',
      });
      const flags = /;; Flags: ([^;]*);/.exec(out)?.[1].trim();
      const counts = /ANSWER: (\d+); AUTHORITY: (\d+); ADDITIONAL: (\d+)/.exec(out);
      const size = /;; Received (\d+) B/.exec(out)?.[1];
      const ttls = what.startsWith('RRSIG')
        ? ` ttls ${[...out.matchAll(/^\S+\s+(\d+)\s+IN\s+RRSIG\s+(\S+)/gm)].map((m) => `${m[2]}=${m[1]}`).join(',')}`
        : '';
      console.log(
        `${what.padEnd(26)} ${who.padEnd(11)} ${(flags ?? '').padEnd(10)} ${counts?.slice(1).join('/')} ${size} B${ttls}`,
      );
    }
  }
} finally {
  await oldProc?.stop();
  await s.stop();
}
