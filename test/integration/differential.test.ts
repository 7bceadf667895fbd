/**
 * Differential test against a real BIND primary: the same zones — plain, NSEC-signed and
 * NSEC3-signed, with delegations (signed and not), wildcards, CNAME chains, DNAME and empty
 * non-terminals — are served by named and by ns2 (after transferring them), and thousands of
 * queries must get the same rcode, AA, TC, answer and authority (and additional for referrals),
 * compared as sets of RRs byte for byte, with DO on and off, over UDP and TCP.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FLAG_AA, parseMessage } from '../../src/dns/message.js';
import { TYPE, textToType } from '../../src/dns/types.js';
import { additional, query, summarize } from '../harness/client.js';
import { type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { signZone } from '../harness/sign.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');

/** The body of a zone exercising every branch of the lookup; `origin` makes it any zone. */
const body = (origin: string) => `$ORIGIN ${origin}.
$TTL 3600
@         SOA   ns1 hostmaster 2024060101 3600 600 86400 300
          NS    ns1
          NS    ns2.example.net.
          MX    10 mail
          TXT   "apex text"
ns1       A     192.0.2.53
          AAAA  2001:db8::53
mail      A     192.0.2.25
www       A     192.0.2.80
          AAAA  2001:db8::80
alias     CNAME www
chain1    CNAME chain2
chain2    CNAME alias
outside   CNAME www.example.net.
dangling  CNAME missing
*.wild    A     192.0.2.100
          TXT   "wildcard"
*.cw      CNAME www
exists.wild TXT "not from the wildcard"
a.b.ent   A     192.0.2.99
deep.a.b.ent TXT "deep"
sub       NS    ns.sub
ns.sub    A     192.0.2.153
secure    NS    ns.secure
          DS    12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.secure A     192.0.2.154
redirect  DNAME example.net.
_sip._tcp SRV   10 60 5060 www
zz        TXT   "last name"
`;

const KEYS = [
  ['-a', 'ECDSAP256SHA256', '-f', 'KSK'],
  ['-a', 'ECDSAP256SHA256'],
];

let named: Named;
let ns2: Ns2;
let tmp: string;
const ZONES = ['example.test', 'nsec.test', 'nsec3.test'];
let names: string[] = [];

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-diff-'));
  const nsec = await signZone(tmp, 'nsec.test', body('nsec.test'), KEYS, []);
  const nsec3 = await signZone(tmp, 'nsec3.test', body('nsec3.test'), KEYS, ['-3', 'aabbccdd', '-H', '1']);
  named = await startNamed({
    zones: [
      {
        name: 'example.test',
        text: fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8'),
        dynamic: false,
      },
      { name: 'nsec.test', text: nsec, dynamic: false },
      { name: 'nsec3.test', text: nsec3, dynamic: false },
    ],
    // named re-signs nothing here: the zones are served exactly as signed.
    extraOptions: 'minimal-any no;',
  });
  ns2 = await startNs2({
    zones: ZONES.map((name) => ({ name, primaries: [{ address: '127.0.0.1', port: named.port }] })),
  });
  for (const z of ZONES) {
    await waitFor(
      `${z} loaded`,
      async () => summarize(await query(ns2.port, z, TYPE.SOA)).answer.length === 1,
    );
  }
  for (const z of ZONES) {
    const out = await named.dig(['AXFR', z, '+noall', '+answer']);
    for (const line of out.split('\n')) if (line && !line.startsWith(';')) names.push(line.split(/\s+/)[0]);
  }
  names = [...new Set(names)];
});

after(async () => {
  await ns2?.stop();
  await named?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const TYPES = ['A', 'AAAA', 'MX', 'TXT', 'NS', 'SOA', 'DS', 'CNAME', 'NSEC', 'DNSKEY', 'SRV', 'ANY'].map(
  (t) => textToType(t)!,
);

/** Questions: every name × common types, names that do not exist, names under cuts and wildcards. */
function questions(): { name: string; type: number }[] {
  const out: { name: string; type: number }[] = [];
  const extra: string[] = [];
  for (const z of ZONES) {
    for (const n of [
      'nx',
      'nx.deep',
      'a.nx.deeper',
      'x.wild',
      'y.x.wild',
      'host.sub',
      'a.host.sub',
      'host.secure',
    ]) {
      extra.push(`${n}.${z}.`);
    }
    for (const n of [
      'b.ent',
      'ent',
      'nx.b.ent',
      'x.cw',
      'x.redirect',
      'a.b.redirect',
      'aaa',
      'zzz',
      'WwW',
      'Mail',
    ]) {
      extra.push(`${n}.${z}.`);
    }
  }
  for (const name of [...names, ...extra]) for (const type of TYPES) out.push({ name, type });
  return out;
}

interface Compared {
  rcode: number;
  aa: boolean;
  tc: boolean;
  answer: string[];
  authority: string[];
  additional?: string[];
}

function compared(reply: Buffer): Compared {
  const s: Compared = summarize(reply);
  const m = parseMessage(reply);
  // Referrals (no AA, NS in authority): the glue must match too.
  if (!(m.header.flags & FLAG_AA) && m.authority.some((r) => r.type === TYPE.NS))
    s.additional = additional(reply);
  return s;
}

describe('differential: ns2 answers exactly as named', () => {
  for (const tcp of [false, true]) {
    it(`every question with DO on and off over ${tcp ? 'TCP' : 'UDP'}`, async () => {
      const qs = questions();
      const diffs: string[] = [];
      let compares = 0;
      // named queues few TCP connections at once (tcp-listen-queue): keep TCP batches small.
      const batch = tcp ? 4 : 32;
      for (let i = 0; i < qs.length; i += batch) {
        await Promise.all(
          qs.slice(i, i + batch).flatMap((q) =>
            [false, true].map(async (dnssecOk) => {
              const opts = { tcp, dnssecOk, edns: 4096 };
              const [ours, theirs] = await Promise.all([
                query(ns2.port, q.name, q.type, opts).then(compared),
                query(named.port, q.name, q.type, opts).then(compared),
              ]);
              compares++;
              try {
                assert.deepEqual(ours, theirs);
              } catch {
                diffs.push(
                  `${q.name} ${q.type} DO=${dnssecOk}\n  ns2:   ${JSON.stringify(ours)}\n  named: ${JSON.stringify(theirs)}`,
                );
              }
            }),
          ),
        );
      }
      assert.ok(compares >= 2000, `only ${compares} queries compared`);
      const heads = diffs.map((d) => d.split('\n')[0]);
      assert.equal(
        diffs.length,
        0,
        `${diffs.length} of ${compares} answers differ:\n${diffs.slice(0, 10).join('\n')}\nall: ${heads.join(', ')}`,
      );
    });
  }
});
