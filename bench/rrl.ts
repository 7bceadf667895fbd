/**
 * `npm run bench:rrl`: response rate limiting, ns2 against BIND 9.18 with the same `rate-limit`
 * block (test/harness/rate-limit.ts: BIND primary, ns2 secondary with two serving workers), over
 * a longer flood than the test's. Prints one markdown table: per source and server, queries
 * sent, answered, dropped and slipped as the client counted them, then dnsperf's view.
 *
 *   npm run bench:rrl [-- --seconds N]     (default 10)
 */
import { parseArgs } from 'node:util';
import type { FloodResult } from '../test/harness/flood.js';
import { dnsperfRun, FLOOD_QPS, floodRun, KINDS, kindsRun, startPair } from '../test/harness/rate-limit.js';

process.env.PATH = `/usr/local/sbin:/usr/sbin:/sbin:${process.env.PATH ?? '/usr/bin:/bin'}`;
const { values: opt } = parseArgs({ options: { seconds: { type: 'string', default: '10' } } });
const SECONDS = Number(opt.seconds);

const rows: string[] = [];
const row = (source: string, what: string, server: string, r: FloodResult) =>
  rows.push(`| ${source} | ${what} | ${server} | ${r.sent} | ${r.answered} | ${r.dropped} | ${r.slipped} |`);

const pair = await startPair();
try {
  const results = { BIND: pair.named.port, ns2: pair.ns2.port };
  for (const [server, port] of Object.entries(results)) {
    const { flood, quiet, tcp } = await floodRun(port, SECONDS);
    row('127.0.0.2', `www A, ${FLOOD_QPS} q/s, 16 ports`, server, flood);
    row('127.0.0.3', 'www A, 5 q/s', server, quiet);
    rows.push(
      `| 127.0.0.2 | www A over TCP | ${server} | ${tcp.length} | ${tcp.filter(Boolean).length} | 0 | 0 |`,
    );
  }
  for (const [server, port] of Object.entries(results)) {
    const kinds = await kindsRun(port, 1000, SECONDS);
    KINDS.forEach((k, i) => {
      row(k.source, `${k.what}, ${'fixed' in k ? 'one name' : 'random names'}, 1000 q/s`, server, kinds[i]);
    });
  }
  const perf: string[] = [];
  for (const [server, port] of Object.entries(results)) {
    const d = await dnsperfRun(port, SECONDS, pair.dataFile);
    perf.push(
      `| 127.0.0.4 | dnsperf -Q ${FLOOD_QPS} -l ${SECONDS} | ${server} | ${d.sent} | ${d.completed} | ${d.lost} |`,
    );
  }
  console.log(
    `\nResponse rate limiting, ${SECONDS} s per flood, rate-limit { responses-per-second 10; window 15; slip 2; ipv4-prefix-length 32; }\n`,
  );
  console.log(
    '| source | queries | server | sent | answered | dropped | slipped |\n|---|---|---|---|---|---|---|',
  );
  console.log(rows.join('\n'));
  console.log(
    '\n| source | load | server | sent | completed (answered + slipped) | lost (dropped) |\n|---|---|---|---|---|---|',
  );
  console.log(perf.join('\n'));
} finally {
  await pair.stop();
}
