/**
 * NOTIFY out (RFC 1996) against scripted UDP peers on loopback: who is notified (alsoNotify, the
 * NS hosts with notify "yes", never the SOA MNAME or ourselves), retransmission until answered,
 * TSIG on the NOTIFY and on its reply, giving up after the last attempt.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../../src/config.js';
import { FLAG_QR, parseMessage } from '../../src/dns/message.js';
import { TsigResponseSigner, verifyRequest } from '../../src/dns/tsig.js';
import { TYPE } from '../../src/dns/types.js';
import { NotifySender } from '../../src/refresh/notify-out.js';
import { ZoneStore } from '../../src/store/zone-store.js';
import { a, aaaa, n, rr, soa } from '../harness/records.js';

const Z = 'example.test';
const secret = randomBytes(32);

let store: ZoneStore;
before(() => {
  store = new ZoneStore(':memory:');
  store.replaceZone(
    Z,
    [
      rr(Z, 'SOA', 3600, soa('ns1.example.test', 'hostmaster.example.test', 42)),
      rr(Z, 'NS', 3600, n('ns1.example.test')),
      rr(Z, 'NS', 3600, n('ns2.example.test')),
      rr(Z, 'NS', 3600, n('ns3.example.test')),
      rr('ns1.example.test', 'A', 3600, a('192.0.2.1')),
      rr('ns2.example.test', 'A', 3600, a('192.0.2.2')),
      rr('ns3.example.test', 'AAAA', 3600, aaaa('2001:db8::3')),
    ],
    { serial: 42, primary: 'test', now: 0 },
  );
});
after(() => store.close());

function setup(zone: Record<string, unknown>) {
  const config = parseConfig({
    keys: { 'down-key': { algorithm: 'hmac-sha256', secret: secret.toString('base64') } },
    zones: [{ name: Z, primaries: [{ address: '192.0.2.1' }], ...zone }],
  });
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const sender = new NotifySender(store, config.keys, log, {
    attempts: 3,
    timeoutMs: 150,
    self: [{ address: '127.0.0.1', port: 5353 }],
  });
  return { zone: config.zones[0], sender, lines, keys: config.keys };
}

/** A UDP peer on loopback that answers (or not) each NOTIFY it gets. */
async function peer(answer: (msg: Buffer, nth: number) => Buffer | undefined) {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const got: Buffer[] = [];
  sock.on('message', (m, rinfo) => {
    got.push(m);
    const reply = answer(m, got.length);
    if (reply) sock.send(reply, rinfo.port, rinfo.address);
  });
  return { port: sock.address().port, got, close: () => sock.close() };
}

/** The NOTIFY response: the request's header with QR set, question kept, no records. */
function ack(req: Buffer): Buffer {
  const m = parseMessage(req);
  const q = Buffer.from(req.subarray(0, 12));
  q.writeUInt16BE(m.header.flags | FLAG_QR, 2);
  q.writeUInt16BE(0, 6);
  q.writeUInt16BE(0, 10);
  const qEnd = 12 + m.questions[0].name.length + 4;
  return Buffer.concat([q, req.subarray(12, qEnd)]);
}

describe('NOTIFY out', () => {
  it('targets alsoNotify, plus the NS hosts but the MNAME with notify "yes", never ourselves', async () => {
    const also = [
      { address: '127.0.0.1', port: 5300 },
      { address: '127.0.0.1', port: 5353 },
    ];
    const explicit = setup({ alsoNotify: also });
    assert.deepEqual(
      (await explicit.sender.targets(explicit.zone)).map((t) => `${t.address}#${t.port}`),
      ['127.0.0.1#5300'],
    );
    const yes = setup({ alsoNotify: also, notify: 'yes' });
    assert.deepEqual(
      (await yes.sender.targets(yes.zone)).map((t) => `${t.address}#${t.port}`),
      ['127.0.0.1#5300', '192.0.2.2#53', '2001:db8:0:0:0:0:0:3#53'],
    );
  });

  it('sends again until the peer answers, with the zone SOA in the NOTIFY', async () => {
    const p = await peer((m, nth) => (nth < 3 ? undefined : ack(m)));
    try {
      const { zone, sender, lines } = setup({ alsoNotify: [{ address: '127.0.0.1', port: p.port }] });
      await sender.notify(zone, 42);
      assert.equal(p.got.length, 3);
      const m = parseMessage(p.got[0]);
      assert.equal((m.header.flags >> 11) & 0xf, 4, 'opcode NOTIFY');
      assert.deepEqual(
        m.answer.map((r) => r.type),
        [TYPE.SOA],
      );
      const ok = lines.find((l) => l.msg === 'NOTIFY acknowledged');
      assert.ok(ok);
      assert.equal(ok.attempts, 3);
      assert.equal(ok.zone, Z);
      assert.equal(ok.serial, 42);
    } finally {
      p.close();
    }
  });

  it('gives up after the last attempt, saying so', async () => {
    const p = await peer(() => undefined);
    try {
      const { zone, sender, lines } = setup({ alsoNotify: [{ address: '127.0.0.1', port: p.port }] });
      await sender.notify(zone, 42);
      assert.equal(p.got.length, 3);
      assert.ok(lines.some((l) => l.msg === 'NOTIFY not acknowledged'));
    } finally {
      p.close();
    }
  });

  it('signs the NOTIFY with the peer key and requires a signed reply', async () => {
    const config = setup({}).keys;
    const key = config.get('down-key')!;
    const now = () => Math.floor(Date.now() / 1000);
    const signedPeer = await peer((m) => {
      const check = verifyRequest(m, config, now());
      return check.status === 'ok'
        ? new TsigResponseSigner(key, check.tsig.mac, now).sign(ack(m))
        : undefined;
    });
    const unsignedPeer = await peer((m) => ack(m));
    try {
      const a1 = setup({ alsoNotify: [{ address: '127.0.0.1', port: signedPeer.port, key: 'down-key' }] });
      await a1.sender.notify(a1.zone, 42);
      const ok = a1.lines.find((l) => l.msg === 'NOTIFY acknowledged');
      assert.ok(ok, JSON.stringify(a1.lines));
      assert.equal(ok.key, 'down-key');
      const a2 = setup({ alsoNotify: [{ address: '127.0.0.1', port: unsignedPeer.port, key: 'down-key' }] });
      await a2.sender.notify(a2.zone, 42);
      const bad = a2.lines.find((l) => l.msg === 'NOTIFY reply failed TSIG verification');
      assert.ok(bad);
      assert.match(String(bad.err), /reply is not signed/);
      assert.ok(!JSON.stringify([...a1.lines, ...a2.lines]).includes(secret.toString('base64')));
    } finally {
      signedPeer.close();
      unsignedPeer.close();
    }
  });
});
