import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { RCODE } from '../../src/dns/message.js';
import { textToName } from '../../src/dns/name.js';
import { signRequest, type TsigKey } from '../../src/dns/tsig.js';
import { TYPE } from '../../src/dns/types.js';
import { createLogger } from '../../src/log.js';
import { LogBudget } from '../../src/log-budget.js';
import { TsigGate } from '../../src/serve/tsig-gate.js';
import { buildQuery } from '../../src/xfrin/query.js';

describe('LogBudget: a bounded number of lines per window', () => {
  it('lets perWindow lines through per window, counts the rest and says so in the next line', () => {
    const b = new LogBudget(3, 1000);
    const at = (ms: number, n: number) => Array.from({ length: n }, () => b.take(ms));
    const first = at(0, 100);
    assert.equal(first.filter((r) => r.allowed).length, 3);
    assert.deepEqual(
      first.slice(0, 3).map((r) => r.suppressed),
      [0, 0, 0],
    );
    // Still the same window at 999 ms: nothing more.
    assert.equal(at(999, 10).filter((r) => r.allowed).length, 0);
    // The next window: the first line carries the 107 held back.
    const next = at(1000, 5);
    assert.deepEqual(
      next.map((r) => [r.allowed, r.suppressed]),
      [
        [true, 107],
        [true, 0],
        [true, 0],
        [false, 0],
        [false, 0],
      ],
    );
  });

  it('a flood of a million events writes at most perWindow lines per second', () => {
    const b = new LogBudget(10);
    let lines = 0;
    for (let i = 0; i < 1_000_000; i++) if (b.take(i / 100).allowed) lines++; // 10 s of events
    assert.equal(lines, 100);
  });
});

describe('TsigGate: a flood of bad signatures is answered, and logged within a budget', () => {
  it('50 forged requests in one second: 50 NOTAUTH replies, at most 10 log lines', () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('info', { write: (s: string) => lines.push(JSON.parse(s)) });
    const ours: TsigKey = { name: 'k', algorithm: 'hmac-sha256', secret: randomBytes(32) };
    const forged: TsigKey = { ...ours, secret: randomBytes(32) };
    const gate = new TsigGate(new Map([['k', ours]]), log);
    const now = Math.floor(Date.now() / 1000);
    let notauth = 0;
    for (let i = 0; i < 50; i++) {
      const r = gate.check(
        signRequest(buildQuery(textToName('example.test'), TYPE.SOA).msg, forged, now).msg,
        '192.0.2.1',
      );
      if (r.kind === 'answered' && (r.reply.readUInt16BE(2) & 0xf) === RCODE.NOTAUTH) notauth++;
    }
    assert.equal(notauth, 50);
    const bad = lines.filter((l) => l.msg === 'request has an invalid TSIG signature');
    assert.ok(bad.length >= 1 && bad.length <= 10, `${bad.length} lines`);
    assert.equal(bad[0].tsig_error, 'BADSIG');
  });
});
