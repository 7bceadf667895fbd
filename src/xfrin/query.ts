/** Queries ns2 sends to its primaries, encoded with dns-packet (plain names, no EDNS needed). */
import { randomInt } from 'node:crypto';
import packet from 'dns-packet';
import { nameToText } from '../dns/name.js';
import { signRequest, type TsigKey, TsigResponseVerifier } from '../dns/tsig.js';
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

export interface SignedQuery {
  msg: Buffer;
  /** A fresh verifier for one reply stream to `msg` (undefined when unsigned). */
  verifier(): TsigResponseVerifier | undefined;
}

/**
 * Signs a query with the primary's TSIG key (RFC 8945 §5.1); every reply to it must then verify.
 * Without a key the query goes unsigned and replies are taken as they are.
 */
export function signQuery(msg: Buffer, key: TsigKey | undefined): SignedQuery {
  if (!key) return { msg, verifier: () => undefined };
  const now = () => Math.floor(Date.now() / 1000);
  const signed = signRequest(msg, key, now());
  return { msg: signed.msg, verifier: () => new TsigResponseVerifier(key, signed.mac, now) };
}
