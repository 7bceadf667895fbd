/**
 * A reply as the differential tests compare it, decoded by dns-packet — a decoder ns2 does not
 * share (its own parseMessage/readRdata would hide a decoder bug on both sides). Decoding only:
 * dns-packet's pitfalls (STACK.md) are in encoding, except that unknown types come back as raw
 * bytes, which compare fine. Everything is kept: the whole flags word (RA, AD, CD, opcode, rcode),
 * the question as sent back, every RR of every section with owner case, TTL, class and rdata,
 * the OPT record's fields and options, and the message size.
 */
import dnsPacket from 'dns-packet';

export interface Shape {
  size: number;
  flags: string;
  question: string[];
  answer: string[];
  authority: string[];
  additional: string[];
  opt: string | null;
}

const hexify = (_k: string, v: unknown): unknown => {
  if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') {
    return Buffer.from((v as { data: number[] }).data).toString('hex');
  }
  return v;
};

function rrText(r: dnsPacket.Answer): string {
  const a = r as { name: string; type: string; class?: string; ttl?: number; data?: unknown };
  // Owner names compare case-insensitively: ns2 keeps owners in lower case (README, Answers).
  return `${a.name.toLowerCase()} ${a.ttl} ${a.class} ${a.type} ${JSON.stringify(a.data, hexify)}`;
}

/** Flags as text: `qr opcode aa tc rd ra z ad cd rcode`, each named so a diff reads plainly. */
function flagsText(w: number): string {
  const bit = (m: number, n: string) => (w & m ? n : '');
  return [
    bit(0x8000, 'qr'),
    `op${(w >> 11) & 0xf}`,
    bit(0x0400, 'aa'),
    bit(0x0200, 'tc'),
    bit(0x0100, 'rd'),
    bit(0x0080, 'ra'),
    bit(0x0040, 'z'),
    bit(0x0020, 'ad'),
    bit(0x0010, 'cd'),
    `rcode${w & 0xf}`,
  ]
    .filter(Boolean)
    .join(' ');
}

/** The comparable shape of `reply`; RRs within a section are sorted (RRset order may rotate). */
export function shapeOf(reply: Buffer): Shape {
  const m = dnsPacket.decode(reply);
  const flagsWord = reply.readUInt16BE(2);
  let opt: string | null = null;
  const additional: string[] = [];
  for (const r of m.additionals ?? []) {
    if (r.type === 'OPT') {
      const o = r as dnsPacket.OptAnswer & { extendedRcode?: number; ednsVersion?: number };
      opt = JSON.stringify(
        {
          owner: o.name,
          udp: o.udpPayloadSize,
          ext: o.extendedRcode,
          version: o.ednsVersion,
          flags: o.flags,
          options: (o.options ?? []).map((x) => `${x.code}:${Buffer.from(x.data ?? []).toString('hex')}`),
        },
        hexify,
      );
    } else additional.push(rrText(r));
  }
  return {
    size: reply.length,
    flags: flagsText(flagsWord),
    question: (m.questions ?? []).map((q) => `${q.name} ${q.class} ${q.type}`),
    answer: (m.answers ?? []).map(rrText).sort(),
    authority: (m.authorities ?? []).map(rrText).sort(),
    additional: additional.sort(),
    opt,
  };
}

/** An RR line without its rdata: which RRset it belongs to. */
const rrsetOf = (line: string) => line.split(' ').slice(0, 4).join(' ');

/**
 * Names of the parts where two shapes differ (empty: the same). A truncated reply without EDNS
 * holds the RRs that fit, up to the first that does not, and BIND shuffles the RRs of an RRset
 * (rrset-order random): there the RRs are compared by the RRset they belong to, counts and size
 * still exactly.
 */
export function differences(a: Shape, b: Shape, qname?: string): string[] {
  const out: string[] = [];
  const partial = a.opt === null && b.opt === null && a.flags.includes(' tc') && b.flags.includes(' tc');
  for (const k of Object.keys(a) as (keyof Shape)[]) {
    let x: unknown = a[k];
    let y: unknown = b[k];
    if (partial && (k === 'answer' || k === 'authority')) {
      x = (x as string[]).map(rrsetOf);
      y = (y as string[]).map(rrsetOf);
    }
    if (k === 'size' && qname !== undefined && ownerCaseDiffers(qname)) continue;
    if (JSON.stringify(x) !== JSON.stringify(y)) out.push(k);
  }
  return out;
}

/**
 * A question for an NSEC3 owner as the signer wrote it (upper-case base32): BIND answers with
 * the owner in that case, compressed against the question; ns2 keeps owners in lower case, so
 * its owner is written out and the reply is larger (README, Answers).
 */
const ownerCaseDiffers = (qname: string) => /^[0-9A-V]{32}\./.test(qname);
