/** Operator commands that read the database or probe the running server. */
import type { Config } from './config.js';
import { readHeader } from './dns/message.js';
import { ROOT, textToName } from './dns/name.js';
import { rcodeText } from './dns/rcode.js';
import { TYPE } from './dns/types.js';
import { ZoneStore } from './store/zone-store.js';
import { buildQuery } from './xfrin/query.js';
import { udpExchange } from './xfrin/transport.js';

const iso = (t: number | null) => (t === null ? '-' : new Date(t * 1000).toISOString());

export function status(config: Config): number {
  const store = new ZoneStore(config.database);
  try {
    const rows = store.zones();
    const lines = [
      ['zone', 'serial', 'state', 'records', 'primary', 'last_refresh', 'next_refresh', 'expires_at'],
    ];
    for (const z of rows) {
      lines.push([
        z.name,
        String(z.serial ?? '-'),
        z.state,
        String(z.records),
        z.primary_addr ?? '-',
        iso(z.last_refresh),
        iso(z.next_refresh),
        iso(z.expires_at),
      ]);
    }
    const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
    for (const l of lines)
      process.stdout.write(
        `${l
          .map((c, i) => c.padEnd(widths[i]))
          .join('  ')
          .trimEnd()}\n`,
      );
    return 0;
  } finally {
    store.close();
  }
}

/** The zone as `dig AXFR` would print it: SOA first, then every RR, SOA again. */
export function dumpZone(config: Config, zone: string): number {
  const name = zone.toLowerCase().replace(/\.$/, '');
  const store = new ZoneStore(config.database);
  try {
    if (!store.zone(name)) {
      process.stderr.write(`ns2 dump: zone "${name}" is not in the database\n`);
      return 1;
    }
    const rows = store.db
      .prepare(
        `SELECT name, ttl, type, rdata, rtype FROM records WHERE zone = ?
         ORDER BY rtype != 6, nkey, rtype, rdata_wire`,
      )
      .all(name) as { name: string; ttl: number; type: string; rdata: string; rtype: number }[];
    const line = (r: (typeof rows)[number]) => `${r.name}.\t${r.ttl}\tIN\t${r.type}\t${r.rdata}\n`;
    for (const r of rows) process.stdout.write(line(r));
    const soa = rows.find((r) => r.rtype === TYPE.SOA);
    if (soa) process.stdout.write(line(soa));
    return 0;
  } finally {
    store.close();
  }
}

/** Any well-formed reply on the first listen address means the server is answering. */
export async function healthcheck(config: Config): Promise<number> {
  const l = config.listen[0];
  const address = l.address === '0.0.0.0' ? '127.0.0.1' : l.address === '::' ? '::1' : l.address;
  const zone = config.zones[0] ? textToName(config.zones[0].name) : ROOT;
  const { msg } = buildQuery(zone, TYPE.SOA);
  try {
    const reply = await udpExchange({ address, port: l.port }, msg, 2000);
    process.stdout.write(`ok: ${rcodeText(readHeader(reply).flags & 0xf)} from ${address}#${l.port}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`unhealthy: ${(e as Error).message}\n`);
    return 1;
  }
}
