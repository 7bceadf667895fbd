/**
 * A scripted hostile primary: one loopback port (UDP and TCP) serving several zones. Each zone
 * first behaves (its good version answers SOA and AXFR), and once armed answers the SOA query
 * with the bad serial and AXFR/IXFR with a script of steps: framed messages, raw bytes, pauses,
 * a close, or a stall (the connection left open and silent). Every request is counted per zone.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { FLAG_AA, FLAG_QR, parseMessage } from '../../src/dns/message.js';
import { nameToText } from '../../src/dns/name.js';
import { parseSoa } from '../../src/dns/soa.js';
import { MessageWriter } from '../../src/dns/writer.js';
import type { ZoneRR } from '../../src/store/zone-store.js';
import { freePort } from './named.js';

/** The request being answered. */
export interface Ctx {
  id: number;
  qname: Buffer;
  qtype: number;
  /** IXFR: the serial the secondary holds (from the SOA in the authority section). */
  theirSerial?: number;
}

/** A message or raw bytes to write (`frame()` them yourself), a pause, a close, or a stall. */
export type Step = Buffer | { wait: number } | 'close' | 'stall';

export interface Behaviour {
  /** The serial the SOA query answers once armed. */
  serial: number;
  axfr?: (c: Ctx) => Step[];
  /** Absent: IXFR is answered REFUSED (the secondary falls back to AXFR). */
  ixfr?: (c: Ctx) => Step[];
}

export interface HostileZone {
  name: string;
  good: ZoneRR[];
  bad?: Behaviour;
  armed: boolean;
  /** "udp SOA", "tcp AXFR", "tcp IXFR", … in arrival order. */
  requests: string[];
}

export interface HostilePrimary {
  port: number;
  zones: Map<string, HostileZone>;
  arm(name: string): void;
  disarm(name: string): void;
  count(name: string, request: string): number;
  stop(): Promise<void>;
}

const TYPE_NAMES: Record<number, string> = { 6: 'SOA', 251: 'IXFR', 252: 'AXFR' };

/** RFC 1035 §4.2.2 length prefix. */
export function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** A response to `c` carrying `rrs` in the answer section. */
export function response(
  c: Ctx,
  rrs: readonly ZoneRR[],
  opts: { id?: number; rcode?: number; question?: boolean; classOf?: (r: ZoneRR) => number } = {},
): Buffer {
  const w = new MessageWriter(65535);
  const question = opts.question ?? true;
  for (const v of [
    opts.id ?? c.id,
    FLAG_QR | FLAG_AA | (opts.rcode ?? 0),
    question ? 1 : 0,
    rrs.length,
    0,
    0,
  ])
    w.u16(v);
  if (question) {
    w.name(c.qname);
    w.u16(c.qtype);
    w.u16(1);
  }
  for (const r of rrs) w.rr(r.owner, r.type, opts.classOf?.(r) ?? 1, r.ttl, r.rdata);
  return w.finish();
}

/** The zone's SOA (first SOA record). */
export const soaOf = (rrs: readonly ZoneRR[]): ZoneRR => rrs.find((r) => r.type === 6)!;

/** A whole zone as one AXFR message: SOA, the rest, SOA. */
export const axfrOf = (c: Ctx, rrs: readonly ZoneRR[]): Buffer =>
  frame(response(c, [soaOf(rrs), ...rrs.filter((r) => r.type !== 6), soaOf(rrs)]));

export async function startHostilePrimary(
  zones: { name: string; good: ZoneRR[]; bad?: Behaviour }[],
): Promise<HostilePrimary> {
  const port = await freePort();
  const byName = new Map<string, HostileZone>(
    zones.map((z) => [z.name, { ...z, armed: false, requests: [] as string[] }]),
  );
  const conns = new Set<net.Socket>();
  const udp = dgram.createSocket('udp4');

  const ctxOf = (q: Buffer) => {
    const m = parseMessage(q);
    const qq = m.questions[0];
    const soa = m.authority.find((r) => r.type === 6);
    const ctx: Ctx = {
      id: m.header.id,
      qname: qq.name,
      qtype: qq.type,
      theirSerial: soa ? parseSoa(soa.rdata).serial : undefined,
    };
    return { ctx, zone: byName.get(nameToText(qq.name, false).toLowerCase()) };
  };

  const soaReply = (z: HostileZone, c: Ctx): Buffer => {
    const soa = soaOf(z.good);
    if (!z.armed || !z.bad) return response(c, [soa]);
    const rdata = Buffer.from(soa.rdata);
    rdata.writeUInt32BE(z.bad.serial, rdata.length - 20);
    return response(c, [{ ...soa, rdata }]);
  };

  udp.on('message', (msg, rinfo) => {
    try {
      const { ctx, zone } = ctxOf(msg);
      if (!zone) return;
      zone.requests.push(`udp ${TYPE_NAMES[ctx.qtype] ?? ctx.qtype}`);
      if (ctx.qtype === 6) udp.send(soaReply(zone, ctx), rinfo.port, rinfo.address);
    } catch {
      // not a query we understand: ignore
    }
  });
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', () => r()));

  const steps = (z: HostileZone, c: Ctx): Step[] => {
    if (c.qtype === 6) return [frame(soaReply(z, c))];
    const bad = z.armed ? z.bad : undefined;
    if (c.qtype === 252) return bad?.axfr ? bad.axfr(c) : [axfrOf(c, z.good)];
    if (c.qtype === 251) {
      if (bad?.ixfr) return bad.ixfr(c);
      if (bad) return [frame(response(c, [], { rcode: 5 }))];
      return [axfrOf(c, z.good)];
    }
    return [frame(response(c, [], { rcode: 5 }))];
  };

  const play = async (c: net.Socket, list: Step[]) => {
    for (const s of list) {
      if (c.destroyed) return;
      if (s === 'close') {
        c.end();
        return;
      }
      if (s === 'stall') return;
      if (Buffer.isBuffer(s)) c.write(s);
      else await new Promise((r) => setTimeout(r, s.wait));
    }
  };

  const tcp = net.createServer((c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
    c.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const q = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + q.length);
        try {
          const { ctx, zone } = ctxOf(q);
          if (!zone) {
            c.destroy();
            return;
          }
          zone.requests.push(`tcp ${TYPE_NAMES[ctx.qtype] ?? ctx.qtype}`);
          void play(c, steps(zone, ctx));
        } catch {
          c.destroy();
          return;
        }
      }
    });
  });
  await new Promise<void>((r) => tcp.listen(port, '127.0.0.1', () => r()));

  const get = (name: string) => {
    const z = byName.get(name);
    if (!z) throw new Error(`no zone ${name}`);
    return z;
  };
  return {
    port,
    zones: byName,
    arm: (name) => {
      get(name).armed = true;
    },
    disarm: (name) => {
      get(name).armed = false;
    },
    count: (name, request) => get(name).requests.filter((r) => r === request).length,
    async stop() {
      udp.close();
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
}
