/**
 * `npm run bench:xot`: what TLS (RFC 9103, XoT) costs a zone transfer of a 100k-RR zone, against
 * plain TCP, on loopback (no network latency: this is the CPU cost of TLS, the worst case for it).
 *
 *   in, client   ns2's transfer client (xfrin/axfr.ts) pulling AXFR from BIND 9.18, TCP vs TLS:
 *                connect + handshake + stream + parse, nothing stored
 *   in, daemon   ns2 retransferring the zone (POST /zones/Z/retransfer): AXFR over TCP vs TLS
 *                into SQLite, the `ms` of its `zone transferred` log line
 *   out          ns2 serving the zone (tlsListen vs listen), pulled by the same client
 *
 * Runs alternate TCP and TLS so drift on a shared machine hits both; medians and minimums over
 * `--runs` (default 5). Writes bench/results/<timestamp>-xot.json.
 *
 *   npm run bench:xot [-- --records N] [-- --runs N] [-- --ns2 DIR] [-- --keep]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { textToName } from '../src/dns/name.js';
import { axfr } from '../src/xfrin/axfr.js';
import type { Endpoint } from '../src/xfrin/transport.js';
import { makeCa } from '../test/harness/certs.js';
import { startNamed } from '../test/harness/named.js';
import {
  type Ns2Server,
  ns2LogEvents,
  ns2Retransfer,
  ns2Root,
  spawnNs2,
  waitFor,
} from '../test/harness/ns2.js';
import { freePort, HOST, now } from '../test/harness/proc.js';
import { environment, writeResults } from './lib/results.js';
import { writeZone } from './lib/zone.js';

process.env.PATH = `/usr/local/sbin:/usr/sbin:/sbin:${process.env.PATH ?? '/usr/bin:/bin'}`;

const { values: opt } = parseArgs({
  options: {
    records: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '5' },
    keep: { type: 'boolean', default: false },
    ns2: { type: 'string' },
  },
});
if (opt.ns2) process.env.NS2_BENCH_ROOT = path.resolve(opt.ns2);
const RECORDS = Number(opt.records);
const RUNS = Number(opt.runs);
const LIMITS = { maxRecords: 10_000_000, maxTransferBytes: 2e9, maxTransferSeconds: 600, maxIdleSeconds: 60 };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const summary = (xs: number[]) => ({
  median: Math.round(median(xs)),
  min: Math.round(Math.min(...xs)),
  runs: xs,
});

async function timedAxfr(to: Endpoint, zone: string): Promise<number> {
  const t0 = now();
  const r = await axfr(to, textToName(zone), LIMITS);
  if (r.records !== RECORDS) throw new Error(`${zone}: ${r.records} records, expected ${RECORDS}`);
  return now() - t0;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-bench-xot-'));
  const ca = await makeCa(path.join(dir, 'ca'));
  const primaryCert = await ca.issue('primary', 'primary.bench');
  const ns2Cert = await ca.issue('ns2', 'ns2.bench');
  const zones = ['tcp.bench', 'tls.bench'];
  const text = zones.map((z) => {
    const file = path.join(dir, `${z}.zone`);
    writeZone(file, z, RECORDS, 1);
    return fs.readFileSync(file, 'utf8');
  });
  const bindTls = await freePort();
  const primary = await startNamed({
    keys: `tls primary { cert-file "${primaryCert.certFile}"; key-file "${primaryCert.keyFile}"; };`,
    extraOptions: `  listen-on port ${bindTls} tls primary { ${HOST}; };`,
    zones: zones.map((name, i) => ({ name, text: text[i], dynamic: false })),
  });
  const tlsIn = { caFile: ca.caFile, serverName: 'primary.bench' };
  const results: Record<string, { tcp: ReturnType<typeof summary>; tls: ReturnType<typeof summary> }> = {};
  const [port, tlsPort, controlPort] = [await freePort(), await freePort(), await freePort()];
  let ns2: Ns2Server | undefined;
  try {
    // in, client: the same zone from BIND over TCP and over TLS.
    const inTcp: number[] = [];
    const inTls: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      inTcp.push(await timedAxfr({ address: HOST, port: primary.port }, 'tcp.bench'));
      inTls.push(await timedAxfr({ address: HOST, port: bindTls, tls: tlsIn }, 'tcp.bench'));
    }
    results['in, client (BIND → ns2 xfrin, no store)'] = { tcp: summary(inTcp), tls: summary(inTls) };

    // in, daemon: ns2 started now (its first loads do not overlap the client runs).
    ns2 = spawnNs2({
      dir: path.join(dir, 'ns2'),
      port,
      config: {
        control: { address: HOST, port: controlPort },
        workers: 1,
        tlsListen: [{ address: HOST, port: tlsPort, ...ns2Cert }],
        zones: [
          { name: 'tcp.bench', primaries: [{ address: HOST, port: primary.port }], allowTransfer: [HOST] },
          {
            name: 'tls.bench',
            primaries: [{ address: HOST, port: bindTls, tls: tlsIn }],
            allowTransfer: [HOST],
          },
        ],
      },
    });
    const server = ns2;
    // both zones loaded, then retransfers of each.
    const transferredMs = (zone: string) =>
      ns2LogEvents(server.proc, 'zone transferred')
        .filter((e) => e.zone === zone && e.kind === 'axfr')
        .map((e) => e.ms as number);
    await waitFor('both zones loaded', () => zones.every((z) => transferredMs(z).length >= 1), 300_000);
    for (let i = 0; i < RUNS; i++) {
      for (const z of zones) {
        const r = await ns2Retransfer(server, z, 300_000);
        if (r.status !== 200) throw new Error(`retransfer ${z}: ${r.status} ${r.body}`);
      }
    }
    await waitFor('every retransfer logged', () => zones.every((z) => transferredMs(z).length >= RUNS + 1));
    results['in, daemon (BIND → ns2, AXFR into SQLite)'] = {
      tcp: summary(transferredMs('tcp.bench').slice(1)),
      tls: summary(transferredMs('tls.bench').slice(1)),
    };

    // out: ns2 serving, pulled by the same client over TCP and TLS.
    const outTcp: number[] = [];
    const outTls: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      outTcp.push(await timedAxfr({ address: HOST, port }, 'tcp.bench'));
      outTls.push(
        await timedAxfr(
          { address: HOST, port: tlsPort, tls: { caFile: ca.caFile, serverName: 'ns2.bench' } },
          'tcp.bench',
        ),
      );
    }
    results['out (ns2 xfrout → client)'] = { tcp: summary(outTcp), tls: summary(outTls) };
  } finally {
    await ns2?.proc.stop('SIGTERM', 5000);
    await primary.stop();
    if (!opt.keep) fs.rmSync(dir, { recursive: true, force: true });
    else process.stdout.write(`kept ${dir}\n`);
  }

  process.stdout.write(`\nAXFR of ${RECORDS} RRs on loopback, ms (median / min of ${RUNS}):\n`);
  for (const [what, r] of Object.entries(results)) {
    const ratio = (r.tls.median / r.tcp.median).toFixed(2);
    process.stdout.write(
      `  ${what.padEnd(44)} TCP ${String(r.tcp.median).padStart(6)} / ${String(r.tcp.min).padStart(6)}   TLS ${String(r.tls.median).padStart(6)} / ${String(r.tls.min).padStart(6)}   TLS/TCP ${ratio}\n`,
    );
  }
  const file = writeResults('xot', {
    env: environment(),
    ns2: ns2Root(),
    records: RECORDS,
    runs: RUNS,
    results,
  });
  process.stdout.write(`results: ${file}\n`);
}

await main();
