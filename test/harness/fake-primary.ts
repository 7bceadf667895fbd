/**
 * A scripted primary for faults a real BIND does not produce: it answers SOA queries with the
 * current version's serial, AXFR with the whole version, and IXFR according to `ixfr` —
 * an rcode, an inconsistent diff (deletes an RR the secondary never had), a proper diff, silence
 * on an open connection (`timeout`), or a broken stream (`broken`: the diff's first message, its
 * deletions only, then the connection closes). `axfr: 'close'` makes AXFR connections close
 * mid-stream.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { FLAG_AA, FLAG_QR, parseMessage } from '../../src/dns/message.js';
import { parseSoa } from '../../src/dns/soa.js';
import { MessageWriter } from '../../src/dns/writer.js';
import type { ZoneRR } from '../../src/store/zone-store.js';
import { freePort } from './named.js';
import { a, n, rr } from './records.js';

export type IxfrBehaviour =
  | 'refused'
  | 'notimp'
  | 'servfail'
  | 'inconsistent'
  | 'diff'
  | 'timeout'
  | 'broken';

/** What one request gets: messages, messages then a close, or a close at once. */
type Answer = Buffer[] | { messages: Buffer[]; close: true } | 'close';

export interface FakePrimary {
  port: number;
  zone: string;
  /** Versions by serial; `current` is served. */
  versions: Map<number, ZoneRR[]>;
  current: number;
  ixfr: IxfrBehaviour;
  axfr: 'ok' | 'close';
  /** Every request seen: "udp SOA", "tcp IXFR", "tcp AXFR". */
  requests: string[];
  stop(): Promise<void>;
}

const TYPE_NAMES: Record<number, string> = { 6: 'SOA', 251: 'IXFR', 252: 'AXFR' };

export async function startFakePrimary(zone: string, versions: Map<number, ZoneRR[]>, current: number) {
  const port = await freePort();
  const udp = dgram.createSocket('udp4');
  const conns = new Set<net.Socket>();
  const fake: FakePrimary = {
    port,
    zone,
    versions,
    current,
    ixfr: 'refused',
    axfr: 'ok',
    requests: [],
    async stop() {
      udp.close();
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };

  const soaOf = (serial: number) => fake.versions.get(serial)!.find((r) => r.type === 6)!;

  const reply = (q: Buffer, rrs: ZoneRR[], rcode = 0): Buffer => {
    const m = parseMessage(q);
    const w = new MessageWriter(65535);
    const qq = m.questions[0];
    for (const v of [m.header.id, FLAG_QR | FLAG_AA | rcode, 1, rrs.length, 0, 0]) w.u16(v);
    w.name(qq.name);
    w.u16(qq.type);
    w.u16(qq.class);
    for (const r of rrs) w.rr(r.owner, r.type, 1, r.ttl, r.rdata);
    return w.finish();
  };

  const diffOf = (theirs: number) => {
    const old = fake.versions.get(theirs)!;
    const zoneRrs = fake.versions.get(fake.current)!;
    const key = (r: ZoneRR) => `${r.owner.toString('hex')}/${r.type}/${r.rdata.toString('hex')}`;
    const now = new Set(zoneRrs.map(key));
    const was = new Set(old.map(key));
    return {
      del: old.filter((r) => r.type !== 6 && !now.has(key(r))),
      add: zoneRrs.filter((r) => r.type !== 6 && !was.has(key(r))),
    };
  };

  const answer = (q: Buffer, transport: 'udp' | 'tcp'): Answer => {
    const m = parseMessage(q);
    const type = m.questions[0].type;
    fake.requests.push(`${transport} ${TYPE_NAMES[type] ?? type}`);
    const zoneRrs = fake.versions.get(fake.current)!;
    const soa = soaOf(fake.current);
    if (type === 6) return [reply(q, [soa])];
    if (type === 252) {
      if (fake.axfr === 'close') return 'close';
      return [reply(q, [soa, ...zoneRrs.filter((r) => r.type !== 6), soa])];
    }
    if (type === 251) {
      const theirs = parseSoa(m.authority[0].rdata).serial;
      switch (fake.ixfr) {
        case 'refused':
          return [reply(q, [], 5)];
        case 'notimp':
          return [reply(q, [], 4)];
        case 'servfail':
          return [reply(q, [], 2)];
        case 'inconsistent':
          // Deletes an address the zone never had: a diff against some other history.
          return [
            reply(q, [
              soa,
              soaOf(theirs),
              rr(`ghost.${zone}`, 'A', 300, a('203.0.113.66')),
              soa,
              rr(`new.${zone}`, 'A', 300, a('192.0.2.66')),
              soa,
            ]),
          ];
        case 'diff': {
          const { del, add } = diffOf(theirs);
          return [reply(q, [soa, soaOf(theirs), ...del, soa, ...add, soa])];
        }
        case 'timeout':
          // The connection stays open and silent: only the secondary's idle timer ends it.
          return [];
        case 'broken':
          return { messages: [reply(q, [soa, soaOf(theirs), ...diffOf(theirs).del])], close: true };
      }
    }
    return [reply(q, [], 5)];
  };

  udp.on('message', (msg, rinfo) => {
    try {
      const out = answer(msg, 'udp');
      if (Array.isArray(out) && out.length > 0) udp.send(out[0], rinfo.port, rinfo.address);
    } catch {
      // ignore garbage
    }
  });
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', () => r()));

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
        const out = answer(q, 'tcp');
        if (out === 'close') {
          c.destroy();
          return;
        }
        for (const m of Array.isArray(out) ? out : out.messages) {
          const l = Buffer.alloc(2);
          l.writeUInt16BE(m.length);
          c.write(Buffer.concat([l, m]));
        }
        if (!Array.isArray(out)) {
          c.end();
          return;
        }
      }
    });
  });
  await new Promise<void>((r) => tcp.listen(port, '127.0.0.1', () => r()));
  return fake;
}

/** Sends a NOTIFY for `zone` to 127.0.0.1:port from a loopback socket; resolves to the reply rcode. */
export function sendNotify(port: number, zone: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const w = new MessageWriter(512);
    for (const v of [0x4242, 4 << 11, 1, 0, 0, 0]) w.u16(v);
    w.name(n(zone));
    w.u16(6);
    w.u16(1);
    const t = setTimeout(() => {
      s.close();
      reject(new Error('no reply to NOTIFY'));
    }, 3000);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m.readUInt16BE(2) & 0xf);
    });
    s.send(w.finish(), port, '127.0.0.1');
  });
}
