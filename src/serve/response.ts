/**
 * Response encoding: header, echoed question, the three sections with name compression, and an
 * OPT record when the query had one (RFC 6891 §6.1.1). When the sections do not fit the size
 * limit they are cut as BIND cuts them (see encodeResponse): a cut in the answer or authority
 * sets TC so the client retries over TCP (RFC 2181 §9); additional data is just left out.
 */
import { type EdnsOption, encodeOptions } from '../dns/edns.js';
import { FLAG_AA, FLAG_AD, FLAG_CD, FLAG_QR, FLAG_RD, FLAG_TC } from '../dns/message.js';
import { ROOT } from '../dns/name.js';
import { CLASS, TYPE } from '../dns/types.js';
import { MessageWriter, Overflow } from '../dns/writer.js';
import type { RRset } from './lookup.js';

export interface ResponseSpec {
  id: number;
  /** Flags of the query: RD and CD are copied back (RFC 1035 §4.1.1, RFC 4035 §3.1.6). */
  queryFlags: number;
  opcode: number;
  /** Full rcode; values above 15 go in the OPT extended rcode (RFC 6891 §6.1.3). */
  rcode: number;
  aa: boolean;
  question?: { name: Buffer; type: number; class: number };
  answer?: RRset[];
  authority?: RRset[];
  additional?: RRset[];
  /**
   * An answer from zone data to a query with AD or DO: BIND sets AD on it and clears it with the
   * first RRset it writes in answer or authority (zone data is not validated data, RFC 6840
   * §5.8), so AD stays only when a truncated reply without EDNS stops inside the first RRset.
   */
  adUntilWritten?: boolean;
  /** The reply will be TSIG-signed: truncation then keeps the question alone, as with EDNS. */
  signed?: boolean;
  /** Present when the query carried OPT: we reply with our own. */
  edns?: { dnssecOk: boolean; udpSize: number; options?: EdnsOption[] };
}

const OPT_LEN = 11;
const EMPTY = Buffer.alloc(0);
const DO_BIT = 0x8000;

/**
 * Where replies are built before finish() copies them out at their size: one buffer per thread,
 * not a fresh one of the limit per reply — 64 KiB for every TCP answer, garbage that piled up in
 * the malloc heap between collections (the fuzz run's RSS). encodeResponse never yields, so no
 * two replies are built in it at once.
 */
const scratch = Buffer.allocUnsafeSlow(65535);

export function encodeResponse(spec: ResponseSpec, limit: number): Buffer {
  const w = new MessageWriter(limit, scratch);
  const optRdata = spec.edns?.options?.length ? encodeOptions(spec.edns.options) : EMPTY;
  const reserve = spec.edns ? OPT_LEN + optRdata.length : 0;
  w.off = 12;
  let qd = 0;
  if (spec.question) {
    w.name(spec.question.name);
    w.u16(spec.question.type);
    w.u16(spec.question.class);
    qd = 1;
  }
  let tc = false;
  const afterQuestion = w.mark();
  const counts = [0, 0, 0];
  // RFC 2181 §9 lets a truncated reply hold what fits. BIND 9.18 (lib/dns/message.c) sends a
  // client without EDNS every RR that fits, up to the first that does not (even inside an
  // RRset), and an EDNS or TSIG client the question alone (it retries over TCP anyway;
  // dns_message_renderend). Additional data is optional: it stops at the first RRset that does
  // not fit, without TC.
  const partial = !spec.edns && !spec.signed;
  let ad = spec.adUntilWritten === true;
  const sections = [spec.answer ?? [], spec.authority ?? [], additionalOrder(spec.additional ?? [])];
  outer: for (let s = 0; s < 3; s++) {
    const keepPart = partial && s < 2;
    for (const set of sections[s]) {
      const start = w.mark();
      let rrs = 0;
      for (const rdata of set.rdatas) {
        const before = keepPart ? w.mark() : start;
        if (!writeRR(w, set, rdata, limit - reserve)) {
          w.reset(before);
          if (keepPart) counts[s] += rrs;
          if (s < 2) {
            tc = true;
            if (!partial) {
              w.reset(afterQuestion);
              counts.fill(0);
              ad = false;
            }
          }
          break outer;
        }
        rrs++;
      }
      counts[s] += rrs;
      if (s < 2) ad = false;
    }
  }
  if (spec.edns) {
    w.name(ROOT, false);
    w.u16(TYPE.OPT);
    w.u16(spec.edns.udpSize);
    w.u32((((spec.rcode >> 4) & 0xff) << 24) | (spec.edns.dnssecOk ? DO_BIT : 0));
    w.u16(optRdata.length);
    w.bytes(optRdata);
    counts[2]++;
  }
  const flags =
    FLAG_QR |
    ((spec.opcode & 0xf) << 11) |
    (spec.aa ? FLAG_AA : 0) |
    (tc ? FLAG_TC : 0) |
    (ad ? FLAG_AD : 0) |
    (spec.queryFlags & (FLAG_RD | FLAG_CD)) |
    (spec.rcode & 0xf);
  w.setU16(0, spec.id);
  w.setU16(2, flags);
  w.setU16(4, qd);
  w.setU16(6, counts[0]);
  w.setU16(8, counts[1]);
  w.setU16(10, counts[2]);
  return w.finish();
}

/** Writes one RR if it fits in `room` octets (the OPT's reserved); false, partly written, if not. */
function writeRR(w: MessageWriter, set: RRset, rdata: Buffer, room: number): boolean {
  try {
    w.rr(set.owner, set.type, set.klass ?? CLASS.IN, set.ttl, rdata);
  } catch (e) {
    if (e instanceof Overflow) return false;
    throw e;
  }
  return w.off <= room;
}

/**
 * The additional section in BIND's rendering order (lib/dns/message.c, wrong_priority()):
 * addresses first, then RRSIG and DNSKEY, then the rest, each in the order given; class IN only.
 * So when space runs out it is the signatures that go, not the addresses.
 */
function additionalOrder(sets: RRset[]): RRset[] {
  if (sets.length < 2) return sets;
  const rank = (s: RRset) =>
    s.klass !== undefined && s.klass !== CLASS.IN
      ? 0
      : s.type === TYPE.A || s.type === TYPE.AAAA
        ? 0
        : s.type === TYPE.RRSIG || s.type === TYPE.DNSKEY
          ? 1
          : 2;
  let sorted = true;
  for (let i = 1; i < sets.length && sorted; i++) sorted = rank(sets[i - 1]) <= rank(sets[i]);
  if (sorted) return sets;
  return [0, 1, 2].flatMap((r) => sets.filter((s) => rank(s) === r));
}
