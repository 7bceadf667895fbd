/**
 * The one rdata layout table (src/dns/rdata-layout.ts): every type in it round-trips through the
 * three places that read it — written by MessageWriter (names compressed only for the RFC 1035
 * types, RFC 3597 §4), read back by readRR/readRdata (compressed names expanded), and accepted by
 * the intake check rdataProblem — and the same table drives all three.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readRR } from '../../src/dns/message.js';
import { textToName } from '../../src/dns/name.js';
import { readRdata } from '../../src/dns/rdata.js';
import { type Field, fixedLength, RDATA_LAYOUTS, rdataProblem } from '../../src/dns/rdata-layout.js';
import { typeToText } from '../../src/dns/types.js';
import { MessageWriter } from '../../src/dns/writer.js';
import { rdataProblem as intakeProblem } from '../../src/xfrin/validate.js';

const TARGET = textToName('target.example.test');
/** RFC 3597 §4, written out here (not read from the table): the types whose rdata names may be
 * compressed when sent, and the further ones a receiver must also decompress. */
const RFC1035_COMPRESSED = ['NS', 'MD', 'MF', 'CNAME', 'SOA', 'MB', 'MG', 'MR', 'PTR', 'MINFO', 'MX'];
const ALSO_DECOMPRESSED = ['RP', 'AFSDB', 'RT', 'SIG', 'PX', 'NXT', 'NAPTR', 'SRV'];

/** A valid value for one field (names: a name the owner shares a suffix with). */
function sample(f: Field, type: number): Buffer {
  if (typeof f === 'number') {
    const b = Buffer.alloc(f, 1);
    if (type === 29) b[0] = 0; // LOC version 0
    return b;
  }
  switch (f) {
    case 'name':
      return TARGET;
    case 'string':
    case 'string1':
      return Buffer.from([3, 0x61, 0x62, 0x63]);
    case 'rest':
    case 'rest1':
      return type === 29 ? Buffer.alloc(15, 1) : Buffer.from([9, 8, 7]);
    case 'strings':
      return Buffer.from([1, 0x61, 2, 0x62, 0x63]);
    case 'bitmap':
    case 'bitmap0':
      return Buffer.from([0, 1, 0x40]);
    case 'svcparams':
      return Buffer.from([0, 1, 0, 3, 2, 0x68, 0x32]);
    case 'apl':
      return Buffer.from([0, 1, 24, 3, 192, 0, 2]);
    case 'data16':
      return Buffer.from([0, 2, 0xaa, 0xbb]);
  }
}

describe('rdata layout table', () => {
  for (const [type, layout] of RDATA_LAYOUTS) {
    it(`${typeToText(type)}: written, read back and checked from the one layout`, () => {
      const rdata = Buffer.concat(layout.fields.map((f) => sample(f, type)));
      assert.equal(rdataProblem(type, rdata), undefined);
      assert.equal(intakeProblem(type, rdata), undefined);
      // One byte short never fits a layout with a fixed length or a name at the end.
      if (fixedLength(type) !== undefined) assert.notEqual(rdataProblem(type, rdata.subarray(1)), undefined);

      const w = new MessageWriter(4096);
      w.off = 12;
      w.name(TARGET); // an earlier copy for the rdata's name to point at
      const rrAt = w.off;
      w.rr(textToName('owner.example.test'), type, 1, 60, rdata);
      const msg = w.finish();
      const { rr, end } = readRR(msg, rrAt);
      assert.equal(end, msg.length);
      assert.deepEqual(rr.rdata, rdata, 'the same rdata once read back');
      // Compressed on the wire exactly for the RFC 1035 types (RFC 3597 §4, the list above).
      const sent = msg.length - rrAt;
      const plainSize = 2 + 10 + rdata.length; // owner compressed to a pointer + RR header + rdata
      if (RFC1035_COMPRESSED.includes(typeToText(type)))
        assert.ok(sent < plainSize, `${typeToText(type)} compressed`);
      else assert.ok(sent >= plainSize, `${typeToText(type)} not compressed`);
    });
  }

  it('the table names exactly the RFC 1035 types as compressible, and the RFC 3597 §4 ones as expanded', () => {
    const by = (k: string) => [...RDATA_LAYOUTS].filter(([, l]) => l.names === k).map(([t]) => typeToText(t));
    assert.deepEqual(by('rfc1035').sort(), [...RFC1035_COMPRESSED].sort());
    for (const t of ALSO_DECOMPRESSED) assert.ok(by('decompress').includes(t), t);
  });

  it('readRdata expands a compressed name only in types the table lets it (RFC 3597 §4)', () => {
    const w = new MessageWriter(512);
    w.off = 12;
    w.name(TARGET);
    const ptr = Buffer.from([0xc0, 12]);
    const msg = Buffer.concat([w.finish(), ptr]);
    const at = msg.length - 2;
    for (const [type, layout] of RDATA_LAYOUTS) {
      if (layout.fields.length !== 1 || layout.fields[0] !== 'name') continue;
      const out = readRdata(msg, at, 2, type);
      const expands = layout.names === 'rfc1035' || layout.names === 'decompress';
      assert.deepEqual(out, expands ? TARGET : ptr, typeToText(type));
    }
  });
});
