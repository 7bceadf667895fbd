/**
 * The control endpoint: a small HTTP/JSON server the daemon runs when `config.control` is set, so
 * operators (`ns2 refresh`, `ns2 retransfer`) and monitoring can reach the running scheduler.
 *
 *   GET  /healthz (and /health)     200 {"ok":true} while the daemon serves
 *   GET  /readyz                    200 when every configured zone is loaded and not expired, else
 *                                   503; both with the readiness JSON (control/readiness.ts)
 *   GET  /metrics                   Prometheus text exposition (control/metrics.ts)
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
 *
 * The `metrics` listener (startMetricsServer) serves only /metrics, /healthz and /readyz — nothing
 * that changes state — so it may face a scrape network; it skips the browser guards (Prometheus
 * sends the target's host name as `Host`).
 */
import http from 'node:http';
import { isIP } from 'node:net';
import type { RrlStats } from '../answer/rrl.js';
import type { Endpoint } from '../config.js';
import type { Logger } from '../log.js';
import type { CheckOptions, CheckOutcome, Trigger } from '../refresh/refresher.js';
import type { ReloadResult } from '../reload/reloader.js';
import type { ZoneRow, ZoneStore } from '../store/zone-store.js';
import type { Metrics } from './metrics.js';
import type { Readiness } from './readiness.js';

/** What both listeners serve: liveness, readiness and the metrics. */
export interface ProbeDeps {
  metrics?: Pick<Metrics, 'render'>;
  readiness?: () => Readiness;
  log: Logger;
}

export interface ControlDeps extends ProbeDeps {
  store: Pick<ZoneStore, 'zones'>;
  scheduler: {
    poke(name: string, trigger: Trigger, opts?: CheckOptions): Promise<CheckOutcome> | undefined;
  };
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

function sendText(
  res: http.ServerResponse,
  status: number,
  text: string,
  contentType: string,
  headers: http.OutgoingHttpHeaders = {},
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

const send = (res: http.ServerResponse, status: number, body: unknown, headers?: http.OutgoingHttpHeaders) =>
  sendText(res, status, `${JSON.stringify(body)}\n`, 'application/json; charset=utf-8', headers);

const notAllowed = (res: http.ServerResponse, allow: string) =>
  send(res, 405, { error: 'method not allowed' }, { allow });

/**
 * /healthz, /readyz and /metrics; false when `path` is none of them. Liveness is answered by the
 * process itself: reaching it means the daemon started its listeners and has not begun to stop.
 */
async function probe(
  path: string,
  method: string,
  res: http.ServerResponse,
  deps: ProbeDeps,
): Promise<boolean> {
  if (path !== '/healthz' && path !== '/health' && path !== '/readyz' && path !== '/metrics') return false;
  if (method !== 'GET' && method !== 'HEAD') {
    notAllowed(res, 'GET, HEAD');
    return true;
  }
  if (path === '/metrics') {
    if (!deps.metrics) send(res, 404, { error: 'not found' });
    else {
      const m = await deps.metrics.render();
      sendText(res, 200, m.body, m.contentType);
    }
  } else if (path === '/readyz') {
    const r = deps.readiness?.() ?? { ready: false, zones: 0, error: 'readiness unknown', not_ready: [] };
    send(res, r.ready ? 200 : 503, r);
  } else send(res, 200, { ok: true });
  return true;
}

/** An HTTP server on `listen` running `handle` for each request; 500 with the message on a throw. */
async function listenHttp(
  listen: Endpoint,
  what: string,
  log: Logger,
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>,
): Promise<ControlServer> {
  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      log.error({ err: e, url: req.url }, `${what} request failed`);
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
  server.on('error', (e) => log.error({ err: e }, `${what} error`));
  const bound = server.address();
  const address: Endpoint =
    bound && typeof bound === 'object' ? { address: bound.address, port: bound.port } : listen;
  log.info(address, `${what} listening`);

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

/** The scrape listener (`metrics` in the config): /metrics, /healthz, /readyz and nothing else. */
export function startMetricsServer(listen: Endpoint, deps: ProbeDeps): Promise<ControlServer> {
  return listenHttp(listen, 'metrics endpoint', deps.log, async (req, res) => {
    req.resume();
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (!(await probe(path, req.method ?? 'GET', res, deps))) send(res, 404, { error: 'not found' });
  });
}

export function startControlServer(listen: Endpoint, deps: ControlDeps): Promise<ControlServer> {
  const { store, scheduler, log } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.resume(); // no endpoint reads a body
    if (req.headers.origin !== undefined || !hostAllowed(req.headers.host)) {
      send(res, 403, { error: 'forbidden' });
      return;
    }
    const path = new URL(req.url ?? '/', 'http://control').pathname;
    const method = req.method ?? 'GET';
    if (await probe(path, method, res, deps)) return;
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

  return listenHttp(listen, 'control endpoint', log, handle);
}
