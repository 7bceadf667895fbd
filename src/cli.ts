#!/usr/bin/env node
/**
 * ns2 COMMAND: the table below is every command; it drives dispatch, `ns2 help` and the usage
 * errors (src/cli-args.ts). Adding a command is one entry. Exit status: 0 ok, 1 the command
 * failed, 2 usage or config error (README "Exit status").
 */
import fs from 'node:fs';
import {
  type CommandSpec,
  commandHelp,
  EXIT,
  globalHelp,
  type OptionSpec,
  parseCommandLine,
} from './cli-args.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { controlCommand, reloadCommand } from './control/client.js';
import { startDaemon } from './daemon.js';
import { DEMO_DEFAULTS, runDemo } from './demo.js';
import { createLogger } from './log.js';
import { diff, dumpZone, healthcheck, history, status } from './operator.js';
import { databaseProblem } from './store/database-file.js';

interface Ctx {
  args: string[];
  options: Record<string, string | boolean | undefined>;
}

const CONFIG: OptionSpec = {
  name: 'config',
  short: 'c',
  value: 'FILE',
  description: 'config file (default: $NS2_CONFIG, else ./config.json)',
};

const configPath = (ctx: Ctx) =>
  (ctx.options.config as string | undefined) ?? process.env.NS2_CONFIG ?? 'config.json';

/** The config, or exit 2 with every problem named by its JSON path. */
function load(ctx: Ctx, file = configPath(ctx)): Config {
  try {
    return loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`ns2: invalid config ${file}:\n  ${e.problems.join('\n  ')}\n`);
      process.exit(EXIT.usage);
    }
    throw e;
  }
}

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return `ns2 ${pkg.version} (Node.js ${process.version})\n`;
}

async function serve(ctx: Ctx): Promise<number> {
  const config = load(ctx);
  // The same check as check-config: a database nobody can create is a config error, not a crash.
  const problem = databaseProblem(config.database, 'write');
  if (problem) {
    process.stderr.write(`ns2 serve: database ${config.database}: ${problem}\n`);
    return EXIT.usage;
  }
  const log = createLogger(config.logLevel);
  // SIGHUP reloads (never the default: terminate); one arriving during start-up is kept.
  let reload: (() => void) | undefined;
  let hupDuringStart = false;
  process.on('SIGHUP', () => {
    if (reload) reload();
    else hupDuringStart = true;
  });
  const daemon = await startDaemon(config, log, { configFile: configPath(ctx) });
  reload = () => {
    daemon.reload('SIGHUP').catch((err) => log.error({ err }, 'reload failed'));
  };
  if (hupDuringStart) reload();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      daemon.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return EXIT.ok;
}

function checkConfig(ctx: Ctx): number {
  const file = ctx.args[0] ?? configPath(ctx);
  let c: Config;
  try {
    c = loadConfig(file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${e.problems.join('\n')}\n`);
    return EXIT.usage;
  }
  const problem = databaseProblem(c.database, 'write');
  if (problem) {
    process.stderr.write(`database: ${c.database}: ${problem}\n`);
    return EXIT.usage;
  }
  process.stdout.write(`${file}: ok (${c.zones.length} zone${c.zones.length === 1 ? '' : 's'})\n`);
  return EXIT.ok;
}

function demo(ctx: Ctx): Promise<number> | number {
  const port = (name: string, dflt: number) => {
    const v = ctx.options[name];
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!/^\d+$/.test(String(v)) || n < 1 || n > 65535) {
      process.stderr.write(`ns2 demo: --${name} must be a port 1..65535, got "${v}"\n`);
      return undefined;
    }
    return n;
  };
  const p = {
    port: port('port', DEMO_DEFAULTS.port),
    primaryPort: port('primary-port', DEMO_DEFAULTS.primaryPort),
    controlPort: port('control-port', DEMO_DEFAULTS.controlPort),
  };
  if (p.port === undefined || p.primaryPort === undefined || p.controlPort === undefined) return EXIT.usage;
  return runDemo({ port: p.port, primaryPort: p.primaryPort, controlPort: p.controlPort });
}

const COMMANDS: CommandSpec<Ctx>[] = [
  {
    name: 'serve',
    summary: 'run the daemon',
    details:
      'Serves what the database holds at once, then keeps every configured zone in sync with its\n' +
      'primaries. SIGTERM or SIGINT stops it cleanly (exit 0).',
    options: [CONFIG],
    run: serve,
  },
  {
    name: 'check-config',
    args: ['[FILE]'],
    summary: 'validate a config file and its database path',
    details:
      'Prints every problem as `path: problem` and exits 2, or `FILE: ok (N zones)` and exits 0.\n' +
      'FILE defaults to --config, $NS2_CONFIG, then ./config.json.',
    options: [CONFIG],
    run: checkConfig,
  },
  {
    name: 'status',
    summary: 'zones, serials, states and timers, from the database',
    details: 'Reads the database (read-only; it must exist): works with the daemon stopped.',
    options: [CONFIG],
    run: (ctx) => status(load(ctx)),
  },
  {
    name: 'dump',
    args: ['ZONE'],
    summary: 'print a stored zone in presentation format, like dig AXFR',
    options: [CONFIG],
    run: (ctx) => dumpZone(load(ctx), ctx.args[0]),
  },
  {
    name: 'history',
    args: ['ZONE'],
    summary: 'the transfers applied to ZONE: time, kind, serials, RRs removed and added',
    options: [CONFIG],
    run: (ctx) => history(load(ctx), ctx.args[0]),
  },
  {
    name: 'diff',
    args: ['ZONE', 'FROM', 'TO'],
    summary: 'the RRs removed and added between serials FROM and TO',
    details: 'Follows the recorded changes from FROM to TO; exits 1 when the chain is broken.',
    options: [CONFIG],
    run: (ctx) => diff(load(ctx), ctx.args[0], ctx.args[1], ctx.args[2]),
  },
  {
    name: 'refresh',
    args: ['ZONE'],
    summary: "check ZONE's serial now, through the daemon's control endpoint",
    details: 'Needs `control` in the config. Prints the outcome; exits 1 if the check failed.',
    options: [CONFIG],
    run: (ctx) => controlCommand(load(ctx), 'refresh', ctx.args[0]),
  },
  {
    name: 'retransfer',
    args: ['ZONE'],
    summary: 'transfer ZONE by AXFR now, through the control endpoint',
    details: 'Needs `control` in the config. Prints the outcome; exits 1 if the transfer failed.',
    options: [CONFIG],
    run: (ctx) => controlCommand(load(ctx), 'retransfer', ctx.args[0]),
  },
  {
    name: 'reload',
    summary: 'make the daemon re-read its config file (as SIGHUP does)',
    details:
      'Through the control endpoint of the config file given. Prints what changed, or the problems\n' +
      'of an invalid file (exit 2; the daemon keeps its running config).',
    options: [CONFIG],
    run: (ctx) => reloadCommand(configPath(ctx)),
  },
  {
    name: 'healthcheck',
    summary: 'exit 0 when the server answers queries',
    options: [CONFIG],
    run: (ctx) => healthcheck(load(ctx)),
  },
  {
    name: 'demo',
    summary: 'a local BIND primary and ns2 as its secondary (what npm start runs)',
    details:
      'Writes everything it generates under data/demo/ (config, database, named.conf, logs; git\n' +
      'ignores it, and it is emptied at each start) and prints the commands to try against it.\n' +
      'Ctrl-C or SIGTERM stops both servers; so does the end of its parent process.',
    options: [
      { name: 'port', value: 'N', description: `ns2's DNS port (default ${DEMO_DEFAULTS.port})` },
      {
        name: 'primary-port',
        value: 'N',
        description: `the BIND primary's port (default ${DEMO_DEFAULTS.primaryPort})`,
      },
      {
        name: 'control-port',
        value: 'N',
        description: `ns2's control endpoint port (default ${DEMO_DEFAULTS.controlPort})`,
      },
    ],
    run: demo,
  },
  {
    name: 'help',
    args: ['[COMMAND]'],
    summary: 'show the commands, or one command’s arguments and options',
    run: (ctx) => help(ctx.args[0]),
  },
  {
    name: 'version',
    summary: 'print the ns2 and Node.js versions',
    run: () => {
      process.stdout.write(version());
      return EXIT.ok;
    },
  },
];

function help(name: string | undefined): number {
  if (name === undefined) {
    process.stdout.write(globalHelp(COMMANDS));
    return EXIT.ok;
  }
  const spec = COMMANDS.find((c) => c.name === name);
  if (!spec) {
    process.stderr.write(`ns2 help: unknown command "${name}"\nrun 'ns2 help' for the commands\n`);
    return EXIT.usage;
  }
  process.stdout.write(commandHelp(spec));
  return EXIT.ok;
}

async function main(argv: string[]): Promise<number> {
  const p = parseCommandLine(argv, COMMANDS);
  switch (p.kind) {
    case 'version':
      process.stdout.write(version());
      return EXIT.ok;
    case 'help':
      return help(p.command);
    case 'usage-error': {
      const spec = COMMANDS.find((c) => c.name === p.command);
      const hint = spec ? `run 'ns2 help ${spec.name}' for its usage` : "run 'ns2 help' for the commands";
      process.stderr.write(`${p.message}\n${hint}\n`);
      return EXIT.usage;
    }
    case 'run': {
      const spec = COMMANDS.find((c) => c.name === p.command)!;
      try {
        return await spec.run({ args: p.args, options: p.options });
      } catch (e) {
        // One line (DatabaseOpenError and ListenError say what to do), no stack trace.
        process.stderr.write(`ns2 ${spec.name}: ${e instanceof Error ? e.message : String(e)}\n`);
        return EXIT.failure;
      }
    }
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
