/**
 * `npm start` as a new user runs it: the demo comes up, the commands it prints work as printed
 * (dig, ns2 status with the config it wrote, an nsupdate that changes the zone, history, diff),
 * `git status` is the same after as before (it writes only under the ignored data/demo/), and
 * killing `npm start` leaves neither the demo's node nor its named running (checked by PID). A
 * second run kills the demo's node with SIGKILL: named still goes (parent-death signal).
 *
 * Ports are picked at run time (--port, --primary-port, --control-port), so a demo someone runs
 * on the default ports does not collide with this test.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, type Proc, run, startProc, tail, waitFor } from '../harness/proc.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-demo-test-'));
const started: number[] = [];
after(() => {
  // Whatever a failed assertion left behind: by PID, never by name.
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** `git status --porcelain`, of the whole tree or of `paths`. */
const gitStatus = (...paths: string[]) =>
  execFileSync('git', ['status', '--porcelain', '--untracked-files=all', '--', ...paths], {
    cwd: ROOT,
    encoding: 'utf8',
  });

/** Running and not a zombie (an exited child nobody has reaped yet counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function children(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

const comm = (pid: number) => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
/** argv of a process (Node 24 names its main thread "MainThread", so comm does not say node). */
const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

/** Every descendant of `pid`, depth first. */
function descendants(pid: number): number[] {
  return children(pid).flatMap((c) => [c, ...descendants(c)]);
}

interface Demo {
  proc: Proc;
  ports: { port: number; primary: number; control: number };
  node: number;
  named: number;
}

async function startDemo(name: string): Promise<Demo> {
  const ports = { port: await freePort(), primary: await freePort(), control: await freePort() };
  const proc = startProc(
    name,
    'npm',
    // --ignore-scripts: without prestart's set-up (npm test's pretest did it; an npm ci in the
    // middle of a run would pull node_modules from under the other tests).
    [
      'start',
      '--ignore-scripts',
      '--',
      '--port',
      `${ports.port}`,
      '--primary-port',
      `${ports.primary}`,
      '--control-port',
      `${ports.control}`,
    ],
    { cwd: ROOT, logFile: path.join(tmp, `${name}.log`) },
  );
  started.push(proc.pid);
  await waitFor(
    'the demo to print its next steps and transfer the zone',
    () => {
      if (!proc.running()) throw new Error(`npm start exited: ${tail(proc.log())}`);
      return /Ctrl-C stops both servers/.test(proc.log()) && /"msg":"zone transferred"/.test(proc.log());
    },
    60_000,
  );
  const tree = descendants(proc.pid);
  started.push(...tree);
  const node = tree.find((p) => {
    const argv = cmdline(p);
    return path.basename(argv[0]) === 'node' && argv.includes('demo');
  });
  const named = tree.find((p) => comm(p) === 'named');
  assert.ok(
    node && named,
    `node and named under npm start: ${tree.map((p) => `${p} ${cmdline(p).join(' ')}`).join(', ')}`,
  );
  return { proc, ports, node, named };
}

/** The indented commands the demo printed under "Try, in another terminal:". */
function printedCommands(log: string): string[] {
  const block = log.slice(log.indexOf('Try, in another terminal:'), log.indexOf('Ctrl-C stops both servers'));
  return block
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

const sh = (command: string) => run('sh', ['-c', command], { cwd: ROOT, timeoutMs: 20_000 });

describe('npm start (the demo)', () => {
  it('prints commands that work, changes nothing git sees, and SIGTERM to npm start leaves no node or named', async () => {
    const before = gitStatus();
    const demo = await startDemo('demo-term');
    const config = path.join(ROOT, 'data/demo/config.json');
    assert.ok(fs.existsSync(config), 'the demo writes a config the CLI can use');

    const cmds = printedCommands(demo.proc.log());
    const find = (re: RegExp) => {
      const c = cmds.find((x) => re.test(x));
      assert.ok(c, `the demo prints a command matching ${re}: ${cmds.join(' | ')}`);
      return c;
    };
    const www = await sh(find(/^dig .* www\.example\.test A$/));
    assert.match(www.stdout, /status: NOERROR/);
    assert.match(www.stdout, /192\.0\.2\.10/);
    const status = await sh(find(/ status --config data\/demo\/config\.json$/));
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^example\.test\s+2026112501\s+ok\s/m);
    const update = await sh(find(/\| nsupdate$/));
    assert.equal(update.code, 0, update.stderr);
    const dig = find(/^dig .* new\.example\.test A$/);
    await waitFor('the nsupdate change to reach ns2 (NOTIFY, IXFR)', async () =>
      /192\.0\.2\.99/.test((await sh(dig)).stdout),
    );
    const history = await sh(find(/ history example\.test /));
    assert.equal(history.code, 0, history.stderr);
    assert.match(history.stdout, /ixfr\s+2026112501 → 2026112502/);
    const diff = await sh(find(/ diff example\.test 2026112501 2026112502 /));
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /^\+new\.example\.test\.\t300\tIN\tA\t192\.0\.2\.99$/m);
    const sql = await sh(find(/^sqlite3 /));
    assert.match(sql.stdout, /new\.example\.test\|A\|300\|192\.0\.2\.99/);

    assert.equal(gitStatus(), before, 'the demo changed nothing git sees (tracked or untracked)');
    // Whatever the tree looked like before: where the demo writes, git sees nothing at all.
    assert.equal(gitStatus('data/demo'), '', 'data/demo/ is ignored and holds no tracked file');
    assert.equal(execFileSync('git', ['ls-files', 'data/demo'], { cwd: ROOT, encoding: 'utf8' }), '');

    await demo.proc.stop('SIGTERM');
    await waitFor(
      'the demo node and its named to exit',
      () => !alive(demo.node) && !alive(demo.named),
      15_000,
    );
    assert.equal(gitStatus(), before);
  });

  it("SIGKILL to the demo's node still takes its named down", async () => {
    const demo = await startDemo('demo-kill');
    process.kill(demo.node, 'SIGKILL');
    await waitFor('named to exit after its parent was killed', () => !alive(demo.named), 15_000);
    // npm start exits once its child is gone.
    await demo.proc.exited;
  });
});
