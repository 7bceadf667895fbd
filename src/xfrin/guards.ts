/**
 * Commit guards: what a zone version must satisfy before it replaces the one we serve. Pure — no
 * sockets, no SQLite — so the refresher (main thread) and the store's writer (worker thread) call
 * the same rules. Every check returns a problem (one line, naming the owner and the rule) or
 * undefined; the caller refuses the transfer with it (`throw new GuardError(problem)` inside a
 * write transaction rolls it back), keeps the zone it has and retries at the SOA retry.
 *
 * Per node (owner name), `checkNode`:
 *   - at most `maxRecordsPerType` RRs in one RRset and `maxTypesPerName` RRsets at one owner
 *     (BIND's CVE-2024-1737 limits, both 100 by default; an RRSIG counts once per type it covers,
 *     as BIND counts them);
 *   - a CNAME is alone at its owner (RFC 1034 §3.6.2, RFC 2181 §10.1) except for DNSSEC data
 *     (RRSIG, NSEC: RFC 4035 §2.5; SIG, NXT, KEY: RFC 2535 §2.3.5, as BIND's "atcname" types);
 *     one CNAME, one DNAME (RFC 6672 §2.4) at most;
 *   - SOA only at the apex; at the apex exactly one SOA and at least one NS (RFC 1034 §4.2.1).
 *
 * Ways in, by what the caller holds:
 *   checkZone(rrs, apex, limits)              a whole zone in memory (async; tools and tests)
 *   checkNodeRows(rows, apex, limits)         a whole zone as per-RRset counts grouped by owner,
 *                                             e.g. a GROUP BY over a staging table (see below)
 *   checkDiffs(diffs, apex, limits, before)   an IXFR before it is applied: the touched nodes as
 *                                             held now (`before`, e.g. ZoneReader.node) plus the diffs
 *   checkOwners(owners, apex, limits, nodeAt) an IXFR after it is applied inside the write
 *                                             transaction: `touchedOwners(diffs, apex)` re-read
 *   deleteProblem(oldCount, removed, max)     `maxDeletePercent` (off when max is undefined)
 *
 * Counting: RRs are counted once per distinct rdata (a transfer repeating an RR does not count it
 * twice); RRsets are keyed by `rrsetKey` (the type, or SIG_BASE + the covered type for an RRSIG),
 * the same key ZoneReader.node() uses (store's sigKey).
 *
 * For a staged full zone in SQLite (the store's temp.incoming_<id>), rows for checkNodeRows come
 * from a query such as (tested in test/unit/guards.test.ts)
 *   SELECT name AS owner, rtype AS type,
 *          CASE WHEN rtype = 46 THEN substr(rdata_wire, 1, 2) END AS covered,
 *          count(DISTINCT rdata_wire) AS count
 *     FROM incoming GROUP BY nkey, rtype, covered ORDER BY nkey
 * (any order works as long as one owner's rows are consecutive). For maxDeletePercent, count the
 * removed RRs by owner, type and rdata, not TTL: a zone-wide TTL change deletes nothing.
 */
import { equalNames, isSubdomain, nameToText, toLower } from '../dns/name.js';
import { TYPE, typeToText } from '../dns/types.js';

/** One RR as the guards need it (ZoneRR from the store fits). */
export interface GuardRR {
  owner: Buffer;
  type: number;
  rdata: Buffer;
}

/** One IXFR version step (xfrin's ZoneDiff and the store's Diff fit). */
export interface GuardDiff {
  deleted: readonly GuardRR[];
  added: readonly GuardRR[];
}

export interface ZoneLimits {
  /** Most RRs in one RRset (distinct rdata). */
  maxRecordsPerType: number;
  /** Most RRsets at one owner (an RRSIG counts once per covered type). */
  maxTypesPerName: number;
}

/** Thrown by callers that refuse a transfer on a guard's problem. */
export class GuardError extends Error {
  readonly code = 'NS2_ERR_GUARD';
  override readonly name = 'GuardError';
}

/** RRSIGs are keyed by the type they cover: SIG_BASE + covered (the store's sigKey). */
export const SIG_BASE = 0x10000;

/** The RRset an RR belongs to at its node: its type, or SIG_BASE + covered type for an RRSIG. */
export function rrsetKey(type: number, rdata: Buffer): number {
  return type === TYPE.RRSIG && rdata.length >= 2 ? SIG_BASE + rdata.readUInt16BE(0) : type;
}

/** RRsets of one node: rrsetKey → number of distinct RRs. */
export type NodeCounts = ReadonlyMap<number, number>;

/** What may share an owner with a CNAME besides the CNAME (RFC 4035 §2.5, RFC 2535 §2.3.5). */
const AT_CNAME = new Set<number>([TYPE.CNAME, TYPE.RRSIG, TYPE.NSEC, TYPE.SIG, TYPE.NXT, TYPE.KEY]);

const keyText = (key: number): string =>
  key >= SIG_BASE ? `RRSIG(${typeToText(key - SIG_BASE)})` : typeToText(key);

/**
 * The rules for one node. `owner` is only used in the problem text; `apex` says whether this node
 * is the zone apex.
 */
export function checkNode(
  owner: string,
  counts: NodeCounts,
  limits: ZoneLimits,
  apex: boolean,
): string | undefined {
  const problem = nodeRule(counts, limits, apex);
  return problem && `${owner} ${problem}`;
}

/** checkNode without the owner (so a clean node costs no name formatting). */
function nodeRule(counts: NodeCounts, limits: ZoneLimits, apex: boolean): string | undefined {
  if (counts.size > limits.maxTypesPerName) {
    return `has ${counts.size} RR types, more than maxTypesPerName (${limits.maxTypesPerName})`;
  }
  for (const [key, n] of counts) {
    if (n > limits.maxRecordsPerType) {
      return `${keyText(key)} has ${n} records, more than maxRecordsPerType (${limits.maxRecordsPerType})`;
    }
  }
  const cnames = counts.get(TYPE.CNAME) ?? 0;
  if (cnames > 1) return `has ${cnames} CNAME records, at most one is allowed (RFC 2181 §10.1)`;
  if (cnames === 1) {
    for (const key of counts.keys()) {
      if (key < SIG_BASE && !AT_CNAME.has(key)) {
        return `has a CNAME and other data (${typeToText(key)}) (RFC 1034 §3.6.2, RFC 4035 §2.5)`;
      }
    }
  }
  const dnames = counts.get(TYPE.DNAME) ?? 0;
  if (dnames > 1) return `has ${dnames} DNAME records, at most one is allowed (RFC 6672 §2.4)`;
  const soas = counts.get(TYPE.SOA) ?? 0;
  if (!apex) return soas > 0 ? 'has an SOA record below the zone apex' : undefined;
  return apexRule(counts);
}

function apexRule(counts: NodeCounts): string | undefined {
  const soas = counts.get(TYPE.SOA) ?? 0;
  if (soas !== 1)
    return `is the zone apex with ${soas === 0 ? 'no' : soas} SOA records, exactly one is required`;
  if (!counts.get(TYPE.NS)) return 'is the zone apex without NS records';
  return undefined;
}

/** The problem of a zone whose apex owns no records at all. */
const noApex = (apex: string) => `${apex} ${apexRule(new Map())}`;

/** Counts of a node as ZoneReader.node() returns it (RRsets keyed like rrsetKey). */
export function countsOf(node: ReadonlyMap<number, { rdatas: readonly Buffer[] }>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [key, set] of node) {
    const n = distinct(set.rdatas);
    if (n > 0) out.set(key, n);
  }
  return out;
}

function distinct(rdatas: readonly Buffer[]): number {
  if (rdatas.length < 2) return rdatas.length;
  return new Set(rdatas.map((r) => r.toString('latin1'))).size;
}

/** FNV-1a over the owner with ASCII folded to lower case (names compare case-insensitively). */
function ownerHash(owner: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < owner.length; i++) {
    let c = owner[i];
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A whole zone in memory. Owners outside the zone are a problem (intake drops them before this).
 * RRs need not be grouped by owner: they are ordered by an owner hash first (one typed-array sort,
 * no per-owner map), so memory stays at 8 bytes per RR. About 1.5 s per million RRs on one core,
 * so it yields to the event loop every `yieldEvery` RRs (queries keep being answered meanwhile).
 */
export async function checkZone(
  rrs: readonly GuardRR[],
  apex: Buffer,
  limits: ZoneLimits,
  yieldEvery = 50_000,
): Promise<string | undefined> {
  const n = rrs.length;
  const pause = () => new Promise((r) => setImmediate(r));
  for (let i = 0; i < n; i++) {
    if (!isSubdomain(rrs[i].owner, apex))
      return `${nameToText(rrs[i].owner)} is outside the zone ${nameToText(apex)}`;
    if (i % yieldEvery === yieldEvery - 1) await pause();
  }
  // Sort keys: hash * span + index, exact in a double (53 bits) with the hash cut to fit.
  const indexBits = Math.max(1, Math.ceil(Math.log2(n + 1)));
  const span = 2 ** indexBits;
  const hashDiv = 2 ** (32 - Math.min(32, 53 - indexBits));
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    keys[i] = Math.floor(ownerHash(rrs[i].owner) / hashDiv) * span + i;
    if (i % yieldEvery === yieldEvery - 1) await pause();
  }
  keys.sort();
  let sawApex = false;
  const run: GuardRR[] = [];
  const counts = new Map<number, number>();
  let i = 0;
  let next = yieldEvery;
  while (i < n) {
    if (i >= next) {
      next = i + yieldEvery;
      await pause();
    }
    // One hash, usually one owner: the run is checked as one node when every owner is the same.
    const hash = Math.floor(keys[i] / span);
    run.length = 0;
    let sameOwner = true;
    for (; i < n && Math.floor(keys[i] / span) === hash; i++) {
      const rr = rrs[keys[i] % span];
      if (run.length > 0 && sameOwner && !rr.owner.equals(run[0].owner)) {
        sameOwner = equalNames(rr.owner, run[0].owner);
      }
      run.push(rr);
    }
    const nodes = sameOwner ? [run] : splitOwners(run);
    for (const node of nodes) {
      const isApex = equalNames(node[0].owner, apex);
      sawApex ||= isApex;
      const problem = nodeRule(countInto(counts, node), limits, isApex);
      if (problem) return `${nameToText(toLower(node[0].owner))} ${problem}`;
    }
  }
  if (!sawApex) return noApex(nameToText(toLower(apex)));
  return undefined;
}

/** RRs of one hash run grouped by owner (hash collisions: rare). */
function splitOwners(run: readonly GuardRR[]): GuardRR[][] {
  const out: GuardRR[][] = [];
  for (const rr of run) {
    const node = out.find((o) => equalNames(o[0].owner, rr.owner));
    if (node) node.push(rr);
    else out.push([rr]);
  }
  return out;
}

/** Fills `counts` (cleared first) with the node's RRsets; repeated RRs count once. */
function countInto(counts: Map<number, number>, node: readonly GuardRR[]): Map<number, number> {
  counts.clear();
  let repeated = false;
  for (const rr of node) {
    const key = rrsetKey(rr.type, rr.rdata);
    const c = counts.get(key);
    if (c === undefined) counts.set(key, 1);
    else {
      counts.set(key, c + 1);
      repeated = true;
    }
  }
  if (!repeated) return counts;
  // Some RRset has several RRs: count its distinct rdatas.
  for (const [key, c] of counts) {
    if (c < 2) continue;
    const seen = new Set<string>();
    for (const rr of node) if (rrsetKey(rr.type, rr.rdata) === key) seen.add(rr.rdata.toString('latin1'));
    counts.set(key, seen.size);
  }
  return counts;
}

/** Per-RRset counts of one owner, e.g. a row of a GROUP BY over a staged zone. */
export interface NodeRow {
  /** Owner in presentation form (trailing dot optional, any case). */
  owner: string;
  type: number;
  /** For an RRSIG, the covered type: a number or the rdata's first two octets. */
  covered?: number | Uint8Array | null;
  /** Distinct RRs in the RRset. */
  count: number;
}

const normal = (name: string): string => (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();

/**
 * A whole zone given as per-RRset counts; one owner's rows must be consecutive. RRSIG rows are
 * merged per covered type (several rows of one key add up).
 */
export function checkNodeRows(rows: Iterable<NodeRow>, apex: string, limits: ZoneLimits): string | undefined {
  const apexName = normal(apex);
  let owner: string | undefined;
  let counts = new Map<number, number>();
  let sawApex = false;
  const flush = (): string | undefined => {
    if (owner === undefined) return undefined;
    const isApex = owner === apexName;
    sawApex ||= isApex;
    return checkNode(`${owner}.`, counts, limits, isApex);
  };
  for (const row of rows) {
    const name = normal(row.owner);
    if (name !== owner) {
      const problem = flush();
      if (problem) return problem;
      owner = name;
      counts = new Map();
    }
    let key = row.type;
    if (row.type === TYPE.RRSIG && row.covered !== undefined && row.covered !== null) {
      const c = row.covered;
      key = SIG_BASE + (typeof c === 'number' ? c : c.length >= 2 ? (c[0] << 8) | c[1] : 0);
    }
    counts.set(key, (counts.get(key) ?? 0) + row.count);
  }
  const problem = flush();
  if (problem) return problem;
  if (!sawApex) return noApex(`${apexName}.`);
  return undefined;
}

/** The owners an IXFR may have made invalid: the apex, then each owner with additions, once. */
export function touchedOwners(diffs: readonly GuardDiff[], apex: Buffer): Buffer[] {
  const seen = new Set<string>();
  const out: Buffer[] = [];
  const add = (owner: Buffer) => {
    const lower = toLower(owner);
    const k = lower.toString('latin1');
    if (seen.has(k)) return;
    seen.add(k);
    out.push(lower);
  };
  add(apex);
  for (const d of diffs) for (const rr of d.added) add(rr.owner);
  return out;
}

/** A node as ZoneReader.node() returns it: RRsets by rrsetKey. */
export type NodeView = ReadonlyMap<number, { rdatas: readonly Buffer[] }>;

/**
 * After an IXFR was applied inside the write transaction: checks each owner of
 * `touchedOwners(diffs, apex)` as the transaction now sees it (`nodeAt`, e.g.
 * `(o) => reader.node(nameKey(o))`). Throw GuardError on a problem to roll back.
 */
export function checkOwners(
  owners: readonly Buffer[],
  apex: Buffer,
  limits: ZoneLimits,
  nodeAt: (owner: Buffer) => NodeView,
): string | undefined {
  for (const owner of owners) {
    const problem = nodeRule(countsOf(nodeAt(owner)), limits, equalNames(owner, apex));
    if (problem) return `${nameToText(toLower(owner))} ${problem}`;
  }
  return undefined;
}

/**
 * Before an IXFR is applied: what the diffs would leave at each touched owner, from the node as
 * held now (`before`, e.g. `(o) => reader.node(nameKey(o))` on a read connection) and the diffs
 * applied in order. Exact when the diffs apply cleanly (when they don't, applying fails anyway).
 * Yields to the event loop every `yieldEvery` owners so a 50 000-change IXFR does not stall queries.
 */
export async function checkDiffs(
  diffs: readonly GuardDiff[],
  apex: Buffer,
  limits: ZoneLimits,
  before: (owner: Buffer) => NodeView,
  yieldEvery = 500,
): Promise<string | undefined> {
  const ops = new Map<string, { del: boolean; rr: GuardRR }[]>();
  for (const owner of touchedOwners(diffs, apex)) ops.set(owner.toString('latin1'), []);
  for (const d of diffs) {
    for (const rr of d.deleted) ops.get(toLower(rr.owner).toString('latin1'))?.push({ del: true, rr });
    for (const rr of d.added) ops.get(toLower(rr.owner).toString('latin1'))?.push({ del: false, rr });
  }
  let done = 0;
  for (const [k, list] of ops) {
    const owner = Buffer.from(k, 'latin1');
    const sets = new Map<number, Set<string>>();
    for (const [key, set] of before(owner))
      sets.set(key, new Set(set.rdatas.map((r) => r.toString('latin1'))));
    for (const { del, rr } of list) {
      const key = rrsetKey(rr.type, rr.rdata);
      const set = sets.get(key) ?? new Set<string>();
      sets.set(key, set);
      if (del) set.delete(rr.rdata.toString('latin1'));
      else set.add(rr.rdata.toString('latin1'));
    }
    const counts = new Map<number, number>();
    for (const [key, set] of sets) if (set.size > 0) counts.set(key, set.size);
    const problem = checkNode(nameToText(owner), counts, limits, equalNames(owner, apex));
    if (problem) return problem;
    if (++done % yieldEvery === 0) await new Promise((r) => setImmediate(r));
  }
  return undefined;
}

/** Net RRs of the zone an IXFR removes (SOAs not counted; an RR deleted then re-added is kept). */
export function diffRemovals(diffs: readonly GuardDiff[]): number {
  const removed = new Set<string>();
  const addedHere = new Set<string>();
  const id = (rr: GuardRR) =>
    `${toLower(rr.owner).toString('latin1')}|${rr.type}|${rr.rdata.toString('latin1')}`;
  for (const d of diffs) {
    for (const rr of d.deleted) {
      if (rr.type === TYPE.SOA) continue;
      const k = id(rr);
      if (addedHere.has(k)) addedHere.delete(k);
      else removed.add(k);
    }
    for (const rr of d.added) {
      if (rr.type === TYPE.SOA) continue;
      const k = id(rr);
      if (!removed.delete(k)) addedHere.add(k);
    }
  }
  return removed.size;
}

/** Percentage (0..100) of a zone of `oldCount` records that removing `removed` of them deletes. */
export function deleteShare(oldCount: number, removed: number): number {
  if (oldCount <= 0) return 0;
  return (Math.min(removed, oldCount) / oldCount) * 100;
}

/**
 * `maxDeletePercent`: a problem when the transfer would delete more than that share of the
 * zone's records; never on a first load (oldCount 0) or when the limit is off (undefined).
 */
export function deleteProblem(
  oldCount: number,
  removed: number,
  maxDeletePercent?: number,
): string | undefined {
  if (maxDeletePercent === undefined || oldCount <= 0) return undefined;
  const share = deleteShare(oldCount, removed);
  if (share <= maxDeletePercent) return undefined;
  return `transfer would delete ${removed} of ${oldCount} records (${share.toFixed(1)}%), more than maxDeletePercent (${maxDeletePercent}%)`;
}
