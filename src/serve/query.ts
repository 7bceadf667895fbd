/**
 * Incoming query parsing for the server, strict and allocation-bounded: whatever the bytes, the
 * result is a query to answer, a FORMERR to send, or nothing (drop).
 */
import { type EdnsOption, parseOptions } from '../dns/edns.js';
import { FLAG_QR, HEADER_LEN, OPCODE, opcodeOf, readHeader, readQuestion, readRR } from '../dns/message.js';
import { ROOT } from '../dns/name.js';
import { TYPE } from '../dns/types.js';

export interface Edns {
  udpSize: number;
  version: number;
  dnssecOk: boolean;
  options: EdnsOption[];
}

export interface Query {
  id: number;
  flags: number;
  opcode: number;
  qname: Buffer;
  qtype: number;
  qclass: number;
  /** The question exactly as sent, echoed in the reply (keeps the query name's case). */
  questionWire: Buffer;
  edns?: Edns;
  /** Serial of an SOA in the answer section (NOTIFY's hint). */
  soaSerial?: number;
}

export type Parsed =
  | { kind: 'query'; query: Query }
  /** Enough was read to reply with this rcode (question echoed when it was readable). */
  | { kind: 'error'; rcode: number; id: number; flags: number; questionWire?: Buffer; edns?: Edns }
  | { kind: 'drop' };

const MIN_RR = 11;
const DO_BIT = 0x8000;

export function parseQuery(msg: Buffer, formerr: number, notimp: number): Parsed {
  if (msg.length < HEADER_LEN) return { kind: 'drop' };
  const h = readHeader(msg);
  // Never answer a response: that is how reflection loops start.
  if (h.flags & FLAG_QR) return { kind: 'drop' };
  const fail = (rcode: number, questionWire?: Buffer, edns?: Edns): Parsed => ({
    kind: 'error',
    rcode,
    id: h.id,
    flags: h.flags,
    questionWire,
    edns,
  });
  if (h.qdcount !== 1) return fail(formerr);
  let q: ReturnType<typeof readQuestion>;
  let questionWire: Buffer;
  const plain = plainQuestionEnd(msg);
  if (plain > 0) {
    // The usual case, no pointer in the question: name and question are views of the request.
    const name = msg.subarray(HEADER_LEN, plain - 4);
    q = { q: { name, type: msg.readUInt16BE(plain - 4), class: msg.readUInt16BE(plain - 2) }, end: plain };
    questionWire = msg.subarray(HEADER_LEN, plain);
  } else {
    try {
      q = readQuestion(msg, HEADER_LEN);
    } catch {
      return fail(formerr);
    }
    // Rebuilt from the expanded name: a pointer in the question must not be echoed as is.
    questionWire = Buffer.concat([q.q.name, msg.subarray(q.end - 4, q.end)]);
  }
  const opcode = opcodeOf(h.flags);
  const rrs = h.ancount + h.nscount + h.arcount;
  if (q.end + rrs * MIN_RR > msg.length) return fail(formerr, questionWire);
  let off = q.end;
  let edns: Edns | undefined;
  let soaSerial: number | undefined;
  try {
    for (let i = 0; i < rrs; i++) {
      const { rr, end } = readRR(msg, off);
      off = end;
      // A NOTIFY may carry the zone's new SOA in its answer section (RFC 1996 §3.7): a hint.
      if (rr.type === TYPE.SOA && i < h.ancount && rr.rdata.length >= 20 && soaSerial === undefined) {
        soaSerial = rr.rdata.readUInt32BE(rr.rdata.length - 20);
      }
      if (rr.type !== TYPE.OPT) continue;
      // RFC 6891 §6.1.1: one OPT, owned by the root, in the additional section.
      if (edns || i < h.ancount + h.nscount || !rr.owner.equals(ROOT)) return fail(formerr, questionWire);
      edns = {
        udpSize: Math.max(512, rr.class),
        version: (rr.ttl >>> 16) & 0xff,
        dnssecOk: (rr.ttl & DO_BIT) !== 0,
        options: parseOptions(rr.rdata),
      };
    }
  } catch {
    return fail(formerr, questionWire);
  }
  if (off !== msg.length) return fail(formerr, questionWire, edns);
  // QUERY and NOTIFY (RFC 1996) are ours; UPDATE and the rest are not.
  if (opcode !== OPCODE.QUERY && opcode !== OPCODE.NOTIFY) return fail(notimp, questionWire, edns);
  return {
    kind: 'query',
    query: {
      id: h.id,
      flags: h.flags,
      opcode,
      qname: q.q.name,
      qtype: q.q.type,
      qclass: q.q.class,
      questionWire,
      edns,
      soaSerial,
    },
  };
}

/**
 * End of the question when its name is written without pointers and is well formed (labels of at
 * most 63 octets, at most 255 octets in all) and type and class fit; 0 otherwise (the full reader
 * then decides). The views it allows are only used while the request is answered.
 */
function plainQuestionEnd(msg: Buffer): number {
  let pos = HEADER_LEN;
  for (;;) {
    if (pos >= msg.length) return 0;
    const l = msg[pos];
    if (l === 0) break;
    if (l > 63) return 0;
    pos += 1 + l;
    if (pos - HEADER_LEN + 1 > 255) return 0;
  }
  const end = pos + 1 + 4;
  return end <= msg.length ? end : 0;
}
