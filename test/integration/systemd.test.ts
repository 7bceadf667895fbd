/**
 * contrib/ns2.service as systemd reads it: `systemd-analyze verify` accepts it without a warning,
 * it runs as a non-root user with CAP_NET_BIND_SERVICE alone, `systemctl reload` sends SIGHUP, and
 * `systemd-analyze security --offline` rates its exposure OK (hardening not dropped by accident).
 * systemd-analyze is installed here and in CI (scripts/setup.sh).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { run } from '../harness/proc.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const UNIT = path.join(ROOT, 'contrib/ns2.service');
const text = fs.readFileSync(UNIT, 'utf8');

/** The values of `key=` in the unit (comments skipped), in order. */
const values = (key: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

describe('contrib/ns2.service', () => {
  it('systemd-analyze verify accepts it with no warning', async () => {
    const r = await run('systemd-analyze', ['verify', UNIT], { cwd: path.dirname(UNIT), timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    // Unknown keys and bad values are warnings with exit 0: none may mention the unit.
    assert.doesNotMatch(`${r.stdout}${r.stderr}`, /ns2\.service/, `${r.stdout}${r.stderr}`);
  });

  it('runs as a non-root user with CAP_NET_BIND_SERVICE alone; reload is SIGHUP', () => {
    assert.deepEqual(values('User'), ['ns2']);
    assert.deepEqual(values('AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(values('CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(values('ExecReload'), ['/bin/kill -HUP $MAINPID']);
    assert.deepEqual(values('NoNewPrivileges'), ['yes']);
    assert.match(values('ExecStart')[0], /dist\/cli\.js serve --config \/etc\/ns2\/config\.json$/);
    // A config error (exit 2) is not retried in a loop.
    assert.deepEqual(values('RestartPreventExitStatus'), ['2']);
  });

  it('systemd-analyze security rates its exposure OK (≤ 2.5 of 10)', async () => {
    const r = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT], {
      cwd: path.dirname(UNIT),
      timeoutMs: 30_000,
    });
    const m = /Overall exposure level for ns2\.service: (\d+\.\d+)/.exec(r.stdout);
    assert.ok(m, `${r.stdout}${r.stderr}`);
    assert.ok(Number(m[1]) <= 2.5, `exposure ${m[1]}`);
  });
});
