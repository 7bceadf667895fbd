/**
 * AXFR ingest through the store writer alone (no network, no BIND): generates a zone as ZoneRR
 * batches with the lib/zone.ts host pattern, streams it through a WorkerWriter
 * (beginIncoming / addIncoming / commitIncoming) into a temp database, and prints times, database
 * size and peak RSS. Then a re-transfer with 1% of the hosts changed (the diff path) and one with
 * every A record changed (most of the zone replaced).
 *
 *   node --import tsx bench/ingest.ts [--records 1000000] [--batch 2000] [--no-guards] [--keep]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { textToName } from '../src/dns/name.js';
import { TYPE } from '../src/dns/types.js';
import { WorkerWriter } from '../src/store/writer.js';
import { type ZoneRR, ZoneStore } from '../src/store/zone-store.js';
import { hasAAAA, hasCNAME, hasMX, hasTXT, prng } from './lib/zone.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const RECORDS = arg('records', 1_000_000);
const BATCH = arg('batch', 2000);
const KEEP = process.argv.includes('--keep');
const NO_GUARDS = process.argv.includes('--no-guards');
const ZONE = 'b1m.test';

const apex = textToName(ZONE);
const name = (label: string) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label), apex]);
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const txt = (...s: string[]) =>
  Buffer.concat(s.map((x) => Buffer.concat([Buffer.from([x.length]), Buffer.from(x)])));

function soa(serial: number): Buffer {
  return Buffer.concat([
    name('ns1'),
    name('hostmaster'),
    u32(serial),
    u32(3600),
    u32(600),
    u32(1209600),
    u32(300),
  ]);
}

/** The zone at `serial`; `variant(i)` perturbs host i's A address (0 = the base zone). */
function* zone(serial: number, variant: (i: number) => number): Generator<ZoneRR[]> {
  const rnd = prng(1);
  let batch: ZoneRR[] = [];
  let count = 0;
  const emit = (owner: Buffer, type: number, rdata: Buffer) => {
    if (count >= RECORDS) return;
    batch.push({ owner, type, ttl: 3600, rdata });
    count++;
  };
  emit(apex, TYPE.SOA, soa(serial));
  emit(apex, TYPE.NS, name('ns1'));
  emit(name('ns1'), TYPE.A, Buffer.from([192, 0, 2, 1]));
  for (let i = 0; count < RECORDS; i++) {
    const h = name(`h${i}`);
    const v = variant(i);
    emit(h, TYPE.A, Buffer.from([10 + v, (i >>> 16) & 255, (i >>> 8) & 255, i & 255]));
    if (hasAAAA(i)) {
      const b = Buffer.alloc(16);
      b.writeUInt32BE(0x20010db8, 0);
      b.writeUInt16BE((i >>> 16) & 0xffff, 4);
      b.writeUInt16BE(i & 0xffff, 14);
      emit(h, TYPE.AAAA, b);
    }
    if (hasMX(i)) emit(h, TYPE.MX, Buffer.concat([u16(10), name(`h${Math.floor(i / 2)}`)]));
    if (hasTXT(i)) {
      const key = Math.floor(rnd() * 2 ** 32)
        .toString(16)
        .padStart(8, '0');
      emit(h, TYPE.TXT, txt(`v=bench1 id=${i}`, `key=${key}`));
    }
    if (hasCNAME(i)) emit(name(`c${i}`), TYPE.CNAME, name(`h${Math.floor(rnd() * i)}`));
    if (batch.length >= BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-ingest-'));
const file = path.join(dir, 'ns2.db');
const mb = (n: number) => (n / 1e6).toFixed(1);
const size = () => {
  let total = 0;
  const parts: string[] = [];
  for (const f of fs.readdirSync(dir)) {
    const s = fs.statSync(path.join(dir, f)).size;
    total += s;
    parts.push(`${f} ${mb(s)}`);
  }
  return `${mb(total)} MB (${parts.join(', ')})`;
};
const rss = () => `${mb(process.resourceUsage().maxRSS * 1024)} MB`;
const sec = (t0: number) => ((performance.now() - t0) / 1000).toFixed(2);

// Generation alone, to subtract: the transfer client produces these RRs anyway.
{
  const t0 = performance.now();
  let n = 0;
  for (const b of zone(1, () => 0)) n += b.length;
  console.log(`generate ${n} RRs alone: ${sec(t0)} s`);
}

const writer = new WorkerWriter(file);

async function transfer(label: string, serial: number, variant: (i: number) => number) {
  const t0 = performance.now();
  const id = await writer.beginIncoming();
  for (const b of zone(serial, variant)) writer.addIncoming(id, b);
  const t1 = performance.now();
  // The daemon always passes the commit guards (refresher.ts guardsOf, default limits).
  const guards = NO_GUARDS ? undefined : { limits: { maxRecordsPerType: 100, maxTypesPerName: 100 } };
  const r = await writer.commitIncoming(id, ZONE, { serial, primary: 'bench', now: serial, guards });
  const t2 = performance.now();
  await writer.dropIncoming(id);
  console.log(
    `${label}: total ${sec(t0)} s (staging sent ${((t1 - t0) / 1000).toFixed(2)} s, commit returned after ${((t2 - t1) / 1000).toFixed(2)} s more)` +
      ` added ${r.added} removed ${r.removed} records ${r.records}; db ${size()}; peak RSS ${rss()}`,
  );
}

/** Waits until every RR has its presentation text (stores that fill it in after the commit). */
async function textDone(t0: number) {
  const reader = new ZoneStore(file);
  for (;;) {
    reader.invalidate();
    const row = reader.db
      .prepare(
        `SELECT (SELECT count(*) FROM records WHERE zone = ? AND rdata IS NULL)
              + (SELECT count(*) FROM change_records WHERE rdata IS NULL) AS n`,
      )
      .get(ZONE) as { n: number };
    if (row.n === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const sample = reader.db
    .prepare(`SELECT name, type, ttl, rdata FROM records WHERE zone = ? AND name = ?`)
    .all(ZONE, `h10.${ZONE}`);
  reader.close();
  console.log(
    `  presentation text complete ${sec(t0)} s after the commit started; sample ${JSON.stringify(sample)}`,
  );
}

let t = performance.now();
await transfer('first load', 1, () => 0);
await textDone(t);
console.log(`  after text: db ${size()}; peak RSS ${rss()}`);
t = performance.now();
await transfer('re-transfer, 1% of A changed', 2, (i) => (i % 100 === 7 ? 1 : 0));
await textDone(t);
t = performance.now();
await transfer('re-transfer, every A changed', 3, () => 2);
await textDone(t);
await writer.close();
console.log(`end: db ${size()}; peak RSS ${rss()}`);
if (KEEP) console.log(`kept ${dir}`);
else fs.rmSync(dir, { recursive: true, force: true });
