/**
 * The TLS pieces without DNS servers: allowTransfer entries that need TLS (acl.ts), SPKI pins and
 * failure reasons (xfrin/tls.ts), mutual TLS and pins against a node:tls server, and the
 * certificate reload of a TLS listener (serve/server.ts), with certificates made by openssl.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import pino from 'pino';
import { acl } from '../../src/serve/acl.js';
import { QueryHandler } from '../../src/serve/handler.js';
import { DnsServer } from '../../src/serve/server.js';
import { ZoneTable } from '../../src/serve/zone-table.js';
import { certificatePin, tlsFailureReason } from '../../src/xfrin/tls.js';
import { type Endpoint, tcpStream } from '../../src/xfrin/transport.js';
import { type CertPair, makeCa, type TestCa } from '../harness/certs.js';
import { buildQuery } from '../harness/client.js';

const silent = pino({ level: 'silent' });

describe('allowTransfer over TLS', () => {
  it('"tls:" entries match only over TLS; plain entries over any transport', () => {
    const m = acl(['tls:192.0.2.54', 'tls:key:xfr', '192.0.2.1']);
    assert.equal(m('192.0.2.54', undefined, true), true);
    assert.equal(m('192.0.2.54', undefined, false), false);
    assert.equal(m('::ffff:192.0.2.54', undefined, true), true);
    assert.equal(m('192.0.2.9', 'xfr', true), true);
    assert.equal(m('192.0.2.9', 'xfr', false), false);
    assert.equal(m('192.0.2.1', undefined, false), true);
    assert.equal(m('192.0.2.1', undefined, true), true);
    assert.equal(m('192.0.2.2', undefined, true), false);
  });

  it('requireTls: every entry needs TLS', () => {
    const m = acl(['192.0.2.0/24', 'key:xfr'], { requireTls: true });
    assert.equal(m('192.0.2.7', undefined, true), true);
    assert.equal(m('192.0.2.7', undefined, false), false);
    assert.equal(m('198.51.100.1', 'xfr', true), true);
    assert.equal(m('198.51.100.1', 'xfr', false), false);
    assert.equal(m('198.51.100.1', undefined, true), false);
  });
});

describe('failure reasons', () => {
  const err = (code: string, message: string, reason?: string) =>
    Object.assign(new Error(message), { code, reason });
  it('names expiry, name and trust failures', () => {
    assert.equal(
      tlsFailureReason(err('CERT_HAS_EXPIRED', 'certificate has expired')),
      'certificate has expired',
    );
    assert.equal(
      tlsFailureReason(
        err(
          'ERR_TLS_CERT_ALTNAME_INVALID',
          "Hostname/IP does not match certificate's altnames: …",
          "Host: a.test. is not in the cert's altnames: DNS:b.test",
        ),
      ),
      "hostname mismatch (Host: a.test. is not in the cert's altnames: DNS:b.test)",
    );
    assert.equal(
      tlsFailureReason(err('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate')),
      'certificate not trusted (unable to verify the first certificate)',
    );
  });
});

describe('TLS against node:tls peers', () => {
  let dir: string;
  let ca: TestCa;
  let server: CertPair;
  let client: CertPair;
  let renewed: CertPair;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-tls-unit-'));
    ca = await makeCa(dir);
    server = await ca.issue('server', 'primary.test', { ip: true });
    client = await ca.issue('client', 'ns2.test');
    renewed = await ca.issue('renewed', 'primary.test', { ip: true });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A one-shot TLS "primary": answers the first framed message with itself (an echo). */
  async function echoServer(
    opts: tls.TlsOptions,
  ): Promise<{ port: number; close(): void; peers: (string | string[])[] }> {
    // Each client's certificate CN ('' without one); a subject with several CNs gives them all.
    const peers: (string | string[])[] = [];
    const s = tls.createServer({ ...opts, ALPNProtocols: ['dot'] }, (c) => {
      peers.push(c.getPeerCertificate().subject?.CN ?? '');
      c.on('data', (d) => c.write(d));
      c.on('error', () => {});
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    return { port: (s.address() as { port: number }).port, close: () => s.close(), peers };
  }
  const limits = { connectMs: 3000, idleMs: 3000, totalMs: 3000, maxBytes: 70_000 };
  const echo = (to: Endpoint) => tcpStream(to, buildQuery('x.test', 6), () => true, limits);

  it('authenticates by pin alone, presents a client certificate (mutual TLS)', async () => {
    const s = await echoServer({
      cert: fs.readFileSync(server.certFile),
      key: fs.readFileSync(server.keyFile),
      ca: fs.readFileSync(ca.caFile),
      requestCert: true,
      rejectUnauthorized: true,
    });
    try {
      const pin = certificatePin(fs.readFileSync(server.certFile));
      const got = await echo({ address: '127.0.0.1', port: s.port, tls: { pin, ...client } });
      assert.equal(got.messages, 1);
      assert.deepEqual(s.peers, ['ns2.test']);
      // CA and the address as the name (the certificate carries IP:127.0.0.1).
      await echo({ address: '127.0.0.1', port: s.port, tls: { caFile: ca.caFile, ...client } });
      const wrongPin = certificatePin(fs.readFileSync(client.certFile));
      await assert.rejects(
        echo({ address: '127.0.0.1', port: s.port, tls: { pin: wrongPin, ...client } }),
        /pin mismatch/,
      );
      await assert.rejects(
        echo({
          address: '127.0.0.1',
          port: s.port,
          tls: { caFile: ca.caFile, serverName: 'other.test', ...client },
        }),
        /hostname mismatch/,
      );
    } finally {
      s.close();
    }
  });

  it('a TLS listener serves queries and takes a renewed certificate on reload', async () => {
    const live = { certFile: path.join(dir, 'live.pem'), keyFile: path.join(dir, 'live.key') };
    fs.copyFileSync(server.certFile, live.certFile);
    fs.copyFileSync(server.keyFile, live.keyFile);
    const table = new ZoneTable();
    const handler = new QueryHandler(
      table,
      { cookieSecret: Buffer.alloc(16), cacheBytes: 0, udpSize: 1232 },
      silent,
    );
    const dns = new DnsServer(
      handler,
      {
        listen: [],
        tlsListen: [{ address: '127.0.0.1', port: 0, ...live }],
        tcpIdleMs: 2000,
        maxTcpConnections: 10,
        udp: false,
        tcp: false,
      },
      silent,
    );
    await dns.start();
    try {
      const [bound] = dns.addresses().tls;
      const peerPin = () =>
        new Promise<string>((resolve, reject) => {
          const c = tls.connect(
            { host: '127.0.0.1', port: bound.port, ca: fs.readFileSync(ca.caFile), ALPNProtocols: ['dot'] },
            () => {
              resolve(certificatePin(c.getPeerCertificate().raw));
              c.destroy();
            },
          );
          c.on('error', reject);
        });
      assert.equal(await peerPin(), certificatePin(fs.readFileSync(server.certFile)));
      // A query over TLS is answered (REFUSED: no zones here), framed as over TCP (RFC 7858 §3.3).
      let reply: Buffer | undefined;
      await tcpStream(
        { address: '127.0.0.1', port: bound.port, tls: { caFile: ca.caFile } },
        buildQuery('x.test', 1),
        (m) => {
          reply = Buffer.from(m);
          return true;
        },
        limits,
      );
      assert.equal(reply!.readUInt16BE(2) & 0xf, 5);
      fs.copyFileSync(renewed.certFile, live.certFile);
      fs.copyFileSync(renewed.keyFile, live.keyFile);
      assert.deepEqual(dns.reloadCertificates(), []);
      assert.equal(await peerPin(), certificatePin(fs.readFileSync(renewed.certFile)));
      // A broken file leaves the old certificate in place.
      assert.deepEqual(dns.checkCertificates(), []);
      fs.writeFileSync(live.keyFile, 'garbage');
      assert.equal(dns.checkCertificates().length, 1);
      assert.match(dns.checkCertificates()[0], /^tlsListen\[0\]: /);
      assert.equal(dns.reloadCertificates().length, 1);
      assert.equal(await peerPin(), certificatePin(fs.readFileSync(renewed.certFile)));
    } finally {
      await dns.stop();
    }
  });
});
