/**
 * Match lists (`allowNotify`, `allowTransfer`): IP addresses and CIDR prefixes, matched with
 * node:net's BlockList, and `key:NAME` entries, matched by a request validly TSIG-signed with
 * that key. Any entry matching allows.
 */
import net from 'node:net';

/** `key` is the name of the TSIG key that signed the request (verified), if any. */
export type AclMatch = (address: string, key?: string) => boolean;

/** One matcher per distinct list: thousands of catalog member zones share their primaries'. */
const made = new Map<string, AclMatch>();

export function acl(entries: readonly string[]): AclMatch {
  const id = entries.join('\n');
  let m = made.get(id);
  if (!m) {
    m = build(entries);
    made.set(id, m);
  }
  return m;
}

function build(entries: readonly string[]): AclMatch {
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
