import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config.js';
import { diffConfig, isEmptyDiff, LIVE_KEYS } from '../../src/reload/config-diff.js';

const SECRET_A = Buffer.from('secret-a-secret-a').toString('base64');
const SECRET_B = Buffer.from('secret-b-secret-b').toString('base64');

const base = () => ({
  listen: [{ address: '127.0.0.1', port: 5353 }],
  database: ':memory:',
  workers: 1,
  control: { address: '127.0.0.1', port: 8053 },
  keys: { 'xfr-key': { algorithm: 'hmac-sha256', secret: SECRET_A } },
  zones: [
    { name: 'a.test', primaries: [{ address: '192.0.2.1', key: 'xfr-key' }] },
    { name: 'b.test', primaries: [{ address: '192.0.2.1' }] },
  ],
});

const diff = (change: (c: ReturnType<typeof base>) => void) => {
  const next = base();
  change(next);
  return diffConfig(parseConfig(base()), parseConfig(next));
};

describe('diffConfig', () => {
  test('the same file: nothing to do', () => {
    assert.ok(isEmptyDiff(diffConfig(parseConfig(base()), parseConfig(base()))));
  });

  test('zones added, removed and changed, by name; order does not matter', () => {
    const d = diff((c) => {
      c.zones.reverse();
      c.zones[0].primaries = [{ address: '192.0.2.2' }]; // b.test
      c.zones.splice(1, 1); // a.test goes
      c.zones.push({ name: 'C.Test.', primaries: [{ address: '192.0.2.3' }] });
    });
    assert.deepEqual(
      d.added.map((z) => z.name),
      ['c.test'],
    );
    assert.deepEqual(d.removed, ['a.test']);
    assert.deepEqual(
      d.changed.map((c) => [c.zone.name, c.fields]),
      [['b.test', ['primaries']]],
    );
    assert.equal(d.changed[0].zone.primaries[0].address, '192.0.2.2');
    assert.deepEqual(d.restart, []);
  });

  test('a change in defaults is a change of every zone that inherits it', () => {
    const d = diff((c) => {
      (c as Record<string, unknown>).defaults = { allowTransfer: ['192.0.2.9'], refreshMax: 600 };
      (c.zones[1] as Record<string, unknown>).allowTransfer = [];
    });
    assert.deepEqual(
      d.changed.map((c) => [c.zone.name, c.fields]),
      [
        ['a.test', ['allowTransfer', 'refreshMax']],
        ['b.test', ['refreshMax']],
      ],
    );
  });

  test('keys: a changed secret, a new key and a removed key are named; secrets never appear', () => {
    const d = diff((c) => {
      c.keys['xfr-key'].secret = SECRET_B;
      (c.keys as Record<string, unknown>)['other-key'] = { algorithm: 'hmac-sha512', secret: SECRET_A };
    });
    assert.deepEqual(d.keys, ['other-key', 'xfr-key']);
    assert.deepEqual(d.changed, []);
    assert.doesNotMatch(JSON.stringify(d), new RegExp(SECRET_B.slice(0, 12)));
    const gone = diff((c) => {
      (c as Record<string, unknown>).keys = {};
      delete (c.zones[0].primaries[0] as Record<string, unknown>).key;
    });
    assert.deepEqual(gone.keys, ['xfr-key']);
    assert.deepEqual(
      gone.changed.map((c) => c.zone.name),
      ['a.test'],
    );
  });

  test('listen, workers, database and control need a restart; logLevel is applied live', () => {
    const d = diff((c) => {
      c.listen = [{ address: '127.0.0.1', port: 5354 }];
      c.workers = 2;
      c.database = '/tmp/other.db';
      c.control = { address: '127.0.0.1', port: 8054 };
      (c as Record<string, unknown>).logLevel = 'debug';
    });
    assert.deepEqual(d.restart, ['control', 'database', 'listen', 'workers']);
    assert.deepEqual(d.live, ['logLevel']);
    assert.ok(LIVE_KEYS.has('zones') && LIVE_KEYS.has('keys'));
  });

  test('a key appearing or disappearing counts as a change (control removed)', () => {
    const d = diff((c) => {
      delete (c as Record<string, unknown>).control;
    });
    assert.deepEqual(d.restart, ['control']);
  });

  test('a top-level key not known to be live needs a restart', () => {
    const running = parseConfig(base());
    const next = { ...parseConfig(base()), someFutureKey: { on: true } } as typeof running;
    assert.deepEqual(diffConfig(running, next).restart, ['someFutureKey']);
  });
});
