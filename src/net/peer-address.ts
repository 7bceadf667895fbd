/**
 * Peer addresses read straight from the raw sockaddr the kernel wrote (no copy, formatted only
 * when asked). sockaddr_in: family(2, host order) port(2, network order) addr(4).
 * sockaddr_in6: family(2) port(2) flowinfo(4) addr(16) scope_id(4, host order).
 */
import os from 'node:os';
import { formatIPv6 } from '../ip-text.js';

const LITTLE_ENDIAN = os.endianness() === 'LE';

export function sockaddrPort(b: Uint8Array, off: number): number {
  return (b[off + 2] << 8) | b[off + 3];
}

export function sockaddrIPv4(b: Uint8Array, off: number): string {
  return `${b[off + 4]}.${b[off + 5]}.${b[off + 6]}.${b[off + 7]}`;
}

export function sockaddrIPv6(b: Uint8Array, off: number): string {
  const text = formatIPv6(b, off + 8);
  const s = off + 24;
  const scope = LITTLE_ENDIAN
    ? (b[s] | (b[s + 1] << 8) | (b[s + 2] << 16) | (b[s + 3] << 24)) >>> 0
    : ((b[s] << 24) | (b[s + 1] << 16) | (b[s + 2] << 8) | b[s + 3]) >>> 0;
  return scope === 0 ? text : `${text}%${scope}`;
}

export { formatIPv6 };
