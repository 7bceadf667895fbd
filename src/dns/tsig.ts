/**
 * TSIG (RFC 8945): HMAC transaction signatures over raw message bytes, no I/O.
 *
 * What is digested (§4.3):
 *
 *   request                 message ‖ variables
 *   first reply message     len(request MAC) ‖ request MAC ‖ message ‖ variables
 *   later message (stream)  len(prior MAC) ‖ prior MAC ‖ unsigned messages since ‖ message ‖ timers
 *
 * where "message" is the message as sent minus its TSIG RR, with ARCOUNT one less and the ID set
 * back to the TSIG's Original ID; "variables" are key name, class ANY, TTL 0, algorithm name,
 * time signed, fudge, error, other len and other data (names in canonical, lower-case wire form);
 * "timers" are time signed and fudge only.
 *
 * A verifier checks in the RFC's order (§5.2): key (BADKEY), MAC (BADSIG), time (BADTIME),
 * truncation (BADTRUNC). Errors name the key, never the secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { equalNames, nameToText, readName, skipName, textToName, toLower, WireError } from './name.js';
import { rcodeText } from './rcode.js';
import { CLASS, TYPE } from './types.js';

export type TsigAlgorithm =
  | 'hmac-md5'
  | 'hmac-sha1'
  | 'hmac-sha224'
  | 'hmac-sha256'
  | 'hmac-sha384'
  | 'hmac-sha512';

/** The shape of config's TsigKey: `name` lower case without the trailing dot, `secret` decoded. */
export interface TsigKey {
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  readonly secret: Buffer;
}

/** TSIG error codes (RFC 8945 §3, the IANA "TSIG/TKEY RR error" registry). */
export const TSIG_ERROR = { BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;

/** RFC 8945 §10: 300 seconds is the recommended fudge. */
export const DEFAULT_FUDGE = 300;

/** §5.3.1: a client accepts up to 99 unsigned messages between two signed ones. */
export const MAX_UNSIGNED = 99;

const HEADER_LEN = 12;

/** Algorithm names on the wire (§6) and node:crypto digests. hmac-md5 keeps its RFC 2845 name. */
const ALGORITHMS: Record<TsigAlgorithm, { wire: Buffer; hash: string; size: number }> = {
  'hmac-md5': { wire: textToName('hmac-md5.sig-alg.reg.int'), hash: 'md5', size: 16 },
  'hmac-sha1': { wire: textToName('hmac-sha1'), hash: 'sha1', size: 20 },
  'hmac-sha224': { wire: textToName('hmac-sha224'), hash: 'sha224', size: 28 },
  'hmac-sha256': { wire: textToName('hmac-sha256'), hash: 'sha256', size: 32 },
  'hmac-sha384': { wire: textToName('hmac-sha384'), hash: 'sha384', size: 48 },
  'hmac-sha512': { wire: textToName('hmac-sha512'), hash: 'sha512', size: 64 },
};

export const TSIG_ALGORITHMS = Object.keys(ALGORITHMS) as TsigAlgorithm[];

export function tsigErrorText(code: number): string {
  for (const [k, v] of Object.entries(TSIG_ERROR)) if (v === code) return k;
  return code === 0 ? 'NOERROR' : `TSIG error ${code}`;
}

/** A failed TSIG check: `error` is the TSIG error to answer with (or undefined for FORMERR). */
export class TsigError extends Error {
  readonly code = 'NS2_ERR_TSIG';
  constructor(
    message: string,
    readonly error?: number,
  ) {
    super(message);
  }
}

/** The fields of a TSIG RR (§4.2). Names are lower-cased wire names. */
export interface TsigRecord {
  keyName: Buffer;
  algorithm: Buffer;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
}

export interface FoundTsig {
  tsig: TsigRecord;
  /** The message as it was before signing: TSIG RR removed, ARCOUNT - 1, ID = Original ID. */
  unsigned: Buffer;
}

// ---------------------------------------------------------------------------------------------
// Wire

/** Key name as it goes on the wire and into the digest: lower case, absolute. */
export const keyNameWire = (key: TsigKey): Buffer => toLower(textToName(key.name));

function u48(v: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(v, 0, 6);
  return b;
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

/**
 * Finds the TSIG RR. Undefined when the message has none; a TSIG anywhere but as the last
 * additional record, or one that does not parse, throws WireError (the caller answers FORMERR,
 * §5.1 and RFC 8945 §4.2: "MUST be the last record").
 */
export function findTsig(msg: Buffer): FoundTsig | undefined {
  if (msg.length < HEADER_LEN) throw new WireError('message shorter than a header');
  const qd = msg.readUInt16BE(4);
  const total = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  const arStart = msg.readUInt16BE(6) + msg.readUInt16BE(8);
  let off = HEADER_LEN;
  for (let i = 0; i < qd; i++) off = skipName(msg, off) + 4;
  for (let i = 0; i < total; i++) {
    const start = off;
    const afterName = skipName(msg, off);
    if (afterName + 10 > msg.length) throw new WireError('RR header runs past end of message');
    const type = msg.readUInt16BE(afterName);
    const rdlen = msg.readUInt16BE(afterName + 8);
    off = afterName + 10 + rdlen;
    if (off > msg.length) throw new WireError('rdata runs past end of message');
    if (type !== TYPE.TSIG) continue;
    if (i !== total - 1 || i < arStart) throw new WireError('TSIG is not the last additional record');
    if (off !== msg.length) throw new WireError('bytes after the TSIG record');
    if (msg.readUInt16BE(afterName + 2) !== CLASS.ANY || msg.readUInt32BE(afterName + 4) !== 0)
      throw new WireError('TSIG record must have class ANY and TTL 0');
    const tsig = parseTsigRdata(msg, afterName + 10, off, readName(msg, start).name);
    const unsigned = Buffer.from(msg.subarray(0, start));
    unsigned.writeUInt16BE(tsig.originalId, 0);
    unsigned.writeUInt16BE(msg.readUInt16BE(10) - 1, 10);
    return { tsig, unsigned };
  }
  return undefined;
}

function parseTsigRdata(msg: Buffer, off: number, end: number, owner: Buffer): TsigRecord {
  const alg = readName(msg, off);
  let pos = alg.end;
  const need = (n: number) => {
    if (pos + n > end) throw new WireError('TSIG rdata truncated');
  };
  need(10);
  const timeSigned = msg.readUIntBE(pos, 6);
  const fudge = msg.readUInt16BE(pos + 6);
  const macLen = msg.readUInt16BE(pos + 8);
  pos += 10;
  need(macLen);
  const mac = Buffer.from(msg.subarray(pos, pos + macLen));
  pos += macLen;
  need(6);
  const originalId = msg.readUInt16BE(pos);
  const error = msg.readUInt16BE(pos + 2);
  const otherLen = msg.readUInt16BE(pos + 4);
  pos += 6;
  need(otherLen);
  const other = Buffer.from(msg.subarray(pos, pos + otherLen));
  pos += otherLen;
  if (pos !== end) throw new WireError('TSIG rdata has trailing bytes');
  return {
    keyName: toLower(owner),
    algorithm: toLower(alg.name),
    timeSigned,
    fudge,
    mac,
    originalId,
    error,
    other,
  };
}

/** Appends `tsig` as the last additional RR of `msg` (ARCOUNT + 1). Names are not compressed. */
export function appendTsig(msg: Buffer, t: TsigRecord): Buffer {
  const rdata = Buffer.concat([
    t.algorithm,
    u48(t.timeSigned),
    u16(t.fudge),
    u16(t.mac.length),
    t.mac,
    u16(t.originalId),
    u16(t.error),
    u16(t.other.length),
    t.other,
  ]);
  const head = Buffer.alloc(10);
  head.writeUInt16BE(TYPE.TSIG, 0);
  head.writeUInt16BE(CLASS.ANY, 2);
  head.writeUInt32BE(0, 4);
  head.writeUInt16BE(rdata.length, 8);
  const out = Buffer.concat([msg, t.keyName, head, rdata]);
  out.writeUInt16BE(msg.readUInt16BE(10) + 1, 10);
  return out;
}

/** Bytes the TSIG RR adds to a message signed with `key` (to reserve room before signing). */
export function tsigSize(key: TsigKey, otherLen = 0): number {
  const a = ALGORITHMS[key.algorithm];
  return keyNameWire(key).length + 10 + a.wire.length + 16 + a.size + otherLen;
}

// ---------------------------------------------------------------------------------------------
// MAC

/** §4.3.3: the TSIG variables, or only the timers for later messages of a stream (§4.3.2). */
function variables(t: TsigRecord, timersOnly: boolean): Buffer {
  const timers = Buffer.concat([u48(t.timeSigned), u16(t.fudge)]);
  if (timersOnly) return timers;
  const classTtl = Buffer.from([0, CLASS.ANY, 0, 0, 0, 0]);
  return Buffer.concat([
    t.keyName,
    classTtl,
    t.algorithm,
    timers,
    u16(t.error),
    u16(t.other.length),
    t.other,
  ]);
}

function computeMac(key: TsigKey, parts: Buffer[]): Buffer {
  const h = createHmac(ALGORITHMS[key.algorithm].hash, key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** A MAC as it is prepended to the next digest: 2-byte length, then the MAC (§4.3.1). */
const withLength = (mac: Buffer): Buffer => Buffer.concat([u16(mac.length), mac]);

export interface SignOptions {
  /** Unix seconds. */
  now: number;
  fudge?: number;
  /** The request's MAC (first reply message) or the previous message's MAC (later ones). */
  priorMac?: Buffer;
  /** A later message of a multi-message response: only the timers are digested (§4.3.2). */
  timersOnly?: boolean;
  /** Unsigned messages sent since the previous signed one (§5.3.1); we never send any. */
  between?: Buffer[];
  error?: number;
  other?: Buffer;
  /** Time Signed to put in the record instead of `now` (BADTIME replies echo the request's). */
  timeSigned?: number;
}

/** Signs `msg` (which must not carry a TSIG yet); returns the signed message and its MAC. */
export function sign(msg: Buffer, key: TsigKey, opts: SignOptions): { msg: Buffer; mac: Buffer } {
  const t: TsigRecord = {
    keyName: keyNameWire(key),
    algorithm: ALGORITHMS[key.algorithm].wire,
    timeSigned: opts.timeSigned ?? opts.now,
    fudge: opts.fudge ?? DEFAULT_FUDGE,
    mac: Buffer.alloc(0),
    originalId: msg.readUInt16BE(0),
    error: opts.error ?? 0,
    other: opts.other ?? Buffer.alloc(0),
  };
  const parts = [
    ...(opts.priorMac ? [withLength(opts.priorMac)] : []),
    ...(opts.between ?? []),
    msg,
    variables(t, opts.timersOnly === true),
  ];
  t.mac = computeMac(key, parts);
  return { msg: appendTsig(msg, t), mac: t.mac };
}

/** §5.3.2: BADKEY and BADSIG replies carry a TSIG with an empty MAC, unsigned. */
export function appendUnsignedError(msg: Buffer, request: TsigRecord, error: number, now: number): Buffer {
  return appendTsig(msg, {
    keyName: request.keyName,
    algorithm: request.algorithm,
    timeSigned: now,
    fudge: request.fudge,
    mac: Buffer.alloc(0),
    originalId: msg.readUInt16BE(0),
    error,
    other: Buffer.alloc(0),
  });
}

/**
 * Checks a received MAC against the expected one. A full-length MAC must match; a truncated one
 * (§5.2.2.1) is BADTRUNC when its prefix matches (our policy accepts full-length MACs only) and
 * BADSIG otherwise.
 */
function macCheck(expected: Buffer, got: Buffer): 0 | 16 | 22 {
  if (got.length === expected.length) return timingSafeEqual(got, expected) ? 0 : TSIG_ERROR.BADSIG;
  const floor = Math.max(10, expected.length / 2);
  if (got.length < floor || got.length > expected.length) return TSIG_ERROR.BADSIG;
  return timingSafeEqual(got, expected.subarray(0, got.length)) ? TSIG_ERROR.BADTRUNC : TSIG_ERROR.BADSIG;
}

function algorithmOf(wire: Buffer): TsigAlgorithm | undefined {
  for (const alg of TSIG_ALGORITHMS) if (equalNames(ALGORITHMS[alg].wire, wire)) return alg;
  return undefined;
}

/** Key name in presentation form without the trailing dot, as config names keys. */
export const keyNameText = (wire: Buffer): string => nameToText(wire, false);

// ---------------------------------------------------------------------------------------------
// Server side: requests

export type RequestCheck =
  | { status: 'unsigned' }
  | { status: 'ok'; key: TsigKey; tsig: TsigRecord }
  /** Answer NOTAUTH with `error` in the TSIG (§5.2); `key` is set when the reply can be signed. */
  | { status: 'error'; error: number; reason: string; keyName: string; tsig: TsigRecord; key?: TsigKey };

/**
 * Verifies a request's TSIG against our keys (§5.2). Throws WireError for a misplaced or
 * malformed TSIG (FORMERR).
 */
export function verifyRequest(msg: Buffer, keys: ReadonlyMap<string, TsigKey>, now: number): RequestCheck {
  const found = findTsig(msg);
  if (!found) return { status: 'unsigned' };
  const { tsig } = found;
  const keyName = keyNameText(tsig.keyName);
  const key = keys.get(keyName);
  const alg = algorithmOf(tsig.algorithm);
  // §5.2.1: an unknown key, or a known key with another algorithm, is BADKEY.
  if (!key || alg !== key.algorithm) {
    const reason = key
      ? `key "${keyName}" is ${key.algorithm}, request used ${nameToText(tsig.algorithm, false)}`
      : `unknown key "${keyName}"`;
    return { status: 'error', error: TSIG_ERROR.BADKEY, reason, keyName, tsig };
  }
  const expected = computeMac(key, [found.unsigned, variables(tsig, false)]);
  const macError = macCheck(expected, tsig.mac);
  if (macError === TSIG_ERROR.BADSIG) {
    return { status: 'error', error: macError, reason: `bad MAC for key "${keyName}"`, keyName, tsig };
  }
  // §5.2.3: outside the request's own fudge window. The reply is signed (the MAC was good).
  if (Math.abs(now - tsig.timeSigned) > tsig.fudge) {
    const reason = `time signed ${tsig.timeSigned} is ${now - tsig.timeSigned} s from ours (fudge ${tsig.fudge})`;
    return { status: 'error', error: TSIG_ERROR.BADTIME, reason, keyName, tsig, key };
  }
  if (macError === TSIG_ERROR.BADTRUNC) {
    return {
      status: 'error',
      error: macError,
      reason: `truncated MAC for key "${keyName}"`,
      keyName,
      tsig,
      key,
    };
  }
  return { status: 'ok', key, tsig };
}

/**
 * Signs the messages of our reply to a verified request: the first over the request MAC, each
 * later one over the previous MAC and the timers (§4.3.1, §4.3.2). Every message is signed.
 */
export class TsigResponseSigner {
  private prior: Buffer;
  private first = true;

  constructor(
    private readonly key: TsigKey,
    requestMac: Buffer,
    private readonly now: () => number,
  ) {
    this.prior = requestMac;
  }

  sign(msg: Buffer, extra: { error?: number; other?: Buffer; timeSigned?: number } = {}): Buffer {
    const out = sign(msg, this.key, {
      now: this.now(),
      priorMac: this.prior,
      timersOnly: !this.first,
      ...extra,
    });
    this.prior = out.mac;
    this.first = false;
    return out.msg;
  }
}

/** The reply to a request whose check failed (§5.2): signed for BADTIME/BADTRUNC, else not. */
export function signError(
  reply: Buffer,
  check: Extract<RequestCheck, { status: 'error' }>,
  now: number,
): Buffer {
  if (!check.key) return appendUnsignedError(reply, check.tsig, check.error, now);
  const signer = new TsigResponseSigner(check.key, check.tsig.mac, () => now);
  // §5.2.3: a BADTIME reply echoes the request's time and carries ours in Other Data.
  if (check.error === TSIG_ERROR.BADTIME)
    return signer.sign(reply, { error: check.error, other: u48(now), timeSigned: check.tsig.timeSigned });
  return signer.sign(reply, { error: check.error });
}

// ---------------------------------------------------------------------------------------------
// Client side: requests and the replies to them

/** Signs a request; keep the MAC to verify the reply. */
export function signRequest(msg: Buffer, key: TsigKey, now: number): { msg: Buffer; mac: Buffer } {
  return sign(msg, key, { now });
}

/**
 * Verifies each message of the reply to our signed request (§5.3): the first must be signed,
 * up to 99 unsigned messages may follow a signed one, and the caller checks `lastSigned` when
 * the stream ends (the last message must be signed). Throws TsigError naming the key.
 */
export class TsigResponseVerifier {
  private prior: Buffer;
  private first = true;
  private between: Buffer[] = [];
  private signed = false;
  private readonly keyWire: Buffer;

  constructor(
    private readonly key: TsigKey,
    requestMac: Buffer,
    private readonly now: () => number,
  ) {
    this.prior = requestMac;
    this.keyWire = keyNameWire(key);
  }

  get lastSigned(): boolean {
    return this.signed;
  }

  private fail(reason: string, error?: number): never {
    throw new TsigError(`TSIG key "${this.key.name}": ${reason}`, error);
  }

  verify(msg: Buffer): void {
    let found: FoundTsig | undefined;
    try {
      found = findTsig(msg);
    } catch (e) {
      this.fail(`malformed TSIG in reply (${(e as Error).message})`);
    }
    if (!found) {
      if (this.first) {
        const rcode = msg.length >= 4 ? msg.readUInt16BE(2) & 0xf : 0;
        this.fail(`reply is not signed${rcode ? ` (${rcodeText(rcode)})` : ''}`);
      }
      if (this.between.length >= MAX_UNSIGNED)
        this.fail(`more than ${MAX_UNSIGNED} unsigned messages in a row`);
      this.between.push(msg);
      this.signed = false;
      return;
    }
    const { tsig } = found;
    if (!equalNames(tsig.keyName, this.keyWire))
      this.fail(`reply signed with another key "${keyNameText(tsig.keyName)}"`);
    if (tsig.error !== 0) {
      const what: Record<number, string> = {
        [TSIG_ERROR.BADKEY]: 'the primary does not know this key (or has it with another algorithm)',
        [TSIG_ERROR.BADSIG]: 'the primary rejected our signature (secrets differ?)',
        [TSIG_ERROR.BADTIME]: 'the primary says our clocks differ by more than the fudge',
        [TSIG_ERROR.BADTRUNC]: 'the primary rejected a truncated MAC',
      };
      this.fail(`${tsigErrorText(tsig.error)}: ${what[tsig.error] ?? 'error in reply'}`, tsig.error);
    }
    if (algorithmOf(tsig.algorithm) !== this.key.algorithm)
      this.fail(
        `reply signed with algorithm ${nameToText(tsig.algorithm, false)}, expected ${this.key.algorithm}`,
      );
    const expected = computeMac(this.key, [
      withLength(this.prior),
      ...this.between,
      found.unsigned,
      variables(tsig, !this.first),
    ]);
    if (macCheck(expected, tsig.mac) !== 0)
      this.fail(
        'BADSIG: the reply MAC does not verify (wrong secret, or the reply was altered)',
        TSIG_ERROR.BADSIG,
      );
    const now = this.now();
    if (Math.abs(now - tsig.timeSigned) > tsig.fudge)
      this.fail(
        `BADTIME: reply signed at ${tsig.timeSigned}, ${now - tsig.timeSigned} s from our clock (fudge ${tsig.fudge})`,
        TSIG_ERROR.BADTIME,
      );
    this.prior = tsig.mac;
    this.between = [];
    this.first = false;
    this.signed = true;
  }

  /** Call when the stream is complete: §5.3.1 requires its last message to be signed. */
  finish(): void {
    if (!this.signed) this.fail('the last message of the reply is not signed');
  }
}
