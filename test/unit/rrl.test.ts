/**
 * Response rate limiting (answer/rrl.ts) without sockets: BIND's token-bucket accounting, slip,
 * buckets by kind and name, prefixes, exemptions, the table bound, the shared table between two
 * limiters (two serving workers), the log lines; and the truncated (slipped) reply.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import dnsPacket from 'dns-packet';
import {
  createRrlTable,
  nameHash,
  RATE_LIMIT_DEFAULTS,
  type RateLimitConfig,
  RateLimiter,
  RRL_KIND,
  RRL_VERDICT,
  type RrlLogEvent,
  responseHash,
  responseKind,
} from '../../src/answer/rrl.js';
import { truncateInPlace } from '../../src/answer/truncated-reply.js';
import { textToName } from '../../src/dns/name.js';
import { ipBytes } from '../../src/ip-text.js';
import { optRR } from '../harness/packet.js';

const T0 = 1_000_000;

function config(over: Partial<RateLimitConfig> = {}): RateLimitConfig {
  return {
    ...RATE_LIMIT_DEFAULTS,
    responsesPerSecond: 10,
    referralsPerSecond: 10,
    nodataPerSecond: 10,
    nxdomainsPerSecond: 10,
    errorsPerSecond: 10,
    ...over,
  };
}

function limiter(over: Partial<RateLimitConfig> = {}, log?: (e: RrlLogEvent) => void) {
  const cfg = config(over);
  const table = createRrlTable(cfg, T0);
  return { rrl: new RateLimiter(cfg, table, log), table, cfg };
}

const name = (text: string) => {
  const w = textToName(text);
  return nameHash(w, 0, w.length);
};
const WWW_A = responseHash(name('www.example.test'), 1, 1);

/** Verdicts for `n` responses from `addr` at time `t`. */
function run(
  rrl: RateLimiter,
  addr: string,
  n: number,
  t: number,
  kind: number = RRL_KIND.RESPONSE,
  bucket = WWW_A,
) {
  const b = ipBytes(addr);
  const out = { ok: 0, drop: 0, slip: 0, seq: [] as number[] };
  for (let i = 0; i < n; i++) {
    const v = rrl.check(b, 0, b.length === 16, kind as 1, bucket, t);
    out.seq.push(v);
    if (v === RRL_VERDICT.OK) out.ok++;
    else if (v === RRL_VERDICT.DROP) out.drop++;
    else out.slip++;
  }
  return out;
}

test('a fresh bucket answers `rate` in its first second, then slips the first drop and every slip-th', () => {
  const { rrl } = limiter();
  const r = run(rrl, '192.0.2.1', 16, T0);
  assert.equal(r.ok, 10);
  assert.deepEqual(r.seq.slice(10), [2, 1, 2, 1, 2, 1]);
  assert.deepEqual(rrl.stats(), { entries: 1, dropped: 3, slipped: 3 });
});

test('a sustained flood stays limited: credit goes down to -window x rate and must be earned back', () => {
  const { rrl } = limiter();
  // 5000 q/s for 3 s: 10 answered in the first second, none after (BIND's behaviour).
  let ok = 0;
  for (let s = 0; s < 3; s++) ok += run(rrl, '192.0.2.1', 5000, T0 + s).ok;
  assert.equal(ok, 10);
  // Debt is -150 after the flood. 14 quiet seconds earn 140: still negative, still limited.
  assert.equal(run(rrl, '192.0.2.1', 1, T0 + 2 + 14).ok, 0);
  // That left -11: a second later -1 (limited), a second after that 9 (answered).
  assert.equal(run(rrl, '192.0.2.1', 1, T0 + 17).ok, 0);
  assert.equal(run(rrl, '192.0.2.1', 1, T0 + 18).ok, 1);
  // Flooded again, then idle longer than the window: a fresh bucket.
  run(rrl, '192.0.2.1', 5000, T0 + 19);
  assert.equal(run(rrl, '192.0.2.1', 12, T0 + 19 + 16).ok, 10);
});

test('a client below the rate is never limited; each second earns `rate` back up to `rate`', () => {
  const { rrl } = limiter();
  for (let s = 0; s < 30; s++) assert.equal(run(rrl, '192.0.2.1', 10, T0 + s).ok, 10);
  // Two quiet seconds still cap the credit at `rate`.
  assert.equal(run(rrl, '192.0.2.1', 15, T0 + 32).ok, 10);
});

test('a clock going backwards earns nothing, nor does going back and forth (threads read it apart)', () => {
  const { rrl } = limiter();
  run(rrl, '192.0.2.1', 11, T0 + 10);
  assert.equal(run(rrl, '192.0.2.1', 1, T0 + 5).ok, 0);
  // One thread still in second 10 while another is in 11: 11 earns its 10 credits once.
  const two = limiter().rrl;
  run(two, '192.0.2.1', 12, T0 + 10); // credit -2
  let ok = 0;
  for (let i = 0; i < 10; i++) ok += run(two, '192.0.2.1', 1, T0 + 10 + (i % 2)).ok;
  assert.equal(ok, 7, '-2 + 10 = 8 credits in second 11, less the 1 of second 10 in between');
});

test('buckets: identical answers together, other names apart; NXDOMAIN per zone; errors together', () => {
  const { rrl } = limiter();
  assert.equal(run(rrl, '192.0.2.1', 20, T0).ok, 10);
  assert.equal(
    run(rrl, '192.0.2.1', 20, T0, RRL_KIND.RESPONSE, responseHash(name('www.example.test'), 28, 1)).ok,
    10,
  );
  assert.equal(
    run(rrl, '192.0.2.1', 20, T0, RRL_KIND.RESPONSE, responseHash(name('ftp.example.test'), 1, 1)).ok,
    10,
  );
  // Random names under one zone: one NXDOMAIN bucket (the zone's), so the 11th is limited.
  const zone = name('example.test');
  assert.equal(run(rrl, '192.0.2.1', 20, T0, RRL_KIND.NXDOMAIN, zone).ok, 10);
  // NODATA for the same name is its own kind.
  assert.equal(
    run(rrl, '192.0.2.1', 20, T0, RRL_KIND.NODATA, responseHash(name('www.example.test'), 0, 1)).ok,
    10,
  );
  assert.equal(run(rrl, '192.0.2.1', 20, T0, RRL_KIND.ERROR, 0).ok, 10);
  // Not limited at all.
  assert.equal(run(rrl, '192.0.2.1', 50, T0, RRL_KIND.NONE, 0).ok, 50);
});

test('errors are never slipped; slip 0 drops all, slip 1 slips all, slip 3 every third', () => {
  const errors = run(limiter().rrl, '192.0.2.1', 20, T0, RRL_KIND.ERROR, 0);
  assert.deepEqual([errors.ok, errors.drop, errors.slip], [10, 10, 0]);
  assert.equal(run(limiter({ slip: 0 }).rrl, '192.0.2.1', 20, T0).drop, 10);
  assert.equal(run(limiter({ slip: 1 }).rrl, '192.0.2.1', 20, T0).slip, 10);
  assert.deepEqual(run(limiter({ slip: 3 }).rrl, '192.0.2.1', 16, T0).seq.slice(10), [2, 1, 1, 2, 1, 1]);
});

test('rate 0 leaves a kind unlimited (BIND); the per-kind rates are independent', () => {
  const { rrl } = limiter({ responsesPerSecond: 0, nxdomainsPerSecond: 2 });
  assert.equal(run(rrl, '192.0.2.1', 100, T0).ok, 100);
  assert.equal(run(rrl, '192.0.2.1', 10, T0, RRL_KIND.NXDOMAIN, name('example.test')).ok, 2);
  assert.equal(rrl.stats().entries, 1);
});

test('allPerSecond limits all responses to a prefix together and is never slipped', () => {
  const { rrl } = limiter({ allPerSecond: 5 });
  const a = run(rrl, '192.0.2.1', 3, T0);
  const b = run(rrl, '192.0.2.1', 5, T0, RRL_KIND.RESPONSE, responseHash(name('ftp.example.test'), 1, 1));
  assert.equal(a.ok + b.ok, 5);
  assert.equal(b.slip, 0);
  // What is never limited (NOTIFY answers, clients with a valid server cookie) is not counted.
  assert.equal(run(rrl, '192.0.2.9', 50, T0, RRL_KIND.NONE, 0).ok, 50);
});

test('prefixes: ipv4PrefixLength and ipv6PrefixLength group clients; v4-mapped is v4', () => {
  const { rrl } = limiter();
  assert.equal(run(rrl, '192.0.2.1', 6, T0).ok, 6);
  assert.equal(run(rrl, '192.0.2.200', 6, T0).ok, 4); // same /24
  assert.equal(run(rrl, '192.0.3.1', 6, T0).ok, 6);
  assert.equal(run(rrl, '::ffff:192.0.2.9', 2, T0).ok, 0); // the same /24 again
  assert.equal(run(rrl, '2001:db8:0:1::1', 6, T0).ok, 6);
  assert.equal(run(rrl, '2001:db8:0:ff::2', 6, T0).ok, 4); // same /56
  assert.equal(run(rrl, '2001:db8:0:100::1', 6, T0).ok, 6);
  const host = limiter({ ipv4PrefixLength: 32 }).rrl;
  assert.equal(run(host, '127.0.0.2', 20, T0).ok, 10);
  assert.equal(run(host, '127.0.0.3', 20, T0).ok, 10);
});

test('exemptClients are never limited and take no table entry', () => {
  const { rrl } = limiter({ exemptClients: ['192.0.2.0/25', '2001:db8::1'] });
  assert.equal(run(rrl, '192.0.2.5', 100, T0).ok, 100);
  assert.equal(run(rrl, '2001:db8::1', 100, T0).ok, 100);
  assert.equal(rrl.stats().entries, 0);
  assert.equal(run(rrl, '192.0.2.200', 100, T0).ok, 10);
});

test('logOnly answers everything, counts nothing, and logs what it would have done', () => {
  const events: RrlLogEvent[] = [];
  const { rrl } = limiter({ logOnly: true }, (e) => events.push(e));
  assert.equal(run(rrl, '192.0.2.1', 100, T0).ok, 100);
  assert.deepEqual(rrl.stats(), { entries: 1, dropped: 0, slipped: 0 });
  assert.equal(events.length, 1);
  assert.equal(events[0].logOnly, true);
});

test('the table never grows past maxTableSize: a spoofed flood from 100 000 prefixes', () => {
  const { rrl, table } = limiter({ maxTableSize: 1000, ipv4PrefixLength: 32 });
  const before = table.byteLength;
  const b = new Uint8Array(4);
  for (let i = 0; i < 100_000; i++) {
    b[0] = 10;
    b[1] = i >> 16;
    b[2] = (i >> 8) & 0xff;
    b[3] = i & 0xff;
    rrl.check(b, 0, false, RRL_KIND.RESPONSE, WWW_A, T0 + Math.floor(i / 20_000));
  }
  assert.equal(rrl.stats().entries, 1000);
  assert.equal(table.byteLength, before);
  // One set of 8: a new entry takes the oldest idle entry that is not limited (BIND's order), so
  // a limited client keeps its entry while there are such; when there are none the oldest goes.
  const one = limiter({ maxTableSize: 8, ipv4PrefixLength: 32 }).rrl;
  for (let i = 1; i <= 7; i++) run(one, `10.0.0.${i}`, 1, T0);
  run(one, '192.0.2.1', 2000, T0);
  for (let i = 1; i <= 7; i++) run(one, `10.0.1.${i}`, 1, T0 + 5);
  assert.equal(one.stats().entries, 8);
  assert.equal(run(one, '192.0.2.1', 1, T0 + 6).ok, 0, 'still limited: its entry was kept');
  run(one, '10.0.2.1', 1, T0 + 7); // the least recently used (10.0.1.1, idle 2 s) goes
  assert.equal(run(one, '192.0.2.1', 1, T0 + 8).ok, 0, 'still limited');
  assert.equal(run(one, '10.0.1.2', 1, T0 + 8).ok, 1);
  // Within one second, one-off sources push out each other before a client being limited.
  const busy = limiter({ maxTableSize: 8, ipv4PrefixLength: 32 }).rrl;
  run(busy, '192.0.2.1', 2000, T0);
  for (let i = 0; i < 50; i++) run(busy, `10.0.3.${i}`, 1, T0);
  assert.equal(run(busy, '192.0.2.1', 1, T0).ok, 0, 'still limited');
});

test('two limiters over one table (two serving workers) share each bucket', () => {
  const cfg = config();
  const table = createRrlTable(cfg, T0);
  const a = new RateLimiter(cfg, table);
  const b = new RateLimiter(cfg, table);
  let ok = 0;
  for (let i = 0; i < 100; i++) ok += run(i % 2 ? a : b, '192.0.2.1', 1, T0).ok;
  assert.equal(ok, 10);
  assert.deepEqual(a.stats(), b.stats());
  assert.equal(a.stats().dropped + a.stats().slipped, 90);
});

test('two threads hammering one bucket at once: the locks keep the count exact', async () => {
  const cfg = config({ responsesPerSecond: 1000 });
  const table = createRrlTable(cfg, T0);
  const n = 200_000;
  const fixture = new URL('../fixtures/rrl-worker.ts', import.meta.url).href;
  const start = () =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(
        `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(fixture)}); })`,
        { eval: true, workerData: { cfg, table, n, now: T0 } },
      );
      w.once('message', resolve);
      w.once('error', reject);
    });
  const [a, b] = await Promise.all([start(), start()]);
  // 1000 answered in all, whichever thread got them; every other check counted once.
  assert.equal(a + b, 1000);
  const stats = new RateLimiter(cfg, table).stats();
  assert.equal(stats.dropped + stats.slipped, 2 * n - 1000);
  assert.equal(stats.entries, 1);
});

test('a table used by one thread alone (no locks) counts the same', () => {
  const cfg = config();
  const lone = new RateLimiter(cfg, createRrlTable(cfg, T0), undefined, false);
  const r = run(lone, '192.0.2.1', 16, T0);
  assert.deepEqual([r.ok, r.seq.slice(10)], [10, [2, 1, 2, 1, 2, 1]]);
  assert.deepEqual(lone.stats(), { entries: 1, dropped: 3, slipped: 3 });
});

test('log lines: one when a bucket starts being limited, one every 30 minutes, one a minute after it stops', () => {
  const events: RrlLogEvent[] = [];
  const { rrl } = limiter({}, (e) => events.push(e));
  const b = ipBytes('192.0.2.77');
  const q = { qname: () => 'www.example.test' };
  // 20 q/s against a rate of 10, for more than half an hour.
  for (let s = 0; s <= 1810; s++)
    for (let i = 0; i < 20; i++) rrl.check(b, 0, false, RRL_KIND.RESPONSE, WWW_A, T0 + s, q);
  assert.deepEqual(
    events.map((e) => [e.action, e.prefix, e.kind, e.qname]),
    [
      ['limit', '192.0.2.0/24', 'responses', 'www.example.test'],
      ['continue', '192.0.2.0/24', 'responses', 'www.example.test'],
    ],
  );
  // Quiet: the stop is logged at the first check (of anyone) a minute after, once credit is back.
  run(rrl, '192.0.2.1', 1, T0 + 1810 + 30, RRL_KIND.ERROR, 0);
  assert.equal(events.length, 2);
  run(rrl, '192.0.2.1', 1, T0 + 1810 + 61, RRL_KIND.ERROR, 0);
  assert.deepEqual([events.length, events[2].action, events[2].qname], [3, 'stop', 'www.example.test']);
});

test('IPv6 prefixes are logged in RFC 5952 form', () => {
  const events: RrlLogEvent[] = [];
  const { rrl } = limiter({}, (e) => events.push(e));
  run(rrl, '2001:db8:0:1ff::53', 12, T0, RRL_KIND.ERROR, 0);
  assert.equal(events[0].prefix, '2001:db8:0:100::/56');
  assert.equal(events[0].kind, 'error');
});

test('responseKind: NXDOMAIN, errors, data, referral, NODATA', () => {
  assert.equal(responseKind(3, 0, true, false), RRL_KIND.NXDOMAIN);
  assert.equal(responseKind(5, 0, false, false), RRL_KIND.ERROR);
  assert.equal(responseKind(2, 0, false, false), RRL_KIND.ERROR);
  assert.equal(responseKind(0, 1, true, false), RRL_KIND.RESPONSE);
  assert.equal(responseKind(0, 0, false, true), RRL_KIND.REFERRAL);
  assert.equal(responseKind(0, 0, true, false), RRL_KIND.NODATA);
});

test('truncated reply: TC, no records, the question, OPT without options, rcode kept', () => {
  const reply = dnsPacket.encode({
    type: 'response',
    id: 0x1234,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | 3,
    questions: [{ name: 'nope.example.test', type: 'A', class: 'IN' }],
    answers: [],
    authorities: [
      {
        name: 'example.test',
        type: 'SOA',
        ttl: 60,
        data: { mname: 'ns', rname: 'h', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 1 },
      },
    ],
    additionals: [
      optRR(1232, { flags: dnsPacket.DNSSEC_OK, options: [{ code: 10, data: Buffer.alloc(8) }] }),
    ],
  });
  const buf = Buffer.alloc(reply.length + 10);
  reply.copy(buf, 5);
  const n = truncateInPlace(buf, 5, reply.length);
  const out = dnsPacket.decode(buf.subarray(5, 5 + n));
  assert.equal(out.id, 0x1234);
  assert.equal(out.flag_tc, true);
  assert.equal(out.rcode, 'NXDOMAIN');
  assert.equal(out.questions?.[0].name, 'nope.example.test');
  assert.equal(out.answers?.length, 0);
  assert.equal(out.authorities?.length, 0);
  assert.equal(out.additionals?.length, 1);
  const opt = out.additionals?.[0];
  assert.ok(opt?.type === 'OPT', 'the one additional RR is the OPT');
  assert.equal(opt.udpPayloadSize, 1232);
  assert.equal(opt.flags & dnsPacket.DNSSEC_OK, dnsPacket.DNSSEC_OK);
  assert.deepEqual(opt.options, []);
  // A reply without OPT is header and question only; garbage gives 0 (nothing sent).
  const plain = dnsPacket.encode({
    type: 'response',
    id: 1,
    questions: [{ name: 'a.test', type: 'A' }],
    answers: [{ name: 'a.test', type: 'A', data: '192.0.2.1' }],
  });
  assert.equal(truncateInPlace(Buffer.from(plain), 0, plain.length), 12 + 8 + 4);
  assert.equal(truncateInPlace(Buffer.from([0, 1, 2, 0, 0, 5, 0, 0, 0, 0, 0, 0, 3]), 0, 13), 0);
});
