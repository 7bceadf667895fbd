/**
 * Serial number arithmetic (RFC 1982 §3.2) for 32-bit SOA serials. Two serials exactly 2^31
 * apart are incomparable: RFC 1982 leaves that undefined, and we treat it as "not newer".
 */
export type SerialOrder = 'lower' | 'equal' | 'greater' | 'incomparable';

const HALF = 0x80000000;

export function compareSerial(a: number, b: number): SerialOrder {
  if (a === b) return 'equal';
  const d = (b - a) >>> 0;
  if (d === HALF) return 'incomparable';
  return d < HALF ? 'lower' : 'greater';
}

/** True when `candidate` is newer than `current` (RFC 1982 s1 < s2). */
export const isNewer = (candidate: number, current: number): boolean =>
  compareSerial(current, candidate) === 'lower';
