/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): the top functions by self time, with
 * file:line mapped back to src/*.ts through dist's source maps when there is one, and self time
 * grouped by where it is spent (ns2 code, dependencies, node internals, native, GC, idle).
 *
 *   node --import tsx bench/top-profile.ts FILE.cpuprofile [--top 15]
 *
 * Self time comes from the sample timeline (samples + timeDeltas), not hitCount × interval, so
 * it is right even when the sampling interval drifted.
 */
import fs from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface CallFrame {
  functionName: string;
  scriptId: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionCost {
  name: string;
  where: string;
  category: string;
  selfMs: number;
  selfPct: number;
  /** Inclusive: the function and everything it called. */
  totalPct: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Wall time with the process busy (total minus idle). */
  busyMs: number;
  top: FunctionCost[];
  /** ns2's own functions by inclusive time: where the time goes, from the top down. */
  topTotalNs2: FunctionCost[];
  categories: { category: string; selfMs: number; selfPct: number }[];
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const maps = new Map<string, SourceMap | null>();

function sourceMapFor(file: string): SourceMap | null {
  let m = maps.get(file);
  if (m !== undefined) return m;
  m = null;
  try {
    m = new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8')));
  } catch {
    /* no map: report the JS position */
  }
  maps.set(file, m);
  return m;
}

/** A path from its project root: "src/…", "dist/…", "node_modules/…" (ns2 may be built elsewhere). */
function short(file: string): string {
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) return file.slice(nm + 1);
  for (const dir of ['/src/', '/dist/']) {
    const i = file.lastIndexOf(dir);
    if (i >= 0) return file.slice(i + 1);
  }
  const rel = path.relative(ROOT, file);
  return rel.startsWith('..') ? file : rel;
}

/** "src/serve/lookup.ts:42" for ns2's own code (via the source map), else a short path:line. */
function location(cf: CallFrame): string {
  if (!cf.url) return '';
  let file = cf.url;
  if (file.startsWith('file://')) file = fileURLToPath(file);
  if (path.isAbsolute(file)) {
    const map = sourceMapFor(file);
    if (map) {
      const e = map.findEntry(cf.lineNumber, cf.columnNumber) as {
        originalSource?: string;
        originalLine?: number;
      };
      if (e?.originalSource) {
        const src = e.originalSource.startsWith('file://')
          ? fileURLToPath(e.originalSource)
          : path.resolve(path.dirname(file), e.originalSource);
        return `${short(src)}:${(e.originalLine ?? 0) + 1}`;
      }
    }
    file = short(file);
  }
  return `${file}:${cf.lineNumber + 1}`;
}

function category(cf: CallFrame): string {
  const n = cf.functionName;
  if (n === '(garbage collector)') return 'GC';
  if (n === '(idle)') return 'idle';
  if (n === '(program)') return 'program (V8/native, unattributed)';
  if (n === '(root)') return 'root';
  const url = cf.url;
  if (!url) return 'native (C++ bindings, e.g. better-sqlite3, sockets)';
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/node_modules/')) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    return `dep: ${m ? m[1] : 'node_modules'}`;
  }
  if (url.includes('/dist/') || url.includes('/src/')) return 'ns2';
  return 'other JS';
}

const keyOf = (cf: CallFrame) => `${cf.functionName}|${cf.url}|${cf.lineNumber}|${cf.columnNumber}`;

export function summarise(file: string, topN = 15): ProfileSummary {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time between sample i-1 and sample i; attribute it to sample i's node,
  // as Chrome DevTools does.
  for (let i = 0; i < prof.samples.length; i++) {
    const d = prof.timeDeltas[i] ?? 0;
    selfUs.set(prof.samples[i], (selfUs.get(prof.samples[i]) ?? 0) + Math.max(0, d));
  }
  const fns = new Map<string, { cf: CallFrame; us: number; totalUs: number }>();
  const fn = (cf: CallFrame) => {
    const key = keyOf(cf);
    let f = fns.get(key);
    if (!f) {
      f = { cf, us: 0, totalUs: 0 };
      fns.set(key, f);
    }
    return f;
  };
  const cats = new Map<string, number>();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    totalUs += us;
    fn(node.callFrame).us += us;
    const c = category(node.callFrame);
    cats.set(c, (cats.get(c) ?? 0) + us);
  }
  // Inclusive time: a node's self time plus its subtree's, counted once per function even when
  // it recurses (only the outermost frame of a function on a stack adds its subtree).
  const subtree = new Map<number, number>();
  const sum = (id: number): number => {
    const n = byId.get(id)!;
    let t = selfUs.get(id) ?? 0;
    for (const c of n.children ?? []) t += sum(c);
    subtree.set(id, t);
    return t;
  };
  const root = prof.nodes[0];
  if (root) sum(root.id);
  const active = new Map<string, number>();
  const walk = (id: number) => {
    const n = byId.get(id)!;
    const key = keyOf(n.callFrame);
    const depth = active.get(key) ?? 0;
    if (depth === 0) fn(n.callFrame).totalUs += subtree.get(id) ?? 0;
    active.set(key, depth + 1);
    for (const c of n.children ?? []) walk(c);
    active.set(key, depth);
  };
  if (root) walk(root.id);

  const idleUs = cats.get('idle') ?? 0;
  const pct = (us: number) => (totalUs > 0 ? (100 * us) / totalUs : 0);
  const cost = ({ cf, us, totalUs: incl }: { cf: CallFrame; us: number; totalUs: number }): FunctionCost => ({
    name: cf.functionName || '(anonymous)',
    where: location(cf),
    category: category(cf),
    selfMs: us / 1000,
    selfPct: pct(us),
    totalPct: pct(incl),
  });
  const top = [...fns.values()]
    .filter((f) => f.us > 0)
    .sort((a, b) => b.us - a.us)
    .slice(0, topN)
    .map(cost);
  const topTotalNs2 = [...fns.values()]
    .filter((f) => category(f.cf) === 'ns2')
    .sort((a, b) => b.totalUs - a.totalUs)
    .slice(0, 10)
    .map(cost);
  const categories = [...cats.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([c, us]) => ({ category: c, selfMs: us / 1000, selfPct: pct(us) }));
  return { file, totalMs: totalUs / 1000, busyMs: (totalUs - idleUs) / 1000, top, topTotalNs2, categories };
}

export function formatSummary(s: ProfileSummary): string {
  const lines: string[] = [];
  lines.push(
    `${path.basename(s.file)}: ${(s.totalMs / 1000).toFixed(1)} s profiled, ${(s.busyMs / 1000).toFixed(1)} s busy (not idle)`,
  );
  const row = (f: FunctionCost) =>
    `  ${f.selfMs.toFixed(0).padStart(7)}  ${f.selfPct.toFixed(1).padStart(5)}%  ${f.totalPct.toFixed(1).padStart(5)}%  ${f.name.slice(0, 36).padEnd(36)}  ${f.where || `[${f.category}]`}`;
  lines.push('');
  lines.push(`  top ${s.top.length} by self time:`);
  lines.push(
    `  ${'self ms'.padStart(7)}  ${'self'.padStart(6)}  ${'total'.padStart(6)}  ${'function'.padEnd(36)}  where`,
  );
  for (const f of s.top) lines.push(row(f));
  lines.push('');
  lines.push('  ns2 functions by total (inclusive) time:');
  lines.push(
    `  ${'self ms'.padStart(7)}  ${'self'.padStart(6)}  ${'total'.padStart(6)}  ${'function'.padEnd(36)}  where`,
  );
  for (const f of s.topTotalNs2) lines.push(row(f));
  lines.push('');
  lines.push('  self time by category:');
  for (const c of s.categories) {
    lines.push(`  ${c.selfMs.toFixed(0).padStart(7)}  ${c.selfPct.toFixed(1).padStart(5)}%  ${c.category}`);
  }
  lines.push(
    '  (time inside a native call such as better-sqlite3 Statement.run/all is charged to the JS function making the call)',
  );
  return lines.join('\n');
}

// CLI
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const ti = args.indexOf('--top');
  const topN = ti >= 0 ? Number(args.splice(ti, 2)[1]) : 15;
  if (args.length === 0) {
    process.stderr.write('usage: node --import tsx bench/top-profile.ts FILE.cpuprofile [...] [--top N]\n');
    process.exit(1);
  }
  for (const f of args) process.stdout.write(`${formatSummary(summarise(f, topN))}\n\n`);
}
