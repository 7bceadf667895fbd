/**
 * The SOA check of RFC 1034 §4.3.5: ask the primary for the zone's SOA serial. UDP first;
 * a truncated reply is retried over TCP, and so is a REFUSED one, as BIND's `try-tcp-refresh`
 * does: Knot answers the SOA of a catalog zone it generates over TCP only. A primary with `tls` is
 * asked over TLS only (RFC 9103 §9: a clear-text query would tell an observer which zones are
 * transferred, and when).
 */

import { OPTION, parseOptions } from '../dns/edns.js';
import { FLAG_AA, FLAG_QR, FLAG_TC, parseMessage, RCODE, rcodeOf } from '../dns/message.js';
import { equalNames } from '../dns/name.js';
import { rcodeText } from '../dns/rcode.js';
import { parseSoa } from '../dns/soa.js';
import type { TsigKey } from '../dns/tsig.js';
import { TYPE } from '../dns/types.js';
import { XfrError } from './axfr.js';
import { buildQuery, signQuery } from './query.js';
import { type Endpoint, tcpStream, udpExchange } from './transport.js';

export interface ProbeResult {
  serial: number;
  /** EDNS EXPIRE (RFC 7314) when the primary sent one: use it instead of the SOA expire. */
  expire?: number;
}

/** The SOA query, asking for EDNS EXPIRE (RFC 7314 §2); TSIG-signed with `key`, and verified. */
export async function probeSerial(
  primary: Endpoint,
  zone: Buffer,
  timeoutMs: number,
  key?: TsigKey,
): Promise<ProbeResult> {
  const { id, msg: unsigned } = buildQuery(zone, TYPE.SOA, [{ code: OPTION.EXPIRE, data: Buffer.alloc(0) }]);
  const query = signQuery(unsigned, key);
  const msg = query.msg;
  let reply = primary.tls ? undefined : await udpExchange(primary, msg, timeoutMs);
  const flags = reply && reply.length >= 4 ? reply.readUInt16BE(2) : 0;
  const truncated = (flags & FLAG_TC) !== 0;
  const refused = (flags & 0x0f) === RCODE.REFUSED;
  // A truncated UDP reply is not verified (it may lack its TSIG): the TCP retry is.
  if (reply && !truncated && !refused) query.verifier()?.verify(reply);
  if (!reply || truncated || refused) {
    let got: Buffer | undefined;
    const keep = (m: Buffer) => {
      got = Buffer.from(m);
      return true;
    };
    await tcpStream(primary, msg, keep, {
      connectMs: timeoutMs,
      idleMs: timeoutMs,
      totalMs: timeoutMs,
      maxBytes: 70_000,
    });
    reply = got!;
    query.verifier()?.verify(reply);
  }
  return serialFromReply(reply, id, zone);
}

export function serialFromReply(reply: Buffer, id: number, zone: Buffer): ProbeResult {
  const m = parseMessage(reply);
  if (m.header.id !== id || !(m.header.flags & FLAG_QR)) throw new XfrError('SOA reply does not match query');
  const rcode = rcodeOf(m.header.flags);
  if (rcode !== 0) throw new XfrError(`primary answered ${rcodeText(rcode)} to the SOA query`, rcode);
  // A primary that is not authoritative (lame) must not drive our copy of the zone.
  if (!(m.header.flags & FLAG_AA)) throw new XfrError('primary is not authoritative for the zone (AA clear)');
  const soa = m.answer.find((rr) => rr.type === TYPE.SOA && equalNames(rr.owner, zone));
  if (!soa) throw new XfrError('SOA reply has no SOA record for the zone');
  const opt = m.additional.find((rr) => rr.type === TYPE.OPT);
  const expire = opt
    ? parseOptions(opt.rdata).find((o) => o.code === OPTION.EXPIRE && o.data.length === 4)
    : undefined;
  return { serial: parseSoa(soa.rdata).serial, expire: expire?.data.readUInt32BE(0) };
}
