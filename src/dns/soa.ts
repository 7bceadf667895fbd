/** SOA rdata fields (RFC 1035 §3.3.13) read from uncompressed wire rdata. */
import { readName, WireError } from './name.js';

export interface Soa {
  mname: Buffer;
  rname: Buffer;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export function parseSoa(rdata: Buffer): Soa {
  const m = readName(rdata, 0);
  const r = readName(rdata, m.end);
  if (r.end + 20 !== rdata.length) throw new WireError('SOA rdata has wrong length');
  const at = r.end;
  return {
    mname: m.name,
    rname: r.name,
    serial: rdata.readUInt32BE(at),
    refresh: rdata.readUInt32BE(at + 4),
    retry: rdata.readUInt32BE(at + 8),
    expire: rdata.readUInt32BE(at + 12),
    minimum: rdata.readUInt32BE(at + 16),
  };
}

/** TTL of the SOA in a negative answer: min(SOA TTL, SOA MINIMUM) (RFC 2308 §3). */
export function negativeTtl(soaTtl: number, soaRdata: Buffer): number {
  return Math.min(soaTtl, parseSoa(soaRdata).minimum);
}
