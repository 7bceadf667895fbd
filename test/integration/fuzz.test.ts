/**
 * A bounded slice of the fuzz run (test/fuzz/run.ts; `npm run fuzz` is the long one): 200 000
 * hostile UDP packets and 2 000 malformed TCP streams against a real ns2 in at most 45 s. ns2 must
 * stay up, answer every probe query correctly over UDP and TCP, log no unhandled error, and its
 * RSS must not grow beyond what its answer caches fill plus a margin (rssLimitMb in run.ts;
 * measured after a warm-up slice of the same traffic).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runFuzz } from '../fuzz/run.js';

describe('fuzz: hostile UDP packets and malformed TCP streams', () => {
  it('200 000 packets + 2 000 streams: alive, answering, RSS growth within the caches + margin', {
    timeout: 180_000,
  }, async (t) => {
    const seed = Number(process.env.NS2_FUZZ_SEED ?? 20_240_617);
    const report = await runFuzz({ packets: 200_000, seconds: 90, tcpStreams: 2000, seed, sample: 2000 });
    t.diagnostic(
      `seed ${seed}: ${report.udpSent} UDP packets (${report.udpRepliesSeen} replies), ${report.tcpStreams} TCP streams ` +
        `(${report.tcpMessages} writes) in ${report.seconds.toFixed(1)} s; probes ${report.udpProbesAnswered}/${report.udpProbes} UDP, ` +
        `${report.tcpProbesAnswered}/${report.tcpProbes} TCP; RSS cold ${report.rssColdMb.toFixed(1)} MB, ` +
        `baseline ${report.rssStartMb.toFixed(1)} MB, peak ${report.rssPeakMb.toFixed(1)} MB (limit +${report.rssLimitMb.toFixed(1)}), end ${report.rssEndMb.toFixed(1)} MB; ` +
        `against BIND ${report.sample.agreed}/${report.sample.count} reply classes agree ${JSON.stringify(report.sample.byPair)}`,
    );
    assert.deepEqual(report.failures, [], JSON.stringify(report.errors.slice(0, 5)));
    assert.ok(report.udpSent >= 200_000, `${report.udpSent} UDP packets sent in the time`);
    assert.equal(report.sample.count, 2000);
    assert.ok(report.alive);
    assert.ok(
      report.rssGrowthMb < report.rssLimitMb,
      `RSS grew ${report.rssGrowthMb.toFixed(1)} MB (limit ${report.rssLimitMb.toFixed(1)})`,
    );
    assert.ok(report.tcpProbes > 0 && report.tcpProbesAnswered === report.tcpProbes);
  });
});
