import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import packet from 'dns-packet';
import pino from 'pino';
import { textToName } from '../../src/dns/name.js';
import { QueryHandler, type Transport } from '../../src/serve/handler.js';
import { ZoneTable } from '../../src/serve/zone-table.js';
import { ZoneStore } from '../../src/store/zone-store.js';
import { dataRRs, optOf, optRR } from '../harness/packet.js';
import { exampleZone, rr, txt } from '../harness/records.js';

let store: ZoneStore;
let table: ZoneTable;
let handler: QueryHandler;

before(() => {
  store = new ZoneStore(':memory:');
  const big = Array.from({ length: 40 }, (_, i) =>
    rr('big.example.test', 'TXT', 60, txt(`record number ${i} ${'x'.repeat(40)}`)),
  );
  store.replaceZone('example.test', [...exampleZone(), ...big], { serial: 1, primary: 'test', now: 0 });
  store.ensureZone('pending.test');
  table = new ZoneTable();
  table.add('example.test', textToName('example.test'), store, { state: 'ok' });
  table.add('pending.test', textToName('pending.test'), store, { state: 'never_loaded' });
  handler = new QueryHandler(table, { udpSize: 1232 }, pino({ level: 'silent' }));
});
after(() => store.close());

type Q = Parameters<typeof packet.encode>[0];

/** The reply `h` sends for `msg`: a message, not a drop (undefined) nor a hand-off (FORWARD). */
function reply(h: QueryHandler, msg: Buffer, transport: Transport = 'udp'): Buffer {
  const r = h.handle(msg, transport);
  assert.ok(Buffer.isBuffer(r), 'expected a reply');
  return r;
}
function ask(q: Partial<Q> & { questions?: Q['questions'] }, transport: Transport = 'udp') {
  const msg = packet.encode({ type: 'query', id: 7, flags: 0, questions: [], ...q } as Q);
  const raw = reply(handler, msg, transport);
  return { raw, msg: packet.decode(raw) };
}
const rcode = (raw: Buffer) => raw.readUInt16BE(2) & 0xf;
const AA = 0x0400;
const TC = 0x0200;

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
    const addresses = dataRRs(msg.answers).map((a) => a.data);
    assert.deepEqual(addresses.sort(), ['192.0.2.1', '192.0.2.2']);
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
      table,
      { udpSize: 1232, identity: { hostname: 'ns2-a.example' } },
      pino({ level: 'silent' }),
    );
    const q = (name: string) =>
      packet.encode({ type: 'query', id: 3, questions: [{ name, type: 'TXT', class: 'CH' }] });
    const id = reply(withId, q('id.server'));
    assert.equal(rcode(id), 0);
    assert.ok(id.readUInt16BE(2) & AA);
    const [answer] = dataRRs(packet.decode(id).answers);
    assert.equal(answer.class, 'CH');
    assert.deepEqual((answer.data as Buffer[]).map(String), ['ns2-a.example']);
    // No version configured: still refused.
    assert.equal(rcode(reply(withId, q('version.bind'))), 5);
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
    assert.equal(rcode(reply(handler, msg)), 4);
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
      additionals: [optRR(4096, { flags: packet.DNSSEC_OK })],
    });
    const o = optOf(msg.additionals);
    assert.ok(o, 'an OPT in the reply');
    assert.equal(o.udpPayloadSize, 1232);
    assert.ok(o.flags & packet.DNSSEC_OK);
    const plain = ask({ questions: [{ name: 'www.example.test', type: 'A' }] });
    assert.equal(plain.msg.additionals!.filter((a) => a.type === 'OPT').length, 0);
  });

  it('BADVERS for EDNS version 1', () => {
    const { msg } = ask({
      questions: [{ name: 'www.example.test', type: 'A' }],
      additionals: [optRR(1232, { ednsVersion: 1 })],
    });
    const o = optOf(msg.additionals);
    assert.ok(o, 'an OPT in the reply');
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
    const clean = reply(handler, msg);
    const garbage = reply(handler, Buffer.concat([msg, Buffer.from([1, 2, 3])]));
    assert.equal(rcode(garbage), 0);
    assert.deepEqual(garbage, clean);
    const lying = Buffer.from(msg);
    lying.writeUInt16BE(65535, 10);
    assert.equal(rcode(reply(handler, lying)), 1);
  });
});
