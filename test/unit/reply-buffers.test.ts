/**
 * Replies and forwarded queries cost their own length, not a buffer of their size limit: under
 * hostile traffic that garbage piled up between collections in the malloc heap (the fuzz run's
 * RSS, test/fuzz/run.ts).
 *
 * - encodeResponse builds each reply in one scratch buffer per thread and copies it out: before,
 *   every TCP reply took a fresh 64 KiB buffer (its limit), freed only at the next GC.
 * - A query a serving worker forwards to the main thread, and the reply back (serve/workers.ts),
 *   cross a real MessageChannel as their own bytes: a small Buffer is a view into Node's 8 KiB
 *   pool slab, and posting the view clones the whole slab, 8 KiB each way per forwarded query.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { encodeResponse } from '../../src/serve/response.js';
import { forwardMessage, replyMessage } from '../../src/serve/workers.js';

/** Posts [message, transfer] over a fresh channel; resolves to what the other side received. */
function cross<T>([message, transfer]: [T, ArrayBuffer[]]): Promise<T> {
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve) => {
    port2.once('message', (m: T) => {
      port1.close();
      resolve(m);
    });
    port1.postMessage(message, transfer);
  });
}

/** A small Buffer as the UDP path has it: a view into a shared pool slab. */
function pooled(bytes: number[]): Buffer {
  const b = Buffer.from(Buffer.from(bytes));
  assert.ok(b.buffer.byteLength > b.length, 'the test needs a pooled view');
  return b;
}

describe('reply encoding', () => {
  it('200 TCP replies leave about their own bytes behind, not 200 × 64 KiB', () => {
    const www = Buffer.from([3, 0x77, 0x77, 0x77, 4, 0x74, 0x65, 0x73, 0x74, 0]);
    const before = process.memoryUsage().arrayBuffers;
    const replies = Array.from({ length: 200 }, (_, id) =>
      encodeResponse(
        { id, queryFlags: 0, opcode: 0, rcode: 3, aa: true, question: { name: www, type: 1, class: 1 } },
        65535,
      ),
    );
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.equal(replies[7].readUInt16BE(0), 7);
    assert.equal(replies[7].length, 12 + www.length + 4);
    // Before: 200 × 65535 bytes (12.8 MiB) until the next collection; now the replies themselves.
    assert.ok(grown < 1024 * 1024, `ArrayBuffers grew ${grown} bytes`);
  });
});

describe('serving worker messages', () => {
  it('a forwarded query arrives as its own bytes, not its pool slab', async () => {
    const msg = pooled([0x12, 0x34, 0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1]);
    const m = await cross(forwardMessage(7, msg, '127.0.0.1'));
    assert.equal(m.t, 'forward');
    if (m.t !== 'forward') return;
    assert.equal(m.id, 7);
    assert.equal(m.address, '127.0.0.1');
    assert.deepEqual(Buffer.from(m.msg), msg);
    assert.equal(m.msg.buffer.byteLength, msg.length);
    // A copy: the sender's receive arena is reused for the next datagram.
    msg[0] = 0xff;
    assert.equal(m.msg[0], 0x12);
  });

  it('a reply arrives as its own bytes; no reply stays none', async () => {
    const reply = pooled([0x12, 0x34, 0xa8, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    const m = await cross(replyMessage(9, reply));
    assert.equal(m.t, 'reply');
    if (m.t !== 'reply') return;
    assert.equal(m.id, 9);
    assert.deepEqual(Buffer.from(m.reply!), reply);
    assert.equal(m.reply!.buffer.byteLength, reply.length);
    const none = await cross(replyMessage(10, undefined));
    assert.deepEqual(none, { t: 'reply', id: 10, reply: undefined });
  });
});
