/**
 * The authoritative lookup of RFC 1034 §4.3.2, as a pure function over a read-only zone view:
 * zone cuts (referrals with glue), DNAME (RFC 6672), exact matches, CNAME chains, wildcards
 * (RFC 4592), NODATA vs NXDOMAIN with the SOA for negative caching (RFC 2308 §3), and, when the
 * query has DO, the RRSIGs and the NSEC/NSEC3 denial proofs of RFC 4035 §3.1 / RFC 5155 §7.2.
 *
 * Names are handled as nameKey()s (root-first length-prefixed labels): the key of an ancestor is a
 * prefix of the key of its descendant, so walking down from the apex is slicing one buffer.
 */
import { MINIMAL_ANY, NO_ADDITIONAL, NO_AUTHORITY } from '../answer/minimal.js';
import { canonicalKey, type Nsec3Param, nsec3Hash, parseNsec3Param } from '../dns/dnssec.js';
import { RCODE } from '../dns/message.js';
import { fromLabels, keyToName, labels, nameKey, readName, stripLabels } from '../dns/name.js';
import { parseSoa } from '../dns/soa.js';
import { TYPE } from '../dns/types.js';
import { type StoredRRset, sigKey, type ZoneReader } from '../store/zone-store.js';

export interface RRset {
  owner: Buffer;
  type: number;
  ttl: number;
  rdatas: Buffer[];
  /** Class IN unless given (CHAOS identity answers). */
  klass?: number;
}

export interface LookupResult {
  rcode: number;
  aa: boolean;
  answer: RRset[];
  authority: RRset[];
  additional: RRset[];
  /** Synthesized from a wildcard (RFC 4592): rate limiting counts these per zone, as BIND does. */
  wildcard: boolean;
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
  /**
   * Optional data left out (answer/minimal.ts: NO_AUTHORITY, NO_ADDITIONAL, MINIMAL_ANY), as
   * minimalBits() decides it for the query; 0 adds everything BIND's `minimal-responses no` would.
   */
  minimal: number;
  /** DO was set (RFC 3225): add RRSIGs and denial proofs from signed zones. */
  dnssecOk?: boolean;
  /**
   * The query name in the case it was sent (`qname` is lower case): a CNAME synthesized from a
   * DNAME keeps it in its owner and target, as BIND's does (RFC 6672 §2.2: the owner is QNAME).
   */
  asSent?: Buffer;
}

type Node = Map<number, StoredRRset>;

/** Longest CNAME/DNAME chain followed (BIND stops at 16 too). */
const MAX_CHAIN = 16;
const WILDCARD = Buffer.from([1, 0x2a]);

type Step = { next: Buffer } | undefined;

export function lookup(zones: ZoneFinder, qname: Buffer, qtype: number, opts: LookupOptions): LookupResult {
  const res: LookupResult = {
    rcode: RCODE.NOERROR,
    aa: true,
    answer: [],
    authority: [],
    additional: [],
    wildcard: false,
  };
  const seen = new Set<string>();
  let name = qname;
  let last: ZoneAnswer | undefined;
  let ended = false;
  for (let hop = 0; hop <= MAX_CHAIN; hop++) {
    const zone = zones.find(name);
    if (!zone) {
      last = undefined; // the chain leaves our zones: the resolver continues from here
      ended = true;
      break;
    }
    const key = nameKey(name);
    const id = key.toString('latin1');
    if (seen.has(id)) break; // CNAME loop
    seen.add(id);
    last = new ZoneAnswer(zone, res, qtype, opts);
    const step = last.answer(name, key, hop === 0);
    if (!step) {
      ended = true;
      break;
    }
    name = step.next;
  }
  // A loop, or a chain longer than we follow: SERVFAIL with the records followed, as BIND does.
  if (!ended) {
    res.rcode = RCODE.SERVFAIL;
    return res;
  }
  // A positive answer (authority holds at most a wildcard's denial proof) gets the apex NS
  // (BIND's query_addauth), unless minimal responses leave it out.
  const positive = res.rcode === RCODE.NOERROR && res.answer.length > 0;
  if (
    last &&
    positive &&
    (opts.minimal & NO_AUTHORITY) === 0 &&
    !res.authority.some((s) => s.type === TYPE.SOA || s.type === TYPE.NS)
  ) {
    last.addApexNs();
  }
  return res;
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

/** One zone's part of an answer: the RFC 1034 steps, plus DNSSEC material when asked for. */
class ZoneAnswer {
  private readonly reader: ZoneReader;
  private readonly apexKey: Buffer;
  private apexNode: Node | undefined;
  private readonly dnssec: boolean;
  private nsec3: Nsec3Param | undefined;
  /** Denial records already added (one NSEC may prove two things). */
  private readonly proven = new Set<string>();

  constructor(
    private readonly zone: ZoneView,
    private readonly res: LookupResult,
    private readonly qtype: number,
    private readonly opts: LookupOptions,
  ) {
    this.reader = zone.reader;
    this.apexKey = nameKey(zone.apex);
    this.dnssec = opts.dnssecOk === true && this.apex().has(sigKey(TYPE.SOA));
    const param = this.dnssec ? this.apex().get(TYPE.NSEC3PARAM) : undefined;
    this.nsec3 = param ? parseNsec3Param(param.rdatas[0]) : undefined;
  }

  private apex(): Node {
    this.apexNode ??= this.reader.node(this.apexKey);
    return this.apexNode;
  }

  /** A node, with NSEC3 owner names hidden: they are not names of the zone (RFC 5155 §7.2.8). */
  private node(key: Buffer): Node {
    if (key.length === this.apexKey.length) return this.apex();
    const n = this.reader.node(key);
    if (n.has(TYPE.NSEC3) && [...n.keys()].every((t) => t === TYPE.NSEC3 || t === sigKey(TYPE.NSEC3))) {
      return new Map();
    }
    return n;
  }

  answer(name: Buffer, key: Buffer, first: boolean): Step {
    const steps = boundaries(key, this.apexKey.length);
    let encloser = this.apexKey.length; // closest encloser found so far (key length)

    // Walk from just below the apex towards the name, looking for a zone cut or a DNAME above it.
    for (let i = 0; i < steps.length - 1; i++) {
      const len = steps[i];
      const akey = key.subarray(0, len);
      const node = this.node(akey);
      if (node.size === 0) {
        if (!this.reader.hasChildren(akey)) return this.wildcardOrNxdomain(name, key, encloser);
        encloser = len;
        continue;
      }
      encloser = len;
      if (node.has(TYPE.NS)) return this.referral(ancestorName(name, key, len), node, first);
      const dname = node.get(TYPE.DNAME);
      if (dname) {
        const asked = first && this.opts.asSent ? this.opts.asSent : name;
        return this.synthesizeFromDname(ancestorName(name, key, len), node, dname, asked);
      }
    }

    const node = this.node(key);
    if (node.size > 0) {
      // At a cut the parent answers only its own data there, DS and NSEC (RFC 4035 §3.1.4.1,
      // §2.3); everything else is referred.
      const atCut = node.has(TYPE.NS) && key.length !== this.apexKey.length;
      const parentSide = this.qtype === TYPE.DS || (this.qtype === TYPE.NSEC && node.has(TYPE.NSEC));
      if (atCut && !parentSide) return this.referral(name, node, first);
      return this.answerNode(name, name, node);
    }
    if (key.length === this.apexKey.length || this.reader.hasChildren(key)) {
      // An empty non-terminal exists (RFC 4592 §2.2.2): NODATA, not NXDOMAIN.
      this.addNegative();
      if (this.nsec3) this.nsec3Match(name);
      else this.nsecCover(name);
      return undefined;
    }
    return this.wildcardOrNxdomain(name, key, encloser);
  }

  /** RFC 4592 §3.3.1: the source of synthesis is `*.<closest encloser>`. */
  private wildcardOrNxdomain(name: Buffer, key: Buffer, encloser: number): Step {
    const ce = ancestorName(name, key, encloser);
    const wild = Buffer.concat([WILDCARD, ce]);
    const node = this.node(Buffer.concat([key.subarray(0, encloser), WILDCARD]));
    if (node.size > 0) {
      // Proof that the name itself does not exist (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6).
      if (this.nsec3) this.nsec3Cover(this.nextCloser(name, key, encloser));
      else this.nsecCover(name);
      this.res.wildcard = true;
      return this.answerNode(name, wild, node, { ce, nextCloser: this.nextCloser(name, key, encloser) });
    }
    this.res.rcode = RCODE.NXDOMAIN;
    this.addNegative();
    if (this.nsec3) {
      // Closest encloser proof plus the wildcard (RFC 5155 §7.2.2).
      this.nsec3Match(ce);
      this.nsec3Cover(this.nextCloser(name, key, encloser));
      this.nsec3Cover(wild);
    } else {
      this.nsecCover(name);
      this.nsecCover(wild);
    }
    return undefined;
  }

  private nextCloser(name: Buffer, key: Buffer, encloser: number): Buffer {
    return ancestorName(name, key, encloser + 1 + key[encloser]);
  }

  /**
   * Answers from the RRsets at one node; `owner` is the name asked (wildcards are expanded to it),
   * `source` the node's own name. `wildcard` is set for a synthesized answer.
   */
  private answerNode(
    owner: Buffer,
    source: Buffer,
    node: Node,
    wildcard?: { ce: Buffer; nextCloser: Buffer },
  ): Step {
    const { res, qtype } = this;
    if (qtype === TYPE.ANY) return this.answerAny(owner, node);
    if (qtype === TYPE.RRSIG) {
      // Each RRSIG RRset (one per covered type) keeps its own TTL, that of the RRset it covers
      // (RFC 4034 §3); BIND answers them as separate RRsets.
      let found = false;
      for (const k of bindOrder(node)) {
        if (k < 0x10000) continue;
        res.answer.push(rrset(owner, TYPE.RRSIG, node.get(k)!));
        found = true;
      }
      if (found) return undefined;
    }
    if (node.has(qtype)) {
      this.add(res.answer, owner, qtype, node);
      if ((this.opts.minimal & NO_ADDITIONAL) === 0) this.addAdditional();
      return undefined;
    }
    const cname = node.get(TYPE.CNAME);
    // NSEC and RRSIG live beside a CNAME (RFC 4035 §2.5): asking for them does not follow it.
    if (cname && qtype !== TYPE.CNAME && qtype !== TYPE.NSEC && qtype !== TYPE.RRSIG) {
      this.add(res.answer, owner, TYPE.CNAME, node);
      return { next: readName(cname.rdatas[0], 0).name };
    }
    // NODATA: the SOA, and proof that the type is absent at the (possibly wildcard) name.
    this.addNegative();
    if (this.nsec3) {
      if (wildcard) {
        this.nsec3Match(wildcard.ce);
        this.nsec3Cover(wildcard.nextCloser);
        this.nsec3Match(source);
      } else if (!this.nsec3Match(source)) {
        this.optOutProof(source);
      }
    } else {
      this.nsecAt(source, node);
      if (wildcard) this.nsecCover(owner);
    }
    return undefined;
  }

  /**
   * ANY from authoritative data as BIND 9.18 answers it: every RRset, RRSIGs included whatever
   * DO says, no additional data. With minimalAny (RFC 8482 §4.1, UDP only) one RRset.
   */
  private answerAny(owner: Buffer, node: Node): Step {
    const { res } = this;
    const order = bindOrder(node);
    if ((this.opts.minimal & MINIMAL_ANY) === 0) {
      for (const k of order) res.answer.push(rrset(owner, k < 0x10000 ? k : TYPE.RRSIG, node.get(k)!));
      return undefined;
    }
    // As BIND's minimal-any: the first RRset of the node's list (an RRSIG counts as the type it
    // covers, and is skipped without DO), with the RRSIGs of that type.
    let one: number | undefined;
    for (const k of order) {
      const sig = k >= 0x10000;
      if (sig && !this.opts.dnssecOk) continue;
      one ??= sig ? k - 0x10000 : k;
      if ((sig ? k - 0x10000 : k) === one) res.answer.push(rrset(owner, sig ? TYPE.RRSIG : k, node.get(k)!));
    }
    return undefined;
  }

  private referral(cut: Buffer, node: Node, first: boolean): Step {
    if (first) this.res.aa = false;
    this.add(this.res.authority, cut, TYPE.NS, node);
    if (this.dnssec) {
      // A signed delegation carries its DS; an unsigned one the proof that there is none.
      if (node.has(TYPE.DS)) this.add(this.res.authority, cut, TYPE.DS, node);
      else if (this.nsec3) {
        if (!this.nsec3Match(cut)) this.optOutProof(cut);
      } else this.nsecAt(cut, node);
    }
    this.addAdditional(true);
    return undefined;
  }

  /** RFC 6672 §2.2: answer the DNAME and a CNAME from the name to its substitute. */
  private synthesizeFromDname(owner: Buffer, node: Node, dname: StoredRRset, name: Buffer): Step {
    this.add(this.res.answer, owner, TYPE.DNAME, node);
    const target = readName(dname.rdatas[0], 0).name;
    const prefix = labels(name).slice(0, labels(name).length - labels(owner).length);
    const next = fromLabels([...prefix, ...labels(target)]);
    if (next.length > 255) {
      this.res.rcode = RCODE.YXDOMAIN;
      return undefined;
    }
    this.res.answer.push({ owner: name, type: TYPE.CNAME, ttl: dname.ttl, rdatas: [next] });
    // A CNAME (or ANY) question is answered by the synthesized CNAME itself.
    return this.qtype === TYPE.CNAME || this.qtype === TYPE.ANY ? undefined : { next };
  }

  /** An RRset, followed by its RRSIGs when DNSSEC records were asked for. */
  private add(section: RRset[], owner: Buffer, type: number, node: Node, ttl?: number): void {
    const set = node.get(type)!;
    section.push({ owner, type, ttl: ttl ?? set.ttl, rdatas: set.rdatas });
    const sigs = this.dnssec ? node.get(sigKey(type)) : undefined;
    if (sigs) section.push({ owner, type: TYPE.RRSIG, ttl: ttl ?? sigs.ttl, rdatas: sigs.rdatas });
  }

  /** NXDOMAIN/NODATA: the zone SOA in authority with TTL min(SOA TTL, MINIMUM) (RFC 2308 §3). */
  private addNegative(): void {
    const soa = this.apex().get(TYPE.SOA);
    if (!soa) return;
    // BIND gives the SOA TTL 0 in an NXDOMAIN for an SOA question, so that SOA is not cached and
    // then served as the answer to SOA queries for the zone.
    const zero = this.qtype === TYPE.SOA && this.res.rcode === RCODE.NXDOMAIN;
    const ttl = zero ? 0 : Math.min(soa.ttl, parseSoa(soa.rdatas[0]).minimum);
    // First in authority, ahead of any proof already added (a wildcard's), as BIND orders it.
    const sets: RRset[] = [{ owner: this.zone.apex, type: TYPE.SOA, ttl, rdatas: soa.rdatas.slice(0, 1) }];
    const sigs = this.dnssec ? this.apex().get(sigKey(TYPE.SOA)) : undefined;
    if (sigs) sets.push({ owner: this.zone.apex, type: TYPE.RRSIG, ttl, rdatas: sigs.rdatas });
    this.res.authority.unshift(...sets);
  }

  /**
   * The zone's NS in the authority section of a positive answer, ahead of any wildcard proof,
   * unless the answer already holds that RRset; with their addresses unless minimal responses
   * (or ANY, whose answers BIND gives no additional data) leave them out.
   */
  addApexNs(): void {
    const apexLen = this.zone.apex.length;
    if (this.res.answer.some((s) => s.type === TYPE.NS && s.owner.length === apexLen)) return;
    if (!this.apex().has(TYPE.NS)) return;
    const proof = this.res.authority.splice(0);
    this.add(this.res.authority, this.zone.apex, TYPE.NS, this.apex());
    this.res.authority.push(...proof);
    if ((this.opts.minimal & NO_ADDITIONAL) === 0 && this.qtype !== TYPE.ANY) this.addAdditional();
  }

  /** RFC 1034 §4.3.2 step 6: addresses of NS, MX and SRV targets we hold, each once. */
  private addAdditional(glue = false): void {
    const { res } = this;
    const targets: Buffer[] = [];
    for (const set of [...res.answer, ...res.authority]) {
      const at = set.type === TYPE.NS ? 0 : set.type === TYPE.MX ? 2 : set.type === TYPE.SRV ? 6 : -1;
      if (at < 0) continue;
      for (const r of set.rdatas) targets.push(readName(r, at).name);
    }
    // An RRset already in the message is not repeated (BIND checks every section).
    const done = new Set(
      [...res.answer, ...res.additional].map((s) => `${nameKey(s.owner).toString('latin1')}/${s.type}`),
    );
    for (const t of targets) {
      const key = nameKey(t);
      if (!key.subarray(0, this.apexKey.length).equals(this.apexKey)) continue;
      const node = this.reader.node(key);
      for (const type of [TYPE.A, TYPE.AAAA]) {
        const id = `${key.toString('latin1')}/${type}`;
        if (!node.has(type) || done.has(id)) continue;
        done.add(id);
        // Glue below a cut is not signed; authoritative addresses come with their RRSIGs.
        if (glue) res.additional.push(rrset(t, type, node.get(type)!));
        else this.add(res.additional, t, type, node);
      }
    }
  }

  // --- NSEC (RFC 4035 §3.1.3) -------------------------------------------------------------

  /** The NSEC at a name that exists (NODATA, insecure referral). */
  private nsecAt(name: Buffer, node: Node): void {
    if (!this.dnssec || !node.has(TYPE.NSEC)) return;
    this.addProof(nameKey(name), name, TYPE.NSEC, node);
  }

  /** The NSEC whose span covers (or matches) `name` in canonical order. */
  private nsecCover(name: Buffer): void {
    if (!this.dnssec) return;
    const owner = this.reader.nsecOwner(canonicalKey(nameKey(name)));
    if (!owner) return;
    this.addProof(owner, keyToName(owner), TYPE.NSEC, this.reader.node(owner));
  }

  // --- NSEC3 (RFC 5155 §7.2) --------------------------------------------------------------

  private hashKey(name: Buffer): Buffer {
    const label = Buffer.from(nsec3Hash(name, this.nsec3!), 'latin1');
    return Buffer.concat([this.apexKey, Buffer.from([label.length]), label]);
  }

  /** The NSEC3 matching `name`; false when there is none (opt-out span). */
  private nsec3Match(name: Buffer): boolean {
    if (!this.dnssec || !this.nsec3) return false;
    const key = this.hashKey(name);
    const node = this.reader.node(key);
    if (!node.has(TYPE.NSEC3)) return false;
    this.addProof(key, keyToName(key), TYPE.NSEC3, node);
    return true;
  }

  /** The NSEC3 whose hash span covers `name`'s hash. */
  private nsec3Cover(name: Buffer): void {
    if (!this.dnssec || !this.nsec3) return;
    const owner = this.reader.nsec3Owner(this.hashKey(name));
    if (owner) this.addProof(owner, keyToName(owner), TYPE.NSEC3, this.reader.node(owner));
  }

  /**
   * No NSEC3 matches `name` (it sits in an opt-out span): the closest provable encloser proof,
   * its matching NSEC3 and the covering NSEC3 of the next closer name (RFC 5155 §7.2.3, §7.2.7).
   */
  private optOutProof(name: Buffer): void {
    const ls = labels(name).length;
    for (let strip = 1; strip <= ls; strip++) {
      const ancestor = stripLabels(name, strip);
      if (this.nsec3Match(ancestor)) {
        this.nsec3Cover(stripLabels(name, strip - 1));
        return;
      }
      if (ancestor.length <= this.zone.apex.length) return;
    }
  }

  private addProof(key: Buffer, owner: Buffer, type: number, node: Node): void {
    const id = `${key.toString('latin1')}/${type}`;
    if (this.proven.has(id) || !node.has(type)) return;
    this.proven.add(id);
    this.add(this.res.authority, owner, type, node);
  }
}

/**
 * Types BIND 9.18's zone database keeps at the head of a node's list (lib/dns/rbtdb.c,
 * prio_type), with their RRSIGs.
 */
const PRIO_TYPES = new Set<number>([
  TYPE.SOA,
  TYPE.A,
  TYPE.MX,
  TYPE.AAAA,
  TYPE.NSEC,
  TYPE.NSEC3,
  TYPE.NS,
  TYPE.DS,
  TYPE.CNAME,
  TYPE.DNAME,
  TYPE.SVCB,
  TYPE.HTTPS,
  TYPE.DNSKEY,
  TYPE.SRV,
  TYPE.TXT,
  TYPE.PTR,
  TYPE.NAPTR,
]);

/**
 * A node's RRset keys in the order a BIND 9.18 secondary lists them (for ANY and RRSIG answers,
 * whose order decides name compression and what fits a truncated reply): its database puts each
 * new type first (priority types) or after the priority types (the rest), so the list is the
 * arrival order reversed, priority types ahead; the apex SOA arrives last in a transfer (the
 * closing SOA commits it). Stored order is arrival order (the transfer's).
 */
function bindOrder(node: Node): number[] {
  const keys = [...node.keys()];
  const soa = keys.indexOf(TYPE.SOA);
  if (soa >= 0) keys.push(...keys.splice(soa, 1));
  const prio = (k: number) => PRIO_TYPES.has(k < 0x10000 ? k : k - 0x10000);
  return [...keys.filter(prio).reverse(), ...keys.filter((k) => !prio(k)).reverse()];
}

function rrset(owner: Buffer, type: number, set: StoredRRset): RRset {
  return { owner, type, ttl: set.ttl, rdatas: set.rdatas };
}
