/**
 * `ns2 history`, `ns2 diff` and the `status` table, as text, from a store built in a temp file.
 * Diff lines come in the order `ns2 dump` prints (SOA first, then the store's name key: labels
 * from the root, shorter labels first, so www sorts before mail).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { diffText, historyText, parseSerial, statusText } from '../../src/operator.js';
import { type ZoneRR, ZoneStore } from '../../src/store/zone-store.js';
import { a, n, rr, soa, txt } from '../harness/records.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns2-history-'));
const Z = 'example.test';
const T0 = Date.UTC(2024, 0, 1) / 1000; // 2024-01-01T00:00:00Z
const P = '127.0.0.1#5300';

/** The zone at `serial`: `extra` RRs on top of SOA, NS and the name server's address. */
function version(serial: number, ...extra: ZoneRR[]): ZoneRR[] {
  return [
    rr(Z, 'SOA', 3600, soa('ns1.example.test', 'hostmaster.example.test', serial)),
    rr(Z, 'NS', 3600, n('ns1.example.test')),
    rr('ns1.example.test', 'A', 3600, a('192.0.2.53')),
    ...extra,
  ];
}

const www1 = rr('www.example.test', 'A', 300, a('192.0.2.1'));
const www2 = rr('www.example.test', 'A', 300, a('192.0.2.2'));
const mail = rr('mail.example.test', 'A', 3600, a('192.0.2.25'));
const hello = rr(Z, 'TXT', 60, txt('hello world'));

const SOA_TEXT = (s: number) => `ns1.example.test. hostmaster.example.test. ${s} 3600 600 86400 300`;

let store: ZoneStore;

before(() => {
  store = new ZoneStore(path.join(dir, 'h.db'));
  const apply = (rrs: ZoneRR[], serial: number, hours: number, primary = P) =>
    store.replaceZone(Z, rrs, { serial, primary, now: T0 + hours * 3600 });
  apply(version(1, www1, mail), 1, 0); // change 1: first load
  apply(version(2, www1, www2), 2, 1); // change 2: mail removed, www2 added
  apply(version(3, www1, www2, mail, hello), 3, 2); // change 3: mail back, TXT added
  apply(version(3, www1, www2, mail, hello), 3, 3, '127.0.0.2#53'); // change 4: retransfer, same data
  apply(version(4, www2, mail, hello), 4, 4); // change 5: www1 removed
  // TTL change: the old RR goes, the new one comes.
  apply(version(5, www2, mail, rr(Z, 'TXT', 120, txt('hello world'))), 5, 5); // change 6
  apply(version(6, www2, mail), 6, 6); // change 7: TXT removed
});

after(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('ns2 history', () => {
  it('lists every applied transfer, oldest first', () => {
    assert.equal(
      historyText(store, 'Example.Test.'),
      [
        'id  applied_at                kind  serials  removed  added  primary',
        '1   2024-01-01T00:00:00.000Z  axfr  - → 1    0        5      127.0.0.1#5300',
        '2   2024-01-01T01:00:00.000Z  axfr  1 → 2    2        2      127.0.0.1#5300',
        '3   2024-01-01T02:00:00.000Z  axfr  2 → 3    1        3      127.0.0.1#5300',
        '4   2024-01-01T03:00:00.000Z  axfr  3 → 3    0        0      127.0.0.2#53',
        '5   2024-01-01T04:00:00.000Z  axfr  3 → 4    2        1      127.0.0.1#5300',
        '6   2024-01-01T05:00:00.000Z  axfr  4 → 5    2        2      127.0.0.1#5300',
        '7   2024-01-01T06:00:00.000Z  axfr  5 → 6    2        1      127.0.0.1#5300',
        '',
      ].join('\n'),
    );
  });

  it('is just the header for a zone without changes', () => {
    assert.equal(
      historyText(store, 'other.test'),
      'id  applied_at  kind  serials  removed  added  primary\n',
    );
  });
});

describe('ns2 diff', () => {
  const ok = (from: number, to: number) => {
    const r = diffText(store, Z, from, to);
    assert.ok(r.ok, r.ok ? '' : r.error);
    return r.text;
  };
  const lines = (...l: string[]) => `${l.join('\n')}\n`;

  it('one step: the RRs the transfer removed and added, SOA first', () => {
    assert.equal(
      ok(1, 2),
      lines(
        '--- example.test serial 1',
        '+++ example.test serial 2',
        `-example.test.\t3600\tIN\tSOA\t${SOA_TEXT(1)}`,
        `+example.test.\t3600\tIN\tSOA\t${SOA_TEXT(2)}`,
        '+www.example.test.\t300\tIN\tA\t192.0.2.2',
        '-mail.example.test.\t3600\tIN\tA\t192.0.2.25',
      ),
    );
  });

  it('an RR removed then added again within the range cancels out', () => {
    assert.equal(
      ok(1, 3),
      lines(
        '--- example.test serial 1',
        '+++ example.test serial 3',
        `-example.test.\t3600\tIN\tSOA\t${SOA_TEXT(1)}`,
        `+example.test.\t3600\tIN\tSOA\t${SOA_TEXT(3)}`,
        '+example.test.\t60\tIN\tTXT\t"hello world"',
        '+www.example.test.\t300\tIN\tA\t192.0.2.2',
      ),
    );
  });

  it('follows the chain through a same-serial retransfer, and nets an add then remove to nothing', () => {
    assert.equal(
      ok(2, 6),
      lines(
        '--- example.test serial 2',
        '+++ example.test serial 6',
        `-example.test.\t3600\tIN\tSOA\t${SOA_TEXT(2)}`,
        `+example.test.\t3600\tIN\tSOA\t${SOA_TEXT(6)}`,
        '-www.example.test.\t300\tIN\tA\t192.0.2.1',
        '+mail.example.test.\t3600\tIN\tA\t192.0.2.25',
      ),
    );
  });

  it('a TTL change is the old RR removed and the new one added', () => {
    assert.equal(
      ok(4, 5),
      lines(
        '--- example.test serial 4',
        '+++ example.test serial 5',
        `-example.test.\t3600\tIN\tSOA\t${SOA_TEXT(4)}`,
        `+example.test.\t3600\tIN\tSOA\t${SOA_TEXT(5)}`,
        '-example.test.\t60\tIN\tTXT\t"hello world"',
        '+example.test.\t120\tIN\tTXT\t"hello world"',
      ),
    );
  });

  it('FROM = TO is the same-serial retransfer (here: nothing changed)', () => {
    assert.equal(ok(3, 3), lines('--- example.test serial 3', '+++ example.test serial 3'));
    assert.equal(ok(6, 6), lines('--- example.test serial 6', '+++ example.test serial 6'));
  });

  it('refuses serials that are not in the history, or in the wrong order', () => {
    assert.deepEqual(diffText(store, Z, 1, 9), {
      ok: false,
      error: 'example.test: no recorded change reaches serial 9',
    });
    assert.deepEqual(diffText(store, Z, 3, 2), {
      ok: false,
      error: 'example.test: serial 3 does not come before serial 2 in the recorded history',
    });
  });

  it('reports a broken chain when a change in the range is missing', () => {
    const file = path.join(dir, 'broken.db');
    const s = new ZoneStore(file);
    try {
      s.replaceZone(Z, version(1, www1), { serial: 1, primary: P, now: T0 });
      s.replaceZone(Z, version(2, www1, www2), { serial: 2, primary: P, now: T0 + 60 });
      s.replaceZone(Z, version(3, www2), { serial: 3, primary: P, now: T0 + 120 });
      s.replaceZone(Z, version(4, www2, mail), { serial: 4, primary: P, now: T0 + 180 });
      s.db.prepare('DELETE FROM changes WHERE zone = ? AND serial_to = 3').run(Z);
      assert.deepEqual(diffText(s, Z, 1, 4), {
        ok: false,
        error:
          'example.test: chain broken: no recorded change from serial 2 to serial 3 (between changes 2 and 4)',
      });
      // The unbroken parts still diff.
      assert.equal(
        (diffText(s, Z, 3, 4) as { text: string }).text,
        lines(
          '--- example.test serial 3',
          '+++ example.test serial 4',
          `-example.test.\t3600\tIN\tSOA\t${SOA_TEXT(3)}`,
          `+example.test.\t3600\tIN\tSOA\t${SOA_TEXT(4)}`,
          '+mail.example.test.\t3600\tIN\tA\t192.0.2.25',
        ),
      );
      // With everything before change 4 gone, nothing leads to serial 3.
      s.db.prepare('DELETE FROM changes WHERE zone = ? AND id < 4').run(Z);
      assert.deepEqual(diffText(s, Z, 2, 4), {
        ok: false,
        error: 'example.test: chain broken: no recorded change ends at serial 3 (change 4 starts there)',
      });
    } finally {
      s.close();
    }
  });

  it('parses serials as 32-bit unsigned integers', () => {
    assert.equal(parseSerial('2024010101'), 2024010101);
    assert.equal(parseSerial('4294967295'), 4294967295);
    assert.equal(parseSerial('4294967296'), undefined);
    assert.equal(parseSerial('-1'), undefined);
    assert.equal(parseSerial('1e3'), undefined);
  });
});

describe('ns2 status', () => {
  it('shows expires_in in seconds, - without a deadline', () => {
    store.updateZone(Z, { next_refresh: T0 + 7 * 3600, expires_at: T0 + 30 * 3600 });
    store.ensureZone('never.test');
    store.updateZone('never.test', { catalog: 'catalog.test', catalog_label: 'm1' });
    assert.equal(
      statusText(store, T0 + 6 * 3600),
      [
        'zone          serial  state         records  primary         last_refresh              next_refresh              expires_at                expires_in  catalog',
        'example.test  6       ok            5        127.0.0.1#5300  2024-01-01T06:00:00.000Z  2024-01-01T07:00:00.000Z  2024-01-02T06:00:00.000Z  86400       -',
        'never.test    -       never_loaded  0        -               -                         -                         -                         -           catalog.test',
        '',
      ].join('\n'),
    );
  });
});
