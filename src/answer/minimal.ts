/**
 * Which optional sections an answer carries, decided per query as BIND 9.18 decides it
 * (lib/ns/query.c, ns_query_start): the `minimal-responses` setting, then the rules BIND applies
 * on top of it. Authority here means the zone's NS added to positive answers (RFC 2181 §6.1:
 * optional); additional means the addresses of NS, MX and SRV targets (RFC 1034 §4.3.2 step 6).
 * A referral's glue and a negative answer's SOA are never optional and are not governed by this.
 */
import type { MinimalResponses } from '../config.js';
import { TYPE } from '../dns/types.js';

/** Leave the zone's NS out of positive answers. */
export const NO_AUTHORITY = 1;
/** Leave out additional addresses (referral glue stays). */
export const NO_ADDITIONAL = 2;
/** Answer ANY with one RRset (RFC 8482 §4.1). */
export const MINIMAL_ANY = 4;

export interface AnswerPolicy {
  minimalResponses: MinimalResponses;
  minimalAny: boolean;
}

export const DEFAULT_POLICY: AnswerPolicy = { minimalResponses: 'no-auth-recursive', minimalAny: false };

/** The query facts the choice depends on: RD, the type, TCP, and the EDNS UDP size (none: no OPT). */
export function minimalBits(
  policy: AnswerPolicy,
  rd: boolean,
  qtype: number,
  tcp: boolean,
  ednsUdpSize: number | undefined,
): number {
  let bits = 0;
  switch (policy.minimalResponses) {
    case 'yes':
      bits = NO_AUTHORITY | NO_ADDITIONAL;
      break;
    case 'no-auth':
      bits = NO_AUTHORITY;
      break;
    case 'no-auth-recursive':
      if (rd) bits = NO_AUTHORITY;
      break;
  }
  // Key material and DS are fetched by validators, which need nothing else.
  if (qtype === TYPE.DNSKEY || qtype === TYPE.CDNSKEY || qtype === TYPE.DS || qtype === TYPE.CDS)
    bits = NO_AUTHORITY | NO_ADDITIONAL;
  // An NS question always gets the addresses of the servers it names.
  else if (qtype === TYPE.NS) bits = 0;
  if (qtype === TYPE.ANY && policy.minimalAny && !tcp) bits |= NO_AUTHORITY | NO_ADDITIONAL | MINIMAL_ANY;
  // A client offering only 512 octets of EDNS gets the answer alone: BIND's choice, so that the
  // reply fits without TC where it can.
  if (ednsUdpSize !== undefined && ednsUdpSize <= 512 && !tcp) bits |= NO_AUTHORITY | NO_ADDITIONAL;
  return bits;
}
