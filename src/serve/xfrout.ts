/**
 * Outgoing zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995) of our zones to the clients the
 * zone's `allowTransfer` admits (an address, a prefix, or a valid TSIG key, each perhaps only
 * over TLS: serve/acl.ts); nobody by default. Over TLS (RFC 9103) the stream is the same as TCP.
 *
 *   not our apex ──► NOTAUTH          not loaded/expired ──► SERVFAIL
 *   not allowed ──► REFUSED (logged)  over UDP: AXFR ──► FORMERR, IXFR ──► our SOA alone (§2)
 *   IXFR, client up to date ──► our SOA alone
 *   IXFR, history reaches the client's serial ──► incremental, one version per `changes` row
 *   otherwise ──► the whole zone (AXFR-style for IXFR), as BIND does
 *
 * The zone is streamed from its own read-only SQLite connection inside one read transaction, so
 * the transfer is one consistent version (WAL snapshot) however long the client takes, and never
 * held in memory: rows come from an iterating statement and are packed into ≤ 64 KB messages with
 * name compression. Each message waits for the socket to drain and yields to the event loop, so
 * queries keep being answered during transfers.
 */
import type Database from 'better-sqlite3';
import { type Message, OPCODE, parseMessage, RCODE } from '../dns/message.js';
import { equalNames, fromLabels, nameKey, nameToText, ROOT, skipName } from '../dns/name.js';
import { isNewer } from '../dns/serial.js';
import { parseSoa } from '../dns/soa.js';
import { CLASS, TYPE } from '../dns/types.js';
import { MessageWriter } from '../dns/writer.js';
import type { Logger } from '../log.js';
import { parseQuery, type Query } from './query.js';
import { encodeResponse, type ResponseSpec } from './response.js';
import type { Signed } from './tsig-gate.js';
import type { ZoneEntry, ZoneTable } from './zone-table.js';

/** Where a TCP transfer's messages go; `send` resolves when the next one may be written. */
export interface XfrSink {
  send(msg: Buffer): Promise<void>;
}

export interface XfrOutOptions {
  /** A new read-only connection to the zone database (one per transfer); undefined: none (`:memory:`). */
  openReader?: () => Database.Database;
  /** Concurrent outgoing transfers (BIND's transfers-out default: 10). */
  maxTransfers?: number;
  /** Largest transfer message, bytes (RFC 5936 §2.2: up to 65535 over TCP). */
  messageSize?: number;
  /** Our EDNS UDP payload size, advertised in the OPT of replies to EDNS requests. */
  udpSize?: number;
  /** Called once per transfer request answered (metrics): zone ("" when not ours), kind, outcome. */
  onResult?: (zone: string, kind: 'axfr' | 'ixfr', result: TransferOutResult) => void;
}

/** What became of a transfer request: sent (in full or incrementally), nothing newer, or not served. */
export type TransferOutResult = 'transferred' | 'uptodate' | 'refused' | 'notauth' | 'failed';

const MAX_MESSAGE = 65535;
const UDP_SIZE = 1232;
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const COPIED_FLAGS = 0x0100 | 0x0010; // RD, CD
const OPT_LEN = 11;

type Transport = 'udp' | 'tcp' | 'tls';
type SoaRow = { ttl: number; rdata: Buffer };
type Version = { id: number; from: SoaRow; to: SoaRow };

/** A transfer request that passed the checks, ready to stream. */
interface Admitted {
  q: Query;
  entry: ZoneEntry;
  peer: string;
  signed?: Signed;
  transport: Transport;
  /** The client's serial, for IXFR. */
  clientSerial?: number;
}

export class XfrOut {
  private active = 0;

  constructor(
    private readonly zones: ZoneTable,
    private readonly opts: XfrOutOptions,
    private readonly log: Logger,
  ) {}

  /** UDP: the reply when `msg` is a transfer request, undefined when it is not one. */
  udp(msg: Buffer, peer: string, signed?: Signed): Buffer | undefined {
    const r = this.admit(msg, peer, signed, 'udp');
    if (!r || 'reply' in r) return r?.reply;
    if (r.q.qtype === TYPE.AXFR) return this.reply(r.q, RCODE.FORMERR, signed);
    // RFC 1995 §2: an IXFR over UDP that does not fit is answered with our SOA alone; BIND always
    // does so (with AA clear), leaving the client to come back over TCP when it is behind.
    const soa = this.currentSoa(r.entry);
    if (!soa) return this.reply(r.q, RCODE.SERVFAIL, signed);
    return this.reply(r.q, RCODE.NOERROR, signed, { aa: false, soa });
  }

  /**
   * TCP: the running transfer when `msg` is a transfer request, undefined when it is not one.
   * The promise rejects when the transfer broke off (the connection should then be closed).
   */
  tcp(msg: Buffer, peer: string, sink: XfrSink, signed?: Signed, tls = false): Promise<void> | undefined {
    const r = this.admit(msg, peer, signed, tls ? 'tls' : 'tcp');
    if (!r) return undefined;
    if ('reply' in r) return sink.send(r.reply);
    const max = this.opts.maxTransfers ?? 10;
    if (this.active >= max) {
      this.log.warn({ zone: r.entry.name, peer, max }, 'zone transfer refused: too many transfers out');
      this.count(r.entry.name, r.q.qtype, 'refused');
      return sink.send(this.reply(r.q, RCODE.REFUSED, signed));
    }
    this.active++;
    return this.stream(r, sink).then(
      (result) => {
        this.active--;
        this.count(r.entry.name, r.q.qtype, result);
      },
      (e: unknown) => {
        this.active--;
        this.count(r.entry.name, r.q.qtype, 'failed');
        throw e;
      },
    );
  }

  private count(zone: string, qtype: number, result: TransferOutResult): void {
    this.opts.onResult?.(zone, qtype === TYPE.AXFR ? 'axfr' : 'ixfr', result);
  }

  /** The checks every transfer request goes through, in BIND's order. */
  private admit(
    msg: Buffer,
    peer: string,
    signed: Signed | undefined,
    transport: Transport,
  ): { reply: Buffer } | Admitted | undefined {
    if (!isTransferQuestion(msg)) return undefined;
    const parsed = parseQuery(msg, RCODE.FORMERR, RCODE.NOTIMP);
    if (parsed.kind !== 'query') return undefined;
    const q = parsed.query;
    if (q.opcode !== OPCODE.QUERY || (q.qtype !== TYPE.AXFR && q.qtype !== TYPE.IXFR)) return undefined;
    const kind = q.qtype === TYPE.AXFR ? 'AXFR' : 'IXFR';
    const zoneText = nameToText(q.qname, false);
    // No data in classes other than IN and CH: refused before any zone is looked at, as BIND.
    if (q.qclass !== CLASS.IN && q.qclass !== CLASS.CH)
      return { reply: this.reply(q, RCODE.REFUSED, signed) };
    const entry = this.zones.match(q.qname);
    if (!entry || !equalNames(entry.view.apex, q.qname) || q.qclass !== CLASS.IN) {
      this.log.info(
        { zone: zoneText, peer, kind, transport },
        'zone transfer request for a zone we do not serve',
      );
      this.count('', q.qtype, 'notauth');
      return { reply: this.reply(q, RCODE.NOTAUTH, signed) };
    }
    const key = signed?.key;
    const tls = transport === 'tls';
    if (!entry.allowTransfer(peer, key, tls)) {
      // Say so when TLS would have been admitted (a `tls:` entry or `requireTls`).
      const why = !tls && entry.allowTransfer(peer, key, true) ? 'TLS required' : 'not in allowTransfer';
      this.log.warn({ zone: entry.name, peer, key, kind, transport }, `zone transfer refused: ${why}`);
      this.count(entry.name, q.qtype, 'refused');
      return { reply: this.reply(q, RCODE.REFUSED, signed) };
    }
    if (entry.state !== 'ok') {
      this.log.warn(
        { zone: entry.name, peer, kind, state: entry.state },
        'zone transfer refused: zone not loaded',
      );
      this.count(entry.name, q.qtype, 'failed');
      return { reply: this.reply(q, RCODE.SERVFAIL, signed) };
    }
    if (q.qtype === TYPE.AXFR) return { q, entry, peer, signed, transport };
    // RFC 1995 §3: the client's version is the SOA in the authority section.
    let m: Message;
    try {
      m = parseMessage(msg);
    } catch {
      return { reply: this.reply(q, RCODE.FORMERR, signed) };
    }
    const soa = m.authority.find((rr) => rr.type === TYPE.SOA && equalNames(rr.owner, entry.view.apex));
    if (!soa || m.authority.length !== 1 || soa.rdata.length < 22) {
      this.log.info({ zone: entry.name, peer }, 'IXFR request without the client SOA');
      return { reply: this.reply(q, RCODE.FORMERR, signed) };
    }
    return { q, entry, peer, signed, transport, clientSerial: parseSoa(soa.rdata).serial };
  }

  /** A one-message reply: an error, or our SOA alone. */
  private reply(q: Query, rcode: number, signed?: Signed, ok?: { aa: boolean; soa: SoaRow }): Buffer {
    const spec: ResponseSpec = {
      id: q.id,
      queryFlags: q.flags,
      opcode: q.opcode,
      rcode,
      aa: ok?.aa ?? false,
      question: { name: q.qname, type: q.qtype, class: q.qclass },
      answer: ok ? [{ owner: q.qname, type: TYPE.SOA, ttl: ok.soa.ttl, rdatas: [ok.soa.rdata] }] : [],
      edns: q.edns ? { dnssecOk: q.edns.dnssecOk, udpSize: this.opts.udpSize ?? UDP_SIZE } : undefined,
    };
    const msg = encodeResponse(spec, MAX_MESSAGE - (signed?.reserve ?? 0));
    return signed ? signed.sign(msg) : msg;
  }

  private currentSoa(entry: ZoneEntry): SoaRow | undefined {
    const set = entry.view.reader.node(nameKey(entry.view.apex)).get(TYPE.SOA);
    return set ? { ttl: set.ttl, rdata: set.rdatas[0] } : undefined;
  }

  /** Streams the transfer; resolves to its outcome, rejects when it broke off. */
  private async stream(r: Admitted, sink: XfrSink): Promise<TransferOutResult> {
    const { q, entry, signed } = r;
    const started = Date.now();
    const log = this.log.child({ zone: entry.name, peer: r.peer, key: signed?.key, transport: r.transport });
    const open = this.opts.openReader;
    if (!open) {
      log.error('zone transfer refused: transfers out need a database file, not :memory:');
      await sink.send(this.reply(q, RCODE.SERVFAIL, signed));
      return 'failed';
    }
    const db = open();
    const limit = (this.opts.messageSize ?? MAX_MESSAGE) - (signed?.reserve ?? 0);
    const packer = new Packer(q, limit, this.opts.udpSize ?? UDP_SIZE, (m) =>
      sink.send(signed ? signed.sign(m) : m),
    );
    let sent: { kind: string; serial: number } | undefined;
    try {
      // One read transaction: the SOA, the records and the history are one version (WAL snapshot).
      db.exec('BEGIN');
      sent = await this.send(db, r, packer, sink, log);
    } catch (e) {
      log.warn(
        { err: (e as Error).message, messages: packer.messages, records: packer.records },
        'zone transfer out failed',
      );
      // The client holds a partial stream: the caller closes the connection.
      throw e;
    } finally {
      // Ends the read transaction (iterators are closed by now) and releases the snapshot.
      db.close();
    }
    if (!sent) return 'failed';
    log.info(
      {
        kind: sent.kind,
        serial: sent.serial,
        serial_from: r.clientSerial,
        records: packer.records,
        messages: packer.messages,
        bytes: packer.bytes,
        ms: Date.now() - started,
      },
      'zone transferred out',
    );
    return sent.kind === 'uptodate' ? 'uptodate' : 'transferred';
  }

  /** Streams the answer from `db`; returns what was sent, or undefined for an error reply. */
  private async send(
    db: Database.Database,
    r: Admitted,
    packer: Packer,
    sink: XfrSink,
    log: Logger,
  ): Promise<{ kind: string; serial: number } | undefined> {
    const { q, entry, signed } = r;
    const apex = entry.view.apex;
    const soa = db
      .prepare('SELECT ttl, rdata_wire AS rdata FROM records WHERE zone = ? AND rtype = 6 AND nkey = ?')
      .get(entry.name, nameKey(apex)) as SoaRow | undefined;
    if (!soa) {
      log.warn('zone transfer refused: zone has no SOA');
      await sink.send(this.reply(q, RCODE.SERVFAIL, signed));
      return undefined;
    }
    const serial = parseSoa(soa.rdata).serial;
    let kind = 'axfr';
    if (r.clientSerial !== undefined) {
      if (!isNewer(serial, r.clientSerial)) {
        await sink.send(this.reply(q, RCODE.NOERROR, signed, { aa: true, soa }));
        return { kind: 'uptodate', serial };
      }
      const plan = ixfrPlan(db, entry.name, r.clientSerial, serial);
      if (typeof plan !== 'string') {
        await packer.add(apex, TYPE.SOA, soa.ttl, soa.rdata);
        await streamVersions(db, apex, plan, packer);
        await packer.add(apex, TYPE.SOA, soa.ttl, soa.rdata);
        await packer.flush();
        return { kind: 'ixfr', serial };
      }
      kind = 'axfr-style ixfr';
      log.info({ serial, serial_from: r.clientSerial, reason: plan }, 'IXFR answered AXFR-style');
    }
    await packer.add(apex, TYPE.SOA, soa.ttl, soa.rdata);
    // Index order (zone, nkey, …): each name's RRsets together, no sort in memory.
    const rows = db
      .prepare('SELECT nkey, rtype, ttl, rdata_wire FROM records WHERE zone = ? AND rtype != 6 ORDER BY nkey')
      .raw()
      .iterate(entry.name) as IterableIterator<[Buffer, number, number, Buffer]>;
    for (const [nkey, rtype, ttl, rdata] of rows) {
      const p = packer.add(nameFromKey(nkey), rtype, ttl, rdata);
      if (p) await p;
    }
    await packer.add(apex, TYPE.SOA, soa.ttl, soa.rdata);
    await packer.flush();
    return { kind, serial };
  }
}

/** A cheap look at the question type, so ordinary queries are parsed once, by the handler. */
function isTransferQuestion(msg: Buffer): boolean {
  if (msg.length < 17 || msg.readUInt16BE(4) !== 1) return false;
  try {
    const end = skipName(msg, 12);
    if (end + 2 > msg.length) return false;
    const type = msg.readUInt16BE(end);
    return type === TYPE.AXFR || type === TYPE.IXFR;
  } catch {
    return false;
  }
}

/**
 * The versions from the client's serial to ours, from `changes` (newest first, walked back), or
 * why there is no such chain. Each version needs its old and new SOA in change_records.
 */
function ixfrPlan(db: Database.Database, zone: string, from: number, to: number): Version[] | string {
  const rows = db
    .prepare('SELECT id, serial_from, serial_to, added, removed FROM changes WHERE zone = ? ORDER BY id DESC')
    .iterate(zone) as IterableIterator<{
    id: number;
    serial_from: number | null;
    serial_to: number;
    added: number;
    removed: number;
  }>;
  const chain: number[] = [];
  let expect = to;
  for (const row of rows) {
    if (row.serial_to !== expect) return `history broken at serial ${expect}`;
    if (row.serial_from === row.serial_to) {
      // A re-transfer of the same serial: harmless when it changed nothing.
      if (row.added + row.removed === 0) continue;
      return `zone changed at serial ${expect} without a serial change`;
    }
    if (row.serial_from === null) break;
    chain.push(row.id);
    expect = row.serial_from;
    if (expect === from) break;
  }
  if (expect !== from) return `history does not reach serial ${from}`;
  const soas = db.prepare(
    'SELECT op, ttl, rdata_wire AS rdata FROM change_records WHERE change_id = ? AND rtype = 6',
  );
  const versions: Version[] = [];
  for (const id of chain.reverse()) {
    const rs = soas.all(id) as (SoaRow & { op: string })[];
    const del = rs.filter((x) => x.op === 'del');
    const add = rs.filter((x) => x.op === 'add');
    if (del.length !== 1 || add.length !== 1) return `change ${id} lacks its SOA records`;
    versions.push({ id, from: del[0], to: add[0] });
  }
  return versions;
}

/** RFC 1995 §4: per version, old SOA, deletions, new SOA, additions. */
async function streamVersions(db: Database.Database, apex: Buffer, versions: Version[], packer: Packer) {
  const rrs = db
    .prepare(
      'SELECT nkey, rtype, ttl, rdata_wire FROM change_records WHERE change_id = ? AND op = ? AND rtype != 6 ORDER BY rowid',
    )
    .raw();
  for (const v of versions) {
    for (const [op, soa] of [
      ['del', v.from],
      ['add', v.to],
    ] as const) {
      await packer.add(apex, TYPE.SOA, soa.ttl, soa.rdata);
      for (const [nkey, rtype, ttl, rdata] of rrs.iterate(v.id, op) as IterableIterator<
        [Buffer, number, number, Buffer]
      >) {
        const p = packer.add(nameFromKey(nkey), rtype, ttl, rdata);
        if (p) await p;
      }
    }
  }
}

/** The wire name (lower case) of a store nameKey (root-first labels). */
function nameFromKey(nkey: Buffer): Buffer {
  const ls: Buffer[] = [];
  for (let pos = 0; pos < nkey.length; pos += 1 + nkey[pos])
    ls.push(nkey.subarray(pos + 1, pos + 1 + nkey[pos]));
  return ls.length ? fromLabels(ls.reverse()) : ROOT;
}

/**
 * Packs RRs into transfer messages: header, the question (repeated in every message, as BIND
 * does), as many RRs as fit, and an OPT when the request had one (RFC 6891 §7).
 */
class Packer {
  private w!: MessageWriter;
  private count = 0;
  messages = 0;
  records = 0;
  bytes = 0;

  constructor(
    private readonly q: Query,
    private readonly limit: number,
    private readonly udpSize: number,
    private readonly emit: (msg: Buffer) => Promise<void>,
  ) {
    this.begin();
  }

  private begin(): void {
    this.w = new MessageWriter(this.limit);
    this.w.off = 12;
    this.w.name(this.q.qname);
    this.w.u16(this.q.qtype);
    this.w.u16(this.q.qclass);
    this.count = 0;
  }

  /** Adds one RR; when the message is full it is sent first, and the returned promise waits for that. */
  add(owner: Buffer, type: number, ttl: number, rdata: Buffer): Promise<void> | undefined {
    // Uncompressed size is an upper bound: if that fits, the compressed RR fits.
    const worst = owner.length + 10 + rdata.length;
    const reserve = this.q.edns ? OPT_LEN : 0;
    let sent: Promise<void> | undefined;
    if (this.count > 0 && this.w.off + worst + reserve > this.limit) sent = this.flush();
    this.w.rr(owner, type, CLASS.IN, ttl, rdata);
    this.count++;
    this.records++;
    return sent;
  }

  /** Sends the message being built (if it holds any RR). */
  flush(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    const w = this.w;
    let ar = 0;
    if (this.q.edns) {
      w.name(ROOT, false);
      w.u16(TYPE.OPT);
      w.u16(this.udpSize);
      w.u32(this.q.edns.dnssecOk ? 0x8000 : 0);
      w.u16(0);
      ar = 1;
    }
    w.setU16(0, this.q.id);
    w.setU16(2, FLAG_QR | FLAG_AA | (this.q.flags & COPIED_FLAGS));
    w.setU16(4, 1);
    w.setU16(6, this.count);
    w.setU16(8, 0);
    w.setU16(10, ar);
    const msg = w.finish();
    this.messages++;
    this.bytes += msg.length;
    this.begin();
    return this.emit(msg);
  }
}
