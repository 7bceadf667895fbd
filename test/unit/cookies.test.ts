import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { siphash24 } from '../../src/dns/siphash.js';
import { Cookies } from '../../src/serve/cookies.js';

describe('SipHash-2-4', () => {
  it('matches the reference vector (key 00..0f, message 00..0e)', () => {
    const key = Buffer.from(Array.from({ length: 16 }, (_, i) => i));
    const msg = Buffer.from(Array.from({ length: 15 }, (_, i) => i));
    // Appendix A of the SipHash paper: 0xa129ca6149be45e5, little-endian output.
    assert.equal(siphash24(key, msg).toString('hex'), 'e545be4961ca29a1');
    assert.equal(siphash24(key, Buffer.alloc(0)).toString('hex'), '310e0edd47db6f72');
  });
});

describe('DNS cookies (RFC 7873, RFC 9018)', () => {
  const client = Buffer.from('0102030405060708', 'hex');
  let now = 1_700_000_000;
  const cookies = new Cookies(Buffer.alloc(16, 7), () => now);

  it('answers a client cookie with client + 16-byte server cookie, version 1', () => {
    const c = cookies.check(client, '192.0.2.1');
    assert.equal(c.kind, 'new');
    const reply = cookies.reply(c as { kind: 'new'; client: Buffer }, client, '192.0.2.1');
    assert.equal(reply.length, 24);
    assert.ok(reply.subarray(0, 8).equals(client));
    assert.equal(reply[8], 1);
    assert.equal(reply.readUInt32BE(12), now);
  });

  it('recognises its own server cookie from the same address, not from another', () => {
    const reply = cookies.reply({ kind: 'new', client }, client, '192.0.2.1');
    assert.equal(cookies.check(reply, '192.0.2.1').kind, 'valid');
    assert.equal(cookies.check(reply, '192.0.2.2').kind, 'new');
    const forged = Buffer.from(reply);
    forged[23] ^= 1;
    assert.equal(cookies.check(forged, '192.0.2.1').kind, 'new');
  });

  it('expires server cookies after an hour', () => {
    const reply = cookies.reply({ kind: 'new', client }, client, '2001:db8::1');
    now += 3601;
    assert.equal(cookies.check(reply, '2001:db8::1').kind, 'new');
  });

  it('rejects malformed lengths', () => {
    for (const n of [0, 7, 9, 15, 41])
      assert.equal(cookies.check(Buffer.alloc(n), '192.0.2.1').kind, 'malformed');
  });
});
