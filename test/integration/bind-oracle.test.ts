/**
 * Claims judged by software ns2 does not share: BIND 9.18 (`named` as primary and as a secondary
 * of ns2), Knot (`knotd` as a secondary of ns2) and `dig`, which decodes every reply itself.
 *
 *   named P (primary) ──IXFR/AXFR──► ns2 ──IXFR/AXFR, TSIG down-key──► named S, knotd K
 *
 * - IXFR out: `dig IXFR=N` of ns2 carries the same diff as `dig IXFR=N` of P; S and K pull each
 *   change by IXFR from ns2 and their zones then equal P's AXFR.
 * - TSIG over multi-message transfers (RFC 8945 §5.3.1): a signed AXFR stream recorded from P is
 *   verified by ns2's verifier (and one altered message fails it); ns2's signed multi-message AXFR
 *   is verified by `dig -y` and by S pulling with the key.
 * - "as BIND does": the unit lookup cases (RD clear adds the apex NS and its addresses, MX
 *   additional, CNAME loops, …), names outside our zones (REFUSED), AXFR over UDP (FORMERR) and
 *   IXFR over UDP (the SOA alone): the same question to P and ns2, dig's text compared.
 * - `ns2 dump ZONE` prints what `dig AXFR` of P prints; `ns2 healthcheck` outside a container.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { textToName } from '../../src/dns/name.js';
import { signRequest, type TsigKey, TsigResponseVerifier } from '../../src/dns/tsig.js';
import { TYPE } from '../../src/dns/types.js';
import { buildQuery } from '../../src/xfrin/query.js';
import { type Knot, startKnot } from '../harness/knot.js';
import { freePort, type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { digAt, HOST, run } from '../harness/proc.js';
import { tcpStream } from '../harness/tcp-stream.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = path.join(ROOT, 'test/fixtures');
const ZONE = 'example.test';
const zoneText = fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8');
const BIG = 'big.test';
const BIG_RRS = 6000; // ~100 kB: several messages of 64 kB at most
const bigText = `$ORIGIN ${BIG}.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 300
  NS ns1
ns1 A 192.0.2.53
${Array.from({ length: BIG_RRS }, (_, i) => `host${i} TXT "record ${i} of the big zone"`).join('\n')}
`;
/** The zone of test/unit/lookup.test.ts (harness/records.ts exampleZone) as a master file. */
const LOOKUP = 'lookup.test';
const lookupText = `$ORIGIN ${LOOKUP}.
$TTL 3600
@ SOA ns1 hostmaster 1 3600 600 86400 300
  NS ns1
  MX 10 mail
ns1 A 192.0.2.53
mail A 192.0.2.25
  AAAA 2001:db8::25
www 300 A 192.0.2.1
  300 A 192.0.2.2
alias 300 CNAME www
loop1 300 CNAME loop2
loop2 300 CNAME loop1
out 300 CNAME www.example.net.
dangling 300 CNAME nothere
sub NS ns.sub
  DS 1 8 2 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
ns.sub A 192.0.2.153
*.wild 60 A 192.0.2.80
  60 TXT "wildcard"
*.cw 60 CNAME www
exists.wild 60 TXT "real"
a.b.ent 60 A 192.0.2.99
dname 60 DNAME example.net.
dn2 60 DNAME www
mx2 MX 10 alias
  MX 20 mail
  MX 30 elsewhere.example.net.
`;

const mkKey = (name: string): TsigKey => ({ name, algorithm: 'hmac-sha256', secret: randomBytes(32) });
const b64 = (k: TsigKey) => k.secret.toString('base64');
const bindKey = (k: TsigKey) => `key "${k.name}" { algorithm hmac-sha256; secret "${b64(k)}"; };`;
const now = () => Math.floor(Date.now() / 1000);

/** dig's record lines (no comments, no TSIG), fields split on whitespace, owner lower-cased. */
function rrLines(digOut: string): string[] {
  return digOut
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith(';'))
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[3] !== 'TSIG')
    .map(([owner, ...rest]) => [owner.toLowerCase(), ...rest].join(' '));
}

/**
 * dig's view of one reply, minus what differs between any two servers (message id, timing,
 * server address, size, the server cookie's value). The RRs of each section are compared as a
 * set: their order carries no meaning (RFC 2181 §5) and BIND rotates RRsets (rrset-order cyclic).
 * Names are compared as written, case included.
 */
function digView(out: string): string {
  const lines = out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => !/^;; (Query time|SERVER|WHEN|MSG SIZE|Got answer|global options)|^; <<>> DiG/.test(l))
    .map((l) => l.replace(/, id: \d+/, '').replace(/^; COOKIE: .*/, '; COOKIE: (present)'))
    .map((l) => l.trim().split(/\s+/).join(' '));
  const out2: string[] = [];
  let section: string[] = [];
  for (const l of lines) {
    if (l.startsWith(';')) {
      out2.push(...section.sort(), l);
      section = [];
    } else section.push(l);
  }
  return [...out2, ...section.sort()].join('\n');
}

/**
 * The lines of two digView()s that differ, named first: a failure report that fits in the first
 * lines of a CI log, where a whole deepEqual of both texts is cut off before ns2's side.
 */
function viewDiff(args: string[], named: string, ns2: string): string {
  const a = named.split('\n');
  const b = ns2.split('\n');
  const only = (x: string[], y: string[], tag: string) =>
    x.filter((l) => !y.includes(l)).map((l) => `  ${tag} ${l}`);
  return [args.join(' '), ...only(a, b, 'named:'), ...only(b, a, 'ns2:  ')].join('\n');
}

/** Fails with the first few differing replies, each as viewDiff lines. */
function assertNoDiffs(diffs: string[], asked: number): void {
  assert.ok(
    diffs.length === 0,
    `${diffs.length} of ${asked} replies differ:\n${diffs.slice(0, 6).join('\n')}`,
  );
}

/** An IXFR as dig prints it: the sequence of (deleted, added) sets between the SOAs. */
function ixfrDiffs(digOut: string): { from: string; to: string; deleted: string[]; added: string[] }[] {
  const rrs = rrLines(digOut);
  const soa = (l: string) => l.split(' ')[3] === 'SOA';
  const serial = (l: string) => l.split(' ')[6];
  assert.ok(rrs.length >= 2 && soa(rrs[0]) && soa(rrs.at(-1)!), `not an IXFR:\n${digOut}`);
  const out: { from: string; to: string; deleted: string[]; added: string[] }[] = [];
  let i = 1;
  while (i < rrs.length - 1) {
    const from = rrs[i++];
    const deleted: string[] = [];
    while (!soa(rrs[i])) deleted.push(rrs[i++]);
    const to = rrs[i++];
    const added: string[] = [];
    while (i < rrs.length - 1 && !soa(rrs[i])) added.push(rrs[i++]);
    out.push({ from: serial(from), to: serial(to), deleted: deleted.sort(), added: added.sort() });
  }
  return out;
}

/** One UDP datagram to `port`, the reply's header bits (rcode, flags) and counts. */
function udpHeader(port: number, msg: Buffer): Promise<{ rcode: number; flags: number; counts: number[] }> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no UDP reply from ${port}`));
    }, 3000);
    s.on('message', (r) => {
      clearTimeout(timer);
      s.close();
      const flags = r.readUInt16BE(2);
      resolve({ rcode: flags & 0xf, flags, counts: [4, 6, 8, 10].map((o) => r.readUInt16BE(o)) });
    });
    s.send(msg, port, HOST);
  });
}

/** Many questions through one dig process (`dig -f`): one reply's text per question, in order. */
async function digBatch(port: number, questions: string[][]): Promise<string[]> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-dig-')), 'batch.txt');
  fs.writeFileSync(file, `${questions.map((q) => q.join(' ')).join('\n')}\n`);
  try {
    const r = await run('dig', [`@${HOST}`, '-p', String(port), '-f', file], { timeoutMs: 60_000 });
    const replies = r.stdout.split(/^; <<>> DiG .*$/m).slice(1);
    assert.equal(replies.length, questions.length, r.stdout.slice(0, 2000));
    return replies;
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

function ns2Cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('judged by BIND, Knot and dig', () => {
  let primary: Named;
  let ns2: Ns2;
  let secondary: Named;
  let knot: Knot;
  const up = mkKey('xfr-key');
  const down = mkKey('down-key');
  const digDown = ['-y', `hmac-sha256:down-key:${b64(down)}`];

  const serialAt = async (port: number, zone: string) =>
    Number((await digAt(port, [zone, 'SOA', '+short', '+norec'])).split(/\s+/)[2]);

  before(async () => {
    const ns2Port = await freePort();
    const knotPort = await freePort();
    const sPort = await freePort();
    primary = await startNamed({
      keys: bindKey(up),
      zones: [
        { name: ZONE, text: zoneText, alsoNotify: [ns2Port] },
        { name: BIG, text: bigText, allowTransfer: `key "xfr-key"; ${HOST};` },
        { name: LOOKUP, text: lookupText },
      ],
    });
    const zone = (name: string) => ({
      name,
      primaries: [{ address: HOST, port: primary.port }],
      allowTransfer: ['key:down-key', '127.0.0.0/8'],
      alsoNotify:
        name === ZONE ? [sPort, knotPort].map((port) => ({ address: HOST, port, key: down.name })) : [],
    });
    ns2 = await startNs2({
      port: ns2Port,
      zones: [zone(ZONE), zone(BIG), zone(LOOKUP)],
      extra: { keys: { [down.name]: { algorithm: down.algorithm, secret: b64(down) } } },
    });
    await waitFor('ns2 loaded the zones', async () => {
      return (
        (await serialAt(ns2Port, ZONE)) === 2024010101 &&
        (await serialAt(ns2Port, BIG)) === 1 &&
        (await serialAt(ns2Port, LOOKUP)) === 1
      );
    });
    secondary = await startNamed({
      port: sPort,
      keys: bindKey(down),
      zones: [
        { name: ZONE, text: '', secondaryOf: { port: ns2Port, key: down.name } },
        { name: BIG, text: '', secondaryOf: { port: ns2Port, key: down.name } },
      ],
    });
    knot = await startKnot({
      port: knotPort,
      zones: [{ name: ZONE, primaryPort: ns2Port, key: down.name }],
      keys: [{ id: down.name, algorithm: down.algorithm, secret: b64(down) }],
    });
    await waitFor(
      'knotd loaded the zone from ns2',
      async () => (await serialAt(knotPort, ZONE)) === 2024010101,
    );
  });

  after(async () => {
    await knot?.stop();
    await secondary?.stop();
    await ns2?.stop();
    await primary?.stop();
    if (ns2) fs.rmSync(ns2.dir, { recursive: true, force: true });
  });

  describe('IXFR out', () => {
    it('two changes on the primary: dig IXFR=N of ns2 = of BIND; BIND and Knot pull them by IXFR and equal the primary', async () => {
      const changes = [
        `update add chain.${ZONE}. 300 A 192.0.2.123\nupdate delete ftp.${ZONE}. A\nupdate add txt.${ZONE}. 3600 TXT "added"\n`,
        `update delete chain.${ZONE}. A\nupdate add mail.${ZONE}. 3600 A 192.0.2.26\nupdate add new.${ZONE}. 60 MX 5 mail.${ZONE}.\n`,
      ];
      let serial = 2024010101;
      for (const change of changes) {
        await primary.nsupdate(`zone ${ZONE}\n${change}`);
        serial++;
        const at = (port: number) => async () => (await serialAt(port, ZONE)) === serial;
        // Liveness bounds: each hop is NOTIFY → SOA query → IXFR, which a loaded machine slows.
        await waitFor(`ns2 at ${serial}`, at(ns2.port), 30_000);
        await waitFor(`BIND secondary at ${serial}`, at(secondary.port), 30_000);
        await waitFor(`knotd at ${serial}`, at(knot.port), 30_000);
      }
      // The same IXFR question to both: the same versions, each the same deletions and additions.
      for (const from of [2024010101, 2024010102]) {
        const ours = await digAt(ns2.port, [...digDown, ZONE, `IXFR=${from}`]);
        const theirs = await digAt(primary.port, [ZONE, `IXFR=${from}`]);
        assert.doesNotMatch(ours, /Transfer failed|Couldn't verify|could not be validated/);
        const diffs = ixfrDiffs(ours);
        assert.equal(diffs.length, 2024010103 - from, `versions from ${from}`);
        assert.deepEqual(diffs, ixfrDiffs(theirs), `IXFR=${from}`);
      }
      // A serial older than the history reaches: the whole zone, AXFR-style, as BIND answers.
      const fullOurs = rrLines(await digAt(ns2.port, [...digDown, ZONE, 'IXFR=2024000000']));
      const fullTheirs = rrLines(await digAt(primary.port, [ZONE, 'IXFR=2024000000']));
      assert.ok(fullOurs.length > 50);
      assert.deepEqual(fullOurs.sort(), fullTheirs.sort());
      // Up to date: the SOA alone, as BIND answers.
      assert.deepEqual(
        rrLines(await digAt(ns2.port, [...digDown, ZONE, 'IXFR=2024010103'])),
        rrLines(await digAt(primary.port, [ZONE, 'IXFR=2024010103'])),
      );
      // Each downstream took both changes incrementally from ns2, and holds the primary's zone.
      // BIND logs no transfer kind: its record counts are those of the one-version IXFRs (SOA,
      // SOA, deletions, SOA, additions, SOA; an AXFR of this zone is 50+ records).
      const log = secondary.log();
      const versions = ixfrDiffs(await digAt(ns2.port, [...digDown, ZONE, 'IXFR=2024010101']));
      for (const [i, to] of [2024010102, 2024010103].entries()) {
        const ixfrRecords = 4 + versions[i].deleted.length + versions[i].added.length;
        const m = new RegExp(
          `transfer of 'example\\.test/IN' from 127\\.0\\.0\\.1#${ns2.port}: Transfer completed: \\d+ messages, (\\d+) records.*\\(serial ${to}\\)`,
        ).exec(log);
        assert.ok(m, `BIND secondary logged the transfer to ${to}`);
        assert.equal(Number(m[1]), ixfrRecords, `BIND took ${to} as the ${ixfrRecords}-record IXFR`);
      }
      const knotLog = knot.log();
      assert.equal(knotLog.match(/IXFR, incoming, remote 127\.0\.0\.1@\d+, finished/g)?.length, 2, knotLog);
      assert.match(knotLog, /zone updated, [\d.]+ seconds, serial 2024010101 -> 2024010102/);
      assert.match(knotLog, /zone updated, [\d.]+ seconds, serial 2024010102 -> 2024010103/);
      const want = rrLines(await digAt(primary.port, [ZONE, 'AXFR']));
      assert.deepEqual(
        rrLines(await digAt(secondary.port, [ZONE, 'AXFR'])).sort(),
        want.sort(),
        'BIND secondary',
      );
      // knotd does not serve AXFR here: ask it for every RRset of the primary's zone instead.
      const knotRRs = new Set<string>();
      for (const key of new Set(want.map((l) => l.split(' ').slice(0, 4).join(' ')))) {
        const [owner, , , type] = key.split(' ');
        const out = await digAt(knot.port, [
          owner,
          type,
          '+norec',
          '+noall',
          '+answer',
          '+authority',
          '+additional',
        ]);
        for (const l of rrLines(out))
          if (l.startsWith(`${owner} `) && l.split(' ')[3] === type) knotRRs.add(l);
      }
      const wantSet = [...new Set(want)].sort(); // the SOA appears twice in an AXFR
      assert.deepEqual([...knotRRs].sort(), wantSet, 'knotd');
    });
  });

  describe('TSIG over multi-message transfers (RFC 8945 §5.3.1)', () => {
    it("a BIND-signed multi-message AXFR verifies with ns2's verifier, message by message", async () => {
      const q = buildQuery(textToName(BIG), TYPE.AXFR);
      const signed = signRequest(q.msg, up, now());
      let soas = 0;
      const messages = await tcpStream(primary.port, signed.msg, {
        // The stream ends with the second SOA.
        done: (m) => {
          soas += countSoa(m);
          return soas >= 2;
        },
      });
      assert.ok(messages.length >= 2, `${messages.length} messages`);
      const verifier = new TsigResponseVerifier(up, signed.mac, now);
      for (const m of messages) verifier.verify(m);
      // The chain is checked: the same stream with one later message altered does not verify.
      const tampered = messages.map((m) => Buffer.from(m));
      const last = tampered.at(-1)!;
      last[last.length - 120] ^= 1;
      const again = new TsigResponseVerifier(up, signed.mac, now);
      assert.throws(() => {
        for (const m of tampered) again.verify(m);
      });
      // So is the order: a later message alone after the first does not verify either.
      if (messages.length >= 3) {
        const skip = new TsigResponseVerifier(up, signed.mac, now);
        skip.verify(messages[0]);
        assert.throws(() => skip.verify(messages[2]));
      }
    });

    it('ns2-signed multi-message AXFR: dig -y verifies it; the BIND secondary pulled it with the key', async () => {
      const out = await digAt(ns2.port, [...digDown, BIG, 'AXFR']);
      assert.doesNotMatch(out, /Transfer failed|Couldn't verify|could not be validated/);
      const size = /XFR size: (\d+) records \(messages (\d+)/.exec(out);
      assert.ok(size, out.slice(-500));
      assert.equal(Number(size[1]), BIG_RRS + 4);
      assert.ok(Number(size[2]) >= 2, `${size[2]} messages`);
      // A wrong key: dig cannot verify (or ns2 refuses it): never a silent success.
      const bad = await digAt(ns2.port, [
        '-y',
        `hmac-sha256:down-key:${randomBytes(32).toString('base64')}`,
        BIG,
        'AXFR',
      ]);
      assert.match(bad, /Transfer failed|Couldn't verify|could not be validated|BADSIG|NOTAUTH/i);
      // BIND as ns2's secondary verifies every message it takes (its xfrin rejects a bad MAC).
      assert.equal(await serialAt(secondary.port, BIG), 1);
      assert.match(
        secondary.log(),
        /transfer of 'big\.test\/IN' from 127\.0\.0\.1#\d+: Transfer status: success/,
      );
      assert.match(
        secondary.log(),
        /transfer of 'big\.test\/IN' from 127\.0\.0\.1#\d+: Transfer completed: (\d+) messages/,
      );
      const msgs = Number(
        /transfer of 'big\.test\/IN' from 127\.0\.0\.1#\d+: Transfer completed: (\d+) messages/.exec(
          secondary.log(),
        )![1],
      );
      assert.ok(msgs >= 2, `BIND received ${msgs} messages`);
      assert.equal(
        (await digAt(secondary.port, [BIG, 'AXFR'])).split('\n').filter((l) => /\tTXT\t/.test(l)).length,
        BIG_RRS,
      );
    });
  });

  describe('as BIND answers', () => {
    const lookupCases: [string, string][] = [
      [LOOKUP, 'SOA'],
      [LOOKUP, 'NS'],
      [LOOKUP, 'MX'],
      [`mx2.${LOOKUP}`, 'MX'],
      [`www.${LOOKUP}`, 'A'],
      [`WwW.LoOkUp.TeSt`, 'A'],
      [`www.${LOOKUP}`, 'TXT'],
      [`nothere.${LOOKUP}`, 'A'],
      [`b.ent.${LOOKUP}`, 'A'],
      [`x.b.ent.${LOOKUP}`, 'A'],
      [`alias.${LOOKUP}`, 'A'],
      [`alias.${LOOKUP}`, 'CNAME'],
      [`loop1.${LOOKUP}`, 'A'],
      [`loop2.${LOOKUP}`, 'CNAME'],
      [`out.${LOOKUP}`, 'A'],
      [`dangling.${LOOKUP}`, 'A'],
      [`sub.${LOOKUP}`, 'A'],
      [`deep.sub.${LOOKUP}`, 'A'],
      [`sub.${LOOKUP}`, 'DS'],
      [`x.wild.${LOOKUP}`, 'A'],
      [`exists.wild.${LOOKUP}`, 'A'],
      [`x.wild.${LOOKUP}`, 'MX'],
      [`x.cw.${LOOKUP}`, 'A'],
      [`host.dname.${LOOKUP}`, 'A'],
      [`dname.${LOOKUP}`, 'DNAME'],
      [`x.dn2.${LOOKUP}`, 'A'],
      [`mail.${LOOKUP}`, 'ANY'],
      [LOOKUP, 'ANY'],
      [`sub.${LOOKUP}`, 'ANY'],
    ];
    it(`the lookup unit cases, RD set and clear, with and without EDNS: ${lookupCases.length * 4} questions`, async () => {
      const questions = lookupCases.flatMap(([name, type]) =>
        ['+rec', '+norec'].flatMap((rd) =>
          ['+edns=0', '+noedns'].map((edns) => [name, type, rd, edns, '+nocookie', '+nonsid']),
        ),
      );
      const [theirs, ours] = await Promise.all([
        digBatch(primary.port, questions),
        digBatch(ns2.port, questions),
      ]);
      const diffs: string[] = [];
      for (const [i, args] of questions.entries()) {
        const [t, o] = [digView(theirs[i]), digView(ours[i])];
        if (o !== t) diffs.push(viewDiff(args, t, o));
      }
      assertNoDiffs(diffs, questions.length);
    });

    it('names outside our zones: REFUSED, exactly as named says it', async () => {
      const diffs: string[] = [];
      let asked = 0;
      for (const [name, type] of [
        ['www.example.org', 'A'],
        ['.', 'SOA'],
        ['.', 'NS'],
        ['test', 'SOA'],
        ['notexample.test', 'A'],
        ['example.tes', 'A'],
        ['xexample.test', 'MX'],
      ])
        for (const rd of ['+rec', '+norec']) {
          const args = [name, type, rd, '+nocookie'];
          const theirs = digView(await digAt(primary.port, args));
          const ours = digView(await digAt(ns2.port, args));
          assert.match(theirs, /status: REFUSED/, `named: ${args.join(' ')}`);
          asked++;
          if (ours !== theirs) diffs.push(viewDiff(args, theirs, ours));
        }
      assertNoDiffs(diffs, asked);
    });

    it('IXFR over UDP: the SOA alone, as named answers (dig +notcp)', async () => {
      for (const serial of [1, 2024010101, 2024010103]) {
        const args = [ZONE, `IXFR=${serial}`, '+notcp', '+nocookie', '+comments'];
        const theirs = digView(await digAt(primary.port, args));
        const ours = digView(await digAt(ns2.port, args));
        assert.match(theirs, /ANSWER: 1,/);
        assert.equal(ours, theirs, args.join(' '));
      }
    });

    it('AXFR over UDP: the same rcode and flags as named (FORMERR)', async () => {
      for (const zone of [ZONE, LOOKUP]) {
        const q = buildQuery(textToName(zone), TYPE.AXFR);
        const theirs = await udpHeader(primary.port, q.msg);
        const ours = await udpHeader(ns2.port, q.msg);
        assert.equal(theirs.rcode, 1, 'named: FORMERR');
        assert.deepEqual(ours, theirs);
      }
    });
  });

  describe('operator commands outside the container', () => {
    it('ns2 dump ZONE prints the records dig AXFR of the primary prints', async () => {
      await Promise.all(
        [ZONE, BIG].map(async (zone) => {
          const dump = ns2Cli('dump', zone, '--config', ns2.configFile);
          assert.equal(dump.code, 0, dump.err);
          const theirs = await digAt(primary.port, [zone, 'AXFR']);
          // Same records, same text (dig's presentation format), same first and last SOA.
          assert.deepEqual(rrLines(dump.out).sort(), rrLines(theirs).sort(), zone);
          assert.equal(rrLines(dump.out)[0], rrLines(theirs)[0]);
          assert.equal(rrLines(dump.out).at(-1), rrLines(theirs).at(-1));
        }),
      );
    });

    it('ns2 healthcheck: exit 0 while ns2 answers, 1 with a line saying why when nothing listens', async () => {
      const okRun = ns2Cli('healthcheck', '--config', ns2.configFile);
      assert.equal(okRun.code, 0, okRun.err);
      assert.match(okRun.out, /^ok/);
      // The same config with its listen port moved to one nobody serves.
      const cfg = JSON.parse(fs.readFileSync(ns2.configFile, 'utf8'));
      cfg.listen = [{ address: HOST, port: await freePort() }];
      const dead = path.join(ns2.dir, 'dead.json');
      fs.writeFileSync(dead, JSON.stringify(cfg));
      const down = ns2Cli('healthcheck', '--config', dead);
      assert.equal(down.code, 1);
      assert.match(down.err, /unhealthy/);
    });
  });
});

/** SOA records in a message's answer section (walks the RRs; names compressed or not). */
function countSoa(m: Buffer): number {
  const skipName = (off: number) => {
    while (m[off] !== 0) {
      if ((m[off] & 0xc0) === 0xc0) return off + 2;
      off += m[off] + 1;
    }
    return off + 1;
  };
  let off = 12;
  for (let i = 0; i < m.readUInt16BE(4); i++) off = skipName(off) + 4;
  let n = 0;
  for (let i = 0; i < m.readUInt16BE(6); i++) {
    off = skipName(off);
    if (m.readUInt16BE(off) === TYPE.SOA) n++;
    off += 10 + m.readUInt16BE(off + 8);
  }
  return n;
}
