/**
 * Deterministic benchmark zones and dnsperf query files. The same (zone, size, seed) always
 * gives byte-identical files, so runs on different days measure the same work.
 *
 * Per host index i (owner `h<i>`):
 *   A            always
 *   AAAA         i % 2 == 0
 *   MX           i % 5 == 0   (exchange: an earlier host)
 *   TXT          i % 4 == 0
 *   c<i> CNAME   i % 4 == 2   (target: an earlier host, so the chain stays in the zone)
 * ≈ 2.2 RRs per host; generation stops at exactly `records` RRs (SOA, NS and glue included).
 */
import fs from 'node:fs';
import { prng } from '../../test/harness/prng.js';

export { prng };

export interface ZoneInfo {
  name: string;
  file: string;
  serial: number;
  records: number;
  /** Hosts h0..h<hosts-1> are complete (every RR the pattern gives them is in the file). */
  hosts: number;
}

export const hasAAAA = (i: number) => i % 2 === 0;
export const hasMX = (i: number) => i % 5 === 0;
export const hasTXT = (i: number) => i % 4 === 0;
export const hasCNAME = (i: number) => i % 4 === 2;

export function ipv4(i: number): string {
  return `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
}

function ipv6(i: number): string {
  return `2001:db8:${((i >>> 16) & 0xffff).toString(16)}::${(i & 0xffff).toString(16)}`;
}

/** Writes the zone file; returns what the queries need to know about it. */
export function writeZone(file: string, name: string, records: number, serial: number, seed = 1): ZoneInfo {
  const rnd = prng(seed);
  const fd = fs.openSync(file, 'w');
  let buf: string[] = [];
  let count = 0;
  const emit = (line: string): boolean => {
    if (count >= records) return false;
    buf.push(line);
    count++;
    if (buf.length >= 10_000) {
      fs.writeSync(fd, `${buf.join('\n')}\n`);
      buf = [];
    }
    return true;
  };
  fs.writeSync(fd, `$ORIGIN ${name}.\n$TTL 3600\n`);
  emit(`@ IN SOA ns1 hostmaster ${serial} 3600 600 1209600 300`);
  emit('@ IN NS ns1');
  emit('ns1 IN A 192.0.2.1');
  let hosts = 0;
  for (let i = 0; count < records; i++) {
    let complete = emit(`h${i} IN A ${ipv4(i)}`);
    if (hasAAAA(i)) complete = emit(`h${i} IN AAAA ${ipv6(i)}`) && complete;
    if (hasMX(i)) complete = emit(`h${i} IN MX 10 h${Math.floor(i / 2)}`) && complete;
    if (hasTXT(i)) {
      const key = Math.floor(rnd() * 2 ** 32)
        .toString(16)
        .padStart(8, '0');
      complete = emit(`h${i} IN TXT "v=bench1 id=${i}" "key=${key}"`) && complete;
    }
    if (hasCNAME(i)) complete = emit(`c${i} IN CNAME h${Math.floor(rnd() * i)}`) && complete;
    if (complete) hosts = i + 1;
  }
  fs.writeSync(fd, `${buf.join('\n')}\n`);
  fs.closeSync(fd);
  return { name, file, serial, records: count, hosts };
}

/** Host-index samplers over 0..hosts-1, deterministic for a seed. */
export type HostDist = 'uniform' | 'zipf';

/**
 * Zipf with exponent s over `n` ranks: rank k (1-based) has weight 1/k^s. Ranks are mapped to
 * hosts by a fixed permutation (k·M mod n, M coprime with n), so the popular names are spread
 * over the zone instead of being h0, h1, h2 (which all hold every type).
 */
function zipfSampler(n: number, s: number, rnd: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) {
    sum += 1 / k ** s;
    cdf[k - 1] = sum;
  }
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  let m = 1_000_003;
  while (gcd(m, n) !== 1) m += 2;
  return () => {
    const u = rnd() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return (lo * m) % n;
  };
}

export interface QueryOptions {
  /** How names are drawn over the hosts: uniformly (U) or Zipf s = `zipfS` (Z). */
  dist?: HostDist;
  zipfS?: number;
  seed?: number;
}

/**
 * dnsperf query file (`name TYPE` a line): 70% existing names with a type they hold (mostly
 * A/AAAA/MX/TXT; CNAME owners asked for A, so the chain is followed), 20% NXDOMAIN (beside,
 * below and misspelt hosts), 10% other types at existing names (NODATA). The host behind each
 * line is drawn uniformly over all hosts, or Zipf-distributed (same mix, popular names).
 */
export function writeQueries(file: string, zone: ZoneInfo, lines: number, o: QueryOptions = {}): void {
  const rnd = prng(o.seed ?? 2);
  const host =
    o.dist === 'zipf' ? zipfSampler(zone.hosts, o.zipfS ?? 1.0, rnd) : () => Math.floor(rnd() * zone.hosts);
  const out: string[] = [];
  for (let n = 0; n < lines; n++) {
    const r = rnd();
    if (r < 0.7) {
      const i = host();
      const types = ['A'];
      if (hasAAAA(i)) types.push('AAAA');
      if (hasMX(i)) types.push('MX');
      if (hasTXT(i)) types.push('TXT');
      if (hasCNAME(i)) types.push('CNAME');
      const t = types[Math.floor(rnd() * types.length)];
      out.push(t === 'CNAME' ? `c${i}.${zone.name} A` : `h${i}.${zone.name} ${t}`);
    } else if (r < 0.9) {
      const k = Math.floor(rnd() * 3);
      const i = host();
      // Names that do not exist: beside the hosts, below them, and with a typo.
      out.push(
        k === 0 ? `nx${i}.${zone.name} A` : k === 1 ? `www.h${i}.${zone.name} A` : `h${i}x.${zone.name} AAAA`,
      );
    } else {
      const i = host();
      const absent = ['SRV', 'CAA', 'NS', 'PTR'];
      if (!hasAAAA(i)) absent.push('AAAA');
      if (!hasTXT(i)) absent.push('TXT');
      out.push(`h${i}.${zone.name} ${absent[Math.floor(rnd() * absent.length)]}`);
    }
  }
  fs.writeFileSync(file, `${out.join('\n')}\n`);
}
