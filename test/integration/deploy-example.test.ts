/**
 * docs/deploy/ holds files people will copy: each must load in the program that reads it (ns2's
 * config schema, named-checkconf / named-checkzone, promtool), and they must agree with each other
 * (addresses in compose.yml, TSIG secrets on both ends of each hop, metrics ports scraped).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { run } from '../harness/proc.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEPLOY = path.join(ROOT, 'docs/deploy');
const read = (f: string) => fs.readFileSync(path.join(DEPLOY, f), 'utf8');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-deploy-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** `ipv4_address` of each service in compose.yml (services are two-space indented keys). */
function composeAddresses(): Map<string, string> {
  const out = new Map<string, string>();
  let service = '';
  for (const line of read('compose.yml').split('\n')) {
    const s = /^ {2}([a-z0-9-]+):\s*$/.exec(line);
    if (s) service = s[1];
    const a = /ipv4_address: ([\d.]+)/.exec(line);
    if (a && service) out.set(service, a[1]);
  }
  return out;
}

describe('docs/deploy', () => {
  const a = loadConfig(path.join(DEPLOY, 'ns2-a.json'));
  const b = loadConfig(path.join(DEPLOY, 'ns2-b.json'));
  const addr = composeAddresses();

  it('the ns2 configs load, and the chain primary → ns2-a → ns2-b is wired consistently', () => {
    assert.deepEqual([...addr.keys()].sort(), ['ns2-a', 'ns2-b', 'primary', 'prometheus']);
    const za = a.zones[0];
    const zb = b.zones[0];
    assert.equal(za.primaries[0].address, addr.get('primary'));
    assert.equal(zb.primaries[0].address, addr.get('ns2-a'));
    assert.equal(za.alsoNotify[0].address, addr.get('ns2-b'));
    // Each hop's key has the same secret on both ends.
    const secret = (c: typeof a, k: string) => c.keys.get(k)?.secret.toString('base64');
    assert.equal(secret(a, 'down-key'), secret(b, 'down-key'));
    assert.match(read('named.conf'), new RegExp(`secret "${secret(a, 'xfr-key')}"`));
    assert.match(
      read('named.conf'),
      new RegExp(`also-notify \\{ ${addr.get('ns2-a')} port 53 key xfr-key; \\}`),
    );
    // Both listen on IPv4 and IPv6, and expose metrics where Prometheus scrapes.
    for (const c of [a, b]) {
      assert.deepEqual(
        c.listen.map((l) => l.address),
        ['0.0.0.0', '::'],
      );
      assert.equal(c.metrics?.port, 9153);
    }
    const prom = read('prometheus.yml');
    for (const s of ['ns2-a', 'ns2-b']) assert.match(prom, new RegExp(`"${addr.get(s)}:9153"`));
  });

  it('named-checkconf and named-checkzone accept the primary', async () => {
    const conf = await run('named-checkconf', [path.join(DEPLOY, 'named.conf')], { timeoutMs: 20_000 });
    assert.equal(conf.code, 0, conf.stdout + conf.stderr);
    const zone = await run('named-checkzone', ['example.com', path.join(DEPLOY, 'example.com.zone')], {
      timeoutMs: 20_000,
    });
    assert.equal(zone.code, 0, zone.stdout + zone.stderr);
  });

  it('promtool accepts prometheus.yml with the alert rules it mounts', async () => {
    // compose.yml mounts ../alerts.yml at /etc/prometheus/alerts.yml: check it from the repository.
    const cfg = read('prometheus.yml').replace(
      '/etc/prometheus/alerts.yml',
      path.join(ROOT, 'docs/alerts.yml'),
    );
    assert.match(read('compose.yml'), /- \.\.\/alerts\.yml:\/etc\/prometheus\/alerts\.yml:ro/);
    fs.writeFileSync(path.join(tmp, 'prometheus.yml'), cfg);
    const r = await run('promtool', ['check', 'config', path.join(tmp, 'prometheus.yml')], {
      timeoutMs: 20_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});
