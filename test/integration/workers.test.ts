/**
 * Serving workers against a real BIND primary (src/serve/workers.ts):
 *
 *   named ──NOTIFY (UDP)──► worker ──forward──► main ──IXFR──► named
 *                                                 │ commit → image / patch to every worker
 *   clients ──UDP (SO_REUSEPORT)──► worker 1 | worker 2        clients ──TCP──► main
 *
 * With `workers: 2` and the native datagram path:
 * - both workers log `listening on UDP` (distinct `worker`, io 'batched'), main logs TCP;
 * - 200 queries, each from a fresh source port, are all answered as named answers them, and
 *   reach both workers. No counter says which worker answered, so the spread is read from the
 *   kernel: each thread's voluntary context switches (/proc/PID/task/TID/status) count its
 *   wake-ups, and an idle serving thread wakes once per datagram. Two threads other than main
 *   must each take a share; main (which would wake for every forwarded query) must not;
 * - nsupdate on named → NOTIFY (arrives at a worker, answered by main) → IXFR → the new record
 *   over UDP; from the first UDP answer that shows it, 100 more from fresh ports all show it
 *   (every worker installed the patch, its answer cache did not serve the old NXDOMAIN), and
 *   TCP too;
 * - AXFR and IXFR over UDP (handed to main) get the reply shape named gives; a TSIG-signed query
 *   (answered in a worker) and a signed IXFR (forwarded, so verified twice) get verifiable replies;
 * - SIGTERM with both workers running exits 0 within a few seconds.
 * Then with NS2_UDP=dgram (node:dgram cannot share a port on Node 20): `workers: 1` answers
 * UDP on the main thread (io 'dgram') with the same results, and `workers: 2` falls back to one
 * thread with a warning.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseMessage, rcodeOf } from '../../src/dns/message.js';
import { textToName } from '../../src/dns/name.js';
import { signRequest, type TsigKey, TsigResponseVerifier } from '../../src/dns/tsig.js';
import { TYPE } from '../../src/dns/types.js';
import { dgramReusePort } from '../../src/net/dgram-socket.js';
import { buildIxfrQuery } from '../../src/xfrin/ixfr.js';
import { buildQuery, exchange, query, summarize } from '../harness/client.js';
import { digAt, freePort, type Named, startNamed } from '../harness/named.js';
import { levelAtLeast, type Ns2, startNs2, waitFor } from '../harness/ns2.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const ZONE = 'example.test';
const zoneText = fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8');
const KEY: TsigKey = { name: 'query-key', algorithm: 'hmac-sha256', secret: randomBytes(32) };
const KEY_B64 = KEY.secret.toString('base64');
const now = () => Math.floor(Date.now() / 1000);

/** Answers of every kind: data, CNAME chain, wildcard, DNAME, referral, NXDOMAIN, NODATA. */
const SAMPLE: readonly (readonly [string, number])[] = [
  [ZONE, TYPE.SOA],
  [ZONE, TYPE.NS],
  [ZONE, TYPE.MX],
  [`www.${ZONE}`, TYPE.A],
  [`mail.${ZONE}`, TYPE.AAAA],
  [`ftp.${ZONE}`, TYPE.A],
  [`txt.${ZONE}`, TYPE.TXT],
  [`x.wild.${ZONE}`, TYPE.TXT],
  [`host.dname.${ZONE}`, TYPE.A],
  [`www.sub.${ZONE}`, TYPE.A],
  [`nope.${ZONE}`, TYPE.A],
  [`mail.${ZONE}`, TYPE.TXT],
  [`b.ent.${ZONE}`, TYPE.A],
];

const serialOf = async (port: number, zone: string) => {
  const m = parseMessage(await query(port, zone, TYPE.SOA));
  const soa = m.answer.find((r) => r.type === TYPE.SOA);
  return soa ? soa.rdata.readUInt32BE(soa.rdata.length - 20) : undefined;
};

/** The RR lines of one section of dig's output, whitespace normalised. */
function digSection(out: string, section: string): string[] {
  const lines = out.split('\n');
  const start = lines.indexOf(`;; ${section} SECTION:`);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && l.trim() === '');
  return lines
    .slice(start + 1, end < 0 ? undefined : end)
    .map((l) => l.trim().split(/\s+/).join(' '))
    .sort();
}

/** The four section counts of a reply's header. */
const counts = (reply: Buffer) => [4, 6, 8, 10].map((o) => reply.readUInt16BE(o));

/** Voluntary context switches per thread of a process: how often each has gone to sleep. */
function wakeups(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      out.set(Number(tid), Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1]));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/**
 * Runs `work` and says how often ns2's main thread and each other thread woke meanwhile (other
 * threads: most first). Sequential queries make one wake-up per datagram on an idle server.
 */
async function threadWakeups(ns2: Ns2, work: () => Promise<void>) {
  const before = wakeups(ns2.pid);
  await work();
  const after = wakeups(ns2.pid);
  const delta = (tid: number) => (after.get(tid) ?? 0) - (before.get(tid) ?? 0);
  const others = [...after.keys()].filter((t) => t !== ns2.pid).map(delta);
  return { main: delta(ns2.pid), others: others.sort((a, b) => b - a) };
}

/** `n` queries, one after another, each from a fresh socket (so a fresh source port). */
async function freshPortQueries(port: number, n: number, pick: (i: number) => readonly [string, number]) {
  const replies: { name: string; type: number; reply: ReturnType<typeof summarize> }[] = [];
  for (let i = 0; i < n; i++) {
    const [name, type] = pick(i);
    replies.push({ name, type, reply: summarize(await query(port, name, type, { timeoutMs: 2000 })) });
  }
  return replies;
}

async function assertSameAsNamed(ns2: Ns2, named: Named): Promise<void> {
  for (const [name, type] of SAMPLE) {
    assert.deepEqual(
      summarize(await query(ns2.port, name, type)),
      summarize(await query(named.port, name, type)),
      `${name} ${type}`,
    );
  }
}

/**
 * nsupdate → NOTIFY → IXFR. Polls over UDP (fresh port each time) until one answer shows the
 * new record; then 100 more from fresh ports, right away, must all show it; TCP too.
 */
async function assertUpdateReachesUdp(ns2: Ns2, named: Named, owner: string, address: string) {
  const name = `${owner}.${ZONE}`;
  const serialBefore = await serialOf(named.port, ZONE);
  // Not there yet: NXDOMAIN, now in the answer caches of whichever threads answered.
  for (const { reply } of await freshPortQueries(ns2.port, 20, () => [name, TYPE.A]))
    assert.equal(reply.rcode, 3, `${name} before the update`);
  const t0 = Date.now();
  await named.nsupdate(`zone ${ZONE}\nupdate add ${name}. 300 A ${address}\n`);
  const shows = (r: ReturnType<typeof summarize>) =>
    r.rcode === 0 &&
    r.answer.length === 1 &&
    r.answer[0].endsWith(Buffer.from(address.split('.').map(Number)).toString('hex'));
  await waitFor(`UDP answer with ${name}`, async () => shows(summarize(await query(ns2.port, name, TYPE.A))));
  const firstSeenMs = Date.now() - t0;
  const t1 = Date.now();
  const replies = await freshPortQueries(ns2.port, 100, () => [name, TYPE.A]);
  const burstMs = Date.now() - t1;
  const stale = replies.filter((r) => !shows(r.reply));
  assert.equal(
    stale.length,
    0,
    `${stale.length}/100 answers without ${name} after the first one had it: ${JSON.stringify(stale[0])}`,
  );
  assert.ok(burstMs < 2000, `the 100 queries took ${burstMs} ms`);
  const want = summarize(await query(named.port, name, TYPE.A));
  assert.deepEqual(summarize(await query(ns2.port, name, TYPE.A, { tcp: true })), want, 'TCP');
  assert.deepEqual(replies[0].reply, want, 'UDP');
  // It came as NOTIFY → IXFR, not by a timer or a full transfer.
  const serial = await serialOf(named.port, ZONE);
  assert.notEqual(serial, serialBefore);
  // This update's NOTIFY (named may still be retrying an older one to a port that was closed).
  const notifies = () =>
    ns2
      .logLines()
      .filter(
        (l) =>
          l.msg === 'NOTIFY received' &&
          l.zone === ZONE &&
          l.peer === '127.0.0.1' &&
          Date.parse(String(l.time)) >= t0,
      );
  await waitFor('NOTIFY logged', () => notifies().length > 0);
  const notify = notifies()[0];
  assert.equal(notify.worker, undefined, 'NOTIFY answered by the main thread');
  const transferred = ns2.logLines().find((l) => l.msg === 'zone transferred' && l.serial === serial);
  assert.ok(transferred, `transfer to ${serial} logged`);
  assert.equal(transferred.kind, 'ixfr');
  assert.equal(transferred.trigger, 'notify');
  return { firstSeenMs, burstMs };
}

describe('serving workers with a BIND primary', () => {
  let named: Named;
  const ports: number[] = [];

  before(async () => {
    ports.push(await freePort(), await freePort(), await freePort());
    named = await startNamed({
      keys: `key "${KEY.name}" { algorithm hmac-sha256; secret "${KEY_B64}"; };`,
      zones: [{ name: ZONE, text: zoneText, alsoNotify: ports }],
    });
  });
  after(async () => {
    await named?.stop();
  });

  const ns2Zones = () => [
    {
      name: ZONE,
      primaries: [{ address: '127.0.0.1', port: named.port }],
      allowTransfer: ['127.0.0.0/8'],
    },
  ];
  const keys = { keys: { [KEY.name]: { algorithm: KEY.algorithm, secret: KEY_B64 } } };

  describe('workers: 2, batched datagram I/O', () => {
    let ns2: Ns2 | undefined;
    const running = () => {
      assert.ok(ns2, 'ns2 started');
      return ns2;
    };

    before(async () => {
      ns2 = await startNs2({
        port: ports[0],
        zones: ns2Zones(),
        extra: { workers: 2, ...keys },
        env: { NS2_UDP: undefined },
      });
      const s = running();
      await waitFor('zone loaded', async () => (await serialOf(s.port, ZONE)) !== undefined);
      // startNs2 returns at the first answer: the second worker may still be binding.
      await waitFor(
        'both workers listening',
        () => s.logLines().filter((l) => l.msg === 'listening on UDP').length >= 2,
      );
    });
    after(async () => {
      await ns2?.stop();
      if (ns2) fs.rmSync(ns2.dir, { recursive: true, force: true });
    });

    it('two workers listen on UDP (batched), the main thread on TCP', () => {
      const lines = running().logLines();
      const udp = lines.filter((l) => l.msg === 'listening on UDP');
      assert.equal(udp.length, 2, JSON.stringify(udp));
      assert.notEqual(udp[0].worker, udp[1].worker);
      for (const l of udp) {
        assert.equal(typeof l.worker, 'number');
        assert.equal(l.io, 'batched');
        assert.equal(l.port, running().port);
        assert.equal(l.address, '127.0.0.1');
      }
      const tcp = lines.filter((l) => l.msg === 'listening on TCP');
      assert.equal(tcp.length, 1);
      assert.equal(tcp[0].worker, undefined);
      assert.equal(tcp[0].port, running().port);
      assert.ok(!lines.some((l) => /^listening on UDP and TCP|^workers:|^batched UDP/.test(String(l.msg))));
    });

    it('answers 200 queries from 200 source ports as named does, spread over both workers', async (t) => {
      const s = running();
      await assertSameAsNamed(s, named);
      const want = new Map<string, ReturnType<typeof summarize>>();
      for (const [name, type] of SAMPLE)
        want.set(`${name}/${type}`, summarize(await query(named.port, name, type)));
      let replies: Awaited<ReturnType<typeof freshPortQueries>> = [];
      const woke = await threadWakeups(s, async () => {
        replies = await freshPortQueries(s.port, 200, (i) => SAMPLE[i % SAMPLE.length]);
      });
      assert.equal(replies.length, 200);
      for (const r of replies)
        assert.deepEqual(r.reply, want.get(`${r.name}/${r.type}`), `${r.name} ${r.type}`);
      const [first, second] = woke.others;
      const detail = JSON.stringify(woke);
      t.diagnostic(`wake-ups during 200 queries: main ${woke.main}, others ${woke.others.slice(0, 4)}`);
      // SO_REUSEPORT hashes the 4-tuple: with 200 source ports each socket gets about half.
      assert.ok(
        first >= 20 && second >= 20,
        `two threads should each wake for ≥ 10% of the queries: ${detail}`,
      );
      assert.ok(woke.main < 20, `the main thread woke ${woke.main} times: queries forwarded? ${detail}`);
    });

    it('nsupdate → NOTIFY via a worker → IXFR: every worker answers the new record at once', async (t) => {
      const s = running();
      const r = await assertUpdateReachesUdp(s, named, 'w2', '192.0.2.201');
      t.diagnostic(`first UDP sighting ${r.firstSeenMs} ms after nsupdate; 100 checks took ${r.burstMs} ms`);
      assert.ok(r.firstSeenMs < 5000);
      // The 100 checks after the first sighting reached both workers too.
      const woke = await threadWakeups(s, async () => {
        const replies = await freshPortQueries(s.port, 100, () => [`w2.${ZONE}`, TYPE.A]);
        assert.ok(replies.every((x) => x.reply.answer.length === 1));
      });
      assert.ok(woke.others[1] >= 10, `both workers answered: ${JSON.stringify(woke)}`);
      await assertSameAsNamed(s, named);
    });

    it('AXFR and IXFR over UDP (answered by main) get the reply shape named gives', async (t) => {
      const s = running();
      const axfr = buildQuery(ZONE, TYPE.AXFR);
      const ours = await exchange(s.port, axfr);
      const theirs = await exchange(named.port, axfr);
      assert.equal(rcodeOf(ours.readUInt16BE(2)), rcodeOf(theirs.readUInt16BE(2)), 'AXFR rcode');
      assert.deepEqual(counts(ours), counts(theirs), 'AXFR section counts');
      t.diagnostic(`AXFR over UDP: rcode ${rcodeOf(ours.readUInt16BE(2))}, counts ${counts(ours)}`);
      // IXFR from the current serial: SOA alone, as named says it.
      const soa = parseMessage(await query(named.port, ZONE, TYPE.SOA)).answer[0];
      const ixfr = buildIxfrQuery(textToName(ZONE), soa.ttl, soa.rdata).msg;
      const ixOurs = await exchange(s.port, ixfr);
      const ixTheirs = await exchange(named.port, ixfr);
      assert.equal(rcodeOf(ixOurs.readUInt16BE(2)), rcodeOf(ixTheirs.readUInt16BE(2)), 'IXFR rcode');
      assert.deepEqual(counts(ixOurs), counts(ixTheirs), 'IXFR section counts');
      assert.deepEqual(summarize(ixOurs), summarize(ixTheirs), 'IXFR reply');
    });

    it('TSIG over UDP: a signed query (worker) and a signed IXFR (main) get replies that verify', async () => {
      const s = running();
      const y = ['-y', `hmac-sha256:${KEY.name}:${KEY_B64}`, '+norec', '+tries=1', '+time=2'];
      const ours = await digAt(s.port, [...y, `mail.${ZONE}`, 'AAAA']);
      const theirs = await named.dig([...y, `mail.${ZONE}`, 'AAAA']);
      assert.match(ours, /TSIG PSEUDOSECTION/);
      assert.match(ours, /status: NOERROR/);
      assert.doesNotMatch(ours, /Couldn't verify|could not be validated|tsig (verify )?fail|TSIG error/i);
      assert.match(ours, /;; flags: qr aa;/, 'authoritative, not truncated');
      assert.match(ours, /\(UDP\)/);
      assert.deepEqual(digSection(ours, 'ANSWER'), digSection(theirs, 'ANSWER'));
      assert.equal(digSection(ours, 'ANSWER').length, 1, ours);
      // A signed IXFR over UDP: the worker checks the TSIG, then hands it to main, which signs.
      const soa = parseMessage(await query(s.port, ZONE, TYPE.SOA)).answer[0];
      const req = signRequest(buildIxfrQuery(textToName(ZONE), soa.ttl, soa.rdata).msg, KEY, now());
      const reply = await exchange(s.port, req.msg);
      new TsigResponseVerifier(KEY, req.mac, now).verify(reply);
      assert.equal(rcodeOf(reply.readUInt16BE(2)), 0);
      assert.deepEqual(
        parseMessage(reply).answer.map((r) => r.type),
        [TYPE.SOA],
      );
    });

    it('SIGTERM with both workers running: exit 0 within a few seconds, no worker errors', async () => {
      const s = running();
      // Both workers still serving right before the signal.
      const woke = await threadWakeups(s, async () => {
        await freshPortQueries(s.port, 60, (i) => SAMPLE[i % SAMPLE.length]);
      });
      assert.ok(woke.others[1] >= 6, JSON.stringify(woke));
      const t0 = Date.now();
      const code = await s.stop();
      const ms = Date.now() - t0;
      assert.equal(code, 0, `exit code after ${ms} ms`);
      assert.ok(ms < 3000, `took ${ms} ms to stop`);
      const lines = s.logLines();
      assert.ok(lines.some((l) => l.msg === 'stopped'));
      const errors = lines.filter((l) => levelAtLeast(l, 'error'));
      assert.deepEqual(errors, []);
    });
  });

  // Node < 22.12: dgram cannot share a port, so the main thread answers UDP; later Nodes give each
  // worker its own dgram socket on the shared port.
  describe('NS2_UDP=dgram: the dgram path answers UDP', () => {
    let ns2: Ns2 | undefined;
    const running = () => {
      assert.ok(ns2, 'ns2 started');
      return ns2;
    };

    before(async () => {
      ns2 = await startNs2({
        port: ports[1],
        zones: ns2Zones(),
        extra: { workers: 2, ...keys },
        env: { NS2_UDP: 'dgram' },
      });
      const s = running();
      await waitFor('zone loaded', async () => (await serialOf(s.port, ZONE)) !== undefined);
    });
    after(async () => {
      await ns2?.stop();
      if (ns2) fs.rmSync(ns2.dir, { recursive: true, force: true });
    });

    it('listens with io dgram: UDP in the main thread, or in each worker where dgram shares a port', () => {
      const lines = running().logLines();
      const listening = lines.filter((l) => String(l.msg).startsWith('listening on'));
      if (!dgramReusePort()) {
        assert.equal(listening.length, 1, JSON.stringify(listening));
        assert.equal(listening[0].msg, 'listening on UDP and TCP');
        assert.equal(listening[0].io, 'dgram');
        assert.equal(listening[0].worker, undefined);
      } else {
        const udp = listening.filter((l) => l.msg === 'listening on UDP');
        assert.equal(udp.length, 2, JSON.stringify(listening));
        for (const l of udp) {
          assert.equal(l.io, 'dgram');
          assert.notEqual(l.worker, undefined);
        }
        const tcp = listening.filter((l) => l.msg === 'listening on TCP');
        assert.equal(tcp.length, 1, JSON.stringify(listening));
        assert.equal(tcp[0].worker, undefined);
      }
      const warn = lines.find((l) => String(l.msg).startsWith('batched UDP I/O unavailable'));
      assert.ok(warn, 'the dgram path is announced');
      assert.equal(warn.reason, 'NS2_UDP=dgram');
    });

    it('answers 200 queries from 200 source ports as named does', async () => {
      const s = running();
      await assertSameAsNamed(s, named);
      const want = new Map<string, ReturnType<typeof summarize>>();
      for (const [name, type] of SAMPLE)
        want.set(`${name}/${type}`, summarize(await query(named.port, name, type)));
      const replies = await freshPortQueries(s.port, 200, (i) => SAMPLE[i % SAMPLE.length]);
      assert.equal(replies.length, 200);
      for (const r of replies)
        assert.deepEqual(r.reply, want.get(`${r.name}/${r.type}`), `${r.name} ${r.type}`);
    });

    it('nsupdate → NOTIFY → IXFR reaches UDP answers', async () => {
      const s = running();
      await assertUpdateReachesUdp(s, named, 'dg', '192.0.2.202');
      await assertSameAsNamed(s, named);
      assert.equal(await s.stop(), 0);
    });
  });

  const sharesPort = dgramReusePort();
  it('NS2_UDP=dgram with workers: 2 falls back to one thread, with a warning', {
    skip: sharesPort && `node:dgram shares a port on Node ${process.version}: no fallback`,
  }, async () => {
    const s = await startNs2({
      port: ports[2],
      zones: ns2Zones(),
      extra: { workers: 2 },
      env: { NS2_UDP: 'dgram' },
    });
    try {
      await waitFor('zone loaded', async () => (await serialOf(s.port, ZONE)) !== undefined);
      const lines = s.logLines();
      const warn = lines.find((l) => String(l.msg).startsWith('workers: sockets cannot share a port'));
      assert.ok(warn, JSON.stringify(lines));
      assert.equal(warn.workers, 2);
      const listening = lines.filter((l) => String(l.msg).startsWith('listening on'));
      assert.deepEqual(
        listening.map((l) => [l.msg, l.io, l.worker]),
        [['listening on UDP and TCP', 'dgram', undefined]],
      );
      assert.deepEqual(
        summarize(await query(s.port, `w2.${ZONE}`, TYPE.A)),
        summarize(await query(named.port, `w2.${ZONE}`, TYPE.A)),
      );
      assert.equal(await s.stop(), 0);
    } finally {
      await s.stop();
      fs.rmSync(s.dir, { recursive: true, force: true });
    }
  });
});
