/**
 * Load clients for rate-limit tests, small C programs in test/fixtures built on first use with
 * the system's cc (as node-gyp needs anyway) into build/:
 * - udpFlood(): count-flood.c — one query at a fixed rate from a given source address over
 *   several sockets (source ports, as real clients and dnsperf use), replies sorted into
 *   answered (the expected rcode), slipped (TC=1, no answer records), other, and dropped (none
 *   within the grace period). In C because a Node client lost replies itself on a loaded machine.
 * - spoofFlood(): spoof-flood.c — one query from each of N addresses in 127/8 (IP_PKTINFO).
 * Bounded: `seconds` of sending, N datagrams.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mustRun } from './proc.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const built = new Map<string, Promise<string>>();

/** Compiles test/fixtures/NAME.c to build/NAME once per process; resolves to the binary. */
function tool(name: string): Promise<string> {
  let p = built.get(name);
  if (!p) {
    const bin = path.join(ROOT, 'build', name);
    p = mustRun('cc', ['-O2', '-o', bin, path.join(ROOT, 'test/fixtures', `${name}.c`)]).then(() => bin);
    built.set(name, p);
  }
  return p;
}

export interface FloodOptions {
  port: number;
  /** Source address (any of 127.0.0.0/8 works on Linux without configuration). */
  source: string;
  qps: number;
  seconds: number;
  query: Buffer;
  /** Sockets (source ports) to spread over; default 4. */
  sockets?: number;
  /** Wait for late replies after the last send, ms (default 400). */
  graceMs?: number;
  /**
   * What an answered reply is: its rcode (default 0, NOERROR, with answer records), or `0-empty`
   * for NOERROR without answer records (a referral, NODATA).
   */
  rcode?: number | '0-empty';
  /** A fresh random first label in each query (a random-subdomain flood). */
  randomLabel?: boolean;
}

export interface FloodResult {
  sent: number;
  answered: number;
  slipped: number;
  other: number;
  dropped: number;
}

export async function udpFlood(o: FloodOptions): Promise<FloodResult> {
  const bin = await tool('count-flood');
  const args = [
    o.port,
    o.source,
    o.qps,
    o.seconds,
    o.sockets ?? 4,
    o.graceMs ?? 400,
    o.query.toString('hex'),
    o.rcode ?? 0,
    ...(o.randomLabel ? ['random'] : []),
  ];
  const out = await mustRun(bin, args.map(String), { timeoutMs: (o.seconds + 30) * 1000 });
  const r = JSON.parse(out.stdout) as Omit<FloodResult, 'dropped'>;
  return { ...r, dropped: r.sent - r.answered - r.slipped - r.other };
}

/**
 * One query from each of `count` addresses 127.0.0.0 + first, first+1, … at about `rate` a
 * second; resolves when sent.
 */
export async function spoofFlood(
  port: number,
  count: number,
  first: number,
  query: Buffer,
  rate: number,
): Promise<void> {
  const bin = await tool('spoof-flood');
  const args = [port, count, first, query.toString('hex'), rate].map(String);
  await mustRun(bin, args, { timeoutMs: 60_000 });
}
