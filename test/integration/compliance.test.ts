/**
 * RFC 8906 §8 compliance probes of the kind ISC's genreport sends, plus EDNS and TCP edge cases:
 * each probe goes to named and to ns2 and the replies must have the same shape.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseOptions } from '../../src/dns/edns.js';
import { parseMessage } from '../../src/dns/message.js';
import { textToName } from '../../src/dns/name.js';
import { buildQuery, exchange, summarize } from '../harness/client.js';
import { type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
let named: Named;
let ns2: Ns2;
const IDLE_SECONDS = 2;
const MAX_TCP = 50;

before(async () => {
  named = await startNamed({
    zones: [
      { name: 'example.test', text: fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8') },
    ],
  });
  ns2 = await startNs2({
    zones: [{ name: 'example.test', primaries: [{ address: '127.0.0.1', port: named.port }] }],
    extra: { tcpIdleSeconds: IDLE_SECONDS, maxTcpConnections: MAX_TCP },
  });
  await waitFor(
    'zone loaded',
    async () => summarize(await exchange(ns2.port, buildQuery('example.test', 6))).rcode === 0,
  );
});

after(async () => {
  await ns2?.stop();
  await named?.stop();
});

/** An OPT RR: owner, udp size, version, flags, options. */
function opt(
  o: { owner?: Buffer; size?: number; version?: number; flags?: number; options?: Buffer } = {},
): Buffer {
  const owner = o.owner ?? Buffer.from([0]);
  const rr = Buffer.alloc(10);
  rr.writeUInt16BE(41, 0);
  rr.writeUInt16BE(o.size ?? 1232, 2);
  rr.writeUInt8(0, 4);
  rr.writeUInt8(o.version ?? 0, 5);
  rr.writeUInt16BE(o.flags ?? 0, 6);
  const rdata = o.options ?? Buffer.alloc(0);
  rr.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([owner, rr, rdata]);
}

/** A query with full control: flags word, question, and raw additional records. */
function probe(p: {
  flags?: number;
  name?: string;
  type?: number;
  qd?: number;
  additional?: Buffer[];
}): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(Math.floor(Math.random() * 65536), 0);
  h.writeUInt16BE(p.flags ?? 0, 2);
  const qd = p.qd ?? 1;
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(p.additional?.length ?? 0, 10);
  const q = Buffer.concat([textToName(p.name ?? 'example.test'), Buffer.from([0, 0, 0, 1])]);
  q.writeUInt16BE(p.type ?? 6, q.length - 4);
  return Buffer.concat([h, ...Array(qd).fill(q), ...(p.additional ?? [])]);
}

/** What must match between the two servers' replies. */
async function shape(port: number, msg: Buffer, tcp = false) {
  let reply: Buffer;
  try {
    reply = await exchange(port, msg, { tcp, timeoutMs: 700 });
  } catch {
    return { replied: false };
  }
  const m = parseMessage(reply);
  const o = m.additional.find((r) => r.type === 41);
  const ext = o ? (o.ttl >>> 24) << 4 : 0;
  return {
    replied: true,
    rcode: ext | (m.header.flags & 0xf),
    aa: (m.header.flags & 0x0400) !== 0,
    tc: (m.header.flags & 0x0200) !== 0,
    opcode: (m.header.flags >> 11) & 0xf,
    qd: m.header.qdcount,
    answers: m.answer.length,
    opt: o
      ? {
          version: (o.ttl >>> 16) & 0xff,
          flags: o.ttl & 0xffff,
          options: parseOptions(o.rdata).map((x) => x.code),
        }
      : null,
  };
}

const PROBES: [string, Buffer][] = [
  ['plain query', probe({})],
  ['EDNS query', probe({ additional: [opt()] })],
  ['EDNS version 1 → BADVERS', probe({ additional: [opt({ version: 1 })] })],
  ['unknown opcode', probe({ flags: 15 << 11 })],
  ['unknown opcode with EDNS', probe({ flags: 15 << 11, additional: [opt()] })],
  ['unknown type → NODATA', probe({ name: 'www.example.test', type: 1000, additional: [opt()] })],
  [
    'unknown EDNS option ignored',
    probe({ additional: [opt({ options: Buffer.from('fde9000401020304', 'hex') })] }),
  ],
  ['unknown EDNS flag ignored', probe({ additional: [opt({ flags: 0x4000 })] })],
  ['DO echoed', probe({ additional: [opt({ flags: 0x8000 })] })],
  ['two OPT records', probe({ additional: [opt(), opt()] })],
  ['OPT with a non-root owner', probe({ additional: [opt({ owner: textToName('example.test') })] })],
  ['QDCOUNT 0', probe({ qd: 0 })],
  ['QDCOUNT 2', probe({ qd: 2 })],
  ['QR=1 (a response)', probe({ flags: 0x8000 })],
  ['short header', Buffer.from([1, 2, 3, 4, 5])],
  [
    'client COOKIE → server cookie',
    probe({ additional: [opt({ options: Buffer.from('000a00080102030405060708', 'hex') })] }),
  ],
  [
    'malformed COOKIE → FORMERR',
    probe({ additional: [opt({ options: Buffer.from('000a0005aabbccddee', 'hex') })] }),
  ],
  ['large answer, no EDNS → TC', probe({ type: 255 })],
  ['large answer, EDNS 512 → TC', probe({ type: 255, additional: [opt({ size: 512 })] })],
  [
    'large answer, EDNS 1232 fits',
    probe({ name: 'txt.example.test', type: 16, additional: [opt({ size: 1232 })] }),
  ],
];

const versionBind = (() => {
  const m = probe({ name: 'version.bind', type: 16 });
  m.writeUInt16BE(3, m.length - 2);
  return m;
})();

describe('RFC 8906 probes: same reply shape as named', () => {
  for (const [what, msg] of PROBES) {
    it(what, async () => {
      assert.deepEqual(await shape(ns2.port, msg), await shape(named.port, msg));
    });
  }
  it('CH version.bind is refused, unlike BIND, which tells its version by default', async () => {
    assert.equal((await shape(named.port, versionBind)).rcode, 0);
    const ours = await shape(ns2.port, versionBind);
    assert.equal(ours.rcode, 5);
    assert.equal(ours.answers, 0);
  });

  it('over TCP too (unknown opcode, BADVERS, NODATA)', async () => {
    for (const i of [2, 3, 5])
      assert.deepEqual(
        await shape(ns2.port, PROBES[i][1], true),
        await shape(named.port, PROBES[i][1], true),
      );
  });
});

describe('TCP (RFC 7766)', () => {
  it('answers 100 pipelined queries on one connection', async () => {
    const msgs = Array.from({ length: 100 }, (_, i) =>
      buildQuery(i % 2 ? 'www.example.test' : 'ns1.example.test', 1),
    );
    const ids = await new Promise<number[]>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port: ns2.port });
      let buf = Buffer.alloc(0);
      const got: number[] = [];
      c.on('connect', () => {
        const frames = msgs.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]));
        c.write(Buffer.concat(frames));
      });
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          got.push(buf.readUInt16BE(2));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (got.length === msgs.length) {
          c.destroy();
          resolve(got);
        }
      });
      c.on('error', reject);
      setTimeout(() => reject(new Error(`only ${got.length} replies`)), 5000);
    });
    assert.deepEqual(ids.sort(), msgs.map((m) => m.readUInt16BE(0)).sort());
  });

  it('closes an idle connection after tcpIdleSeconds', async () => {
    const started = Date.now();
    const closed = await new Promise<number>((resolve) => {
      const c = net.connect({ host: '127.0.0.1', port: ns2.port });
      c.on('close', () => resolve(Date.now() - started));
      c.on('error', () => undefined);
      setTimeout(
        () => {
          c.destroy();
          resolve(-1);
        },
        (IDLE_SECONDS + 3) * 1000,
      );
    });
    assert.ok(
      closed >= IDLE_SECONDS * 1000 - 200 && closed < (IDLE_SECONDS + 2) * 1000,
      `closed after ${closed} ms`,
    );
  });

  it('holds the connection cap and still serves UDP and new TCP once connections go', async () => {
    const socks: net.Socket[] = [];
    for (let i = 0; i < MAX_TCP + 20; i++) {
      const c = net.connect({ host: '127.0.0.1', port: ns2.port });
      c.on('error', () => undefined);
      socks.push(c);
    }
    await new Promise((r) => setTimeout(r, 500));
    const open = socks.filter((s) => !s.destroyed && s.readyState === 'open').length;
    assert.ok(open <= MAX_TCP + 1, `${open} connections open`);
    const udp = summarize(await exchange(ns2.port, buildQuery('www.example.test', 1)));
    assert.equal(udp.rcode, 0);
    for (const s of socks) s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const tcp = summarize(await exchange(ns2.port, buildQuery('www.example.test', 1), { tcp: true }));
    assert.equal(tcp.rcode, 0);
  });
});
