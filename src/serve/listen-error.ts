/**
 * Why a listening socket could not be opened, in one line an operator can act on: the address,
 * the transport, and for the common causes what to do (no stack trace; `ns2 serve` prints the
 * message and exits 1).
 */
import fs from 'node:fs';

export type Transport = 'UDP' | 'TCP' | 'HTTP';

export class ListenError extends Error {
  readonly code = 'NS2_ERR_LISTEN';
  constructor(
    message: string,
    /** The system error code (EADDRINUSE, EACCES, …) when there was one. */
    readonly errno: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ListenError';
  }
}

/** The first port an unprivileged process may bind (Linux sysctl), or undefined elsewhere. */
function unprivilegedPortStart(): number | undefined {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
  } catch {
    return undefined;
  }
}

const where = (address: string, port: number) =>
  address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;

/**
 * The sentence for `err` (from dgram, net, http or the native addon) binding address:port.
 * `portStart`: net.ipv4.ip_unprivileged_port_start (read from /proc unless given).
 */
export function listenErrorMessage(
  transport: Transport,
  address: string,
  port: number,
  err: unknown,
  portStart: number | undefined = unprivilegedPortStart(),
): string {
  const code = (err as { code?: unknown })?.code;
  const head = `cannot listen on ${where(address, port)} (${transport})`;
  switch (code) {
    case 'EADDRINUSE':
      return `${head}: address already in use: another process (another nameserver, or ns2 still running) holds it; find it with \`ss -${transport === 'UDP' ? 'u' : 't'}lnp 'sport = :${port}'\``;
    case 'EACCES': {
      const start = portStart;
      if (port < (start ?? 1024)) {
        return (
          `${head}: permission denied: port ${port} is below net.ipv4.ip_unprivileged_port_start (${start ?? 1024}), ` +
          'so binding it needs CAP_NET_BIND_SERVICE: run under systemd with AmbientCapabilities=CAP_NET_BIND_SERVICE ' +
          '(contrib/ns2.service), or `setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")"`, ' +
          'or lower the limit with `sysctl net.ipv4.ip_unprivileged_port_start=53`, or listen on a port ≥ 1024'
        );
      }
      return `${head}: permission denied`;
    }
    case 'EADDRNOTAVAIL':
      return `${head}: no interface of this host has that address`;
    case 'EAFNOSUPPORT':
      return `${head}: this host has no ${address.includes(':') ? 'IPv6' : 'IPv4'} support`;
    default:
      return `${head}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

export function listenError(transport: Transport, address: string, port: number, err: unknown): ListenError {
  const code = (err as { code?: unknown })?.code;
  return new ListenError(
    listenErrorMessage(transport, address, port, err),
    typeof code === 'string' ? code : undefined,
    {
      cause: err,
    },
  );
}
