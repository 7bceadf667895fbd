/**
 * Query dispatch: bytes in, bytes out (or nothing). Transport-independent, so UDP, TCP and the
 * tests share it. Nothing a client sends may throw out of here.
 */

import { AnswerCache } from '../answer/answer-cache.js';
import { minimalBits } from '../answer/minimal.js';
import { nameHash, RRL_KIND, responseHash, responseKind } from '../answer/rrl.js';
import { EDE, type EdnsOption, nsidPayload, OPTION, u32 } from '../dns/edns.js';
import { FLAG_AD, FLAG_RD, OPCODE, RCODE } from '../dns/message.js';
import { equalNames, nameToText, toLower } from '../dns/name.js';
import { CLASS, TYPE } from '../dns/types.js';
import type { Logger } from '../log.js';
import { Cookies } from './cookies.js';
import { lookup } from './lookup.js';
import { parseQuery, type Query } from './query.js';
import { QueryCounters, TCP, UDP } from './query-counters.js';
import { encodeResponse, type ResponseSpec } from './response.js';
import type { ZoneEntry, ZoneTable } from './zone-table.js';

export type Transport = 'udp' | 'tcp';

/** A serving worker's answer for what only the main thread can answer (NOTIFY, transfers, …). */
export const FORWARD: unique symbol = Symbol('forward to the main thread');
export type Handled = Buffer | undefined | typeof FORWARD;

/** The peer's address, or a function giving it (formatted only when needed). */
export type Peer = string | (() => string);
const peerText = (p: Peer): string => (typeof p === 'function' ? p() : p);

export interface HandlerOptions {
  /** Our EDNS UDP payload size (RFC 6891 §6.2.5); 1232 avoids IP fragmentation (DNS flag day 2020). */
  udpSize: number;
  /** Called for an accepted NOTIFY: schedule a check of the zone now. */
  onNotify?: (zone: string, serial?: number) => void;
  now?: () => number;
  /** Server cookie secret (16 bytes); random per process when not given. */
  cookieSecret?: Buffer;
  /** CHAOS identity answers (config `identity`); none when absent. */
  identity?: { version?: string; hostname?: string; nsid?: string };
  /**
   * A serving worker: NOTIFY, zone transfer requests and zones without an image here are not
   * answered but handed back as FORWARD (the main thread answers them).
   */
  forward?: boolean;
  /** Bytes of encoded answers kept (answer/answer-cache.ts); 0 turns the cache off. */
  cacheBytes?: number;
  /** Response rate limiting is on: say how each reply counts (`rrlKind`, `rrlName`). */
  rateLimit?: boolean;
  /** Where replies are counted (a serving worker's shared buffer); this handler's own when absent. */
  counters?: QueryCounters;
  /** Called for each NOTIFY answered: the zone (ours, else "") and the outcome (metrics). */
  onNotifyResult?: (zone: string, result: NotifyResult) => void;
}

/** What became of a NOTIFY (RFC 1996 §3.7): accepted, from a source not allowed, or not our zone. */
export type NotifyResult = 'accepted' | 'refused' | 'notauth';

/** Answer cache size when not given (tests). */
const CACHE_BYTES = 16 * 1024 * 1024;

const TCP_LIMIT = 65535;
const WILDCARD = Buffer.from([1, 0x2a]);
const PLAIN_UDP_LIMIT = 512;

export class QueryHandler {
  private readonly now: () => number;
  private readonly cookies: Cookies;
  private readonly cache: AnswerCache;
  private readonly cacheOn: boolean;
  /** Replies by transport, rcode and qtype (ns2_queries_total, ns2_query_types_total). */
  readonly counters: QueryCounters;
  /** The NSID option payload (config `identity.nsid`), or undefined: none sent. */
  private readonly nsid: Buffer | undefined;
  /** The zone the answer being built came from, and whether it took more than one zone. */
  private answeredFrom: ZoneEntry | undefined;
  private spansZones = false;
  /** RRL kind and bucket name of the last reply `handle` made (answer/rrl.ts). */
  private kind = 0;
  private bucket = 0;
  private readonly classify: boolean;

  constructor(
    private readonly zones: ZoneTable,
    private readonly opts: HandlerOptions,
    private readonly log: Logger,
  ) {
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
    this.cookies = new Cookies(opts.cookieSecret, this.now);
    this.cache = new AnswerCache(opts.cacheBytes ?? CACHE_BYTES, opts.udpSize);
    this.cacheOn = opts.cacheBytes !== 0;
    this.nsid = opts.identity?.nsid === undefined ? undefined : nsidPayload(opts.identity.nsid);
    this.classify = opts.rateLimit === true;
    this.counters = opts.counters ?? new QueryCounters();
  }

  /** How the last reply counts for rate limiting: from the cache (`fromCache` hit) or `handle`. */
  rrlKind(hit: boolean): number {
    return hit ? this.cache.hitKind : this.kind;
  }

  rrlName(hit: boolean): number {
    return hit ? this.cache.hitName : this.bucket;
  }

  /**
   * The fast path for UDP: answers `data[off, off+len)` from the answer cache straight into
   * `out` at `outOff`. Returns the reply length, 0 when it is not a hit (call `handle`).
   * Signed requests never hit: a TSIG record makes a query uncacheable.
   */
  fromCache(data: Buffer, off: number, len: number, out: Buffer, outOff: number): number {
    if (!this.cacheOn || !this.cache.probe(data, off, len, false)) return 0;
    const hit = this.cache.lookup(this.zones.generation);
    if (!hit) return 0;
    // Cached replies are never BADVERS (the probe takes EDNS version 0 only): the rcode is all in
    // the header. The qtype is the last 4 octets of the question but the class.
    const q = off + 8 + this.cache.questionLen;
    this.counters.cachedUdp(hit[3] & 0xf, (data[q] << 8) | data[q + 1]);
    return AnswerCache.patch(hit, data, off, this.cache.questionLen, out, outOff);
  }

  /** Answers kept in the cache now. */
  get cached(): number {
    return this.cache.size;
  }

  /** `signed`: the request carried a valid TSIG (serve/tsig-gate.ts); the caller signs the reply. */
  handle(
    msg: Buffer,
    transport: Transport,
    peer: Peer = '',
    signed?: { key: string; reserve: number },
  ): Handled {
    const cacheable = !signed && this.cacheOn && this.cache.probe(msg, 0, msg.length, transport === 'tcp');
    const generation = this.zones.generation;
    const via = transport === 'tcp' ? TCP : UDP;
    if (cacheable) {
      const hit = this.cache.lookup(generation);
      if (hit) {
        this.kind = this.cache.hitKind;
        this.bucket = this.cache.hitName;
        const reply = Buffer.allocUnsafe(hit.length);
        AnswerCache.patch(hit, msg, 0, this.cache.questionLen, reply, 0);
        const q = 8 + this.cache.questionLen;
        this.counters.answered(via, hit[3] & 0xf, (msg[q] << 8) | msg[q + 1]);
        return reply;
      }
    }
    const parsed = parseQuery(msg, RCODE.FORMERR, RCODE.NOTIMP);
    if (parsed.kind === 'drop') return undefined;
    // Errors count together per client prefix (BIND); a lookup refines this.
    this.kind = RRL_KIND.ERROR;
    this.bucket = 0;
    if (parsed.kind === 'error') {
      this.counters.answeredWithoutQuestion(via, parsed.rcode);
      const opcode = (parsed.flags >> 11) & 0xf;
      return encodeResponse(
        {
          id: parsed.id,
          queryFlags: replyFlags(opcode, parsed.flags),
          opcode,
          rcode: parsed.rcode,
          aa: false,
          // BIND answers NOTIMP with an empty question section.
          question:
            parsed.questionWire && parsed.rcode !== RCODE.NOTIMP
              ? splitQuestion(parsed.questionWire)
              : undefined,
          edns: parsed.edns
            ? {
                dnssecOk: parsed.edns.dnssecOk,
                udpSize: this.opts.udpSize,
                options: this.cookieOnly(parsed, peer),
              }
            : undefined,
        },
        PLAIN_UDP_LIMIT,
      );
    }
    const q = parsed.query;
    if (this.opts.forward && q.opcode === OPCODE.NOTIFY) return FORWARD;
    const limit =
      transport === 'tcp'
        ? TCP_LIMIT
        : q.edns
          ? Math.max(PLAIN_UDP_LIMIT, Math.min(q.edns.udpSize, this.opts.udpSize))
          : PLAIN_UDP_LIMIT;
    const cookie = q.edns?.options.find((o) => o.code === OPTION.COOKIE);
    const checked = cookie ? this.cookies.check(cookie.data, peerText(peer)) : undefined;
    if (q.opcode === OPCODE.NOTIFY) this.kind = RRL_KIND.NONE;
    this.answeredFrom = undefined;
    this.spansZones = false;
    let spec: ResponseSpec | typeof FORWARD;
    try {
      if (checked?.kind === 'malformed') spec = this.base(q, RCODE.FORMERR);
      else if (q.opcode === OPCODE.NOTIFY) spec = this.notify(q, peerText(peer), signed?.key);
      else if (q.opcode === OPCODE.UPDATE) spec = this.update(q);
      else spec = this.answer(q, transport);
    } catch (e) {
      this.log.error({ err: e }, 'query failed');
      spec = this.base(q, RCODE.SERVFAIL);
    }
    if (spec === FORWARD) return FORWARD;
    // BIND does not rate-limit a client that returned our server cookie: its address is real.
    if (checked?.kind === 'valid') this.kind = RRL_KIND.NONE;
    // RFC 7873 §5.2: every reply to a query with a (well-formed) client cookie carries ours.
    if (cookie && checked && checked.kind !== 'malformed' && spec.edns) {
      const data = this.cookies.reply(checked, cookie.data, peerText(peer));
      spec.edns.options = [...(spec.edns.options ?? []), { code: OPTION.COOKIE, data }];
    }
    if (signed) spec.signed = true;
    // RFC 5001 §2.2: NSID only to a client that asked (an empty NSID option). Such a query has an
    // option, so it never comes from or goes into the answer cache (answer/answer-cache.ts).
    if (this.nsid && spec.edns && q.edns?.options.some((o) => o.code === OPTION.NSID))
      spec.edns.options = [{ code: OPTION.NSID, data: this.nsid }, ...(spec.edns.options ?? [])];
    // RFC 7871 §7.2.1: ECS is not used for our answers; like BIND, the option comes back with
    // SCOPE PREFIX-LENGTH 0 (the query's scope, already checked to be 0), valid for every client.
    const ecs = q.edns?.options.find((o) => o.code === OPTION.ECS);
    if (ecs && spec.edns) spec.edns.options = [...(spec.edns.options ?? []), ecs];
    if (spec.edns?.options && spec.edns.options.length > 1) spec.edns.options.sort(byBindOrder);
    const reply = encodeResponse(spec, limit - (signed?.reserve ?? 0));
    this.counters.answered(via, spec.rcode, q.qtype);
    if (cacheable && spec.rcode !== RCODE.SERVFAIL)
      this.cache.store(reply, this.answeredFrom, this.spansZones, generation, this.kind, this.bucket);
    return reply;
  }

  /** RFC 7873 §5.4: the reply to a cookie-only query (parsed as NOERROR) carries our cookie. */
  private cookieOnly(
    parsed: { rcode: number; edns?: { options: EdnsOption[] } },
    peer: Peer,
  ): EdnsOption[] | undefined {
    const cookie =
      parsed.rcode === RCODE.NOERROR ? parsed.edns?.options.find((o) => o.code === OPTION.COOKIE) : undefined;
    if (!cookie) return undefined;
    const checked = this.cookies.check(cookie.data, peerText(peer));
    return checked.kind === 'malformed'
      ? undefined
      : [{ code: OPTION.COOKIE, data: this.cookies.reply(checked, cookie.data, peerText(peer)) }];
  }

  /** One shape for every reply spec (sections filled in by the caller), so V8 keeps it monomorphic. */
  private base(q: Query, rcode: number, options?: EdnsOption[]): ResponseSpec {
    return {
      id: q.id,
      queryFlags: replyFlags(q.opcode, q.flags),
      opcode: q.opcode,
      rcode,
      aa: false,
      question: { name: q.qname, type: q.qtype, class: q.qclass },
      answer: undefined,
      authority: undefined,
      additional: undefined,
      adUntilWritten: undefined,
      signed: undefined,
      edns: q.edns ? { dnssecOk: q.edns.dnssecOk, udpSize: this.opts.udpSize, options } : undefined,
    };
  }

  private answer(q: Query, transport: Transport): ResponseSpec | typeof FORWARD {
    // Only IN (our zones) and CH (identity) have data here; BIND, with no view for HS or the
    // rest, refuses them before it looks at the type.
    if (q.qclass !== CLASS.IN && q.qclass !== CLASS.CH) return this.base(q, RCODE.REFUSED);
    // OPT is a pseudo-RR, never a question (RFC 6891 §6.1.1).
    if (q.qtype === TYPE.OPT) return this.base(q, RCODE.FORMERR);
    // Meta QTYPEs (RFC 6895 §3.1), before any zone is looked at, as BIND: transfers go to xfrout
    // (serve/xfrout.ts answers them before the handler; one reaching here is refused), MAILA and
    // MAILB (RFC 1035 §3.2.3, obsolete) are not implemented, TSIG, TKEY and the rest are no question.
    if (q.qtype >= 128 && q.qtype < TYPE.ANY) {
      if (q.qtype === TYPE.AXFR || q.qtype === TYPE.IXFR)
        return this.opts.forward ? FORWARD : this.base(q, RCODE.REFUSED);
      return this.base(q, q.qtype === TYPE.MAILA || q.qtype === TYPE.MAILB ? RCODE.NOTIMP : RCODE.FORMERR);
    }
    if (q.qclass === CLASS.CH) return this.chaos(q);
    const entry = this.zones.match(q.qname);
    if (!entry?.answers) return this.base(q, RCODE.REFUSED);
    if (this.opts.forward && entry.state === 'ok' && !this.zones.answerable(entry)) return FORWARD;
    this.answeredFrom = entry;
    if (entry.state !== 'ok') {
      // A secondary with no usable copy answers SERVFAIL, as BIND does; RFC 8914 says why.
      const code = entry.state === 'expired' ? EDE.INVALID_DATA : EDE.NOT_READY;
      const text = entry.state === 'expired' ? 'zone expired' : 'zone not loaded yet';
      return this.base(q, RCODE.SERVFAIL, [
        { code: OPTION.EDE, data: Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(text)]) },
      ]);
    }
    const minimal = minimalBits(
      entry.policy,
      (q.flags & FLAG_RD) !== 0,
      q.qtype,
      transport === 'tcp',
      // BIND caps the client's size at its own (max-udp-size) before its 512-octet rule.
      q.edns ? Math.min(q.edns.udpSize, this.opts.udpSize) : undefined,
    );
    // Owners are written as stored (lower case), like BIND's; only the question keeps the case sent.
    const res = this.zones.read(() =>
      lookup(this.zones, toLower(q.qname), q.qtype, {
        minimal,
        dnssecOk: q.edns?.dnssecOk === true,
        asSent: q.qname,
      }),
    );
    for (const set of res.answer)
      if (set.type === TYPE.CNAME || set.type === TYPE.DNAME) this.spansZones = true;
    if (this.classify) this.countAs(q, entry, res);
    const spec = this.base(
      q,
      res.rcode,
      res.rcode === RCODE.SERVFAIL ? CHAIN_TOO_LONG : this.expireOption(q, entry),
    );
    spec.aa = res.aa;
    spec.adUntilWritten = (q.flags & FLAG_AD) !== 0 || q.edns?.dnssecOk === true;
    spec.answer = res.answer;
    spec.authority = res.authority;
    spec.additional = res.additional;
    return spec;
  }

  /**
   * The RRL bucket of a lookup's answer, as BIND keys it: a positive answer by qname, qtype and
   * class (a wildcard's by `*.<zone>`); NODATA by qname and class; a referral by the delegation
   * point; NXDOMAIN by the zone.
   */
  private countAs(q: Query, entry: ZoneEntry, res: ReturnType<typeof lookup>): void {
    const cut =
      res.answer.length === 0 && !res.aa ? res.authority.find((s) => s.type === TYPE.NS) : undefined;
    const kind = responseKind(res.rcode, res.answer.length, res.aa, cut !== undefined);
    this.kind = kind;
    const named = (wire: Buffer) => nameHash(wire, 0, wire.length);
    if (kind === RRL_KIND.NXDOMAIN) this.bucket = named(entry.view.apex);
    // BIND puts every wildcard answer of a zone in one bucket, `*.<zone>`: random names under a
    // wildcard would otherwise each get a fresh bucket.
    else if (kind === RRL_KIND.RESPONSE)
      this.bucket = responseHash(
        res.wildcard ? named(Buffer.concat([WILDCARD, entry.view.apex])) : named(q.qname),
        q.qtype,
        q.qclass,
      );
    else if (kind === RRL_KIND.REFERRAL && cut) this.bucket = responseHash(named(cut.owner), 0, q.qclass);
    else if (kind === RRL_KIND.NODATA) this.bucket = responseHash(named(q.qname), 0, q.qclass);
    else this.bucket = 0;
  }

  /**
   * CHAOS identity (version.bind, version.server, hostname.bind, id.server, RFC 4892): answered
   * only with what the config's `identity` says; otherwise REFUSED, so no version leaks.
   */
  private chaos(q: Query): ResponseSpec {
    const name = nameToText(q.qname, false).toLowerCase();
    const id = this.opts.identity;
    const text =
      name === 'version.bind' || name === 'version.server'
        ? id?.version
        : name === 'hostname.bind' || name === 'id.server'
          ? id?.hostname
          : undefined;
    if (text === undefined || (q.qtype !== TYPE.TXT && q.qtype !== TYPE.ANY))
      return this.base(q, RCODE.REFUSED);
    if (this.classify) {
      this.kind = RRL_KIND.RESPONSE;
      this.bucket = responseHash(nameHash(q.qname, 0, q.qname.length), q.qtype, q.qclass);
    }
    const bytes = Buffer.from(text, 'utf8').subarray(0, 255);
    const rdata = Buffer.concat([Buffer.from([bytes.length]), bytes]);
    return {
      ...this.base(q, RCODE.NOERROR),
      aa: true,
      answer: [{ owner: q.qname, type: TYPE.TXT, ttl: 0, rdatas: [rdata], klass: CLASS.CH }],
    };
  }

  /** RFC 7314 §3: an SOA query with EXPIRE for a zone apex learns our remaining expire time. */
  private expireOption(q: Query, entry: ZoneEntry): EdnsOption[] | undefined {
    if (!q.edns?.options.some((o) => o.code === OPTION.EXPIRE)) return undefined;
    if (q.qtype !== TYPE.SOA || !equalNames(q.qname, entry.view.apex) || entry.expiresAt === null)
      return undefined;
    return [{ code: OPTION.EXPIRE, data: u32(Math.max(0, entry.expiresAt - this.now())) }];
  }

  /**
   * RFC 2136 §3.1: an UPDATE names its zone in the zone section (one SOA "question"). A secondary
   * does not apply updates, and like BIND without allow-update-forwarding it refuses them for its
   * zones; for any other zone it is not authoritative.
   */
  private update(q: Query): ResponseSpec {
    if (q.qtype !== TYPE.SOA) return this.base(q, RCODE.FORMERR);
    if (q.qclass === CLASS.HS) return this.base(q, RCODE.REFUSED);
    const entry = q.qclass === CLASS.IN ? this.zones.match(q.qname) : undefined;
    const ours = entry !== undefined && equalNames(entry.view.apex, q.qname);
    return this.base(q, ours ? RCODE.REFUSED : RCODE.NOTAUTH);
  }

  /** RFC 1996 §3.7: acknowledge a NOTIFY for a zone we serve from an allowed source, then check. */
  private notify(q: Query, peer: string, key?: string): ResponseSpec {
    // RFC 1996 §3.7: the question names the zone's SOA; BIND answers FORMERR for anything else.
    if (q.qtype !== TYPE.SOA) return this.base(q, RCODE.FORMERR);
    const entry = this.zones.match(q.qname);
    if (!entry || !equalNames(entry.view.apex, q.qname)) {
      this.log.info({ zone: nameToText(q.qname, false), peer }, 'NOTIFY for a zone we do not serve');
      this.opts.onNotifyResult?.('', 'notauth');
      return this.base(q, RCODE.NOTAUTH);
    }
    if (!entry.allowNotify(peer, key)) {
      this.log.warn({ zone: entry.name, peer, key }, 'NOTIFY refused: not in allowNotify');
      this.opts.onNotifyResult?.(entry.name, 'refused');
      return this.base(q, RCODE.REFUSED);
    }
    this.log.info({ zone: entry.name, peer, key }, 'NOTIFY received');
    this.opts.onNotifyResult?.(entry.name, 'accepted');
    this.opts.onNotify?.(entry.name, q.soaSerial);
    return { ...this.base(q, RCODE.NOERROR), aa: true };
  }
}

/** RFC 8914 EDE 0 (Other) with BIND's text, for a CNAME loop or an over-long chain. */
const CHAIN_TOO_LONG: EdnsOption[] = [
  { code: OPTION.EDE, data: Buffer.concat([Buffer.from([0, 0]), Buffer.from('max. restarts reached')]) },
];

/** BIND's order of options in a reply's OPT (ns_client_addopt): NSID, COOKIE, EXPIRE, ECS, EDE. */
const OPTION_RANK = new Map<number, number>([
  [OPTION.NSID, 0],
  [OPTION.COOKIE, 1],
  [OPTION.EXPIRE, 2],
  [OPTION.ECS, 3],
  [OPTION.EDE, 4],
]);
const byBindOrder = (a: EdnsOption, b: EdnsOption) =>
  (OPTION_RANK.get(a.code) ?? 9) - (OPTION_RANK.get(b.code) ?? 9);

/**
 * The query flags a reply copies: RD and CD for QUERY (RFC 1035 §4.1.1, RFC 4035 §3.1.6); for any
 * other opcode none, as BIND's dns_message_reply() clears them (genreport's `opcodeflg` probe).
 */
function replyFlags(opcode: number, flags: number): number {
  return opcode === OPCODE.QUERY ? flags : 0;
}

function splitQuestion(wire: Buffer): { name: Buffer; type: number; class: number } {
  const n = wire.length - 4;
  return { name: wire.subarray(0, n), type: wire.readUInt16BE(n), class: wire.readUInt16BE(n + 2) };
}
