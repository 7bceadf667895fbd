/** The one error class of src/net, with a stable code; and the check that `send` uses. */
import net from 'node:net';

export type DatagramErrorCode =
  | 'NS2_ERR_DATAGRAM_OPTIONS'
  | 'NS2_ERR_DATAGRAM_ADDRESS'
  | 'NS2_ERR_DATAGRAM_NATIVE_UNAVAILABLE'
  | 'NS2_ERR_REUSEPORT_UNAVAILABLE';

export class DatagramError extends Error {
  readonly code: DatagramErrorCode;
  constructor(code: DatagramErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatagramError';
    this.code = code;
  }
}

/** Throws unless `address` is an IP literal of `family` and `port` is 1..65535. */
export function checkDestination(family: 4 | 6, port: number, address: string): void {
  if (net.isIP(address) !== family || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DatagramError(
      'NS2_ERR_DATAGRAM_ADDRESS',
      `send: need an IPv${family} address and a port 1..65535, got ${address} port ${port}`,
    );
  }
}

/**
 * A handler's error goes to the socket's `onError` listener; without one it is rethrown on the
 * next tick (an uncaught exception, as Node does for an 'error' event nobody listens to).
 */
export function reportHandlerError(listener: ((err: unknown) => void) | undefined, err: unknown): void {
  if (listener !== undefined) {
    listener(err);
    return;
  }
  process.nextTick(() => {
    throw err;
  });
}
