/**
 * src/net datagram sockets over real loopback sockets on port 0, the batched (native addon) path
 * and the dgram path through the same tests. On Linux the addon must load (npm ci builds it); on
 * other systems the batched cases are skipped.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import { describe, it, type TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  type DatagramBatch,
  DatagramError,
  type DatagramOptions,
  type DatagramSocket,
  nativeDatagram,
  openDatagramSocket,
  reusePortAvailable,
} from '../../src/net/datagram.js';
import { dgramReusePort } from '../../src/net/dgram-socket.js';
import { formatIPv6 } from '../../src/net/peer-address.js';

type Kind = 'batched' | 'dgram';
const KINDS: Kind[] = ['batched', 'dgram'];
const skipBatched = process.platform === 'linux' ? false : 'the addon is Linux-only';
const hasIPv6Loopback = Object.values(os.networkInterfaces()).some((list) =>
  (list ?? []).some((a) => a.address === '::1'),
);

async function server(
  t: TestContext,
  kind: Kind,
  opts: Partial<DatagramOptions> = {},
  handler: (b: DatagramBatch) => void = echo,
): Promise<DatagramSocket> {
  const s = await openDatagramSocket({ address: '127.0.0.1', port: 0, ...opts, native: kind === 'batched' });
  t.after(() => s.close());
  assert.equal(s.kind, kind);
  s.onBatch(handler);
  return s;
}

function echo(b: DatagramBatch): void {
  for (let i = 0; i < b.count; i++) {
    const off = i * b.slotSize;
    b.data.copy(b.reply, off, off, off + b.length[i]);
    b.replyLength[i] = b.length[i];
  }
}

/** A client socket collecting replies. */
async function client(t: TestContext, type: 'udp4' | 'udp6' = 'udp4') {
  const socket = dgram.createSocket({ type, recvBufferSize: 4 << 20 });
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  const replies: Buffer[] = [];
  let waiter: (() => void) | undefined;
  socket.on('message', (m) => {
    replies.push(m);
    waiter?.();
  });
  await new Promise<void>((resolve) => socket.bind(0, type === 'udp6' ? '::1' : '127.0.0.1', resolve));
  return {
    socket,
    replies,
    port: socket.address().port,
    send(buf: Uint8Array | string, port: number, address = type === 'udp6' ? '::1' : '127.0.0.1') {
      socket.send(buf, port, address);
    },
    /** Resolves when `n` replies are in; rejects after `ms`. */
    wait(n: number, ms = 5000): Promise<Buffer[]> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${replies.length} of ${n} replies`)), ms);
        const check = () => {
          if (replies.length >= n) {
            clearTimeout(timer);
            waiter = undefined;
            resolve(replies);
          }
        };
        waiter = check;
        check();
      });
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('formatIPv6 (as libuv prints)', () => {
  const cases: [string, string][] = [
    ['00000000000000000000000000000001', '::1'],
    ['00000000000000000000000000000000', '::'],
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
    ['20010db8000000000001000000000000', '2001:db8:0:0:1::'],
    ['20010db8000100010001000100010001', '2001:db8:1:1:1:1:1:1'],
    ['fe800000000000000000000000000000', 'fe80::'],
    ['00000000000000000000ffffc0000201', '::ffff:192.0.2.1'],
    ['20010db80000abcd0000000000000000', '2001:db8:0:abcd::'],
  ];
  for (const [hex, text] of cases) {
    it(`${hex} → ${text}`, () => assert.equal(formatIPv6(Buffer.from(hex, 'hex'), 0), text));
  }
});

describe('choosing the path', () => {
  it('NS2_UDP=dgram gives kind dgram and says why', async (t) => {
    const before = process.env.NS2_UDP;
    process.env.NS2_UDP = 'dgram';
    try {
      assert.deepEqual(nativeDatagram(), { ok: false, reason: 'NS2_UDP=dgram' });
      const s = await openDatagramSocket({ address: '127.0.0.1', port: 0 });
      t.after(() => s.close());
      assert.equal(s.kind, 'dgram');
    } finally {
      if (before === undefined) delete process.env.NS2_UDP;
      else process.env.NS2_UDP = before;
    }
  });

  it('the addon loads here', { skip: skipBatched }, async (t) => {
    assert.deepEqual(nativeDatagram(), { ok: true });
    assert.equal(reusePortAvailable(), true);
    const s = await openDatagramSocket({ address: '127.0.0.1', port: 0 });
    t.after(() => s.close());
    assert.equal(s.kind, 'batched');
  });

  it('rejects options out of range with a coded error', async () => {
    for (const bad of [{ address: 'localhost' }, { batchSize: 0 }, { slotSize: 65537 }, { port: 70000 }]) {
      await assert.rejects(
        openDatagramSocket({ address: '127.0.0.1', port: 0, ...bad }),
        (err: unknown) => err instanceof DatagramError && err.code === 'NS2_ERR_DATAGRAM_OPTIONS',
      );
    }
  });
});

for (const kind of KINDS) {
  describe(`${kind} datagram socket`, { skip: kind === 'batched' ? skipBatched : false }, () => {
    it('echoes, with the peer address and port', async (t) => {
      const peers: [string, number][] = [];
      const s = await server(t, kind, {}, (b) => {
        for (let i = 0; i < b.count; i++) peers.push([b.peerAddress(i), b.peerPort(i)]);
        echo(b);
      });
      const c = await client(t);
      c.send('hello', s.address().port);
      const [reply] = await c.wait(1);
      assert.equal(reply.toString(), 'hello');
      assert.deepEqual(peers, [['127.0.0.1', c.port]]);
      assert.equal(s.address().address, '127.0.0.1');
      assert.ok(s.address().port > 0);
      const st = s.stats();
      assert.equal(st.received, 1);
      assert.equal(st.sent, 1);
    });

    it('gives the peer address as bytes (peerBytes at peerOffset), whichever is read first', async (t) => {
      const seen: string[] = [];
      const s = await server(t, kind, {}, (b) => {
        for (let i = 0; i < b.count; i++) {
          // The rate limiter reads the bytes through a reference taken before the offset.
          const bytes = b.peerBytes;
          const at = b.peerOffset(i);
          seen.push(
            `${b.peerV6} ${[...bytes.subarray(at, at + 4)].join('.')} ${[...b.peerBytes.subarray(at, at + 4)].join('.')}`,
          );
        }
        echo(b);
      });
      for (const source of ['127.0.0.2', '127.0.0.3']) {
        const c = dgram.createSocket('udp4');
        t.after(() => new Promise<void>((resolve) => c.close(() => resolve())));
        await new Promise<void>((resolve) => c.bind(0, source, resolve));
        const got = new Promise((resolve) => c.once('message', resolve));
        c.send('x', s.address().port, '127.0.0.1');
        await got;
      }
      assert.deepEqual(seen, ['false 127.0.0.2 127.0.0.2', 'false 127.0.0.3 127.0.0.3']);
    });

    it('answers a burst of 500 from 5 sockets, each reply to its own peer', async (t) => {
      let biggest = 0;
      const s = await server(t, kind, { receiveBuffer: 4 << 20 }, (b) => {
        biggest = Math.max(biggest, b.count);
        for (let i = 0; i < b.count; i++) {
          const off = i * b.slotSize;
          const req = b.data.toString('latin1', off, off + b.length[i]);
          const n = b.reply.write(`re:${req}:${b.peerPort(i)}`, off, 'latin1');
          b.replyLength[i] = n;
        }
      });
      const clients = await Promise.all(Array.from({ length: 5 }, () => client(t)));
      for (let j = 0; j < 100; j++) {
        for (const [k, c] of clients.entries()) c.send(`c${k}-${j}`, s.address().port);
      }
      for (const [k, c] of clients.entries()) {
        const got = (await c.wait(100)).map((r) => r.toString('latin1')).sort();
        const want = Array.from({ length: 100 }, (_, j) => `re:c${k}-${j}:${c.port}`).sort();
        assert.deepEqual(got, want);
      }
      assert.equal(s.stats().received, 500);
      assert.equal(s.stats().sent, 500);
      if (kind === 'batched') assert.ok(biggest > 1, `largest batch ${biggest}`);
      else assert.equal(biggest, 1);
    });

    it('delivers a 0-length datagram with length 0, and answers it', async (t) => {
      const lengths: number[] = [];
      const s = await server(t, kind, {}, (b) => {
        for (let i = 0; i < b.count; i++) {
          lengths.push(b.length[i]);
          b.replyLength[i] = b.reply.write('empty', i * b.slotSize);
        }
      });
      const c = await client(t);
      c.send(Buffer.alloc(0), s.address().port);
      const [reply] = await c.wait(1);
      assert.equal(reply.toString(), 'empty');
      assert.deepEqual(lengths, [0]);
    });

    it('receives a 65507-byte IPv4 datagram whole and sends one back', async (t) => {
      const big = Buffer.alloc(65507);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
      const s = await server(t, kind);
      const c = await client(t);
      c.socket.setSendBufferSize(1 << 20);
      c.send(big, s.address().port);
      const [reply] = await c.wait(1);
      assert.equal(reply.length, 65507);
      assert.ok(reply.equals(big));
      assert.equal(s.stats().truncated, 0);
    });

    it('sends nothing where the handler leaves replyLength 0', async (t) => {
      const s = await server(t, kind, {}, (b) => {
        for (let i = 0; i < b.count; i++) {
          const off = i * b.slotSize;
          const n = Number(b.data.toString('latin1', off, off + b.length[i]));
          if (n % 2 === 1) b.replyLength[i] = b.reply.write(`odd ${n}`, off);
        }
      });
      const c = await client(t);
      for (let n = 0; n < 10; n++) c.send(String(n), s.address().port);
      await c.wait(5);
      await sleep(100);
      assert.deepEqual(c.replies.map((r) => r.toString()).sort(), [
        'odd 1',
        'odd 3',
        'odd 5',
        'odd 7',
        'odd 9',
      ]);
      assert.equal(s.stats().received, 10);
      assert.equal(s.stats().sent, 5);
    });

    it('sends replies of different sizes from one batch', async (t) => {
      const size = (n: number) => ((n * 997) % 3000) + 1;
      const s = await server(t, kind, { receiveBuffer: 1 << 20 }, (b) => {
        for (let i = 0; i < b.count; i++) {
          const off = i * b.slotSize;
          const n = Number(b.data.toString('latin1', off, off + b.length[i]));
          b.reply.fill(n & 0xff, off, off + size(n));
          b.replyLength[i] = size(n);
        }
      });
      const c = await client(t);
      for (let n = 0; n < 64; n++) c.send(String(n), s.address().port);
      const replies = await c.wait(64);
      const seen = new Set<number>();
      for (const r of replies) {
        const n = r[0];
        assert.equal(r.length, size(n), `reply ${n}`);
        assert.ok(r.every((x) => x === n));
        seen.add(n);
      }
      assert.equal(seen.size, 64);
    });

    it('serves IPv6 on ::1 with the peer address and port', {
      skip: !hasIPv6Loopback && 'no ::1',
    }, async (t) => {
      const peers: [string, number][] = [];
      const s = await server(t, kind, { address: '::1' }, (b) => {
        for (let i = 0; i < b.count; i++) peers.push([b.peerAddress(i), b.peerPort(i)]);
        echo(b);
      });
      assert.equal(s.address().address, '::1');
      const c = await client(t, 'udp6');
      c.send('six', s.address().port);
      const [reply] = await c.wait(1);
      assert.equal(reply.toString(), 'six');
      assert.deepEqual(peers, [['::1', c.port]]);
      // IPV6_V6ONLY: an IPv4 client can't reach a socket bound to :: on that port.
      const any = await server(t, kind, { address: '::' });
      const v4 = await client(t);
      v4.send('four', any.address().port);
      await sleep(100);
      assert.equal(any.stats().received, 0);
    });

    it('drops datagrams larger than a slot and counts them', async (t) => {
      const s = await server(t, kind, { slotSize: 512 }, (b) => {
        for (let i = 0; i < b.count; i++) {
          const off = i * b.slotSize;
          b.replyLength[i] = b.reply.write(`${b.length[i]}:${b.data[off]}`, off);
        }
      });
      const c = await client(t);
      c.send(Buffer.alloc(100, 1), s.address().port);
      c.send(Buffer.alloc(600, 2), s.address().port);
      c.send(Buffer.alloc(512, 3), s.address().port);
      const replies = await c.wait(2);
      await sleep(50);
      assert.deepEqual(replies.map((r) => r.toString()).sort(), ['100:1', '512:3']);
      assert.equal(s.stats().truncated, 1);
      assert.equal(s.stats().received, 2);
    });

    it('honours the receive buffer size (or the kernel maximum)', async (t) => {
      const want = 1 << 20;
      const rmemMax = Number(fs.readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
      const s = await server(t, kind, { receiveBuffer: want });
      assert.ok(s.receiveBufferSize() >= Math.min(want, rmemMax), `got ${s.receiveBufferSize()}`);
    });

    it('survives a throwing handler: the error is reported, later datagrams served', async (t) => {
      const errors: unknown[] = [];
      const s = await server(t, kind, {}, (b) => {
        for (let i = 0; i < b.count; i++) {
          const off = i * b.slotSize;
          if (b.data[off] === 0x21) throw new Error('boom');
          b.replyLength[i] = b.reply.write('ok', off);
        }
      });
      s.onError((err) => errors.push(err));
      const c = await client(t);
      c.send('!', s.address().port);
      await sleep(50);
      c.send('fine', s.address().port);
      const [reply] = await c.wait(1);
      assert.equal(reply.toString(), 'ok');
      assert.equal(errors.length, 1);
      assert.equal((errors[0] as Error).message, 'boom');
    });

    it('close is idempotent; send after close is counted, not thrown; a handler may close', async (t) => {
      const s = await server(t, kind, {}, (b) => {
        echo(b);
        void s.close();
      });
      const c = await client(t);
      c.send('last', s.address().port);
      await sleep(100);
      await s.close();
      await s.close();
      const before = s.stats().sendErrors;
      s.send(Buffer.from('x'), c.port, '127.0.0.1');
      assert.equal(s.stats().sendErrors, before + 1);
      assert.equal(s.stats().received, 1);
    });

    it('send() outside a batch reaches the given peer', async (t) => {
      const s = await server(t, kind);
      const c = await client(t);
      const buf = Buffer.from('unsolicited');
      s.send(buf, c.port, '127.0.0.1');
      buf.fill(0); // the caller may reuse its buffer at once
      const [reply] = await c.wait(1);
      assert.equal(reply.toString(), 'unsolicited');
      const bad = (err: unknown) => err instanceof DatagramError && err.code === 'NS2_ERR_DATAGRAM_ADDRESS';
      assert.throws(() => s.send(buf, c.port, '::1'), bad);
      assert.throws(() => s.send(buf, c.port, 'localhost'), bad);
      assert.throws(() => s.send(buf, 0, '127.0.0.1'), bad);
      assert.equal(s.stats().sendErrors, 0);
    });

    const reusable = kind === 'batched' || dgramReusePort();
    it('reusePort: two sockets on one port both get a share', {
      skip: !reusable && 'dgram on this Node',
    }, async (t) => {
      const counts = [0, 0];
      const counter = (k: number) => (b: DatagramBatch) => {
        counts[k] += b.count;
        echo(b);
      };
      const a = await server(t, kind, { reusePort: true }, counter(0));
      const b = await server(t, kind, { reusePort: true, port: a.address().port }, counter(1));
      assert.equal(b.address().port, a.address().port);
      const clients = await Promise.all(Array.from({ length: 40 }, () => client(t)));
      for (const c of clients) c.send('share', a.address().port);
      await Promise.all(clients.map((c) => c.wait(1)));
      assert.equal(counts[0] + counts[1], 40);
      assert.ok(counts[0] > 0 && counts[1] > 0, `split ${counts}`);
    });

    if (!reusable) {
      it('reusePort where dgram cannot: a coded error', async () => {
        await assert.rejects(
          openDatagramSocket({ address: '127.0.0.1', port: 0, reusePort: true, native: false }),
          (err: unknown) => err instanceof DatagramError && err.code === 'NS2_ERR_REUSEPORT_UNAVAILABLE',
        );
      });
    }

    it('without reusePort a second bind on the port fails with EADDRINUSE', async (t) => {
      const a = await server(t, kind);
      await assert.rejects(
        openDatagramSocket({ address: '127.0.0.1', port: a.address().port, native: kind === 'batched' }),
        { code: 'EADDRINUSE' },
      );
    });
  });
}

describe('batched sockets in worker threads', { skip: skipBatched }, () => {
  const fixture = new URL('../fixtures/datagram-worker.ts', import.meta.url);

  async function startWorker(t: TestContext): Promise<{ worker: Worker; port: number }> {
    // A worker does not inherit tsx's loader: register it there first (as src/store/writer.ts does).
    const worker = new Worker(
      `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(fixture.href)}); })`,
      { eval: true },
    );
    t.after(() => worker.terminate());
    const info = await new Promise<{ kind: string; port: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.equal(info.kind, 'batched');
    return { worker, port: info.port };
  }

  for (const end of ['process.exit', 'terminate'] as const) {
    it(`a worker that serves and then ends (${end}) with its socket open leaves the process well`, async (t) => {
      const { worker, port } = await startWorker(t);
      const c = await client(t);
      c.send('from main', port);
      assert.equal((await c.wait(1))[0].toString(), 'from main');
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
      if (end === 'process.exit') worker.postMessage('exit');
      else await worker.terminate();
      const code = await exited;
      assert.equal(code, end === 'process.exit' ? 0 : 1);
      // The fd was closed at teardown: the port can be bound again without reusePort.
      const again = await openDatagramSocket({ address: '127.0.0.1', port });
      await again.close();
    });
  }

  it('a throwing handler with no onError listener is an uncaught error of its thread only', async (t) => {
    const { worker, port } = await startWorker(t);
    const failed = new Promise<Error>((resolve) => worker.once('error', resolve));
    const c = await client(t);
    c.send('!', port);
    assert.equal((await failed).message, 'handler failed on purpose');
  });
});
