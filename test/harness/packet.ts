/**
 * dns-packet as the unit tests use it (an independent encoder of queries and decoder of replies),
 * typed where @types/dns-packet falls short, so the tests need no casts to read what it returns.
 */
import assert from 'node:assert/strict';
import packet from 'dns-packet';

// dns-packet's header decoder also returns the opcode and rcode as names ('QUERY', 'NXDOMAIN',
// 'RCODE_11' for unnamed ones); @types/dns-packet 5.6.5 leaves both out.
declare module 'dns-packet' {
  interface DecodedPacket {
    opcode: string;
    rcode: string;
  }
}

/** Any decoded RR but OPT, which is a pseudo-RR of the additional section only (RFC 6891 §6.1.1). */
export type DataRR = Exclude<packet.Answer, packet.OptAnswer>;

/** The RRs of an answer or authority section; an OPT there fails the test. */
export function dataRRs(section: packet.Answer[] | undefined): DataRR[] {
  return (section ?? []).map((r) => {
    if (r.type === 'OPT') assert.fail('OPT outside the additional section (RFC 6891 §6.1.1)');
    return r;
  });
}

/** The OPT record of a decoded additional section, if any. */
export const optOf = (additionals: packet.Answer[] | undefined): packet.OptAnswer | undefined =>
  additionals?.find((r) => r.type === 'OPT');

/**
 * An EDNS option as dns-packet encodes any code: the code and its raw data (RFC 6891 §6.1.2).
 * @types/dns-packet types only four codes (ECS, keepalive, padding, key tag), not COOKIE or NSID.
 */
export interface EdnsOption {
  code: number;
  data?: Buffer;
}

/** An OPT record to encode: EDNS version 0, no extended rcode, no options unless given. */
export function optRR(
  udpPayloadSize: number,
  extra: Partial<Omit<packet.OptAnswer, 'options' | 'flag_do'>> & { options?: EdnsOption[] } = {},
): packet.OptAnswer {
  const { options = [], flags = 0, ...rest } = extra;
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize,
    extendedRcode: 0,
    ednsVersion: 0,
    ...rest,
    flags,
    // The encoder writes `flags` and ignores `flag_do`; keep the two in step anyway.
    flag_do: (flags & packet.DNSSEC_OK) !== 0,
    // The encoder handles every code alike when `data` is given (EdnsOption above).
    options: options as packet.PacketOpt[],
  };
}
