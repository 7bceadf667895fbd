/**
 * Hostile DNS messages for the fuzz run, from a seeded generator so a failure can be replayed
 * (same seed, same packets). Pure: no sockets.
 *
 * UDP packets: valid queries of many shapes, then the same mutated (bit flips, byte overwrites,
 * truncation, extension), counts that lie, compression loops and forward pointers, QDCOUNT 0 and
 * 2, bad labels and over-long names, EDNS abuse (two OPTs, OPT below the root, broken options,
 * version 1, garbage cookies), TSIG records with junk MACs, other opcodes, responses, AXFR/IXFR
 * over UDP, and plain random bytes. TCP streams: huge length prefixes, partial frames, zero-length
 * frames, pipelined fuzz messages, byte-at-a-time writes and random byte streams.
 */
import { textToName } from '../../src/dns/name.js';
import { prng } from '../harness/prng.js';

/** A seeded source of random choices (mulberry32, harness/prng.ts). */
export function rng(seed: number) {
  const next = prng(seed);
  const int = (n: number) => Math.floor(next() * n);
  return {
    next,
    int,
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)],
    bytes: (n: number) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
  };
}
export type Rng = ReturnType<typeof rng>;

const u16 = (v: number) => Buffer.from([(v >> 8) & 0xff, v & 0xff]);

function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Buffer {
  return Buffer.concat([id, flags, qd, an, ns, ar].map(u16));
}

const QTYPES = [
  1, 2, 5, 6, 12, 15, 16, 28, 33, 39, 43, 46, 47, 48, 50, 52, 64, 65, 99, 255, 251, 252, 0, 41, 250, 65535,
];

/** A valid query for a name in or around `zone`; with probability, EDNS and options. */
export function validQuery(r: Rng, zone: string): Buffer {
  const names = [
    zone,
    `www.${zone}`,
    `nx${r.int(1000)}.${zone}`,
    `a.b.wild.${zone}`,
    `sub.${zone}`,
    'example.net',
    '.',
  ];
  const qname = textToName(r.pick(names));
  const qtype = r.next() < 0.7 ? r.pick([1, 6, 28, 15, 2, 16]) : r.pick(QTYPES);
  const edns = r.next() < 0.5;
  const parts = [
    header(r.int(65536), r.next() < 0.5 ? 0x0100 : 0, 1, 0, 0, edns ? 1 : 0),
    qname,
    u16(qtype),
    u16(1),
  ];
  if (edns) parts.push(opt(r));
  return Buffer.concat(parts);
}

/** An OPT record, sometimes with options (cookie, expire, padding, unknown), sometimes broken. */
function opt(r: Rng): Buffer {
  const options: Buffer[] = [];
  const n = r.int(3);
  for (let i = 0; i < n; i++) {
    const code = r.pick([10, 9, 12, 15, 8, 3, 65001]);
    const len = code === 10 ? r.pick([8, 16, 24, 40, 7, 41]) : r.int(20);
    options.push(Buffer.concat([u16(code), u16(len), r.bytes(len)]));
  }
  let rdata = Buffer.concat(options);
  if (r.next() < 0.1 && rdata.length > 2) rdata = rdata.subarray(0, rdata.length - 1);
  const version = r.next() < 0.05 ? 1 : 0;
  const doBit = r.next() < 0.3 ? 0x8000 : 0;
  return Buffer.concat([
    Buffer.from([0]),
    u16(41),
    u16(r.pick([512, 1232, 4096, 65535, 0])),
    Buffer.from([0, version]),
    u16(doBit),
    u16(rdata.length),
    rdata,
  ]);
}

function flipBits(r: Rng, b: Buffer): Buffer {
  const out = Buffer.from(b);
  const n = 1 + r.int(8);
  for (let i = 0; i < n; i++) out[r.int(out.length)] ^= 1 << r.int(8);
  return out;
}

function overwrite(r: Rng, b: Buffer): Buffer {
  const out = Buffer.from(b);
  const n = 1 + r.int(6);
  for (let i = 0; i < n; i++) out[r.int(out.length)] = r.pick([0, 0xff, 0xc0, 0x3f, 0x40, r.int(256)]);
  return out;
}

/** Section counts that lie (up to 65535 RRs claimed in a small packet). */
function lyingCounts(r: Rng, b: Buffer): Buffer {
  const out = Buffer.from(b);
  for (const off of [4, 6, 8, 10])
    if (r.next() < 0.5) out.writeUInt16BE(r.pick([0, 1, 2, 3, 255, 0xffff, r.int(65536)]), off);
  return out;
}

/** Compression loops: a name pointing at itself, two pointers at each other, forward pointers. */
function compressionLoop(r: Rng): Buffer {
  const id = r.int(65536);
  const kind = r.int(4);
  if (kind === 0) return Buffer.concat([header(id, 0, 1, 0, 0, 0), Buffer.from([0xc0, 12]), u16(1), u16(1)]);
  if (kind === 1)
    return Buffer.concat([
      header(id, 0, 1, 0, 0, 0),
      Buffer.from([1, 0x61, 0xc0, 14, 0xc0, 12]),
      u16(1),
      u16(1),
    ]);
  if (kind === 2)
    return Buffer.concat([
      header(id, 0, 1, 0, 0, 0),
      Buffer.from([0xc0, 0x20 + r.int(200)]),
      u16(1),
      u16(1),
      r.bytes(r.int(40)),
    ]);
  // An answer-section RR whose owner loops through the question.
  return Buffer.concat([
    header(id, 0, 1, 1, 0, 0),
    Buffer.from([3, 0x77, 0x77, 0x77, 0xc0, 12]),
    u16(1),
    u16(1),
    Buffer.from([0xc0, 12]),
    u16(1),
    u16(1),
    Buffer.from([0, 0, 0, 60]),
    u16(4),
    Buffer.from([192, 0, 2, 1]),
  ]);
}

/** QDCOUNT 0 or 2 (both refused by BIND with FORMERR). */
function questionCount(r: Rng, zone: string): Buffer {
  const q = Buffer.concat([textToName(`www.${zone}`), u16(1), u16(1)]);
  if (r.next() < 0.5) return header(r.int(65536), 0, 0, 0, 0, 0);
  return Buffer.concat([header(r.int(65536), 0, 2, 0, 0, 0), q, q]);
}

/** Labels with the reserved 0x40/0x80 types, labels claiming 63 octets, names over 255 octets. */
function badNames(r: Rng): Buffer {
  const id = r.int(65536);
  const kind = r.int(3);
  let name: Buffer;
  if (kind === 0) name = Buffer.from([r.pick([0x40, 0x41, 0x80, 0xbf]), 1, 2, 0]);
  else if (kind === 1) name = Buffer.concat([Buffer.from([63]), r.bytes(10)]);
  else
    name = Buffer.concat([
      ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])),
      Buffer.from([0]),
    ]);
  return Buffer.concat([header(id, 0, 1, 0, 0, 0), name, u16(1), u16(1)]);
}

/** EDNS abuse: two OPTs, an OPT not owned by the root, an OPT in the answer section. */
function ednsAbuse(r: Rng, zone: string): Buffer {
  const q = Buffer.concat([textToName(`www.${zone}`), u16(1), u16(1)]);
  const kind = r.int(3);
  if (kind === 0) return Buffer.concat([header(r.int(65536), 0, 1, 0, 0, 2), q, opt(r), opt(r)]);
  if (kind === 1) {
    const o = opt(r);
    return Buffer.concat([header(r.int(65536), 0, 1, 0, 0, 1), q, Buffer.from([1, 0x61]), o]);
  }
  return Buffer.concat([header(r.int(65536), 0, 1, 1, 0, 0), q, opt(r)]);
}

/** A TSIG record with a junk key name, algorithm or MAC (BADKEY / BADSIG / FORMERR paths). */
function junkTsig(r: Rng, zone: string): Buffer {
  const q = Buffer.concat([textToName(`${zone}`), u16(r.pick([6, 252, 251, 1])), u16(1)]);
  const alg = textToName(r.pick(['hmac-sha256', 'hmac-md5.sig-alg.reg.int', 'nope']));
  const macLen = r.pick([0, 16, 32, 200]);
  const rdata = Buffer.concat([
    alg,
    Buffer.from([0, 0, Math.floor(Date.now() / 1000) >>> 24, 0, 0, 0]),
    u16(300),
    u16(macLen),
    r.bytes(macLen),
    u16(r.int(65536)),
    u16(r.pick([0, 16, 18])),
    u16(0),
  ]);
  const cut = r.next() < 0.2 ? r.int(rdata.length) : rdata.length;
  return Buffer.concat([
    header(r.int(65536), r.pick([0, 4 << 11]), 1, 0, 0, 1),
    q,
    textToName(r.pick(['xfr-key', 'nokey', 'a.b'])),
    u16(250),
    u16(255),
    Buffer.from([0, 0, 0, 0]),
    u16(cut),
    rdata.subarray(0, cut),
  ]);
}

/** Opcodes other than QUERY (NOTIFY, UPDATE, IQUERY, STATUS, unassigned) and responses. */
function otherOpcode(r: Rng, zone: string): Buffer {
  const q = validQuery(r, zone);
  const opcode = r.pick([1, 2, 4, 5, 3, 15]);
  const flags = (r.next() < 0.2 ? 0x8000 : 0) | (opcode << 11) | r.int(16);
  q.writeUInt16BE(flags, 2);
  return q;
}

export type Strategy =
  | 'valid'
  | 'flip'
  | 'overwrite'
  | 'truncate'
  | 'extend'
  | 'counts'
  | 'compression'
  | 'qdcount'
  | 'names'
  | 'edns'
  | 'tsig'
  | 'opcode'
  | 'random'
  | 'tiny';

export const STRATEGIES: readonly Strategy[] = [
  'valid',
  'flip',
  'overwrite',
  'truncate',
  'extend',
  'counts',
  'compression',
  'qdcount',
  'names',
  'edns',
  'tsig',
  'opcode',
  'random',
  'tiny',
];

/** One hostile UDP packet. */
export function packet(r: Rng, zone: string, strategy: Strategy = r.pick(STRATEGIES)): Buffer {
  switch (strategy) {
    case 'valid':
      return validQuery(r, zone);
    case 'flip':
      return flipBits(r, validQuery(r, zone));
    case 'overwrite':
      return overwrite(r, validQuery(r, zone));
    case 'truncate': {
      const q = validQuery(r, zone);
      return q.subarray(0, r.int(q.length));
    }
    case 'extend':
      return Buffer.concat([validQuery(r, zone), r.bytes(1 + r.int(100))]);
    case 'counts':
      return lyingCounts(r, validQuery(r, zone));
    case 'compression':
      return compressionLoop(r);
    case 'qdcount':
      return questionCount(r, zone);
    case 'names':
      return badNames(r);
    case 'edns':
      return ednsAbuse(r, zone);
    case 'tsig':
      return junkTsig(r, zone);
    case 'opcode':
      return otherOpcode(r, zone);
    case 'random':
      return r.bytes(r.int(600));
    case 'tiny':
      return r.bytes(r.int(13));
  }
}

/** A framed TCP message (RFC 1035 §4.2.2). */
export const framed = (m: Buffer): Buffer => Buffer.concat([u16(m.length), m]);

/** One malformed TCP stream: the chunks to write, in order, and whether to close after. */
export function tcpStream(r: Rng, zone: string): { chunks: Buffer[]; name: string } {
  switch (r.int(8)) {
    case 0:
      return {
        name: 'huge length prefix, partial data',
        chunks: [Buffer.concat([u16(0xffff), r.bytes(r.int(3000))])],
      };
    case 1: {
      const q = framed(validQuery(r, zone));
      return { name: 'partial frame', chunks: [q.subarray(0, 1 + r.int(q.length - 1))] };
    }
    case 2:
      return { name: 'zero-length frame', chunks: [u16(0)] };
    case 3:
      return {
        name: 'pipelined hostile messages',
        chunks: [Buffer.concat(Array.from({ length: 1 + r.int(20) }, () => framed(packet(r, zone))))],
      };
    case 4: {
      const q = framed(validQuery(r, zone));
      return { name: 'one byte per write', chunks: [...q].map((b) => Buffer.from([b])) };
    }
    case 5:
      return { name: 'random byte stream', chunks: [r.bytes(1 + r.int(2000))] };
    case 6:
      return {
        name: 'compression loops, lying counts, QDCOUNT 0/2',
        chunks: [
          Buffer.concat([
            framed(compressionLoop(r)),
            framed(lyingCounts(r, validQuery(r, zone))),
            framed(questionCount(r, zone)),
          ]),
        ],
      };
    default:
      return {
        name: 'many valid queries, replies never read',
        chunks: [Buffer.concat(Array.from({ length: 200 }, () => framed(validQuery(r, zone))))],
      };
  }
}
