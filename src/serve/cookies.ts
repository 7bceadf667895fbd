/**
 * DNS COOKIEs (RFC 7873) with interoperable server cookies (RFC 9018): version 1, three reserved
 * octets, a 32-bit timestamp and SipHash-2-4 over client cookie | version | reserved | timestamp |
 * client address. We never require cookies; a valid one tells rate limiting the client is real.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { siphash24 } from '../dns/siphash.js';

export type CookieCheck =
  /** Client cookie only, or a server cookie we did not make: answer with a fresh one. */
  | { kind: 'new'; client: Buffer }
  /** A server cookie we made, recently: the client has seen our answers before. */
  | { kind: 'valid'; client: Buffer }
  /** Length not 8 or 16..40 (RFC 7873 §5.2.2): FORMERR. */
  | { kind: 'malformed' };

/** RFC 9018 §4.3: a server cookie is good for an hour, and may be up to 5 minutes in the future. */
const LIFETIME = 3600;
const SKEW = 300;
/** Refresh the server cookie once it is half an hour old (RFC 9018 §4.3). */
const REFRESH = 1800;

export class Cookies {
  constructor(
    private readonly secret: Buffer = randomBytes(16),
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  check(option: Buffer, clientAddress: string): CookieCheck {
    if (option.length !== 8 && (option.length < 16 || option.length > 40)) return { kind: 'malformed' };
    const client = option.subarray(0, 8);
    if (option.length !== 24 || option[8] !== 1) return { kind: 'new', client };
    const time = option.readUInt32BE(12);
    const age = (this.now() - time) | 0; // serial arithmetic on the 32-bit clock
    if (age > LIFETIME || age < -SKEW) return { kind: 'new', client };
    const expected = this.hash(client, option.subarray(8, 16), clientAddress);
    return expected.equals(option.subarray(16, 24)) ? { kind: 'valid', client } : { kind: 'new', client };
  }

  /** Client cookie + our server cookie, for the reply's COOKIE option. */
  reply(check: CookieCheck & { client: Buffer }, option: Buffer, clientAddress: string): Buffer {
    if (check.kind === 'valid' && ((this.now() - option.readUInt32BE(12)) | 0) < REFRESH)
      return Buffer.from(option);
    const head = Buffer.alloc(8);
    head[0] = 1;
    head.writeUInt32BE(this.now() >>> 0, 4);
    return Buffer.concat([check.client, head, this.hash(check.client, head, clientAddress)]);
  }

  private hash(client: Buffer, head: Buffer, clientAddress: string): Buffer {
    return siphash24(this.secret, Buffer.concat([client, head, addressBytes(clientAddress)]));
  }
}

function addressBytes(address: string): Buffer {
  const a = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
  if (net.isIPv4(a)) return Buffer.from(a.split('.').map(Number));
  if (!net.isIPv6(a)) return Buffer.alloc(0);
  const [head, tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => {
    b.writeUInt16BE(Number.parseInt(g, 16) || 0, i * 2);
  });
  return b;
}
