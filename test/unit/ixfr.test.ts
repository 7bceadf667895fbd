import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLAG_AA, FLAG_QR, parseMessage } from '../../src/dns/message.js';
import { MessageWriter } from '../../src/dns/writer.js';
import { InconsistentDiff, type ZoneRR, ZoneStore } from '../../src/store/zone-store.js';
import { XfrError } from '../../src/xfrin/axfr.js';
import { buildIxfrQuery, IxfrReader } from '../../src/xfrin/ixfr.js';
import { a, exampleZone, n, rr, soa } from '../harness/records.js';

const ZONE = n('example.test');
const ID = 777;
const S = (serial: number) =>
  rr('example.test', 'SOA', 3600, soa('ns1.example.test', 'hostmaster.example.test', serial));

function message(rrs: ZoneRR[], question = true): Buffer {
  const w = new MessageWriter(65535);
  for (const v of [ID, FLAG_QR | FLAG_AA, question ? 1 : 0, rrs.length, 0, 0]) w.u16(v);
  if (question) {
    w.name(ZONE);
    w.u16(251);
    w.u16(1);
  }
  for (const r of rrs) w.rr(r.owner, r.type, 1, r.ttl, r.rdata);
  return w.finish();
}

const www = (ip: string) => rr('www.example.test', 'A', 300, a(ip));

describe('IXFR reader (RFC 1995 §4)', () => {
  it('puts our SOA in the authority section of the query', () => {
    const q = parseMessage(buildIxfrQuery(ZONE, 3600, S(5).rdata).msg);
    assert.equal(q.questions[0].type, 251);
    assert.equal(q.authority.length, 1);
    assert.equal(q.authority[0].type, 6);
  });

  it('reads several versions in one response, across messages', () => {
    const r = new IxfrReader(ZONE, ID, 1, 100);
    assert.equal(r.push(message([S(3), S(1), www('192.0.2.1'), S(2), www('192.0.2.2')]), true), false);
    assert.equal(r.push(message([S(2), www('192.0.2.2'), S(3), www('192.0.2.3'), S(3)], false), false), true);
    const res = r.result();
    assert.equal(res.kind, 'ixfr');
    if (res.kind !== 'ixfr') return;
    assert.deepEqual(
      res.diffs.map((d) => [d.from, d.to, d.deleted.length, d.added.length]),
      [
        [1, 2, 2, 2],
        [2, 3, 2, 2],
      ],
    );
  });

  it('recognises an AXFR-style response', () => {
    const r = new IxfrReader(ZONE, ID, 1, 100);
    assert.equal(
      r.push(
        message([S(4), www('192.0.2.1'), rr('example.test', 'NS', 60, n('ns1.example.test')), S(4)]),
        true,
      ),
      true,
    );
    const res = r.result();
    assert.equal(res.kind, 'axfr');
    assert.equal(res.kind === 'axfr' && res.rrs.length, 3);
  });

  it('a single SOA not newer than ours means up to date', () => {
    const r = new IxfrReader(ZONE, ID, 5, 100);
    assert.equal(r.push(message([S(5)]), true), true);
    assert.deepEqual(r.result(), { kind: 'uptodate', serial: 5 });
  });

  it('a single newer SOA is not usable (fall back to AXFR)', () => {
    const r = new IxfrReader(ZONE, ID, 5, 100);
    r.push(message([S(6)]), true);
    assert.throws(() => r.result(), XfrError);
  });

  it('rejects a broken version chain and data after the end', () => {
    const broken = new IxfrReader(ZONE, ID, 1, 100);
    assert.throws(() => broken.push(message([S(3), S(1), S(2), S(5), S(3), S(3)]), true), /chain/);
    const trailing = new IxfrReader(ZONE, ID, 1, 100);
    assert.throws(
      () => trailing.push(message([S(2), S(1), S(2), S(2), www('192.0.2.9')]), true),
      /after the closing/,
    );
  });

  it('treats wraparound serials as a chain (4294967295 → 1)', () => {
    const r = new IxfrReader(ZONE, ID, 4294967295, 100);
    r.push(message([S(1), S(4294967295), S(1), www('192.0.2.1'), S(1)]), true);
    const res = r.result();
    assert.equal(res.kind, 'ixfr');
  });
});

describe('applying diffs', () => {
  const load = () => {
    const s = new ZoneStore(':memory:');
    s.replaceZone(
      'example.test',
      exampleZone(1).map((x) => (x.type === 6 ? S(1) : x)),
      { serial: 1, primary: 'p', now: 1 },
    );
    return s;
  };

  it('applies versions in one transaction with a changes row each', () => {
    const s = load();
    const before = s.zone('example.test')!.records;
    const res = s.applyDiffs(
      'example.test',
      [
        { from: 1, to: 2, deleted: [S(1), www('192.0.2.1')], added: [S(2), www('192.0.2.10')] },
        { from: 2, to: 3, deleted: [S(2)], added: [S(3), rr('new.example.test', 'A', 60, a('192.0.2.77'))] },
      ],
      { primary: 'p', now: 2 },
    );
    assert.equal(res.serial, 3);
    assert.equal(s.zone('example.test')!.serial, 3);
    assert.equal(s.zone('example.test')!.records, before + 1);
    const changes = s.db
      .prepare("SELECT serial_from, serial_to, kind FROM changes WHERE kind = 'ixfr' ORDER BY id")
      .all();
    assert.deepEqual(
      changes.map((c) => ({ ...(c as object) })),
      [
        { serial_from: 1, serial_to: 2, kind: 'ixfr' },
        { serial_from: 2, serial_to: 3, kind: 'ixfr' },
      ],
    );
    s.close();
  });

  for (const [what, diffs] of [
    [
      'deleting an RR we do not hold',
      [{ from: 1, to: 2, deleted: [S(1), www('203.0.113.1')], added: [S(2)] }],
    ],
    ['adding an RR we already hold', [{ from: 1, to: 2, deleted: [S(1)], added: [S(2), www('192.0.2.1')] }]],
    ['a diff not starting at our serial', [{ from: 7, to: 8, deleted: [S(7)], added: [S(8)] }]],
  ] as const) {
    it(`refuses ${what}, leaving the zone untouched`, () => {
      const s = load();
      const rows = s.db.prepare('SELECT count(*) AS n FROM records').get();
      assert.throws(
        () => s.applyDiffs('example.test', diffs as never, { primary: 'p', now: 2 }),
        InconsistentDiff,
      );
      assert.equal(s.zone('example.test')!.serial, 1);
      assert.deepEqual(s.db.prepare('SELECT count(*) AS n FROM records').get(), rows);
      s.close();
    });
  }

  it('prunes history beyond the limit', () => {
    const s = load();
    for (let i = 2; i <= 6; i++) {
      s.applyDiffs('example.test', [{ from: i - 1, to: i, deleted: [S(i - 1)], added: [S(i)] }], {
        primary: 'p',
        now: i,
      });
    }
    assert.equal(s.pruneHistory('example.test', 3), 3);
    const left = s.db.prepare('SELECT serial_to FROM changes ORDER BY id').all() as { serial_to: number }[];
    assert.deepEqual(
      left.map((r) => r.serial_to),
      [4, 5, 6],
    );
    const orphans = s.db
      .prepare('SELECT count(*) AS n FROM change_records WHERE change_id NOT IN (SELECT id FROM changes)')
      .get() as { n: number };
    assert.equal(orphans.n, 0);
    s.close();
  });
});
