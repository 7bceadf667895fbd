/** A raw DNS client for tests: one query over UDP or TCP, and a byte-exact summary of a reply. */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { FLAG_AA, FLAG_TC, parseMessage, type WireRR } from '../../src/dns/message.js';
import { nameToText, textToName, toLower } from '../../src/dns/name.js';
import { typeToText } from '../../src/dns/types.js';

export interface QueryOpts {
  tcp?: boolean;
  rd?: boolean;
  /** EDNS UDP size; no OPT when undefined. */
  edns?: number;
  /** Set AD in the query (RFC 6840 §5.7: the client understands AD). */
  ad?: boolean;
  /** Set the DO bit (implies EDNS). */
  dnssecOk?: boolean;
  timeoutMs?: number;
  /** Local address to send from (any of 127.0.0.0/8 on Linux); default the system's choice. */
  source?: string;
}

export function buildQuery(name: string | Buffer, type: number, opts: QueryOpts = {}): Buffer {
  const qname = typeof name === 'string' ? textToName(name) : name;
  const h = Buffer.alloc(12);
  h.writeUInt16BE(randomInt(0, 65536), 0);
  h.writeUInt16BE((opts.rd ? 0x0100 : 0) | (opts.ad ? 0x0020 : 0), 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(opts.edns || opts.dnssecOk ? 1 : 0, 10);
  const q = Buffer.alloc(4);
  q.writeUInt16BE(type, 0);
  q.writeUInt16BE(1, 2);
  const parts = [h, qname, q];
  if (opts.edns || opts.dnssecOk) {
    const o = Buffer.alloc(11);
    o.writeUInt16BE(41, 1);
    o.writeUInt16BE(opts.edns ?? 1232, 3);
    if (opts.dnssecOk) o.writeUInt16BE(0x8000, 7);
    parts.push(o);
  }
  return Buffer.concat(parts);
}

export function exchange(port: number, msg: Buffer, opts: QueryOpts = {}): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  if (!opts.tcp) {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket('udp4');
      const t = setTimeout(() => {
        s.close();
        reject(new Error(`no UDP reply on port ${port}`));
      }, timeoutMs);
      s.on('message', (m) => {
        if (m.readUInt16BE(0) !== msg.readUInt16BE(0)) return;
        clearTimeout(t);
        s.close();
        resolve(m);
      });
      if (opts.source) s.bind({ address: opts.source }, () => s.send(msg, port, '127.0.0.1'));
      else s.send(msg, port, '127.0.0.1');
    });
  }
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port, localAddress: opts.source });
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error(`no TCP reply on port ${port}`));
    }, timeoutMs);
    c.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      c.write(Buffer.concat([len, msg]));
    });
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(t);
        c.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

export function query(port: number, name: string | Buffer, type: number, opts: QueryOpts = {}) {
  return exchange(port, buildQuery(name, type, opts), opts);
}

const line = (r: WireRR) =>
  `${nameToText(toLower(r.owner))} ${r.ttl} ${typeToText(r.type)} ${r.rdata.toString('hex')}`;

/** What must be identical between two servers' replies: rcode, AA, TC, answer and authority. */
export function summarize(reply: Buffer) {
  const m = parseMessage(reply);
  return {
    rcode: m.header.flags & 0xf,
    aa: (m.header.flags & FLAG_AA) !== 0,
    tc: (m.header.flags & FLAG_TC) !== 0,
    answer: m.answer.map(line).sort(),
    authority: m.authority.map(line).sort(),
  };
}

export function additional(reply: Buffer): string[] {
  return parseMessage(reply)
    .additional.filter((r) => r.type !== 41)
    .map(line)
    .sort();
}
