/** The examples of RFC 4592 §2.2.1, answered by the pure lookup. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RCODE } from '../../src/dns/message.js';
import { nameToText, textToName } from '../../src/dns/name.js';
import { lookup } from '../../src/serve/lookup.js';
import { ZoneTable } from '../../src/serve/zone-table.js';
import { ZoneStore } from '../../src/store/zone-store.js';
import { a, mx, n, rr, soa, TYPES, txt } from '../harness/records.js';

let store: ZoneStore;
let table: ZoneTable;

const srv = (target: string) => Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 22]), n(target)]);

before(() => {
  store = new ZoneStore(':memory:');
  store.replaceZone(
    'example',
    [
      rr('example', 'SOA', 3600, soa('ns.example.com', 'hostmaster.example', 1)),
      rr('example', 'NS', 3600, n('ns.example.com')),
      rr('example', 'NS', 3600, n('ns.example.net')),
      rr('*.example', 'TXT', 3600, txt('this is a wildcard')),
      rr('*.example', 'MX', 3600, mx(10, 'host1.example')),
      rr('sub.*.example', 'TXT', 3600, txt('this is not a wildcard')),
      rr('host1.example', 'A', 3600, a('192.0.2.1')),
      rr('_ssh._tcp.host1.example', 'SRV', 3600, srv('host1.example')),
      rr('_ssh._tcp.host2.example', 'SRV', 3600, srv('host2.example')),
      rr('subdel.example', 'NS', 3600, n('ns.example.com')),
      rr('subdel.example', 'NS', 3600, n('ns.example.net')),
    ],
    { serial: 1, primary: 'test', now: 0 },
  );
  table = new ZoneTable();
  table.add('example', textToName('example'), store, { state: 'ok' });
});
after(() => store.close());

const ask = (name: string, type: keyof typeof TYPES) => lookup(table, n(name), TYPES[type], { minimal: 1 });

describe('RFC 4592 §2.2.1 examples', () => {
  it('host3.example. MX is synthesised from *.example with the query name as owner', () => {
    const r = ask('host3.example', 'MX');
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.equal(r.answer.length, 1);
    assert.equal(nameToText(r.answer[0].owner), 'host3.example.');
  });
  it('host3.example. A is NODATA from the wildcard', () => {
    const r = ask('host3.example', 'A');
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.equal(r.answer.length, 0);
  });
  it('foo.bar.example. TXT matches *.example (bar.example does not exist)', () => {
    assert.equal(ask('foo.bar.example', 'TXT').answer.length, 1);
  });
  it('host1.example. MX is NODATA: the name exists, no wildcard', () => {
    const r = ask('host1.example', 'MX');
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.equal(r.answer.length, 0);
  });
  it('sub.*.example. MX is NODATA: an existing name, not a wildcard', () => {
    const r = ask('sub.*.example', 'MX');
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.equal(r.answer.length, 0);
  });
  it('_telnet._tcp.host1.example. SRV is NXDOMAIN: _tcp.host1.example is an empty non-terminal', () => {
    assert.equal(ask('_telnet._tcp.host1.example', 'SRV').rcode, RCODE.NXDOMAIN);
  });
  it('host.subdel.example. A is a referral, not a wildcard answer', () => {
    const r = ask('host.subdel.example', 'A');
    assert.equal(r.aa, false);
    assert.equal(r.authority[0].type, TYPES.NS);
  });
  it('ghost.*.example. MX is NXDOMAIN: the closest encloser *.example has no wildcard child', () => {
    assert.equal(ask('ghost.*.example', 'MX').rcode, RCODE.NXDOMAIN);
  });
});
