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
 * `--runs` (default 5), with the CPU time of client and server (steadier than wall time on a
 * shared machine). Writes bench/results/<timestamp>-xot.json.
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
import { cpuSeconds, freePort, HOST, now } from '../test/harness/proc.js';
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

/** One transfer: wall time, and CPU time of the client (this process) and of the server process. */
interface Sample {
  ms: number;
  clientCpuMs: number;
  serverCpuMs: number;
}

const summary = (xs: Sample[]) => ({
  ms: Math.round(median(xs.map((x) => x.ms))),
  minMs: Math.round(Math.min(...xs.map((x) => x.ms))),
  clientCpuMs: Math.round(median(xs.map((x) => x.clientCpuMs))),
  serverCpuMs: Math.round(median(xs.map((x) => x.serverCpuMs))),
  runs: xs,
});

/** Runs `fn`, measuring wall time, this process's CPU and `serverPid`'s CPU (all its threads). */
async function sample(serverPid: number, fn: () => Promise<unknown>): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const server0 = cpuSeconds(serverPid) ?? 0;
  const t0 = now();
  await fn();
  const ms = now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    ms,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
    serverCpuMs: ((cpuSeconds(serverPid) ?? 0) - server0) * 1000,
  };
}

async function pull(to: Endpoint, zone: string): Promise<void> {
  const r = await axfr(to, textToName(zone), LIMITS);
  if (r.records !== RECORDS) throw new Error(`${zone}: ${r.records} records, expected ${RECORDS}`);
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
    const inTcp: Sample[] = [];
    const inTls: Sample[] = [];
    for (let i = 0; i < RUNS; i++) {
      inTcp.push(await sample(primary.pid, () => pull({ address: HOST, port: primary.port }, 'tcp.bench')));
      inTls.push(
        await sample(primary.pid, () => pull({ address: HOST, port: bindTls, tls: tlsIn }, 'tcp.bench')),
      );
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
    // The daemon's CPU (both threads) while it retransfers; BIND's is the "client" side here.
    const daemon: Record<string, Sample[]> = { 'tcp.bench': [], 'tls.bench': [] };
    for (let i = 0; i < RUNS; i++) {
      for (const z of zones) {
        const primaryCpu0 = cpuSeconds(primary.pid) ?? 0;
        const got = await sample(server.proc.pid, async () => {
          const r = await ns2Retransfer(server, z, 300_000);
          if (r.status !== 200) throw new Error(`retransfer ${z}: ${r.status} ${r.body}`);
        });
        got.clientCpuMs = ((cpuSeconds(primary.pid) ?? 0) - primaryCpu0) * 1000;
        daemon[z].push(got);
      }
    }
    await waitFor('every retransfer logged', () => zones.every((z) => transferredMs(z).length >= RUNS + 1));
    // Wall time as the daemon logged it (the transfer itself, without the control request).
    for (const z of zones)
      transferredMs(z)
        .slice(1)
        .forEach((ms, i) => {
          daemon[z][i].ms = ms;
        });
    results['in, daemon (BIND → ns2, AXFR into SQLite)'] = {
      tcp: summary(daemon['tcp.bench']),
      tls: summary(daemon['tls.bench']),
    };

    // out: ns2 serving, pulled by the same client over TCP and TLS.
    const outTcp: Sample[] = [];
    const outTls: Sample[] = [];
    const tlsOut = { caFile: ca.caFile, serverName: 'ns2.bench' };
    for (let i = 0; i < RUNS; i++) {
      outTcp.push(await sample(server.proc.pid, () => pull({ address: HOST, port }, 'tcp.bench')));
      outTls.push(
        await sample(server.proc.pid, () => pull({ address: HOST, port: tlsPort, tls: tlsOut }, 'tcp.bench')),
      );
    }
    results['out (ns2 xfrout → client)'] = { tcp: summary(outTcp), tls: summary(outTls) };
  } finally {
    await ns2?.proc.stop('SIGTERM', 5000);
    await primary.stop();
    if (!opt.keep) fs.rmSync(dir, { recursive: true, force: true });
    else process.stdout.write(`kept ${dir}\n`);
  }

  process.stdout.write(
    `\nAXFR of ${RECORDS} RRs on loopback, median of ${RUNS} (wall ms: median / min; CPU ms: client, server):\n`,
  );
  const cols = (x: ReturnType<typeof summary>) =>
    `${String(x.ms).padStart(5)} / ${String(x.minMs).padStart(5)}  cpu ${String(x.clientCpuMs).padStart(5)}, ${String(x.serverCpuMs).padStart(5)}`;
  for (const [what, r] of Object.entries(results)) {
    const ratio = (r.tls.ms / r.tcp.ms).toFixed(2);
    process.stdout.write(
      `  ${what}\n    TCP ${cols(r.tcp)}\n    TLS ${cols(r.tls)}   wall TLS/TCP ${ratio}\n`,
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
