/**
 * xfrout without sockets: requests in, the messages it would write out, read back with ns2's own
 * transfer readers. History shapes a real server sees (first load, AXFR with a new serial, IXFR,
 * a re-transfer that changed nothing), message packing limits, the ACL, and TSIG on every message.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { parseMessage, rcodeOf } from '../../src/dns/message.js';
import { textToName } from '../../src/dns/name.js';
import {
  signRequest,
  type TsigKey,
  TsigResponseSigner,
  TsigResponseVerifier,
  tsigSize,
  verifyRequest,
} from '../../src/dns/tsig.js';
import { TYPE } from '../../src/dns/types.js';
import { acl } from '../../src/serve/acl.js';
import type { Signed } from '../../src/serve/tsig-gate.js';
import { XfrOut } from '../../src/serve/xfrout.js';
import { ZoneTable } from '../../src/serve/zone-table.js';
import Database from '../../src/store/sqlite.js';
import { ZoneStore } from '../../src/store/zone-store.js';
import { AxfrReader } from '../../src/xfrin/axfr.js';
import { buildIxfrQuery, IxfrReader } from '../../src/xfrin/ixfr.js';
import { buildQuery } from '../../src/xfrin/query.js';
import { a, exampleZone, rr, soa } from '../harness/records.js';

const Z = 'example.test';
const apex = textToName(Z);
const P = '192.0.2.1#53';
const key: TsigKey = { name: 'down-key', algorithm: 'hmac-sha256', secret: randomBytes(32) };

let dir: string;
let store: ZoneStore;
let xfrout: XfrOut;
const soaRR = (serial: number) =>
  rr(Z, 'SOA', 3600, soa('ns1.example.test', 'hostmaster.example.test', serial));
const withSerial = (serial: number, extra: ReturnType<typeof rr>[] = []) => [
  soaRR(serial),
  ...exampleZone().filter((r) => r.type !== TYPE.SOA),
  ...extra,
];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-xfrout-'));
  const file = path.join(dir, 'ns2.db');
  store = new ZoneStore(file);
  // History: first load at 1; AXFR to 2 (adds one RR); IXFR 2 → 3 (swaps one); a no-op re-transfer.
  store.replaceZone(Z, withSerial(1), { serial: 1, primary: P, now: 1 });
  store.replaceZone(Z, withSerial(2, [rr('new.example.test', 'A', 60, a('192.0.2.100'))]), {
    serial: 2,
    primary: P,
    now: 2,
  });
  store.applyDiffs(
    Z,
    [
      {
        from: 2,
        to: 3,
        deleted: [soaRR(2), rr('new.example.test', 'A', 60, a('192.0.2.100'))],
        added: [soaRR(3), rr('new.example.test', 'A', 60, a('192.0.2.101'))],
      },
    ],
    { primary: P, now: 3 },
  );
  store.replaceZone(Z, withSerial(3, [rr('new.example.test', 'A', 60, a('192.0.2.101'))]), {
    serial: 3,
    primary: P,
    now: 4,
  });
  const table = new ZoneTable();
  table.add(Z, apex, store, { state: 'ok', allowTransfer: acl(['127.0.0.0/8', 'key:down-key']) });
  xfrout = new XfrOut(
    table,
    { openReader: () => new Database(file, { readonly: true, fileMustExist: true }), messageSize: 300 },
    pino({ level: 'silent' }),
  );
});
after(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs a TCP transfer request through xfrout and collects the messages it writes. */
async function transfer(msg: Buffer, peer = '127.0.0.1', signed?: Signed): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const running = xfrout.tcp(msg, peer, { send: async (m) => void out.push(m) }, signed);
  assert.ok(running, 'xfrout took the request');
  await running;
  return out;
}

function feed(reader: { push(m: Buffer, first: boolean): boolean }, msgs: Buffer[]): void {
  for (const [i, m] of msgs.entries()) reader.push(m, i === 0);
}

const ixfrFrom = (serial: number) =>
  buildIxfrQuery(apex, 3600, soa('ns1.example.test', 'hostmaster.example.test', serial));

describe('xfrout', () => {
  it('streams AXFR in messages within the size limit, and the reader takes the whole zone', async () => {
    const { id, msg } = buildQuery(apex, TYPE.AXFR);
    const msgs = await transfer(msg);
    assert.ok(msgs.length >= 3, `${msgs.length} messages`);
    for (const m of msgs) assert.ok(m.length <= 300, `message of ${m.length} bytes`);
    const reader = new AxfrReader(apex, id, 1000);
    let done = false;
    msgs.forEach((m, i) => {
      done = reader.push(m, i === 0);
    });
    assert.ok(done);
    assert.equal(reader.zoneSerial, 3);
    assert.equal(reader.rrs.length, store.zone(Z)!.records);
  });

  it('answers IXFR from the history, across an AXFR change and a no-op re-transfer', async () => {
    const q = ixfrFrom(1);
    const reader = new IxfrReader(apex, q.id, 1, 1000);
    feed(reader, await transfer(q.msg));
    const r = reader.result();
    assert.equal(r.kind, 'ixfr');
    if (r.kind !== 'ixfr') return;
    assert.deepEqual(
      r.diffs.map((d) => [d.from, d.to, d.deleted.length, d.added.length]),
      [
        [1, 2, 1, 2],
        [2, 3, 2, 2],
      ],
    );
  });

  it('answers AXFR-style when the history does not reach the client, SOA alone when up to date', async () => {
    const old = ixfrFrom(0);
    const reader = new IxfrReader(apex, old.id, 0, 1000);
    feed(reader, await transfer(old.msg));
    assert.equal(reader.result().kind, 'axfr');
    for (const serial of [3, 4]) {
      const q = ixfrFrom(serial);
      const msgs = await transfer(q.msg);
      assert.equal(msgs.length, 1);
      const m = parseMessage(msgs[0]);
      assert.deepEqual(
        m.answer.map((x) => x.type),
        [TYPE.SOA],
      );
    }
  });

  it('refuses a client outside allowTransfer, and ignores queries that are not transfers', async () => {
    const msgs = await transfer(buildQuery(apex, TYPE.AXFR).msg, '10.0.0.1');
    assert.equal(msgs.length, 1);
    assert.equal(rcodeOf(msgs[0].readUInt16BE(2)), 5);
    assert.equal(
      xfrout.tcp(buildQuery(apex, TYPE.SOA).msg, '127.0.0.1', { send: async () => {} }),
      undefined,
    );
    assert.equal(xfrout.udp(buildQuery(apex, TYPE.A).msg, '127.0.0.1'), undefined);
  });

  it('signs every message of a transfer allowed by key, the chain verifying', async () => {
    const req = signRequest(buildQuery(apex, TYPE.AXFR).msg, key, Math.floor(Date.now() / 1000));
    const check = verifyRequest(req.msg, new Map([[key.name, key]]), Math.floor(Date.now() / 1000));
    assert.equal(check.status, 'ok');
    // What the TSIG gate hands on for a verified request.
    const signer = new TsigResponseSigner(key, check.status === 'ok' ? check.tsig.mac : Buffer.alloc(0), () =>
      Math.floor(Date.now() / 1000),
    );
    const signed: Signed = { key: key.name, reserve: tsigSize(key, 6), sign: (m) => signer.sign(m) };
    const msgs = await transfer(req.msg, '10.0.0.1', signed);
    assert.ok(msgs.length > 3);
    const v = new TsigResponseVerifier(key, req.mac, () => Math.floor(Date.now() / 1000));
    for (const m of msgs) {
      assert.ok(m.length <= 300);
      v.verify(m);
    }
    v.finish();
  });
});
