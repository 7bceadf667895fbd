/** The CLI as an operator runs it: bad configs are refused with the key and the problem named. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-cli-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function ns2(...args: string[]) {
  const r = spawnSync(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/cli.ts'), ...args],
    {
      cwd: dir,
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function write(name: string, config: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return file;
}

describe('ns2 CLI', () => {
  it('check-config accepts config.example.json', () => {
    const r = ns2('check-config', path.join(ROOT, 'config.example.json'));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /ok \(1 zone\)/);
  });

  it('check-config names the JSON path and the problem, exit 1', () => {
    const file = write('bad.json', {
      listen: [{ address: '127.0.0.1', port: 5353 }],
      zones: [
        { name: 'a.test', primaries: [{ address: '127.0.0.1' }] },
        { name: 'b.test', primaries: [{ address: '127.0.0.1', port: '53x' }], nmae: 'x' },
      ],
    });
    const r = ns2('check-config', file);
    assert.equal(r.code, 1);
    assert.match(r.err, /^zones\[1\]\.primaries\[0\]\.port: expected an integer 1\.\.65535, got "53x"$/m);
    assert.match(r.err, /^zones\[1\]\.nmae: unknown key$/m);
  });

  it('serve refuses a bad config with a non-zero exit and starts nothing', () => {
    const db = path.join(dir, 'never.db');
    const file = write('bad-serve.json', {
      database: db,
      listen: [{ address: 'localhost', port: 5353 }],
      zones: [],
    });
    const r = ns2('serve', '--config', file);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /listen\[0\]\.address/);
    assert.equal(fs.existsSync(db), false, 'no database may be created');
  });

  it('serve reports invalid JSON with line and column', () => {
    const r = ns2('serve', '--config', write('syntax.json', '{\n  "zones": [,]\n}'));
    assert.notEqual(r.code, 0);
    assert.match(r.err, /syntax\.json:2:\d+: invalid JSON/);
  });

  it('serve fails clearly when the config file is missing', () => {
    const r = ns2('serve', '--config', path.join(dir, 'missing.json'));
    assert.notEqual(r.code, 0);
    assert.match(r.err, /missing\.json/);
  });

  it('unknown commands print usage and fail', () => {
    const r = ns2('frobnicate');
    assert.equal(r.code, 1);
    assert.match(r.err, /usage: ns2/);
  });
});
