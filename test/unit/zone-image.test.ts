/**
 * The in-memory zone image must read exactly like the SQLite reader it replaces: the same node
 * contents, descendants, NSEC and NSEC3 predecessors — for a base image and for a base with IXFR
 * patches laid over it. SQLite is the oracle here; each probe is asked of both.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { buildImage, buildPatch, ownerCount, ZoneImage } from '../../src/answer/zone-image.js';
import { canonicalKey } from '../../src/dns/dnssec.js';
import { nameKey, textToName } from '../../src/dns/name.js';
import { type Diff, type ZoneReader, type ZoneRR, ZoneStore } from '../../src/store/zone-store.js';
import { prng } from '../harness/prng.js';
import { soa } from '../harness/records.js';

const ZONE = 'img.test';
const A = 1;
const NSEC = 47;
const NSEC3 = 50;
const RRSIG = 46;

const rand = prng(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const LABELS = ['a', 'b', 'c', 'ab', 'x-1', '*', 'zz', 'b0'];

function randomOwner(): string {
  const depth = 1 + Math.floor(rand() * 3);
  return [...Array(depth)].map(() => pick(LABELS)).join('.');
}

function rr(owner: string, type: number, rdata: Buffer, ttl = 300): ZoneRR {
  return { owner: textToName(owner === '' ? ZONE : `${owner}.${ZONE}`), type, ttl, rdata };
}

const sig = (covered: number, n: number) => {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(covered, 0);
  b.writeUInt32BE(n, 16);
  return b;
};

function zoneAt(serial: number, owners: readonly string[]): ZoneRR[] {
  const rrs = [rr('', 6, soa(`ns.${ZONE}`, `h.${ZONE}`, serial)), rr('', RRSIG, sig(6, serial))];
  owners.forEach((o, i) => {
    rrs.push(rr(o, A, Buffer.from([10, 0, i >> 8, i & 255])));
    if (i % 3 === 0) rrs.push(rr(o, NSEC, Buffer.from([0, i & 255])), rr(o, RRSIG, sig(NSEC, i)));
  });
  // NSEC3 owners: one label under the apex.
  for (let i = 0; i < 12; i++) rrs.push(rr(`h${(i * 7919).toString(36)}`, NSEC3, Buffer.from([1, 0, i])));
  return rrs;
}

function probes(owners: readonly string[]): Buffer[] {
  const names = new Set<string>(['', ...owners]);
  for (let i = 0; i < 300; i++) names.add(randomOwner());
  for (let i = 0; i < 30; i++) names.add(`h${(i * 3001).toString(36)}`);
  return [...names].map((o) => nameKey(textToName(o === '' ? ZONE : `${o}.${ZONE}`)));
}

/** A node as comparable text: key, ttl and rdata hex of each set, in the reader's order. */
const show = (m: Map<number, { ttl: number; rdatas: Buffer[] }>) =>
  [...m].map(([k, s]) => `${k}/${s.ttl}:${s.rdatas.map((r) => r.toString('hex')).join(',')}`).join(' ');

function assertSame(sql: ZoneReader, img: ZoneReader, keys: readonly Buffer[]): void {
  for (const k of keys) {
    const at = k.toString('hex');
    assert.equal(show(img.node(k)), show(sql.node(k)), `node ${at}`);
    assert.equal(img.hasChildren(k), sql.hasChildren(k), `hasChildren ${at}`);
    const ck = canonicalKey(k);
    assert.deepEqual(img.nsecOwner(ck)?.toString('hex'), sql.nsecOwner(ck)?.toString('hex'), `nsec ${at}`);
    assert.deepEqual(img.nsec3Owner(k)?.toString('hex'), sql.nsec3Owner(k)?.toString('hex'), `nsec3 ${at}`);
  }
}

describe('zone image (answer/zone-image.ts) reads like SQLite', () => {
  const store = new ZoneStore(':memory:');
  after(() => store.close());
  const owners = [...new Set([...Array(400)].map(randomOwner))];
  store.replaceZone(ZONE, zoneAt(1, owners), { serial: 1, primary: 'test', now: 0 });
  const base = store.snapshot(() => buildImage(store.scanZone(ZONE)));
  const sql = store.reader(ZONE);

  it('a base image built from scanZone', () => {
    assert.ok(ownerCount(base) > 150, `owners: ${ownerCount(base)}`);
    assertSame(sql, ZoneImage.of(base, 1), probes(owners));
  });

  it('the image is shared memory, so worker threads read one copy', () => {
    assert.ok(base.b.buffer instanceof SharedArrayBuffer);
  });

  it('one buffer per image, two views of it, the arrays side by side without overlap', () => {
    const views = Object.values(base).filter((v) => ArrayBuffer.isView(v));
    assert.deepEqual(views, [base.w, base.b]);
    assert.equal(base.w.buffer, base.b.buffer);
    const words = (at: number, n: number) => [at * 4, (at + n) * 4];
    const ranges = [
      words(base.hash, base.hashMask + 1),
      words(base.keyOff, base.owners + 1),
      words(base.rrStart, base.owners + 1),
      words(base.nsecNode, base.nsecCount),
      words(base.nsec3Node, base.nsec3Count),
      [base.keys, base.rdata],
    ].sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i][0] >= ranges[i - 1][1], 'arrays overlap');
    assert.ok(base.nsecKeys <= base.b.byteLength);
  });

  it('builds reusing the scratch of the one before keep nothing of each other', () => {
    const small = new ZoneStore(':memory:');
    try {
      small.replaceZone(ZONE, zoneAt(2, owners.slice(0, 5)), { serial: 2, primary: 'test', now: 0 });
      const a = small.snapshot(() => buildImage(small.scanZone(ZONE)));
      const b = store.snapshot(() => buildImage(store.scanZone(ZONE)));
      const c = small.snapshot(() => buildImage(small.scanZone(ZONE)));
      assertSame(small.reader(ZONE), ZoneImage.of(a, 2), probes(owners));
      assertSame(sql, ZoneImage.of(b, 1), probes(owners));
      assert.deepEqual(c, a);
    } finally {
      small.close();
    }
  });

  it('IXFR patches laid over the base: deleted owners, new owners, changed NSEC/NSEC3 chains', () => {
    let image = ZoneImage.of(base, 1);
    let live = [...owners];
    for (let serial = 2; serial <= 6; serial++) {
      const gone = live.filter(() => rand() < 0.1);
      const born = [...Array(20)].map(randomOwner).filter((o) => !live.includes(o));
      const uniqueBorn = [...new Set(born)];
      const deleted: ZoneRR[] = [rr('', 6, soa(`ns.${ZONE}`, `h.${ZONE}`, serial - 1))];
      const added: ZoneRR[] = [rr('', 6, soa(`ns.${ZONE}`, `h.${ZONE}`, serial))];
      // Deletions: every RR of the owner (read back from SQLite), so the owner disappears.
      for (const o of gone) {
        const k = nameKey(textToName(`${o}.${ZONE}`));
        for (const [t, set] of sql.node(k))
          for (const rdata of set.rdatas)
            deleted.push({
              owner: textToName(`${o}.${ZONE}`),
              type: t >= 0x10000 ? RRSIG : t,
              ttl: set.ttl,
              rdata,
            });
      }
      uniqueBorn.forEach((o, i) => {
        added.push(rr(o, A, Buffer.from([10, 9, serial, i])));
        if (i % 2 === 0) added.push(rr(o, NSEC, Buffer.from([9, i])));
      });
      added.push(rr(`h-new${serial}`, NSEC3, Buffer.from([1, 0, serial])));
      const diff: Diff = { from: serial - 1, to: serial, deleted, added };
      store.applyDiffs(ZONE, [diff], { primary: 'test', now: serial });
      // The patch: the touched owners' whole new contents, read after the commit.
      const touched = new Map<string, Buffer>();
      for (const r of [...deleted, ...added]) {
        const k = nameKey(r.owner);
        touched.set(k.toString('hex'), k);
      }
      const patch = store.snapshot(() => buildPatch([...touched.values()].map((k) => [k, sql.node(k)])));
      image = image.withPatch(patch, serial);
      live = [...live.filter((o) => !gone.includes(o)), ...uniqueBorn];
      assertSame(sql, image, probes([...live, ...gone]));
    }
    assert.ok(image.overlaid > 20, 'the patches accumulate in the overlay');
    // A fresh base from SQLite agrees with base + overlay.
    const rebuilt = ZoneImage.of(
      store.snapshot(() => buildImage(store.scanZone(ZONE))),
      6,
    );
    assertSame(image, rebuilt, probes(live));
  });
});
