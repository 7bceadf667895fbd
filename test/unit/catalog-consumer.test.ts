/**
 * The catalog consumer's answer to a reload (reconfigure, release) over a recording MemberZones
 * and a store holding real catalog records (catalogRecords): which member zones are added,
 * handed over, reconfigured, released and removed, in which order.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { type CatalogConfig, parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { catalogRecords } from '../../src/refresh/catalog.js';
import { CatalogConsumer, type MemberZones } from '../../src/refresh/catalog-consumer.js';
import { ZoneStore } from '../../src/store/zone-store.js';

const catalogs = (...specs: Record<string, unknown>[]): readonly CatalogConfig[] =>
  parseConfig({
    database: ':memory:',
    catalogs: specs.map((s) => ({ primaries: [{ address: '192.0.2.1' }], ...s })),
  }).catalogs;

function setup(stored: Record<string, string[]>, failAdd = new Set<string>()) {
  const store = new ZoneStore(':memory:');
  for (const [cat, members] of Object.entries(stored))
    store.replaceZone(cat, catalogRecords(cat, 1, members), { serial: 1, primary: 't', now: 0 });
  const calls: string[] = [];
  const zones: MemberZones = {
    add: async (z, m) => {
      calls.push(`add ${z.name} ${m.catalog}`);
    },
    update: async (z, m) => {
      calls.push(`update ${z.name} ${m.catalog} ${z.allowTransfer.join(',')}`);
    },
    remove: async (zone) => {
      calls.push(`remove ${zone}`);
    },
    addCatalog: async (z) => {
      if (failAdd.has(z.name)) throw new Error(`zone ${z.name} is already served`);
      calls.push(`add catalog ${z.name}`);
    },
    updateCatalog: async (z) => {
      calls.push(`update catalog ${z.name}`);
    },
    release: async (zone) => {
      calls.push(`release ${zone}`);
    },
  };
  const log = createLogger('silent', new Writable({ write: (_c, _e, done) => done() }));
  return { store, calls, zones, log };
}

/** A consumer of a.cat (members x.test, y.test), its members added, the calls so far cleared. */
async function consumingA() {
  const { store, calls, zones, log } = setup({ 'a.cat': ['x.test', 'y.test'] });
  const c = new CatalogConsumer(catalogs({ name: 'a.cat' }), new Set(), store, zones, log);
  await c.changed('a.cat');
  assert.deepEqual(calls.splice(0), ['add x.test a.cat', 'add y.test a.cat']);
  return { c, calls };
}

describe('CatalogConsumer on reload', () => {
  it('a removed catalog hands members another catalog lists over (data kept), deletes the rest', async () => {
    const { store, calls, zones, log } = setup({
      'a.cat': ['x.test', 'y.test'],
      'b.cat': ['x.test', 'z.test'],
    });
    const c = new CatalogConsumer(catalogs({ name: 'a.cat' }), new Set(), store, zones, log);
    await c.changed('a.cat');
    assert.deepEqual(calls.splice(0), ['add x.test a.cat', 'add y.test a.cat']);
    await c.reconfigure(catalogs({ name: 'a.cat' }, { name: 'b.cat' }), new Set());
    // b.cat is stored already: processed at once; x.test stays with a.cat, its first owner.
    assert.deepEqual(calls.splice(0), ['add catalog b.cat', 'add z.test b.cat']);
    await c.reconfigure(catalogs({ name: 'b.cat' }), new Set());
    assert.deepEqual(calls.splice(0), ['remove a.cat', 'update x.test b.cat ', 'remove y.test']);
    assert.deepEqual(c.counts(), [{ catalog: 'b.cat', members: 2 }]);
    assert.equal(c.isCatalog('a.cat'), false);
    // The same config again: nothing to do.
    await c.reconfigure(catalogs({ name: 'b.cat' }), new Set());
    assert.deepEqual(calls, []);
  });

  it('changed zoneDefaults reach every member; the catalog zone only when its own config changes', async () => {
    const { c, calls } = await consumingA();
    await c.reconfigure(
      catalogs({ name: 'a.cat', zoneDefaults: { allowTransfer: ['192.0.2.7'] } }),
      new Set(),
    );
    assert.deepEqual(calls.splice(0), ['update x.test a.cat 192.0.2.7', 'update y.test a.cat 192.0.2.7']);
    const moved = {
      name: 'a.cat',
      primaries: [{ address: '192.0.2.2' }],
      zoneDefaults: { allowTransfer: ['192.0.2.7'] },
    };
    await c.reconfigure(catalogs(moved), new Set());
    assert.deepEqual(calls.splice(0), [
      'update catalog a.cat',
      'update x.test a.cat 192.0.2.7',
      'update y.test a.cat 192.0.2.7',
    ]);
    // A group nobody names changes nothing for the members.
    await c.reconfigure(catalogs({ ...moved, groups: { unused: { maxRecords: 5 } } }), new Set());
    assert.deepEqual(calls, []);
  });

  it('a member that becomes a static zone is released, and served by the catalog again once not', async () => {
    const { c, calls } = await consumingA();
    await c.release(new Set(['y.test']));
    await c.reconfigure(catalogs({ name: 'a.cat' }), new Set(['y.test']));
    assert.deepEqual(calls.splice(0), ['release y.test']);
    assert.deepEqual(c.counts(), [{ catalog: 'a.cat', members: 1 }]);
    await c.reconfigure(catalogs({ name: 'a.cat' }), new Set());
    assert.deepEqual(calls.splice(0), ['add y.test a.cat']);
  });

  it('a catalog that becomes a static zone goes before the zones are applied, its members after', async () => {
    const { c, calls } = await consumingA();
    await c.release(new Set(['a.cat']));
    assert.deepEqual(calls.splice(0), ['remove a.cat']);
    assert.equal(c.isCatalog('a.cat'), false);
    await c.reconfigure([], new Set(['a.cat']));
    assert.deepEqual(calls.splice(0), ['remove x.test', 'remove y.test']);
    assert.deepEqual(c.counts(), []);
  });

  it('a member zone that becomes a catalog is removed as a member first', async () => {
    const { c, calls } = await consumingA();
    await c.reconfigure(catalogs({ name: 'a.cat' }, { name: 'x.test' }), new Set());
    assert.deepEqual(calls, ['remove x.test', 'add catalog x.test']);
    assert.deepEqual(c.counts(), [
      { catalog: 'a.cat', members: 1 },
      { catalog: 'x.test', members: 0 },
    ]);
  });

  it('a catalog that cannot be added is reported, the others applied, and tried again next time', async () => {
    const { store, calls, zones, log } = setup({}, new Set(['bad.cat']));
    const c = new CatalogConsumer([], new Set(), store, zones, log);
    await assert.rejects(
      c.reconfigure(catalogs({ name: 'bad.cat' }, { name: 'good.cat' }), new Set()),
      /add catalog bad\.cat: zone bad\.cat is already served/,
    );
    assert.deepEqual(calls.splice(0), ['add catalog good.cat']);
    assert.equal(c.isCatalog('bad.cat'), false);
    await assert.rejects(c.reconfigure(catalogs({ name: 'bad.cat' }, { name: 'good.cat' }), new Set()));
    assert.deepEqual(calls, []);
  });
});
