/**
 * Malformed queries judged against BIND: seeded mutations of valid queries, sent over UDP to two
 * servers, each reply reduced to a class. The class is read with dns-packet (a decoder ns2 does
 * not share) from the header counts, the rcode and the OPT extended rcode; nothing else.
 *
 *   silence           no reply within the wait
 *   RCODE             a reply without answer or authority records (NOERROR here = NODATA)
 *   RCODE+data        a reply with answer or authority records
 *   unparsable        bytes that are not a DNS message
 */
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { type Rng, validQuery } from '../fuzz/packets.js';

const RCODES = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
];

export type ReplyClass = string;

/** The class of one reply (undefined: silence). */
export function replyClass(reply: Buffer | undefined): ReplyClass {
  if (!reply) return 'silence';
  if (reply.length < 12) return 'unparsable';
  let rcode = reply[3] & 0xf;
  try {
    const m = dnsPacket.decode(reply);
    const opt = m.additionals?.find((r) => r.type === 'OPT') as { extendedRcode?: number } | undefined;
    if (opt?.extendedRcode) rcode |= opt.extendedRcode << 4;
  } catch {
    // Header-only replies with an OPT we cannot read keep the 4-bit rcode.
  }
  const name = rcode === 16 ? 'BADVERS' : (RCODES[rcode] ?? `RCODE${rcode}`);
  const data = reply.readUInt16BE(6) + reply.readUInt16BE(8) > 0;
  return data ? `${name}+data` : name;
}

export const hasData = (c: ReplyClass): boolean => c.endsWith('+data');

export type Mutation =
  | 'bytes'
  | 'cut'
  | 'append'
  | 'counts'
  | 'labels'
  | 'class'
  | 'opcode'
  | 'additional'
  | 'flags';

export const MUTATIONS: readonly Mutation[] = [
  'bytes',
  'cut',
  'append',
  'counts',
  'labels',
  'class',
  'opcode',
  'additional',
  'flags',
];

const u16 = (v: number) => Buffer.from([(v >> 8) & 0xff, v & 0xff]);

/** End of the (uncompressed) question name at 12, or -1. */
function qnameEnd(q: Buffer): number {
  let p = 12;
  while (p < q.length && q[p] !== 0) {
    if (q[p] > 63) return -1;
    p += 1 + q[p];
  }
  return p < q.length ? p + 1 : -1;
}

/** One mutation of a valid query for a name in or around `zone`. */
export function mutate(r: Rng, zone: string, kind: Mutation = r.pick(MUTATIONS)): Buffer {
  const q = Buffer.from(validQuery(r, zone));
  switch (kind) {
    case 'bytes': {
      for (let n = 1 + r.int(4); n > 0; n--) q[2 + r.int(q.length - 2)] = r.int(256);
      return q;
    }
    case 'cut':
      return q.subarray(0, r.int(q.length));
    case 'append':
      return Buffer.concat([q, r.next() < 0.3 ? Buffer.alloc(1 + r.int(8)) : r.bytes(1 + r.int(40))]);
    case 'counts':
      q.writeUInt16BE(r.pick([0, 1, 2, 3, 0xff, 0xffff]), 4 + 2 * r.int(4));
      return q;
    case 'labels': {
      // Legal names (RFC 2181 §11: any octet in a label) with unusual octets: NUL, dot, space, high bytes.
      const end = qnameEnd(q);
      for (let p = 12; p < end - 1; p += 1 + q[p])
        for (let i = 1; i <= q[p]; i++)
          if (r.next() < 0.4) q[p + i] = r.pick([0, 0x2e, 0x20, 0x5c, 0x7f, 0x80, 0xff, 0x41, r.int(256)]);
      return q;
    }
    case 'class': {
      const end = qnameEnd(q);
      // Not CH: BIND rate-limits its CHAOS view (3 answers/s, no slip), so its class depends on timing.
      q.writeUInt16BE(r.pick([0, 2, 4, 5, 254, 255, 0xff00, 1 + r.int(65535)]), end + 2);
      return q;
    }
    case 'opcode': {
      const opcode = r.pick([1, 2, 3, 5, 6, 7, 8, 15]);
      q[2] = (q[2] & 0x87) | (opcode << 3);
      return r.next() < 0.3 ? q.subarray(0, 12).fill(0, 4, 6) : q;
    }
    case 'additional': {
      // A non-OPT record in the additional section (after the OPT when there is one).
      const type = r.pick([1, 16, 99, 258, 1000, 65280, 0, 128, 249, 251, 252, 255]);
      const rdata = type === 1 ? r.bytes(4) : r.bytes(r.int(12));
      const rr = Buffer.concat([
        r.next() < 0.5 ? Buffer.from([0]) : Buffer.from([1, 0x61, 0]),
        u16(type),
        u16(r.pick([1, 1, 3, 254, 255])),
        Buffer.from([0, 0, 0, 60]),
        u16(rdata.length),
        rdata,
      ]);
      q.writeUInt16BE(q.readUInt16BE(10) + 1, 10);
      return Buffer.concat([q, rr]);
    }
    case 'flags':
      // AA, TC, Z, AD, CD, RA in a query: meaningless bits a server ignores (or not).
      q[2] |= r.pick([0x04, 0x02, 0x00]);
      q[3] = r.pick([0x80, 0x40, 0x20, 0x10, 0xf0, r.int(256)]);
      return q;
  }
}

/**
 * Sends every packet to `port` over UDP (its ID overwritten by its index, so replies can be
 * matched) and returns each reply's class. Paced (`burst` packets per 2 ms); waits `waitMs` after
 * the last.
 */
export async function replay(
  port: number,
  packets: readonly Buffer[],
  waitMs = 1000,
  burst = 20,
): Promise<ReplyClass[]> {
  const replies: (Buffer | undefined)[] = new Array(packets.length).fill(undefined);
  const s = dgram.createSocket('udp4');
  s.on('message', (m) => {
    if (m.length < 2) return;
    const i = m.readUInt16BE(0);
    if (i < packets.length && replies[i] === undefined) replies[i] = m;
  });
  s.on('error', () => undefined);
  await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
  try {
    for (let i = 0; i < packets.length; i++) {
      const p = Buffer.from(packets[i]);
      if (p.length >= 2) p.writeUInt16BE(i, 0);
      s.send(p, port, '127.0.0.1');
      if (i % burst === burst - 1) await new Promise((res) => setTimeout(res, 2));
    }
    await new Promise((res) => setTimeout(res, waitMs));
  } finally {
    s.close();
  }
  return replies.map(replyClass);
}

/** Packets whose ID was kept by `replay` (and so whose reply can be matched): at most 65 536. */
export const MAX_REPLAY = 0x10000;
