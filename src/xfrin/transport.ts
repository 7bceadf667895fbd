/**
 * Client transports for talking to a primary: one UDP exchange (SOA probe) and a stream of
 * length-prefixed messages (RFC 1035 §4.2.2, RFC 7766 §8) for zone transfers, over TCP or, for a
 * primary with `tls`, over TLS (RFC 9103: the same framing inside the TLS session).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import type { PrimaryTls } from '../config.js';
import { tlsConnectOptions, tlsFailureReason, verifyPeer } from './tls.js';

export class TransportError extends Error {}

export interface Endpoint {
  address: string;
  port: number;
  /** Streams go over TLS, authenticated as this says. */
  tls?: PrimaryTls;
}

export const endpointText = (e: Endpoint): string => `${e.address}#${e.port}`;

/**
 * Sends one UDP query and resolves with the first reply whose ID matches. The socket is connected,
 * so only the server's own replies are accepted and an ICMP "port unreachable" fails at once
 * instead of after the timeout.
 */
export function udpExchange(
  to: Endpoint,
  query: Buffer,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  const id = query.readUInt16BE(0);
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(to.address) ? 'udp6' : 'udp4');
    let settled = false;
    const abort = () => done(new TransportError(`UDP exchange with ${endpointText(to)} aborted`));
    const done = (err: Error | null, msg?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      sock.close();
      if (err) reject(err);
      else resolve(msg!);
    };
    const timer = setTimeout(
      () => done(new TransportError(`no UDP reply from ${endpointText(to)} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    if (signal?.aborted) return abort();
    signal?.addEventListener('abort', abort);
    sock.on('error', (e) => done(new TransportError(`UDP to ${endpointText(to)}: ${e.message}`)));
    sock.on('message', (msg) => {
      // Replies for another ID are ignored (RFC 5452 §9.1), not fatal.
      if (msg.length >= 2 && msg.readUInt16BE(0) === id) done(null, msg);
    });
    sock.connect(to.port, to.address, () => sock.send(query));
  });
}

export interface StreamStats {
  messages: number;
  bytes: number;
}

/**
 * Sends `query` over TCP (TLS when `to.tls`) and hands each response message to `onMessage` until
 * it returns true. Fails when the connection (with its TLS handshake) cannot be made in
 * `connectMs`, when no byte arrives for `idleMs`, when `totalMs` passes, or when the peer closes
 * before the stream is complete. A TLS failure's message says why (tls.ts `tlsFailureReason`).
 */
export function tcpStream(
  to: Endpoint,
  query: Buffer,
  onMessage: (msg: Buffer) => boolean,
  limits: { connectMs: number; idleMs: number; totalMs: number; maxBytes: number },
): Promise<StreamStats> {
  return new Promise((resolve, reject) => {
    const stats: StreamStats = { messages: 0, bytes: 0 };
    let pending = Buffer.alloc(0);
    let settled = false;
    const t = to.tls;
    const sock: net.Socket = t
      ? tls.connect(tlsConnectOptions(to.address, to.port, t))
      : net.connect({ host: to.address, port: to.port });
    const proto = t ? 'TLS' : 'TCP';
    let tcpUp = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(totalTimer);
      sock.destroy();
      if (err) reject(err);
      else resolve(stats);
    };
    const connectTimer = setTimeout(
      () =>
        finish(
          new TransportError(
            t && tcpUp
              ? `TLS ${endpointText(to)}: handshake timeout (${limits.connectMs} ms)`
              : `TCP connect to ${endpointText(to)} timed out after ${limits.connectMs} ms`,
          ),
        ),
      limits.connectMs,
    );
    const totalTimer = setTimeout(
      () => finish(new TransportError(`transfer from ${endpointText(to)} exceeded ${limits.totalMs} ms`)),
      limits.totalMs,
    );
    const ready = () => {
      if (t) {
        const wrong = verifyPeer(sock as tls.TLSSocket, t);
        if (wrong) return finish(new TransportError(`TLS ${endpointText(to)}: ${tlsFailureReason(wrong)}`));
      }
      clearTimeout(connectTimer);
      sock.setTimeout(limits.idleMs, () =>
        finish(new TransportError(`no data from ${endpointText(to)} for ${limits.idleMs} ms`)),
      );
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    };
    sock.on('connect', () => {
      tcpUp = true;
      if (!t) ready();
    });
    if (t) sock.on('secureConnect', ready);
    sock.on('data', (chunk) => {
      stats.bytes += chunk.length;
      if (stats.bytes > limits.maxBytes) {
        finish(new TransportError(`transfer from ${endpointText(to)} exceeded ${limits.maxBytes} bytes`));
        return;
      }
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (!settled && pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        stats.messages++;
        try {
          if (onMessage(msg)) finish(null);
        } catch (e) {
          finish(e as Error);
        }
      }
    });
    sock.on('error', (e) =>
      finish(
        new TransportError(`${proto} ${endpointText(to)}: ${t && tcpUp ? tlsFailureReason(e) : e.message}`),
      ),
    );
    sock.on('close', () => {
      // TLS 1.3 (RFC 8446 §4.4.2): a primary refusing our client certificate (or its absence)
      // does so after our side of the handshake is done, often by closing without an alert.
      const why =
        t && stats.messages === 0
          ? ` before any reply over TLS (${t.certFile ? 'was our client certificate refused?' : 'does it require a client certificate (certFile, keyFile)?'})`
          : ' mid-stream';
      finish(new TransportError(`${endpointText(to)} closed the connection${why}`));
    });
  });
}
