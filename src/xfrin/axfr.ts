/**
 * AXFR (RFC 5936) intake. `AxfrReader` is the pure part: fed one response message at a time, it
 * checks the framing and collects the zone; `axfr()` drives it over TCP.
 *
 * Checks (RFC 5936 §2.2, §3): every message carries our ID, QR, NOERROR; a question, when present,
 * is ours; the first RR is the apex SOA and the stream ends at the next apex SOA with the same
 * serial, with nothing after it; an SOA anywhere else is fatal; every RR passes validate.ts
 * (class IN, no meta types, rdata fitting its type). RRs owned outside the zone are dropped and
 * counted, as BIND and NSD do, the rest of the transfer is taken.
 */

import {
  FLAG_QR,
  FLAG_TC,
  type Message,
  opcodeOf,
  parseMessage,
  rcodeOf,
  type WireRR,
} from '../dns/message.js';
import { equalNames, isSubdomain, nameToText, toLower, WireError } from '../dns/name.js';
import { rcodeText } from '../dns/rcode.js';
import { parseSoa } from '../dns/soa.js';
import type { TsigKey } from '../dns/tsig.js';
import { CLASS, TYPE, typeToText } from '../dns/types.js';
import type { ZoneRR } from '../store/zone-store.js';
import { buildQuery, signQuery } from './query.js';
import { type Endpoint, type StreamStats, tcpStream } from './transport.js';
import { rrProblem } from './validate.js';

export class XfrError extends Error {
  constructor(
    message: string,
    readonly rcode?: number,
  ) {
    super(message);
  }
}

/**
 * Parses one transfer response message and checks what every message of a transfer must satisfy
 * (RFC 5936 §2.2): our ID, a QUERY response, NOERROR, no TC, and our question when one is present
 * (it must be in the first message, §2.2.1).
 */
export function checkedMessage(
  msg: Buffer,
  id: number,
  zone: Buffer,
  qtype: number,
  first: boolean,
): Message {
  let m: Message;
  try {
    m = parseMessage(msg);
  } catch (e) {
    if (e instanceof WireError) throw new XfrError(`malformed transfer message: ${e.message}`);
    throw e;
  }
  const h = m.header;
  if (h.id !== id) throw new XfrError(`message ID ${h.id} does not match query ID ${id}`);
  if (!(h.flags & FLAG_QR) || opcodeOf(h.flags) !== 0) throw new XfrError('reply is not a QUERY response');
  const rcode = rcodeOf(h.flags);
  if (rcode !== 0) throw new XfrError(`primary answered ${rcodeText(rcode)}`, rcode);
  if (h.flags & FLAG_TC) throw new XfrError('TC set on a TCP transfer message');
  if (m.questions.length > 1) throw new XfrError(`${m.questions.length} questions in a transfer message`);
  const q = m.questions[0];
  if (q && (!equalNames(q.name, zone) || q.type !== qtype || q.class !== CLASS.IN)) {
    throw new XfrError('question in reply does not match the transfer query');
  }
  if (first && !q) throw new XfrError('first transfer message has no question (RFC 5936 §2.2.1)');
  return m;
}

export interface AxfrResult {
  serial: number;
  /** The zone's RRs, unless they were handed to a sink as they arrived. */
  rrs: ZoneRR[];
  records: number;
  /** RRs whose owner was outside the zone, dropped. */
  dropped: { owner: string; type: number }[];
  messages: number;
  bytes: number;
}

const SINK_BATCH = 2000;

export class AxfrReader {
  private readonly zone: Buffer;
  private readonly id: number;
  private readonly maxRecords: number;
  private serial: number | undefined;
  private done = false;
  readonly rrs: ZoneRR[] = [];
  readonly dropped: { owner: string; type: number }[] = [];
  /** RRs taken so far (kept in `rrs`, or handed to the sink). */
  count = 0;

  /** With a `sink`, RRs are handed over in batches instead of kept (large zones stream). */
  constructor(
    zone: Buffer,
    id: number,
    maxRecords: number,
    private readonly sink?: (batch: ZoneRR[]) => void,
  ) {
    this.zone = toLower(zone);
    this.id = id;
    this.maxRecords = maxRecords;
  }

  get finished(): boolean {
    return this.done;
  }

  get zoneSerial(): number | undefined {
    return this.serial;
  }

  /** Takes the next message; returns true once the closing SOA has been seen. */
  push(msg: Buffer, first: boolean): boolean {
    const m = checkedMessage(msg, this.id, this.zone, TYPE.AXFR, first);
    if (m.answer.length === 0) throw new XfrError('transfer message without records');
    for (const rr of m.answer) this.take(rr);
    if (this.done) this.flush();
    return this.done;
  }

  private flush(): void {
    if (!this.sink || this.rrs.length === 0) return;
    this.sink(this.rrs.splice(0));
  }

  /** Takes the next RR of the stream (also used for AXFR-style IXFR responses). */
  take(rr: WireRR): void {
    if (this.done) throw new XfrError('records after the closing SOA');
    const zrr = intake(rr, this.zone, this.dropped);
    if (rr.type === TYPE.SOA) {
      const serial = parseSoa(rr.rdata).serial;
      if (this.serial === undefined) {
        this.serial = serial;
      } else if (serial === this.serial) {
        this.done = true;
        return;
      } else {
        throw new XfrError(`closing SOA serial ${serial} differs from opening serial ${this.serial}`);
      }
    } else if (this.serial === undefined) {
      throw new XfrError('transfer does not start with the zone SOA');
    }
    if (!zrr) return;
    if (this.count >= this.maxRecords) throw new XfrError(`zone exceeds maxRecords (${this.maxRecords})`);
    this.count++;
    this.rrs.push(zrr);
    if (this.sink && this.rrs.length >= SINK_BATCH) this.flush();
  }
}

/**
 * Per-RR intake checks shared by AXFR and IXFR: class IN, SOA only at the apex. Returns the RR in
 * store form, or undefined when its owner is outside the zone (recorded in `dropped`).
 */
export function intake(
  rr: WireRR,
  zone: Buffer,
  dropped: { owner: string; type: number }[],
): ZoneRR | undefined {
  // Every RR is checked, in the zone or not: one bad RR rejects the transfer whole.
  const problem = rrProblem(rr);
  if (problem) throw new XfrError(`${nameToText(rr.owner)} ${typeToText(rr.type)}: ${problem}`);
  if (rr.type === TYPE.SOA && !equalNames(rr.owner, zone)) {
    throw new XfrError(`SOA record at ${nameToText(rr.owner)} outside the apex`);
  }
  if (!isSubdomain(rr.owner, zone)) {
    dropped.push({ owner: nameToText(rr.owner), type: rr.type });
    return undefined;
  }
  return { owner: toLower(rr.owner), type: rr.type, ttl: rr.ttl, rdata: rr.rdata };
}

export interface TransferLimits {
  maxRecords: number;
  maxTransferBytes: number;
  maxTransferSeconds: number;
  maxIdleSeconds: number;
}

/**
 * Sends a transfer request (TSIG-signed with `key`) and feeds every reply message — each verified
 * when signed — to `reader` until it has the whole answer, within the zone's transfer limits.
 */
export async function runTransfer(
  primary: Endpoint,
  request: Buffer,
  reader: { push(msg: Buffer, first: boolean): boolean },
  limits: TransferLimits,
  key?: TsigKey,
): Promise<StreamStats> {
  const query = signQuery(request, key);
  const tsig = query.verifier();
  let first = true;
  return tcpStream(
    primary,
    query.msg,
    (m) => {
      tsig?.verify(m);
      const done = reader.push(m, first);
      first = false;
      if (done) tsig?.finish();
      return done;
    },
    {
      connectMs: Math.min(10_000, limits.maxIdleSeconds * 1000),
      idleMs: limits.maxIdleSeconds * 1000,
      totalMs: limits.maxTransferSeconds * 1000,
      maxBytes: limits.maxTransferBytes,
    },
  );
}

/** With `key`, the request is TSIG-signed and every message of the reply must verify. */
export async function axfr(
  primary: Endpoint,
  zone: Buffer,
  limits: TransferLimits,
  key?: TsigKey,
  sink?: (batch: ZoneRR[]) => void,
): Promise<AxfrResult> {
  const { id, msg } = buildQuery(zone, TYPE.AXFR);
  const reader = new AxfrReader(zone, id, limits.maxRecords, sink);
  const stats = await runTransfer(primary, msg, reader, limits, key);
  return {
    serial: reader.zoneSerial!,
    rrs: reader.rrs,
    records: reader.count,
    dropped: reader.dropped,
    ...stats,
  };
}
