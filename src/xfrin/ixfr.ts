/**
 * IXFR (RFC 1995) intake. The request carries our SOA in the authority section (§3); the reply is
 * one of three shapes (§4), told apart by its first two RRs:
 *
 *   SOA(N) alone, N not newer than ours     → up to date
 *   SOA(N) SOA(ours) ... SOA(N)             → incremental: per version, SOA(old) deletions
 *                                             SOA(new) additions, chained old → new
 *   SOA(N) <not SOA(ours)> ... SOA(N)       → AXFR-style: the whole zone
 *
 * `IxfrReader` is pure (fed messages, no sockets); `ixfr()` drives it over TCP.
 */
import type { WireRR } from '../dns/message.js';
import { equalNames, toLower } from '../dns/name.js';
import { parseSoa } from '../dns/soa.js';
import type { TsigKey } from '../dns/tsig.js';
import { CLASS, TYPE } from '../dns/types.js';
import { MessageWriter } from '../dns/writer.js';
import type { ZoneRR } from '../store/zone-store.js';
import { AxfrReader, checkedMessage, intake, runTransfer, type TransferLimits, XfrError } from './axfr.js';
import { randomId } from './query.js';
import type { Endpoint, StreamStats } from './transport.js';

/** One version step of an incremental transfer; the SOAs are in `deleted`/`added` too. */
export interface ZoneDiff {
  from: number;
  to: number;
  deleted: ZoneRR[];
  added: ZoneRR[];
}

export type IxfrResult =
  | { kind: 'uptodate'; serial: number }
  | { kind: 'axfr'; serial: number; rrs: ZoneRR[] }
  | { kind: 'ixfr'; serial: number; diffs: ZoneDiff[] };

type State = 'start' | 'second' | 'dels' | 'adds' | 'axfr' | 'done';

export class IxfrReader {
  private readonly zone: Buffer;
  private state: State = 'start';
  private serial = 0;
  private opening: WireRR | undefined;
  private axfr: AxfrReader | undefined;
  private diffs: ZoneDiff[] = [];
  private count = 0;
  readonly dropped: { owner: string; type: number }[] = [];

  constructor(
    zone: Buffer,
    private readonly id: number,
    private readonly ours: number,
    private readonly maxRecords: number,
  ) {
    this.zone = toLower(zone);
  }

  /** Takes the next message; returns true when the response is complete. */
  push(msg: Buffer, first: boolean): boolean {
    const m = checkedMessage(msg, this.id, this.zone, TYPE.IXFR, first);
    if (m.answer.length === 0) throw new XfrError('transfer message without records');
    for (const rr of m.answer) this.take(rr);
    // A first message holding nothing but the SOA is the whole answer (RFC 1995 §4).
    if (first && this.state === 'second' && m.answer.length === 1) this.state = 'done';
    return this.state === 'done';
  }

  result(): IxfrResult {
    if (this.state !== 'done') throw new XfrError('IXFR response incomplete');
    if (this.axfr) return { kind: 'axfr', serial: this.serial, rrs: this.axfr.rrs };
    if (this.diffs.length > 0) return { kind: 'ixfr', serial: this.serial, diffs: this.diffs };
    // A lone SOA newer than ours means the primary could not give a diff: not an answer we can use.
    if (this.serial !== this.ours && !isNotNewer(this.serial, this.ours)) {
      throw new XfrError(`IXFR answered with a single SOA of newer serial ${this.serial}`);
    }
    return { kind: 'uptodate', serial: this.serial };
  }

  private take(rr: WireRR): void {
    if (this.state === 'done') throw new XfrError('records after the closing SOA');
    if (++this.count > this.maxRecords * 2 + 4)
      throw new XfrError(`IXFR exceeds maxRecords (${this.maxRecords})`);
    if (this.state === 'axfr') {
      this.axfr!.take(rr);
      if (this.axfr!.finished) this.state = 'done';
      return;
    }
    const isSoa = rr.type === TYPE.SOA && rr.class === CLASS.IN && equalNames(rr.owner, this.zone);
    // The AXFR-style branch checks its RRs itself; the other states check them here.
    const zrr = this.state === 'second' && !isSoa ? undefined : intake(rr, this.zone, this.dropped);
    switch (this.state) {
      case 'start':
        if (!isSoa) throw new XfrError('IXFR response does not start with the zone SOA');
        this.serial = parseSoa(rr.rdata).serial;
        this.opening = rr;
        this.state = 'second';
        return;
      case 'second':
        if (isSoa && parseSoa(rr.rdata).serial === this.ours && this.serial !== this.ours) {
          this.diffs.push({ from: this.ours, to: this.ours, deleted: [zrr!], added: [] });
          this.state = 'dels';
        } else {
          this.axfr = new AxfrReader(this.zone, this.id, this.maxRecords);
          this.axfr.take(this.opening!);
          this.axfr.take(rr);
          this.state = this.axfr.finished ? 'done' : 'axfr';
        }
        return;
      case 'dels': {
        const diff = this.diffs[this.diffs.length - 1];
        if (isSoa) {
          diff.to = parseSoa(rr.rdata).serial;
          diff.added.push(zrr!);
          this.state = 'adds';
        } else if (zrr) {
          diff.deleted.push(zrr);
        }
        return;
      }
      case 'adds': {
        const diff = this.diffs[this.diffs.length - 1];
        if (!isSoa) {
          if (zrr) diff.added.push(zrr);
          return;
        }
        const s = parseSoa(rr.rdata).serial;
        if (s === this.serial && diff.to === this.serial) {
          this.state = 'done';
          return;
        }
        // Each version must start where the previous one ended (RFC 1995 §4).
        if (s !== diff.to) throw new XfrError(`IXFR version chain broken: ${diff.to} then ${s}`);
        this.diffs.push({ from: s, to: s, deleted: [zrr!], added: [] });
        this.state = 'dels';
        return;
      }
    }
  }
}

function isNotNewer(candidate: number, current: number): boolean {
  const d = (candidate - current) >>> 0;
  return d === 0 || d >= 0x80000000;
}

/** The IXFR query: question, and our current SOA in the authority section (RFC 1995 §3). */
export function buildIxfrQuery(zone: Buffer, soaTtl: number, soaRdata: Buffer): { id: number; msg: Buffer } {
  const id = randomId();
  const w = new MessageWriter(512 + soaRdata.length);
  w.u16(id);
  w.u16(0);
  w.u16(1);
  w.u16(0);
  w.u16(1);
  w.u16(0);
  w.name(zone);
  w.u16(TYPE.IXFR);
  w.u16(CLASS.IN);
  w.rr(zone, TYPE.SOA, CLASS.IN, soaTtl, soaRdata);
  return { id, msg: w.finish() };
}

/** With `key`, the request is TSIG-signed and every message of the reply must verify. */
export async function ixfr(
  primary: Endpoint,
  zone: Buffer,
  ours: { serial: number; ttl: number; rdata: Buffer },
  limits: TransferLimits,
  key?: TsigKey,
): Promise<IxfrResult & StreamStats & { dropped: { owner: string; type: number }[] }> {
  const { id, msg } = buildIxfrQuery(zone, ours.ttl, ours.rdata);
  const reader = new IxfrReader(zone, id, ours.serial, limits.maxRecords);
  const stats = await runTransfer(primary, msg, reader, limits, key);
  return { ...reader.result(), ...stats, dropped: reader.dropped };
}
