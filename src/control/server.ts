/**
 * The control endpoint: a small HTTP/JSON server the daemon runs when `config.control` is set, so
 * operators (`ns2 refresh`, `ns2 retransfer`) and monitoring can reach the running scheduler.
 *
 *   GET  /health                    200 {"ok":true}
 *   GET  /zones                     200 [{name, serial, state, primary, last_refresh, ...}]
 *   POST /zones/NAME/refresh        SOA check now; 200 with the CheckOutcome once it ends
 *   POST /zones/NAME/retransfer     AXFR now even when up to date; same reply
 *   POST /reload                    re-read the config file; 200 with what changed, 422 with the
 *                                   problems when the new config is refused (the running one stays)
 *
 * It has NO authentication: bind it to loopback (the usual 127.0.0.1) or firewall the port. As a
 * guard against web pages driving it from a local browser, a request carrying an `Origin` header
 * (browsers add one to cross-site POSTs) or a `Host` that is not an IP literal or `localhost`
 * (DNS rebinding) is refused with 403. Timestamps in replies are ISO 8601 strings (UTC) or null.
 */
import http from 'node:http';
import { isIP } from 'node:net';
import type { RrlStats } from '../answer/rrl.js';
import type { Endpoint } from '../config.js';
import type { Logger } from '../log.js';
import type { CheckOptions, CheckOutcome, Trigger } from '../refresh/refresher.js';
import type { ReloadResult } from '../reload/reloader.js';
import type { ZoneRow, ZoneStore } from '../store/zone-store.js';

export interface ControlDeps {
  store: Pick<ZoneStore, 'zones'>;
  scheduler: {
    poke(name: string, trigger: Trigger, opts?: CheckOptions): Promise<CheckOutcome> | undefined;
  };
  log: Logger;
  /** Re-reads the daemon's config file (reload/reloader.ts); absent: 404. */
  reload?: () => Promise<ReloadResult>;
  /** Response rate limiting counters for `GET /rate-limit`; absent when it is off. */
  rateLimit?: () => RrlStats & { maxTableSize: number };
  /** Unix seconds; injectable for tests. */
  now?: () => number;
}

export interface ControlServer {
  /** The bound address (the port is the real one when the config asked for 0). */
  readonly address: Endpoint;
  /** Stops accepting, drops open connections (an in-flight check still finishes in the daemon). */
  close(): Promise<void>;
}

/** One zone as `GET /zones` returns it. */
export interface ZoneInfo {
  name: string;
  serial: number | null;
  state: ZoneRow['state'];
  primary: string | null;
  last_refresh: string | null;
  last_transfer: string | null;
  next_refresh: string | null;
  expires_at: string | null;
  /** Seconds until expiry (negative once past), null when there is no deadline. */
  expires_in: number | null;
  records: number;
}

const isoOrNull = (t: number | null) => (t === null ? null : new Date(t * 1000).toISOString());

export function zoneInfo(z: ZoneRow, now: number): ZoneInfo {
  return {
    name: z.name,
    serial: z.serial,
    state: z.state,
    primary: z.primary_addr,
    last_refresh: isoOrNull(z.last_refresh),
    last_transfer: isoOrNull(z.last_transfer),
    next_refresh: isoOrNull(z.next_refresh),
    expires_at: isoOrNull(z.expires_at),
    expires_in: z.expires_at === null ? null : z.expires_at - now,
    records: z.records,
  };
}

const ACTIONS: Record<string, CheckOptions> = { refresh: {}, retransfer: { forceAxfr: true } };

/** True for `127.0.0.1`, `[::1]:8053`, `localhost:8053` and the like. */
function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return true; // HTTP/1.0 clients; browsers always send Host
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(host);
  const name = m?.[1] ?? m?.[2];
  return name !== undefined && (isIP(name) !== 0 || name.toLowerCase() === 'localhost');
}

export async function startControlServer(listen: Endpoint, deps: ControlDeps): Promise<ControlServer> {
  const { store, scheduler, log } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));

  const send = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: http.OutgoingHttpHeaders = {},
  ) => {
    if (res.headersSent || res.destroyed) return;
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(text);
  };
  const notAllowed = (res: http.ServerResponse, allow: string) =>
    send(res, 405, { error: 'method not allowed' }, { allow });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.resume(); // no endpoint reads a body
    if (req.headers.origin !== undefined || !hostAllowed(req.headers.host)) {
      send(res, 403, { error: 'forbidden' });
      return;
    }
    const path = new URL(req.url ?? '/', 'http://control').pathname;
    const method = req.method ?? 'GET';
    if (path === '/health') {
      if (method !== 'GET' && method !== 'HEAD') return notAllowed(res, 'GET, HEAD');
      return send(res, 200, { ok: true });
    }
    if (path === '/rate-limit') {
      if (method !== 'GET' && method !== 'HEAD') return notAllowed(res, 'GET, HEAD');
      const stats = deps.rateLimit?.();
      return stats ? send(res, 200, stats) : send(res, 404, { error: 'rate limiting is off' });
    }
    if (path === '/zones' || path === '/zones/') {
      if (method !== 'GET' && method !== 'HEAD') return notAllowed(res, 'GET, HEAD');
      const t = now();
      return send(
        res,
        200,
        store.zones().map((z) => zoneInfo(z, t)),
      );
    }
    if (path === '/reload' && deps.reload) {
      if (method !== 'POST') return notAllowed(res, 'POST');
      const result = await deps.reload();
      return send(res, result.ok ? 200 : 422, result);
    }
    const m = /^\/zones\/([^/]+)\/(refresh|retransfer)$/.exec(path);
    if (!m) return send(res, 404, { error: 'not found' });
    if (method !== 'POST') return notAllowed(res, 'POST');
    let zone: string;
    try {
      zone = decodeURIComponent(m[1]).toLowerCase().replace(/\.$/, '');
    } catch {
      return send(res, 400, { error: 'bad zone name' });
    }
    const action = m[2];
    const pending = scheduler.poke(zone, 'cli', ACTIONS[action]);
    if (!pending) return send(res, 404, { error: 'unknown zone' });
    log.info({ zone, action }, 'control request');
    const outcome = await pending;
    log.info({ zone, action, ...outcome }, 'control request done');
    send(res, 200, outcome);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      log.error({ err: e, url: req.url }, 'control request failed');
      send(res, 500, { error: e.message });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => log.error({ err: e }, 'control endpoint error'));
  const bound = server.address();
  const address: Endpoint =
    bound && typeof bound === 'object' ? { address: bound.address, port: bound.port } : listen;
  log.info(address, 'control endpoint listening');

  let closing: Promise<void> | undefined;
  return {
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A refresh request may wait minutes for a transfer; do not hold shutdown for it.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
