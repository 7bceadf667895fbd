import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  isSubdomain,
  keyToName,
  nameKey,
  nameToText,
  readName,
  textToName,
  toLower,
  WireError,
} from '../../src/dns/name.js';
import { compareSerial, isNewer } from '../../src/dns/serial.js';

describe('names', () => {
  it('round-trips presentation text with escapes', () => {
    for (const t of ['example.test.', 'dot\\.label.example.test.', 'a\\000b.test.', 'x\\\\y.test.', '.']) {
      assert.equal(nameToText(textToName(t)), t);
    }
    assert.equal(nameToText(textToName('Www.Example.Test'), false), 'Www.Example.Test');
  });

  it('keeps a label holding a dot as one label', () => {
    const w = textToName('dot\\.label.example.test');
    assert.equal(w[0], 9);
    assert.equal(w.subarray(1, 10).toString(), 'dot.label');
  });

  it('follows compression pointers and rejects forward pointers and loops', () => {
    const msg = Buffer.concat([
      Buffer.alloc(12),
      textToName('example.test'),
      Buffer.from([3, 0x77, 0x77, 0x77, 0xc0, 12]),
    ]);
    const r = readName(msg, 26);
    assert.equal(nameToText(r.name), 'www.example.test.');
    assert.equal(r.end, 32);
    const loop = Buffer.concat([Buffer.alloc(12), Buffer.from([0xc0, 12])]);
    assert.throws(() => readName(loop, 12), WireError);
    const fwd = Buffer.concat([Buffer.alloc(12), Buffer.from([0xc0, 14, 0])]);
    assert.throws(() => readName(fwd, 12), WireError);
  });

  it('rejects names over 255 octets and truncated labels', () => {
    const long = Buffer.concat([
      ...Array(5).fill(Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])),
      Buffer.from([0]),
    ]);
    assert.throws(() => readName(long, 0), /255/);
    assert.throws(() => readName(Buffer.from([5, 0x61]), 0), WireError);
  });

  it('compares case-insensitively and on label boundaries', () => {
    assert.ok(isSubdomain(textToName('A.Example.TEST'), textToName('example.test')));
    assert.ok(!isSubdomain(textToName('aexample.test'), textToName('example.test')));
    assert.ok(toLower(textToName('ABC.test')).equals(textToName('abc.test')));
  });

  it('keyToName inverts nameKey (lower case), the root included', () => {
    for (const t of ['.', 'a', 'WWW.Example.COM', 'a\\.b.c', 'x.y.z.w.v', 'xn--bcher-kva.example']) {
      const wire = textToName(t);
      assert.deepEqual(keyToName(nameKey(wire)), toLower(wire), t);
    }
  });

  it('nameKey puts descendants in (key, key||0xff)', () => {
    const parent = nameKey(textToName('example.test'));
    const child = nameKey(textToName('a.b.example.test'));
    const other = nameKey(textToName('example.testx'));
    const hi = Buffer.concat([parent, Buffer.from([0xff])]);
    assert.ok(Buffer.compare(child, parent) > 0 && Buffer.compare(child, hi) < 0);
    assert.ok(!(Buffer.compare(other, parent) > 0 && Buffer.compare(other, hi) < 0));
  });
});

describe('serial arithmetic (RFC 1982)', () => {
  it('orders across the wrap', () => {
    assert.equal(compareSerial(1, 2), 'lower');
    assert.equal(compareSerial(0xffffffff, 0), 'lower');
    assert.equal(compareSerial(0, 0xffffffff), 'greater');
    assert.equal(compareSerial(5, 5), 'equal');
    assert.equal(compareSerial(0, 0x80000000), 'incomparable');
    assert.ok(isNewer(10, 0xfffffff0));
    assert.ok(!isNewer(0x80000000, 0));
  });
});
