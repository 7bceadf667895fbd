/**
 * Answering while big transfers apply (issue #6): dnsperf runs against ns2 while a 200k-record
 * AXFR of a new serial (operator retransfer) and then a 50 000-deletion IXFR (operator refresh)
 * are applied. The writes happen on the writer thread, so no query may be lost; and no reply may
 * mix two versions of the zone (every answer reads one snapshot).
 *
 * What makes the claim checkable:
 * - both transfers are applied inside dnsperf's run: the window from ns2's first staged row (or
 *   the IXFR commit request) to its `zone transferred` line lies within dnsperf's, by timestamps;
 * - every version of the zone (serials 1, 2, 3) carries markers in one reply — the MX preference,
 *   the MX target's address and a second NS's address in the additional section — so a reply
 *   built from two versions shows two markers; our probes run throughout, each must be answered,
 *   and some must fall inside each transfer's apply window;
 * - the probe replies are decoded with dns-packet, not ns2's decoder.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { TYPE } from '../../src/dns/types.js';
import { buildQuery, exchange } from '../harness/client.js';
import { freePort, type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { dnsperf } from '../harness/proc.js';
import { bigZone } from '../harness/zonegen.js';

const ZONE = 'load.test';
const SIZE = 200_000;
const DELETED = 50_000;
const PERF_SECONDS = 30;
let named: Named;
let ns2: Ns2;
let controlPort: number;

/** Version `v` of the zone: `SIZE` (less `deleted`) address records plus the version markers. */
function zoneText(v: number, deleted = 0): string {
  const lines = bigZone(ZONE, SIZE, v)
    .split('\n')
    .filter((l) => !/^h(\d+) /.test(l) || Number(/^h(\d+) /.exec(l)![1]) >= deleted);
  return `${lines.join('\n')}
  NS ns2
ns2 A 192.0.3.${v}
mix MX ${10 * v} mxt
mxt A 192.0.2.${v}
`;
}

/** The versions one reply to `mix MX` (RD clear) shows: one number, unless versions mixed. */
function markers(reply: Buffer): Set<number> {
  const m = dnsPacket.decode(reply);
  const seen = new Set<number>();
  for (const a of m.answers ?? [])
    if (a.type === 'MX') seen.add((a.data as { preference: number }).preference / 10);
  for (const a of m.additionals ?? []) {
    if (a.type !== 'A') continue;
    if (a.name === `mxt.${ZONE}` || a.name === `ns2.${ZONE}`) seen.add(Number(String(a.data).split('.')[3]));
  }
  return seen;
}

interface Probe {
  at: number;
  versions: number[];
}

before(async () => {
  const port = await freePort();
  controlPort = await freePort();
  // No NOTIFY and SOA refresh 3600: ns2 transfers only when this test asks it to.
  named = await startNamed({ zones: [{ name: ZONE, text: zoneText(1), dynamic: false }] });
  ns2 = await startNs2({
    port,
    zones: [{ name: ZONE, primaries: [{ address: '127.0.0.1', port: named.port }] }],
    extra: { control: { address: '127.0.0.1', port: controlPort } },
  });
  await waitFor(
    'zone loaded',
    async () => markers(await exchange(ns2.port, buildQuery(`mix.${ZONE}`, TYPE.MX))).has(1),
    120_000,
  );
});

after(async () => {
  await ns2?.stop();
  await named?.stop();
});

/** dnsperf (proc.ts) at 4 000 q/s, with the wall-clock span of its run. */
async function timedDnsperf(port: number, seconds: number, file: string) {
  const start = Date.now();
  const out = await dnsperf({ port, file, seconds, qps: 4000 });
  return { out, start, end: Date.now() };
}

/** POST /zones/ZONE/ACTION: resolves once the check (and its transfer) is over. */
async function control(action: 'retransfer' | 'refresh'): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${controlPort}/zones/${ZONE}/${action}`, { method: 'POST' });
  assert.equal(r.status, 200, await r.text());
}

/** [start, end] (epoch ms) of ns2's apply of the transfer to `serial`, from its log. */
function applyWindow(serial: number, startMsg: string): [number, number] {
  const at = (msg: string) => {
    const e = ns2.logLines().find((l) => l.zone === ZONE && l.msg === msg && l.serial === serial);
    assert.ok(e, `ns2 logged "${msg}" for serial ${serial}`);
    return Date.parse(String(e.time));
  };
  return [at(startMsg), at('zone transferred')];
}

describe('answering while transfers apply', () => {
  it('loses no query and never mixes versions during a 200k AXFR and a 50k-deletion IXFR', async () => {
    const file = path.join(ns2.dir, 'queries.txt');
    const lines: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const n = (i * 7919) % SIZE;
      lines.push(i % 5 === 4 ? `nx${i}.${ZONE} A` : `h${n}.${ZONE} ${i % 3 ? 'A' : 'TXT'}`);
    }
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const perf = timedDnsperf(ns2.port, PERF_SECONDS, file);

    // Our probes, every ~5 ms for the whole run: each must be answered (a timeout fails the test).
    const probes: Probe[] = [];
    const failures: string[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const at = Date.now();
        try {
          const reply = await exchange(ns2.port, buildQuery(`mix.${ZONE}`, TYPE.MX), { timeoutMs: 2000 });
          probes.push({ at, versions: [...markers(reply)].sort() });
        } catch (e) {
          failures.push(`${new Date(at).toISOString()}: ${(e as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    let run: Awaited<typeof perf>;
    try {
      await new Promise((r) => setTimeout(r, 2000));
      // Version 2 (a new serial, every marker changed), fetched by AXFR on the operator's request.
      await named.replaceZone(ZONE, zoneText(2));
      await control('retransfer');
      // Version 3: 50 000 deletions; `rndc reload` makes BIND journal the difference
      // (ixfr-from-differences), and ns2's SOA check pulls it as one IXFR.
      await named.replaceZone(ZONE, zoneText(3, DELETED));
      await control('refresh');
      run = await perf;
    } finally {
      probing = false;
      await prober;
    }
    const { out } = run;
    const sent = Number(/Queries sent:\s+(\d+)/.exec(out)?.[1]);
    const lost = Number(/Queries lost:\s+(\d+)/.exec(out)?.[1]);
    const axfr = applyWindow(2, 'first RRs staged');
    const ixfr = applyWindow(3, 'committing transfer');
    const inside = (w: [number, number]) => probes.filter((p) => p.at >= w[0] && p.at <= w[1]).length;
    const transfers = ns2.logLines().filter((l) => l.msg === 'zone transferred' && l.zone === ZONE);
    console.log(
      `dnsperf ${new Date(run.start).toISOString()}..${new Date(run.end).toISOString()}: sent ${sent}, lost ${lost}; ` +
        `AXFR applied ${axfr[1] - axfr[0]} ms (${inside(axfr)} probes inside), IXFR ${ixfr[1] - ixfr[0]} ms ` +
        `(${inside(ixfr)} probes inside); ${probes.length} probes, ${failures.length} failed`,
    );
    assert.ok(sent > 10_000, out);
    assert.equal(lost, 0, `lost ${lost} of ${sent}\n${out}`);
    // Both applies lie inside dnsperf's run (a second of margin for its start-up and drain).
    for (const [what, w] of [
      ['AXFR', axfr],
      ['IXFR', ixfr],
    ] as const) {
      assert.ok(w[0] > run.start + 1000 && w[1] < run.end - 1000, `${what} apply ${w} outside dnsperf's run`);
    }
    assert.deepEqual(
      transfers.slice(-2).map((l) => [l.kind, l.serial_to]),
      [
        ['axfr', 2],
        ['ixfr', 3],
      ],
    );
    // Every probe answered, with exactly one version, versions never going back.
    assert.deepEqual(failures, []);
    assert.ok(probes.length > 1000, `${probes.length} probes`);
    const mixed = probes.filter((p) => p.versions.length !== 1);
    assert.deepEqual(mixed, [], 'replies mixing versions (or missing markers)');
    const seq = probes.map((p) => p.versions[0]);
    assert.ok(
      seq.every((v, i) => i === 0 || v >= seq[i - 1]),
      'a probe saw an older version after a newer one',
    );
    assert.deepEqual([...new Set(seq)], [1, 2, 3]);
    // Probes ran while each transfer applied, so a mix would have been seen.
    assert.ok(inside(axfr) > 0 && inside(ixfr) > 0, 'probes inside both apply windows');
  });
});
