/**
 * The fallback path: node:dgram, one handler call per datagram. Each message is copied into slot 0
 * of this socket's own arenas, so handlers see the same layout as with the addon. Replies are
 * copied before `socket.send` because dgram sends on a later tick and the arena is reused.
 */
import dgram from 'node:dgram';
import { ipBytes } from '../ip-text.js';
import type { DatagramBatch, DatagramSocket, DatagramStats, ResolvedDatagramOptions } from './datagram.js';
import { checkDestination, reportHandlerError } from './errors.js';

type Handler = (b: DatagramBatch) => void;

/** dgram's `reusePort` option: Node >= 22.12 on the 22 line, >= 23.1 after. */
export function dgramReusePort(): boolean {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

class SingleBatch implements DatagramBatch {
  readonly count = 1;
  readonly data: Buffer;
  readonly length = new Uint32Array(1);
  readonly reply: Buffer;
  readonly replyLength = new Uint32Array(1);
  address = '';
  port = 0;
  readonly peerBytes = new Uint8Array(16);
  /** The address peerBytes holds. */
  private parsed = '';

  constructor(
    readonly slotSize: number,
    readonly peerV6: boolean,
  ) {
    this.data = Buffer.alloc(slotSize);
    this.reply = Buffer.alloc(slotSize);
  }

  peerOffset(_i: number): number {
    if (this.parsed !== this.address) {
      // dgram gives text only: parsed when asked (rate limiting), once per new peer address.
      const a = this.address;
      this.peerBytes.set(ipBytes(this.peerV6 ? a.replace(/%.*$/, '') : a));
      this.parsed = a;
    }
    return 0;
  }

  peerAddress(_i: number): string {
    return this.address;
  }

  peerPort(_i: number): number {
    return this.port;
  }
}

class DgramSocket implements DatagramSocket {
  readonly kind = 'dgram' as const;
  private handler: Handler | undefined;
  private errorListener: ((err: unknown) => void) | undefined;
  private closing: Promise<void> | undefined;
  private readonly batch: SingleBatch;
  private readonly counts: DatagramStats = { received: 0, sent: 0, truncated: 0, sendErrors: 0 };
  private readonly afterSend = (err: Error | null): void => {
    if (err) this.counts.sendErrors++;
    else this.counts.sent++;
  };

  constructor(
    private readonly socket: dgram.Socket,
    slotSize: number,
    private readonly family: 4 | 6,
  ) {
    this.batch = new SingleBatch(slotSize, family === 6);
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
  }

  /** Once bound: errors on a bound UDP socket are per datagram (e.g. ICMP unreachable). */
  bound(): void {
    this.socket.on('error', () => {
      this.counts.sendErrors++;
    });
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const b = this.batch;
    if (msg.length > b.slotSize) {
      this.counts.truncated++;
      return;
    }
    this.counts.received++;
    const handler = this.handler;
    if (handler === undefined) return;
    msg.copy(b.data, 0);
    b.length[0] = msg.length;
    b.replyLength[0] = 0;
    b.address = rinfo.address;
    b.port = rinfo.port;
    try {
      handler(b);
    } catch (err) {
      reportHandlerError(this.errorListener, err);
    }
    const len = b.replyLength[0];
    if (len === 0 || this.closing !== undefined) return;
    if (len > b.slotSize) {
      this.counts.sendErrors++;
      return;
    }
    this.socket.send(Buffer.from(b.reply.subarray(0, len)), rinfo.port, rinfo.address, this.afterSend);
  }

  address(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  receiveBufferSize(): number {
    return this.socket.getRecvBufferSize();
  }

  onBatch(handler: Handler): void {
    this.handler = handler;
  }

  onError(listener: (err: unknown) => void): void {
    this.errorListener = listener;
  }

  send(buf: Uint8Array, port: number, address: string): void {
    checkDestination(this.family, port, address);
    if (this.closing !== undefined) {
      this.counts.sendErrors++;
      return;
    }
    this.socket.send(Buffer.from(buf), port, address, this.afterSend);
  }

  stats(): DatagramStats {
    return { ...this.counts };
  }

  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => this.socket.close(() => resolve()));
    return this.closing;
  }
}

export function openDgramSocket(opts: ResolvedDatagramOptions): Promise<DatagramSocket> {
  const socketOptions: dgram.SocketOptions & { reusePort?: boolean } = {
    type: opts.family === 6 ? 'udp6' : 'udp4',
    ipv6Only: opts.family === 6,
  };
  if (opts.reusePort) socketOptions.reusePort = true;
  if (opts.receiveBuffer > 0) socketOptions.recvBufferSize = opts.receiveBuffer;
  const socket = dgram.createSocket(socketOptions);
  const wrapped = new DgramSocket(socket, opts.slotSize, opts.family);
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address: opts.address, port: opts.port, exclusive: true }, () => {
      socket.off('error', onError);
      wrapped.bound();
      resolve(wrapped);
    });
  });
}
