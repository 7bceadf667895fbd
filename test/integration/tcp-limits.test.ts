/**
 * TCP front under pressure (RFC 7766 §6.2): 2 000 idle connections against maxTcpConnections 500
 * (capped: the stalest are closed to make room, so new clients are still served), every idle one
 * closed after tcpIdleSeconds, and a slowloris client (one byte a second, never a whole message)
 * cut at the idle timeout while a client sending whole queries stays.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseMessage } from '../../src/dns/message.js';
import { buildQuery, query } from '../harness/client.js';
import { type FakePrimary, startFakePrimary } from '../harness/fake-primary.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { exampleZone } from '../harness/records.js';

const IDLE_S = 2;
const WANTED = 2000;

/** The soft open-files limit this process (and ns2, its child) runs under. */
function fdLimit(): number {
  const out = execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  return out === 'unlimited' ? Number.POSITIVE_INFINITY : Number(out);
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

const framed = (msg: Buffer) => Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);

describe('TCP limits: connection cap, idle timeout, slowloris', () => {
  let fake: FakePrimary;
  let ns2: Ns2;
  // This process holds every client end, ns2 at most CAP + a few: both stay inside `ulimit -n`.
  const limit = fdLimit();
  const count = Math.min(WANTED, limit - 200);
  const CAP = Math.min(500, Math.floor(count / 4));

  before(async () => {
    fake = await startFakePrimary('example.test', new Map([[1, exampleZone(1)]]), 1);
    ns2 = await startNs2({
      zones: [{ name: 'example.test', primaries: [{ address: '127.0.0.1', port: fake.port }] }],
      extra: { maxTcpConnections: CAP, tcpIdleSeconds: IDLE_S, logLevel: 'info' },
    });
    await waitFor(
      'zone loaded',
      async () => (parseMessage(await query(ns2.port, 'example.test', 6)).header.flags & 0xf) === 0,
    );
  });

  after(async () => {
    await ns2?.stop();
    await fake?.stop();
  });

  it(`${count} idle connections: at most ${CAP} kept, new queries served, all closed after ${IDLE_S} s`, async (t) => {
    if (count < WANTED) t.diagnostic(`ulimit -n is ${limit}: ${count} connections instead of ${WANTED}`);
    assert.ok(CAP >= 50, `ulimit -n is ${limit}: too low for this test`);
    const socks: net.Socket[] = [];
    let closedByServer = 0;
    const t0 = Date.now();
    for (let i = 0; i < count; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, count - i) }, () => connect(ns2.port)),
      );
      for (const s of batch) {
        s.on('error', () => undefined);
        s.on('close', () => closedByServer++);
        socks.push(s);
      }
    }
    const openingMs = Date.now() - t0;
    await waitFor('the cap to be enforced', () => count - closedByServer <= CAP, 5000);
    const open = count - closedByServer;
    assert.ok(open <= CAP, `${open} connections open`);
    // The newest connections are the ones kept: the stalest made room for them.
    const survivors = socks.filter((s) => !s.destroyed && s.readyState === 'open');
    assert.ok(survivors.includes(socks[socks.length - 1]), 'the newest connection is open');

    // New clients are still served, over TCP and UDP.
    const tcp = parseMessage(await query(ns2.port, 'www.example.test', 1, { tcp: true }));
    assert.equal(tcp.answer.length, 2);
    const udp = parseMessage(await query(ns2.port, 'www.example.test', 1));
    assert.equal(udp.answer.length, 2);

    // Idle ones go after tcpIdleSeconds.
    await waitFor('every idle connection closed', () => closedByServer === count, (IDLE_S + 3) * 1000);
    const lifetime = (Date.now() - t0) / 1000;
    assert.ok(lifetime >= IDLE_S, `closed after ${lifetime} s`);
    for (const s of socks) s.destroy();
    t.diagnostic(`${count} connections opened in ${openingMs} ms; ${open} kept at the cap of ${CAP}`);
  });

  it('a slowloris client (one byte a second) is cut at the idle timeout; whole queries keep a connection', async () => {
    const slow = await connect(ns2.port);
    const steady = await connect(ns2.port);
    steady.on('data', () => undefined);
    const t0 = Date.now();
    const closed = (s: net.Socket) => new Promise<number>((r) => s.once('close', () => r(Date.now() - t0)));
    const slowClosed = closed(slow);
    let steadyClosedAt: number | undefined;
    void closed(steady).then((ms) => {
      steadyClosedAt = ms;
    });
    const bytes = framed(buildQuery('www.example.test', 1));
    let i = 0;
    const drip = setInterval(() => {
      if (i < bytes.length && !slow.destroyed) slow.write(bytes.subarray(i, ++i));
      if (!steady.destroyed) steady.write(framed(buildQuery('www.example.test', 1)));
    }, 1000);
    try {
      const cutAfter = await slowClosed;
      assert.ok(
        cutAfter >= IDLE_S * 1000 - 100 && cutAfter < IDLE_S * 1000 + 1500,
        `cut after ${cutAfter} ms`,
      );
      assert.ok(i < bytes.length, 'cut before the message was complete');
      await new Promise((r) => setTimeout(r, IDLE_S * 1000));
      assert.equal(steadyClosedAt, undefined, 'the client sending whole queries is still connected');
    } finally {
      clearInterval(drip);
      slow.destroy();
      steady.destroy();
    }
  });
});
