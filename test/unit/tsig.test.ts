/**
 * TSIG (RFC 8945) without a server: requests signed by BIND's own `dig -y` and `nsupdate -y`
 * (captured on a one-shot UDP listener) verify with our code, and dig accepts the replies we sign;
 * multi-message chaining with unsigned messages in between; the BADKEY/BADSIG/BADTIME/BADTRUNC
 * checks; time outside the fudge. Signed AXFR/IXFR streams from a real named are checked in
 * test/integration/tsig.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseMessage } from '../../src/dns/message.js';
import {
  appendTsig,
  findTsig,
  sign,
  signError,
  signRequest,
  TSIG_ALGORITHMS,
  TSIG_ERROR,
  type TsigAlgorithm,
  type TsigKey,
  TsigResponseSigner,
  TsigResponseVerifier,
  verifyRequest,
} from '../../src/dns/tsig.js';
import { TYPE } from '../../src/dns/types.js';
import { encodeResponse } from '../../src/serve/response.js';
import { buildQuery } from '../harness/client.js';
import { soa } from '../harness/records.js';

const NOW = 1_700_000_000;
const key = (algorithm: TsigAlgorithm, name = 'xfr-key', secret = randomBytes(32)): TsigKey => ({
  name,
  algorithm,
  secret,
});
const keysOf = (...ks: TsigKey[]) => new Map(ks.map((k) => [k.name, k]));

/** A reply to `query` with the zone SOA in the answer (the question echoed). */
function replyTo(query: Buffer, opcode = 0): Buffer {
  const m = parseMessage(findTsig(query)?.unsigned ?? query);
  const q = m.questions[0];
  return encodeResponse(
    {
      id: m.header.id,
      queryFlags: m.header.flags,
      opcode,
      rcode: 0,
      aa: true,
      question: q,
      answer:
        opcode === 0
          ? [{ owner: q.name, type: TYPE.SOA, ttl: 300, rdatas: [soa('ns1', 'hostmaster', 7)] }]
          : [],
    },
    4096,
  );
}

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: `${stdout}${stderr}` });
    });
    child.stdin?.end(input ?? '');
  });
}

/**
 * Runs a BIND tool against a one-shot UDP listener: the first request is captured and answered
 * with `respond(request)`. Resolves with the request and the tool's output.
 */
async function capture(
  tool: (port: number) => Promise<{ code: number; out: string }>,
  respond: (req: Buffer) => Buffer | undefined,
): Promise<{ request: Buffer; code: number; out: string }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  let request: Buffer | undefined;
  sock.on('message', (m, rinfo) => {
    request ??= Buffer.from(m);
    const reply = respond(m);
    if (reply) sock.send(reply, rinfo.port, rinfo.address);
  });
  try {
    const r = await tool(sock.address().port);
    assert.ok(request, `no request captured; tool said:\n${r.out}`);
    return { request, ...r };
  } finally {
    sock.close();
  }
}

const digY = (k: TsigKey, port: number, extra: string[] = []) =>
  run('dig', [
    '-y',
    `${k.algorithm}:${k.name}:${k.secret.toString('base64')}`,
    '@127.0.0.1',
    '-p',
    String(port),
    'example.test',
    'SOA',
    '+tries=1',
    '+time=3',
    ...extra,
  ]);

describe('TSIG against BIND tools', () => {
  for (const algorithm of TSIG_ALGORITHMS) {
    it(`${algorithm}: a dig -y query verifies, and dig verifies our signed reply`, async () => {
      const k = key(algorithm, 'tsig-test.example');
      const now = () => Math.floor(Date.now() / 1000);
      const { request, code, out } = await capture(
        (port) => digY(k, port),
        (req) => {
          const check = verifyRequest(req, keysOf(k), now());
          if (check.status !== 'ok') return undefined;
          return new TsigResponseSigner(k, check.tsig.mac, now).sign(replyTo(req));
        },
      );
      const check = verifyRequest(request, keysOf(k), now());
      assert.equal(check.status, 'ok', JSON.stringify(check));
      assert.equal(code, 0, out);
      assert.match(out, /TSIG PSEUDOSECTION/);
      assert.match(out, /status: NOERROR/);
      assert.doesNotMatch(out, /Couldn't verify|could not be validated|tsig verify failure/i, out);
    });
  }

  it('dig notices a reply signed with another secret (so the check above means something)', async () => {
    const k = key('hmac-sha256', 'tsig-test.example');
    const other = { ...k, secret: randomBytes(32) };
    const now = () => Math.floor(Date.now() / 1000);
    const { out } = await capture(
      (port) => digY(k, port),
      (req) => new TsigResponseSigner(other, findTsig(req)!.tsig.mac, now).sign(replyTo(req)),
    );
    assert.match(out, /Couldn't verify|could not be validated|tsig verify failure/i, out);
  });

  it('a dig -y query fails with the wrong secret (BADSIG) or algorithm (BADKEY)', async () => {
    const k = key('hmac-sha256', 'tsig-test.example');
    const { request } = await capture(
      (port) => digY(k, port),
      (req) => replyTo(req),
    );
    const now = Math.floor(Date.now() / 1000);
    const wrongSecret = verifyRequest(request, keysOf({ ...k, secret: randomBytes(32) }), now);
    assert.equal(wrongSecret.status === 'error' && wrongSecret.error, TSIG_ERROR.BADSIG);
    const wrongAlg = verifyRequest(request, keysOf({ ...k, algorithm: 'hmac-sha512' }), now);
    assert.equal(wrongAlg.status === 'error' && wrongAlg.error, TSIG_ERROR.BADKEY);
    const unknown = verifyRequest(request, keysOf(key('hmac-sha256', 'other-key')), now);
    assert.equal(unknown.status === 'error' && unknown.error, TSIG_ERROR.BADKEY);
    assert.match(unknown.status === 'error' ? unknown.reason : '', /unknown key "tsig-test.example"/);
  });

  it('an nsupdate -y UPDATE verifies, and nsupdate accepts our signed reply', async () => {
    const k = key('hmac-sha512', 'update-key.example');
    const now = () => Math.floor(Date.now() / 1000);
    const script = (port: number) =>
      `server 127.0.0.1 ${port}\nzone example.test\nupdate add new.example.test. 300 A 192.0.2.9\nsend\n`;
    const { request, code, out } = await capture(
      (port) =>
        run(
          'nsupdate',
          ['-y', `hmac-sha512:${k.name}:${k.secret.toString('base64')}`, '-t', '3'],
          script(port),
        ),
      (req) => {
        const check = verifyRequest(req, keysOf(k), now());
        if (check.status !== 'ok') return undefined;
        return new TsigResponseSigner(k, check.tsig.mac, now).sign(replyTo(req, 5));
      },
    );
    assert.equal(verifyRequest(request, keysOf(k), now()).status, 'ok');
    assert.equal(code, 0, out);
  });
});

describe('TSIG requests (server side)', () => {
  const k = key('hmac-sha256');
  const query = () => buildQuery('example.test', TYPE.SOA);

  it('round-trips every algorithm; the signed reply verifies on the client side', () => {
    for (const algorithm of TSIG_ALGORITHMS) {
      const kk = key(algorithm);
      const signed = signRequest(query(), kk, NOW);
      const check = verifyRequest(signed.msg, keysOf(kk), NOW + 5);
      assert.equal(check.status, 'ok', algorithm);
      if (check.status !== 'ok') continue;
      const reply = new TsigResponseSigner(kk, check.tsig.mac, () => NOW + 5).sign(replyTo(signed.msg));
      new TsigResponseVerifier(kk, signed.mac, () => NOW + 6).verify(reply);
    }
  });

  it('the TSIG is removed before the MAC: ID restored, ARCOUNT back', () => {
    const q = query();
    const signed = signRequest(q, k, NOW);
    const mangled = Buffer.from(signed.msg);
    mangled.writeUInt16BE(0x1234, 0); // a forwarder may change the ID (RFC 8945 §4.3.1: Original ID)
    const found = findTsig(mangled)!;
    assert.deepEqual(found.unsigned, q);
    assert.equal(verifyRequest(mangled, keysOf(k), NOW).status, 'ok');
  });

  it('BADSIG for an altered message, BADKEY for an unknown key or algorithm', () => {
    const signed = signRequest(query(), k, NOW).msg;
    const altered = Buffer.from(signed);
    altered[14] ^= 0x20; // a letter of the question changes case
    const r = verifyRequest(altered, keysOf(k), NOW);
    assert.equal(r.status === 'error' && r.error, TSIG_ERROR.BADSIG);
    const r2 = verifyRequest(signed, keysOf(key('hmac-sha256', 'other')), NOW);
    assert.equal(r2.status === 'error' && r2.error, TSIG_ERROR.BADKEY);
    const r3 = verifyRequest(signed, keysOf({ ...k, algorithm: 'hmac-sha1' }), NOW);
    assert.equal(r3.status === 'error' && r3.error, TSIG_ERROR.BADKEY);
  });

  it('BADTIME outside the fudge (300 s), answered signed with our time in Other Data', () => {
    const signed = signRequest(query(), k, NOW);
    assert.equal(verifyRequest(signed.msg, keysOf(k), NOW + 300).status, 'ok');
    assert.equal(verifyRequest(signed.msg, keysOf(k), NOW - 300).status, 'ok');
    const late = verifyRequest(signed.msg, keysOf(k), NOW + 301);
    assert.equal(late.status, 'error');
    if (late.status !== 'error') return;
    assert.equal(late.error, TSIG_ERROR.BADTIME);
    const reply = signError(replyTo(signed.msg), late, NOW + 301);
    const t = findTsig(reply)!.tsig;
    assert.equal(t.error, TSIG_ERROR.BADTIME);
    assert.equal(t.timeSigned, NOW, 'Time Signed echoes the request');
    assert.equal(t.other.readUIntBE(0, 6), NOW + 301, 'Other Data holds our time');
    // The client verifies it (MAC over its request MAC) before reading the error.
    assert.throws(
      () => new TsigResponseVerifier(k, signed.mac, () => NOW).verify(reply),
      /BADTIME: the primary says our clocks differ/,
    );
  });

  it('BADKEY/BADSIG replies carry an empty MAC', () => {
    const signed = signRequest(query(), k, NOW).msg;
    const r = verifyRequest(signed, keysOf({ ...k, secret: randomBytes(32) }), NOW);
    assert.equal(r.status, 'error');
    if (r.status !== 'error') return;
    const t = findTsig(signError(replyTo(signed), r, NOW))!.tsig;
    assert.equal(t.error, TSIG_ERROR.BADSIG);
    assert.equal(t.mac.length, 0);
  });

  it('a truncated MAC that matches is BADTRUNC, one that does not is BADSIG', () => {
    const found = findTsig(signRequest(query(), k, NOW).msg)!;
    const cut = (mac: Buffer) => appendTsig(found.unsigned, { ...found.tsig, mac });
    const t = found.tsig;
    const good = verifyRequest(cut(t.mac.subarray(0, 16)), keysOf(k), NOW);
    assert.equal(good.status === 'error' && good.error, TSIG_ERROR.BADTRUNC);
    const bad = Buffer.from(t.mac.subarray(0, 16));
    bad[0] ^= 1;
    const r = verifyRequest(cut(bad), keysOf(k), NOW);
    assert.equal(r.status === 'error' && r.error, TSIG_ERROR.BADSIG);
  });

  it('a TSIG that is not the last record is a format error', () => {
    const signed = signRequest(query(), k, NOW).msg;
    // Append an OPT after the TSIG.
    const opt = Buffer.from([0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
    const bad = Buffer.concat([signed, opt]);
    bad.writeUInt16BE(bad.readUInt16BE(10) + 1, 10);
    assert.throws(() => verifyRequest(bad, keysOf(k), NOW), /not the last additional record/);
  });
});

describe('TSIG multi-message replies (RFC 8945 §5.3.1)', () => {
  const k = key('hmac-sha384');
  /** Stand-ins for transfer messages: header and one question that differs per message. */
  const msgs = (n: number, id: number) =>
    Array.from({ length: n }, (_, i) => {
      const b = buildQuery(`m${i}.example.test`, TYPE.A);
      b.writeUInt16BE(id, 0);
      b.writeUInt16BE(0x8400, 2);
      return b;
    });

  /** Signs messages `signedAt` of a stream (the others go unsigned), chaining as a server would. */
  function stream(n: number, signedAt: (i: number) => boolean, requestMac: Buffer, now = NOW) {
    let prior = requestMac;
    let between: Buffer[] = [];
    return msgs(n, 7).map((m, i) => {
      if (!signedAt(i)) {
        between.push(m);
        return m;
      }
      const s = sign(m, k, { now, priorMac: prior, between, timersOnly: i > 0 });
      prior = s.mac;
      between = [];
      return s.msg;
    });
  }

  it('verifies a stream signed on every message', () => {
    const req = signRequest(buildQuery('example.test', TYPE.AXFR), k, NOW);
    const v = new TsigResponseVerifier(k, req.mac, () => NOW);
    for (const m of stream(5, () => true, req.mac)) v.verify(m);
    v.finish();
  });

  it('accepts up to 99 unsigned messages between signed ones, not 100', () => {
    const req = signRequest(buildQuery('example.test', TYPE.AXFR), k, NOW);
    const ok = new TsigResponseVerifier(k, req.mac, () => NOW);
    for (const m of stream(101, (i) => i === 0 || i === 100, req.mac)) ok.verify(m);
    ok.finish();
    const tooMany = new TsigResponseVerifier(k, req.mac, () => NOW);
    const s = stream(102, (i) => i === 0 || i === 101, req.mac);
    assert.throws(() => {
      for (const m of s) tooMany.verify(m);
    }, /more than 99 unsigned messages/);
  });

  it('an unsigned message altered in transit fails the next signed one', () => {
    const req = signRequest(buildQuery('example.test', TYPE.AXFR), k, NOW);
    const s = stream(4, (i) => i !== 1 && i !== 2, req.mac);
    s[2] = Buffer.from(s[2]);
    s[2][13] ^= 1; // m2 → l2
    const v = new TsigResponseVerifier(k, req.mac, () => NOW);
    v.verify(s[0]);
    v.verify(s[1]);
    v.verify(s[2]);
    assert.throws(() => v.verify(s[3]), /TSIG key "xfr-key": BADSIG/);
  });

  it('the first message must be signed, and so must the last', () => {
    const req = signRequest(buildQuery('example.test', TYPE.AXFR), k, NOW);
    const v = new TsigResponseVerifier(k, req.mac, () => NOW);
    assert.throws(() => v.verify(msgs(1, 7)[0]), /TSIG key "xfr-key": reply is not signed/);
    const v2 = new TsigResponseVerifier(k, req.mac, () => NOW);
    const s = stream(3, (i) => i === 0, req.mac);
    for (const m of s) v2.verify(m);
    assert.throws(() => v2.finish(), /last message of the reply is not signed/);
  });

  it('a reply chained to another request (or reordered) does not verify', () => {
    const req = signRequest(buildQuery('example.test', TYPE.AXFR), k, NOW);
    const other = signRequest(buildQuery('example.test', TYPE.AXFR), k, NOW);
    const v = new TsigResponseVerifier(k, req.mac, () => NOW);
    assert.throws(() => v.verify(stream(1, () => true, other.mac)[0]), /BADSIG/);
    const s = stream(3, () => true, req.mac);
    const v2 = new TsigResponseVerifier(k, req.mac, () => NOW);
    v2.verify(s[0]);
    assert.throws(() => v2.verify(s[2]), /BADSIG/);
  });

  it('a reply signed outside the fudge is BADTIME', () => {
    const req = signRequest(buildQuery('example.test', TYPE.AXFR), k, NOW);
    const s = stream(1, () => true, req.mac, NOW - 301);
    assert.throws(
      () => new TsigResponseVerifier(k, req.mac, () => NOW).verify(s[0]),
      /BADTIME: reply signed at/,
    );
    const within = stream(1, () => true, req.mac, NOW - 300);
    new TsigResponseVerifier(k, req.mac, () => NOW).verify(within[0]);
  });

  it('the server-side signer chains as the verifier expects', () => {
    const req = signRequest(buildQuery('example.test', TYPE.AXFR), k, NOW);
    const signer = new TsigResponseSigner(k, req.mac, () => NOW);
    const v = new TsigResponseVerifier(k, req.mac, () => NOW);
    for (const m of msgs(4, 7)) v.verify(signer.sign(m));
    v.finish();
  });
});

/**
 * A multi-message AXFR signed by BIND 9.18 (test/fixtures/bind-axfr-tsig.json, recorded by
 * test/fixtures/capture-bind-axfr.ts): RFC 8945 §5.3.1 chaining as another implementation
 * computes it, not as ns2's own signer does.
 */
describe('TSIG: a BIND-signed multi-message AXFR (recorded)', () => {
  const capture = JSON.parse(
    fs.readFileSync(
      path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/bind-axfr-tsig.json'),
      'utf8',
    ),
  ) as {
    key: { name: string; algorithm: string; secret: string };
    time: number;
    requestMac: string;
    messages: string[];
  };
  const key: TsigKey = {
    name: capture.key.name,
    algorithm: capture.key.algorithm as TsigAlgorithm,
    secret: Buffer.from(capture.key.secret, 'base64'),
  };
  const messages = capture.messages.map((h) => Buffer.from(h, 'hex'));
  const verifier = () =>
    new TsigResponseVerifier(key, Buffer.from(capture.requestMac, 'hex'), () => capture.time);

  it(`verifies every one of the ${messages.length} messages, in order, and the stream's end`, () => {
    assert.ok(messages.length >= 10);
    const v = verifier();
    for (const m of messages) v.verify(m);
    v.finish();
    const rrs = messages.flatMap((m) => parseMessage(m).answer);
    assert.equal(
      rrs.filter((r) => r.type === TYPE.SOA).length,
      2,
      'the stream opens and closes with the SOA',
    );
    assert.equal(rrs.filter((r) => r.type === TYPE.TXT).length, 300);
  });

  it('refuses the stream with one byte of a later message altered, a message left out, or two swapped', () => {
    const altered = messages.map((m) => Buffer.from(m));
    altered[5][40] ^= 1;
    assert.throws(() => {
      const v = verifier();
      for (const m of altered) v.verify(m);
    }, /BADSIG/);
    assert.throws(() => {
      const v = verifier();
      for (const m of [...messages.slice(0, 4), ...messages.slice(5)]) v.verify(m);
    }, /BADSIG/);
    assert.throws(() => {
      const v = verifier();
      for (const m of [messages[0], messages[2], messages[1], ...messages.slice(3)]) v.verify(m);
    }, /BADSIG/);
  });

  it('refuses it under another request MAC (a reply to some other request) or another secret', () => {
    const other = new TsigResponseVerifier(key, randomBytes(32), () => capture.time);
    assert.throws(() => other.verify(messages[0]), /BADSIG/);
    const wrong = new TsigResponseVerifier(
      { ...key, secret: randomBytes(32) },
      Buffer.from(capture.requestMac, 'hex'),
      () => capture.time,
    );
    assert.throws(() => wrong.verify(messages[0]), /BADSIG/);
  });

  it('refuses it 301 s after it was signed (fudge 300)', () => {
    const late = new TsigResponseVerifier(
      key,
      Buffer.from(capture.requestMac, 'hex'),
      () => capture.time + 301,
    );
    assert.throws(() => late.verify(messages[0]), /BADTIME/);
  });
});
