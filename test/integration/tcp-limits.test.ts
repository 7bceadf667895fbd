/**
 * TCP front under pressure (RFC 7766 §6.2): 2 000 idle connections against maxTcpConnections 500
 * (capped: the stalest are closed to make room, so new clients are still served), every idle one
 * closed after tcpIdleSeconds, and a slowloris client (one byte a second, never a whole message)
 * cut at the idle timeout while a client sending whole queries stays.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseMessage } from '../../src/dns/message.js';
import { buildQuery, query } from '../harness/client.js';
import { type FakePrimary, startFakePrimary } from '../harness/fake-primary.js';
import { NS2_ROOT, type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { exampleZone } from '../harness/records.js';

const IDLE_S = 2;
const COUNT = 2000;
/** Open files for the client process: COUNT sockets and Node's own. */
const CLIENT_FDS = COUNT + 500;
const CLIENTS = path.join(NS2_ROOT, 'test/fixtures/idle-tcp-clients.ts');

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/**
 * COUNT idle connections from a child process whose open-files limit is raised to CLIENT_FDS
 * (`ulimit -n`, up to the hard limit): the number is never scaled down to fit this process.
 */
function idleClients(port: number) {
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      `ulimit -n ${CLIENT_FDS} && exec "$0" --import tsx "$@"`,
      process.execPath,
      CLIENTS,
      String(port),
      String(COUNT),
    ],
    { cwd: NS2_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const state = { opened: 0, openMs: 0, closed: 0, newestOpen: true, err: '' };
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const m = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if ('opened' in m) Object.assign(state, { opened: m.opened, openMs: m.ms });
      else Object.assign(state, { closed: m.closed, newestOpen: m.newestOpen });
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    state.err += d;
  });
  return { child, state };
}

const framed = (msg: Buffer) => Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);

describe('TCP limits: connection cap, idle timeout, slowloris', () => {
  let fake: FakePrimary;
  let ns2: Ns2;
  const CAP = 500;

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

  it(`${COUNT} idle connections: at most ${CAP} kept, new queries served, all closed after ${IDLE_S} s`, async (t) => {
    const t0 = Date.now();
    const { child, state } = idleClients(ns2.port);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor(
        `${COUNT} connections opened`,
        () => state.opened === COUNT || child.exitCode !== null,
        30_000,
      );
      assert.equal(state.opened, COUNT, `client process: ${state.err}`);
      await waitFor('the cap to be enforced', () => COUNT - state.closed <= CAP, 5000);
      const open = COUNT - state.closed;
      assert.ok(open <= CAP, `${open} connections open`);
      // The newest connections are the ones kept: the stalest made room for them.
      assert.ok(state.newestOpen, 'the newest connection is open');

      // New clients are still served, over TCP and UDP.
      const tcp = parseMessage(await query(ns2.port, 'www.example.test', 1, { tcp: true }));
      assert.equal(tcp.answer.length, 2);
      const udp = parseMessage(await query(ns2.port, 'www.example.test', 1));
      assert.equal(udp.answer.length, 2);

      // Idle ones go after tcpIdleSeconds. The bound is liveness only (a loaded machine closes 500
      // sockets and reports them late); when the idle timer goes is asserted just below.
      await waitFor('every idle connection closed', () => state.closed === COUNT, 30_000).catch((e) => {
        throw new Error(`${(e as Error).message}: ${state.closed} of ${COUNT} closed`);
      });
      const lifetime = (Date.now() - t0) / 1000;
      assert.ok(lifetime >= IDLE_S, `closed after ${lifetime} s`);
      assert.equal(await exited, 0);
      t.diagnostic(`${COUNT} connections opened in ${state.openMs} ms; ${open} kept at the cap of ${CAP}`);
    } finally {
      child.kill();
    }
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
