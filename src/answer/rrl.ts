/**
 * Response rate limiting with BIND 9's semantics (ARM "Response Rate Limiting", `rate-limit`),
 * so an operator's `rate-limit` block behaves the same on ns2. An authoritative server on a public
 * address is otherwise a reflector: spoofed queries make it send large answers to a victim.
 *
 * Accounting, as BIND's lib/dns/rrl.c does it: one token bucket per (client prefix, response
 * kind, name):
 *   - responses (NOERROR with data): per qname, qtype and qclass — identical answers count together;
 *   - NODATA and referrals: per name (the qname; the delegation point for a referral) and qclass;
 *   - NXDOMAIN: per zone (a random-subdomain flood is one bucket);
 *   - errors (REFUSED, FORMERR, SERVFAIL, …): one bucket per prefix;
 *   - optionally all responses to a prefix together (`allPerSecond`).
 * A bucket holds at most `rate` credits, earns `rate` per second, pays one per response, and may
 * go down to -window × rate: a client that keeps flooding stays limited until its average over
 * the window falls below the rate. Time is whole seconds, as in BIND. A response without credit
 * is dropped, except every `slip`-th one (the first of each run included) which is sent
 * truncated, TC=1 and no records, so a real client behind a spoofed prefix retries over TCP
 * (TCP is never limited). Errors are never slipped (BIND: some cannot be).
 *
 * Where the table lives: serving workers bind the same port with SO_REUSEPORT and the kernel
 * hashes each source port to a socket, so one client's queries land on every worker. A table per
 * worker would multiply the limit by the worker count; so there is one table, in a
 * SharedArrayBuffer every thread maps, each bucket group guarded by a lock (Atomics). It is
 * allocated whole at start (`maxTableSize` entries, 24 bytes each): a flood from spoofed sources
 * cannot grow it. Entries are grouped in sets of WAYS by hash; a new entry takes a free slot of
 * its set, else the least recently used one, preferring (as BIND does) one that is neither
 * limited nor logged.
 *
 * Logging is rate-limited as in BIND: one line when a bucket starts being limited, one every
 * 30 minutes while it stays so, and one when it stops (a minute after its last limited response,
 * with credit again), or early when its entry was reused for another bucket.
 *
 * This module is pure: no sockets, the clock comes in as `now` (whole seconds).
 */
import { formatIPv6, ipBytes } from '../ip-text.js';

/** How a response counts (BIND's dns_rrl_rtype_t). */
export const RRL_KIND = {
  /** Not rate limited (NOTIFY answers, replies built before a question was read). */
  NONE: 0,
  RESPONSE: 1,
  REFERRAL: 2,
  NODATA: 3,
  NXDOMAIN: 4,
  ERROR: 5,
  ALL: 6,
} as const;
export type RrlKind = (typeof RRL_KIND)[keyof typeof RRL_KIND];

export const RRL_VERDICT = { OK: 0, DROP: 1, SLIP: 2 } as const;
export type RrlVerdict = (typeof RRL_VERDICT)[keyof typeof RRL_VERDICT];

export interface RateLimitConfig {
  /** Per second and bucket; 0 = not limited. BIND's defaults: responses 0, the others = responses. */
  readonly responsesPerSecond: number;
  readonly referralsPerSecond: number;
  readonly nodataPerSecond: number;
  readonly nxdomainsPerSecond: number;
  readonly errorsPerSecond: number;
  /** All responses to a prefix together; 0 = off (BIND's default). */
  readonly allPerSecond: number;
  /** Seconds over which a client's rate is averaged (the bucket's debt limit), 1..3600. */
  readonly window: number;
  /** Every slip-th dropped response is sent truncated instead; 0 = never, 1 = always. 0..10. */
  readonly slip: number;
  readonly ipv4PrefixLength: number;
  readonly ipv6PrefixLength: number;
  /** IP addresses and CIDR prefixes never limited. */
  readonly exemptClients: readonly string[];
  /** Count and log, but answer everything. */
  readonly logOnly: boolean;
  /** Entries in the table (memory: 24 bytes each, allocated at start). */
  readonly maxTableSize: number;
}

/** BIND 9.18's defaults (ARM "rate-limit"); `responsesPerSecond` 0 leaves responses unlimited. */
export const RATE_LIMIT_DEFAULTS = Object.freeze({
  responsesPerSecond: 0,
  allPerSecond: 0,
  window: 15, // seconds
  slip: 2,
  ipv4PrefixLength: 24, // bits
  ipv6PrefixLength: 56, // bits
  exemptClients: [] as string[],
  logOnly: false,
  maxTableSize: 20_000, // entries
});

export interface RrlLogEvent {
  action: 'limit' | 'continue' | 'stop';
  /** The entry was reused for another bucket before the limit lapsed (BIND marks these `*`). */
  early?: boolean;
  logOnly: boolean;
  /** `192.0.2.0/24`, `2001:db8::/56`. */
  prefix: string;
  kind: 'responses' | 'referral' | 'NODATA' | 'NXDOMAIN' | 'error' | 'all';
  /** The query name of the response that started the limit. */
  qname?: string;
}

/** Gives the query name text when a log line needs it (a reusable object, not a closure per call). */
export interface QnameSource {
  qname(): string;
}

export interface RrlStats {
  /** Entries in use (at most maxTableSize). */
  entries: number;
  /** Responses dropped / sent truncated instead (not counted with logOnly). */
  dropped: number;
  slipped: number;
}

const KIND_TEXT = ['', 'responses', 'referral', 'NODATA', 'NXDOMAIN', 'error', 'all'] as const;

/** Entries per set; a set is scanned whole under its lock. */
const WAYS = 8;
/** Int32 words per entry: key (2), credit, last response time, slip count | logged bit, last log. */
const SLOT = 6;
const K1 = 0;
const K2 = 1;
const CREDIT = 2;
const TS = 3;
const FLAGS = 4;
const LOGGED_AT = 5;
const LOGGED = 0x100;
const SLIP_MASK = 0xff;
/** Header words: dropped, slipped, entries in use, the time base, set count. */
const H_DROPPED = 0;
const H_SLIPPED = 1;
const H_ENTRIES = 2;
const H_EPOCH = 3;
const H_SETS = 4;
const HEADER = 8;
/** BIND's DNS_RRL_MAX_LOG_SECS and DNS_RRL_STOP_LOG_SECS. */
const CONTINUE_LOG_SECS = 1800;
const STOP_LOG_SECS = 60;
/** An entry never used: older than any window. */
const FOREVER = 0x3fffffff;
/** Lock: spins before sleeping on it, and the longest wait before giving up (a dead holder). */
const SPINS = 100;
const LOCK_WAIT_MS = 200;

/** Bytes of shared memory for a table of `maxTableSize` entries. */
function tableBytes(maxTableSize: number): number {
  const sets = Math.max(1, Math.ceil(maxTableSize / WAYS));
  return (HEADER + sets + sets * WAYS * SLOT) * 4;
}

/** The shared table, made once by the main thread and handed to every serving worker. */
export function createRrlTable(cfg: RateLimitConfig, now: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(tableBytes(cfg.maxTableSize));
  const h = new Int32Array(sab, 0, HEADER);
  h[H_EPOCH] = now - 1;
  h[H_SETS] = Math.max(1, Math.ceil(cfg.maxTableSize / WAYS));
  return sab;
}

/** Reads the shared counters (any thread). */
export function rrlStats(sab: SharedArrayBuffer): RrlStats {
  const h = new Int32Array(sab, 0, HEADER);
  return {
    entries: Atomics.load(h, H_ENTRIES),
    dropped: Atomics.load(h, H_DROPPED) >>> 0,
    slipped: Atomics.load(h, H_SLIPPED) >>> 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Names and prefixes

/** FNV-1a over a wire name, lower-cased: the name part of a bucket's key (BIND hashes it too). */
export function nameHash(wire: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = off; i < off + len; i++) {
    const c = wire[i];
    h = Math.imul(h ^ (c >= 0x41 && c <= 0x5a ? c | 0x20 : c), 0x01000193);
  }
  return h >>> 0;
}

/** The name part of a RESPONSE bucket: the qname with qtype and qclass. */
export function responseHash(qnameHash: number, qtype: number, qclass: number): number {
  return mix(qnameHash ^ Math.imul((qtype << 16) | (qclass & 0xffff), 0x9e3779b1), 0x2545f491);
}

/** murmur3's finaliser over `h ^ k`. */
function mix(h: number, k: number): number {
  h ^= k;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function maskWords(bits: number, words: number): Int32Array {
  const m = new Int32Array(words);
  for (let i = 0; i < words; i++) {
    const b = Math.max(0, Math.min(32, bits - 32 * i));
    m[i] = b === 0 ? 0 : b === 32 ? -1 : ~((1 << (32 - b)) - 1);
  }
  return m;
}

const word = (b: Uint8Array, o: number) => (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d): a v4 client on a dual-stack socket. */
function v4Mapped(b: Uint8Array, o: number): boolean {
  for (let i = 0; i < 10; i++) if (b[o + i] !== 0) return false;
  return b[o + 10] === 0xff && b[o + 11] === 0xff;
}

interface Exempt {
  v6: boolean;
  words: Int32Array;
  mask: Int32Array;
}

function parseExempt(entry: string): Exempt {
  const [addr, bitsText] = entry.split('/');
  const bytes = ipBytes(addr);
  const v6 = bytes.length === 16;
  const n = v6 ? 4 : 1;
  const mask = maskWords(bitsText === undefined ? 32 * n : Number(bitsText), n);
  const words = new Int32Array(n);
  for (let i = 0; i < n; i++) words[i] = word(bytes, 4 * i) & mask[i];
  return { v6, words, mask };
}

/**
 * A set's lock, a futex-style mutex (0 free, 1 held, 2 held with waiters; Drepper, "Futexes Are
 * Tricky"): uncontended, one compareExchange to take and one sub to release. A waiter spins a
 * little, then sleeps (Atomics.wait): on a loaded machine the holder may be preempted, and a
 * spin-then-give-up lock would let responses through unaccounted. False only after LOCK_WAIT_MS
 * (the holder died: skip accounting this one response rather than hang).
 */
function lock(locks: Int32Array, set: number): boolean {
  let c = Atomics.compareExchange(locks, set, 0, 1);
  if (c === 0) return true;
  for (let spins = 0; spins < SPINS; spins++) {
    c = Atomics.compareExchange(locks, set, 0, 1);
    if (c === 0) return true;
  }
  const deadline = Date.now() + LOCK_WAIT_MS;
  if (c !== 2) c = Atomics.exchange(locks, set, 2);
  while (c !== 0) {
    if (Date.now() > deadline) return false;
    Atomics.wait(locks, set, 2, 10);
    c = Atomics.exchange(locks, set, 2);
  }
  return true;
}

function unlock(locks: Int32Array, set: number): void {
  if (Atomics.sub(locks, set, 1) !== 1) {
    Atomics.store(locks, set, 0);
    Atomics.notify(locks, set, 1);
  }
}

// ---------------------------------------------------------------------------------------------
// The limiter (one per thread, all over the same table)

/** What this thread logged as limited, to log the stop later. */
interface Logged {
  k1: number;
  k2: number;
  rate: number;
  event: RrlLogEvent;
}

export class RateLimiter {
  private readonly h: Int32Array;
  private readonly locks: Int32Array;
  private readonly slots: Int32Array;
  private readonly sets: number;
  private readonly epoch: number;
  private readonly rates: Int32Array;
  private readonly mask4: number;
  private readonly mask6: Int32Array;
  private readonly exempt: Exempt[];
  /** The client being checked: its address and its masked prefix (1 word for v4, 4 for v6). */
  private readonly addr = new Int32Array(4);
  private readonly ip = new Int32Array(4);
  private v6 = false;
  private readonly logged = new Map<number, Logged>();
  private maintainedAt = 0;

  constructor(
    private readonly cfg: RateLimitConfig,
    sab: SharedArrayBuffer,
    /** Where start/stop lines go (the caller's logger); called outside any lock. */
    private readonly log: (e: RrlLogEvent) => void = () => {},
    /**
     * false: this is the only thread using the table (one thread answers UDP), so no locks: an
     * Atomics operation costs several plain accesses.
     */
    private readonly shared = true,
  ) {
    this.h = new Int32Array(sab, 0, HEADER);
    this.sets = this.h[H_SETS];
    this.epoch = this.h[H_EPOCH];
    this.locks = new Int32Array(sab, HEADER * 4, this.sets);
    this.slots = new Int32Array(sab, (HEADER + this.sets) * 4, this.sets * WAYS * SLOT);
    this.rates = Int32Array.from([
      0,
      cfg.responsesPerSecond,
      cfg.referralsPerSecond,
      cfg.nodataPerSecond,
      cfg.nxdomainsPerSecond,
      cfg.errorsPerSecond,
      cfg.allPerSecond,
    ]);
    this.mask4 = maskWords(cfg.ipv4PrefixLength, 1)[0];
    this.mask6 = maskWords(cfg.ipv6PrefixLength, 4);
    this.exempt = cfg.exemptClients.map(parseExempt);
  }

  stats(): RrlStats {
    return rrlStats(this.h.buffer as SharedArrayBuffer);
  }

  /**
   * Whether to send the response of `kind` for bucket name `name` (nameHash / responseHash; 0 for
   * errors) to the client whose address is `addr[off, off+4)` or `[off, off+16)` (`v6`). `now` in
   * whole seconds. `qname` gives the query name text, asked only when a log line is written.
   * With logOnly the verdict is always OK (what would have happened is logged).
   */
  check(
    addr: Uint8Array,
    off: number,
    v6: boolean,
    kind: RrlKind,
    name: number,
    now: number,
    qname?: QnameSource,
  ): RrlVerdict {
    if (now !== this.maintainedAt) this.maintain(now);
    const rate = this.rates[kind];
    const all = this.rates[RRL_KIND.ALL];
    if ((rate === 0 && all === 0) || kind === RRL_KIND.NONE) return RRL_VERDICT.OK;
    this.setPrefix(addr, off, v6);
    if (this.exempt.length > 0 && this.isExempt()) return RRL_VERDICT.OK;
    const t = now - this.epoch;
    let verdict: RrlVerdict = RRL_VERDICT.OK;
    if (rate !== 0) verdict = this.debit(kind, name, rate, t, qname);
    if (all !== 0) {
      // BIND: the all-per-second bucket is debited too and its verdict wins when it limits.
      const v = this.debit(RRL_KIND.ALL, 0, all, t, qname);
      if (v !== RRL_VERDICT.OK) verdict = v;
    }
    // BIND never slips an error ("some error responses cannot be 'slipped'"), nor all-per-second.
    if (verdict === RRL_VERDICT.SLIP && kind === RRL_KIND.ERROR) verdict = RRL_VERDICT.DROP;
    if (verdict === RRL_VERDICT.OK || this.cfg.logOnly) return RRL_VERDICT.OK;
    const counter = verdict === RRL_VERDICT.DROP ? H_DROPPED : H_SLIPPED;
    if (this.shared) Atomics.add(this.h, counter, 1);
    else this.h[counter]++;
    return verdict;
  }

  private setPrefix(addr: Uint8Array, off: number, v6: boolean): void {
    if (v6 && v4Mapped(addr, off)) {
      v6 = false;
      off += 12;
    }
    this.v6 = v6;
    const ip = this.ip;
    const a = this.addr;
    if (!v6) {
      a[0] = word(addr, off);
      ip[0] = a[0] & this.mask4;
      ip[1] = ip[2] = ip[3] = 0;
    } else {
      for (let i = 0; i < 4; i++) {
        a[i] = word(addr, off + 4 * i);
        ip[i] = a[i] & this.mask6[i];
      }
    }
  }

  private isExempt(): boolean {
    for (const e of this.exempt) {
      if (e.v6 !== this.v6) continue;
      let hit = true;
      for (let i = 0; i < e.words.length && hit; i++) hit = (this.addr[i] & e.mask[i]) === e.words[i];
      if (hit) return true;
    }
    return false;
  }

  /** One bucket's accounting (BIND's debit_rrl_entry), under its set's lock. */
  private debit(kind: RrlKind, name: number, rate: number, t: number, qname?: QnameSource): RrlVerdict {
    const ip = this.ip;
    const seed = kind | (this.v6 ? 0x80 : 0);
    const k1 = mix(mix(mix(mix(mix(0x1b873593, seed), name), ip[0]), ip[1]), ip[2] ^ ip[3]);
    let k2 = mix(mix(mix(mix(mix(0x68e31da4, ip[3]), ip[2]), name), ip[1] ^ seed), ip[0]);
    if (k1 === 0 && k2 === 0) k2 = 1; // 0,0 marks a free slot
    const set = (k1 >>> 0) % this.sets;
    const locks = this.locks;
    if (this.shared && !lock(locks, set)) return RRL_VERDICT.OK;
    const s = this.slots;
    const base = set * WAYS * SLOT;
    let at = -1;
    for (let w = 0, p = base; w < WAYS; w++, p += SLOT) {
      if (s[p + K1] === k1 && s[p + K2] === k2) {
        at = p;
        break;
      }
    }
    if (at < 0) at = this.claim(base, t);
    if (s[at + K1] !== k1 || s[at + K2] !== k2) {
      s[at + K1] = k1;
      s[at + K2] = k2;
      s[at + TS] = 0;
      s[at + FLAGS] = 0;
    }
    // Credit what the elapsed whole seconds earned; a bucket idle for longer than the window
    // starts afresh; a clock going backwards earns nothing.
    const age = s[at + TS] === 0 ? FOREVER : t - s[at + TS];
    let credit = s[at + CREDIT];
    let flags = s[at + FLAGS];
    if (age > 0) {
      if (age > this.cfg.window) {
        credit = rate;
        flags &= ~SLIP_MASK;
      } else {
        credit += rate * age;
        if (credit > rate) {
          credit = rate;
          flags &= ~SLIP_MASK;
        }
      }
    }
    // Never back: threads read the clock at different moments (once per batch), and a time moved
    // back and forth across a second would earn that second's credit again each time.
    if (age > 0) s[at + TS] = t;
    let verdict: RrlVerdict = RRL_VERDICT.OK;
    credit--;
    if (credit < 0) {
      const min = -this.cfg.window * rate;
      if (credit < min) credit = min;
      verdict = RRL_VERDICT.DROP;
      const slip = this.cfg.slip;
      if (slip !== 0 && kind !== RRL_KIND.ALL) {
        // BIND: the first of a run slips, then every slip-th.
        let n = flags & SLIP_MASK;
        if (n++ === 0) verdict = RRL_VERDICT.SLIP;
        if (n >= slip) n = 0;
        flags = (flags & ~SLIP_MASK) | n;
      }
    }
    s[at + CREDIT] = credit;
    let log: RrlLogEvent['action'] | undefined;
    if (verdict !== RRL_VERDICT.OK) {
      if (!(flags & LOGGED)) log = 'limit';
      else if (t - s[at + LOGGED_AT] >= CONTINUE_LOG_SECS) log = 'continue';
      if (log) {
        flags |= LOGGED;
        s[at + LOGGED_AT] = t;
      }
    }
    s[at + FLAGS] = flags;
    if (this.shared) unlock(locks, set);
    if (log) {
      const event: RrlLogEvent = {
        action: log,
        logOnly: this.cfg.logOnly,
        prefix: this.prefixText(),
        kind: KIND_TEXT[kind] as RrlLogEvent['kind'],
        qname: kind === RRL_KIND.ERROR || kind === RRL_KIND.ALL ? undefined : qname?.qname(),
      };
      if (log === 'limit') this.logged.set(at, { k1, k2, rate, event });
      this.log(event);
    }
    return verdict;
  }

  /**
   * A slot for a new bucket in the set at `base` (lock held): a free one, else the least recently
   * used that is neither limited nor logged and idle over a second (BIND's choice), else the least
   * recently used, among those of one second the ones not limited first (BIND's LRU list knows
   * the order within a second; whole seconds alone would let a one-off source of this second
   * push out a client being limited).
   */
  private claim(base: number, t: number): number {
    const s = this.slots;
    let lru = -1;
    let lruScore = 0;
    let quiet = -1;
    for (let w = 0, p = base; w < WAYS; w++, p += SLOT) {
      if (s[p + K1] === 0 && s[p + K2] === 0) {
        if (this.shared) Atomics.add(this.h, H_ENTRIES, 1);
        else this.h[H_ENTRIES]++;
        return p;
      }
      const kept = s[p + CREDIT] <= 0 || (s[p + FLAGS] & LOGGED) !== 0;
      if (!kept && t - s[p + TS] > 1 && (quiet < 0 || s[p + TS] < s[quiet + TS])) quiet = p;
      const score = s[p + TS] * 2 + (kept ? 1 : 0);
      if (lru < 0 || score < lruScore) {
        lru = p;
        lruScore = score;
      }
    }
    return quiet >= 0 ? quiet : lru;
  }

  /**
   * Once a second: "stop limiting" for the buckets this thread saw start, once they have been
   * quiet for a minute with credit again (BIND's log_stops), or at once when their entry went to
   * another bucket.
   */
  private maintain(now: number): void {
    this.maintainedAt = now;
    if (this.logged.size === 0) return;
    const t = now - this.epoch;
    const s = this.slots;
    for (const [at, l] of this.logged) {
      const reused = s[at + K1] !== l.k1 || s[at + K2] !== l.k2;
      if (!reused) {
        const age = t - s[at + TS];
        const balance = Math.min(l.rate, s[at + CREDIT] + age * l.rate);
        if (age < STOP_LOG_SECS || balance < 0) continue;
        this.unmark(at, l);
      }
      this.logged.delete(at);
      this.log({ ...l.event, action: 'stop', early: reused, qname: l.event.qname });
    }
  }

  /** Clears the logged bit of the entry at `at` if it still holds `l`'s bucket. */
  private unmark(at: number, l: Logged): void {
    const set = Math.floor(at / (WAYS * SLOT));
    if (this.shared && !lock(this.locks, set)) return;
    const s = this.slots;
    if (s[at + K1] === l.k1 && s[at + K2] === l.k2) s[at + FLAGS] &= ~LOGGED;
    if (this.shared) unlock(this.locks, set);
  }

  private prefixText(): string {
    const ip = this.ip;
    if (!this.v6) {
      const a = ip[0];
      return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}/${this.cfg.ipv4PrefixLength}`;
    }
    const b = new Uint8Array(16);
    for (let i = 0; i < 4; i++) {
      b[4 * i] = ip[i] >>> 24;
      b[4 * i + 1] = (ip[i] >>> 16) & 0xff;
      b[4 * i + 2] = (ip[i] >>> 8) & 0xff;
      b[4 * i + 3] = ip[i] & 0xff;
    }
    return `${formatIPv6(b, 0)}/${this.cfg.ipv6PrefixLength}`;
  }
}

/** The RRL kind of a response (BIND's query_checkrrl / ns_client_error classification). */
export function responseKind(rcode: number, answers: number, aa: boolean, referral: boolean): RrlKind {
  if (rcode === 3) return RRL_KIND.NXDOMAIN;
  if (rcode !== 0) return RRL_KIND.ERROR;
  if (answers > 0) return RRL_KIND.RESPONSE;
  return referral && !aa ? RRL_KIND.REFERRAL : RRL_KIND.NODATA;
}
