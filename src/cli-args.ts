/**
 * The command line as a table: each command declares its arguments and options once, and that
 * declaration drives parsing, the usage line, `ns2 help COMMAND` and the error messages. Pure: no
 * I/O, so every message is unit-tested (test/unit/cli-args.test.ts).
 *
 * Exit status (README "Exit status"): 0 ok, 1 the command ran and failed, 2 usage or config error.
 */
import { parseArgs } from 'node:util';

export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2 });

export interface OptionSpec {
  /** Long name, without the dashes. */
  name: string;
  short?: string;
  /** Placeholder of the value (`FILE`); absent for a flag. */
  value?: string;
  description: string;
}

export interface CommandSpec<Ctx> {
  name: string;
  /** Positional arguments in order; `[NAME]` is optional. */
  args?: readonly string[];
  /** One line for the command list. */
  summary: string;
  /** More lines for `ns2 help COMMAND`. */
  details?: string;
  options?: readonly OptionSpec[];
  run(ctx: Ctx): Promise<number> | number;
}

export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', description: 'show this help and exit' };

export type Parsed =
  | { kind: 'run'; command: string; args: string[]; options: Record<string, string | boolean | undefined> }
  | { kind: 'help'; command?: string }
  | { kind: 'version' }
  | { kind: 'usage-error'; command?: string; message: string };

const optional = (a: string) => a.startsWith('[');

function optionsOf(spec: CommandSpec<unknown>): OptionSpec[] {
  return [...(spec.options ?? []), HELP_OPTION];
}

/** `ns2 diff ZONE FROM TO [--config FILE]` */
export function usageLine(spec: CommandSpec<unknown>): string {
  const opts = (spec.options ?? []).map((o) => `[--${o.name}${o.value ? ` ${o.value}` : ''}]`);
  return ['ns2', spec.name, ...(spec.args ?? []), ...opts].join(' ');
}

function table(rows: [string, string][], indent = '  '): string {
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([a, b]) => `${indent}${a.padEnd(w)}  ${b}`.trimEnd()).join('\n');
}

/** `ns2 help` / `ns2 --help`: every command, one line each. */
export function globalHelp(commands: readonly CommandSpec<unknown>[]): string {
  const rows = commands.map((c): [string, string] => [[c.name, ...(c.args ?? [])].join(' '), c.summary]);
  return `usage: ns2 COMMAND [ARGS] [OPTIONS]

commands:
${table(rows)}

options:
${table([
  ['-h, --help', 'show help (ns2 COMMAND --help: that command’s)'],
  ['--version', 'print the ns2 and Node.js versions'],
])}

Run 'ns2 help COMMAND' for a command's arguments and options.
Exit status: 0 ok, 1 the command failed, 2 usage or config error.
`;
}

/** `ns2 help COMMAND` / `ns2 COMMAND --help`. */
export function commandHelp(spec: CommandSpec<unknown>): string {
  const rows = optionsOf(spec).map((o): [string, string] => [
    `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.value ? ` ${o.value}` : ''}`,
    o.description,
  ]);
  const details = spec.details ? `\n${spec.details.trimEnd()}\n` : '';
  return `usage: ${usageLine(spec)}

${spec.summary[0].toUpperCase()}${spec.summary.slice(1)}.
${details}
options:
${table(rows)}
`;
}

/**
 * Parses argv against the table. Never throws: every mistake comes back as a `usage-error` whose
 * message names the command (`ns2 status: unknown option --foo`).
 */
export function parseCommandLine(argv: readonly string[], commands: readonly CommandSpec<unknown>[]): Parsed {
  const byName = new Map(commands.map((c) => [c.name, c]));
  // Options of every command, so that tokens parse whatever the command; each is checked
  // against the command's own list below.
  const all: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    version: { type: 'boolean' },
  };
  for (const c of commands)
    for (const o of optionsOf(c))
      all[o.name] = o.short
        ? { type: o.value ? 'string' : 'boolean', short: o.short }
        : { type: o.value ? 'string' : 'boolean' };
  const { tokens } = parseArgs({
    args: [...argv],
    options: all,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const positionals = tokens.filter((t) => t.kind === 'positional').map((t) => t.value);
  const first = positionals[0];
  const spec = first === undefined ? undefined : byName.get(first);
  const who = spec ? `ns2 ${spec.name}` : 'ns2';
  const err = (message: string): Parsed => ({
    kind: 'usage-error',
    command: spec?.name,
    message: `${who}: ${message}`,
  });

  const known = new Map<string, OptionSpec>();
  for (const o of spec ? optionsOf(spec) : [HELP_OPTION]) known.set(o.name, o);
  const options: Record<string, string | boolean | undefined> = {};
  let version = false;
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    if (t.name === 'version' && !spec) {
      version = true;
      continue;
    }
    const o = known.get(t.name);
    if (!o) return err(`unknown option ${t.rawName}`);
    if (o.value) {
      if (t.value === undefined || (t.inlineValue === false && t.value.startsWith('-') && t.value !== '-'))
        return err(`option ${t.rawName} needs a value (${o.value})`);
      options[o.name] = t.value;
    } else {
      if (t.inlineValue) return err(`option ${t.rawName} takes no value`);
      options[o.name] = true;
    }
  }
  if (version) return { kind: 'version' };
  if (first === undefined) {
    return options.help ? { kind: 'help' } : { kind: 'usage-error', message: 'ns2: missing COMMAND' };
  }
  if (!spec) return { kind: 'usage-error', message: `ns2: unknown command "${first}"` };
  if (options.help) return { kind: 'help', command: spec.name };

  const args = positionals.slice(1);
  const declared = spec.args ?? [];
  const required = declared.filter((a) => !optional(a)).length;
  if (args.length < required) return err(`missing ${declared.slice(args.length, required).join(' ')}`);
  if (args.length > declared.length)
    return err(`unexpected argument "${args[declared.length]}" (usage: ${usageLine(spec)})`);
  return { kind: 'run', command: spec.name, args, options };
}
