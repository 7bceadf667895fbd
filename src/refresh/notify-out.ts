/**
 * NOTIFY out (RFC 1996): once a change is applied, tell our own secondaries so they check at once
 * instead of at their next refresh. Targets are the zone's `alsoNotify` peers and, with
 * `notify: "yes"`, the zone's NS hosts (not the SOA MNAME, not ourselves), on port 53.
 *
 * Each target gets the NOTIFY over UDP, retransmitted until it answers (§3.6), at most ATTEMPTS
 * times; a reply with an error rcode is final (retrying would not change it). With a key the
 * NOTIFY is TSIG-signed and the reply must verify.
 */
import dns from 'node:dns';
import type { Endpoint, TsigKey, ZoneConfig } from '../config.js';
import { FLAG_AA, FLAG_QR, OPCODE, opcodeOf } from '../dns/message.js';
import { equalNames, isSubdomain, nameKey, nameToText, readName, textToName } from '../dns/name.js';
import { rcodeText } from '../dns/rcode.js';
import { CLASS, TYPE } from '../dns/types.js';
import { MessageWriter } from '../dns/writer.js';
import type { Logger } from '../log.js';
import type { ZoneStore } from '../store/zone-store.js';
import { randomId, signQuery } from '../xfrin/query.js';
import { endpointText, udpExchange } from '../xfrin/transport.js';

export interface NotifyOutOptions {
  /** Transmissions per target (RFC 1996 §3.6 leaves the count to us; BIND tries 5 times). */
  attempts?: number;
  /** Wait for a reply, ms, before sending again. */
  timeoutMs?: number;
  /** Our own listen addresses: never NOTIFY ourselves. */
  self?: readonly Endpoint[];
  /** Called once per target with what became of its NOTIFY (metrics). */
  onResult?: (result: NotifySentResult) => void;
}

/** A target's answer: acknowledged, an error rcode, a reply failing TSIG, or none after every try. */
export type NotifySentResult = 'acknowledged' | 'refused' | 'badsig' | 'unanswered';

const ATTEMPTS = 5;
const TIMEOUT_MS = 2000;
const NS_PORT = 53;

export interface Target extends Endpoint {
  key?: TsigKey;
}

export class NotifySender {
  private readonly abort = new AbortController();

  constructor(
    private readonly store: ZoneStore,
    private readonly keys: ReadonlyMap<string, TsigKey>,
    private readonly log: Logger,
    private readonly opts: NotifyOutOptions = {},
  ) {}

  /** Notifies every target of `zone` at `serial`; resolves when all answered or were given up. */
  async notify(zone: ZoneConfig, serial: number): Promise<void> {
    if (zone.notify === 'no') return;
    const log = this.log.child({ zone: zone.name, serial });
    try {
      const soa = this.store.soaRecord(zone.name);
      if (!soa) return;
      const targets = await this.targets(zone, log);
      await Promise.all(targets.map((t) => this.send(zone.name, soa, t, log)));
    } catch (e) {
      log.error({ err: e }, 'NOTIFY out failed');
    }
  }

  /** Stops retransmissions and outstanding waits (daemon shutdown). */
  close(): void {
    this.abort.abort();
  }

  /** The peers a change of `zone` is announced to, deduplicated. */
  async targets(zone: ZoneConfig, log: Logger = this.log): Promise<Target[]> {
    const out = new Map<string, Target>();
    const add = (t: Target) => {
      const isSelf = this.opts.self?.some((s) => s.address === t.address && s.port === t.port);
      if (!isSelf && !out.has(endpointText(t))) out.set(endpointText(t), t);
    };
    for (const p of zone.alsoNotify) {
      add({ address: p.address, port: p.port, key: p.key === undefined ? undefined : this.keys.get(p.key) });
    }
    if (zone.notify === 'yes')
      for (const address of await this.nsAddresses(zone, log)) add({ address, port: NS_PORT });
    return [...out.values()];
  }

  /** Addresses of the apex NS names other than the SOA MNAME (RFC 1996 §3.3, as BIND does). */
  private async nsAddresses(zone: ZoneConfig, log: Logger): Promise<string[]> {
    const apex = textToName(zone.name);
    const reader = this.store.reader(zone.name);
    const node = reader.node(nameKey(apex));
    const soa = node.get(TYPE.SOA)?.rdatas[0];
    const mname = soa ? readName(soa, 0).name : undefined;
    const addresses: string[] = [];
    for (const ns of node.get(TYPE.NS)?.rdatas ?? []) {
      if (mname && equalNames(ns, mname)) continue;
      if (isSubdomain(ns, apex)) {
        // In-zone name server: its addresses are ours to read.
        const n = reader.node(nameKey(ns));
        for (const a of n.get(TYPE.A)?.rdatas ?? []) addresses.push([...a].join('.'));
        for (const a of n.get(TYPE.AAAA)?.rdatas ?? []) addresses.push(ipv6Text(a));
        continue;
      }
      try {
        const found = await dns.promises.lookup(nameToText(ns, false), { all: true });
        for (const f of found) addresses.push(f.address);
      } catch (e) {
        log.warn({ ns: nameToText(ns), err: (e as Error).message }, 'NOTIFY: cannot resolve NS host');
      }
    }
    return addresses;
  }

  private async send(
    zone: string,
    soa: { ttl: number; rdata: Buffer },
    t: Target,
    log: Logger,
  ): Promise<void> {
    const target = endpointText(t);
    const { msg, id } = buildNotify(textToName(zone), soa);
    const query = signQuery(msg, t.key);
    const attempts = this.opts.attempts ?? ATTEMPTS;
    const timeoutMs = this.opts.timeoutMs ?? TIMEOUT_MS;
    let lastError = '';
    for (let i = 1; i <= attempts && !this.abort.signal.aborted; i++) {
      const sent = Date.now();
      let reply: Buffer;
      try {
        reply = await udpExchange(t, query.msg, timeoutMs, this.abort.signal);
      } catch (e) {
        lastError = (e as Error).message;
        // An ICMP error comes back at once: wait out the interval before sending again.
        const rest = timeoutMs - (Date.now() - sent);
        if (rest > 0 && i < attempts) await sleep(rest, this.abort.signal);
        continue;
      }
      try {
        query.verifier()?.verify(reply);
      } catch (e) {
        log.warn(
          { target, key: t.key?.name, err: (e as Error).message },
          'NOTIFY reply failed TSIG verification',
        );
        this.opts.onResult?.('badsig');
        return;
      }
      const flags = reply.readUInt16BE(2);
      if (reply.readUInt16BE(0) !== id || !(flags & FLAG_QR) || opcodeOf(flags) !== OPCODE.NOTIFY) {
        lastError = 'reply is not a NOTIFY response';
        continue;
      }
      const rcode = flags & 0xf;
      if (rcode !== 0) {
        log.warn({ target, key: t.key?.name, rcode: rcodeText(rcode) }, 'NOTIFY refused by target');
        this.opts.onResult?.('refused');
        return;
      }
      log.info({ target, key: t.key?.name, attempts: i }, 'NOTIFY acknowledged');
      this.opts.onResult?.('acknowledged');
      return;
    }
    if (!this.abort.signal.aborted) {
      log.warn({ target, key: t.key?.name, attempts, err: lastError }, 'NOTIFY not acknowledged');
      this.opts.onResult?.('unanswered');
    }
  }
}

/** RFC 1996 §3.7: opcode NOTIFY, AA, the zone's SOA as question and (as a hint) in the answer. */
export function buildNotify(apex: Buffer, soa: { ttl: number; rdata: Buffer }): { id: number; msg: Buffer } {
  const id = randomId();
  const w = new MessageWriter(512 + soa.rdata.length);
  for (const v of [id, (OPCODE.NOTIFY << 11) | FLAG_AA, 1, 1, 0, 0]) w.u16(v);
  w.name(apex);
  w.u16(TYPE.SOA);
  w.u16(CLASS.IN);
  w.rr(apex, TYPE.SOA, CLASS.IN, soa.ttl, soa.rdata);
  return { id, msg: w.finish() };
}

function ipv6Text(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
