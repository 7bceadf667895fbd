/**
 * DNS message reading (RFC 1035 §4.1) without trusting the counts: every section is walked
 * against the buffer length, names are expanded, and RR data is kept as bytes.
 */
import { readName, WireError } from './name.js';
import { readRdata } from './rdata.js';

export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_AD = 0x0020;
export const FLAG_CD = 0x0010;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  YXDOMAIN: 6,
  NOTAUTH: 9,
  BADVERS: 16,
} as const;

export const OPCODE = { QUERY: 0, NOTIFY: 4, UPDATE: 5 } as const;

export const HEADER_LEN = 12;
/** Smallest possible RR: root owner (1) + type, class, ttl, rdlength (10). */
const MIN_RR = 11;
/** Smallest possible question: root name (1) + type, class (4). */
const MIN_QUESTION = 5;

export interface Header {
  id: number;
  flags: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export interface Question {
  /** Uncompressed wire name, case as sent. */
  name: Buffer;
  type: number;
  class: number;
}

/** One resource record with its owner expanded and rdata decompressed (RFC 3597 §4). */
export interface WireRR {
  owner: Buffer;
  type: number;
  class: number;
  ttl: number;
  rdata: Buffer;
}

export interface Message {
  header: Header;
  questions: Question[];
  answer: WireRR[];
  authority: WireRR[];
  additional: WireRR[];
}

export const opcodeOf = (flags: number): number => (flags >> 11) & 0xf;
export const rcodeOf = (flags: number): number => flags & 0xf;

export function readHeader(msg: Buffer): Header {
  if (msg.length < HEADER_LEN) throw new WireError(`message of ${msg.length} bytes is shorter than a header`);
  return {
    id: msg.readUInt16BE(0),
    flags: msg.readUInt16BE(2),
    qdcount: msg.readUInt16BE(4),
    ancount: msg.readUInt16BE(6),
    nscount: msg.readUInt16BE(8),
    arcount: msg.readUInt16BE(10),
  };
}

export function readQuestion(msg: Buffer, off: number): { q: Question; end: number } {
  const { name, end } = readName(msg, off);
  if (end + 4 > msg.length) throw new WireError('question runs past end of message');
  return { q: { name, type: msg.readUInt16BE(end), class: msg.readUInt16BE(end + 2) }, end: end + 4 };
}

export function readRR(msg: Buffer, off: number): { rr: WireRR; end: number } {
  const { name, end } = readName(msg, off);
  if (end + 10 > msg.length) throw new WireError('RR header runs past end of message');
  const type = msg.readUInt16BE(end);
  const rdlen = msg.readUInt16BE(end + 8);
  const start = end + 10;
  if (start + rdlen > msg.length) throw new WireError('rdata runs past end of message');
  return {
    rr: {
      owner: name,
      type,
      class: msg.readUInt16BE(end + 2),
      ttl: msg.readUInt32BE(end + 4),
      rdata: readRdata(msg, start, rdlen, type),
    },
    end: start + rdlen,
  };
}

/**
 * Parses a whole message. Counts that could not possibly fit in the buffer are rejected before
 * any allocation (a 27-byte packet may claim 65535 RRs per section), and trailing bytes are an error.
 */
export function parseMessage(msg: Buffer): Message {
  const header = readHeader(msg);
  const rrs = header.ancount + header.nscount + header.arcount;
  if (HEADER_LEN + header.qdcount * MIN_QUESTION + rrs * MIN_RR > msg.length) {
    throw new WireError('section counts exceed message length');
  }
  let off = HEADER_LEN;
  const questions: Question[] = [];
  for (let i = 0; i < header.qdcount; i++) {
    const r = readQuestion(msg, off);
    questions.push(r.q);
    off = r.end;
  }
  const section = (n: number): WireRR[] => {
    const out: WireRR[] = [];
    for (let i = 0; i < n; i++) {
      const r = readRR(msg, off);
      out.push(r.rr);
      off = r.end;
    }
    return out;
  };
  const answer = section(header.ancount);
  const authority = section(header.nscount);
  const additional = section(header.arcount);
  if (off !== msg.length) throw new WireError(`${msg.length - off} trailing bytes after last section`);
  return { header, questions, answer, authority, additional };
}
