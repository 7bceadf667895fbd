/** Generated zones for load and crash tests: deterministic, `n` address records plus apex data. */
export function bigZone(origin: string, n: number, serial = 1): string {
  const lines = [
    `$ORIGIN ${origin}.`,
    '$TTL 3600',
    `@ SOA ns1 hostmaster ${serial} 3600 600 86400 300`,
    '  NS ns1',
    'ns1 A 192.0.2.53',
  ];
  for (let i = 0; i < n; i++) lines.push(`h${i} A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  return `${lines.join('\n')}\n`;
}
