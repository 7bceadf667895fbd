/**
 * Match lists (`allowNotify`, `allowTransfer`): IP addresses and CIDR prefixes, matched with
 * node:net's BlockList, and `key:NAME` entries, matched by a request validly TSIG-signed with
 * that key. Any entry matching allows. In `allowTransfer` an entry prefixed `tls:` (`tls:192.0.2.54`,
 * `tls:key:NAME`) matches only a request that came over TLS (RFC 9103 §9.3); `requireTls` makes
 * every entry so.
 */
import net from 'node:net';

/**
 * `key` is the name of the TSIG key that signed the request (verified), if any; `tls` whether it
 * came over TLS.
 */
export type AclMatch = (address: string, key?: string, tls?: boolean) => boolean;

/** One matcher per distinct list: thousands of catalog member zones share their primaries'. */
const made = new Map<string, AclMatch>();

export function acl(entries: readonly string[], opts: { requireTls?: boolean } = {}): AclMatch {
  const id = `${opts.requireTls ? 'requireTls\n' : ''}${entries.join('\n')}`;
  let m = made.get(id);
  if (!m) {
    m = build(entries, opts.requireTls === true);
    made.set(id, m);
  }
  return m;
}

/** A zone's `allowTransfer`, with its `requireTls`. */
export function transferAcl(z: { allowTransfer: readonly string[]; requireTls: boolean }): AclMatch {
  return acl(z.allowTransfer, { requireTls: z.requireTls });
}

function build(entries: readonly string[], requireTls: boolean): AclMatch {
  const overTls = entries.filter((e) => e.startsWith('tls:')).map((e) => e.slice(4));
  const plain = plainAcl(entries.filter((e) => !e.startsWith('tls:')));
  if (overTls.length === 0 && !requireTls) return (address, key) => plain(address, key);
  const tlsOnly = plainAcl(overTls);
  return (address, key, tls) => {
    if (!tls) return !requireTls && plain(address, key);
    return plain(address, key) || tlsOnly(address, key);
  };
}

/** One list of plain entries: addresses, prefixes, keys. */
function plainAcl(entries: readonly string[]): (address: string, key?: string) => boolean {
  const list = new net.BlockList();
  const keys = new Set<string>();
  let addresses = false;
  for (const e of entries) {
    // Config has normalised the name (lower case, no trailing dot), as the TSIG check reports it.
    if (e.startsWith('key:')) {
      keys.add(e.slice(4));
      continue;
    }
    const [addr, bits] = e.split('/');
    const family = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
    addresses = true;
  }
  return (address, key) => {
    if (key !== undefined && keys.has(key)) return true;
    if (!addresses) return false;
    // A v4 peer on a dual-stack socket shows up as ::ffff:a.b.c.d.
    const a = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
    if (!net.isIP(a)) return false;
    return list.check(a, net.isIPv6(a) ? 'ipv6' : 'ipv4');
  };
}
