/**
 * `ns2 refresh ZONE` and `ns2 retransfer ZONE`: ask the running daemon, through its control
 * endpoint (`config.control`), to check or re-transfer a zone now, and print the outcome.
 * `ns2 reload`: ask it to re-read its config file.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { type Config, ConfigError, type Endpoint, loadConfig } from '../config.js';
import type { CheckOutcome } from '../refresh/refresher.js';
import type { ReloadResult } from '../reload/reloader.js';

export type ControlAction = 'refresh' | 'retransfer';

const CONNECT_TIMEOUT_MS = 10_000;

export interface ControlReply {
  status: number;
  body: unknown;
}

/** Where to connect: a wildcard listen address is reached on the loopback of its family. */
export function controlTarget(control: Endpoint): Endpoint {
  const address =
    control.address === '0.0.0.0' ? '127.0.0.1' : control.address === '::' ? '::1' : control.address;
  return { address, port: control.port };
}

/**
 * One request to the control endpoint. There is no overall timeout: a retransfer of a large zone
 * takes as long as the transfer does. Only connecting is bounded.
 */
export function controlRequest(target: Endpoint, method: string, path: string): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.address,
        port: target.port,
        method,
        path,
        agent: false,
        headers: { accept: 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch {
            reject(new Error(`HTTP ${res.statusCode}: not a JSON reply`));
          }
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`)),
      CONNECT_TIMEOUT_MS,
    );
    req.on('socket', (s) => s.once('connect', () => clearTimeout(timer)));
    req.on('close', () => clearTimeout(timer));
    req.on('error', reject);
    req.end();
  });
}

/** The one human line for an outcome. */
export function outcomeLine(zone: string, o: CheckOutcome): string {
  switch (o.result) {
    case 'transferred': {
      // `kind` (ixfr | axfr) is reported by refreshers that can do IXFR.
      const kind = (o as { kind?: unknown }).kind;
      return `${zone}: transferred serial ${o.serial} from ${o.primary}${typeof kind === 'string' ? ` (${kind})` : ''}`;
    }
    case 'uptodate':
      return `${zone}: up to date at serial ${o.serial} (${o.primary})`;
    case 'behind':
      return `${zone}: kept serial ${o.serial}: ${o.primary} has older serial ${o.primarySerial}`;
    case 'failed':
      return `${zone}: failed: ${o.error}`;
  }
}

function isOutcome(v: unknown): v is CheckOutcome {
  const r = (v as { result?: unknown } | null)?.result;
  return r === 'transferred' || r === 'uptodate' || r === 'behind' || r === 'failed';
}

/** Runs the command; prints one line; 0 when the zone was checked or transferred, 1 otherwise. */
export async function controlCommand(
  config: Config,
  action: ControlAction,
  zoneArg: string,
): Promise<number> {
  const zone = zoneArg.toLowerCase().replace(/\.$/, '');
  const fail = (text: string) => {
    process.stderr.write(`ns2 ${action}: ${text}\n`);
    return 1;
  };
  if (!config.control) {
    return fail(
      'no "control" endpoint in the config; add {"control": {"address": "127.0.0.1", "port": 8053}} and restart the daemon',
    );
  }
  const target = controlTarget(config.control);
  const where = `${target.address.includes(':') ? `[${target.address}]` : target.address}:${target.port}`;
  let reply: ControlReply;
  try {
    reply = await controlRequest(target, 'POST', `/zones/${encodeURIComponent(zone)}/${action}`);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return fail(
      `cannot reach the daemon's control endpoint at ${where} (${err.code ?? err.message}); is ns2 serve running with this config?`,
    );
  }
  if (reply.status === 404 && (reply.body as { error?: string } | null)?.error === 'unknown zone') {
    return fail(`zone "${zone}" is not configured in the running daemon`);
  }
  if (reply.status !== 200 || !isOutcome(reply.body)) {
    const error = (reply.body as { error?: string } | null)?.error;
    return fail(`control endpoint at ${where} answered HTTP ${reply.status}${error ? `: ${error}` : ''}`);
  }
  const line = outcomeLine(zone, reply.body);
  if (reply.body.result === 'failed') {
    process.stderr.write(`${line}\n`);
    return 1;
  }
  process.stdout.write(`${line}\n`);
  return 0;
}

/**
 * The control endpoint named by a config file, read leniently: `ns2 reload` must reach the daemon
 * even when the file now fails validation (the daemon then reports the problems itself).
 * `problems` when the file is invalid and names no usable endpoint either.
 */
export function controlOf(file: string): { control?: Endpoint; problems?: string[] } {
  let problems: string[];
  try {
    return { control: loadConfig(file).control };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems = e.problems;
  }
  try {
    const raw = JSON.parse(readFileSync(file, 'utf8').replace(/^\uFEFF/, '')) as { control?: unknown };
    const c = raw.control as { address?: unknown; port?: unknown } | undefined;
    if (typeof c?.address === 'string' && Number.isInteger(c.port))
      return { control: { address: c.address, port: c.port as number } };
  } catch {
    // unreadable or not JSON: the problems say so
  }
  return { problems };
}

/** The lines `ns2 reload` prints for an applied reload. */
export function reloadLines(r: Extract<ReloadResult, { ok: true }>): string[] {
  const list = (xs: string[]) => (xs.length === 0 ? 'none' : xs.join(', '));
  const lines = [
    `reloaded ${r.file}`,
    `  zones added: ${list(r.added)}`,
    `  zones removed: ${list(r.removed)}`,
    `  zones changed: ${list(r.changed.map((c) => `${c.zone} (${c.fields.join(', ')})`))}`,
  ];
  if (r.keys.length > 0) lines.push(`  keys changed: ${list(r.keys)}`);
  if (r.live.length > 0) lines.push(`  also applied: ${list(r.live)}`);
  if (r.restartRequired.length > 0)
    lines.push(`  restart needed for: ${list(r.restartRequired)} (changed in the file, not applied)`);
  for (const e of r.errors) lines.push(`  failed: ${e}`);
  return lines;
}

/**
 * `ns2 reload`: the daemon re-reads its config file. 0 when applied; 2 when the new config is
 * refused (its problems printed, the daemon keeps the running one); 1 when the daemon cannot be
 * reached or part of the reload failed.
 */
export async function reloadCommand(file: string): Promise<number> {
  const fail = (text: string, code = 1) => {
    process.stderr.write(`ns2 reload: ${text}\n`);
    return code;
  };
  const { control, problems } = controlOf(file);
  if (problems) {
    const lines = problems.map((p) => `  ${p}`).join('\n');
    return fail(`cannot find the daemon's control endpoint: ${file} is invalid:\n${lines}`, 2);
  }
  if (!control) {
    return fail(
      `no "control" endpoint in ${file}; add {"control": {"address": "127.0.0.1", "port": 8053}} and restart the daemon, or send it SIGHUP`,
    );
  }
  const target = controlTarget(control);
  const where = `${target.address.includes(':') ? `[${target.address}]` : target.address}:${target.port}`;
  let reply: ControlReply;
  try {
    reply = await controlRequest(target, 'POST', '/reload');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return fail(
      `cannot reach the daemon's control endpoint at ${where} (${err.code ?? err.message}); is ns2 serve running with this config?`,
    );
  }
  const body = reply.body as ReloadResult | { error?: string } | null;
  if (body && 'ok' in body && body.ok === false) {
    const problems = body.problems.map((p) => `  ${p}`).join('\n');
    return fail(
      `config ${body.file ?? ''} refused, the daemon keeps running the previous one:\n${problems}`,
      2,
    );
  }
  if (reply.status !== 200 || !body || !('ok' in body)) {
    const error = (body as { error?: string } | null)?.error;
    return fail(`control endpoint at ${where} answered HTTP ${reply.status}${error ? `: ${error}` : ''}`);
  }
  const lines = reloadLines(body);
  process.stdout.write(`${lines.join('\n')}\n`);
  return body.errors.length > 0 ? 1 : 0;
}
