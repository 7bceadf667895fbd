/**
 * The CLI as an operator runs it: help and version, exit status 0 / 1 / 2, usage errors naming
 * the command, bad configs refused with the key and the problem named, and database and listen
 * errors that name the path or address and the reason (in one line, no stack trace).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../harness/proc.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-cli-'));
// Readable by the unprivileged user some tests run as.
fs.chmodSync(dir, 0o755);
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** ns2 as a user runs it; `unprivileged`: as uid 65534 when we are root (setpriv), else as we are. */
function ns2(...args: string[]): Run {
  return ns2With({}, ...args);
}

function ns2With(o: { env?: Record<string, string>; unprivileged?: boolean }, ...args: string[]): Run {
  const node = [
    process.execPath,
    '--import',
    import.meta.resolve('tsx'),
    path.join(ROOT, 'src/cli.ts'),
    ...args,
  ];
  const argv =
    o.unprivileged && isRoot
      ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...node]
      : node;
  const r = spawnSync(argv[0], argv.slice(1), {
    cwd: dir,
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, ...o.env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** One line for the operator: no stack frames, no Node internals. */
function assertOneLineError(r: Run) {
  assert.doesNotMatch(r.err, /^\s+at /m, `stack trace in: ${r.err}`);
  assert.doesNotMatch(r.err, /ERR_PARSE_ARGS|TypeError|node:internal/, r.err);
}

function write(name: string, config: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return file;
}

describe('ns2 CLI', () => {
  it('check-config accepts config.example.json', () => {
    // Its "database": "data/ns2.db" is relative to the working directory, as in the repository.
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    const r = ns2('check-config', path.join(ROOT, 'config.example.json'));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /ok \(2 zones\)/);
  });

  it('check-config names the JSON path and the problem, exit 2', () => {
    const file = write('bad.json', {
      listen: [{ address: '127.0.0.1', port: 5353 }],
      zones: [
        { name: 'a.test', primaries: [{ address: '127.0.0.1' }] },
        { name: 'b.test', primaries: [{ address: '127.0.0.1', port: '53x' }], nmae: 'x' },
      ],
    });
    const r = ns2('check-config', file);
    assert.equal(r.code, 2);
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

  it('unknown commands are usage errors (exit 2) pointing at ns2 help', () => {
    const r = ns2('frobnicate');
    assert.equal(r.code, 2);
    assert.match(r.err, /^ns2: unknown command "frobnicate"$/m);
    assert.match(r.err, /ns2 help/);
    assert.equal(ns2().code, 2, 'no command at all');
  });
});

describe('ns2 help and version', () => {
  const COMMANDS = ['serve', 'check-config', 'status', 'dump', 'history', 'diff', 'refresh', 'retransfer'];

  it('ns2 help, ns2 --help and ns2 -h list every command, exit 0', () => {
    for (const argv of [['help'], ['-h']]) {
      const r = ns2(...argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.match(r.out, /^usage: ns2 COMMAND/m);
      for (const c of COMMANDS) assert.match(r.out, new RegExp(`^  ${c}\\b`, 'm'), `${argv.join(' ')}: ${c}`);
      assert.match(r.out, /Exit status: 0 ok, 1 the command failed, 2 usage or config error/);
    }
  });

  it("ns2 COMMAND --help and ns2 help COMMAND show that command's usage and options", () => {
    const a = ns2('diff', '--help');
    const b = ns2('help', 'diff');
    assert.equal(a.code, 0);
    assert.equal(b.code, 0);
    assert.equal(a.out, b.out);
    assert.match(a.out, /^usage: ns2 diff ZONE FROM TO \[--config FILE\]$/m);
    assert.match(a.out, /^ {2}-c, --config FILE/m);
    assert.doesNotMatch(a.out, /retransfer/, 'not the global usage');
    const serve = ns2('serve', '-h');
    assert.equal(serve.code, 0);
    assert.match(serve.out, /^usage: ns2 serve \[--config FILE\]$/m);
    assert.notEqual(serve.out, a.out);
  });

  it('ns2 help UNKNOWN is a usage error', () => {
    const r = ns2('help', 'frobnicate');
    assert.equal(r.code, 2);
    assert.match(r.err, /^ns2 help: unknown command "frobnicate"$/m);
  });

  it('ns2 --version and ns2 version print the package and Node.js versions', () => {
    for (const argv of [['--version'], ['version']]) {
      const r = ns2(...argv);
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, `ns2 ${PKG.version} (Node.js ${process.version})\n`);
    }
  });

  it('unknown options and missing arguments name the command, exit 2, no parser internals', () => {
    const cases: [string[], RegExp][] = [
      [['status', '--foo'], /^ns2 status: unknown option --foo$/m],
      [['serve', '-x'], /^ns2 serve: unknown option -x$/m],
      [['diff', 'a.test', '1'], /^ns2 diff: missing TO$/m],
      [['demo', '--port', 'http'], /^ns2 demo: --port must be a port 1\.\.65535, got "http"$/m],
    ];
    for (const [argv, re] of cases) {
      const r = ns2(...argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
      assertOneLineError(r);
    }
  });
});

describe('ns2 database errors name the path and the reason', () => {
  const config = (name: string, database: string) =>
    write(name, { listen: [{ address: '127.0.0.1', port: 5353 }], database, zones: [] });

  it('status with config.example.json reports the missing database and creates nothing', () => {
    // config.example.json says "database": "data/ns2.db", relative to the working directory.
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    const r = ns2('status', '--config', path.join(ROOT, 'config.example.json'));
    const db = path.join(dir, 'data/ns2.db');
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`^ns2 status: database ${db}: does not exist`, 'm'));
    assert.deepEqual(fs.readdirSync(path.join(dir, 'data')), [], 'no database may be created');
    for (const cmd of [['history', 'example.test']]) {
      const h = ns2(...cmd, '--config', path.join(ROOT, 'config.example.json'));
      assert.equal(h.code, 1, cmd[0]);
      assert.match(h.err, /does not exist/);
    }
    assert.deepEqual(fs.readdirSync(path.join(dir, 'data')), []);
  });

  it('a database directory that does not exist: check-config and serve say so (exit 2), nothing is created', () => {
    const missing = path.join(dir, 'no-such-dir');
    const file = config('nodir.json', path.join(missing, 'sub/ns2.db'));
    const c = ns2('check-config', file);
    assert.equal(c.code, 2);
    assert.match(
      c.err,
      new RegExp(`^database: ${missing}/sub/ns2\\.db: directory ${missing}/sub does not exist`, 'm'),
    );
    const s = ns2('serve', '--config', file);
    assert.equal(s.code, 2);
    assert.match(s.err, /directory .*no-such-dir\/sub does not exist/);
    assert.equal(fs.existsSync(missing), false, 'serve must not create the directory');
    assertOneLineError(s);
  });

  it('a path through a file, a directory, a file that is not SQLite', () => {
    fs.writeFileSync(path.join(dir, 'plain-file'), 'x');
    const through = ns2('check-config', config('enotdir.json', path.join(dir, 'plain-file/ns2.db')));
    assert.equal(through.code, 2);
    assert.match(through.err, /plain-file is not a directory/);

    fs.mkdirSync(path.join(dir, 'a-dir.db'), { recursive: true });
    const isDir = ns2('serve', '--config', config('isdir.json', path.join(dir, 'a-dir.db')));
    assert.equal(isDir.code, 2);
    assert.match(isDir.err, /a-dir\.db: is a directory/);

    const junk = path.join(dir, 'junk.db');
    fs.writeFileSync(
      junk,
      'this is not an SQLite database, just text long enough to have a header'.repeat(20),
    );
    const notDb = ns2('serve', '--config', config('junk.json', junk));
    assert.equal(notDb.code, 1);
    assert.match(notDb.err, new RegExp(`^ns2 serve: database ${junk}: not an SQLite database`, 'm'));
    assertOneLineError(notDb);
    const st = ns2('status', '--config', path.join(dir, 'junk.json'));
    assert.equal(st.code, 1);
    assert.match(st.err, /junk\.db: not an SQLite database/);
  });

  it('a directory the server user cannot write: check-config and serve name it and the uid', () => {
    const ro = path.join(dir, 'read-only');
    fs.mkdirSync(ro);
    fs.chmodSync(ro, 0o555);
    const file = config('ro.json', path.join(ro, 'ns2.db'));
    const uid = isRoot ? NOBODY : process.getuid?.();
    const c = ns2With({ unprivileged: true }, 'check-config', file);
    assert.equal(c.code, 2, c.err);
    assert.match(c.err, new RegExp(`directory ${ro} is not writable by uid ${uid}`));
    const s = ns2With({ unprivileged: true }, 'serve', '--config', file);
    assert.equal(s.code, 2, s.err);
    assert.match(
      s.err,
      new RegExp(`^ns2 serve: database ${ro}/ns2\\.db: directory ${ro} is not writable by uid ${uid}`, 'm'),
    );
  });
});

describe('ns2 serve: listen errors name the address, no stack trace', () => {
  const serveOn = (name: string, port: number, extra: object = {}) =>
    write(name, {
      listen: [{ address: '127.0.0.1', port }],
      database: path.join(dir, `${name}.db`),
      zones: [],
      ...extra,
    });

  /** Runs `serve` to its exit (it must fail fast) and returns what it said. */
  function serveFails(file: string, env: Record<string, string> = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/cli.ts'), 'serve', '--config', file],
        { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`serve did not exit: ${err}${out}`));
      }, 20_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out, err });
      });
    });
  }

  /** Holds `port` on 127.0.0.1 (TCP for TCP and HTTP) until the returned close is called. */
  async function hold(transport: 'UDP' | 'TCP' | 'HTTP', port: number): Promise<() => void> {
    if (transport === 'UDP') {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(port, '127.0.0.1', r));
      return () => s.close();
    }
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
    return () => s.close();
  }

  /** With `port` held, `serve` of `file` exits 1 naming the address and transport, in one line. */
  async function assertInUse(transport: 'UDP' | 'TCP' | 'HTTP', port: number, file: string, env = {}) {
    const release = await hold(transport, port);
    try {
      const r = await serveFails(file, env);
      assert.equal(r.code, 1, r.err);
      const at = `127\\.0\\.0\\.1:${port} \\(${transport}\\)`;
      assert.match(r.err, new RegExp(`^ns2 serve: cannot listen on ${at}: address already in use`, 'm'));
      assertOneLineError(r);
      assert.doesNotMatch(r.out, /"stack"/, 'no stack in the log either');
    } finally {
      release();
    }
  }

  // The native addon's bind in serving workers, and dgram's in the main thread.
  for (const [io, workers] of [
    ['native', 2],
    ['dgram', 1],
  ] as const) {
    it(`UDP port in use (${io}, workers ${workers}): exit 1, the address and transport named`, async () => {
      const port = await freePort();
      await assertInUse('UDP', port, serveOn(`udp-${io}-${workers}`, port, { workers }), { NS2_UDP: io });
    });
  }

  it('TCP port in use: exit 1, the address and transport named', async () => {
    const port = await freePort();
    await assertInUse('TCP', port, serveOn('tcp-inuse', port));
  });

  it('control port in use: exit 1, the address named', async () => {
    const [port, controlPort] = [await freePort(), await freePort()];
    const file = serveOn('control-inuse', port, { control: { address: '127.0.0.1', port: controlPort } });
    await assertInUse('HTTP', controlPort, file);
  });

  it('port 53 without the capability: EACCES explained (CAP_NET_BIND_SERVICE, ip_unprivileged_port_start)', () => {
    const start = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
    assert.ok(
      start > 53,
      `needs net.ipv4.ip_unprivileged_port_start > 53 to provoke EACCES (it is ${start})`,
    );
    const dbDir = path.join(dir, 'open-db');
    fs.mkdirSync(dbDir, { mode: 0o777 });
    fs.chmodSync(dbDir, 0o777);
    const file = write('port53.json', {
      listen: [{ address: '127.0.0.1', port: 53 }],
      database: path.join(dbDir, 'ns2.db'),
      zones: [],
    });
    const r = ns2With({ unprivileged: true }, 'serve', '--config', file);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /^ns2 serve: cannot listen on 127\.0\.0\.1:53 \((UDP|TCP)\): permission denied/m);
    assert.match(r.err, /CAP_NET_BIND_SERVICE/);
    assert.match(r.err, new RegExp(`net\\.ipv4\\.ip_unprivileged_port_start \\(${start}\\)`));
    assertOneLineError(r);
  });
});
