import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, memberConfig, parseConfig } from '../../src/config.js';
import { makeCa } from '../harness/certs.js';

const EXAMPLE = fileURLToPath(new URL('../../config.example.json', import.meta.url));
const SECRET = 'c2VjcmV0LXNlY3JldC1zZWNyZXQ='; // base64("secret-secret-secret")

const dir = mkdtempSync(join(tmpdir(), 'ns2-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A minimal valid zone, overridable. */
const zone = (extra: Record<string, unknown> = {}) => ({
  name: 'example.com',
  primaries: [{ address: '192.0.2.1' }],
  ...extra,
});

/** The problems parseConfig reports for `raw`; fails if it does not throw a ConfigError. */
function problemsOf(raw: unknown, baseDir?: string): string[] {
  try {
    parseConfig(raw, baseDir);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err.problems;
  }
  assert.fail('parseConfig accepted an invalid config');
}

/** Asserts `raw` yields exactly `expected` problems. */
function rejects(raw: unknown, expected: string[]) {
  assert.deepEqual(problemsOf(raw), expected);
}

function writeFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('defaults', () => {
  test('an empty object is a valid config with every default', () => {
    const config = parseConfig({});
    assert.deepEqual(config.listen, [{ address: '127.0.0.1', port: 53 }]);
    assert.equal(config.database, resolve('data/ns2.db'));
    assert.equal(config.logLevel, 'info');
    assert.equal(config.udpSize, 1232);
    assert.equal(config.tcpIdleSeconds, 10);
    assert.equal(config.control, undefined);
    assert.equal(config.keys.size, 0);
    assert.deepEqual(config.zones, []);
  });

  test('a zone with only name and primaries gets every built-in default', () => {
    const config = parseConfig({ zones: [zone()] });
    assert.deepEqual(config.zones[0], {
      name: 'example.com',
      primaries: [{ address: '192.0.2.1', port: 53 }],
      allowNotify: [],
      allowTransfer: [],
      requireTls: false,
      alsoNotify: [],
      transfer: 'ixfr',
      notify: 'explicit',
      refreshMin: 2,
      retryMin: 2,
      expireMin: 2,
      maxRecords: 5_000_000,
      maxTransferBytes: 1_000_000_000,
      maxTransferSeconds: 3600,
      maxIdleSeconds: 60,
      maxRecordsPerType: 100,
      maxTypesPerName: 100,
      historyLimit: 100,
      minimalResponses: 'no-auth-recursive',
      minimalAny: false,
    });
  });

  test('minimalResponses and minimalAny: the values BIND takes, zone over defaults, bad values named', () => {
    const config = parseConfig({
      defaults: { minimalResponses: 'yes', minimalAny: true },
      zones: [
        zone({ name: 'a.test' }),
        zone({ name: 'b.test', minimalResponses: 'no-auth', minimalAny: false }),
      ],
    });
    assert.deepEqual(
      config.zones.map((z) => [z.minimalResponses, z.minimalAny]),
      [
        ['yes', true],
        ['no-auth', false],
      ],
    );
    assert.throws(
      () => parseConfig({ zones: [zone({ minimalResponses: 'sometimes', minimalAny: 'yes' })] }),
      (e: Error) =>
        /zones\[0\]\.minimalResponses/.test(e.message) && /zones\[0\]\.minimalAny/.test(e.message),
    );
  });

  test('transfer guards: per-type and per-name limits, maxDeletePercent off by default', () => {
    const config = parseConfig({
      defaults: { maxRecordsPerType: 20, maxDeletePercent: 12.5 },
      zones: [zone({ name: 'a.test', maxTypesPerName: 7 }), zone({ name: 'b.test', maxDeletePercent: 0 })],
    });
    const [a, b] = config.zones;
    assert.equal(a.maxRecordsPerType, 20);
    assert.equal(a.maxTypesPerName, 7);
    assert.equal(a.maxDeletePercent, 12.5);
    assert.equal(b.maxTypesPerName, 100);
    assert.equal(b.maxDeletePercent, 0);
    assert.equal('maxDeletePercent' in parseConfig({ zones: [zone()] }).zones[0], false);
    assert.throws(
      () =>
        parseConfig({ zones: [zone({ maxRecordsPerType: 0, maxTypesPerName: 2.5, maxDeletePercent: 101 })] }),
      {
        problems: [
          'zones[0].maxRecordsPerType: expected an integer >= 1, got 0',
          'zones[0].maxTypesPerName: expected an integer >= 1, got 2.5',
          'zones[0].maxDeletePercent: expected a number 0..100 (percent), got 101',
        ],
      },
    );
  });

  test('zone value > defaults value > built-in default', () => {
    const config = parseConfig({
      defaults: { transfer: 'axfr', maxRecords: 100, refreshMax: 600, allowTransfer: ['10.0.0.0/8'] },
      zones: [zone({ name: 'a.test', maxRecords: 5 }), zone({ name: 'b.test', transfer: 'ixfr' })],
    });
    const [a, b] = config.zones;
    assert.equal(a.maxRecords, 5); // zone
    assert.equal(a.transfer, 'axfr'); // defaults
    assert.equal(a.refreshMax, 600); // defaults
    assert.deepEqual(a.allowTransfer, ['10.0.0.0/8']); // defaults
    assert.equal(a.maxIdleSeconds, 60); // built-in
    assert.equal(a.retryMax, undefined); // built-in: no maximum
    assert.equal(b.maxRecords, 100); // defaults
    assert.equal(b.transfer, 'ixfr'); // zone
  });

  test('listen and alsoNotify ports default to 53', () => {
    const config = parseConfig({
      listen: [{ address: '::1' }],
      zones: [zone({ alsoNotify: [{ address: '192.0.2.9' }] })],
    });
    assert.deepEqual(config.listen, [{ address: '::1', port: 53 }]);
    assert.deepEqual(config.zones[0].alsoNotify, [{ address: '192.0.2.9', port: 53 }]);
  });

  test('database is resolved against the cwd; ":memory:" is kept', () => {
    assert.equal(
      parseConfig({ database: 'x/y.db' }, '/elsewhere').database,
      resolve(process.cwd(), 'x/y.db'),
    );
    assert.equal(parseConfig({ database: ':memory:' }).database, ':memory:');
  });

  test('the result is frozen', () => {
    const config = parseConfig({ zones: [zone()] });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.zones[0]));
    assert.ok(Object.isFrozen(config.zones[0].primaries[0]));
    assert.ok(Object.isFrozen(config.listen));
  });
});

describe('names', () => {
  test('zone and key names are normalised: lower case, no trailing dot', () => {
    const config = parseConfig({
      keys: { 'XFR-Key.': { algorithm: 'hmac-sha256', secret: SECRET } },
      zones: [
        zone({
          name: 'Example.COM.',
          primaries: [{ address: '192.0.2.1', key: 'xfr-KEY.' }],
          allowNotify: ['key:Xfr-Key'],
          alsoNotify: [{ address: '192.0.2.2', port: 5300, key: 'xfr-key' }],
        }),
      ],
    });
    assert.deepEqual([...config.keys.keys()], ['xfr-key']);
    const key = config.keys.get('xfr-key')!;
    assert.equal(key.name, 'xfr-key');
    assert.equal(key.algorithm, 'hmac-sha256');
    assert.deepEqual(key.secret, Buffer.from('secret-secret-secret'));
    const z = config.zones[0];
    assert.equal(z.name, 'example.com');
    assert.deepEqual(z.primaries, [{ address: '192.0.2.1', port: 53, key: 'xfr-key' }]);
    assert.deepEqual(z.allowNotify, ['key:xfr-key']);
    assert.deepEqual(z.alsoNotify, [{ address: '192.0.2.2', port: 5300, key: 'xfr-key' }]);
  });

  test('label and name length limits', () => {
    const label63 = 'a'.repeat(63);
    const name253 = [label63, label63, label63, 'a'.repeat(61)].join('.');
    assert.equal(name253.length, 253);
    assert.equal(parseConfig({ zones: [zone({ name: name253 })] }).zones[0].name, name253);
    rejects({ zones: [zone({ name: `${name253}a` })] }, [
      `zones[0].name: expected a domain name, got "${name253.slice(0, 77)}..." (254 characters, at most 253 allowed)`,
    ]);
    rejects({ zones: [zone({ name: `${'b'.repeat(64)}.test` })] }, [
      `zones[0].name: expected a domain name, got "${'b'.repeat(64)}.test" (label of 64 characters, at most 63 allowed)`,
    ]);
  });

  test('RFC 2317 and underscore labels are accepted', () => {
    const config = parseConfig({
      zones: [zone({ name: '0/25.2.0.192.in-addr.arpa' }), zone({ name: '_tcp.test' })],
    });
    assert.deepEqual(
      config.zones.map((z) => z.name),
      ['0/25.2.0.192.in-addr.arpa', '_tcp.test'],
    );
  });
});

describe('problems', () => {
  test('identity answers must be strings, and only version/hostname', () => {
    rejects({ identity: { version: 5, nope: 1 } }, [
      'identity.version: expected a string, got 5',
      'identity.nope: unknown key',
    ]);
  });

  test('port given as a string', () => {
    rejects(
      { zones: [zone(), zone({ name: 'b.test', primaries: [{ address: '192.0.2.1', port: '53x' }] })] },
      ['zones[1].primaries[0].port: expected an integer 1..65535, got "53x"'],
    );
    rejects({ listen: [{ address: '127.0.0.1', port: '53' }] }, [
      'listen[0].port: expected an integer 1..65535, got "53"',
    ]);
  });

  test('port out of range or not an integer', () => {
    rejects(
      {
        listen: [
          { address: '127.0.0.1', port: 0 },
          { address: '::1', port: 65536 },
        ],
      },
      [
        'listen[0].port: expected an integer 1..65535, got 0',
        'listen[1].port: expected an integer 1..65535, got 65536',
      ],
    );
    rejects({ listen: [{ address: '127.0.0.1', port: 53.5 }] }, [
      'listen[0].port: expected an integer 1..65535, got 53.5',
    ]);
    rejects({ listen: [{ address: '127.0.0.1', port: 1e20 }] }, [
      'listen[0].port: expected an integer 1..65535, got 100000000000000000000',
    ]);
  });

  test('unknown keys, at every level', () => {
    rejects(
      {
        lisen: [],
        listen: [{ address: '127.0.0.1', prot: 53 }],
        control: { address: '127.0.0.1', port: 8053, tls: true },
        keys: { k: { algorithm: 'hmac-sha256', secret: SECRET, comment: 'x' } },
        defaults: { name: 'x', primaries: [] },
        zones: [zone({ nmae: 'x', primaries: [{ address: '192.0.2.1', keyname: 'k' }] })],
      },
      [
        'lisen: unknown key',
        'listen[0].prot: unknown key',
        'control.tls: unknown key',
        'keys.k.comment: unknown key',
        'defaults.name: unknown key',
        'defaults.primaries: unknown key',
        'zones[0].primaries[0].keyname: unknown key',
        'zones[0].nmae: unknown key',
      ],
    );
  });

  test('metrics listener: both fields, not on the control port', () => {
    assert.deepEqual(parseConfig({ metrics: { address: '::', port: 9153 } }).metrics, {
      address: '::',
      port: 9153,
    });
    rejects({ metrics: { port: 9153, path: '/m' } }, [
      'metrics.path: unknown key',
      'metrics.address: required',
    ]);
    rejects(
      { control: { address: '127.0.0.1', port: 8053 }, metrics: { address: '127.0.0.1', port: 8053 } },
      ['metrics.port: same address and port as "control" (127.0.0.1 8053)'],
    );
  });

  test('required keys', () => {
    rejects(
      {
        control: {},
        keys: { k: { secret: SECRET } },
        zones: [{ name: 'a.test' }, { primaries: [{ port: 53 }] }],
      },
      [
        'control.address: required',
        'control.port: required',
        'keys.k.algorithm: required',
        'zones[0].primaries: required',
        'zones[1].primaries[0].address: required',
        'zones[1].name: required',
      ],
    );
  });

  test('wrong types', () => {
    rejects(
      {
        listen: { address: '127.0.0.1' },
        database: 5,
        keys: [],
        defaults: null,
        zones: [zone({ primaries: ['192.0.2.1'], allowNotify: '192.0.2.1' }), 'b.test'],
      },
      [
        'listen: expected an array, got an object',
        'database: expected a file path, got 5',
        'keys: expected an object, got []',
        'defaults: expected an object, got null',
        'zones[0].primaries[0]: expected an object, got "192.0.2.1"',
        'zones[0].allowNotify: expected an array, got "192.0.2.1"',
        'zones[1]: expected an object, got "b.test"',
      ],
    );
  });

  test('the top level must be an object', () => {
    rejects([], ['(root): expected an object, got []']);
    rejects(null, ['(root): expected an object, got null']);
    rejects('config', ['(root): expected an object, got "config"']);
  });

  test('listen must be non-empty, without duplicates, with IP literals', () => {
    rejects({ listen: [] }, ['listen: expected a non-empty array, got []']);
    rejects({ listen: [{ address: '127.0.0.1', port: 53 }, { address: '127.0.0.1' }] }, [
      'listen[1]: duplicate address 127.0.0.1 port 53 (also listen[0])',
    ]);
    rejects({ listen: [{ address: 'localhost' }] }, [
      'listen[0].address: expected an IP address, got "localhost" (not an IPv4 or IPv6 literal)',
    ]);
  });

  test('enums list what is accepted', () => {
    rejects({ logLevel: 'verbose', zones: [zone({ transfer: 'IXFR', notify: true })] }, [
      'logLevel: expected one of "fatal", "error", "warn", "info", "debug", "trace", got "verbose"',
      'zones[0].transfer: expected one of "ixfr", "axfr", got "IXFR"',
      'zones[0].notify: expected one of "explicit", "yes", "no", got true',
    ]);
  });

  test('integer ranges', () => {
    rejects(
      {
        udpSize: 511,
        tcpIdleSeconds: 3601,
        defaults: { maxRecords: 0 },
        zones: [zone({ refreshMin: -1, maxTransferBytes: 1.5, maxIdleSeconds: '60' })],
      },
      [
        'udpSize: expected an integer 512..4096, got 511',
        'tcpIdleSeconds: expected an integer 1..3600, got 3601',
        'defaults.maxRecords: expected an integer >= 1, got 0',
        'zones[0].refreshMin: expected an integer >= 1, got -1',
        'zones[0].maxTransferBytes: expected an integer >= 1, got 1.5',
        'zones[0].maxIdleSeconds: expected an integer >= 1, got "60"',
      ],
    );
  });

  test('zone names', () => {
    rejects(
      {
        zones: [
          zone({ name: 'a..b' }),
          zone({ name: '.' }),
          zone({ name: '' }),
          zone({ name: 'ex ample.com' }),
          zone({ name: 42 }),
        ],
      },
      [
        'zones[0].name: expected a domain name, got "a..b" (empty label)',
        'zones[1].name: expected a domain name, got "." (the root is not allowed)',
        'zones[2].name: expected a domain name, got "" (the root is not allowed)',
        'zones[3].name: expected a domain name, got "ex ample.com" (character " " not allowed)',
        'zones[4].name: expected a domain name, got 42',
      ],
    );
  });

  test('duplicate zones, compared after normalisation', () => {
    rejects({ zones: [zone(), zone({ name: 'other.test' }), zone({ name: 'Example.COM.' })] }, [
      'zones[2].name: duplicate zone "example.com" (also zones[0])',
    ]);
  });

  test('primaries must be non-empty', () => {
    rejects({ zones: [zone({ primaries: [] })] }, ['zones[0].primaries: expected a non-empty array, got []']);
  });

  test('key references must name a key in keys', () => {
    rejects(
      {
        keys: { 'xfr-key': { algorithm: 'hmac-sha256', secret: SECRET } },
        defaults: { alsoNotify: [{ address: '192.0.2.5', key: 'nope' }] },
        zones: [
          zone({
            primaries: [{ address: '192.0.2.1', key: 'xfr' }],
            allowNotify: ['key:xfr-key', 'key:other'],
            allowTransfer: ['key:Missing.'],
          }),
        ],
      },
      [
        'defaults.alsoNotify[0].key: unknown key "nope" (not in keys)',
        'zones[0].primaries[0].key: unknown key "xfr" (not in keys)',
        'zones[0].allowNotify[1]: unknown key "other" (not in keys)',
        'zones[0].allowTransfer[0]: unknown key "missing" (not in keys)',
      ],
    );
  });

  test('ACL entries', () => {
    const ok = parseConfig({
      zones: [
        zone({ allowTransfer: ['192.0.2.1', '2001:db8::1', '192.0.2.0/24', '2001:db8::/32', '0.0.0.0/0'] }),
      ],
    });
    assert.equal(ok.zones[0].allowTransfer.length, 5);
    const expected = 'expected an IP address, CIDR prefix or "key:NAME"';
    rejects(
      {
        zones: [zone({ allowNotify: ['192.0.2.0/33', '2001:db8::/129', 'host.test', 'x/8', 'key:a..b', 1] })],
      },
      [
        `zones[0].allowNotify[0]: ${expected}, got "192.0.2.0/33" (prefix length must be 0..32)`,
        `zones[0].allowNotify[1]: ${expected}, got "2001:db8::/129" (prefix length must be 0..128)`,
        `zones[0].allowNotify[2]: ${expected}, got "host.test" (not an IP address)`,
        `zones[0].allowNotify[3]: ${expected}, got "x/8" (not an IP address before "/")`,
        `zones[0].allowNotify[4]: ${expected}, got "key:a..b" (key name: empty label)`,
        `zones[0].allowNotify[5]: ${expected}, got 1`,
      ],
    );
  });

  test('allowTransfer entries may require TLS ("tls:" prefix); allowNotify ones may not', () => {
    const ok = parseConfig({
      keys: { 'Xfr.': { algorithm: 'hmac-sha256', secret: SECRET } },
      zones: [zone({ allowTransfer: ['tls:192.0.2.54', 'tls:key:XFR.', 'tls:10.0.0.0/8', '192.0.2.1'] })],
    });
    assert.deepEqual(ok.zones[0].allowTransfer, [
      'tls:192.0.2.54',
      'tls:key:xfr',
      'tls:10.0.0.0/8',
      '192.0.2.1',
    ]);
    const expected = 'expected an IP address, CIDR prefix or "key:NAME", optionally prefixed "tls:"';
    rejects(
      {
        zones: [zone({ allowTransfer: ['tls:host.test', 'tls:key:nokey'], allowNotify: ['tls:192.0.2.1'] })],
      },
      [
        `zones[0].allowTransfer[0]: ${expected}, got "tls:host.test" (not an IP address)`,
        'zones[0].allowTransfer[1]: unknown key "nokey" (not in keys)',
        'zones[0].allowNotify[0]: expected an IP address, CIDR prefix or "key:NAME", got "tls:192.0.2.1" (not an IP address)',
      ],
    );
    rejects({ zones: [zone({ requireTls: 'yes' })] }, [
      'zones[0].requireTls: expected true or false, got "yes"',
    ]);
    assert.equal(parseConfig({ defaults: { requireTls: true }, zones: [zone()] }).zones[0].requireTls, true);
  });

  test('primaries[].tls: port 853 unless given, files resolved and loaded, caFile or pin', () => {
    const pem = writeFile('not-a-cert.pem', 'hello\n');
    const pin = `sha256/${Buffer.alloc(32, 7).toString('base64')}`;
    const c = parseConfig(
      {
        zones: [
          zone({
            primaries: [
              { address: '192.0.2.1', tls: { pin, serverName: 'Primary.Test.' } },
              { address: '192.0.2.2', port: 8853, tls: { pin } },
              { address: '192.0.2.3' },
            ],
          }),
        ],
      },
      dir,
    );
    assert.deepEqual(c.zones[0].primaries, [
      { address: '192.0.2.1', port: 853, tls: { pin, serverName: 'primary.test' } },
      { address: '192.0.2.2', port: 8853, tls: { pin } },
      { address: '192.0.2.3', port: 53 },
    ]);
    const problems = problemsOf(
      {
        zones: [
          zone({
            primaries: [
              { address: '192.0.2.1', tls: {} },
              { address: '192.0.2.1', tls: { pin: 'sha1/abc', certFile: 'missing.pem' } },
              { address: '192.0.2.1', tls: { caFile: 'not-a-cert.pem', bogus: 1 } },
            ],
            alsoNotify: [{ address: '192.0.2.9', tls: { pin } }],
          }),
        ],
      },
      dir,
    );
    assert.deepEqual(problems, [
      'zones[0].primaries[0].tls: expected caFile or pin (or both): how else is the primary authenticated?',
      'zones[0].primaries[1].tls: expected certFile and keyFile together (mutual TLS), got only one',
      'zones[0].primaries[1].tls.pin: expected "sha256/<base64 SPKI hash>", got "sha1/abc" (must start with "sha256/")',
      `zones[0].primaries[1].tls.certFile: cannot read ${JSON.stringify(join(dir, 'missing.pem'))} (ENOENT)`,
      'zones[0].primaries[2].tls.caFile: expected PEM CA certificates, got a file that does not load (no start line)',
      'zones[0].primaries[2].tls.bogus: unknown key',
      'zones[0].alsoNotify[0].tls: unknown key',
    ]);
    assert.ok(pem);
  });

  test('catalogs[].primaries[].tls: as a zone primary, for the catalog and inherited by its members', () => {
    writeFile('cat-ca.pem', 'not a certificate\n');
    const pin = `sha256/${Buffer.alloc(32, 9).toString('base64')}`;
    const c = parseConfig(
      {
        catalogs: [
          {
            name: 'catalog.test',
            primaries: [{ address: '192.0.2.1', tls: { pin, serverName: 'primary.test' } }],
            groups: { g: { maxRecords: 10 } },
          },
        ],
      },
      dir,
    );
    const primaries = [{ address: '192.0.2.1', port: 853, tls: { pin, serverName: 'primary.test' } }];
    assert.deepEqual(c.catalogs[0].zone.primaries, primaries);
    assert.deepEqual(memberConfig(c.catalogs[0], 'member.test', ['g']).primaries, primaries);
    assert.deepEqual(
      problemsOf(
        {
          catalogs: [
            {
              name: 'catalog.test',
              primaries: [
                { address: '192.0.2.1', tls: { serverName: 'primary.test' } },
                { address: '192.0.2.1', tls: { caFile: 'cat-ca.pem', keyFile: 'k.pem' } },
              ],
            },
          ],
        },
        dir,
      ),
      [
        'catalogs[0].primaries[0].tls: expected caFile or pin (or both): how else is the primary authenticated?',
        'catalogs[0].primaries[1].tls: expected certFile and keyFile together (mutual TLS), got only one',
        'catalogs[0].primaries[1].tls.caFile: expected PEM CA certificates, got a file that does not load (no start line)',
        `catalogs[0].primaries[1].tls.keyFile: cannot read ${JSON.stringify(join(dir, 'k.pem'))} (ENOENT)`,
      ],
    );
  });

  test('tlsListen: port 853 by default, paths resolved, files must load, no clash with listen', async () => {
    const ca = await makeCa(join(dir, 'ca'));
    const pair = await ca.issue('srv', 'ns2.test');
    const c = parseConfig(
      { tlsListen: [{ address: '127.0.0.1', certFile: 'ca/srv.pem', keyFile: 'ca/srv.key' }] },
      dir,
    );
    assert.deepEqual(c.tlsListen, [{ address: '127.0.0.1', port: 853, ...pair }]);
    assert.deepEqual(parseConfig({}).tlsListen, []);
    assert.deepEqual(
      problemsOf(
        {
          listen: [{ address: '127.0.0.1', port: 853 }],
          tlsListen: [
            { address: '127.0.0.1', certFile: 'ca/srv.pem', keyFile: 'ca/ca.key' },
            { address: '127.0.0.1', port: 8853, certFile: 'nope.pem' },
          ],
        },
        dir,
      ),
      [
        'tlsListen[0]: duplicate address 127.0.0.1 port 853 (also listen[0])',
        'tlsListen[0]: certFile and keyFile do not load as a certificate and its key (key values mismatch)',
        `tlsListen[1].certFile: cannot read ${JSON.stringify(join(dir, 'nope.pem'))} (ENOENT)`,
        'tlsListen[1].keyFile: required',
      ],
    );
  });

  test('a Min above its Max, wherever each was set', () => {
    rejects({ zones: [zone({ refreshMin: 600, refreshMax: 300 })] }, [
      'zones[0].refreshMin: expected at most refreshMax (300), got 600',
    ]);
    rejects({ defaults: { retryMax: 300 }, zones: [zone({ retryMin: 600 })] }, [
      'zones[0].retryMin: expected at most retryMax (300, from defaults), got 600',
    ]);
    rejects({ defaults: { expireMin: 600 }, zones: [zone({ expireMax: 300 })] }, [
      'zones[0].expireMax: expected at least expireMin (600, from defaults), got 300',
    ]);
    rejects({ zones: [zone({ refreshMax: 1 })] }, [
      'zones[0].refreshMax: expected at least refreshMin (2, built-in default), got 1',
    ]);
    // Reported once, on defaults, not again on every zone that inherits both.
    rejects({ defaults: { retryMin: 600, retryMax: 300 }, zones: [zone(), zone({ name: 'b.test' })] }, [
      'defaults.retryMin: expected at most retryMax (300), got 600',
    ]);
    // A zone overriding one side fixes it for that zone only.
    const config = parseConfig({
      defaults: { refreshMin: 60 },
      zones: [zone({ refreshMin: 10, refreshMax: 30 })],
    });
    assert.equal(config.zones[0].refreshMax, 30);
  });

  test('every problem is reported at once, in document order', () => {
    rejects(
      {
        zones: [zone({ name: 'a..b', primaries: [{ address: '192.0.2.1', port: 0, key: 'k' }] })],
        logLevel: 'loud',
        listen: [],
      },
      [
        'zones[0].name: expected a domain name, got "a..b" (empty label)',
        'zones[0].primaries[0].port: expected an integer 1..65535, got 0',
        'zones[0].primaries[0].key: unknown key "k" (not in keys)',
        'logLevel: expected one of "fatal", "error", "warn", "info", "debug", "trace", got "loud"',
        'listen: expected a non-empty array, got []',
      ],
    );
  });

  test('ConfigError carries a code and a one-line message', () => {
    try {
      parseConfig({ udpSize: 1 });
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'NS2_ERR_CONFIG');
      assert.equal(err.message, 'invalid config (1 problem): udpSize: expected an integer 512..4096, got 1');
      assert.ok(!err.message.includes('\n'));
    }
  });
});

describe('keys', () => {
  test('key names must be domain names, unique after normalisation', () => {
    rejects(
      {
        keys: {
          'bad key': { algorithm: 'hmac-sha256', secret: SECRET },
          'xfr-key': { algorithm: 'hmac-sha256', secret: SECRET },
          'XFR-KEY.': { algorithm: 'hmac-sha256', secret: SECRET },
        },
      },
      [
        'keys["bad key"]: expected a key name (a domain name), got "bad key" (character " " not allowed)',
        'keys["XFR-KEY."]: duplicate key "xfr-key" (also keys["xfr-key"])',
      ],
    );
  });

  test('algorithm must be a TSIG HMAC', () => {
    rejects({ keys: { k: { algorithm: 'md5', secret: SECRET } } }, [
      'keys.k.algorithm: expected one of "hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512", got "md5"',
    ]);
  });

  test('exactly one of secret, secretFile, secretEnv', () => {
    rejects(
      {
        keys: {
          none: { algorithm: 'hmac-sha256' },
          two: { algorithm: 'hmac-sha256', secret: SECRET, secretEnv: 'X' },
        },
      },
      [
        'keys.none: expected exactly one of secret, secretFile, secretEnv, got none',
        'keys.two: expected exactly one of secret, secretFile, secretEnv, got secret and secretEnv',
      ],
    );
  });

  test('an inline secret must be base64', () => {
    rejects({ keys: { k: { algorithm: 'hmac-sha256', secret: 'not base64!' } } }, [
      'keys.k.secret: expected a base64 secret, got a string that is not valid base64',
    ]);
    rejects({ keys: { k: { algorithm: 'hmac-sha256', secret: '' } } }, [
      'keys.k.secret: expected a base64 secret, got an empty string',
    ]);
    rejects({ keys: { k: { algorithm: 'hmac-sha256', secret: 12345 } } }, [
      'keys.k.secret: expected a base64 string, got a number',
    ]);
  });

  test('secretFile is read relative to baseDir, whitespace trimmed', () => {
    mkdirSync(join(dir, 'keys'), { recursive: true });
    writeFile('keys/xfr.b64', `${SECRET}\n`);
    const raw = { keys: { xfr: { algorithm: 'hmac-sha512', secretFile: 'keys/xfr.b64' } } };
    assert.deepEqual(parseConfig(raw, dir).keys.get('xfr')!.secret, Buffer.from('secret-secret-secret'));
    const abs = { keys: { xfr: { algorithm: 'hmac-sha512', secretFile: join(dir, 'keys/xfr.b64') } } };
    assert.equal(parseConfig(abs, '/nonexistent').keys.get('xfr')!.secret.length, 20);
  });

  test('an unreadable or malformed secretFile is a problem naming the key', () => {
    const missing = join(dir, 'missing.b64');
    assert.deepEqual(
      problemsOf({ keys: { k: { algorithm: 'hmac-sha256', secretFile: 'missing.b64' } } }, dir),
      [`keys.k.secretFile: cannot read ${JSON.stringify(missing)} (ENOENT)`],
    );
    const bad = writeFile('bad.b64', 'TOP-SECRET-FILE-CONTENT!\n');
    const problems = problemsOf({ keys: { k: { algorithm: 'hmac-sha256', secretFile: bad } } });
    assert.deepEqual(problems, [
      `keys.k.secretFile: expected a base64 secret in file ${JSON.stringify(bad)}, got a string that is not valid base64`,
    ]);
    rejects({ keys: { k: { algorithm: 'hmac-sha256', secretFile: '' } } }, [
      'keys.k.secretFile: expected a file path, got ""',
    ]);
  });

  test('secretEnv reads the environment', (t) => {
    process.env.NS2_TEST_SECRET = ` ${SECRET} `;
    t.after(() => delete process.env.NS2_TEST_SECRET);
    const config = parseConfig({ keys: { k: { algorithm: 'hmac-sha1', secretEnv: 'NS2_TEST_SECRET' } } });
    assert.deepEqual(config.keys.get('k')!.secret, Buffer.from('secret-secret-secret'));
  });

  test('an unset, malformed or misnamed secretEnv is a problem naming the key', (t) => {
    delete process.env.NS2_TEST_UNSET;
    process.env.NS2_TEST_BAD = 'TOP-SECRET-ENV-CONTENT!';
    t.after(() => delete process.env.NS2_TEST_BAD);
    rejects(
      {
        keys: {
          a: { algorithm: 'hmac-sha256', secretEnv: 'NS2_TEST_UNSET' },
          b: { algorithm: 'hmac-sha256', secretEnv: 'NS2_TEST_BAD' },
          c: { algorithm: 'hmac-sha256', secretEnv: 'NOT-A-NAME' },
        },
      },
      [
        'keys.a.secretEnv: environment variable NS2_TEST_UNSET is not set',
        'keys.b.secretEnv: expected a base64 secret in environment variable NS2_TEST_BAD, got a string that is not valid base64',
        'keys.c.secretEnv: expected an environment variable name, got "NOT-A-NAME" (letters, digits and "_" only)',
      ],
    );
  });

  test('a secret never appears in any ConfigError', (t) => {
    const secret = 'TOPSECRET-value-1234';
    process.env.NS2_TEST_LEAK = secret;
    t.after(() => delete process.env.NS2_TEST_LEAK);
    const leakFile = writeFile('leak.b64', secret);
    const validSecret = Buffer.from(secret).toString('base64');
    const cases: unknown[] = [
      { keys: { k: { algorithm: 'hmac-sha256', secret } } },
      { keys: { k: { algorithm: 'hmac-sha256', secret: `${validSecret}!` } } },
      { keys: { k: { algorithm: 'hmac-sha256', secret: [secret] } } },
      { keys: { k: { algorithm: 'hmac-sha256', secret: { value: secret } } } },
      { keys: { k: { algorithm: 'hmac-sha256', secretEnv: 'NS2_TEST_LEAK' } } },
      { keys: { k: { algorithm: 'hmac-sha256', secretFile: leakFile } } },
      { keys: { k: { algorithm: 'hmac-sha256', secret: validSecret, secretFile: leakFile } } },
      { keys: { k: { algorithm: 'bogus', secret: validSecret } }, zones: [zone({ name: 'a..b' })] },
    ];
    for (const raw of cases) {
      try {
        parseConfig(raw);
        assert.fail(`accepted ${JSON.stringify(raw)}`);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        for (const text of [err.message, ...err.problems, String(err.stack)]) {
          assert.ok(!text.includes(secret), `secret leaked: ${text}`);
          assert.ok(!text.includes(validSecret), `secret leaked: ${text}`);
        }
      }
    }
    // The JSON syntax error path quotes no surrounding text either.
    const file = writeFile(
      'leak.json',
      `{ "keys": { "k": { "algorithm": "hmac-sha256", "secret": "${secret}" x } } }`,
    );
    assert.throws(
      () => loadConfig(file),
      (err: unknown) => err instanceof ConfigError && !err.message.includes(secret),
    );
  });
});

describe('loadConfig', () => {
  test('config.example.json loads', () => {
    const config = loadConfig(EXAMPLE);
    assert.deepEqual(config.listen, [{ address: '127.0.0.1', port: 5353 }]);
    assert.deepEqual(config.control, { address: '127.0.0.1', port: 8053 });
    assert.deepEqual(config.metrics, { address: '127.0.0.1', port: 9153 });
    assert.equal(config.keys.get('xfr-key')!.algorithm, 'hmac-sha256');
    assert.equal(config.keys.get('xfr-key')!.secret.length, 32);
    assert.equal(config.zones.length, 2);
    assert.equal(config.zones[0].name, 'example.test');
    assert.deepEqual(config.zones[0].primaries, [{ address: '127.0.0.1', port: 5300, key: 'xfr-key' }]);
    const demo = (f: string) => fileURLToPath(new URL(`../../demo/tls/${f}`, import.meta.url));
    assert.equal(config.zones[1].primaries[0].tls?.caFile, demo('ca.pem'));
    assert.equal(config.zones[1].requireTls, true);
    assert.deepEqual(config.tlsListen, [
      { address: '127.0.0.1', port: 8853, certFile: demo('ns2.pem'), keyFile: demo('ns2.key') },
    ]);
  });

  test('config.example.json sets every documented key', async () => {
    const { readFileSync } = await import('node:fs');
    const raw = JSON.parse(readFileSync(EXAMPLE, 'utf8'));
    const doc = readFileSync(fileURLToPath(new URL('../../docs/config.md', import.meta.url)), 'utf8');
    const documented = [...doc.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);
    const used = new Set<string>();
    const walk = (v: unknown, inKeys = false) => {
      if (Array.isArray(v)) for (const x of v) walk(x);
      else if (typeof v === 'object' && v !== null) {
        for (const [k, x] of Object.entries(v)) {
          if (!inKeys) used.add(k);
          walk(x, k === 'keys' && !inKeys);
        }
      }
    };
    walk(raw);
    // A key entry holds one secret source; the other two are alternatives.
    const missing = documented.filter((k) => !used.has(k) && k !== 'secretFile' && k !== 'secretEnv');
    assert.deepEqual(missing, []);
  });

  test('secretFile is relative to the config file directory', () => {
    mkdirSync(join(dir, 'etc/keys'), { recursive: true });
    writeFile('etc/keys/k.b64', SECRET);
    const file = writeFile(
      'etc/ns2.json',
      JSON.stringify({ keys: { k: { algorithm: 'hmac-sha256', secretFile: 'keys/k.b64' } } }),
    );
    assert.equal(loadConfig(file).keys.get('k')!.secret.toString(), 'secret-secret-secret');
  });

  test('problems from a file carry the file name in the message', () => {
    const file = writeFile('bad-port.json', '{ "listen": [{ "address": "127.0.0.1", "port": "53" }] }');
    assert.throws(
      () => loadConfig(file),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.file === file &&
        err.message.startsWith(`${file}: invalid config (1 problem): `) &&
        err.problems[0] === 'listen[0].port: expected an integer 1..65535, got "53"',
    );
  });

  test('JSON syntax errors name the file, line and column', () => {
    const cases: [string, string, string][] = [
      [
        'trailing-comma.json',
        '{\n  "logLevel": "info",\n}\n',
        '3:1: invalid JSON (Expected double-quoted property name)',
      ],
      ['bad-token.json', '{\n  "a": tru}', "2:11: invalid JSON (Unexpected token '}')"],
      ['newline-token.json', '{\n  "a": tru\n}', "2:11: invalid JSON (Unexpected token '\\n')"],
      [
        'missing-comma.json',
        '{\n  "a": 1\n  "b": 2\n}',
        "3:3: invalid JSON (Expected ',' or '}' after property value)",
      ],
      ['truncated.json', '{\n  "zones": [', '2:13: invalid JSON (unexpected end of input)'],
      ['trailing.json', '{}\n{}', '2:1: invalid JSON (Unexpected non-whitespace character after JSON)'],
    ];
    for (const [name, text, where] of cases) {
      const file = writeFile(name, text);
      assert.throws(
        () => loadConfig(file),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.problems.length, 1);
          assert.deepEqual(err.problems, [`${file}:${where}`]);
          return true;
        },
      );
    }
  });

  test('an unreadable config file', () => {
    const file = join(dir, 'nope.json');
    assert.throws(() => loadConfig(file), {
      name: 'ConfigError',
      problems: [`${file}: cannot read config file (ENOENT)`],
    });
  });
});

describe('rateLimit', () => {
  test('absent: off; present: BIND defaults, the per-kind rates following responsesPerSecond', () => {
    assert.equal(parseConfig({}).rateLimit, undefined);
    assert.deepEqual(parseConfig({ rateLimit: { responsesPerSecond: 5, nxdomainsPerSecond: 2 } }).rateLimit, {
      responsesPerSecond: 5,
      referralsPerSecond: 5,
      nodataPerSecond: 5,
      nxdomainsPerSecond: 2,
      errorsPerSecond: 5,
      allPerSecond: 0,
      window: 15,
      slip: 2,
      ipv4PrefixLength: 24,
      ipv6PrefixLength: 56,
      exemptClients: [],
      logOnly: false,
      maxTableSize: 20000,
    });
    // An empty block limits nothing (BIND: responses-per-second defaults to 0).
    assert.equal(parseConfig({ rateLimit: {} }).rateLimit?.errorsPerSecond, 0);
  });

  test('the issue example is accepted as written', () => {
    const r = parseConfig({
      rateLimit: {
        responsesPerSecond: 10,
        nxdomainsPerSecond: 10,
        errorsPerSecond: 10,
        referralsPerSecond: 10,
        window: 15,
        slip: 2,
        ipv4PrefixLength: 24,
        ipv6PrefixLength: 56,
        exemptClients: ['192.0.2.0/24'],
        logOnly: false,
        maxTableSize: 200000,
      },
    }).rateLimit;
    assert.equal(r?.maxTableSize, 200000);
    assert.deepEqual(r?.exemptClients, ['192.0.2.0/24']);
  });

  test('bad values are named by their path', () => {
    rejects(
      {
        rateLimit: {
          responsesPerSecond: 1001,
          slip: 11,
          window: 0,
          ipv4PrefixLength: 33,
          exemptClients: ['key:k', '192.0.2.0/40'],
          logOnly: 'yes',
          qpsScale: 250,
        },
      },
      [
        'rateLimit.responsesPerSecond: expected an integer 0..1000, got 1001',
        'rateLimit.slip: expected an integer 0..10, got 11',
        'rateLimit.window: expected an integer 1..3600, got 0',
        'rateLimit.ipv4PrefixLength: expected an integer 0..32, got 33',
        'rateLimit.exemptClients[0]: expected an IP address or CIDR prefix, got "key:k" (key: entries are not allowed here)',
        'rateLimit.exemptClients[1]: expected an IP address or CIDR prefix, got "192.0.2.0/40" (prefix length must be 0..32)',
        'rateLimit.logOnly: expected true or false, got "yes"',
        'rateLimit.qpsScale: unknown key',
      ],
    );
  });

  test('listen[].rateLimit: false exempts an address; anything but a boolean is refused', () => {
    const c = parseConfig({ listen: [{ address: '127.0.0.1', port: 53, rateLimit: false }] });
    assert.equal(c.listen[0].rateLimit, false);
    rejects({ listen: [{ address: '127.0.0.1', rateLimit: 'no' }] }, [
      'listen[0].rateLimit: expected true or false, got "no"',
    ]);
  });
});
