/**
 * Strict per-RR intake checks for zone transfers: what may enter a zone at all, whatever the
 * primary sends. Pure (no I/O); `rrProblem` is called on every RR of every AXFR and IXFR, and any
 * problem rejects the transfer whole.
 *
 *   class      IN only (ns2 serves class IN zones)
 *   type       no meta or pseudo types (RFC 6895 §3.1): 0, OPT (41) and the QTYPE/meta range
 *              128..255 (TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY and the unassigned rest), as
 *              BIND's dns_rdatatype_ismeta() refuses them
 *   rdata      consistent with its type where the type has a layout (dns/rdata-layout.ts, the
 *              table readRdata and the writer use too); names inside rdata uncompressed, labels
 *              ≤ 63 octets, names ≤ 255 octets (RFC 1035 §2.3.4)
 *
 * Owner names were already bounded by readName (labels ≤ 63, names ≤ 255). Types without a
 * layout (unknown types, NULL, OPENPGPKEY, …) are opaque (RFC 3597) and taken as they come.
 */
import type { WireRR } from '../dns/message.js';
import { rdataProblem } from '../dns/rdata-layout.js';
import { CLASS, TYPE, typeToText } from '../dns/types.js';

export { rdataProblem };

/** Meta and pseudo types (RFC 6895 §3.1): never data in a zone. */
export function isMetaType(type: number): boolean {
  return type === 0 || type === TYPE.OPT || (type >= 128 && type <= 255);
}

/** Why `rr` may not be part of a class IN zone, or undefined when it may. */
export function rrProblem(rr: WireRR): string | undefined {
  if (rr.class !== CLASS.IN) return `class ${rr.class} in a class IN zone transfer`;
  if (isMetaType(rr.type)) return `meta type ${typeToText(rr.type)} inside a zone`;
  return rdataProblem(rr.type, rr.rdata);
}
