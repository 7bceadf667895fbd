/**
 * ISC's EDNS compliance tester genreport, its probes rebuilt from genreport.c (harness/genreport.ts):
 * every probe goes to a default BIND 9.18 secondary (with `server-id`) and to ns2 (with
 * `identity.nsid`) serving the same zone, and both must get the same verdict. Also NSID as
 * `dig +nsid` prints it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import { type BindSecondary, startBindSecondaryOf } from '../harness/bind-secondary.js';
import { buildQuery, exchange, summarize } from '../harness/client.js';
import { PROBES, request, runProbe } from '../harness/genreport.js';
import { replyClass } from '../harness/mutations.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { digAt } from '../harness/proc.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const ZONE = 'example.test';
const SERVER_ID = 'ns-ref-1';
let bind: BindSecondary;
let ns2: Ns2;

before(async () => {
  const text = fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8');
  bind = await startBindSecondaryOf({ name: ZONE, text }, { extraOptions: `  server-id "${SERVER_ID}";` });
  ns2 = await startNs2({
    zones: [{ name: ZONE, primaries: [{ address: '127.0.0.1', port: bind.primary.port }] }],
    extra: { identity: { nsid: SERVER_ID } },
  });
  await waitFor(
    'zone loaded',
    async () => summarize(await exchange(ns2.port, buildQuery(ZONE, 6))).rcode === 0,
  );
});
after(async () => {
  await ns2?.stop();
  await bind?.stop();
});

describe('genreport probes: the same verdict as a default BIND 9.18 secondary', () => {
  for (const probe of PROBES)
    it(probe.name, async () => {
      const [theirs, ours] = [await runProbe(bind.port, probe, ZONE), await runProbe(ns2.port, probe, ZONE)];
      assert.equal(ours, theirs, `${probe.name}: BIND ${theirs}, ns2 ${ours}`);
      // The probes issue 11 names: both servers must pass them, not merely agree.
      if (['opcode', 'opcodeflg', 'ednsnsid', 'edns', 'dns'].includes(probe.name)) assert.match(ours, /^ok/);
    });
});

describe("options in a reply's OPT", () => {
  it("in the order BIND sends them (NSID, COOKIE, EXPIRE, ECS) for genreport's optlist probe", async () => {
    const probe = PROBES.find((x) => x.name === 'optlist')!;
    const order = async (port: number) => {
      const m = dnsPacket.decode(await exchange(port, request(probe, ZONE, 4321)));
      const o = m.additionals?.find((x) => x.type === 'OPT') as { options?: { code: number }[] } | undefined;
      return o?.options?.map((x) => x.code);
    };
    const theirs = await order(bind.port);
    assert.deepEqual(theirs, [3, 10, 9, 8]);
    assert.deepEqual(await order(ns2.port), theirs);
  });
});

describe('a cookie-only query (RFC 7873 §5.4: no question, a client COOKIE)', () => {
  it('NOERROR with a server cookie, from both', async () => {
    const opt = Buffer.from('0000290fa000000000000c000a00080102030405060708', 'hex');
    const msg = Buffer.concat([Buffer.from('beef000000000000000000010', 'hex').subarray(0, 12), opt]);
    msg.writeUInt16BE(0, 4);
    msg.writeUInt16BE(1, 10);
    const shape = async (port: number) => {
      const r = await exchange(port, msg);
      const m = dnsPacket.decode(r);
      const o = m.additionals?.find((x) => x.type === 'OPT') as
        | { options?: { code: number; data: Buffer }[] }
        | undefined;
      const cookie = o?.options?.find((x) => x.code === 10)?.data;
      return {
        cls: replyClass(r),
        qd: m.questions?.length,
        client: cookie?.subarray(0, 8).toString('hex'),
        server: (cookie?.length ?? 0) > 8,
      };
    };
    const theirs = await shape(bind.port);
    assert.deepEqual(theirs, { cls: 'NOERROR', qd: 0, client: '0102030405060708', server: true });
    assert.deepEqual(await shape(ns2.port), theirs);
  });
});

describe('NSID (RFC 5001) as dig +nsid shows it', () => {
  const nsidLine = (out: string) => /; NSID: .*/.exec(out)?.[0];
  it('the same NSID line as BIND with server-id, and none when not asked', async () => {
    const args = [ZONE, 'SOA', '+norec', '+nsid', '+nocookie'];
    const theirs = nsidLine(await digAt(bind.port, args));
    assert.ok(theirs?.includes(SERVER_ID), String(theirs));
    assert.equal(nsidLine(await digAt(ns2.port, args)), theirs);
    assert.equal(nsidLine(await digAt(ns2.port, [ZONE, 'SOA', '+norec'])), undefined);
    // Also for an answer the cache holds (asked twice without NSID first).
    await digAt(ns2.port, ['www.example.test', 'A', '+norec']);
    await digAt(ns2.port, ['www.example.test', 'A', '+norec']);
    const www = ['www.example.test', 'A', '+norec', '+nsid', '+nocookie'];
    assert.equal(nsidLine(await digAt(ns2.port, www)), nsidLine(await digAt(bind.port, www)));
  });
});
