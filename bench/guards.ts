/**
 * Commit guards over a whole zone in memory (src/xfrin/guards.ts checkZone): the time to check
 * zones of 200k and 1M RRs (half A, half TXT, two RRs per owner), median of --rounds runs. This is
 * where the speed of the check is measured; test/unit/guards.test.ts only checks that it accepts a
 * 200k-RR zone within a liveness bound.
 *
 *   node --import tsx bench/guards.ts [--rounds 5]
 */
import { textToName } from '../src/dns/name.js';
import { TYPE } from '../src/dns/types.js';
import { checkZone, type GuardRR } from '../src/xfrin/guards.js';

const i = process.argv.indexOf('--rounds');
const ROUNDS = i >= 0 ? Number(process.argv[i + 1]) : 5;
const APEX = textToName('example.test');
const LIMITS = { maxRecordsPerType: 100, maxTypesPerName: 100 };

function zone(rrs: number): GuardRR[] {
  const name = (l: string) => textToName(`${l}.example.test`);
  const soa = Buffer.concat([name('ns1'), name('hostmaster'), Buffer.alloc(20)]);
  const out: GuardRR[] = [
    { owner: APEX, type: TYPE.SOA, rdata: soa },
    { owner: APEX, type: TYPE.NS, rdata: name('ns1') },
  ];
  for (let h = 0; out.length < rrs; h++) {
    const owner = name(`host${h}`);
    out.push({
      owner,
      type: TYPE.A,
      rdata: Buffer.from([10, (h >> 16) & 255, (h >> 8) & 255, h & 255]),
    });
    const text = Buffer.from(`h${h}`);
    out.push({ owner, type: TYPE.TXT, rdata: Buffer.concat([Buffer.from([text.length]), text]) });
  }
  return out;
}

for (const size of [200_000, 1_000_000]) {
  const z = zone(size);
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    const problem = await checkZone(z, APEX, LIMITS);
    times.push(performance.now() - t0);
    if (problem) throw new Error(`refused: ${problem}`);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(
    `checkZone ${size.toLocaleString('en')} RRs: median ${median.toFixed(0)} ms of ${ROUNDS} (min ${times[0].toFixed(0)}, max ${times.at(-1)!.toFixed(0)})`,
  );
}
