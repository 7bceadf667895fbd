/**
 * The reference ns2 is compared with: BIND 9.18 as a *secondary with default options* (no
 * minimal-responses, no rate limits), transferring the zones from a BIND primary, as an operator
 * replacing a BIND secondary by ns2 would have it. Both named processes are children of this
 * process (proc.ts), in a temp dir, stopped by PID.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Named, startBindSecondary, startNamed, type ZoneSpec } from './named.js';
import { digAt, freePort, sleep, tail } from './proc.js';

export interface BindSecondary {
  /** The secondary (the server to compare with). */
  port: number;
  /** The primary both the secondary and ns2 transfer from. */
  primary: Named;
  log(): string;
  stop(): Promise<void>;
}

const READY_MS = 20_000;

/** A BIND primary serving `zone` and a default BIND secondary of it, ready when the zone answers. */
export async function startBindSecondaryOf(
  zone: ZoneSpec,
  o: { extraOptions?: string } = {},
): Promise<BindSecondary> {
  const primary = await startNamed({ zones: [zone] });
  try {
    const s = await startBindSecondaryFrom(zone.name, primary.port, o);
    return {
      ...s,
      primary,
      async stop() {
        await s.stop();
        await primary.stop();
      },
    };
  } catch (e) {
    await primary.stop();
    throw e;
  }
}

/** A default BIND secondary of `zone` from the primary at `primaryPort`, ready when the zone answers. */
export async function startBindSecondaryFrom(
  zone: string,
  primaryPort: number,
  o: { extraOptions?: string } = {},
): Promise<Omit<BindSecondary, 'primary'>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-bind2-'));
  const port = await freePort();
  const server = startBindSecondary(dir, port, await freePort(), zone, primaryPort, {
    extraOptions: o.extraOptions,
  });
  const stop = async () => {
    await server.proc.stop('SIGTERM', 5000);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + READY_MS;
  for (;;) {
    const soa = await digAt(port, [zone, 'SOA', '+short', '+norec', '+tries=1', '+time=1']).catch(() => '');
    if (soa.trim() !== '') break;
    if (Date.now() > deadline || !server.proc.running()) {
      const log = server.proc.log();
      await stop();
      throw new Error(`BIND secondary did not load ${zone}\n${tail(log)}`);
    }
    await sleep(100);
  }
  return { port, log: server.proc.log, stop };
}
