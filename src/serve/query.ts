/**
 * Incoming query parsing for the server, strict and allocation-bounded: whatever the bytes, the
 * result is a query to answer, a FORMERR to send, or nothing (drop).
 */
import { type EdnsOption, OPTION, optionProblem, parseOptions } from '../dns/edns.js';
import {
  FLAG_QR,
  HEADER_LEN,
  OPCODE,
  opcodeOf,
  RCODE,
  readHeader,
  readQuestion,
  readRR,
} from '../dns/message.js';
import { ROOT } from '../dns/name.js';
import { rdataProblem } from '../dns/rdata-layout.js';
import { CLASS, TYPE } from '../dns/types.js';

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

/**
 * Reads a request the way BIND 9 does (lib/dns/message.c, then lib/ns/client.c), so that a
 * malformed query gets the rcode BIND's would, in BIND's order:
 *
 *   1. shorter than a header, or QR set: dropped
 *   2. the message: at most one question; every RR readable, OPT once, owned by the root, in the
 *      additional section, its options well formed (edns.ts optionProblem); other RRs of the
 *      question's class (TSIG and TKEY excepted) with rdata that fits their type's layout
 *      (dns/rdata-layout.ts): FORMERR. Bytes after the last RR are ignored, as BIND ignores them.
 *   3. EDNS version above 0: BADVERS (RFC 6891 §6.1.3)
 *   4. the class: none or NONE or ANY: FORMERR; IN, CH, HS: on; any other: NOTIMP
 *   5. an opcode other than QUERY, NOTIFY or UPDATE: NOTIMP (RFC 1035 §4.1.1)
 *
 * A QUERY with no question but a COOKIE is answered NOERROR (RFC 7873 §5.4), as an `error` too.
 *
 * An unknown opcode with a bad class gets NOTIMP where BIND's does (step 4 for class 0).
 */
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
  if (h.qdcount > 1) return fail(formerr);
  const opcode = opcodeOf(h.flags);
  const known = opcode === OPCODE.QUERY || opcode === OPCODE.NOTIFY || opcode === OPCODE.UPDATE;
  let q: ReturnType<typeof readQuestion> | undefined;
  let questionWire: Buffer | undefined;
  const plain = h.qdcount === 1 ? plainQuestionEnd(msg) : 0;
  if (plain > 0) {
    // The usual case, no pointer in the question: name and question are views of the request.
    const name = msg.subarray(HEADER_LEN, plain - 4);
    q = { q: { name, type: msg.readUInt16BE(plain - 4), class: msg.readUInt16BE(plain - 2) }, end: plain };
    questionWire = msg.subarray(HEADER_LEN, plain);
  } else if (h.qdcount === 1) {
    try {
      q = readQuestion(msg, HEADER_LEN);
    } catch {
      return fail(formerr);
    }
    // Rebuilt from the expanded name: a pointer in the question must not be echoed as is.
    questionWire = Buffer.concat([q.q.name, msg.subarray(q.end - 4, q.end)]);
  }
  const start = q ? q.end : HEADER_LEN;
  const rrs = h.ancount + h.nscount + h.arcount;
  if (start + rrs * MIN_RR > msg.length) return fail(formerr, questionWire);
  // RFC 1996 §3.7, RFC 2136 §2.3: NOTIFY and UPDATE may carry records; NONE/ANY classes there mean
  // deletions and prerequisites, which BIND reads but a secondary never applies.
  let klass = q ? q.q.class : -1;
  if (klass >= 0 && opcode !== OPCODE.QUERY && (klass === CLASS.NONE || klass === CLASS.ANY) && known)
    return fail(formerr, questionWire);
  let off = start;
  let edns: Edns | undefined;
  let soaSerial: number | undefined;
  try {
    for (let i = 0; i < rrs; i++) {
      const { rr, end } = readRR(msg, off);
      off = end;
      if (rr.type === TYPE.OPT) {
        // RFC 6891 §6.1.1: one OPT, owned by the root, in the additional section.
        if (edns || i < h.ancount + h.nscount || !rr.owner.equals(ROOT)) return fail(formerr, questionWire);
        edns = {
          udpSize: Math.max(512, rr.class),
          version: (rr.ttl >>> 16) & 0xff,
          dnssecOk: (rr.ttl & DO_BIT) !== 0,
          options: parseOptions(rr.rdata),
        };
        for (const o of edns.options)
          if (optionProblem(o.code, o.data)) return fail(formerr, questionWire, edns);
        continue;
      }
      if (rr.type === TYPE.TSIG) continue;
      // Type 0 and the question-only types (IXFR, AXFR, MAILB, MAILA, ANY) are never records.
      if (rr.type === 0 || (rr.type >= TYPE.IXFR && rr.type <= TYPE.ANY))
        return fail(formerr, questionWire, edns);
      if (rr.type === TYPE.TKEY) {
        if (rdataProblem(rr.type, rr.rdata) !== undefined) return fail(formerr, questionWire, edns);
        continue;
      }
      // All records of a message share its class (the question's, else the first record's).
      if (klass < 0) klass = rr.class;
      else if (klass !== rr.class && klass !== CLASS.ANY && opcode !== OPCODE.UPDATE)
        return fail(formerr, questionWire, edns);
      if (rdataProblem(rr.type, rr.rdata) !== undefined) return fail(formerr, questionWire, edns);
      // A NOTIFY may carry the zone's new SOA in its answer section (RFC 1996 §3.7): a hint.
      if (rr.type === TYPE.SOA && i < h.ancount && rr.rdata.length >= 20 && soaSerial === undefined) {
        soaSerial = rr.rdata.readUInt32BE(rr.rdata.length - 20);
      }
    }
  } catch {
    return fail(formerr, questionWire);
  }
  // RFC 6891 §6.1.3: we speak EDNS version 0 only (BIND answers this before looking at the class).
  if (edns && edns.version > 0) return fail(RCODE.BADVERS, questionWire, edns);
  // RFC 7873 §5.4: a QUERY of only a COOKIE (no question) asks for a server cookie: NOERROR.
  if (!q && klass < 0 && opcode === OPCODE.QUERY && edns?.options.some((o) => o.code === OPTION.COOKIE))
    return fail(RCODE.NOERROR, undefined, edns);
  if (klass <= 0 || klass === CLASS.NONE || klass === CLASS.ANY)
    return fail(klass <= 0 && !known ? notimp : formerr, questionWire, edns);
  if (klass !== CLASS.IN && klass !== CLASS.CH && klass !== CLASS.HS) return fail(notimp, questionWire, edns);
  if (!known || !q || !questionWire) return fail(known ? formerr : notimp, questionWire, edns);
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
