/**
 * TSIG on the serving side (RFC 8945 §5.2). Every request passes here before anything answers it:
 * an unsigned one goes on as it is; a validly signed one goes on with a `Signed` that signs our
 * reply with the same key; a bad signature is answered here — NOTAUTH with BADKEY/BADSIG
 * (unsigned) or BADTIME (signed), and FORMERR for a TSIG that is not the last record.
 */
import { FLAG_QR, FLAG_RD, HEADER_LEN, RCODE, readQuestion } from '../dns/message.js';
import {
  type RequestCheck,
  signError,
  type TsigKey,
  TsigResponseSigner,
  tsigErrorText,
  tsigSize,
  verifyRequest,
} from '../dns/tsig.js';
import type { Logger } from '../log.js';
import { LogBudget } from '../log-budget.js';

/** Invalid-signature lines per second and thread; the rest are counted in the next line. */
const BAD_TSIG_LINES = 10;

export interface Signed {
  /** The key that validly signed the request (normalised name, as config spells it). */
  key: string;
  /** Bytes to leave free in every reply message for the TSIG record. */
  reserve: number;
  /** Signs the next reply message: the first over the request MAC, later ones chained (§4.3). */
  sign(reply: Buffer): Buffer;
}

export type GateResult = { kind: 'pass'; signed?: Signed } | { kind: 'answered'; reply: Buffer };

export class TsigGate {
  private readonly badLines = new LogBudget(BAD_TSIG_LINES);

  constructor(
    private readonly keys: ReadonlyMap<string, TsigKey>,
    private readonly log: Logger,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  check(msg: Buffer, peer: string): GateResult {
    // Responses and runts are the handler's to drop.
    if (msg.length < HEADER_LEN || msg.readUInt16BE(2) & FLAG_QR) return { kind: 'pass' };
    const now = this.now();
    let check: RequestCheck;
    try {
      check = verifyRequest(msg, this.keys, now);
    } catch (e) {
      this.log.debug({ peer, err: (e as Error).message }, 'malformed request (TSIG)');
      return { kind: 'answered', reply: errorReply(msg, RCODE.FORMERR) };
    }
    if (check.status === 'unsigned') return { kind: 'pass' };
    if (check.status === 'error') {
      const line = this.badLines.take(Date.now());
      if (line.allowed)
        this.log.warn(
          {
            peer,
            key: check.keyName,
            tsig_error: tsigErrorText(check.error),
            reason: check.reason,
            suppressed: line.suppressed || undefined,
          },
          'request has an invalid TSIG signature',
        );
      return { kind: 'answered', reply: signError(errorReply(msg, RCODE.NOTAUTH), check, now) };
    }
    const signer = new TsigResponseSigner(check.key, check.tsig.mac, this.now);
    return {
      kind: 'pass',
      signed: { key: check.key.name, reserve: tsigSize(check.key, 6), sign: (r) => signer.sign(r) },
    };
  }
}

/** A bare reply: the request's ID, opcode and RD, its question echoed when readable. */
function errorReply(msg: Buffer, rcode: number): Buffer {
  const flags = msg.readUInt16BE(2);
  const head = Buffer.alloc(HEADER_LEN);
  head.writeUInt16BE(msg.readUInt16BE(0), 0);
  head.writeUInt16BE(FLAG_QR | (flags & 0x7800) | (flags & FLAG_RD) | rcode, 2);
  if (msg.readUInt16BE(4) !== 1) return head;
  try {
    const { end } = readQuestion(msg, HEADER_LEN);
    head.writeUInt16BE(1, 4);
    return Buffer.concat([head, msg.subarray(HEADER_LEN, end)]);
  } catch {
    return head;
  }
}
