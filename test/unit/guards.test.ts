import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nameKey, nameToText } from '../../src/dns/name.js';
import Database from '../../src/store/sqlite.js';
import { sigKey, type ZoneRR } from '../../src/store/zone-store.js';
import {
  checkDiffs,
  checkNode,
  checkNodeRows,
  checkOwners,
  checkZone,
  countsOf,
  deleteProblem,
  deleteShare,
  diffRemovals,
  type NodeRow,
  type NodeView,
  rrsetKey,
  SIG_BASE,
  touchedOwners,
} from '../../src/xfrin/guards.js';
import { a, exampleZone, n, rr, soa, txt } from '../harness/records.js';

const APEX = n('example.test');
const LIMITS = { maxRecordsPerType: 3, maxTypesPerName: 4 };
const BIG = { maxRecordsPerType: 100, maxTypesPerName: 100 };

/** An RRSIG rdata covering `type` (only the covered field matters to the guards). */
function rrsig(covered: number, tag = 1): Buffer {
  const b = Buffer.alloc(18 + 1 + 2);
  b.writeUInt16BE(covered, 0);
  b.writeUInt16BE(tag, 16);
  return b;
}

const base = () => [
  rr('example.test', 'SOA', 3600, soa('ns1.example.test', 'h.example.test', 1)),
  rr('example.test', 'NS', 3600, n('ns1.example.test')),
  rr('ns1.example.test', 'A', 3600, a('192.0.2.53')),
];

describe('commit guards: checkNode', () => {
  const counts = (entries: [number, number][]) => new Map(entries);

  it('accepts an ordinary node and a proper apex', () => {
    assert.equal(checkNode('www.', counts([[1, 2]]), LIMITS, false), undefined);
    assert.equal(
      checkNode(
        'example.test.',
        counts([
          [6, 1],
          [2, 2],
        ]),
        LIMITS,
        true,
      ),
      undefined,
    );
  });

  const bad: [string, Map<number, number>, boolean, RegExp][] = [
    [
      'too many RRs in one RRset',
      counts([[1, 4]]),
      false,
      /^x\. A has 4 records, more than maxRecordsPerType \(3\)$/,
    ],
    [
      'too many types',
      counts([
        [1, 1],
        [16, 1],
        [15, 1],
        [28, 1],
        [99, 1],
      ]),
      false,
      /5 RR types, more than maxTypesPerName \(4\)/,
    ],
    [
      'RRSIGs count per covered type',
      counts([
        [1, 1],
        [16, 1],
        [SIG_BASE + 1, 1],
        [SIG_BASE + 16, 1],
        [47, 1],
      ]),
      false,
      /5 RR types/,
    ],
    [
      'CNAME beside A',
      counts([
        [5, 1],
        [1, 1],
      ]),
      false,
      /CNAME and other data \(A\)/,
    ],
    ['two CNAMEs', counts([[5, 2]]), false, /2 CNAME records/],
    ['two DNAMEs', counts([[39, 2]]), false, /2 DNAME records/],
    ['SOA below the apex', counts([[6, 1]]), false, /SOA record below the zone apex/],
    ['apex without SOA', counts([[2, 1]]), true, /zone apex with no SOA/],
    [
      'apex with two SOAs',
      counts([
        [6, 2],
        [2, 1],
      ]),
      true,
      /zone apex with 2 SOA/,
    ],
    [
      'apex without NS',
      counts([
        [6, 1],
        [1, 1],
      ]),
      true,
      /zone apex without NS records/,
    ],
  ];
  for (const [what, c, apex, re] of bad) {
    it(`refuses: ${what}`, () => assert.match(checkNode('x.', c, LIMITS, apex) ?? '', re));
  }

  it('a CNAME may share its owner with RRSIG, NSEC (RFC 4035 §2.5) and their signatures', () => {
    const c = counts([
      [5, 1],
      [47, 1],
      [SIG_BASE + 5, 1],
      [SIG_BASE + 47, 1],
    ]);
    assert.equal(checkNode('alias.', c, BIG, false), undefined);
  });

  it('rrsetKey keys RRSIGs like the store (sigKey), other types by type', () => {
    assert.equal(rrsetKey(46, rrsig(28)), sigKey(28));
    assert.equal(rrsetKey(1, a('192.0.2.1')), 1);
    const node: NodeView = new Map([
      [1, { rdatas: [a('192.0.2.1'), a('192.0.2.2'), a('192.0.2.1')] }],
      [sigKey(1), { rdatas: [rrsig(1)] }],
    ]);
    assert.deepEqual(
      [...countsOf(node)],
      [
        [1, 2],
        [sigKey(1), 1],
      ],
    );
  });
});

describe('commit guards: checkZone (a whole zone in memory)', () => {
  it('accepts the example zone, in any order', async () => {
    const z = exampleZone(1);
    assert.equal(await checkZone(z, APEX, BIG), undefined);
    assert.equal(await checkZone([...z].reverse(), APEX, BIG), undefined);
  });

  it('counts distinct RRs: a repeated RR is not two', async () => {
    const www = rr('www.example.test', 'CNAME', 60, n('example.test'));
    assert.equal(await checkZone([...base(), www, www], APEX, LIMITS), undefined);
  });

  it('groups owners case-insensitively even when their RRs are far apart', async () => {
    const z = [
      rr('Www.example.test', 'CNAME', 60, n('example.test')),
      ...base(),
      ...Array.from({ length: 50 }, (_, i) => rr(`h${i}.example.test`, 'A', 60, a(`192.0.2.${i}`))),
      rr('wWW.example.test', 'TXT', 60, txt('x')),
    ];
    assert.match(
      (await checkZone(z, APEX, BIG)) ?? '',
      /^www\.example\.test\. has a CNAME and other data \(TXT\)/,
    );
  });

  const cases: [string, ZoneRR[], RegExp][] = [
    ['no NS at the apex', base().filter((r) => r.type !== 2), /example\.test\. is the zone apex without NS/],
    ['no apex at all', base().slice(2), /example\.test\. is the zone apex with no SOA/],
    [
      'too many A at one name',
      [...base(), ...[1, 2, 3, 4].map((i) => rr('www.example.test', 'A', 60, a(`192.0.2.${i}`)))],
      /www\.example\.test\. A has 4 records, more than maxRecordsPerType \(3\)/,
    ],
    [
      'too many types at one name',
      [
        ...base(),
        rr('www.example.test', 'A', 60, a('192.0.2.1')),
        rr('www.example.test', 'TXT', 60, txt('t')),
        rr('www.example.test', 'AAAA', 60, Buffer.alloc(16)),
        rr('www.example.test', 'MX', 60, Buffer.concat([Buffer.from([0, 1]), n('mx.test')])),
        rr('www.example.test', 99, 60, txt('spf')),
      ],
      /www\.example\.test\. has 5 RR types, more than maxTypesPerName \(4\)/,
    ],
    [
      'an owner outside the zone',
      [...base(), rr('evil.test', 'A', 60, a('192.0.2.9'))],
      /evil\.test\. is outside/,
    ],
  ];
  for (const [what, z, re] of cases) {
    it(`refuses: ${what}`, async () => assert.match((await checkZone(z, APEX, LIMITS)) ?? '', re));
  }

  it('checks a 200 000-RR zone (typed-array sort, no per-owner map): accepted, within a liveness bound', async (t) => {
    const z = base();
    for (let i = 0; i < 100_000; i++) {
      z.push(rr(`host${i}.example.test`, 'A', 60, a(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)));
      z.push(rr(`host${i}.example.test`, 'TXT', 60, txt(`h${i}`)));
    }
    const t0 = performance.now();
    assert.equal(await checkZone(z, APEX, BIG), undefined);
    const ms = performance.now() - t0;
    t.diagnostic(`${ms.toFixed(0)} ms`);
    // Liveness only (a per-owner quadratic check would take minutes); speed: bench/guards.ts.
    assert.ok(ms < 60_000, `${ms.toFixed(0)} ms`);
  });
});

describe('commit guards: checkNodeRows (per-RRset counts, e.g. a GROUP BY)', () => {
  const apexRows: NodeRow[] = [
    { owner: 'example.test', type: 6, count: 1 },
    { owner: 'example.test', type: 2, count: 2 },
  ];

  it('accepts a proper zone and merges RRSIG rows per covered type', () => {
    const rows: NodeRow[] = [
      ...apexRows,
      { owner: 'www.example.test', type: 1, count: 2 },
      { owner: 'www.example.test', type: 46, covered: Buffer.from([0, 1]), count: 1 },
      { owner: 'www.example.test', type: 46, covered: 1, count: 1 },
    ];
    assert.equal(checkNodeRows(rows, 'example.test', LIMITS), undefined);
  });

  it('refuses what checkNode refuses, naming the owner', () => {
    assert.match(
      checkNodeRows(
        [...apexRows, { owner: 'www.example.test', type: 1, count: 101 }],
        'Example.Test.',
        BIG,
      ) ?? '',
      /^www\.example\.test\. A has 101 records, more than maxRecordsPerType \(100\)$/,
    );
    assert.match(
      checkNodeRows(
        [
          ...apexRows,
          { owner: 'alias.example.test', type: 5, count: 1 },
          { owner: 'alias.example.test', type: 16, count: 1 },
        ],
        'example.test',
        BIG,
      ) ?? '',
      /alias\.example\.test\. has a CNAME and other data \(TXT\)/,
    );
    assert.match(
      checkNodeRows([{ owner: 'example.test', type: 6, count: 1 }], 'example.test', BIG) ?? '',
      /without NS/,
    );
    assert.match(
      checkNodeRows([], 'example.test', BIG) ?? '',
      /^example\.test\. is the zone apex with no SOA/,
    );
  });
});

describe('commit guards: the staging-table query in the guards docblock', () => {
  /** A staging table shaped like the store's (name, rtype, nkey, rdata_wire), filled with `rrs`. */
  function staged(rrs: ZoneRR[]) {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE incoming (name TEXT, rtype INTEGER, nkey BLOB, rdata_wire BLOB)');
    const ins = db.prepare('INSERT INTO incoming VALUES (?, ?, ?, ?)');
    for (const r of rrs) ins.run(nameToText(r.owner, false).toLowerCase(), r.type, nameKey(r.owner), r.rdata);
    return db;
  }
  const ROWS_SQL = `SELECT name AS owner, rtype AS type,
         CASE WHEN rtype = 46 THEN substr(rdata_wire, 1, 2) END AS covered,
         count(DISTINCT rdata_wire) AS count
    FROM incoming GROUP BY nkey, rtype, covered ORDER BY nkey`;

  it('feeds checkNodeRows: a clean zone passes, each violation is named', () => {
    const clean = [
      ...exampleZone(1),
      rr('www.example.test', 46, 60, rrsig(1)),
      rr('www.example.test', 46, 60, rrsig(1, 2)),
      rr('www.example.test', 'A', 300, a('192.0.2.1')), // a repeat: counted once
    ];
    const ok = staged(clean);
    assert.equal(
      checkNodeRows(ok.prepare(ROWS_SQL).iterate() as Iterable<NodeRow>, 'example.test', BIG),
      undefined,
    );
    assert.match(
      checkNodeRows(ok.prepare(ROWS_SQL).iterate() as Iterable<NodeRow>, 'example.test', {
        ...BIG,
        maxRecordsPerType: 1,
      }) ?? '',
      /A has 2 records|RRSIG\(A\) has 2 records/,
    );
    const clash = staged([...exampleZone(1), rr('alias.example.test', 'TXT', 60, txt('x'))]);
    assert.match(
      checkNodeRows(clash.prepare(ROWS_SQL).iterate() as Iterable<NodeRow>, 'example.test', BIG) ?? '',
      /^alias\.example\.test\. has a CNAME and other data \(TXT\)/,
    );
  });
});

describe('commit guards: IXFR results', () => {
  const zone = [
    ...base(),
    rr('www.example.test', 'A', 60, a('192.0.2.1')),
    rr('alias.example.test', 'CNAME', 60, n('www.example.test')),
  ];
  /** The zone as a store reader shows it: nodes keyed by owner, RRsets by rrsetKey. */
  const reader = (rrs: ZoneRR[]) => {
    const nodes = new Map<string, Map<number, { ttl: number; rdatas: Buffer[] }>>();
    for (const r of rrs) {
      const k = nameKey(r.owner).toString('hex');
      const node = nodes.get(k) ?? new Map();
      nodes.set(k, node);
      const key = rrsetKey(r.type, r.rdata);
      const set = node.get(key) ?? { ttl: r.ttl, rdatas: [] };
      node.set(key, set);
      set.rdatas.push(r.rdata);
    }
    return (owner: Buffer): NodeView => nodes.get(nameKey(owner).toString('hex')) ?? new Map();
  };
  const soaRr = (s: number) => rr('example.test', 'SOA', 3600, soa('ns1.example.test', 'h.example.test', s));

  it('touchedOwners: the apex first, then each owner with additions once, lower case', () => {
    const owners = touchedOwners(
      [
        { deleted: [soaRr(1)], added: [soaRr(2), rr('WWW.example.test', 'A', 60, a('192.0.2.7'))] },
        { deleted: [soaRr(2)], added: [soaRr(3), rr('www.example.test', 'TXT', 60, txt('x'))] },
      ],
      APEX,
    );
    assert.deepEqual(
      owners.map((o) => o.toString('hex')),
      [n('example.test'), n('www.example.test')].map((o) => o.toString('hex')),
    );
  });

  it('checkDiffs: a clean diff passes; one leaving a CNAME beside data is refused', async () => {
    const ok = [{ deleted: [soaRr(1)], added: [soaRr(2), rr('www.example.test', 'A', 60, a('192.0.2.2'))] }];
    assert.equal(await checkDiffs(ok, APEX, LIMITS, reader(zone)), undefined);
    const clash = [{ deleted: [soaRr(1)], added: [soaRr(2), rr('alias.example.test', 'TXT', 60, txt('x'))] }];
    assert.match(
      (await checkDiffs(clash, APEX, LIMITS, reader(zone))) ?? '',
      /alias\.example\.test\. has a CNAME/,
    );
  });

  it('checkDiffs follows the versions in order (delete then add is not a clash)', async () => {
    const diffs = [
      {
        deleted: [soaRr(1), rr('alias.example.test', 'CNAME', 60, n('www.example.test'))],
        added: [soaRr(2)],
      },
      { deleted: [soaRr(2)], added: [soaRr(3), rr('alias.example.test', 'A', 60, a('192.0.2.3'))] },
    ];
    assert.equal(await checkDiffs(diffs, APEX, LIMITS, reader(zone)), undefined);
  });

  it('checkDiffs: per-type limit reached by additions, and the apex losing its NS', async () => {
    const more = [2, 3, 4].map((i) => rr('www.example.test', 'A', 60, a(`192.0.2.${i}`)));
    assert.match(
      (await checkDiffs([{ deleted: [soaRr(1)], added: [soaRr(2), ...more] }], APEX, LIMITS, reader(zone))) ??
        '',
      /www\.example\.test\. A has 4 records/,
    );
    const noNs = [{ deleted: [soaRr(1), base()[1]], added: [soaRr(2)] }];
    assert.match((await checkDiffs(noNs, APEX, LIMITS, reader(zone))) ?? '', /without NS/);
  });

  it('checkOwners: the same rules against nodes read after applying', () => {
    const after = [...zone, rr('alias.example.test', 'TXT', 60, txt('x'))];
    const owners = touchedOwners(
      [{ deleted: [], added: [rr('alias.example.test', 'TXT', 60, txt('x'))] }],
      APEX,
    );
    assert.match(
      checkOwners(owners, APEX, LIMITS, reader(after)) ?? '',
      /alias\.example\.test\. has a CNAME/,
    );
    assert.equal(checkOwners(owners, APEX, LIMITS, reader(zone)), undefined);
  });
});

describe('commit guards: maxDeletePercent', () => {
  it('deleteShare is the removed share of the old zone, in percent', () => {
    assert.equal(deleteShare(200, 50), 25);
    assert.equal(deleteShare(0, 10), 0);
    assert.equal(deleteShare(10, 20), 100);
  });

  it('deleteProblem: off when undefined, never on a first load, strictly more than the limit', () => {
    assert.equal(deleteProblem(100, 100), undefined);
    assert.equal(deleteProblem(0, 0, 10), undefined);
    assert.equal(deleteProblem(100, 10, 10), undefined);
    assert.equal(
      deleteProblem(100, 11, 10),
      'transfer would delete 11 of 100 records (11.0%), more than maxDeletePercent (10%)',
    );
  });

  it('diffRemovals counts net removals, not SOAs, not RRs deleted and added back', () => {
    const s = (x: number) => rr('example.test', 'SOA', 1, soa('a.test', 'b.test', x));
    const w = rr('www.example.test', 'A', 60, a('192.0.2.1'));
    const v = rr('v.example.test', 'A', 60, a('192.0.2.2'));
    assert.equal(
      diffRemovals([
        { deleted: [s(1), w, v], added: [s(2)] },
        { deleted: [s(2)], added: [s(3), w] },
      ]),
      1,
    );
    const added = rr('new.example.test', 'A', 60, a('192.0.2.3'));
    assert.equal(
      diffRemovals([
        { deleted: [s(1)], added: [s(2), added] },
        { deleted: [s(2), added], added: [s(3)] },
      ]),
      0,
    );
  });
});
