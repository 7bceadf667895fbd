/**
 * Encoded answers, reused while the zones do not change: the hot path of a busy authoritative
 * server is the same few questions. A hit costs a map lookup and a copy, patching only the ID and
 * the question's case (answer owners point at the question, so they follow it).
 *
 * Only plain questions are cached: QUERY, EDNS version 0 without options (no cookie, no EXPIRE,
 * no TSIG). The key holds everything else the answer depends on: name (lower case), type, class,
 * RD/CD, EDNS presence, DO and the size limit. The whole cache is dropped whenever a zone changes
 * (ZoneTable.generation).
 */
import { FLAG_CD, FLAG_RD } from '../dns/message.js';
import { toLower } from '../dns/name.js';
import type { Query } from './query.js';

export class AnswerCache {
  private readonly map = new Map<string, Buffer>();
  private generation = -1;

  constructor(private readonly max = 50_000) {}

  /** The cache key, or undefined when this query must be answered afresh. */
  key(q: Query, limit: number, generation: number): string | undefined {
    if (q.opcode !== 0) return undefined;
    if (q.edns && (q.edns.version !== 0 || q.edns.options.length > 0)) return undefined;
    if (generation !== this.generation) {
      this.map.clear();
      this.generation = generation;
    }
    const edns = q.edns ? (q.edns.dnssecOk ? 'D' : 'E') : 'N';
    return `${toLower(q.qname).toString('latin1')}|${q.qtype}|${q.qclass}|${q.flags & (FLAG_RD | FLAG_CD)}|${edns}|${limit}`;
  }

  get(key: string, q: Query): Buffer | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    const reply = Buffer.allocUnsafe(hit.length);
    hit.copy(reply);
    reply.writeUInt16BE(q.id, 0);
    q.questionWire.copy(reply, 12);
    return reply;
  }

  set(key: string, reply: Buffer): void {
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, reply);
  }
}
