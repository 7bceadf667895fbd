import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import packet from 'dns-packet';
import pino from 'pino';
import { textToName } from '../../src/dns/name.js';
import { QueryHandler } from '../../src/serve/handler.js';
import { ZoneTable } from '../../src/serve/zone-table.js';
import { ZoneStore } from '../../src/store/zone-store.js';
import { exampleZone, rr, txt } from '../harness/records.js';

let store: ZoneStore;
let handler: QueryHandler;

before(() => {
  store = new ZoneStore(':memory:');
  const big = Array.from({ length: 40 }, (_, i) =>
    rr('big.example.test', 'TXT', 60, txt(`record number ${i} ${'x'.repeat(40)}`)),
  );
  store.replaceZone('example.test', [...exampleZone(), ...big], { serial: 1, primary: 'test', now: 0 });
  store.ensureZone('pending.test');
  const table = new ZoneTable();
  table.add('example.test', textToName('example.test'), store, { state: 'ok' });
  table.add('pending.test', textToName('pending.test'), store, { state: 'never_loaded' });
  handler = new QueryHandler(table, { udpSize: 1232 }, pino({ level: 'silent' }));
});
after(() => store.close());

type Q = Parameters<typeof packet.encode>[0];
function ask(q: Partial<Q> & { questions?: Q['questions'] }, transport: 'udp' | 'tcp' = 'udp') {
  const msg = packet.encode({ type: 'query', id: 7, flags: 0, questions: [], ...q } as Q);
  const reply = handler.handle(msg, transport);
  assert.ok(reply, 'expected a reply');
  return { raw: reply, msg: packet.decode(reply) };
}
const rcode = (raw: Buffer) => raw.readUInt16BE(2) & 0xf;
const AA = 0x0400;
const TC = 0x0200;
const opt = (udpPayloadSize: number, extra: object = {}) =>
  ({ type: 'OPT', name: '.', udpPayloadSize, flags: 0, options: [], ...extra }) as unknown as packet.Answer;

describe('query handling', () => {
  it('answers with AA, RA clear, the question echoed in its case', () => {
    const { raw, msg } = ask({
      flags: packet.RECURSION_DESIRED,
      questions: [{ name: 'WWW.example.TEST', type: 'A' }],
    });
    assert.equal(rcode(raw), 0);
    assert.ok(raw.readUInt16BE(2) & AA);
    assert.equal(raw.readUInt16BE(2) & 0x0080, 0, 'RA must be clear');
    assert.equal(msg.questions![0].name, 'WWW.example.TEST');
    assert.deepEqual(msg.answers!.map((a) => a.data).sort(), ['192.0.2.1', '192.0.2.2']);
  });

  it('REFUSED for names outside our zones, without AA', () => {
    const { raw } = ask({ questions: [{ name: 'example.org', type: 'A' }] });
    assert.equal(rcode(raw), 5);
    assert.equal(raw.readUInt16BE(2) & AA, 0);
  });

  it('SERVFAIL for a configured zone not loaded yet', () => {
    assert.equal(rcode(ask({ questions: [{ name: 'pending.test', type: 'SOA' }] }).raw), 2);
  });

  it('REFUSED for class CH (version.bind is not leaked)', () => {
    assert.equal(rcode(ask({ questions: [{ name: 'version.bind', type: 'TXT', class: 'CH' }] }).raw), 5);
  });

  it('answers CH identity only as configured (RFC 4892), class CH, AA', () => {
    const withId = new QueryHandler(
      (handler as unknown as { zones: ZoneTable }).zones,
      { udpSize: 1232, identity: { hostname: 'ns2-a.example' } },
      pino({ level: 'silent' }),
    );
    const q = (name: string) =>
      packet.encode({ type: 'query', id: 3, questions: [{ name, type: 'TXT', class: 'CH' }] });
    const reply = withId.handle(q('id.server'), 'udp')!;
    assert.equal(rcode(reply), 0);
    assert.ok(reply.readUInt16BE(2) & AA);
    const m = packet.decode(reply);
    assert.equal(m.answers![0].class, 'CH');
    assert.deepEqual((m.answers![0].data as Buffer[]).map(String), ['ns2-a.example']);
    // No version configured: still refused.
    assert.equal(rcode(withId.handle(q('version.bind'), 'udp')!), 5);
  });

  it('FORMERR for QDCOUNT 0 and 2', () => {
    assert.equal(rcode(ask({ questions: [] }).raw), 1);
    const two = ask({
      questions: [
        { name: 'example.test', type: 'A' },
        { name: 'example.test', type: 'MX' },
      ],
    });
    assert.equal(rcode(two.raw), 1);
  });

  it('NOTIMP for an unknown opcode', () => {
    const msg = packet.encode({ type: 'query', id: 9, questions: [{ name: 'example.test', type: 'SOA' }] });
    msg.writeUInt16BE(3 << 11, 2);
    assert.equal(rcode(handler.handle(msg, 'udp')!), 4);
  });

  it('drops responses and runts', () => {
    const msg = packet.encode({
      type: 'response',
      id: 9,
      questions: [{ name: 'example.test', type: 'SOA' }],
    });
    assert.equal(handler.handle(msg, 'udp'), undefined);
    assert.equal(handler.handle(Buffer.alloc(5), 'udp'), undefined);
  });

  it('echoes EDNS with our UDP size and the DO bit, and no OPT when the query had none', () => {
    const { msg } = ask({
      questions: [{ name: 'www.example.test', type: 'A' }],
      additionals: [opt(4096, { flags: packet.DNSSEC_OK })],
    });
    const o = msg.additionals!.find((a) => a.type === 'OPT') as unknown as {
      udpPayloadSize: number;
      flags: number;
    };
    assert.equal(o.udpPayloadSize, 1232);
    assert.ok(o.flags & packet.DNSSEC_OK);
    const plain = ask({ questions: [{ name: 'www.example.test', type: 'A' }] });
    assert.equal(plain.msg.additionals!.filter((a) => a.type === 'OPT').length, 0);
  });

  it('BADVERS for EDNS version 1', () => {
    const { msg } = ask({
      questions: [{ name: 'www.example.test', type: 'A' }],
      additionals: [opt(1232, { ednsVersion: 1 })],
    });
    const o = msg.additionals!.find((a) => a.type === 'OPT') as unknown as { extendedRcode: number };
    assert.equal(o.extendedRcode, 1);
  });

  it('sets TC when the answer exceeds 512 bytes without EDNS, and fits over TCP', () => {
    const udp = ask({ questions: [{ name: 'big.example.test', type: 'TXT' }] });
    assert.ok(udp.raw.readUInt16BE(2) & TC);
    assert.ok(udp.raw.length <= 512);
    const tcp = ask({ questions: [{ name: 'big.example.test', type: 'TXT' }] }, 'tcp');
    assert.equal(tcp.raw.readUInt16BE(2) & TC, 0);
    assert.equal(tcp.msg.answers!.length, 40);
  });

  it('compresses names: an A answer is small', () => {
    const { raw } = ask({
      flags: packet.RECURSION_DESIRED,
      questions: [{ name: 'www.example.test', type: 'A' }],
    });
    // header 12 + question 22 + 2 × (pointer 2 + 10 + 4)
    assert.equal(raw.length, 12 + 22 + 2 * 16);
  });

  it('ignores bytes after the last record (as BIND does); FORMERR for a lying count', () => {
    const msg = packet.encode({ type: 'query', id: 9, questions: [{ name: 'example.test', type: 'SOA' }] });
    const clean = handler.handle(msg, 'udp') as Buffer;
    const garbage = handler.handle(Buffer.concat([msg, Buffer.from([1, 2, 3])]), 'udp') as Buffer;
    assert.equal(rcode(garbage), 0);
    assert.deepEqual(garbage, clean);
    const lying = Buffer.from(msg);
    lying.writeUInt16BE(65535, 10);
    assert.equal(rcode(handler.handle(lying, 'udp')!), 1);
  });
});
