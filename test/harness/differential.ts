/**
 * The differential set-up shared by test/integration/differential.test.ts (a deterministic slice)
 * and `npm run test:differential:full` (everything): one BIND primary serves a plain, an
 * NSEC-signed and an NSEC3-signed zone; a BIND 9.18 secondary with default answer options and
 * ns2 both transfer them from it; then each question is asked of both secondaries in every
 * variant (UDP without EDNS, UDP with EDNS 512/1232/4096, TCP; DO on and off; RD on and off) and
 * the replies are compared whole (test/harness/oracle.ts: flags, question, every section, OPT,
 * size), decoded by dns-packet.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TYPE, textToType } from '../../src/dns/types.js';
import { buildQuery, exchange, type QueryOpts } from './client.js';
import { type Named, startNamed } from './named.js';
import { type Ns2, startNs2, waitFor } from './ns2.js';
import { differences, type Shape, shapeOf } from './oracle.js';
import { prng } from './prng.js';
import { type BindSecondary, startBindSecondary } from './reference-secondary.js';
import { signZone } from './sign.js';

const LONG = 'x'.repeat(200);

/** A zone exercising every branch of the lookup and of the response builder; `origin` makes it any zone. */
export const zoneBody = (origin: string) => `$ORIGIN ${origin}.
$TTL 3600
@         SOA   ns1 hostmaster 2024060101 3600 600 86400 300
          NS    ns1
          NS    ns2.example.net.
          MX    10 mail
          MX    20 mail2
          TXT   "apex text"
ns1       A     192.0.2.53
          AAAA  2001:db8::53
mail      A     192.0.2.25
mail2     300 A 192.0.2.26
          AAAA  2001:db8::26
www       A     192.0.2.80
          AAAA  2001:db8::80
          TXT   "www"
alias     CNAME www
chain1    CNAME chain2
chain2    CNAME alias
outside   CNAME www.example.net.
dangling  CNAME missing
*.wild    A     192.0.2.100
          TXT   "wildcard"
          MX    10 mail
*.cw      CNAME www
exists.wild TXT "not from the wildcard"
*.ent2.deep A   192.0.2.101
a.b.ent   A     192.0.2.99
deep.a.b.ent TXT "deep"
sub       NS    ns.sub
          NS    ns.example.net.
ns.sub    A     192.0.2.153
          AAAA  2001:db8::153
secure    NS    ns.secure
          DS    12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.secure A     192.0.2.154
redirect  DNAME example.net.
inzone    DNAME www
_sip._tcp SRV   10 60 5060 www
          SRV   20 60 5060 mail
big       TXT   "${LONG}" "1"
          TXT   "${LONG}" "2"
          TXT   "${LONG}" "3"
          TXT   "${LONG}" "4"
          TXT   "${LONG}" "5"
          TXT   "${LONG}" "6"
          A     192.0.2.7
many      ${Array.from({ length: 40 }, (_, i) => `A 10.0.0.${i + 1}`).join('\n          ')}
mx5       ${Array.from({ length: 5 }, (_, i) => `MX ${i} m${i}`).join('\n          ')}
${Array.from({ length: 5 }, (_, i) => `m${i} A 192.0.2.${200 + i}\nm${i} AAAA 2001:db8::${200 + i}`).join('\n')}
zz        TXT   "last name"
`;

const KEYS = [
  ['-a', 'ECDSAP256SHA256', '-f', 'KSK'],
  ['-a', 'ECDSAP256SHA256'],
];

export const ZONES = ['plain.test', 'nsec.test', 'nsec3.test'];

export const TYPES = [
  'A',
  'AAAA',
  'MX',
  'TXT',
  'NS',
  'SOA',
  'DS',
  'CNAME',
  'DNAME',
  'NSEC',
  'NSEC3',
  'RRSIG',
  'DNSKEY',
  'SRV',
  'ANY',
  'TYPE65400',
].map((t) => textToType(t)!);

export interface Variant {
  name: string;
  opts: QueryOpts;
}

/** Every way a question is asked: transport × EDNS size × DO × RD. */
export function variants(): Variant[] {
  const out: Variant[] = [];
  for (const rd of [false, true]) {
    out.push({ name: `udp noedns rd=${+rd}`, opts: { rd } });
    out.push({ name: `tcp noedns rd=${+rd}`, opts: { rd, tcp: true } });
    for (const dnssecOk of [false, true]) {
      for (const edns of [512, 1232, 4096])
        out.push({ name: `udp ${edns} do=${+dnssecOk} rd=${+rd}`, opts: { rd, edns, dnssecOk } });
      out.push({ name: `tcp 4096 do=${+dnssecOk} rd=${+rd}`, opts: { rd, edns: 4096, dnssecOk, tcp: true } });
    }
  }
  // AD in the query (dig and kdig set it by default) changes the AD bit BIND sends.
  out.push({ name: 'udp noedns ad=1 rd=1', opts: { rd: true, ad: true } });
  out.push({ name: 'udp 1232 do=0 ad=1 rd=0', opts: { edns: 1232, ad: true } });
  return out;
}

export interface Setup {
  primary: Named;
  bind: BindSecondary;
  ns2: Ns2;
  /** Owner names of the zones (from AXFR of the primary), lower case, with trailing dot. */
  names: string[];
  stop(): Promise<void>;
}

export interface SetupOptions {
  /** Zone names to serve, each with zoneBody (plain, nsec…, nsec3… by name). */
  zones?: string[];
  /** BIND secondary `options { }` statements. */
  bindOptions?: string;
  /** ns2 zone keys added to each zone (e.g. minimalResponses). */
  ns2Zone?: Record<string, unknown>;
}

export async function setup(o: SetupOptions = {}): Promise<Setup> {
  const zones = o.zones ?? ZONES;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-diff-'));
  const texts = await Promise.all(
    zones.map((z) =>
      z.startsWith('nsec3')
        ? signZone(tmp, z, zoneBody(z), KEYS, ['-3', 'aabbccdd', '-H', '1'])
        : z.startsWith('nsec')
          ? signZone(tmp, z, zoneBody(z), KEYS, [])
          : Promise.resolve(zoneBody(z)),
    ),
  );
  const primary = await startNamed({
    zones: zones.map((name, i) => ({ name, text: texts[i], dynamic: false })),
  });
  const bind = await startBindSecondary({ zones, primaryPort: primary.port, options: o.bindOptions });
  const ns2 = await startNs2({
    zones: zones.map((name) => ({
      name,
      primaries: [{ address: '127.0.0.1', port: primary.port }],
      ...o.ns2Zone,
    })),
  });
  for (const z of zones) {
    await waitFor(`${z} loaded`, async () => {
      const r = await exchange(ns2.port, buildQuery(z, TYPE.SOA), { timeoutMs: 500 }).catch(() => undefined);
      return r !== undefined && r.readUInt16BE(6) === 1;
    });
  }
  const names = new Set<string>();
  for (const z of zones) {
    const out = await primary.dig(['AXFR', z, '+noall', '+answer']);
    for (const line of out.split('\n')) if (line && !line.startsWith(';')) names.add(line.split(/\s+/)[0]);
  }
  return {
    primary,
    bind,
    ns2,
    names: [...names].sort(),
    async stop() {
      await ns2.stop();
      await bind.stop();
      await primary.stop();
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

export { prng };

/**
 * Query names: every owner, names that do not exist beside and below each owner (random labels,
 * seeded), names below wildcards, cuts, DNAMEs and empty non-terminals, and mixed case.
 */
export function queryNames(names: string[], zones: string[], seed = 1): string[] {
  const rnd = prng(seed);
  const label = () => `r${Math.floor(rnd() * 1e6).toString(36)}`;
  const out = new Set<string>(names);
  for (const n of names) {
    // NSEC3 owners are hashes: a name below one is just another NXDOMAIN.
    if (/^[0-9a-v]{32}\./i.test(n)) continue;
    out.add(`${label()}.${n}`);
    out.add(`${label()}.${label()}.${n}`);
  }
  for (const z of zones) {
    for (const n of [
      'b.ent',
      'ent',
      'ent2.deep',
      'deep',
      'x.ent2.deep',
      'WwW',
      'Mail',
      'A.B.Redirect',
      'x.inzone',
    ])
      out.add(`${n}.${z}.`);
  }
  return [...out];
}

export interface Question {
  name: string;
  type: number;
  variant: Variant;
}

export function allQuestions(qnames: string[], types = TYPES, vs = variants()): Question[] {
  const out: Question[] = [];
  for (const name of qnames)
    for (const type of types) for (const variant of vs) out.push({ name, type, variant });
  return out;
}

export interface Difference {
  q: Question;
  parts: string[];
  ns2: Shape;
  bind: Shape;
}

export interface Outcome {
  compared: number;
  diffs: Difference[];
}

/** The two servers a question goes to. */
export interface Pair {
  ns2: { port: number };
  bind: { port: number } | ((q: Question) => number);
}

/** Asks every question of both servers (UDP `udpBatch` at once, TCP fewer) and compares. */
export async function compareAll(s: Pair, qs: Question[], udpBatch = 48): Promise<Outcome> {
  const diffs: Difference[] = [];
  let compared = 0;
  const udp = qs.filter((q) => !q.variant.opts.tcp);
  const tcp = qs.filter((q) => q.variant.opts.tcp);
  const one = async (q: Question) => {
    const msg = buildQuery(q.name, q.type, q.variant.opts);
    const ask = (port: number) => exchange(port, msg, { ...q.variant.opts, timeoutMs: 5000 }).then(shapeOf);
    const ref = typeof s.bind === 'function' ? s.bind(q) : s.bind.port;
    const [ours, theirs] = await Promise.all([ask(s.ns2.port), ask(ref)]);
    compared++;
    const parts = differences(ours, theirs, q.name);
    if (parts.length > 0) diffs.push({ q, parts, ns2: ours, bind: theirs });
  };
  for (const [list, batch] of [
    [udp, udpBatch],
    [tcp, 8],
  ] as const) {
    for (let i = 0; i < list.length; i += batch) await Promise.all(list.slice(i, i + batch).map(one));
  }
  return { compared, diffs };
}

export function describeDiff(d: Difference): string {
  const lines = [`${d.q.name} ${d.q.type} [${d.q.variant.name}] differs in ${d.parts.join(', ')}`];
  for (const p of d.parts) {
    lines.push(`  ns2 ${p}:  ${JSON.stringify(d.ns2[p as keyof Shape])}`);
    lines.push(`  bind ${p}: ${JSON.stringify(d.bind[p as keyof Shape])}`);
  }
  return lines.join('\n');
}
