/**
 * A raw DNS-over-TCP exchange that keeps every reply message (RFC 1035 §4.2.2 framing): for
 * recording zone transfers byte for byte, TSIG and all, from any server.
 */
import net from 'node:net';
import { HOST } from './proc.js';

/**
 * Sends `msg` to HOST:port and collects the framed replies until `done(message)` says the stream
 * is complete, or (no `done`) until `quietMs` pass without data. Rejects after `timeoutMs`.
 */
export function tcpStream(
  port: number,
  msg: Buffer,
  opts: { done?: (m: Buffer) => boolean; quietMs?: number; timeoutMs?: number } = {},
): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let buf = Buffer.alloc(0);
    let quiet: NodeJS.Timeout | undefined;
    const sock = net.connect({ host: HOST, port });
    const end = (err?: Error) => {
      clearTimeout(timer);
      clearTimeout(quiet);
      sock.destroy();
      if (err) reject(err);
      else resolve(got);
    };
    const timer = setTimeout(
      () =>
        end(
          new Error(
            `TCP stream from ${port} incomplete after ${opts.timeoutMs ?? 20_000} ms (${got.length} messages)`,
          ),
        ),
      opts.timeoutMs ?? 20_000,
    );
    sock.on('connect', () =>
      sock.write(Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg])),
    );
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const m = Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + m.length);
        got.push(m);
        if (opts.done?.(m)) return end();
      }
      if (!opts.done) {
        clearTimeout(quiet);
        quiet = setTimeout(() => end(), opts.quietMs ?? 1000);
      }
    });
    sock.on('error', (e) => end(e));
  });
}
