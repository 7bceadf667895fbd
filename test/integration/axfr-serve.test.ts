/**
 * End to end against a real BIND 9 primary: ns2 transfers the fixture zone by AXFR, then every
 * name and type of the zone (plus negative cases) is asked of both servers over UDP and TCP and
 * the replies must agree byte for byte in rcode, AA, answer and authority. Then the records
 * table, a restart with the primary gone, SIGTERM, and hostile packets.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TYPE, textToType } from '../../src/dns/types.js';
import Database from '../../src/store/sqlite.js';
import { buildQuery, query, summarize } from '../harness/client.js';
import { digAt, type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const ZONE = 'example.test';
const zoneText = fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8');

let named: Named;
let ns2: Ns2;
/** Every RR of the zone as dig prints it in an AXFR: owner, ttl, class, type, rdata. */
let axfr: { owner: string; type: string; rdata: string }[] = [];

before(async () => {
  named = await startNamed({ zones: [{ name: ZONE, text: zoneText }] });
  const out = await named.dig(['AXFR', ZONE, '+noall', '+answer', '+onesoa']);
  axfr = out
    .split('\n')
    .filter((l) => l && !l.startsWith(';'))
    .map((l) => {
      const [owner, , , type, ...rdata] = l.split(/\s+/);
      return { owner, type, rdata: rdata.join(' ') };
    });
  ns2 = await startNs2({ zones: [{ name: ZONE, primaries: [{ address: '127.0.0.1', port: named.port }] }] });
  await waitFor('ns2 to load the zone', async () => {
    const r = summarize(await query(ns2.port, ZONE, TYPE.SOA));
    return r.rcode === 0 && r.answer.length === 1;
  });
});

after(async () => {
  await ns2?.stop();
  await named?.stop();
});

/** Questions: every (name, type) in the zone, other types at every name, and negative cases. */
function questions(): { name: string; type: number }[] {
  const out = new Map<string, { name: string; type: number }>();
  const add = (name: string, type: number) => out.set(`${name.toLowerCase()}/${type}`, { name, type });
  const probeTypes = [TYPE.A, TYPE.AAAA, TYPE.MX, TYPE.TXT, TYPE.NS, TYPE.CNAME, TYPE.SOA, TYPE.DS, TYPE.SRV];
  for (const rr of axfr) {
    add(rr.owner, textToType(rr.type)!);
    for (const t of probeTypes) add(rr.owner, t);
  }
  const extra = [
    'nothere.example.test.',
    'deep.nothere.example.test.',
    'ent.example.test.',
    'b.ent.example.test.',
    'c.a.b.ent.example.test.',
    'x.wild.example.test.',
    'y.x.wild.example.test.',
    'host.sub.example.test.',
    'deep.host.sub.example.test.',
    'host.dname.example.test.',
    'a.b.dname.example.test.',
    'WWW.EXAMPLE.TEST.',
    'Ns1.Example.Test.',
  ];
  for (const n of extra) for (const t of probeTypes) add(n, t);
  return [...out.values()];
}

describe('AXFR from BIND, served like BIND', () => {
  it('transferred the whole zone and logged the transfer', () => {
    const ev = ns2.logLines().find((l) => l.msg === 'zone transferred');
    assert.ok(ev, 'a transfer event');
    assert.equal(ev.zone, ZONE);
    assert.equal(ev.kind, 'axfr');
    assert.equal(ev.serial_to, 2024010101);
    assert.equal(ev.records, axfr.length);
    for (const k of ['bytes', 'ms', 'primary']) assert.ok(k in ev, k);
  });

  for (const tcp of [false, true]) {
    it(`answers every name and type as named does over ${tcp ? 'TCP' : 'UDP'}`, async () => {
      const diffs: string[] = [];
      for (const q of questions()) {
        const opts = { tcp, edns: 1232 };
        const ours = summarize(await query(ns2.port, q.name, q.type, opts));
        const theirs = summarize(await query(named.port, q.name, q.type, opts));
        try {
          assert.deepEqual(ours, theirs);
        } catch {
          diffs.push(
            `${q.name} ${q.type}\n  ns2:   ${JSON.stringify(ours)}\n  named: ${JSON.stringify(theirs)}`,
          );
        }
      }
      assert.deepEqual(diffs, [], `${diffs.length} answers differ:\n${diffs.join('\n')}`);
    });
  }

  it('gives the same dig output as named for a few names, with RD set as dig sends it', async () => {
    for (const args of [
      ['www.example.test', 'A'],
      ['example.test', 'MX'],
      ['quoted.example.test', 'TXT'],
      ['opaque.example.test', 'TYPE65400'],
      ['dot\\.label.example.test', 'TXT'],
      ['nothere.example.test', 'A'],
    ]) {
      const flags = ['+noall', '+answer', '+authority', '+nocookie'];
      // RRset order is not significant (BIND rotates it): compare the sorted lines.
      const lines = (s: string) => s.split('\n').sort();
      const ours = await digAt(ns2.port, [...args, ...flags]);
      const theirs = await named.dig([...args, ...flags]);
      assert.ok(ours.length > 0, args.join(' '));
      assert.deepEqual(lines(ours), lines(theirs), args.join(' '));
    }
  });

  it('has one row per RR in the records table, with dig-style rdata', () => {
    const db = new Database(ns2.database, { readonly: true });
    try {
      const rows = db.prepare('SELECT name, type, rdata FROM records WHERE zone = ?').all(ZONE) as {
        name: string;
        type: string;
        rdata: string;
      }[];
      assert.equal(rows.length, axfr.length);
      const ours = rows.map((r) => `${r.name}. ${r.type} ${r.rdata}`.replace(/\s+/g, ' ')).sort();
      const theirs = axfr.map((r) => `${r.owner} ${r.type} ${r.rdata}`.replace(/\s+/g, ' ')).sort();
      assert.deepEqual(ours, theirs);
      const zone = db.prepare('SELECT serial, state, primary_addr FROM zones WHERE name = ?').get(ZONE);
      assert.deepEqual(
        { ...(zone as object) },
        { serial: 2024010101, state: 'ok', primary_addr: `127.0.0.1#${named.port}` },
      );
    } finally {
      db.close();
    }
  });

  it('survives 10 000 random and mutated UDP packets and garbage TCP frames', async () => {
    const valid = buildQuery('www.example.test', TYPE.A, { edns: 1232 });
    const sock = dgram.createSocket('udp4');
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 10_000; i++) {
      let pkt: Buffer;
      if (i % 2 === 0) {
        pkt = Buffer.alloc(rnd() % 600);
        for (let j = 0; j < pkt.length; j++) pkt[j] = rnd() & 0xff;
      } else {
        pkt = Buffer.from(valid);
        for (let k = 0; k < 1 + (rnd() % 4); k++) pkt[rnd() % pkt.length] = rnd() & 0xff;
        if (rnd() % 4 === 0) pkt = pkt.subarray(0, rnd() % pkt.length);
      }
      sock.send(pkt, ns2.port, '127.0.0.1');
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    sock.close();
    for (let i = 0; i < 50; i++) {
      await new Promise<void>((resolve) => {
        const c = net.connect({ host: '127.0.0.1', port: ns2.port }, () => {
          const junk = Buffer.alloc(rnd() % 3000);
          for (let j = 0; j < junk.length; j++) junk[j] = rnd() & 0xff;
          c.end(junk);
        });
        c.on('error', () => resolve());
        c.on('close', () => resolve());
        c.resume();
      });
    }
    const r = summarize(await query(ns2.port, 'www.example.test', TYPE.A));
    assert.equal(r.rcode, 0);
    assert.ok(r.answer.length > 0);
    const t = summarize(await query(ns2.port, 'www.example.test', TYPE.A, { tcp: true }));
    assert.deepEqual(t.answer, r.answer);
  });

  it('answers several pipelined queries on one TCP connection', async () => {
    const names = ['www.example.test', 'ns1.example.test', 'mail.example.test'];
    const msgs = names.map((n) => buildQuery(n, TYPE.A));
    const replies: Buffer[] = await new Promise((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port: ns2.port });
      let buf = Buffer.alloc(0);
      const got: Buffer[] = [];
      c.on('connect', () =>
        c.write(
          Buffer.concat(
            msgs.flatMap((m) => {
              const l = Buffer.alloc(2);
              l.writeUInt16BE(m.length);
              return [l, m];
            }),
          ),
        ),
      );
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          got.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (got.length === msgs.length) {
          c.destroy();
          resolve(got);
        }
      });
      c.on('error', reject);
      setTimeout(() => reject(new Error('pipelined replies timed out')), 3000);
    });
    assert.deepEqual(
      replies.map((r) => r.readUInt16BE(0)),
      msgs.map((m) => m.readUInt16BE(0)),
    );
    for (const r of replies) assert.equal(summarize(r).answer.length > 0, true);
  });

  it('stops on SIGTERM with exit 0, and serves from SQLite after a restart with the primary down', async () => {
    const before = summarize(await query(ns2.port, 'www.example.test', TYPE.A));
    assert.equal(await ns2.stop(), 0);
    await named.stop();
    ns2 = await startNs2({
      dir: ns2.dir,
      port: ns2.port,
      zones: [{ name: ZONE, primaries: [{ address: '127.0.0.1', port: named.port }] }],
    });
    const again = summarize(await query(ns2.port, 'www.example.test', TYPE.A));
    assert.deepEqual(again, before);
    const first = ns2.logLines().find((l) => l.msg === 'zone loaded from database');
    assert.equal(first?.state, 'ok');
  });
});
