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

/**
 * RFC 9018 Appendix A: the worked examples, byte for byte. These are computed by the RFC's
 * authors, not by ns2: a server cookie ns2 makes must be one every other RFC 9018 server of an
 * anycast group (BIND, Knot, PowerDNS…) holding the same secret accepts, and the reverse.
 */
describe('RFC 9018 Appendix A test vectors', () => {
  const hex = (s: string) => Buffer.from(s, 'hex');
  const SECRET = hex('e5e973e5a6b2a43f48e7dc849e37bfcf');

  it('A.1: learning a new server cookie (198.51.100.100, client cookie only)', () => {
    const c = new Cookies(SECRET, () => 1559731985);
    const option = hex('2464c4abcf10c957');
    const check = c.check(option, '198.51.100.100');
    assert.equal(check.kind, 'new');
    assert.equal(
      c.reply(check as { kind: 'new'; client: Buffer }, option, '198.51.100.100').toString('hex'),
      '2464c4abcf10c957010000005cf79f111f8130c3eee29480',
    );
  });

  it('A.2: the same client 40 minutes later: its cookie verifies and is renewed (older than 30 min)', () => {
    const c = new Cookies(SECRET, () => 1559734385);
    const option = hex('2464c4abcf10c957010000005cf79f111f8130c3eee29480');
    const check = c.check(option, '198.51.100.100');
    assert.equal(check.kind, 'valid');
    assert.equal(
      c.reply(check as { kind: 'valid'; client: Buffer }, option, '198.51.100.100').toString('hex'),
      '2464c4abcf10c957010000005cf7a871d4a564a1442aca77',
    );
  });

  it('A.3: reserved bytes set are hashed as sent; the fresh cookie has them zero', () => {
    const option = hex('fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5');
    // The request's cookie was made at 09:46:25 (1559727985) and verifies within its hour.
    assert.equal(new Cookies(SECRET, () => 1559727985 + 60).check(option, '203.0.113.203').kind, 'valid');
    // The appendix answers at 11:38:20, 1 h 52 min later: past RFC 9018 §4.3's hour, so ns2 treats
    // it as not ours ('new') and answers with a fresh cookie; the appendix's reply, byte for byte.
    const c = new Cookies(SECRET, () => 1559734700);
    const check = c.check(option, '203.0.113.203');
    assert.equal(check.kind, 'new');
    assert.equal(
      c.reply(check as { kind: 'new'; client: Buffer }, option, '203.0.113.203').toString('hex'),
      'fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e',
    );
  });

  it('A.4: IPv6 client; the old secret verifies the cookie, the new secret makes the reply', () => {
    const ip = '2001:db8:220:1:59de:d0f4:8769:82b8';
    const option = hex('22681ab97d52c298010000005cf7c57926556bd0934c72f8');
    const at = () => 1559741961;
    const old = new Cookies(hex('dd3bdf9344b678b185a6f5cb60fca715'), at);
    assert.equal(old.check(option, ip).kind, 'valid');
    // ns2 holds one secret per run (no rollover list): under the new secret the cookie is 'new'.
    const c = new Cookies(hex('445536bcd2513298075a5d379663c962'), at);
    const check = c.check(option, ip);
    assert.equal(check.kind, 'new');
    assert.equal(
      c.reply(check as { kind: 'new'; client: Buffer }, option, ip).toString('hex'),
      '22681ab97d52c298010000005cf7c609a6bb79d16625507a',
    );
  });
});
