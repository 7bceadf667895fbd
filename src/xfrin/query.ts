/** Queries ns2 sends to its primaries, encoded with dns-packet (plain names, no EDNS needed). */
import { randomInt } from 'node:crypto';
import packet from 'dns-packet';
import { nameToText } from '../dns/name.js';
import { typeToText } from '../dns/types.js';

/** A query with a random ID (RFC 5452 §4.3); RD clear: we ask the primary, not a resolver. */
export function buildQuery(zone: Buffer, type: number): { id: number; msg: Buffer } {
  const id = randomInt(0, 0x10000);
  const msg = packet.encode({
    type: 'query',
    id,
    flags: 0,
    questions: [{ name: nameToText(zone, false), type: typeToText(type) as packet.RecordType, class: 'IN' }],
  });
  return { id, msg };
}
