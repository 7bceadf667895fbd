/**
 * Catalog zone parsing (RFC 9432 §4), member list changes (§5) and the records of a produced
 * catalog, which must parse back into the same member list.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { textToName } from '../../src/dns/name.js';
import { TYPE } from '../../src/dns/types.js';
import { catalogRecords, diffMembers, memberLabel, parseCatalog } from '../../src/refresh/catalog.js';
import type { ZoneRR } from '../../src/store/zone-store.js';

const CAT = 'catalog.example';

const txt = (...s: string[]) =>
  Buffer.concat(s.map((x) => Buffer.concat([Buffer.from([x.length]), Buffer.from(x)])));
const rr = (owner: string, type: number, rdata: Buffer): ZoneRR => ({
  owner: textToName(owner),
  type,
  ttl: 0,
  rdata,
});
const ptr = (owner: string, target: string) => rr(owner, TYPE.PTR, textToName(target));

const base = (): ZoneRR[] => [
  rr(CAT, TYPE.NS, textToName('invalid')),
  rr(`version.${CAT}`, TYPE.TXT, txt('2')),
];

describe('parseCatalog', () => {
  it('reads members, groups and coo, ignoring what it does not know', () => {
    const p = parseCatalog(CAT, [
      ...base(),
      ptr(`m1.zones.${CAT}`, 'Example.COM'),
      ptr(`m2.zones.${CAT}`, 'example.net'),
      rr(`group.m2.zones.${CAT}`, TYPE.TXT, txt('signed')),
      ptr(`coo.m1.zones.${CAT}`, 'other.catalog'),
      rr(`ext.${CAT}`, TYPE.TXT, txt('x')),
      rr(`serial.m1.zones.${CAT}`, TYPE.TXT, txt('1')),
      ptr('m3.zones.elsewhere.example', 'not.ours'),
    ]);
    assert.ok(p.ok);
    assert.deepEqual(
      [...p.members.values()],
      [
        { zone: 'example.com', id: 'm1', groups: [], coo: 'other.catalog' },
        { zone: 'example.net', id: 'm2', groups: ['signed'] },
      ],
    );
  });

  it('refuses a catalog without version 2', () => {
    const noVersion = parseCatalog(CAT, [ptr(`m1.zones.${CAT}`, 'a.example')]);
    assert.equal(noVersion.ok, false);
    const v1 = parseCatalog(CAT, [
      rr(`version.${CAT}`, TYPE.TXT, txt('1')),
      ptr(`m1.zones.${CAT}`, 'a.example'),
    ]);
    assert.ok(!v1.ok);
    assert.match(v1.error, /version "1"/);
  });

  it('refuses a zone listed twice, two PTRs at one member node, bad names', () => {
    const twice = parseCatalog(CAT, [
      ...base(),
      ptr(`a.zones.${CAT}`, 'x.example'),
      ptr(`b.zones.${CAT}`, 'X.example'),
    ]);
    assert.ok(!twice.ok);
    assert.match(twice.error, /listed twice/);
    const two = parseCatalog(CAT, [
      ...base(),
      ptr(`a.zones.${CAT}`, 'x.example'),
      ptr(`a.zones.${CAT}`, 'y.example'),
    ]);
    assert.ok(!two.ok);
    assert.match(two.error, /2 PTR/);
    const odd = parseCatalog(CAT, [
      ...base(),
      rr(`a.zones.${CAT}`, TYPE.PTR, Buffer.from([3, 0x61, 0x20, 0x62, 0])),
    ]);
    assert.ok(!odd.ok);
    assert.match(odd.error, /not allowed/);
  });
});

describe('diffMembers', () => {
  it('tells added, removed, reset (new unique label) and changed (properties)', () => {
    const m = (zone: string, id: string, groups: string[] = []) => [zone, { zone, id, groups }] as const;
    const before = new Map([
      m('a.example', '1'),
      m('b.example', '2'),
      m('c.example', '3'),
      m('d.example', '4'),
    ]);
    const after = new Map([
      m('a.example', '1'),
      m('b.example', '9'),
      m('c.example', '3', ['g']),
      m('e.example', '5'),
    ]);
    const d = diffMembers(before, after);
    assert.deepEqual(
      d.added.map((x) => x.zone),
      ['e.example'],
    );
    assert.deepEqual(d.removed, ['d.example']);
    assert.deepEqual(
      d.reset.map((x) => x.zone),
      ['b.example'],
    );
    assert.deepEqual(
      d.changed.map((x) => x.zone),
      ['c.example'],
    );
  });
});

describe('catalogRecords', () => {
  it('produces a catalog that parses back to the same members, with stable labels', () => {
    const zones = ['a.example', 'b.example.org', 'x_y.example'];
    const rrs = catalogRecords('cat.ns2.example', 7, zones);
    assert.equal(rrs[0].type, TYPE.SOA);
    assert.equal(rrs[0].rdata.readUInt32BE(rrs[0].rdata.length - 20), 7);
    const p = parseCatalog('cat.ns2.example', rrs);
    assert.ok(p.ok);
    assert.deepEqual([...p.members.keys()].sort(), zones);
    assert.equal(p.members.get('a.example')?.id, memberLabel('a.example'));
    assert.notEqual(memberLabel('a.example'), memberLabel('b.example.org'));
  });
});
