/** The results table: one row per metric, ns2 beside BIND, the ratio, and the issue #7 target. */

export interface Row {
  metric: string;
  unit: string;
  ns2?: number;
  bind?: number;
  /** Which direction is better for this metric. */
  better: 'lower' | 'higher';
  /** Issue #7 target, in words, and whether this run met it (undefined: not applicable/unknown). */
  target?: string;
  met?: boolean;
  /** Why the ns2 value is missing. */
  error?: string;
  /** A remark printed under the table. */
  note?: string;
}

export function ratio(r: Row): number | undefined {
  if (r.ns2 === undefined || r.bind === undefined || !Number.isFinite(r.ns2) || !Number.isFinite(r.bind))
    return undefined;
  if (r.bind === 0) return undefined;
  return r.ns2 / r.bind;
}

export function fmt(v: number | undefined, unit: string): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  if (unit === 'q/s') return Math.round(v).toLocaleString('en-US');
  if (unit === 's') return v < 10 ? v.toFixed(2) : v.toFixed(1);
  if (unit === 'MiB') return v.toFixed(0);
  if (unit === '%') return v.toFixed(2);
  if (unit === 'ms') return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
  if (unit === '×') return v.toFixed(2);
  return String(v);
}

export function table(rows: Row[]): string {
  const head = ['metric', 'ns2', 'BIND', 'ns2/BIND', 'better', 'target (issue #7)', 'met'];
  const body = rows.map((r) => {
    const q = ratio(r);
    return [
      `${r.metric} (${r.unit})`,
      r.ns2 === undefined ? (r.error ? 'failed' : '—') : fmt(r.ns2, r.unit),
      fmt(r.bind, r.unit),
      q === undefined ? '—' : `${q.toFixed(2)}×`,
      r.better === 'lower' ? 'lower' : 'higher',
      r.target ?? '',
      r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 || i >= 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i === 0 || i >= 4 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const notes = rows.flatMap((r) => [
    ...(r.error ? [`  * ${r.metric}: ns2 FAILED: ${r.error}`] : []),
    ...(r.note ? [`  * ${r.metric}: ${r.note}`] : []),
  ]);
  return [line(head), sep, ...body.map(line), ...(notes.length ? ['', 'notes:', ...notes] : [])].join('\n');
}
