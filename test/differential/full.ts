/**
 * `npm run test:differential:full`: the whole differential matrix (every query name × every
 * type × every variant, test/harness/differential.ts) against a default BIND 9.18 secondary.
 * Prints the number compared and each difference; exits 1 on any. `--summary` groups them.
 */
import { allQuestions, compareAll, describeDiff, queryNames, setup, ZONES } from '../harness/differential.js';

const summary = process.argv.includes('--summary');
const s = await setup();
try {
  const qs = allQuestions(queryNames(s.names, ZONES));
  const t0 = performance.now();
  const { compared, diffs } = await compareAll(s, qs);
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(
    `${compared} responses compared in ${secs} s (${s.names.length} owner names), ${diffs.length} differ`,
  );
  if (summary) {
    const groups = new Map<string, number>();
    for (const d of diffs) {
      const k = `${d.q.type} ${d.q.variant.name.replace(/rd=\d/, '')} ${d.parts.join(',')}`;
      groups.set(k, (groups.get(k) ?? 0) + 1);
    }
    for (const [k, n] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 80)) console.log(`${n}\t${k}`);
  }
  for (const d of diffs.slice(0, summary ? 40 : 200)) console.log(describeDiff(d));
  process.exitCode = diffs.length > 0 ? 1 : 0;
} finally {
  await s.stop();
}
