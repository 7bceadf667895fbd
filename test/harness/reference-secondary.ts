/**
 * A BIND 9 secondary for tests: `named` with `type secondary` zones transferred from a primary
 * on loopback, every answer-shaping option at BIND's default unless `options` sets one (the
 * differential test's reference). `recursion no`: an authoritative secondary, as ns2 is. Started
 * with proc.ts (stopped by PID, SIGKILLed if the test process dies first), ready once every zone
 * answers its SOA with AA.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildQuery, exchange } from './client.js';
import { freePort, HOST, sleep, startProc, tail } from './proc.js';

export interface BindSecondary {
  port: number;
  dir: string;
  pid: number;
  log(): string;
  stop(): Promise<void>;
}

export interface BindSecondaryOptions {
  zones: string[];
  primaryPort: number;
  /** Extra statements inside `options { }`, e.g. `minimal-responses yes;`. */
  options?: string;
}

const READY_MS = 20_000;

export async function startBindSecondary(o: BindSecondaryOptions): Promise<BindSecondary> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-bind2-'));
  const port = await freePort();
  const rndcPort = await freePort();
  const conf = path.join(dir, 'named.conf');
  fs.writeFileSync(
    path.join(dir, 'rndc.key'),
    `key "rndc-key" { algorithm hmac-sha256; secret "${randomBytes(32).toString('base64')}"; };\n`,
  );
  fs.writeFileSync(
    conf,
    `include "${path.join(dir, 'rndc.key')}";
controls { inet ${HOST} port ${rndcPort} allow { ${HOST}; } keys { "rndc-key"; }; };
options {
  directory "${dir}";
  pid-file "${path.join(dir, 'named.pid')}";
  session-keyfile "${path.join(dir, 'session.key')}";
  managed-keys-directory "${dir}";
  listen-on port ${port} { ${HOST}; };
  listen-on-v6 { none; };
  recursion no;
  notify no;
${o.options ?? ''}
};
${o.zones
  .map(
    (z) => `zone "${z}" {
  type secondary;
  file "${path.join(dir, `${z}.bk`)}";
  primaries { ${HOST} port ${o.primaryPort}; };
};
`,
  )
  .join('')}`,
  );
  const proc = startProc('named-secondary', 'named', ['-g', '-n', '1', '-c', conf], {
    cwd: dir,
    logFile: path.join(dir, 'named.log'),
    unref: true,
    removeDirOnExit: dir,
  });
  const stop = async () => {
    await proc.stop('SIGTERM', 5000);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const pending = new Set(o.zones);
  const deadline = Date.now() + READY_MS;
  while (pending.size > 0) {
    if (!proc.running() || Date.now() > deadline) {
      const log = tail(proc.log());
      await stop();
      throw new Error(`BIND secondary not ready (waiting for ${[...pending].join(', ')})\n${log}`);
    }
    for (const z of [...pending]) {
      const reply = await exchange(port, buildQuery(z, 6), { timeoutMs: 300 }).catch(() => undefined);
      // AA and an answer: the zone is transferred and served.
      if (reply && reply[2] & 0x04 && reply.readUInt16BE(6) > 0) pending.delete(z);
    }
    if (pending.size > 0) await sleep(100);
  }
  return { port, dir, pid: proc.pid, log: proc.log, stop };
}
