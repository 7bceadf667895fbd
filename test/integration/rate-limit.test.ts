/**
 * Response rate limiting against real BIND 9.18 with the same `rate-limit` block (ns2 transfers
 * the zone from that named, then both are flooded the same way, one after the other):
 *
 * - a counting client floods www A at 5 000 q/s for 3 s from 127.0.0.2 over 4 source ports
 *   (so SO_REUSEPORT spreads it over ns2's two serving workers): answered within
 *   responsesPerSecond ± 10 % (BIND's accounting: a fresh bucket holds `rate`, a flood then keeps
 *   it in debt down to -window × rate, so nothing more is answered during it), every 2nd limited
 *   reply a TC=1 slip; drops and slips within 20 % of BIND's;
 * - meanwhile 127.0.0.3 (its own prefix: ipv4PrefixLength 32) at 5 q/s is answered every time,
 *   and TCP queries from 127.0.0.2 are all answered (TCP is never limited);
 * - dnsperf (-a 127.0.0.4 -Q 5000 -l 2) sees the same split between completed (answered or
 *   slipped) and lost (dropped) on both servers;
 * - ns2's log says once that it limits 127.0.0.2/32;
 * - a spoofed flood, one query from each of 100 000 addresses in 127/8 (IP_PKTINFO, sendmmsg:
 *   test/fixtures/spoof-flood.c), leaves ns2's table at maxTableSize and its RSS bounded.
 *
 * `npm run bench:rrl` runs the same comparison longer and prints the table.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TYPE } from '../../src/dns/types.js';
import { buildQuery, exchange } from '../harness/client.js';
import { type FloodResult, spoofFlood, udpFlood } from '../harness/flood.js';
import { type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2 } from '../harness/ns2.js';
import { freePort, HOST, rssMiB, run, waitFor } from '../harness/proc.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ZONE = 'example.test';
const zoneText = fs.readFileSync(path.join(ROOT, 'test/fixtures/example.test.zone'), 'utf8');
const RATE = 10;
const WINDOW = 15;
const SLIP = 2;
const TABLE = 20_000;
const FLOOD = { qps: 5000, seconds: 3 };

// Both servers get the same socket receive buffer, so a burst waits there rather than being lost.
const RECEIVE_BUFFER = 4 * 1024 * 1024;
const BIND_RATE_LIMIT = `udp-receive-buffer ${RECEIVE_BUFFER};
  rate-limit {
    responses-per-second ${RATE};
    window ${WINDOW};
    slip ${SLIP};
    ipv4-prefix-length 32;
    max-table-size ${TABLE};
  };`;
const NS2_RATE_LIMIT = {
  responsesPerSecond: RATE,
  window: WINDOW,
  slip: SLIP,
  ipv4PrefixLength: 32,
  maxTableSize: TABLE,
};

export interface SourceResult extends FloodResult {
  source: string;
}

/** The comparison run (also used by bench/rrl.ts): floods, a quiet client, TCP, dnsperf. */
export async function rateLimitRun(port: number, seconds = FLOOD.seconds) {
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
    udpFlood({ port, source: '127.0.0.2', qps: FLOOD.qps, seconds, query }),
    udpFlood({ port, source: '127.0.0.3', qps: 5, seconds, query, sockets: 1 }),
  ]);
  await tcpLoop;
  return { flood: { source: '127.0.0.2', ...flood }, quiet: { source: '127.0.0.3', ...quiet }, tcp };
}

/** dnsperf from 127.0.0.4: sent, completed (answered or slipped), lost (dropped). */
export async function dnsperfRun(port: number, seconds: number, dataFile: string) {
  const r = await run(
    'dnsperf',
    [
      '-s',
      HOST,
      '-p',
      String(port),
      '-a',
      '127.0.0.4',
      '-d',
      dataFile,
      '-c',
      '4',
      '-q',
      '20000',
      '-Q',
      '5000',
      '-l',
      String(seconds),
      '-t',
      '1',
    ],
    { timeoutMs: (seconds + 15) * 1000 },
  );
  if (r.code !== 0) throw new Error(`dnsperf failed: ${r.stderr}`);
  const num = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(r.stdout)?.[1]);
  return { sent: num('Queries sent'), completed: num('Queries completed'), lost: num('Queries lost') };
}

function getJson(port: number, p: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: HOST, port, path: p }, (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
}

const within = (actual: number, expected: number, fraction: number, what: string) =>
  assert.ok(
    Math.abs(actual - expected) <= Math.max(1, expected * fraction),
    `${what}: ${actual}, expected ${expected} ± ${Math.round(fraction * 100)} %`,
  );

describe('response rate limiting, ns2 and BIND 9.18 with the same rate-limit block', () => {
  let named: Named;
  let ns2: Ns2;
  let controlPort: number;
  let internalPort: number;
  let dataFile: string;

  before(async () => {
    named = await startNamed({ zones: [{ name: ZONE, text: zoneText }], extraOptions: BIND_RATE_LIMIT });
    controlPort = await freePort();
    const port = await freePort();
    internalPort = await freePort();
    ns2 = await startNs2({
      port,
      zones: [{ name: ZONE, primaries: [{ address: HOST, port: named.port }] }],
      extra: {
        // A second address exempt from limiting ("per server": say, an internal listener).
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
    await waitFor('ns2 to load the zone', async () => {
      const r = await exchange(ns2.port, buildQuery(`www.${ZONE}`, TYPE.A), { tcp: true }).catch(
        () => undefined,
      );
      return r !== undefined && r.readUInt16BE(6) > 0;
    });
    dataFile = path.join(ns2.dir, 'dnsperf.txt');
    fs.writeFileSync(dataFile, `www.${ZONE} A\n`);
  });
  after(async () => {
    await ns2?.stop();
    await named?.stop();
  });

  it('limits a flood from one source as BIND does; other sources and TCP are answered', async () => {
    const bind = await rateLimitRun(named.port);
    const ours = await rateLimitRun(ns2.port);
    const rows = [
      ['BIND', bind.flood],
      ['ns2', ours.flood],
      ['BIND', bind.quiet],
      ['ns2', ours.quiet],
    ] as const;
    for (const [who, r] of rows)
      console.log(
        `# ${who} ${r.source}: sent ${r.sent} answered ${r.answered} dropped ${r.dropped} slipped ${r.slipped}`,
      );
    console.log(`# ns2 counters ${JSON.stringify(await getJson(controlPort, '/rate-limit'))}`);
    for (const { flood, quiet, tcp } of [bind, ours]) {
      assert.ok(flood.sent >= FLOOD.qps * FLOOD.seconds * 0.99, 'the flood was sent');
      assert.equal(flood.other, 0);
      assert.equal(quiet.answered, quiet.sent, `every query from ${quiet.source} answered`);
      assert.deepEqual(tcp, [true, true, true, true, true], 'TCP from the flooded source answered');
    }
    within(ours.flood.answered, RATE, 0.1, 'ns2 answered');
    within(bind.flood.answered, RATE, 0.1, 'BIND answered');
    // Slip 2: half of what was limited comes back truncated (the first of the run included).
    const limited = ours.flood.sent - ours.flood.answered;
    within(ours.flood.slipped, limited / SLIP, 0.1, 'ns2 slipped');
    within(ours.flood.dropped, bind.flood.dropped, 0.2, 'ns2 dropped vs BIND');
    within(ours.flood.slipped, bind.flood.slipped, 0.2, 'ns2 slipped vs BIND');
    const stats = await getJson(controlPort, '/rate-limit');
    assert.ok(stats.dropped >= ours.flood.dropped * 0.9, 'ns2 counted its drops');
    assert.ok(stats.slipped >= ours.flood.slipped, 'ns2 counted its slips');
    const starts = ns2.logLines().filter((l) => l.action === 'limit' && l.prefix === '127.0.0.2/32');
    assert.equal(starts.length, 1, 'one "limit responses" line for the flooded prefix');
    assert.equal(starts[0].msg, 'limit responses to 127.0.0.2/32 for www.example.test');
  });

  it('dnsperf sees the same split on both: completed (answered + slipped) and lost', async () => {
    const bind = await dnsperfRun(named.port, 2, dataFile);
    const ours = await dnsperfRun(ns2.port, 2, dataFile);
    console.log(`# dnsperf BIND ${JSON.stringify(bind)} ns2 ${JSON.stringify(ours)}`);
    assert.ok(ours.sent >= 5000 && bind.sent >= 5000);
    within(ours.lost / ours.sent, bind.lost / bind.sent, 0.2, 'lost share vs BIND');
    within(ours.completed / ours.sent, bind.completed / bind.sent, 0.2, 'completed share vs BIND');
  });

  it('buckets as BIND keeps them: NXDOMAIN per zone, wildcard answers per zone, errors together', async () => {
    const kinds = [
      // Random names: NXDOMAIN, one bucket for the zone; slipped replies keep the NXDOMAIN rcode.
      {
        what: 'NXDOMAIN',
        source: '127.0.0.21',
        name: `xxxxxxxx.${ZONE}`,
        type: TYPE.A,
        rcode: 3,
        slips: true,
      },
      // Random names under *.wild: one bucket for the zone's wildcard answers.
      {
        what: 'wildcard',
        source: '127.0.0.22',
        name: `xxxxxxxx.wild.${ZONE}`,
        type: TYPE.TXT,
        rcode: 0,
        slips: true,
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
    ];
    const flood = (port: number) =>
      Promise.all(
        kinds.map((k) =>
          udpFlood({
            port,
            source: k.source,
            qps: 1000,
            seconds: 1,
            query: buildQuery(k.name, k.type),
            rcode: k.rcode,
            randomLabel: true,
          }),
        ),
      );
    const bind = await flood(named.port);
    const ours = await flood(ns2.port);
    kinds.forEach((k, i) => {
      const [b, o] = [bind[i], ours[i]];
      console.log(`# ${k.what}: BIND ${JSON.stringify(b)} ns2 ${JSON.stringify(o)}`);
      within(o.answered, RATE, 0.1, `${k.what} answered by ns2`);
      within(b.answered, RATE, 0.1, `${k.what} answered by BIND`);
      assert.equal(o.other, 0, `${k.what}: no other replies`);
      within(o.dropped, b.dropped, 0.2, `${k.what} dropped vs BIND`);
      within(o.slipped, b.slipped, 0.2, `${k.what} slipped vs BIND`);
      if (!k.slips) assert.equal(o.slipped, 0, `${k.what} never slipped`);
    });
  });

  it('listen[].rateLimit false: that address is not limited, the other still is', async () => {
    const query = buildQuery(`www.${ZONE}`, TYPE.A);
    const internal = await udpFlood({ port: internalPort, source: '127.0.0.6', qps: 500, seconds: 1, query });
    assert.equal(internal.answered, internal.sent);
    const outside = await udpFlood({ port: ns2.port, source: '127.0.0.7', qps: 500, seconds: 1, query });
    within(outside.answered, RATE, 0.1, 'answered on the limited address');
  });

  it('a flood from 100 000 spoofed sources keeps the table at maxTableSize and RSS bounded', async () => {
    const rssBefore = rssMiB(ns2.pid)!;
    // 127.1.0.0 onwards: 100 000 addresses, each its own prefix (ipv4PrefixLength 32).
    await spoofFlood(ns2.port, 100_000, 0x010000, buildQuery(`www.${ZONE}`, TYPE.A));
    await waitFor(
      'the flood to be accounted',
      async () => (await getJson(controlPort, '/rate-limit')).entries >= TABLE,
    );
    const stats = await getJson(controlPort, '/rate-limit');
    const rssAfter = rssMiB(ns2.pid)!;
    console.log(
      `# table ${stats.entries}/${stats.maxTableSize}, RSS ${rssBefore.toFixed(1)} -> ${rssAfter.toFixed(1)} MiB`,
    );
    assert.equal(stats.entries, TABLE);
    assert.ok(rssAfter - rssBefore < 32, `RSS grew by ${(rssAfter - rssBefore).toFixed(1)} MiB`);
    // Still answering, and still limiting.
    const again = await udpFlood({
      port: ns2.port,
      source: '127.0.0.5',
      qps: 200,
      seconds: 0.5,
      query: buildQuery(`www.${ZONE}`, TYPE.A),
    });
    within(again.answered, RATE, 0.1, 'a new flooding source is limited');
  });
});
