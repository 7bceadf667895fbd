/**
 * The native path: the addon owns the socket and the arenas; it calls `dispatch(count)` once per
 * recvmmsg batch and, when that returns, sends every slot with replyLength > 0 with one sendmmsg.
 */
import type { DatagramBatch, DatagramSocket, DatagramStats, ResolvedDatagramOptions } from './datagram.js';
import { checkDestination, reportHandlerError } from './errors.js';
import type { UdpBatchAddon } from './native-addon.js';
import { sockaddrIPv4, sockaddrIPv6, sockaddrPort } from './peer-address.js';

type Handler = (b: DatagramBatch) => void;

class Batch implements DatagramBatch {
  count = 0;
  constructor(
    readonly data: Buffer,
    readonly length: Uint32Array,
    readonly slotSize: number,
    readonly reply: Buffer,
    readonly replyLength: Uint32Array,
    readonly peerBytes: Uint8Array,
    private readonly peerStride: number,
    readonly peerV6: boolean,
  ) {}

  peerAddress(i: number): string {
    const off = i * this.peerStride;
    return this.peerV6 ? sockaddrIPv6(this.peerBytes, off) : sockaddrIPv4(this.peerBytes, off);
  }

  peerPort(i: number): number {
    return sockaddrPort(this.peerBytes, i * this.peerStride);
  }

  /** sockaddr_in: the address at +4; sockaddr_in6: at +8. */
  peerOffset(i: number): number {
    return i * this.peerStride + (this.peerV6 ? 8 : 4);
  }
}

class BatchedSocket implements DatagramSocket {
  readonly kind = 'batched' as const;
  private handler: Handler | undefined;
  private errorListener: ((err: unknown) => void) | undefined;
  private started = false;
  private closing: Promise<void> | undefined;
  private readonly handle: object;
  private readonly batch: Batch;
  private readonly port: number;
  private readonly rcvbuf: number;

  constructor(
    private readonly addon: UdpBatchAddon,
    private readonly opts: ResolvedDatagramOptions,
  ) {
    const r = addon.open(
      opts.family,
      opts.address,
      opts.port,
      opts.reusePort,
      opts.receiveBuffer,
      opts.batchSize,
      opts.slotSize,
      (count) => this.dispatch(count),
    );
    this.handle = r.handle;
    this.port = r.port;
    this.rcvbuf = r.receiveBuffer;
    this.batch = new Batch(
      Buffer.from(r.data),
      new Uint32Array(r.length),
      opts.slotSize,
      Buffer.from(r.reply),
      new Uint32Array(r.replyLength),
      new Uint8Array(r.peer),
      addon.peerStride,
      opts.family === 6,
    );
  }

  private dispatch(count: number): void {
    const handler = this.handler;
    if (handler === undefined) return;
    this.batch.count = count;
    try {
      handler(this.batch);
    } catch (err) {
      reportHandlerError(this.errorListener, err);
    }
  }

  address(): { address: string; port: number } {
    return { address: this.opts.address, port: this.port };
  }

  receiveBufferSize(): number {
    return this.rcvbuf;
  }

  onBatch(handler: Handler): void {
    this.handler = handler;
    if (!this.started && this.closing === undefined) {
      this.started = true;
      this.addon.start(this.handle);
    }
  }

  onError(listener: (err: unknown) => void): void {
    this.errorListener = listener;
  }

  send(buf: Uint8Array, port: number, address: string): void {
    checkDestination(this.opts.family, port, address);
    this.addon.send(this.handle, buf, port, address);
  }

  stats(): DatagramStats {
    const [received, sent, truncated, sendErrors] = this.addon.stats(this.handle);
    return { received, sent, truncated, sendErrors };
  }

  close(): Promise<void> {
    // The fd is closed synchronously (the port is free at once); libuv releases its poll handle
    // on a later loop turn, which the addon waits for itself, also at worker-thread exit.
    this.closing ??= Promise.resolve(this.addon.close(this.handle));
    return this.closing;
  }
}

export function openBatchedSocket(addon: UdpBatchAddon, opts: ResolvedDatagramOptions): DatagramSocket {
  return new BatchedSocket(addon, opts);
}
