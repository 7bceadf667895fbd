/**
 * Differential test against a BIND 9.18 *secondary with default options*: a BIND primary serves
 * a plain, an NSEC-signed and an NSEC3-signed zone (delegations signed and not, wildcards, CNAME
 * chains, DNAME, empty non-terminals, RRsets too big for 512 and 1232 octets); BIND and ns2 both
 * transfer them, and each question gets the same reply from both — flags (RA, AD, CD included),
 * question, every RR of every section, OPT, and the message size — decoded by dns-packet, not by
 * ns2's own parser (test/harness/oracle.ts). Questions: every owner and random names below every
 * node × 16 types × UDP without EDNS, EDNS 512/1232/4096, TCP × DO × RD. `npm test` runs a
 * deterministic third of that matrix; `npm run test:differential:full` runs all of it.
 * Then ns2's `minimalResponses` settings and `minimalAny` are held to BIND run with each
 * `minimal-responses` and with `minimal-any yes`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TYPE } from '../../src/dns/types.js';
import { buildQuery, exchange } from '../harness/client.js';
import {
  allQuestions,
  compareAll,
  describeDiff,
  type Question,
  queryNames,
  type Setup,
  setup,
  variants,
  ZONES,
  zoneBody,
} from '../harness/differential.js';
import { startNamed } from '../harness/named.js';
import { startNs2, waitFor } from '../harness/ns2.js';
import { startBindSecondary } from '../harness/reference-secondary.js';
import { signZone } from '../harness/sign.js';

/** Which third of the matrix `npm test` asks: a hash of the question, so every run asks the same. */
function inSlice(q: Question): boolean {
  let h = 0x811c9dc5;
  for (const c of `${q.name}|${q.type}|${q.variant.name}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return (h >>> 0) % 3 === 0;
}

function report(what: string, compared: number, diffs: Parameters<typeof describeDiff>[0][]): void {
  assert.equal(
    diffs.length,
    0,
    `${what}: ${diffs.length} of ${compared} replies differ:\n${diffs.slice(0, 8).map(describeDiff).join('\n')}`,
  );
}

describe('differential: ns2 answers as a default BIND 9.18 secondary does', () => {
  let s: Setup;
  before(async () => {
    s = await setup();
  });
  after(async () => {
    await s?.stop();
  });

  it('every section and the size, over the whole question × transport × DO × RD matrix (a third)', async () => {
    const all = allQuestions(queryNames(s.names, ZONES));
    const qs = all.filter(inSlice);
    const { compared, diffs } = await compareAll(s, qs);
    process.stdout.write(
      `# differential: ${compared} replies compared (of ${all.length} in the full matrix)\n`,
    );
    assert.ok(compared > 30_000, `only ${compared} compared`);
    report('default options', compared, diffs);
  });
});

describe('differential: minimalResponses and minimalAny as BIND minimal-responses and minimal-any', () => {
  /** Zone label, the BIND secondary's options, ns2's zone keys. */
  const SETTINGS: [string, string, Record<string, unknown>][] = [
    ['yes', 'minimal-responses yes;', { minimalResponses: 'yes' }],
    ['no', 'minimal-responses no;', { minimalResponses: 'no' }],
    ['no-auth', 'minimal-responses no-auth;', { minimalResponses: 'no-auth' }],
    ['any', 'minimal-any yes;', { minimalAny: true }],
  ];
  const zoneOf = (setting: string) => `mr-${setting}.nsec.test`;
  const refs = new Map<string, number>();
  const stops: (() => Promise<void>)[] = [];
  let ns2Port = 0;
  let names: string[] = [];
  before(async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-mr-'));
    stops.push(async () => fs.rmSync(tmp, { recursive: true, force: true }));
    const keys = [
      ['-a', 'ECDSAP256SHA256', '-f', 'KSK'],
      ['-a', 'ECDSAP256SHA256'],
    ];
    const zones = SETTINGS.map(([s]) => zoneOf(s));
    const texts = await Promise.all(zones.map((z) => signZone(tmp, z, zoneBody(z), keys, [])));
    const primary = await startNamed({
      zones: zones.map((name, i) => ({ name, text: texts[i], dynamic: false })),
    });
    stops.unshift(() => primary.stop());
    for (const [setting, bind] of SETTINGS) {
      const ref = await startBindSecondary({
        zones: [zoneOf(setting)],
        primaryPort: primary.port,
        options: bind,
      });
      stops.unshift(() => ref.stop());
      refs.set(zoneOf(setting), ref.port);
    }
    const ns2 = await startNs2({
      zones: SETTINGS.map(([setting, , keys]) => ({
        name: zoneOf(setting),
        primaries: [{ address: '127.0.0.1', port: primary.port }],
        ...keys,
      })),
    });
    stops.unshift(async () => {
      await ns2.stop();
    });
    ns2Port = ns2.port;
    for (const z of zones)
      await waitFor(`${z} loaded`, async () => {
        const r = await exchange(ns2.port, buildQuery(z, TYPE.SOA), { timeoutMs: 500 }).catch(
          () => undefined,
        );
        return r !== undefined && r.readUInt16BE(6) === 1;
      });
    for (const z of zones) {
      const out = await primary.dig(['AXFR', z, '+noall', '+answer']);
      for (const line of out.split('\n')) if (line && !line.startsWith(';')) names.push(line.split(/\s+/)[0]);
    }
    names = [...new Set(names)].filter((n) => !/^[0-9a-v]{32}\./i.test(n));
  });
  after(async () => {
    for (const stop of stops) await stop();
  });

  it('each setting: the same replies as BIND with that setting', async () => {
    const types = ['A', 'MX', 'NS', 'SRV', 'TXT', 'DS', 'ANY'].map((t) => TYPE[t as keyof typeof TYPE]);
    const vs = variants().filter((v) => !v.opts.tcp || v.opts.dnssecOk);
    const qs = allQuestions(names, types, vs);
    const zoneFor = (q: Question) => [...refs.keys()].find((z) => q.name.endsWith(`${z}.`))!;
    const { compared, diffs } = await compareAll(
      { ns2: { port: ns2Port }, bind: (q) => refs.get(zoneFor(q))! },
      qs,
    );
    process.stdout.write(`# minimalResponses/minimalAny: ${compared} replies compared\n`);
    assert.ok(compared > 5000, `only ${compared} compared`);
    report('minimalResponses', compared, diffs);
  });
});
