#!/usr/bin/env node
/**
 * ns2 <command>: parses argv, calls one module, sets the exit code.
 *
 *   ns2 serve [--config FILE]        run the daemon (default ./config.json or $NS2_CONFIG)
 *   ns2 check-config FILE            validate a config, print every problem
 *   ns2 status [--config FILE]       zones, serials and states from the database
 *   ns2 dump ZONE [--config FILE]    the stored zone in presentation format
 *   ns2 healthcheck [--config FILE]  exit 0 when the server answers on its first listen address
 *   ns2 refresh ZONE [--config FILE]     SOA check now, through the daemon's control endpoint
 *   ns2 retransfer ZONE [--config FILE]  AXFR now, through the daemon's control endpoint
 *   ns2 reload [--config FILE]           re-read the daemon's config file (as SIGHUP does)
 *   ns2 history ZONE [--config FILE]     the zone's applied transfers, from the database
 *   ns2 diff ZONE FROM TO [--config FILE] RRs removed and added between two serials
 *   ns2 demo                         a local BIND primary with a demo zone, and ns2 serving it
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { controlCommand, reloadCommand } from './control/client.js';
import { startDaemon } from './daemon.js';
import { runDemo } from './demo.js';
import { createLogger } from './log.js';
import { diff, dumpZone, healthcheck, history, status } from './operator.js';

const USAGE = `usage: ns2 <command> [options]
  serve [--config FILE]          run the daemon (default ./config.json, or $NS2_CONFIG)
  check-config FILE              validate a config file
  status [--config FILE]         zones, serials and states from the database
  dump ZONE [--config FILE]      print a stored zone in presentation format
  healthcheck [--config FILE]    exit 0 when the server answers queries
  refresh ZONE [--config FILE]   check ZONE's serial now (via the daemon's control endpoint)
  retransfer ZONE [--config FILE]  transfer ZONE by AXFR now (via the control endpoint)
  reload [--config FILE]         make the daemon re-read its config file (as SIGHUP does)
  history ZONE [--config FILE]   the transfers applied to ZONE
  diff ZONE FROM TO [--config FILE]  RRs removed and added between serials FROM and TO
  demo                           run a local BIND primary and ns2 as its secondary`;

function configPath(flag: string | undefined): string {
  return flag ?? process.env.NS2_CONFIG ?? 'config.json';
}

function load(file: string) {
  try {
    return loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`ns2: invalid config ${file}:\n  ${e.problems.join('\n  ')}\n`);
      process.exit(2);
    }
    throw e;
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    process.stdout.write(`${USAGE}\n`);
    return cmd || values.help ? 0 : 1;
  }
  switch (cmd) {
    case 'serve': {
      const file = configPath(values.config);
      const config = load(file);
      const log = createLogger(config.logLevel);
      // SIGHUP reloads (never the default: terminate); one arriving during start-up is kept.
      let reload: (() => void) | undefined;
      let hupDuringStart = false;
      process.on('SIGHUP', () => {
        if (reload) reload();
        else hupDuringStart = true;
      });
      const daemon = await startDaemon(config, log, { configFile: file });
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
      return 0;
    }
    case 'check-config': {
      const file = rest[0] ?? values.config;
      if (!file) {
        process.stderr.write('ns2 check-config: missing FILE\n');
        return 1;
      }
      try {
        const c = loadConfig(file);
        process.stdout.write(`${file}: ok (${c.zones.length} zone${c.zones.length === 1 ? '' : 's'})\n`);
        return 0;
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        process.stderr.write(`${e.problems.join('\n')}\n`);
        return 1;
      }
    }
    case 'status':
      return status(load(configPath(values.config)));
    case 'dump':
      if (!rest[0]) {
        process.stderr.write('ns2 dump: missing ZONE\n');
        return 1;
      }
      return dumpZone(load(configPath(values.config)), rest[0]);
    case 'healthcheck':
      return healthcheck(load(configPath(values.config)));
    case 'demo':
      return runDemo();
    case 'reload':
      return reloadCommand(configPath(values.config));
    case 'refresh':
    case 'retransfer':
      if (!rest[0]) {
        process.stderr.write(`ns2 ${cmd}: missing ZONE\n`);
        return 1;
      }
      return controlCommand(load(configPath(values.config)), cmd, rest[0]);
    case 'history':
      if (!rest[0]) {
        process.stderr.write('ns2 history: missing ZONE\n');
        return 1;
      }
      return history(load(configPath(values.config)), rest[0]);
    case 'diff':
      if (rest.length !== 3) {
        process.stderr.write('ns2 diff: usage: ns2 diff ZONE FROM TO [--config FILE]\n');
        return 1;
      }
      return diff(load(configPath(values.config)), rest[0], rest[1], rest[2]);
    default:
      process.stderr.write(`ns2: unknown command "${cmd}"\n${USAGE}\n`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: Error) => {
    process.stderr.write(`ns2: ${e.message}\n`);
    process.exitCode = 1;
  },
);
