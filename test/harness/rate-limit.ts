/**
 * The rate-limit comparison shared by test/integration/rate-limit.test.ts (short) and
 * bench/rrl.ts (`npm run bench:rrl`, longer): BIND 9.18 as the primary of example.test with a
 * `rate-limit` block, ns2 as its secondary with the same block as `rateLimit` (two serving
 * workers, plus a second listen address exempt from limiting), and the floods both get.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { TYPE } from '../../src/dns/types.js';
import { buildQuery, exchange } from './client.js';
import { type FloodResult, udpFlood } from './flood.js';
import { type Named, startNamed } from './named.js';
import { NS2_ROOT, type Ns2, startNs2 } from './ns2.js';
import { freePort, HOST, run, waitFor } from './proc.js';

export const ZONE = 'example.test';
export const RATE = 10;
export const WINDOW = 15;
export const SLIP = 2;
export const TABLE = 20_000;
/** The flood from one source: ≥ 5 000 q/s. */
export const FLOOD_QPS = 5000;
// Both servers get the same socket receive buffer, so a burst waits there rather than being lost.
const RECEIVE_BUFFER = 4 * 1024 * 1024;

/** The same settings in both servers' words (ipv4PrefixLength 32: 127.0.0.2 and .3 differ). */
export const BIND_RATE_LIMIT = `rate-limit {
    responses-per-second ${RATE};
    window ${WINDOW};
    slip ${SLIP};
    ipv4-prefix-length 32;
    max-table-size ${TABLE};
  };`;
export const NS2_RATE_LIMIT = {
  responsesPerSecond: RATE,
  window: WINDOW,
  slip: SLIP,
  ipv4PrefixLength: 32,
  maxTableSize: TABLE,
};

export interface Pair {
  named: Named;
  ns2: Ns2;
  controlPort: number;
  /** ns2's second listen address, `rateLimit: false`. */
  internalPort: number;
  /** A dnsperf data file asking www A. */
  dataFile: string;
  stop(): Promise<void>;
}

export async function startPair(): Promise<Pair> {
  const zoneText = fs.readFileSync(path.join(NS2_ROOT, 'test/fixtures/example.test.zone'), 'utf8');
  const named = await startNamed({
    zones: [{ name: ZONE, text: zoneText }],
    extraOptions: `udp-receive-buffer ${RECEIVE_BUFFER};\n  ${BIND_RATE_LIMIT}`,
  });
  const controlPort = await freePort();
  const port = await freePort();
  const internalPort = await freePort();
  let ns2: Ns2;
  try {
    ns2 = await startNs2({
      port,
      zones: [{ name: ZONE, primaries: [{ address: HOST, port: named.port }] }],
      extra: {
        // "Per server" in ns2: a listen address can be exempt (say, an internal interface).
        listen: [
          { address: HOST, port },
          { address: HOST, port: internalPort, rateLimit: false },
        ],
        workers: 2,
        udpReceiveBuffer: RECEIVE_BUFFER,
        rateLimit: NS2_RATE_LIMIT,
        control: { address: HOST, port: controlPort },
      },
    });
  } catch (e) {
    await named.stop();
    throw e;
  }
  const stop = async () => {
    await ns2.stop();
    await named.stop();
  };
  try {
    await waitFor('ns2 to load the zone', async () => {
      const r = await exchange(port, buildQuery(`www.${ZONE}`, TYPE.A), { tcp: true }).catch(() => undefined);
      return r !== undefined && r.readUInt16BE(6) > 0;
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const dataFile = path.join(ns2.dir, 'dnsperf.txt');
  fs.writeFileSync(dataFile, `www.${ZONE} A\n`);
  return { named, ns2, controlPort, internalPort, dataFile, stop };
}

/**
 * The main run against one server: www A at FLOOD_QPS from 127.0.0.2 over 16 source ports (so
 * SO_REUSEPORT spreads them over every serving worker: all 16 on one of two has odds 1 in 32 768),
 * 5 q/s from 127.0.0.3, and 5 TCP queries from 127.0.0.2, all at once for `seconds`.
 */
export async function floodRun(port: number, seconds: number) {
  const query = buildQuery(`www.${ZONE}`, TYPE.A);
  const tcp: boolean[] = [];
  const tcpLoop = (async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, (seconds * 1000) / 6));
      const reply = await exchange(port, query, { tcp: true, source: '127.0.0.2' }).catch(() => undefined);
      tcp.push(reply !== undefined && (reply[3] & 0x0f) === 0 && reply.readUInt16BE(6) > 0);
    }
  })();
  const [flood, quiet] = await Promise.all([
    udpFlood({ port, source: '127.0.0.2', qps: FLOOD_QPS, seconds, query, sockets: 16 }),
    // Every one of these must come back: a longer wait for the last replies on a loaded machine.
    udpFlood({ port, source: '127.0.0.3', qps: 5, seconds, query, sockets: 1, graceMs: 1500 }),
  ]);
  await tcpLoop;
  return { flood, quiet, tcp };
}

/** The response kinds, each flooded from its own source with a random first label. */
export const KINDS = [
  // NXDOMAIN: one bucket for the zone; slipped replies keep the NXDOMAIN rcode.
  { what: 'NXDOMAIN', source: '127.0.0.21', name: `xxxxxxxx.${ZONE}`, type: TYPE.A, rcode: 3, slips: true },
  // Names under *.wild: one bucket for the zone's wildcard answers.
  {
    what: 'wildcard',
    source: '127.0.0.22',
    name: `xxxxxxxx.wild.${ZONE}`,
    type: TYPE.TXT,
    rcode: 0,
    slips: true,
  },
  // Names under the delegation sub: referrals, one bucket for the delegation point.
  {
    what: 'referral',
    source: '127.0.0.24',
    name: `xxxxxxxx.sub.${ZONE}`,
    type: TYPE.A,
    rcode: '0-empty',
    slips: true,
  },
  // NODATA for one name (no random label: NODATA is counted per qname).
  {
    what: 'NODATA',
    source: '127.0.0.25',
    name: `mail.${ZONE}`,
    type: TYPE.TXT,
    rcode: '0-empty',
    slips: true,
    fixed: true,
  },
  // Names in no zone of ours: REFUSED, an error; errors are never slipped.
  {
    what: 'REFUSED',
    source: '127.0.0.23',
    name: 'xxxxxxxx.elsewhere.test',
    type: TYPE.A,
    rcode: 5,
    slips: false,
  },
] as const;

export function kindsRun(port: number, qps: number, seconds: number): Promise<FloodResult[]> {
  return Promise.all(
    KINDS.map((k) =>
      udpFlood({
        port,
        source: k.source,
        qps,
        seconds,
        query: buildQuery(k.name, k.type),
        rcode: k.rcode,
        randomLabel: !('fixed' in k),
      }),
    ),
  );
}

/** dnsperf from 127.0.0.4 at FLOOD_QPS: sent, completed (answered or slipped), lost (dropped). */
export async function dnsperfRun(port: number, seconds: number, dataFile: string) {
  const args = ['-s', HOST, '-p', String(port), '-a', '127.0.0.4', '-d', dataFile, '-c', '4'];
  args.push('-q', '20000', '-Q', String(FLOOD_QPS), '-l', String(seconds), '-t', '1');
  const r = await run('dnsperf', args, { timeoutMs: (seconds + 15) * 1000 });
  if (r.code !== 0) throw new Error(`dnsperf failed: ${r.stderr}`);
  const num = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(r.stdout)?.[1]);
  return { sent: num('Queries sent'), completed: num('Queries completed'), lost: num('Queries lost') };
}

/** ns2's `GET /rate-limit`: entries, maxTableSize, dropped, slipped. */
export function rateLimitStats(controlPort: number): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: HOST, port: controlPort, path: '/rate-limit' }, (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
}
