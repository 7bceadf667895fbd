/**
 * Address match lists (`allowNotify`, `allowTransfer`): IP addresses and CIDR prefixes, matched
 * with node:net's BlockList. `key:NAME` entries need TSIG and match nothing until it exists.
 */
import net from 'node:net';

export type AddressMatch = (address: string) => boolean;

export function addressAcl(entries: readonly string[]): AddressMatch {
  const list = new net.BlockList();
  let any = false;
  for (const e of entries) {
    if (e.startsWith('key:')) continue;
    const [addr, bits] = e.split('/');
    const family = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
    any = true;
  }
  if (!any) return () => false;
  return (address) => {
    // A v4 peer on a dual-stack socket shows up as ::ffff:a.b.c.d.
    const a = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
    return list.check(a, net.isIPv6(a) ? 'ipv6' : 'ipv4');
  };
}
