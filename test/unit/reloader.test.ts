/**
 * The reload sequence (reload/reloader.ts) over a recording ZoneSet: what is applied in which
 * order, what a refused config leaves, restart-only keys kept as they run, participants' veto.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { type Config, ConfigError, parseConfig, type ZoneConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { Reloader } from '../../src/reload/reloader.js';
import type { ZoneSet } from '../../src/reload/zone-set.js';

const raw = (zones: string[], extra: Record<string, unknown> = {}) => ({
  database: ':memory:',
  listen: [{ address: '127.0.0.1', port: 5353 }],
  zones: zones.map((name) => ({ name, primaries: [{ address: '192.0.2.1' }] })),
  ...extra,
});

function setup(start: Config, files: (Config | ConfigError)[], stale: string[] = [], served: string[] = []) {
  const calls: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const zones = {
    unserved: () => stale,
    has: (name: string) => served.includes(name),
    add: async (z: ZoneConfig) => {
      calls.push(`add ${z.name}`);
    },
    update: (z: ZoneConfig, fields: readonly string[]) => {
      calls.push(`update ${z.name} ${fields.join(',')}`);
    },
    remove: async (name: string) => {
      calls.push(`remove ${name}`);
      stale = stale.filter((n) => n !== name);
    },
  } as unknown as ZoneSet;
  const reloader = new Reloader('/etc/ns2/config.json', start, {
    zones,
    setKeys: (k) => {
      calls.push(`keys ${[...k.keys()].join(',')}`);
    },
    setLogLevel: (l) => {
      calls.push(`logLevel ${l}`);
    },
    log: createLogger('info', sink),
    load: () => {
      const next = files.shift()!;
      if (next instanceof ConfigError) throw next;
      return next;
    },
  });
  return { reloader, calls, lines };
}

describe('Reloader', () => {
  it('applies removals, keys, changes, additions, logLevel in that order; reports restart keys', async () => {
    const secret = Buffer.from('0123456789abcdef').toString('base64');
    const next = parseConfig(
      raw(['a.test', 'c.test'], {
        logLevel: 'debug',
        listen: [{ address: '127.0.0.1', port: 5354 }],
        keys: { k: { algorithm: 'hmac-sha256', secret } },
        defaults: { allowTransfer: ['192.0.2.9'] },
      }),
    );
    const { reloader, calls } = setup(parseConfig(raw(['a.test', 'b.test'])), [next], ['old.test']);
    const r = await reloader.reload('SIGHUP');
    assert.deepEqual(calls, [
      'remove b.test',
      'remove old.test',
      'keys k',
      'update a.test allowTransfer',
      'add c.test',
      'logLevel debug',
    ]);
    assert.ok(r.ok);
    assert.deepEqual(r.removed, ['b.test', 'old.test']);
    assert.deepEqual(r.restartRequired, ['listen']);
    // listen keeps its running value: the next reload of the same file says so again.
    assert.equal(reloader.config.listen[0].port, 5353);
    assert.equal(reloader.config.logLevel, 'debug');
  });

  it('a refused config changes nothing and the problems are returned and logged', async () => {
    const start = parseConfig(raw(['a.test']));
    const bad = new ConfigError(['zones[0].primaries[0].key: unknown key "k" (not in keys)']);
    const { reloader, calls, lines } = setup(start, [bad]);
    const r = await reloader.reload('control');
    assert.deepEqual(r, { ok: false, file: '/etc/ns2/config.json', problems: bad.problems });
    assert.deepEqual(calls, []);
    assert.equal(reloader.config, start);
    const logged = lines.find((l) => String(l.msg).startsWith('reload refused'));
    assert.deepEqual(logged?.problems, bad.problems);
  });

  it('a participant can refuse the reload before anything is applied, and sees every success', async () => {
    const start = parseConfig(raw(['a.test']));
    const { reloader, calls } = setup(start, [parseConfig(raw(['b.test'])), parseConfig(raw(['b.test']))]);
    let veto = ['tlsListen[0].certFile: cannot read "/x.pem" (ENOENT)'];
    const applied: number[] = [];
    reloader.register({
      name: 'tls',
      prepare: () => veto,
      apply: (_next, _running, diff) => {
        applied.push(diff.added.length);
      },
    });
    const refused = await reloader.reload('SIGHUP');
    assert.deepEqual(refused.ok ? [] : refused.problems, veto);
    assert.deepEqual(calls, []);
    veto = [];
    const ok = await reloader.reload('SIGHUP');
    assert.ok(ok.ok);
    assert.deepEqual(calls, ['remove a.test', 'add b.test']);
    assert.deepEqual(applied, [1]);
  });

  it('catalogs apply live; beforeZones runs first; an added zone already served (a member) is updated', async () => {
    const catalog = { name: 'cat.test', primaries: [{ address: '192.0.2.1' }] };
    const start = parseConfig(raw(['a.test'], { catalogs: [catalog] }));
    const next = parseConfig(
      raw(['a.test', 'm.test'], {
        catalogs: [{ ...catalog, zoneDefaults: { allowTransfer: ['192.0.2.7'] } }],
      }),
    );
    const { reloader, calls } = setup(start, [next], [], ['m.test']);
    reloader.register({
      name: 'catalogs',
      beforeZones: (n) => {
        calls.push(`before ${n.zones.length}`);
      },
      apply: (_n, _r, diff) => {
        calls.push(`apply ${diff.live.join(',')}`);
      },
    });
    const r = await reloader.reload('SIGHUP');
    assert.ok(r.ok);
    assert.deepEqual(calls, ['before 2', 'update m.test catalog', 'apply catalogs']);
    assert.deepEqual(r.live, ['catalogs']);
    assert.deepEqual(r.restartRequired, []);
  });

  it('reloads run one at a time, in order', async () => {
    const start = parseConfig(raw(['a.test']));
    const { reloader, calls } = setup(start, [
      parseConfig(raw(['a.test', 'b.test'])),
      parseConfig(raw(['b.test'])),
    ]);
    const [first, second] = await Promise.all([reloader.reload('SIGHUP'), reloader.reload('control')]);
    assert.ok(first.ok && second.ok);
    assert.deepEqual(first.added, ['b.test']);
    assert.deepEqual(second.removed, ['a.test']);
    assert.deepEqual(calls, ['add b.test', 'remove a.test']);
  });
});
