/** EDNS(0) option lists (RFC 6891 §6.1.2): {code, length, data} triples in OPT rdata. */
import { WireError } from './name.js';

export const OPTION = {
  /** RFC 7314: the secondary's remaining expire time for the zone. */
  EXPIRE: 9,
  COOKIE: 10,
  /** RFC 8914 Extended DNS Errors. */
  EDE: 15,
} as const;

/** RFC 8914 §4 info-codes used here. */
export const EDE = { NOT_READY: 14, INVALID_DATA: 24 } as const;

export interface EdnsOption {
  code: number;
  data: Buffer;
}

export function parseOptions(rdata: Buffer): EdnsOption[] {
  const out: EdnsOption[] = [];
  let off = 0;
  while (off < rdata.length) {
    if (off + 4 > rdata.length) throw new WireError('truncated EDNS option');
    const code = rdata.readUInt16BE(off);
    const len = rdata.readUInt16BE(off + 2);
    if (off + 4 + len > rdata.length) throw new WireError('EDNS option runs past OPT rdata');
    out.push({ code, data: rdata.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  return out;
}

export function encodeOptions(opts: readonly EdnsOption[]): Buffer {
  return Buffer.concat(
    opts.map((o) => {
      const h = Buffer.alloc(4);
      h.writeUInt16BE(o.code, 0);
      h.writeUInt16BE(o.data.length, 2);
      return Buffer.concat([h, o.data]);
    }),
  );
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}
