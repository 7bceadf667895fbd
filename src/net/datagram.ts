/**
 * Datagram I/O behind one interface: a socket owned by the native addon (native/udp_batch.c),
 * drained with recvmmsg and answered with sendmmsg, one handler call per batch of up to
 * `batchSize` datagrams; or, where the addon is not built or not wanted, node:dgram with one
 * handler call per datagram (count 1). Nothing here knows DNS.
 *
 * Contract for the handler: read datagram i from `data` at `i * slotSize` (`length[i]` bytes),
 * write its reply at the same offset of `reply` and set `replyLength[i]` (0 = no reply; all are
 * 0 when the handler is called). Replies are sent when the handler returns. The batch object and
 * its arenas are reused: don't keep them past the call (copy what you need).
 *
 * Handler errors: a throwing handler never closes the socket. The error goes to the `onError`
 * listener; without one it is rethrown on the next tick (an uncaught exception, as Node does for
 * an 'error' event nobody listens to). Replies the handler set before it threw are still sent;
 * the rest of that batch gets none. Later datagrams are served as usual.
 *
 * Choosing the path: `native: false`, or environment NS2_UDP=dgram, gives dgram. NS2_UDP=native
 * makes opening fail instead of falling back when the addon does not load. `nativeDatagram()`
 * says once whether the addon loaded and why not, so the caller logs one warning.
 */
import net from 'node:net';
import { openBatchedSocket } from './batched-socket.js';
import { dgramReusePort, openDgramSocket } from './dgram-socket.js';
import { DatagramError } from './errors.js';
import { loadAddon } from './native-addon.js';

export { DatagramError, type DatagramErrorCode } from './errors.js';

export interface DatagramBatch {
  /** Datagrams in this batch. */
  readonly count: number;
  /** Receive arena: datagram i = data.subarray(i * slotSize, i * slotSize + length[i]). */
  readonly data: Buffer;
  /** Received lengths. */
  readonly length: Uint32Array;
  readonly slotSize: number;
  /** Reply arena: the handler writes reply i at i * slotSize … */
  readonly reply: Buffer;
  /** … and sets replyLength[i] (0 = no reply; all reset to 0 before each call). */
  readonly replyLength: Uint32Array;
  /** "127.0.0.1", "::1" (RFC 5952 form, `%scope` for link-local) — formatted only when asked. */
  peerAddress(i: number): string;
  peerPort(i: number): number;
  /** The peer's address as bytes (for per-prefix accounting): 16 at peerOffset(i) when peerV6, else 4. */
  readonly peerV6: boolean;
  readonly peerBytes: Uint8Array;
  peerOffset(i: number): number;
}

export interface DatagramStats {
  /** Datagrams handed to the handler. */
  received: number;
  /** Replies and `send()` datagrams the kernel accepted. */
  sent: number;
  /** Datagrams dropped because they were larger than a slot. */
  truncated: number;
  /** Replies or sends dropped: socket buffer full (EAGAIN/ENOBUFS), unreachable, too long, … */
  sendErrors: number;
}

export interface DatagramSocket {
  readonly kind: 'batched' | 'dgram';
  address(): { address: string; port: number };
  /** SO_RCVBUF as the kernel reports it (Linux reports twice the usable size it granted). */
  receiveBufferSize(): number;
  /** Sets the handler (replacing any earlier one); reading starts with the first call. */
  onBatch(handler: (b: DatagramBatch) => void): void;
  /** Errors thrown by the handler (see the module comment for the default). */
  onError(listener: (err: unknown) => void): void;
  /**
   * One datagram outside a batch (sent at once; `buf` may be reused on return). Network errors
   * don't throw: they count in sendErrors. An address that is not an IP literal of the socket's
   * family, or a port outside 1..65535, throws NS2_ERR_DATAGRAM_ADDRESS.
   */
  send(buf: Uint8Array, port: number, address: string): void;
  stats(): DatagramStats;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface DatagramOptions {
  address: string;
  port: number;
  /** SO_REUSEPORT: several sockets (e.g. one per worker thread) bind the same address and port. */
  reusePort?: boolean;
  /** SO_RCVBUF in bytes to ask for; default: the system's. */
  receiveBuffer?: number;
  /** Datagrams per recvmmsg (default 64, 1..1024). The dgram path always delivers 1. */
  batchSize?: number;
  /** Bytes per slot in both arenas (default 65536, so no datagram is ever cut; 1..65536). */
  slotSize?: number;
  /** false: use dgram even where the addon loads. */
  native?: boolean;
}

export const DATAGRAM_DEFAULTS = Object.freeze({
  batchSize: 64, // datagrams per recvmmsg / handler call
  slotSize: 65536, // bytes; > the largest UDP payload (65507 over IPv4, 65527 over IPv6)
});

/** Whether the addon loaded here, and why not. */
export function nativeDatagram(): { ok: true } | { ok: false; reason: string } {
  if (process.env.NS2_UDP === 'dgram') return { ok: false, reason: 'NS2_UDP=dgram' };
  const loaded = loadAddon();
  return loaded.ok ? { ok: true } : { ok: false, reason: loaded.reason };
}

/**
 * Whether `reusePort: true` can be honoured: always with the addon (Linux); with dgram only on
 * Node ≥ 22.12 / 23.1. Where it can't, open one socket (one worker) instead.
 */
export function reusePortAvailable(opts: { native?: boolean } = {}): boolean {
  if (opts.native !== false && nativeDatagram().ok) return true;
  return dgramReusePort();
}

export interface ResolvedDatagramOptions {
  address: string;
  port: number;
  family: 4 | 6;
  reusePort: boolean;
  receiveBuffer: number;
  batchSize: number;
  slotSize: number;
}

function resolve(opts: DatagramOptions): ResolvedDatagramOptions {
  const family = net.isIP(opts.address);
  if (family !== 4 && family !== 6) {
    throw new DatagramError('NS2_ERR_DATAGRAM_OPTIONS', `address must be an IP address: ${opts.address}`);
  }
  const int = (name: string, v: number | undefined, dflt: number, min: number, max: number): number => {
    const n = v ?? dflt;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new DatagramError('NS2_ERR_DATAGRAM_OPTIONS', `${name} must be an integer ${min}..${max}: ${v}`);
    }
    return n;
  };
  return {
    address: opts.address,
    port: int('port', opts.port, 0, 0, 65535),
    family,
    reusePort: opts.reusePort === true,
    receiveBuffer: int('receiveBuffer', opts.receiveBuffer, 0, 0, 0x3fffffff),
    batchSize: int('batchSize', opts.batchSize, DATAGRAM_DEFAULTS.batchSize, 1, 1024),
    slotSize: int('slotSize', opts.slotSize, DATAGRAM_DEFAULTS.slotSize, 1, 65536),
  };
}

export async function openDatagramSocket(opts: DatagramOptions): Promise<DatagramSocket> {
  const o = resolve(opts);
  const forced = process.env.NS2_UDP;
  if (opts.native !== false && forced !== 'dgram') {
    const loaded = loadAddon();
    if (loaded.ok) return openBatchedSocket(loaded.addon, o);
    if (forced === 'native') {
      throw new DatagramError('NS2_ERR_DATAGRAM_NATIVE_UNAVAILABLE', `NS2_UDP=native: ${loaded.reason}`);
    }
  }
  if (o.reusePort && !dgramReusePort()) {
    throw new DatagramError(
      'NS2_ERR_REUSEPORT_UNAVAILABLE',
      `reusePort needs the native addon or Node >= 22.12 (this is ${process.version})`,
    );
  }
  return openDgramSocket(o);
}
