/** Queries ns2 sends to its primaries, encoded with dns-packet (plain names, no EDNS needed). */
import { randomInt } from 'node:crypto';
import packet from 'dns-packet';
import { nameToText } from '../dns/name.js';
import { typeToText } from '../dns/types.js';

/** Message IDs are random (RFC 5452 §4.3). */
export const randomId = (): number => randomInt(0, 0x10000);

/** A query with a random ID; RD clear: we ask the primary, not a resolver. */
export function buildQuery(
  zone: Buffer,
  type: number,
  options?: { code: number; data: Buffer }[],
): { id: number; msg: Buffer } {
  const id = randomId();
  const msg = packet.encode({
    type: 'query',
    id,
    flags: 0,
    questions: [{ name: nameToText(zone, false), type: typeToText(type) as packet.RecordType, class: 'IN' }],
    additionals: options
      ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options } as unknown as packet.Answer]
      : [],
  });
  return { id, msg };
}
