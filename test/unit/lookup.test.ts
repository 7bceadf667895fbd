import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_POLICY, minimalBits } from '../../src/answer/minimal.js';
import { RCODE } from '../../src/dns/message.js';
import { nameToText } from '../../src/dns/name.js';
import { type LookupResult, lookup } from '../../src/serve/lookup.js';
import type { ZoneTable } from '../../src/serve/zone-table.js';
import type { ZoneStore } from '../../src/store/zone-store.js';
import { exampleTable } from '../harness/example-table.js';
import { n, TYPES } from '../harness/records.js';

let store: ZoneStore;
let table: ZoneTable;

before(() => {
  ({ store, table } = exampleTable());
});
after(() => store.close());

const q = (name: string, type: keyof typeof TYPES | number, rd = true) =>
  lookup(table, n(name), typeof type === 'number' ? type : TYPES[type], {
    minimal: minimalBits(DEFAULT_POLICY, rd, typeof type === 'number' ? type : TYPES[type], false, undefined),
  });

/** "owner TYPE" lines of a section, to compare shapes. */
const shape = (sets: LookupResult['answer']) =>
  sets.map((s) => `${nameToText(s.owner)} ${s.type} x${s.rdatas.length}`);

describe('lookup (RFC 1034 §4.3.2)', () => {
  it('answers an exact match with AA and no authority when RD is set', () => {
    const r = q('www.example.test', 'A');
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.equal(r.aa, true);
    assert.deepEqual(shape(r.answer), ['www.example.test. 1 x2']);
    assert.deepEqual(r.authority, []);
  });

  it('adds the apex NS and its address when RD is clear, like BIND', () => {
    const r = q('www.example.test', 'A', false);
    assert.deepEqual(shape(r.authority), ['example.test. 2 x1']);
    assert.deepEqual(shape(r.additional), ['ns1.example.test. 1 x1']);
  });

  it('keeps the query name case in the answer owner', () => {
    const r = q('WwW.Example.TEST', 'A');
    assert.equal(nameToText(r.answer[0].owner), 'WwW.Example.TEST.');
  });

  it('NODATA: NOERROR, empty answer, SOA with TTL min(ttl, minimum)', () => {
    const r = q('www.example.test', 'MX');
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.deepEqual(r.answer, []);
    assert.deepEqual(shape(r.authority), ['example.test. 6 x1']);
    assert.equal(r.authority[0].ttl, 300);
  });

  it('NXDOMAIN with the SOA', () => {
    const r = q('nope.example.test', 'A');
    assert.equal(r.rcode, RCODE.NXDOMAIN);
    assert.deepEqual(shape(r.authority), ['example.test. 6 x1']);
  });

  it('empty non-terminals are NODATA, names below them NXDOMAIN', () => {
    assert.equal(q('b.ent.example.test', 'A').rcode, RCODE.NOERROR);
    assert.equal(q('ent.example.test', 'A').rcode, RCODE.NOERROR);
    assert.equal(q('c.b.ent.example.test', 'A').rcode, RCODE.NXDOMAIN);
  });

  it('additional section holds A and AAAA of MX targets', () => {
    const r = q('example.test', 'MX');
    assert.deepEqual(shape(r.additional), ['mail.example.test. 1 x1', 'mail.example.test. 28 x1']);
  });

  it('follows a CNAME inside the zone', () => {
    const r = q('alias.example.test', 'A');
    assert.deepEqual(shape(r.answer), ['alias.example.test. 5 x1', 'www.example.test. 1 x2']);
  });

  it('answers a CNAME query with the CNAME itself', () => {
    assert.deepEqual(shape(q('alias.example.test', 'CNAME').answer), ['alias.example.test. 5 x1']);
  });

  it('stops at CNAME loops (SERVFAIL, the CNAMEs followed, as named says) and at targets outside our zones', () => {
    // Checked against named in integration/bind-oracle.test.ts.
    const loop = q('loop1.example.test', 'A', false);
    assert.deepEqual(shape(loop.answer), ['loop1.example.test. 5 x1', 'loop2.example.test. 5 x1']);
    assert.equal(loop.rcode, RCODE.SERVFAIL);
    assert.deepEqual(loop.authority, [], 'no apex NS on a SERVFAIL, even with RD clear');
    const out = q('out.example.test', 'A');
    assert.deepEqual(shape(out.answer), ['out.example.test. 5 x1']);
    assert.equal(out.rcode, RCODE.NOERROR);
  });

  it('a chain ending at a missing name is NXDOMAIN with the CNAME kept', () => {
    const r = q('dangling.example.test', 'A');
    assert.equal(r.rcode, RCODE.NXDOMAIN);
    assert.deepEqual(shape(r.answer), ['dangling.example.test. 5 x1']);
  });

  it('refers queries at and below a zone cut, with glue, without AA', () => {
    for (const name of ['sub.example.test', 'host.sub.example.test', 'ns.sub.example.test']) {
      const r = q(name, 'A');
      assert.equal(r.aa, false, name);
      assert.deepEqual(r.answer, [], name);
      assert.deepEqual(shape(r.authority), ['sub.example.test. 2 x1'], name);
      assert.deepEqual(shape(r.additional), ['ns.sub.example.test. 1 x1'], name);
    }
  });

  it('answers DS at the cut from the parent side', () => {
    const r = q('sub.example.test', 'DS');
    assert.equal(r.aa, true);
    assert.deepEqual(shape(r.answer), ['sub.example.test. 43 x1']);
  });

  it('synthesises from a wildcard with the query name as owner', () => {
    const r = q('anything.wild.example.test', 'TXT');
    assert.deepEqual(shape(r.answer), ['anything.wild.example.test. 16 x1']);
    assert.equal(q('a.b.wild.example.test', 'A').answer.length, 1);
  });

  it('does not use the wildcard for existing names (NODATA instead)', () => {
    const r = q('exists.wild.example.test', 'A');
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.deepEqual(r.answer, []);
  });

  it('wildcard NODATA for a type the wildcard lacks', () => {
    const r = q('x.wild.example.test', 'MX');
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.deepEqual(r.answer, []);
    assert.deepEqual(shape(r.authority), ['example.test. 6 x1']);
  });

  it('follows a wildcard CNAME', () => {
    assert.deepEqual(shape(q('foo.cw.example.test', 'A').answer), [
      'foo.cw.example.test. 5 x1',
      'www.example.test. 1 x2',
    ]);
  });

  it('synthesises a CNAME from a DNAME (RFC 6672)', () => {
    const r = q('host.dname.example.test', 'A');
    assert.deepEqual(shape(r.answer), ['dname.example.test. 39 x1', 'host.dname.example.test. 5 x1']);
    assert.equal(nameToText(r.answer[1].rdatas[0]), 'host.example.net.');
  });

  it('answers the DNAME owner itself normally', () => {
    assert.deepEqual(shape(q('dname.example.test', 'DNAME').answer), ['dname.example.test. 39 x1']);
  });

  it('ANY returns every RRset at the name', () => {
    const r = q('mail.example.test', 255);
    assert.deepEqual(shape(r.answer).sort(), ['mail.example.test. 1 x1', 'mail.example.test. 28 x1']);
  });
});
