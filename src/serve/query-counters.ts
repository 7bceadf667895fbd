/**
 * Counters the query path bumps: `ns2_queries_total{transport,rcode}` and
 * `ns2_query_types_total{qtype}`. Each is one slot of a Float64Array, so a count
 * costs one indexed add — no allocation, no label lookup, no message — and the main thread reads the
 * slots when /metrics is scraped (control/metrics.ts).
 *
 * Every thread answering queries has its own QueryCounters. A serving worker's lives in a
 * SharedArrayBuffer the main thread allocated and handed it at start (workerData), so the main thread
 * sums all of them without asking. One writer per buffer: no atomics. A scrape may see a count one
 * query behind, never a torn one (aligned 8-byte stores on every platform Node runs on). A Float64
 * counts exactly up to 2^53, decades at a million queries a second.
 */
import { rcodeText } from '../dns/rcode.js';
import { TYPE, typeToText } from '../dns/types.js';

/** Transports a query arrives on, in slot order. */
export const TRANSPORTS = ['udp', 'tcp'] as const;
export type TransportName = (typeof TRANSPORTS)[number];
export const UDP = 0;
export const TCP = 1;

/** Rcodes 0..16 (16: BADVERS, RFC 6891) each get a slot; anything else shares the last. */
const RCODE_SLOTS = 18;
const OTHER_RCODE = RCODE_SLOTS - 1;

/**
 * Query types counted on their own (a bounded label set: clients choose the qtype); every other type
 * counts as `other`. The common types of authoritative traffic, DNSSEC, and the transfer types.
 */
const COUNTED_TYPES: readonly number[] = [
  TYPE.A,
  TYPE.NS,
  TYPE.CNAME,
  TYPE.SOA,
  TYPE.PTR,
  TYPE.HINFO,
  TYPE.MX,
  TYPE.TXT,
  TYPE.AAAA,
  TYPE.SRV,
  TYPE.NAPTR,
  TYPE.DNAME,
  TYPE.DS,
  TYPE.RRSIG,
  TYPE.NSEC,
  TYPE.DNSKEY,
  TYPE.NSEC3,
  TYPE.NSEC3PARAM,
  TYPE.TLSA,
  TYPE.CDS,
  TYPE.CDNSKEY,
  TYPE.SVCB,
  TYPE.HTTPS,
  TYPE.SPF,
  TYPE.IXFR,
  TYPE.AXFR,
  TYPE.ANY,
  TYPE.CAA,
];

/** qtype → column (0: `other`). */
const TYPE_SLOT = new Uint8Array(65536);
COUNTED_TYPES.forEach((t, i) => {
  TYPE_SLOT[t] = i + 1;
});
const TYPE_SLOTS = COUNTED_TYPES.length + 1;
/** The column of replies without a readable question: in ns2_queries_total, not by qtype. */
const NO_QUESTION = TYPE_SLOTS;
const COLUMNS = TYPE_SLOTS + 1;

/** The qtype label of each type column. */
export const QTYPE_LABELS: readonly string[] = ['other', ...COUNTED_TYPES.map(typeToText)];

/**
 * One slot per (transport, rcode, qtype column): a reply costs a single add. Both metrics are sums
 * over this table at scrape time (~1 000 slots a thread).
 */
const ROW = COLUMNS;
const TRANSPORT_ROWS = RCODE_SLOTS * ROW;
const SLOTS = TRANSPORTS.length * TRANSPORT_ROWS;

/** Bytes of one thread's counters. */
export const COUNTER_BYTES = SLOTS * Float64Array.BYTES_PER_ELEMENT;

export class QueryCounters {
  readonly slots: Float64Array;

  /** `buffer`: shared with the main thread (a serving worker), or this thread's own. */
  constructor(buffer: ArrayBufferLike = new ArrayBuffer(COUNTER_BYTES)) {
    this.slots = new Float64Array(buffer, 0, SLOTS);
  }

  /** One reply sent: its rcode (RFC 6891 extended rcode included) and the question's type. */
  answered(transport: number, rcode: number, qtype: number): void {
    this.slots[transport * TRANSPORT_ROWS + Math.min(rcode, OTHER_RCODE) * ROW + TYPE_SLOT[qtype & 0xffff]]++;
  }

  /**
   * A UDP answer-cache hit: `rcode` is the header's 4 bits (cached answers are never extended), and
   * `qtype` two octets off the wire. The hottest call: nothing to clamp.
   */
  cachedUdp(rcode: number, qtype: number): void {
    this.slots[UDP * TRANSPORT_ROWS + rcode * ROW + TYPE_SLOT[qtype]]++;
  }

  /** A reply to a request whose question could not be read (FORMERR and the like). */
  answeredWithoutQuestion(transport: number, rcode: number): void {
    this.slots[transport * TRANSPORT_ROWS + Math.min(rcode, OTHER_RCODE) * ROW + NO_QUESTION]++;
  }
}

/** The counts of several threads added up, with their labels: what a scrape reports. */
export interface CounterTotals {
  queries: { transport: TransportName; rcode: string; value: number }[];
  qtypes: { qtype: string; value: number }[];
}

export function totalCounters(threads: readonly QueryCounters[]): CounterTotals {
  const sum = new Float64Array(SLOTS);
  for (const t of threads) for (let i = 0; i < SLOTS; i++) sum[i] += t.slots[i];
  const queries: CounterTotals['queries'] = [];
  const byType = new Float64Array(TYPE_SLOTS);
  TRANSPORTS.forEach((transport, ti) => {
    for (let r = 0; r < RCODE_SLOTS; r++) {
      const row = ti * TRANSPORT_ROWS + r * ROW;
      let value = 0;
      for (let c = 0; c < COLUMNS; c++) value += sum[row + c];
      for (let c = 0; c < TYPE_SLOTS; c++) byType[c] += sum[row + c];
      // Rcodes never sent stay out of the exposition (a series per rcode ns2 cannot send is noise),
      // except the usual four, present from the start so rate() and alerts see them at 0.
      if (value === 0 && r !== 0 && r !== 2 && r !== 3 && r !== 5) continue;
      queries.push({ transport, rcode: r === OTHER_RCODE ? 'other' : rcodeText(r), value });
    }
  });
  const qtypes = QTYPE_LABELS.map((qtype, i) => ({ qtype, value: byType[i] }));
  return { queries, qtypes };
}
