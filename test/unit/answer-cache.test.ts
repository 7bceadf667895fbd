/**
 * The answer cache (answer/answer-cache.ts) through the query handler: a hit must be the same
 * bytes a fresh answer would be (ID and question case patched in), only plain questions are
 * cached, a change to one zone drops that zone's answers only, and the byte bound holds.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import packet from 'dns-packet';
import pino from 'pino';
import { AnswerCache } from '../../src/answer/answer-cache.js';
import { textToName } from '../../src/dns/name.js';
import { QueryHandler } from '../../src/serve/handler.js';
import { ZoneTable } from '../../src/serve/zone-table.js';
import { ZoneStore } from '../../src/store/zone-store.js';
import { optRR } from '../harness/packet.js';
import { a, exampleZone, rr, soa } from '../harness/records.js';

type Q = Parameters<typeof packet.encode>[0];
const query = (name: string, type = 'A', extra: Partial<Q> = {}): Buffer =>
  packet.encode({ type: 'query', id: 4242, flags: 0, questions: [{ name, type }], ...extra } as Q);

function setup(cacheBytes?: number) {
  const store = new ZoneStore(':memory:');
  store.replaceZone('example.test', exampleZone(), { serial: 1, primary: 't', now: 0 });
  store.replaceZone(
    'other.test',
    [
      rr('other.test', 'SOA', 3600, soa('ns.other.test', 'h.other.test', 1)),
      rr('other.test', 'NS', 3600, textToName('ns.other.test')),
      rr('www.other.test', 'A', 60, a('198.51.100.1')),
    ],
    { serial: 1, primary: 't', now: 0 },
  );
  const table = new ZoneTable();
  table.add('example.test', textToName('example.test'), store, { state: 'ok' });
  table.add('other.test', textToName('other.test'), store, { state: 'ok' });
  const handler = new QueryHandler(table, { udpSize: 1232, cacheBytes }, pino({ level: 'silent' }));
  return { store, table, handler };
}

/** The UDP fast path: the reply written into an arena, as the batched socket does. */
function fromCache(handler: QueryHandler, msg: Buffer): Buffer | undefined {
  const data = Buffer.alloc(4096);
  msg.copy(data, 1000);
  const out = Buffer.alloc(4096);
  const n = handler.fromCache(data, 1000, msg.length, out, 2000);
  return n === 0 ? undefined : out.subarray(2000, 2000 + n);
}

describe('answer cache', () => {
  const { store, table, handler } = setup();
  after(() => store.close());

  it('a hit is byte for byte the fresh answer, with the query ID; keyed by the case sent', () => {
    const first = handler.handle(query('www.example.test'), 'udp') as Buffer;
    assert.equal(fromCache(handler, query('www.example.test'))?.toString('hex'), first.toString('hex'));
    const mixed = query('WwW.ExAmPlE.tEsT', 'A', { id: 77 });
    // Owners are written in stored case and compressed by exact octets (as BIND does), so a
    // question in another case has a reply of its own.
    assert.equal(fromCache(handler, mixed), undefined, 'another case is another question');
    const fresh = handler.handle(mixed, 'udp') as Buffer;
    const hit = fromCache(handler, mixed);
    assert.ok(hit, 'the same question in the same case hits');
    assert.equal(hit.toString('hex'), fresh.toString('hex'));
    const d = packet.decode(hit);
    assert.equal(d.id, 77);
    assert.equal(d.questions![0].name, 'WwW.ExAmPlE.tEsT');
    assert.equal(d.answers![0].name, 'www.example.test', 'owners in stored case, as BIND writes them');
  });

  it('keys on RD, CD, AD, EDNS, DO and the size limit', () => {
    handler.handle(query('mail.example.test'), 'udp');
    assert.ok(fromCache(handler, query('mail.example.test')));
    for (const variant of [
      query('mail.example.test', 'A', { flags: packet.RECURSION_DESIRED }),
      query('mail.example.test', 'A', { flags: packet.CHECKING_DISABLED }),
      query('mail.example.test', 'A', { flags: packet.AUTHENTIC_DATA }),
      query('mail.example.test', 'A', { additionals: [optRR(1232)] }),
      query('mail.example.test', 'A', { additionals: [optRR(1232, { flags: packet.DNSSEC_OK })] }),
      query('mail.example.test', 'AAAA'),
    ].entries())
      assert.equal(fromCache(handler, variant[1]), undefined, `variant ${variant[0]}`);
    handler.handle(query('mail.example.test', 'A', { additionals: [optRR(1232)] }), 'udp');
    assert.ok(fromCache(handler, query('mail.example.test', 'A', { additionals: [optRR(1232)] })));
    assert.equal(
      fromCache(handler, query('mail.example.test', 'A', { additionals: [optRR(600)] })),
      undefined,
      'a smaller limit',
    );
    // Payload sizes above ours give the same limit, so the same answer.
    handler.handle(query('mail.example.test', 'A', { additionals: [optRR(2000)] }), 'udp');
    assert.ok(fromCache(handler, query('mail.example.test', 'A', { additionals: [optRR(4096)] })));
  });

  it('only plain questions: not NOTIFY, responses, EDNS options, EDNS version 1, pointers, trailing bytes', () => {
    const cookie = optRR(1232, { options: [{ code: 10, data: Buffer.alloc(8, 1) }] });
    const plain = query('www.example.test');
    const notify = Buffer.from(plain);
    notify[2] = 0x20; // opcode 4
    const response = Buffer.from(plain);
    response[2] |= 0x80;
    const trailing = Buffer.concat([plain, Buffer.from([0])]);
    const v1 = query('www.example.test', 'A', { additionals: [optRR(1232)] });
    v1[v1.length - 5] = 1; // OPT TTL: extended rcode, version = 1, flags
    const rcode = (m: Buffer) => {
      const r = handler.handle(m, 'udp') as Buffer;
      return (r[r.length - 6] << 4) | (r[3] & 0xf); // OPT last, no options
    };
    assert.equal(rcode(v1), 16, 'BADVERS (RFC 6891 §6.1.3)');
    // A question whose name is a pointer to itself: the full parser rejects it.
    const pointer = Buffer.from(plain.subarray(0, 12));
    const looped = Buffer.concat([pointer, Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    for (const m of [
      query('www.example.test', 'A', { additionals: [cookie] }),
      v1,
      notify,
      response,
      trailing,
      looped,
    ]) {
      handler.handle(m, 'udp');
      assert.equal(fromCache(handler, m), undefined, m.toString('hex'));
    }
  });

  it('a change to one zone drops its answers only', () => {
    handler.handle(query('www.example.test'), 'udp');
    handler.handle(query('www.other.test'), 'udp');
    handler.handle(query('nothere.example.test'), 'udp');
    assert.ok(fromCache(handler, query('www.example.test')));
    table.changed('other.test');
    assert.ok(fromCache(handler, query('www.example.test')), 'example.test answers stay');
    assert.ok(fromCache(handler, query('nothere.example.test')), 'NXDOMAIN too');
    assert.equal(fromCache(handler, query('www.other.test')), undefined, 'other.test answers go');
    table.changed('example.test');
    assert.equal(fromCache(handler, query('www.example.test')), undefined);
  });

  it('answers from a CNAME chain or from no zone follow every change', () => {
    handler.handle(query('alias.example.test'), 'udp');
    handler.handle(query('www.example.org'), 'udp'); // REFUSED: not ours
    assert.ok(fromCache(handler, query('alias.example.test')));
    assert.ok(fromCache(handler, query('www.example.org')));
    table.changed('other.test');
    assert.equal(fromCache(handler, query('alias.example.test')), undefined);
    assert.equal(fromCache(handler, query('www.example.org')), undefined);
  });

  it('never caches SERVFAIL, and never a signed request', () => {
    const e = table.get('other.test')!;
    e.state = 'expired';
    table.changed('other.test');
    handler.handle(query('www.other.test'), 'udp');
    assert.equal(fromCache(handler, query('www.other.test')), undefined);
    e.state = 'ok';
    table.changed('other.test');
    handler.handle(query('www.other.test'), 'udp', '', { key: 'k', reserve: 100 });
    assert.equal(fromCache(handler, query('www.other.test')), undefined);
  });
});

describe('answer cache bound', () => {
  it('stays under its byte budget, keeping recently hit answers (second chance)', () => {
    const { store, handler } = setup(128 * 1024);
    try {
      handler.handle(query('www.example.test'), 'udp');
      for (let i = 0; i < 2000; i++) {
        handler.handle(query(`n${i}.example.test`), 'udp'); // NXDOMAIN, each ~100 bytes
        if (i % 5 === 0) assert.ok(fromCache(handler, query('www.example.test')), `hot answer kept at ${i}`);
      }
      assert.ok(handler.cached < 2000, `bounded: ${handler.cached} entries`);
      assert.ok(handler.cached > 100, `not emptied: ${handler.cached} entries`);
      assert.ok(fromCache(handler, query('n1999.example.test')), 'the newest is there');
      let early = 0;
      for (let i = 0; i < 200; i++) if (fromCache(handler, query(`n${i}.example.test`))) early++;
      assert.ok(early < 100, `most early cold answers went (${early} of 200 left)`);
    } finally {
      store.close();
    }
  });

  it('a loop over twice as many questions as fit still hits (oldest-first eviction would never)', () => {
    const { store, handler } = setup(64 * 1024);
    try {
      let n = 0;
      while (handler.cached === n) handler.handle(query(`n${n++}.example.test`), 'udp');
      const loop = 2 * n; // the cache filled up at about n entries
      let hits = 0;
      for (let pass = 0; pass < 4; pass++)
        for (let i = 0; i < loop; i++) {
          const q = query(`n${i}.example.test`);
          if (fromCache(handler, q)) hits++;
          else handler.handle(q, 'udp');
        }
      assert.ok(hits > loop * 4 * 0.2, `${hits} hits of ${loop * 4}`);
    } finally {
      store.close();
    }
  });

  it('probe rejects runts and lying counts without reading past the datagram', () => {
    const c = new AnswerCache(1 << 20, 1232);
    const q = query('www.example.test');
    for (let len = 0; len < q.length; len++) assert.equal(c.probe(q, 0, len, false), false, `length ${len}`);
    assert.equal(c.probe(q, 0, q.length, false), true);
  });
});
