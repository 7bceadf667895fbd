/** The command table's parser and help text: every mistake is a usage error naming the command. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type CommandSpec,
  commandHelp,
  globalHelp,
  parseCommandLine,
  usageLine,
} from '../../src/cli-args.js';

const CONFIG = { name: 'config', short: 'c', value: 'FILE', description: 'config file' };
const COMMANDS: CommandSpec<unknown>[] = [
  { name: 'status', summary: 'zones and serials', options: [CONFIG], run: () => 0 },
  { name: 'diff', args: ['ZONE', 'FROM', 'TO'], summary: 'what changed', options: [CONFIG], run: () => 0 },
  { name: 'help', args: ['[COMMAND]'], summary: 'show help', run: () => 0 },
];
const parse = (...argv: string[]) => parseCommandLine(argv, COMMANDS);

describe('parseCommandLine', () => {
  test('a command with its arguments and options, in any order', () => {
    assert.deepEqual(parse('diff', '--config', 'c.json', 'a.test', '1', '2'), {
      kind: 'run',
      command: 'diff',
      args: ['a.test', '1', '2'],
      options: { config: 'c.json' },
    });
    assert.deepEqual(parse('-c', 'x.json', 'status'), {
      kind: 'run',
      command: 'status',
      args: [],
      options: { config: 'x.json' },
    });
    assert.deepEqual(parse('status', '--config=y.json'), {
      kind: 'run',
      command: 'status',
      args: [],
      options: { config: 'y.json' },
    });
  });

  test('help and version', () => {
    assert.deepEqual(parse('--help'), { kind: 'help' });
    assert.deepEqual(parse('-h'), { kind: 'help' });
    assert.deepEqual(parse('status', '--help'), { kind: 'help', command: 'status' });
    assert.deepEqual(parse('--help', 'diff'), { kind: 'help', command: 'diff' });
    assert.deepEqual(parse('--version'), { kind: 'version' });
    // `help` is an ordinary command taking an optional argument.
    assert.deepEqual(parse('help', 'status'), {
      kind: 'run',
      command: 'help',
      args: ['status'],
      options: {},
    });
  });

  test('mistakes name the command', () => {
    const cases: [string[], string][] = [
      [['status', '--foo'], 'ns2 status: unknown option --foo'],
      [['status', '-x'], 'ns2 status: unknown option -x'],
      [['status', '--version'], 'ns2 status: unknown option --version'],
      [['status', '--config'], 'ns2 status: option --config needs a value (FILE)'],
      [['status', '--config', '--help'], 'ns2 status: option --config needs a value (FILE)'],
      [['status', '--help=yes'], 'ns2 status: option --help takes no value'],
      [['help', '--config', 'x'], 'ns2 help: unknown option --config'],
      [['diff', 'a.test', '1'], 'ns2 diff: missing TO'],
      [['diff'], 'ns2 diff: missing ZONE FROM TO'],
      [['status', 'extra'], 'ns2 status: unexpected argument "extra" (usage: ns2 status [--config FILE])'],
      [['frobnicate'], 'ns2: unknown command "frobnicate"'],
      [[], 'ns2: missing COMMAND'],
      [['--foo'], 'ns2: unknown option --foo'],
    ];
    for (const [argv, message] of cases) {
      const p = parse(...argv);
      assert.equal(p.kind, 'usage-error', argv.join(' '));
      assert.equal(p.kind === 'usage-error' && p.message, message, argv.join(' '));
    }
  });
});

describe('help text', () => {
  test('the global help lists every command of the table', () => {
    const text = globalHelp(COMMANDS);
    for (const c of COMMANDS) assert.match(text, new RegExp(`^  ${c.name}\\b.*${c.summary}$`, 'm'));
    assert.match(text, /Exit status: 0 ok, 1 the command failed, 2 usage or config error/);
  });

  test("a command's help has its usage line and its options", () => {
    assert.equal(usageLine(COMMANDS[1]), 'ns2 diff ZONE FROM TO [--config FILE]');
    const text = commandHelp(COMMANDS[1]);
    assert.match(text, /^usage: ns2 diff ZONE FROM TO \[--config FILE\]$/m);
    assert.match(text, /^What changed\.$/m);
    assert.match(text, /^ {2}-c, --config FILE {2}config file$/m);
    assert.match(text, /^ {2}-h, --help {9}show this help and exit$/m);
  });
});
