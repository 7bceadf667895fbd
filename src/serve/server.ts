/**
 * UDP and TCP listeners on every configured address. TCP follows RFC 7766: 2-byte length framing,
 * several queries per connection answered in order, an idle timeout, a connection cap, and
 * back-pressure so a client that does not read cannot make us buffer without bound.
 *
 * Idle means no complete request: the timer restarts when a whole message has arrived (and after
 * a zone transfer out ends), not on every byte, so a client dribbling a byte a second (slowloris)
 * is closed at `tcpIdleMs` like a silent one. At `maxTcpConnections`, a new connection closes the
 * one whose last complete request is oldest (RFC 7766 §6.2.3: under pressure, close idle
 * connections first), unless it is sending a zone transfer; when all are, the new one is closed
 * instead. Thousands of idle connections so cannot lock out new TCP clients.
 *
 * `tlsListen` addresses serve the same connections inside TLS (RFC 7858 queries, RFC 9103 zone
 * transfers): one handler, the transport only told to xfrout, whose ACLs may require TLS. The
 * certificate is re-read by `reloadCertificates()` (SIGHUP); open connections keep theirs.
 *
 * Each request passes the TSIG gate first (verified, or answered there when the signature is
 * bad); zone transfer requests then go to xfrout, which streams its messages on TCP while the
 * connection's further requests wait; everything else goes to the query handler.
 */
import net from 'node:net';
import tls from 'node:tls';
import {
  type RateLimitConfig,
  RateLimiter,
  RRL_VERDICT,
  type RrlKind,
  type RrlLogEvent,
} from '../answer/rrl.js';
import { truncateInPlace } from '../answer/truncated-reply.js';
import { nameToText, readName } from '../dns/name.js';
import type { Logger } from '../log.js';
import { type DatagramBatch, type DatagramSocket, openDatagramSocket } from '../net/datagram.js';
import { FORWARD, type Handled, type QueryHandler } from './handler.js';
import { listenError } from './listen-error.js';
import { type TlsListen, tlsCredentials, tlsServerOptions } from './tls-listen.js';
import type { TsigGate } from './tsig-gate.js';
import type { XfrOut, XfrSink } from './xfrout.js';

export interface Listen {
  address: string;
  port: number;
  /** false: responses on this address are never rate limited (config `listen[].rateLimit`). */
  rateLimit?: boolean;
}

/** Response rate limiting of UDP replies (answer/rrl.ts); TCP is never limited. */
export interface UdpRateLimit {
  limiter: RateLimiter;
  /** Whole seconds. */
  now: () => number;
}

export interface ServerOptions {
  listen: readonly Listen[];
  /** TLS listeners (main thread only). */
  tlsListen?: readonly TlsListen[];
  tcpIdleMs: number;
  maxTcpConnections: number;
  /** TSIG verification and signing of replies; without it signed requests reach the handler as is. */
  gate?: TsigGate;
  /** Outgoing AXFR/IXFR; without it the handler refuses them. */
  xfrout?: XfrOut;
  /** Which transports this server answers (default both): serving workers take UDP only. */
  udp?: boolean;
  tcp?: boolean;
  /** SO_REUSEPORT on the UDP sockets, so every serving worker binds the same address and port. */
  reusePort?: boolean;
  /** SO_RCVBUF asked for each UDP socket (bytes; 0: the system's default). */
  udpReceiveBuffer?: number;
  /**
   * Where a request this thread cannot answer goes (a worker's NOTIFY, transfer, unimaged zone);
   * `reply` sends the answer back from the socket the request came in on. `msg` is a view into
   * the receive arena, valid during the call only: keep a copy.
   */
  forward?: (msg: Buffer, peer: { address: string; port: number }, reply: (answer: Buffer) => void) => void;
  /** Response rate limiting; absent = off (then the UDP loop pays one branch per reply). */
  rateLimit?: UdpRateLimit;
}

/** RFC 1035 §4.2.2: a TCP message is preceded by its length. */
function frame(reply: Buffer): Buffer {
  const f = Buffer.allocUnsafe(2 + reply.length);
  f.writeUInt16BE(reply.length, 0);
  reply.copy(f, 2);
  return f;
}

/**
 * A thread's limiter over the shared table, logging BIND's lines ("limit responses to
 * 192.0.2.0/24 for example.com", "stop limiting …", "would limit …" with logOnly).
 */
export function udpRateLimit(
  cfg: RateLimitConfig,
  table: SharedArrayBuffer,
  log: Logger,
  shared: boolean,
): UdpRateLimit {
  const rrlLog = log.child({ category: 'rate-limit' });
  const say = (e: RrlLogEvent) => {
    const verb =
      e.action === 'limit' ? 'limit' : e.action === 'continue' ? 'continue limiting' : 'stop limiting';
    const what = e.kind === 'responses' ? 'responses' : `${e.kind} responses`;
    const text = `${e.early ? '* ' : ''}${e.logOnly ? 'would ' : ''}${verb} ${what} to ${e.prefix}${e.qname ? ` for ${e.qname}` : ''}`;
    rrlLog.info(
      { prefix: e.prefix, kind: e.kind, qname: e.qname, action: e.action, logOnly: e.logOnly },
      text,
    );
  };
  return { limiter: new RateLimiter(cfg, table, say, shared), now: () => Math.floor(Date.now() / 1000) };
}

/**
 * The rate limiter's verdict on reply i of a batch (`n` bytes in the reply arena): its length as
 * is, 0 (dropped), or the length of its truncated form (slipped).
 */
function limit(
  rrl: RateLimiter,
  b: DatagramBatch,
  i: number,
  hit: boolean,
  n: number,
  now: number,
  handler: QueryHandler,
): number {
  const off = i * b.slotSize;
  QUERY_NAME.msg = b.data;
  QUERY_NAME.off = off;
  QUERY_NAME.len = b.length[i];
  const kind = handler.rrlKind(hit) as RrlKind;
  const at = b.peerOffset(i); // before peerBytes: the dgram path fills them when asked
  const v = rrl.check(b.peerBytes, at, b.peerV6, kind, handler.rrlName(hit), now, QUERY_NAME);
  if (v === RRL_VERDICT.OK) return n;
  if (v === RRL_VERDICT.DROP) return 0;
  return truncateInPlace(b.reply, off, n);
}

/** The query name of the datagram being limited, decoded only for a log line. */
const QUERY_NAME = {
  msg: Buffer.alloc(0) as Buffer,
  off: 0,
  len: 0,
  qname(): string {
    try {
      return nameToText(readName(this.msg.subarray(this.off, this.off + this.len), 12).name, false);
    } catch {
      return '?';
    }
  },
};

/** What the cap needs to know about an open TCP connection. */
interface TcpConn {
  /** Not sending a zone transfer: may be closed to make room. */
  evictable(): boolean;
}

export class DnsServer {
  private udp: DatagramSocket[] = [];
  private tcp: net.Server[] = [];
  private tls: { server: tls.Server; listen: TlsListen }[] = [];
  /** Open TCP connections, least recently active first (re-inserted on every request). */
  private conns = new Map<net.Socket, TcpConn>();

  constructor(
    private readonly handler: QueryHandler,
    private readonly opts: ServerOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    for (const l of this.opts.listen) {
      if (this.opts.udp !== false) await this.startUdp(l);
      if (this.opts.tcp !== false) await this.startTcp(l);
      const on = [this.opts.udp !== false && 'UDP', this.opts.tcp !== false && 'TCP']
        .filter(Boolean)
        .join(' and ');
      this.log.info({ address: l.address, port: l.port, io: this.udp[0]?.kind }, `listening on ${on}`);
    }
    for (const l of this.opts.tlsListen ?? []) {
      await this.startTls(l);
      this.log.info({ address: l.address, port: l.port }, 'listening on TLS');
    }
  }

  private startTls(l: TlsListen): Promise<void> {
    const server = tls.createServer(tlsServerOptions(l, this.opts.tcpIdleMs), (c) => this.admit(c, true));
    server.on('tlsClientError', (e, c) =>
      this.log.debug({ peer: c.remoteAddress, err: e.message }, 'TLS handshake failed'),
    );
    this.tls.push({ server, listen: l });
    return this.bind(server, l);
  }

  /** Why a TLS listener's certificate and key would not load now (one line each, by config path). */
  checkCertificates(): string[] {
    return this.tls.flatMap(({ listen }, i) => {
      try {
        tls.createSecureContext(tlsCredentials(listen));
        return [];
      } catch (e) {
        return [`tlsListen[${i}]: ${(e as Error).message}`];
      }
    });
  }

  /**
   * Re-reads every TLS listener's certificate and key (SIGHUP): new connections get them, open
   * ones keep what they have. A file that does not load leaves that listener's old certificate in
   * place; the problems are returned (and logged).
   */
  reloadCertificates(): string[] {
    const problems: string[] = [];
    for (const { server, listen } of this.tls) {
      try {
        server.setSecureContext(tlsCredentials(listen));
        this.log.info({ address: listen.address, port: listen.port }, 'TLS certificate reloaded');
      } catch (e) {
        const problem = `tlsListen ${listen.address}#${listen.port}: ${(e as Error).message}`;
        this.log.error(
          { address: listen.address, port: listen.port, err: e },
          'TLS certificate not reloaded',
        );
        problems.push(problem);
      }
    }
    return problems;
  }

  /**
   * UDP: a batch of datagrams per wake-up (net/datagram.ts). Cached answers are written straight
   * into the reply arena; the rest go through the whole dispatch.
   */
  private async startUdp(l: Listen): Promise<void> {
    const sock = await openDatagramSocket({
      address: l.address,
      port: l.port,
      reusePort: this.opts.reusePort,
      receiveBuffer: this.opts.udpReceiveBuffer,
    }).catch((e: unknown) => {
      throw listenError('UDP', l.address, l.port, e);
    });
    this.udp.push(sock);
    const handler = this.handler;
    const forward = this.opts.forward;
    const rrl = l.rateLimit === false ? undefined : this.opts.rateLimit;
    sock.onError((e) => this.log.error({ err: e }, 'unhandled error answering UDP queries'));
    sock.onBatch((b) => {
      const { data, reply, length, replyLength, slotSize } = b;
      const now = rrl === undefined ? 0 : rrl.now();
      for (let i = 0; i < b.count; i++) {
        const off = i * slotSize;
        const len = length[i];
        let n = handler.fromCache(data, off, len, reply, off);
        const hit = n !== 0;
        if (n === 0) {
          const msg = data.subarray(off, off + len);
          let r: Handled | Promise<void>;
          try {
            r = this.dispatch(msg, b.peerAddress(i));
          } catch (e) {
            this.log.error({ err: e, peer: b.peerAddress(i) }, 'unhandled error answering UDP query');
            r = undefined;
          }
          if (r === FORWARD) {
            const peer = { address: b.peerAddress(i), port: b.peerPort(i) };
            forward?.(msg, peer, (answer) => sock.send(answer, peer.port, peer.address));
          } else if (r instanceof Buffer && r.length <= slotSize) {
            r.copy(reply, off);
            n = r.length;
          }
        }
        if (rrl !== undefined && n > 0) n = limit(rrl.limiter, b, i, hit, n, now, handler);
        replyLength[i] = n;
      }
    });
  }

  /** A request another thread could not answer (the main thread's side of `forward`). */
  answerForwarded(msg: Buffer, peer: string): Buffer | undefined {
    const r = this.dispatch(msg, peer);
    return r instanceof Buffer ? r : undefined;
  }

  private startTcp(l: Listen): Promise<void> {
    const server = net.createServer((c) => this.admit(c, false));
    this.tcp.push(server);
    return this.bind(server, l);
  }

  private bind(server: net.Server, l: Listen): Promise<void> {
    return new Promise((resolve, reject) => {
      const failed = (e: unknown) => reject(listenError('TCP', l.address, l.port, e));
      server.once('error', failed);
      // ipv6Only: "::" and "0.0.0.0" are separate listen entries (as for UDP), not one dual socket.
      server.listen({ port: l.port, host: l.address, ipv6Only: l.address.includes(':') }, () => {
        server.off('error', failed);
        server.on('error', (e) => this.log.warn({ err: e }, 'TCP server error'));
        resolve();
      });
    });
  }

  /**
   * One request: the TSIG gate, then xfrout for zone transfer requests (on TCP a running transfer
   * writing to `sink`), then the query handler. Replies to signed requests are signed.
   */
  private dispatch(msg: Buffer, peer: string, sink?: XfrSink, overTls = false): Handled | Promise<void> {
    const at = peer;
    const gate = this.opts.gate?.check(msg, at) ?? { kind: 'pass' as const };
    if (gate.kind === 'answered') return gate.reply;
    const { signed } = gate;
    const xfrout = this.opts.xfrout;
    const transfer = sink ? xfrout?.tcp(msg, at, sink, signed, overTls) : xfrout?.udp(msg, at, signed);
    if (transfer) return transfer;
    const reply = this.handler.handle(msg, sink ? 'tcp' : 'udp', at, signed);
    return reply instanceof Buffer && signed ? signed.sign(reply) : reply;
  }

  /** The connection cap: make room by closing the stalest connection, or refuse. */
  private admit(c: net.Socket, overTls: boolean): void {
    if (this.conns.size >= this.opts.maxTcpConnections) {
      let victim: net.Socket | undefined;
      for (const [s, conn] of this.conns) {
        if (conn.evictable()) {
          victim = s;
          break;
        }
      }
      if (!victim) {
        c.destroy();
        return;
      }
      this.conns.delete(victim);
      victim.destroy();
    }
    this.serveConnection(c, overTls);
  }

  private serveConnection(c: net.Socket, overTls: boolean): void {
    c.setNoDelay(true);
    const peer = c.remoteAddress ?? '';
    let pending = Buffer.alloc(0);
    /** A zone transfer owns the connection: later requests wait for it (answered in order). */
    let transferring = false;
    const conn: TcpConn = { evictable: () => !transferring };
    this.conns.set(c, conn);
    // Restarted by complete requests only (see the header): partial bytes do not keep it open.
    // A transfer out keeps it open while its messages are still being taken by the client.
    let written = 0;
    const idleTimer: NodeJS.Timeout = setTimeout(() => {
      if (transferring && c.bytesWritten > written) {
        written = c.bytesWritten;
        idleTimer.refresh();
      } else c.destroy();
    }, this.opts.tcpIdleMs);
    const active = () => {
      idleTimer.refresh();
      if (this.conns.delete(c)) this.conns.set(c, conn);
    };
    // Transfer messages wait for the socket to drain, and yield to the event loop in between.
    const sink: XfrSink = {
      send: (reply) =>
        new Promise<void>((resolve, reject) => {
          if (c.destroyed) return reject(new Error('client closed the connection'));
          if (c.write(frame(reply))) return setImmediate(resolve);
          const done = () => {
            c.off('drain', done);
            c.off('close', done);
            if (c.destroyed) reject(new Error('client closed the connection'));
            else resolve();
          };
          c.on('drain', done);
          c.on('close', done);
        }),
    };
    const work = () => {
      while (!transferring && pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        active();
        let reply: Handled | Promise<void>;
        try {
          reply = this.dispatch(msg, peer, sink, overTls);
        } catch (e) {
          this.log.error({ err: e, peer }, 'unhandled error answering TCP query');
        }
        if (reply instanceof Promise) {
          transferring = true;
          c.pause();
          reply.then(
            () => {
              transferring = false;
              active();
              c.resume();
              work();
            },
            () => c.destroy(),
          );
          return;
        }
        if (!(reply instanceof Buffer)) {
          // RFC 7766 §7: nothing sensible to say to garbage; close rather than wait.
          c.destroy();
          return;
        }
        if (!c.write(frame(reply))) {
          c.pause();
          c.once('drain', () => {
            if (!transferring) c.resume();
          });
        }
      }
    };
    c.on('data', (chunk) => {
      // At most one unfinished frame (≤ 65537 bytes) is held, plus what arrived before a pause.
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      work();
    });
    c.on('error', () => c.destroy());
    c.on('close', () => {
      clearTimeout(idleTimer);
      if (this.conns.get(c) === conn) this.conns.delete(c);
    });
  }

  /** Bound addresses (useful when port 0 was asked for). */
  addresses(): { udp: Listen[]; tcp: Listen[]; tls: Listen[] } {
    const bound = (s: net.Server) => {
      const a = s.address() as net.AddressInfo;
      return { address: a.address, port: a.port };
    };
    return {
      udp: this.udp.map((s) => s.address()),
      tcp: this.tcp.map(bound),
      tls: this.tls.map((t) => bound(t.server)),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.udp.map((s) => s.close()));
    for (const c of this.conns.keys()) c.destroy();
    const servers = [...this.tcp, ...this.tls.map((t) => t.server)];
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.udp = [];
    this.tcp = [];
    this.tls = [];
  }
}
