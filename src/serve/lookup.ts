/**
 * The authoritative lookup of RFC 1034 §4.3.2, as a pure function over a read-only zone view:
 * zone cuts (referrals with glue), DNAME (RFC 6672), exact matches, CNAME chains, wildcards
 * (RFC 4592), NODATA vs NXDOMAIN with the SOA for negative caching (RFC 2308 §3).
 *
 * Names are handled as nameKey()s (root-first length-prefixed labels): the key of an ancestor is a
 * prefix of the key of its descendant, so walking down from the apex is slicing one buffer.
 */

import { RCODE } from '../dns/message.js';
import { fromLabels, labels, nameKey, readName, stripLabels } from '../dns/name.js';
import { parseSoa } from '../dns/soa.js';
import { TYPE } from '../dns/types.js';
import type { StoredRRset, ZoneReader } from '../store/zone-store.js';

export interface RRset {
  owner: Buffer;
  type: number;
  ttl: number;
  rdatas: Buffer[];
}

export interface LookupResult {
  rcode: number;
  aa: boolean;
  answer: RRset[];
  authority: RRset[];
  additional: RRset[];
}

/** A zone we serve: its apex (lower-case wire) and a reader over its current version. */
export interface ZoneView {
  apex: Buffer;
  reader: ZoneReader;
}

export interface ZoneFinder {
  /** The closest enclosing zone we are authoritative for, if any. */
  find(name: Buffer): ZoneView | undefined;
}

export interface LookupOptions {
  /** RD was set: BIND's default `minimal-responses no-auth-recursive` then omits the apex NS. */
  recursionDesired: boolean;
}

/** Longest CNAME/DNAME chain followed (BIND stops at 16 too). */
const MAX_CHAIN = 16;

type Step = { next: Buffer } | undefined;

export function lookup(zones: ZoneFinder, qname: Buffer, qtype: number, opts: LookupOptions): LookupResult {
  const res: LookupResult = { rcode: RCODE.NOERROR, aa: true, answer: [], authority: [], additional: [] };
  const seen = new Set<string>();
  let name = qname;
  let last: ZoneView | undefined;
  for (let hop = 0; hop <= MAX_CHAIN; hop++) {
    const zone = zones.find(name);
    if (!zone) {
      last = undefined; // the chain leaves our zones: the resolver continues from here
      break;
    }
    const key = nameKey(name);
    const id = key.toString('latin1');
    if (seen.has(id)) break; // CNAME loop
    seen.add(id);
    last = zone;
    const step = answerInZone(zone, name, key, qtype, res, hop === 0);
    if (!step) break;
    name = step.next;
  }
  if (last && res.rcode === RCODE.NOERROR && res.answer.length > 0 && res.authority.length === 0) {
    addApexNs(last, res, opts);
  }
  return res;
}

/**
 * Positive answers carry the zone's NS in authority unless RD was set (BIND's default
 * `minimal-responses no-auth-recursive`), and not when the answer already holds that RRset.
 */
function addApexNs(zone: ZoneView, res: LookupResult, opts: LookupOptions): void {
  if (opts.recursionDesired) return;
  if (res.answer.some((s) => s.type === TYPE.NS && s.owner.length === zone.apex.length)) return;
  const ns = zone.reader.node(nameKey(zone.apex)).get(TYPE.NS);
  if (!ns) return;
  res.authority.push(rrset(zone.apex, TYPE.NS, ns));
  addAdditional(zone, res);
}

/** Offsets in `key` just after each label, from the apex down to the full name. */
function boundaries(key: Buffer, apexLen: number): number[] {
  const out: number[] = [];
  let pos = apexLen;
  while (pos < key.length) {
    pos += 1 + key[pos];
    out.push(pos);
  }
  return out;
}

/** The owner-name wire form for the ancestor of `name` whose key is `key[0, len)`. */
function ancestorName(name: Buffer, key: Buffer, len: number): Buffer {
  let below = 0;
  let pos = len;
  while (pos < key.length) {
    pos += 1 + key[pos];
    below++;
  }
  return stripLabels(name, below);
}

function answerInZone(
  zone: ZoneView,
  name: Buffer,
  key: Buffer,
  qtype: number,
  res: LookupResult,
  first: boolean,
): Step {
  const { reader } = zone;
  const apexKey = nameKey(zone.apex);
  const steps = boundaries(key, apexKey.length);
  let encloser = apexKey.length; // closest encloser found so far (key length)

  // Walk from just below the apex towards the name, looking for a zone cut or a DNAME above it.
  for (let i = 0; i < steps.length - 1; i++) {
    const len = steps[i];
    const akey = key.subarray(0, len);
    const node = reader.node(akey);
    if (node.size === 0) {
      if (!reader.hasChildren(akey)) return wildcardOrNxdomain(zone, name, key, encloser, qtype, res);
      encloser = len;
      continue;
    }
    encloser = len;
    const ns = node.get(TYPE.NS);
    if (ns) return referral(zone, ancestorName(name, key, len), ns, res, first);
    const dname = node.get(TYPE.DNAME);
    if (dname) return synthesizeFromDname(ancestorName(name, key, len), dname, name, qtype, res);
  }

  const node = reader.node(key);
  if (node.size > 0) {
    const ns = node.get(TYPE.NS);
    // At a cut the parent answers only DS (RFC 4035 §3.1.4.1); everything else is referred.
    if (ns && key.length !== apexKey.length && qtype !== TYPE.DS) return referral(zone, name, ns, res, first);
    return answerNode(zone, name, node, qtype, res);
  }
  if (key.length === apexKey.length || reader.hasChildren(key)) {
    // An empty non-terminal exists (RFC 4592 §2.2.2): NODATA, not NXDOMAIN.
    addNegative(zone, res, qtype);
    return undefined;
  }
  return wildcardOrNxdomain(zone, name, key, encloser, qtype, res);
}

/** RFC 4592 §3.3.1: the source of synthesis is `*.<closest encloser>`. */
function wildcardOrNxdomain(
  zone: ZoneView,
  name: Buffer,
  key: Buffer,
  encloser: number,
  qtype: number,
  res: LookupResult,
): Step {
  const wkey = Buffer.concat([key.subarray(0, encloser), Buffer.from([1, 0x2a])]);
  const node = zone.reader.node(wkey);
  if (node.size > 0) return answerNode(zone, name, node, qtype, res);
  res.rcode = RCODE.NXDOMAIN;
  addNegative(zone, res, qtype);
  return undefined;
}

/** Answers from the RRsets at one node (exact or wildcard-expanded, owner = the name asked). */
function answerNode(
  zone: ZoneView,
  owner: Buffer,
  node: Map<number, StoredRRset>,
  qtype: number,
  res: LookupResult,
): Step {
  if (qtype === TYPE.ANY) {
    // BIND 9.18 (minimal-any no) returns every RRset; RFC 8482 minimal ANY is not its default.
    for (const [type, set] of node) res.answer.push(rrset(owner, type, set));
  } else {
    const set = node.get(qtype);
    if (set) {
      res.answer.push(rrset(owner, qtype, set));
    } else {
      const cname = node.get(TYPE.CNAME);
      if (cname && qtype !== TYPE.CNAME) {
        res.answer.push(rrset(owner, TYPE.CNAME, cname));
        return { next: readName(cname.rdatas[0], 0).name };
      }
      addNegative(zone, res, qtype);
      return undefined;
    }
  }
  addAdditional(zone, res);
  return undefined;
}

function referral(zone: ZoneView, cut: Buffer, ns: StoredRRset, res: LookupResult, first: boolean): Step {
  if (first) res.aa = false;
  res.authority.push(rrset(cut, TYPE.NS, ns));
  addAdditional(zone, res);
  return undefined;
}

/** RFC 6672 §2.2: answer the DNAME and a CNAME from the name to its substitute. */
function synthesizeFromDname(
  owner: Buffer,
  dname: StoredRRset,
  name: Buffer,
  qtype: number,
  res: LookupResult,
): Step {
  res.answer.push(rrset(owner, TYPE.DNAME, dname));
  const target = readName(dname.rdatas[0], 0).name;
  const prefix = labels(name).slice(0, labels(name).length - labels(owner).length);
  const next = fromLabels([...prefix, ...labels(target)]);
  if (next.length > 255) {
    res.rcode = RCODE.YXDOMAIN;
    return undefined;
  }
  res.answer.push({ owner: name, type: TYPE.CNAME, ttl: dname.ttl, rdatas: [next] });
  // A CNAME question is answered by the synthesized CNAME itself.
  return qtype === TYPE.CNAME ? undefined : { next };
}

/** NXDOMAIN/NODATA: the zone SOA in authority with TTL min(SOA TTL, MINIMUM) (RFC 2308 §3). */
function addNegative(zone: ZoneView, res: LookupResult, qtype: number): void {
  const soa = zone.reader.node(nameKey(zone.apex)).get(TYPE.SOA);
  if (!soa) return;
  // BIND gives the SOA TTL 0 in an NXDOMAIN for an SOA question, so that SOA is not cached and
  // then served as the answer to SOA queries for the zone.
  const zero = qtype === TYPE.SOA && res.rcode === RCODE.NXDOMAIN;
  const ttl = zero ? 0 : Math.min(soa.ttl, parseSoa(soa.rdatas[0]).minimum);
  res.authority.push({ owner: zone.apex, type: TYPE.SOA, ttl, rdatas: soa.rdatas.slice(0, 1) });
}

/** RFC 1034 §4.3.2 step 6: addresses of NS, MX and SRV targets we hold, each once. */
function addAdditional(zone: ZoneView, res: LookupResult): void {
  const targets: Buffer[] = [];
  for (const set of [...res.answer, ...res.authority]) {
    const at = set.type === TYPE.NS ? 0 : set.type === TYPE.MX ? 2 : set.type === TYPE.SRV ? 6 : -1;
    if (at < 0) continue;
    for (const r of set.rdatas) targets.push(readName(r, at).name);
  }
  const done = new Set<string>();
  const apexKey = nameKey(zone.apex);
  for (const t of targets) {
    const key = nameKey(t);
    const id = key.toString('latin1');
    if (done.has(id) || !key.subarray(0, apexKey.length).equals(apexKey)) continue;
    done.add(id);
    const node = zone.reader.node(key);
    for (const type of [TYPE.A, TYPE.AAAA]) {
      const set = node.get(type);
      if (set) res.additional.push(rrset(t, type, set));
    }
  }
}

function rrset(owner: Buffer, type: number, set: StoredRRset): RRset {
  return { owner, type, ttl: set.ttl, rdatas: set.rdatas };
}
