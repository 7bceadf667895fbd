/**
 * UDP and TCP listeners on every configured address. TCP follows RFC 7766: 2-byte length framing,
 * several queries per connection answered in order, an idle timeout, a connection cap, and
 * back-pressure so a client that does not read cannot make us buffer without bound.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../log.js';
import type { QueryHandler } from './handler.js';

export interface Listen {
  address: string;
  port: number;
}

export interface ServerOptions {
  listen: readonly Listen[];
  tcpIdleMs: number;
  maxTcpConnections: number;
}

export class DnsServer {
  private udp: dgram.Socket[] = [];
  private tcp: net.Server[] = [];
  private conns = new Set<net.Socket>();

  constructor(
    private readonly handler: QueryHandler,
    private readonly opts: ServerOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    for (const l of this.opts.listen) {
      await this.startUdp(l);
      await this.startTcp(l);
      this.log.info({ address: l.address, port: l.port }, 'listening on UDP and TCP');
    }
  }

  private startUdp(l: Listen): Promise<void> {
    const sock = dgram.createSocket({ type: net.isIPv6(l.address) ? 'udp6' : 'udp4' });
    this.udp.push(sock);
    sock.on('message', (msg, rinfo) => {
      let reply: Buffer | undefined;
      try {
        reply = this.handler.handle(msg, 'udp', rinfo.address);
      } catch (e) {
        this.log.error({ err: e, peer: rinfo.address }, 'unhandled error answering UDP query');
      }
      if (reply) sock.send(reply, rinfo.port, rinfo.address);
    });
    sock.on('error', (e) => this.log.warn({ err: e }, 'UDP socket error'));
    return new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(l.port, l.address, () => {
        sock.off('error', reject);
        resolve();
      });
    });
  }

  private startTcp(l: Listen): Promise<void> {
    const server = net.createServer((c) => this.serveConnection(c));
    server.maxConnections = this.opts.maxTcpConnections;
    server.on('error', (e) => this.log.warn({ err: e }, 'TCP server error'));
    this.tcp.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: l.port, host: l.address }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private serveConnection(c: net.Socket): void {
    this.conns.add(c);
    c.setNoDelay(true);
    c.setTimeout(this.opts.tcpIdleMs, () => c.destroy());
    let pending = Buffer.alloc(0);
    c.on('data', (chunk) => {
      // At most one unfinished frame (≤ 65537 bytes) is ever held.
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        let reply: Buffer | undefined;
        try {
          reply = this.handler.handle(msg, 'tcp', c.remoteAddress ?? '');
        } catch (e) {
          this.log.error({ err: e, peer: c.remoteAddress }, 'unhandled error answering TCP query');
        }
        if (!reply) {
          // RFC 7766 §7: nothing sensible to say to garbage; close rather than wait.
          c.destroy();
          return;
        }
        const frame = Buffer.allocUnsafe(2 + reply.length);
        frame.writeUInt16BE(reply.length, 0);
        reply.copy(frame, 2);
        if (!c.write(frame)) {
          c.pause();
          c.once('drain', () => c.resume());
        }
      }
    });
    c.on('error', () => c.destroy());
    c.on('close', () => this.conns.delete(c));
  }

  /** Bound addresses (useful when port 0 was asked for). */
  addresses(): { udp: Listen[]; tcp: Listen[] } {
    return {
      udp: this.udp.map((s) => {
        const a = s.address();
        return { address: a.address, port: a.port };
      }),
      tcp: this.tcp.map((s) => {
        const a = s.address() as net.AddressInfo;
        return { address: a.address, port: a.port };
      }),
    };
  }

  async stop(): Promise<void> {
    for (const s of this.udp) s.close();
    for (const c of this.conns) c.destroy();
    await Promise.all(this.tcp.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.udp = [];
    this.tcp = [];
  }
}
