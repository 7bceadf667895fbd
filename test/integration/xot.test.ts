/**
 * Zone transfers over TLS (RFC 9103, XoT), with certificates made by openssl at test time:
 *
 *   named (tls listener only for transfers) ──TLS: SOA, AXFR, IXFR──► ns2 ──TLS: AXFR, IXFR──► named (secondary)
 *                                  NOTIFY ─────────────────────────►     ──NOTIFY ───────────►   kdig +tls
 *
 * - in: ns2 pulls over TLS verified against the CA and the server name; named's log shows the
 *   transfers on TLS sessions, and named refuses a plain TCP transfer; named's listener requires
 *   a client certificate (mutual TLS), which ns2 presents; after nsupdate → NOTIFY the
 *   change comes by IXFR over TLS;
 * - out: ns2's tlsListen serves a BIND 9.18 secondary (`primaries { … tls …; }`, IXFR included)
 *   and kdig +tls (AXFR, IXFR, a query); `tls:127.0.0.1` in allowTransfer refuses plain TCP;
 * - failures: wrong CA, wrong name, an expired certificate, a listener that never handshakes, no
 *   client certificate: each
 *   a failed attempt with its reason in `transfers`, and the zone we had keeps being served.
 *
 * knotd 3.2 cannot transfer over TLS (its XoT arrived in Knot 3.4; 3.2 has XoQ only, with XDP), so
 * Knot is represented by kdig, its client.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type CertPair, makeCa, type TestCa } from '../harness/certs.js';
import { type Named, startNamed } from '../harness/named.js';
import { type Ns2, startNs2, waitFor } from '../harness/ns2.js';
import { digAt, freePort, HOST, run } from '../harness/proc.js';

const ZONE = 'xot.test';
const zoneText = (serial: number) => `$ORIGIN ${ZONE}.
$TTL 300
@ SOA ns1 hostmaster ${serial} 3600 600 86400 300
  NS ns1
ns1 A 192.0.2.53
${Array.from({ length: 200 }, (_, i) => `h${i} A 10.0.${i >> 8}.${i & 255}`).join('\n')}
`;

const soaSerial = async (port: number): Promise<number | undefined> => {
  const out = (await digAt(port, [ZONE, 'SOA', '+short', '+norec', '+tries=1', '+time=2'])).trim();
  return out ? Number(out.split(/\s+/)[2]) : undefined;
};

interface TransferRow {
  primary_addr: string;
  result: string;
  kind_performed: string | null;
  error: string | null;
}
const transfers = (ns2: Ns2): TransferRow[] => {
  const db = new Database(ns2.database, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare('SELECT primary_addr, result, kind_performed, error FROM transfers WHERE zone = ? ORDER BY id')
      .all(ZONE) as TransferRow[];
  } finally {
    db.close();
  }
};

/** named's "TLS server session created for ADDR#PORT" lines: the client ports that came over TLS. */
const tlsClientPorts = (log: string): Set<string> =>
  new Set([...log.matchAll(/TLS server session created for 127\.0\.0\.1#(\d+)/g)].map((m) => m[1]));

const kdig = (args: string[]) => run('kdig', args, { timeoutMs: 20_000 });

describe('zone transfers over TLS (XoT)', () => {
  let dir: string;
  let ca: TestCa;
  let otherCa: TestCa;
  let primary: Named;
  let ns2: Ns2;
  let secondary: Named | undefined;
  let tlsPort: number;
  let ns2TlsPort: number;
  let ns2Port: number;
  let secondaryPort: number;
  /** ns2's client certificate: named's transfer listener requires one (mutual TLS). */
  let client: CertPair;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-xot-'));
    ca = await makeCa(path.join(dir, 'ca'));
    otherCa = await makeCa(path.join(dir, 'other-ca'), 'another CA');
    const primaryCert = await ca.issue('primary', 'primary.test');
    const expired = await ca.issue('expired', 'primary.test', { expired: true });
    client = await ca.issue('client', 'ns2.client.test');
    [tlsPort, ns2TlsPort, ns2Port, secondaryPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const expiredPort = await freePort();
    primary = await startNamed({
      debugLevel: 1, // logs "TLS server session created for …"
      // ca-file on a listener: BIND 9.18 requires a client certificate signed by it.
      keys: `tls primary { cert-file "${primaryCert.certFile}"; key-file "${primaryCert.keyFile}"; ca-file "${ca.caFile}"; };
tls expired { cert-file "${expired.certFile}"; key-file "${expired.keyFile}"; };`,
      extraOptions: `  listen-on port ${tlsPort} tls primary { ${HOST}; };
  listen-on port ${expiredPort} tls expired { ${HOST}; };`,
      zones: [
        {
          name: ZONE,
          text: zoneText(1),
          allowTransferOn: `port ${tlsPort} transport tls`,
          alsoNotify: [ns2Port],
        },
      ],
    });
    (primary as Named & { expiredPort?: number }).expiredPort = expiredPort;
  });

  after(async () => {
    await secondary?.stop();
    await ns2?.stop();
    await primary?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pulls AXFR over TLS from named, which refuses plain TCP', async () => {
    const served = await ca.issue('ns2', 'ns2.test');
    ns2 = await startNs2({
      port: ns2Port,
      zones: [
        {
          name: ZONE,
          primaries: [
            {
              address: HOST,
              port: tlsPort,
              tls: { caFile: ca.caFile, serverName: 'primary.test', ...client },
            },
          ],
          allowTransfer: [`tls:${HOST}`],
          alsoNotify: [{ address: HOST, port: secondaryPort }],
        },
      ],
      extra: { tlsListen: [{ address: HOST, port: ns2TlsPort, ...served }] },
    });
    await waitFor('the zone over TLS', async () => (await soaSerial(ns2.port)) === 1);
    const rows = transfers(ns2);
    assert.deepEqual(
      rows.map((r) => [r.primary_addr, r.result, r.kind_performed]),
      [[`${HOST}#${tlsPort}`, 'transferred', 'axfr']],
    );
    // named saw the AXFR on a TLS session: its client port is one of the TLS sessions.
    const log = primary.log();
    const axfrFrom = [
      ...log.matchAll(
        /client @\S+ 127\.0\.0\.1#(\d+) \(xot\.test\): transfer of 'xot\.test\/IN': AXFR started/g,
      ),
    ];
    assert.equal(axfrFrom.length, 1, log);
    assert.ok(tlsClientPorts(log).has(axfrFrom[0][1]), 'the AXFR came over TLS');
    // Plain TCP to named's ordinary port: refused.
    const plain = await digAt(primary.port, [ZONE, 'AXFR', '+tries=1', '+time=3']);
    assert.match(plain, /Transfer failed/);
    assert.match(primary.log(), /zone transfer 'xot\.test\/AXFR\/IN' denied/);
    assert.match(await digAt(ns2.port, ['+short', `h7.${ZONE}`, 'A']), /10\.0\.0\.7/);
  });

  it('takes a change by IXFR over TLS after NOTIFY', async () => {
    await primary.nsupdate(`zone ${ZONE}\nupdate add new.${ZONE}. 300 A 192.0.2.77`);
    await waitFor('serial 2 on ns2', async () => (await soaSerial(ns2.port)) === 2);
    const last = transfers(ns2).at(-1)!;
    assert.equal(last.kind_performed, 'ixfr');
    const log = primary.log();
    const ixfrFrom = [
      ...log.matchAll(/127\.0\.0\.1#(\d+) \(xot\.test\): transfer of 'xot\.test\/IN': IXFR started/g),
    ];
    assert.equal(ixfrFrom.length, 1, log);
    assert.ok(tlsClientPorts(log).has(ixfrFrom[0][1]), 'the IXFR came over TLS');
  });

  it('serves a BIND secondary over TLS, AXFR then IXFR', async () => {
    secondary = await startNamed({
      port: secondaryPort,
      keys: `tls ns2 { ca-file "${ca.caFile}"; remote-hostname "ns2.test"; };`,
      zones: [{ name: ZONE, text: '', secondaryOf: { port: ns2TlsPort, tls: 'ns2' } }],
    });
    assert.equal(await soaSerial(secondary.port), 2);
    const out = ns2.logLines().filter((l) => l.msg === 'zone transferred out');
    assert.deepEqual(
      out.map((l) => [l.kind, l.transport]),
      [['axfr', 'tls']],
    );
    await primary.nsupdate(`zone ${ZONE}\nupdate add newer.${ZONE}. 300 A 192.0.2.78`);
    await waitFor('serial 3 on the BIND secondary', async () => (await soaSerial(secondary!.port)) === 3);
    const again = ns2.logLines().filter((l) => l.msg === 'zone transferred out');
    assert.deepEqual(
      again.map((l) => [l.kind, l.transport]),
      [
        ['axfr', 'tls'],
        ['ixfr', 'tls'],
      ],
    );
    assert.match(await secondary.dig(['+short', `newer.${ZONE}`, 'A']), /192\.0\.2\.78/);
  });

  it('serves kdig +tls (AXFR, IXFR, a query); plain TCP is refused as TLS is required', async () => {
    const tlsArgs = [`@${HOST}`, '-p', String(ns2TlsPort), `+tls-ca=${ca.caFile}`, '+tls-hostname=ns2.test'];
    const axfr = await kdig([...tlsArgs, ZONE, 'AXFR']);
    assert.equal(axfr.code, 0, axfr.stderr);
    assert.match(axfr.stdout, /newer\.xot\.test\.\s+300\s+IN\s+A\s+192\.0\.2\.78/);
    const outByTls = () =>
      ns2.logLines().filter((l) => l.msg === 'zone transferred out' && l.transport === 'tls').length;
    await waitFor('3 transfers out over TLS (BIND AXFR, IXFR; kdig AXFR)', () => outByTls() === 3);
    const ixfr = await kdig([...tlsArgs, ZONE, 'IXFR=2']);
    assert.equal(ixfr.code, 0, ixfr.stderr);
    const ixfrRRs = ixfr.stdout
      .split('\n')
      .filter((l) => l.startsWith(`newer.${ZONE}.`) || l.includes('\tSOA\t'));
    assert.equal(ixfrRRs.length, 5, ixfr.stdout); // SOA 3, SOA 2, SOA 3 (+newer), SOA 3
    await waitFor('kdig IXFR logged', () => outByTls() === 4);
    const q = await kdig([...tlsArgs, '+short', `h9.${ZONE}`, 'A']);
    assert.equal(q.stdout.trim(), '10.0.0.9');
    // Wrong name: kdig refuses ns2's certificate.
    const wrong = await kdig([
      `@${HOST}`,
      '-p',
      String(ns2TlsPort),
      `+tls-ca=${ca.caFile}`,
      '+tls-hostname=other.test',
      ZONE,
      'SOA',
    ]);
    assert.notEqual(wrong.code, 0);
    // Plain TCP from the same address: refused, and logged as needing TLS.
    const plain = await digAt(ns2.port, [ZONE, 'AXFR', '+tries=1']);
    assert.match(plain, /Transfer failed/);
    assert.ok(
      ns2.logLines().some((l) => l.msg === 'zone transfer refused: TLS required' && l.transport === 'tcp'),
    );
    // SIGHUP re-reads the TLS certificate; the daemon keeps serving over TLS.
    process.kill(ns2.pid, 'SIGHUP');
    await waitFor('certificate reloaded', () =>
      ns2.logLines().some((l) => l.msg === 'TLS certificate reloaded'),
    );
    const again = await kdig([...tlsArgs, '+short', `h9.${ZONE}`, 'A']);
    assert.equal(again.stdout.trim(), '10.0.0.9');
  });

  it('records TLS failures (wrong CA, wrong name, expired, no handshake) and keeps the zone', async () => {
    await secondary?.stop();
    secondary = undefined;
    await ns2.stop();
    await primary.nsupdate(`zone ${ZONE}\nupdate add later.${ZONE}. 300 A 192.0.2.79`);
    // Accepts TCP, never speaks TLS.
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, HOST, () => r()));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const expiredPort = (primary as Named & { expiredPort?: number }).expiredPort!;
    const good = { caFile: ca.caFile, serverName: 'primary.test', ...client };
    try {
      const before = transfers(ns2).length;
      ns2 = await startNs2({
        dir: ns2.dir,
        port: ns2Port,
        zones: [
          {
            name: ZONE,
            primaries: [
              { address: HOST, port: tlsPort, tls: { ...good, caFile: otherCa.caFile } },
              { address: HOST, port: tlsPort, tls: { ...good, serverName: 'other.test' } },
              { address: HOST, port: expiredPort, tls: good },
              { address: HOST, port: silentPort, tls: good },
              { address: HOST, port: tlsPort, tls: { caFile: ca.caFile, serverName: 'primary.test' } },
            ],
          },
        ],
      });
      await waitFor('five failed attempts', () => transfers(ns2).length >= before + 5, 20_000);
      const failed = transfers(ns2).slice(before);
      assert.deepEqual(
        failed.map((r) => r.result),
        ['failed', 'failed', 'failed', 'failed', 'failed'],
      );
      const errors = failed.map((r) => r.error ?? '');
      assert.match(errors[0], /certificate not trusted/);
      assert.match(errors[1], /hostname mismatch/);
      assert.match(errors[2], /certificate has expired/);
      assert.match(errors[3], /handshake timeout/);
      assert.match(
        errors[4],
        /closed the connection before any reply over TLS \(does it require a client certificate/,
      );
      // The zone we had is served as it was (serial 3; the primary is at 4).
      assert.equal(await soaSerial(ns2.port), 3);
      assert.equal(await soaSerial(primary.port), 4);
    } finally {
      silent.close();
    }
  });
});
