/**
 * Readiness (pure) and the metrics registry without sockets: zone gauges from a snapshot, query
 * counters summed over threads (shared buffers as the serving workers use), transfer events.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ZoneConfig } from '../../src/config.js';
import { fallbackReason, Metrics, type ZoneSnapshot } from '../../src/control/metrics.js';
import { readiness, type ZoneStatusView } from '../../src/control/readiness.js';
import { RCODE } from '../../src/dns/message.js';
import { TYPE } from '../../src/dns/types.js';
import { COUNTER_BYTES, QueryCounters, TCP, UDP } from '../../src/serve/query-counters.js';

const NOW = 1_700_000_000;

describe('readiness', () => {
  const status = (m: Record<string, ZoneStatusView>) => (zone: string) => m[zone];
  const cases: {
    what: string;
    zones: string[];
    held: Record<string, ZoneStatusView>;
    ready: boolean;
    notReady: { zone: string; reason: string }[];
  }[] = [
    { what: 'no zones configured', zones: [], held: {}, ready: false, notReady: [] },
    {
      what: 'every zone loaded, expiry ahead',
      zones: ['a.test', 'b.test'],
      held: {
        'a.test': { state: 'ok', expiresAt: NOW + 1 },
        'b.test': { state: 'ok', expiresAt: NOW + 3600 },
      },
      ready: true,
      notReady: [],
    },
    {
      what: 'one never loaded',
      zones: ['a.test', 'b.test'],
      held: {
        'a.test': { state: 'ok', expiresAt: NOW + 60 },
        'b.test': { state: 'never_loaded', expiresAt: null },
      },
      ready: false,
      notReady: [{ zone: 'b.test', reason: 'not_loaded' }],
    },
    {
      what: 'expired by state, and by deadline before the scheduler marked it',
      zones: ['a.test', 'b.test'],
      held: { 'a.test': { state: 'expired', expiresAt: NOW - 5 }, 'b.test': { state: 'ok', expiresAt: NOW } },
      ready: false,
      notReady: [
        { zone: 'a.test', reason: 'expired' },
        { zone: 'b.test', reason: 'expired' },
      ],
    },
    {
      what: 'configured but not held at all',
      zones: ['a.test'],
      held: {},
      ready: false,
      notReady: [{ zone: 'a.test', reason: 'unknown' }],
    },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const r = readiness(c.zones, status(c.held), NOW);
      assert.equal(r.ready, c.ready);
      assert.equal(r.zones, c.zones.length);
      assert.deepEqual(
        r.not_ready.map(({ zone, reason }) => ({ zone, reason })),
        c.notReady,
      );
    });
  }

  it('says why when there are no zones, and when an expired zone expired', () => {
    assert.equal(readiness([], () => undefined, NOW).error, 'no zones configured');
    const r = readiness(['a.test'], () => ({ state: 'expired', expiresAt: NOW - 60 }), NOW);
    assert.equal(r.not_ready[0].expired_at, new Date((NOW - 60) * 1000).toISOString());
    assert.equal(r.error, undefined);
  });
});

/** The value of `name{labels}` in an exposition, undefined when absent. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const zoneConfig = { name: 'a.test', transfer: 'ixfr' } as ZoneConfig;

describe('metrics registry', () => {
  it('fills per-zone gauges from the scrape-time snapshot; a zone gone disappears', async () => {
    const m = new Metrics({ defaultMetrics: false });
    let zones: ZoneSnapshot[] = [
      {
        row: {
          name: 'a.test',
          serial: 42,
          state: 'ok',
          primary_addr: '192.0.2.1#53',
          last_refresh: NOW - 10,
          last_transfer: NOW - 100,
          next_refresh: NOW + 3000,
          expires_at: NOW + 86400,
          records: 17,
          catalog: null,
          catalog_label: null,
        },
        state: 'ok',
        expiresAt: NOW + 86400,
        timers: { refresh: 3600, retry: 600, expire: 86400 },
      },
    ];
    m.watchZones(() => zones);
    let text = (await m.render()).body;
    assert.equal(sample(text, 'ns2_zone_serial', 'zone="a.test"'), 42);
    assert.equal(sample(text, 'ns2_zone_records', 'zone="a.test"'), 17);
    assert.equal(sample(text, 'ns2_zone_state', 'zone="a.test",state="ok"'), 1);
    assert.equal(sample(text, 'ns2_zone_state', 'zone="a.test",state="expired"'), 0);
    assert.equal(sample(text, 'ns2_zone_expiry_timestamp_seconds', 'zone="a.test"'), NOW + 86400);
    assert.equal(sample(text, 'ns2_zone_retry_seconds', 'zone="a.test"'), 600);
    assert.equal(sample(text, 'ns2_zone_primary_serial', 'zone="a.test"'), undefined);
    zones = [];
    text = (await m.render()).body;
    assert.equal(sample(text, 'ns2_zone_serial', 'zone="a.test"'), undefined);
    assert.equal(sample(text, 'ns2_zone_state', 'zone="a.test",state="ok"'), undefined);
  });

  it('sums query counters over threads (shared buffers) with bounded labels; RRL from its table', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const main = new QueryCounters();
    const worker = new QueryCounters(new SharedArrayBuffer(COUNTER_BYTES));
    // The main thread's view of the worker's buffer, as ServingWorkers holds it.
    const workerSeenByMain = new QueryCounters(worker.slots.buffer);
    m.addQueryCounters(main);
    m.addQueryCounters(workerSeenByMain);
    for (let i = 0; i < 5; i++) worker.answered(UDP, RCODE.NOERROR, TYPE.A);
    main.answered(UDP, RCODE.NXDOMAIN, TYPE.AAAA);
    main.answered(TCP, RCODE.NOERROR, TYPE.AXFR);
    main.answered(UDP, 16, TYPE.A); // BADVERS, an extended rcode
    main.answered(UDP, 4000, 65400); // out of every set: rcode and qtype `other`
    main.answeredWithoutQuestion(UDP, RCODE.FORMERR);
    m.watchRateLimit(() => ({ dropped: 1, slipped: 2 }));
    const text = (await m.render()).body;
    assert.equal(sample(text, 'ns2_queries_total', 'transport="udp",rcode="NOERROR"'), 5);
    assert.equal(sample(text, 'ns2_queries_total', 'transport="udp",rcode="NXDOMAIN"'), 1);
    assert.equal(sample(text, 'ns2_queries_total', 'transport="udp",rcode="BADVERS"'), 1);
    assert.equal(sample(text, 'ns2_queries_total', 'transport="udp",rcode="other"'), 1);
    assert.equal(sample(text, 'ns2_queries_total', 'transport="udp",rcode="FORMERR"'), 1);
    assert.equal(sample(text, 'ns2_queries_total', 'transport="tcp",rcode="NOERROR"'), 1);
    // The usual rcodes are there at 0 from the start; the others only once sent.
    assert.equal(sample(text, 'ns2_queries_total', 'transport="tcp",rcode="SERVFAIL"'), 0);
    assert.equal(sample(text, 'ns2_queries_total', 'transport="tcp",rcode="NOTAUTH"'), undefined);
    assert.equal(sample(text, 'ns2_query_types_total', 'qtype="A"'), 6);
    assert.equal(sample(text, 'ns2_query_types_total', 'qtype="AAAA"'), 1);
    assert.equal(sample(text, 'ns2_query_types_total', 'qtype="AXFR"'), 1);
    assert.equal(sample(text, 'ns2_query_types_total', 'qtype="other"'), 1);
    assert.equal(sample(text, 'ns2_rrl_dropped_total'), 1);
    assert.equal(sample(text, 'ns2_rrl_slipped_total'), 2);
  });

  it('counts transfer attempts, durations, bytes, fallbacks and the primary serial', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.watchZones(() => [
      {
        row: {
          name: 'a.test',
          serial: 5,
          state: 'ok',
          primary_addr: null,
          last_refresh: null,
          last_transfer: null,
          next_refresh: null,
          expires_at: null,
          records: 3,
          catalog: null,
          catalog_label: null,
        },
        state: 'ok',
        expiresAt: null,
      },
    ]);
    m.addZone(zoneConfig, 4);
    const seeded = (await m.render()).body;
    assert.equal(sample(seeded, 'ns2_zone_primary_serial', 'zone="a.test"'), 4);
    assert.equal(sample(seeded, 'ns2_transfers_total', 'zone="a.test",kind="ixfr",result="failed"'), 0);
    const base = { zone: 'a.test', started_at: NOW, trigger: 'notify', primary_addr: '192.0.2.1#53' };
    // An IXFR refused by the primary, then AXFR: counted as axfr, with its fallback reason.
    m.transferAttempt(zoneConfig, {
      ...base,
      result: 'transferred',
      kind_requested: 'ixfr',
      kind_performed: 'axfr',
      fallback_reason: 'primary answered NOTIMP',
      primary_serial: 5,
      serial_before: 4,
      serial_after: 5,
      bytes: 1200,
      duration_ms: 250,
    });
    // An SOA check finding nothing new: counted under the kind it would have asked for.
    m.transferAttempt(zoneConfig, { ...base, result: 'uptodate', primary_serial: 5, serial_before: 5 });
    // A failure while the primary has something newer: behind since then.
    m.transferAttempt(zoneConfig, {
      ...base,
      started_at: NOW + 60,
      result: 'failed',
      kind_requested: 'ixfr',
      primary_serial: 6,
      serial_before: 5,
    });
    const text = (await m.render()).body;
    const t = (kind: string, result: string) =>
      sample(text, 'ns2_transfers_total', `zone="a.test",kind="${kind}",result="${result}"`);
    assert.equal(t('axfr', 'transferred'), 1);
    assert.equal(t('ixfr', 'uptodate'), 1);
    assert.equal(t('ixfr', 'failed'), 1);
    assert.equal(t('axfr', 'failed'), 0); // present from addZone on
    assert.equal(sample(text, 'ns2_transfer_duration_seconds_count', 'kind="axfr"'), 1);
    assert.equal(sample(text, 'ns2_transfer_duration_seconds_sum', 'kind="axfr"'), 0.25);
    assert.equal(sample(text, 'ns2_transfer_duration_seconds_bucket', 'le="0.25",kind="axfr"'), 1);
    assert.equal(sample(text, 'ns2_transfer_duration_seconds_bucket', 'le="0.1",kind="axfr"'), 0);
    assert.equal(sample(text, 'ns2_transfer_bytes_total', 'zone="a.test"'), 1200);
    assert.equal(sample(text, 'ns2_ixfr_fallbacks_total', 'zone="a.test",reason="notimp"'), 1);
    assert.equal(sample(text, 'ns2_zone_primary_serial', 'zone="a.test"'), 6);
    assert.equal(sample(text, 'ns2_zone_behind_since_timestamp_seconds', 'zone="a.test"'), NOW + 60);
  });

  it('names IXFR fallback reasons from a bounded set', () => {
    assert.equal(fallbackReason('primary answered REFUSED'), 'refused');
    assert.equal(fallbackReason('inconsistent diff: delete of an absent RR'), 'inconsistent');
    assert.equal(fallbackReason('no UDP reply from 192.0.2.1#53 within 3000 ms'), 'timeout');
    assert.equal(fallbackReason('TSIG verification failed: BADSIG'), 'tsig');
    assert.equal(fallbackReason('IXFR exceeds maxRecords (10)'), 'limit');
    assert.equal(fallbackReason('IXFR version chain broken: 3 then 5'), 'malformed');
  });

  it('lets other modules register their own counters', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const c = m.counter('ns2_test_things_total', 'Things.', ['kind']);
    c.inc({ kind: 'x' }, 3);
    assert.equal(sample((await m.render()).body, 'ns2_test_things_total', 'kind="x"'), 3);
  });
});
