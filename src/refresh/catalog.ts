/**
 * Catalog zones (RFC 9432): reading a catalog's records into its member list, comparing two
 * member lists, and writing the records of a catalog we produce. Pure: no I/O, no clock.
 *
 * A catalog, relative to its apex $CATZ (RFC 9432 §4):
 *   version.$CATZ              TXT "2"            schema version; anything else: not processed (§4.1)
 *   <unique>.zones.$CATZ       PTR member.zone.   one member per unique label (§4.2)
 *   group.<unique>.zones.$CATZ TXT "name" …       member properties (§4.4.2)
 *   coo.<unique>.zones.$CATZ   PTR new.catalog.   change of ownership (§4.4.1)
 * Everything else (the apex SOA and NS, `ext.` properties) is ignored (§3: "MUST ignore").
 */
import { createHash } from 'node:crypto';
import { domainNameProblem } from '../config.js';
import { fromLabels, labels, nameToText, textToName } from '../dns/name.js';
import { TYPE } from '../dns/types.js';
import type { ZoneRR } from '../store/zone-store.js';

/** The one schema version this implementation processes (RFC 9432 §4.1). */
export const CATALOG_VERSION = '2';

export interface CatalogMember {
  /** Lower case, no trailing dot. */
  readonly zone: string;
  /** The member node's unique label (RFC 9432 §4.2), lower case: a change means "reset" (§5.4). */
  readonly id: string;
  /** The `group` property's values (§4.4.2), in the order given. */
  readonly groups: readonly string[];
  /** The `coo` property (§4.4.1): the catalog this member is migrating to. */
  readonly coo?: string;
}

export type CatalogParse =
  | { ok: true; members: ReadonlyMap<string, CatalogMember> }
  | { ok: false; error: string };

const lower = (b: Buffer) => b.toString('latin1').toLowerCase();

/** TXT rdata → its character-strings (RFC 1035 §3.3.14). */
function txtStrings(rdata: Buffer): string[] {
  const out: string[] = [];
  for (let p = 0; p < rdata.length; ) {
    const n = rdata[p];
    out.push(rdata.subarray(p + 1, p + 1 + n).toString('latin1'));
    p += 1 + n;
  }
  return out;
}

/** The text form (lower case, no trailing dot) of an uncompressed rdata name. */
function rdataName(rdata: Buffer): string {
  return nameToText(rdata, false).toLowerCase();
}

/**
 * Reads a catalog's member list from every RR of one version of the catalog zone. A catalog that
 * cannot be processed as a whole (no or another version, a member node with more than one PTR,
 * one zone listed twice, a member name outside the syntax ns2 accepts for zones) is refused: the
 * caller keeps the member list it had.
 */
export function parseCatalog(catalog: string, rrs: Iterable<ZoneRR>): CatalogParse {
  const apex = labels(textToName(catalog)).map(lower);
  const versions: string[] = [];
  const ptrs = new Map<string, string[]>();
  const groups = new Map<string, string[]>();
  const coos = new Map<string, string[]>();
  for (const rr of rrs) {
    const ls = labels(rr.owner).map(lower);
    if (ls.length <= apex.length) continue;
    const rel = ls.slice(0, ls.length - apex.length);
    if (ls.slice(rel.length).join('.') !== apex.join('.')) continue;
    if (rel.length === 1 && rel[0] === 'version' && rr.type === TYPE.TXT) {
      versions.push(txtStrings(rr.rdata).join(''));
    } else if (rel.length === 2 && rel[1] === 'zones' && rr.type === TYPE.PTR) {
      push(ptrs, rel[0], rdataName(rr.rdata));
    } else if (rel.length === 3 && rel[2] === 'zones' && rel[0] === 'group' && rr.type === TYPE.TXT) {
      groups.set(rel[1], [...(groups.get(rel[1]) ?? []), ...txtStrings(rr.rdata)]);
    } else if (rel.length === 3 && rel[2] === 'zones' && rel[0] === 'coo' && rr.type === TYPE.PTR) {
      push(coos, rel[1], rdataName(rr.rdata));
    }
  }
  if (versions.length === 0) return { ok: false, error: 'no version property (version TXT "2")' };
  if (versions.length > 1) return { ok: false, error: `${versions.length} version properties` };
  if (versions[0] !== CATALOG_VERSION)
    return { ok: false, error: `unsupported catalog schema version "${versions[0]}" (only "2")` };

  const members = new Map<string, CatalogMember>();
  for (const [id, targets] of [...ptrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    // §4.2: exactly one PTR at a member node.
    if (targets.length > 1)
      return { ok: false, error: `member node ${id}.zones has ${targets.length} PTR records` };
    const zone = targets[0];
    const bad = domainNameProblem(zone);
    if (bad) return { ok: false, error: `member ${JSON.stringify(zone)} (${id}.zones): ${bad}` };
    if (zone === catalog) return { ok: false, error: `member ${id}.zones is the catalog itself` };
    const first = members.get(zone);
    if (first) return { ok: false, error: `zone ${zone} listed twice (${first.id}.zones and ${id}.zones)` };
    const coo = coos.get(id);
    if (coo && coo.length > 1)
      return { ok: false, error: `member ${id}.zones has ${coo.length} coo properties` };
    members.set(zone, { zone, id, groups: groups.get(id) ?? [], ...(coo ? { coo: coo[0] } : {}) });
  }
  return { ok: true, members };
}

function push(m: Map<string, string[]>, k: string, v: string): void {
  const xs = m.get(k);
  if (xs) xs.push(v);
  else m.set(k, [v]);
}

export interface MemberChanges {
  /** Members new to the catalog. */
  readonly added: readonly CatalogMember[];
  /** Zones no longer listed. */
  readonly removed: readonly string[];
  /** Listed with another unique label: drop the zone's data and transfer it anew (RFC 9432 §5.4). */
  readonly reset: readonly CatalogMember[];
  /** Same zone and label, other properties (group, coo): reconfigure, keep the data. */
  readonly changed: readonly CatalogMember[];
}

/** What turns member list `before` into `after`. */
export function diffMembers(
  before: ReadonlyMap<string, CatalogMember>,
  after: ReadonlyMap<string, CatalogMember>,
): MemberChanges {
  const added: CatalogMember[] = [];
  const reset: CatalogMember[] = [];
  const changed: CatalogMember[] = [];
  const removed: string[] = [];
  for (const [zone, m] of after) {
    const old = before.get(zone);
    if (!old) added.push(m);
    else if (old.id !== m.id) reset.push(m);
    else if (old.coo !== m.coo || old.groups.join('\0') !== m.groups.join('\0')) changed.push(m);
  }
  for (const zone of before.keys()) if (!after.has(zone)) removed.push(zone);
  return { added, removed, reset, changed };
}

/**
 * The unique label a produced catalog gives a member: stable for a zone name, so a member keeps
 * its label across restarts and the consumers never see a spurious reset (RFC 9432 §5.4).
 */
export function memberLabel(zone: string): string {
  return createHash('sha1').update(zone).digest('hex').slice(0, 16);
}

/**
 * The records of a catalog listing `members` (RFC 9432 §4): SOA, the apex NS "invalid." that
 * §4 asks for, the version, and one PTR per member. Owners and targets in wire form.
 */
export function catalogRecords(catalog: string, serial: number, members: Iterable<string>): ZoneRR[] {
  const apex = textToName(catalog);
  const at = (...rel: string[]) => fromLabels([...rel.map((l) => Buffer.from(l, 'latin1')), ...labels(apex)]);
  const invalid = textToName('invalid');
  const soa = Buffer.alloc(20);
  soa.writeUInt32BE(serial >>> 0, 0);
  soa.writeUInt32BE(3600, 4); // refresh: consumers are NOTIFYed on change anyway
  soa.writeUInt32BE(600, 8); // retry
  soa.writeUInt32BE(2_419_200, 12); // expire: 4 weeks, a catalog outliving a long outage
  soa.writeUInt32BE(0, 16); // minimum: nothing to cache negatively
  const rrs: ZoneRR[] = [
    { owner: apex, type: TYPE.SOA, ttl: 0, rdata: Buffer.concat([invalid, invalid, soa]) },
    { owner: apex, type: TYPE.NS, ttl: 0, rdata: invalid },
    { owner: at('version'), type: TYPE.TXT, ttl: 0, rdata: Buffer.from([1, 0x32]) },
  ];
  for (const zone of members)
    rrs.push({ owner: at(memberLabel(zone), 'zones'), type: TYPE.PTR, ttl: 0, rdata: textToName(zone) });
  return rrs;
}
