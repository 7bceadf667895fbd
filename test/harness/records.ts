/** Small builders for wire-format records in unit tests (no I/O). */
import net from 'node:net';
import { textToName } from '../../src/dns/name.js';
import type { ZoneRR } from '../../src/store/zone-store.js';

export const TYPES: Record<string, number> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  DNAME: 39,
  DS: 43,
};

export const n = (s: string) => textToName(s);

export function a(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

export function aaaa(ip: string): Buffer {
  if (!net.isIPv6(ip)) throw new Error(ip);
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) b.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return b;
}

export function soa(mname: string, rname: string, serial: number, minimum = 300): Buffer {
  const t = Buffer.alloc(20);
  t.writeUInt32BE(serial, 0);
  t.writeUInt32BE(3600, 4);
  t.writeUInt32BE(600, 8);
  t.writeUInt32BE(86400, 12);
  t.writeUInt32BE(minimum, 16);
  return Buffer.concat([n(mname), n(rname), t]);
}

export function mx(pref: number, host: string): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(pref);
  return Buffer.concat([p, n(host)]);
}

export function txt(...strings: string[]): Buffer {
  return Buffer.concat(
    strings.map((s) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)])),
  );
}

export function rr(owner: string, type: keyof typeof TYPES | number, ttl: number, rdata: Buffer): ZoneRR {
  return { owner: n(owner), type: typeof type === 'number' ? type : TYPES[type], ttl, rdata };
}

/** A small zone covering every branch of the lookup. */
export function exampleZone(serial = 1): ZoneRR[] {
  return [
    rr('example.test', 'SOA', 3600, soa('ns1.example.test', 'hostmaster.example.test', serial)),
    rr('example.test', 'NS', 3600, n('ns1.example.test')),
    rr('example.test', 'MX', 3600, mx(10, 'mail.example.test')),
    rr('ns1.example.test', 'A', 3600, a('192.0.2.53')),
    rr('mail.example.test', 'A', 3600, a('192.0.2.25')),
    rr('mail.example.test', 'AAAA', 3600, aaaa('2001:db8::25')),
    rr('www.example.test', 'A', 300, a('192.0.2.1')),
    rr('www.example.test', 'A', 300, a('192.0.2.2')),
    rr('alias.example.test', 'CNAME', 300, n('www.example.test')),
    rr('loop1.example.test', 'CNAME', 300, n('loop2.example.test')),
    rr('loop2.example.test', 'CNAME', 300, n('loop1.example.test')),
    rr('out.example.test', 'CNAME', 300, n('www.example.net')),
    rr('dangling.example.test', 'CNAME', 300, n('nothere.example.test')),
    rr('sub.example.test', 'NS', 3600, n('ns.sub.example.test')),
    rr('sub.example.test', 'DS', 3600, Buffer.from('0001080201', 'hex')),
    rr('ns.sub.example.test', 'A', 3600, a('192.0.2.153')),
    rr('*.wild.example.test', 'A', 60, a('192.0.2.80')),
    rr('*.wild.example.test', 'TXT', 60, txt('wildcard')),
    rr('*.cw.example.test', 'CNAME', 60, n('www.example.test')),
    rr('exists.wild.example.test', 'TXT', 60, txt('real')),
    rr('a.b.ent.example.test', 'A', 60, a('192.0.2.99')),
    rr('dname.example.test', 'DNAME', 60, n('example.net')),
    rr('dn2.example.test', 'DNAME', 60, n('www.example.test')),
  ];
}
