/**
 * Malformed queries answered as BIND answers them: seeded mutations of valid queries
 * (harness/mutations.ts) sent over UDP to a default BIND 9.18 secondary and to ns2 serving the
 * same zone, each reply reduced to a class and the two compared.
 *
 *   npm run malformed                                30 000 mutations
 *   node --import tsx test/fuzz/malformed.ts --count 5000 --seed 7
 *
 * Exits 1 when agreement is under 99 % or ns2 gave data where BIND gave none.
 * test/integration/malformed.test.ts runs a 3 000-mutation slice inside `npm test`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BindSecondary, startBindSecondaryOf } from '../harness/bind-secondary.js';
import { buildQuery, exchange, summarize } from '../harness/client.js';
import {
  hasData,
  MAX_REPLAY,
  MUTATIONS,
  type Mutation,
  mutate,
  type ReplyClass,
  replay,
} from '../harness/mutations.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { rng } from './packets.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
export const ZONE = 'example.test';

export interface Disagreement {
  kind: string;
  bind: ReplyClass;
  ns2: ReplyClass;
  packet: string;
}

export interface MalformedReport {
  seed: number;
  count: number;
  agreed: number;
  /** ns2 answered with records where BIND answered without (or not at all). */
  dataWhereBindHasNone: number;
  disagreements: Disagreement[];
  /** "bind → ns2" class pairs and how often, for the disagreements. */
  byPair: Record<string, number>;
  /** BIND's reply classes and how often (what the packets exercised). */
  bindClasses: Record<string, number>;
}

export interface Servers {
  bind: BindSecondary;
  ns2: Ns2;
  stop(): Promise<void>;
}

/** A BIND secondary and ns2, both serving example.test from the same BIND primary. */
export async function startServers(): Promise<Servers> {
  const text = fs.readFileSync(path.join(FIXTURES, 'example.test.zone'), 'utf8');
  const bind = await startBindSecondaryOf({ name: ZONE, text });
  let ns2: Ns2 | undefined;
  try {
    ns2 = await startNs2({
      zones: [
        {
          name: ZONE,
          primaries: [{ address: '127.0.0.1', port: bind.primary.port }],
          allowTransfer: ['127.0.0.1'],
        },
      ],
      // BIND 9.18 allows transfers to anyone by default; ns2 to no one. Allowed here, so that
      // transfer requests are judged by what follows the ACL (README: deliberate differences).
      extra: { logLevel: 'warn' },
    });
    const port = ns2.port;
    await waitFor('ns2 zone loaded', async () => {
      try {
        return summarize(await exchange(port, buildQuery(ZONE, 6), { timeoutMs: 500 })).rcode === 0;
      } catch {
        return false;
      }
    });
  } catch (e) {
    await ns2?.stop();
    await bind.stop();
    throw e;
  }
  const n = ns2;
  return {
    bind,
    ns2: n,
    async stop() {
      await n.stop();
      await bind.stop();
    },
  };
}

/** Replays `count` mutations (from `seed`) against both servers, in slices the IDs can tell apart. */
export async function compareMalformed(s: Servers, count: number, seed: number): Promise<MalformedReport> {
  const r = rng(seed);
  const kinds: Mutation[] = [];
  const packets = Array.from({ length: count }, () => {
    const kind = r.pick(MUTATIONS);
    kinds.push(kind);
    return mutate(r, ZONE, kind);
  });
  return { seed, ...(await compareClasses(s.bind.port, s.ns2.port, packets, kinds)) };
}

/**
 * Sends `packets` to BIND (`bindPort`) and ns2 over UDP and compares the classes of their replies.
 * `kinds` names each packet's kind in the disagreements.
 */
export async function compareClasses(
  bindPort: number,
  ns2Port: number,
  packets: readonly Buffer[],
  kinds: readonly string[],
): Promise<Omit<MalformedReport, 'seed'>> {
  const report: Omit<MalformedReport, 'seed'> = {
    count: packets.length,
    agreed: 0,
    dataWhereBindHasNone: 0,
    disagreements: [],
    byPair: {},
    bindClasses: {},
  };
  for (let done = 0; done < packets.length; ) {
    const slice = packets.slice(done, done + Math.min(MAX_REPLAY, 5000));
    const [bind, ours] = await Promise.all([replay(bindPort, slice), replay(ns2Port, slice)]);
    // A datagram lost on a loaded machine is not an answer: where one server was silent and the
    // other not, ask both again (slowly) before judging.
    for (let round = 0; round < 2; round++) {
      const again = [...bind.keys()].filter(
        (i) => bind[i] !== ours[i] && (bind[i] === 'silence' || ours[i] === 'silence'),
      );
      if (again.length === 0) break;
      const subset = again.map((i) => slice[i]);
      const [b2, o2] = await Promise.all([
        replay(bindPort, subset, 1500, 1),
        replay(ns2Port, subset, 1500, 1),
      ]);
      again.forEach((i, k) => {
        bind[i] = b2[k];
        ours[i] = o2[k];
      });
    }
    for (let i = 0; i < slice.length; i++) {
      report.bindClasses[bind[i]] = (report.bindClasses[bind[i]] ?? 0) + 1;
      if (bind[i] === ours[i]) {
        report.agreed++;
        continue;
      }
      if (hasData(ours[i]) && !hasData(bind[i])) report.dataWhereBindHasNone++;
      const pair = `${bind[i]} → ${ours[i]}`;
      report.byPair[pair] = (report.byPair[pair] ?? 0) + 1;
      report.disagreements.push({
        kind: kinds[done + i],
        bind: bind[i],
        ns2: ours[i],
        packet: slice[i].toString('hex'),
      });
    }
    done += slice.length;
  }
  return report;
}

/** Why the run failed (empty: passed). */
export function verdict(rep: MalformedReport): string[] {
  const out: string[] = [];
  if (rep.agreed < rep.count * 0.99)
    out.push(`agreement ${((100 * rep.agreed) / rep.count).toFixed(2)} % < 99 %`);
  if (rep.dataWhereBindHasNone > 0)
    out.push(`${rep.dataWhereBindHasNone} replies with data where BIND gave none`);
  return out;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  const servers = await startServers();
  let failed: string[] = [];
  try {
    const rep = await compareMalformed(servers, arg('count', 30_000), arg('seed', Date.now() % 1_000_000));
    const show = arg('show', 3);
    const examples: Record<string, string[]> = {};
    for (const d of rep.disagreements) {
      const k = `${d.kind}: ${d.bind} → ${d.ns2}`;
      examples[k] ??= [];
      if (examples[k].length < show) examples[k].push(d.packet);
    }
    console.log(
      JSON.stringify(
        {
          seed: rep.seed,
          count: rep.count,
          agreed: rep.agreed,
          agreementPct: (100 * rep.agreed) / rep.count,
          dataWhereBindHasNone: rep.dataWhereBindHasNone,
          byPair: rep.byPair,
          bindClasses: rep.bindClasses,
          examples,
        },
        null,
        2,
      ),
    );
    failed = verdict(rep);
    const errors = servers.ns2.logLines().filter((l) => (l.level as number) >= 50);
    if (errors.length > 0)
      failed.push(`ns2 logged ${errors.length} errors: ${JSON.stringify(errors.slice(0, 3))}`);
  } finally {
    await servers.stop();
  }
  for (const f of failed) console.error(f);
  process.exit(failed.length === 0 ? 0 : 1);
}
