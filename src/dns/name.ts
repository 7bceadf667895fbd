/**
 * Domain names as wire bytes (RFC 1035 §3.1): reading with decompression, presentation text
 * (RFC 1035 §5.1 escapes), case folding, and the ordering key the store indexes.
 *
 * A name is carried as its uncompressed wire form (a Buffer ending in the root label) so labels
 * holding '.' or arbitrary octets survive unchanged — dns-packet's string names do not (STACK.md).
 */

export class WireError extends Error {}

const MAX_NAME = 255;
const MAX_LABEL = 63;

/** The root name in wire form. */
export const ROOT = Buffer.from([0]);

/**
 * Reads the name at `off` in `msg`, following compression pointers (RFC 1035 §4.1.4).
 * Pointers must point strictly backwards, which also rules out loops.
 * Returns the uncompressed name and the offset just after the name's encoding at `off`.
 */
export function readName(msg: Buffer, off: number): { name: Buffer; end: number } {
  const parts: Buffer[] = [];
  let len = 0;
  let end = -1;
  let pos = off;
  let lowest = off;
  for (;;) {
    if (pos >= msg.length) throw new WireError('name runs past end of message');
    const b = msg[pos];
    if (b === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = b & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= msg.length) throw new WireError('truncated compression pointer');
      const target = ((b & 0x3f) << 8) | msg[pos + 1];
      if (end < 0) end = pos + 2;
      if (target >= lowest) throw new WireError('compression pointer does not point backwards');
      lowest = target;
      pos = target;
      continue;
    }
    if (kind !== 0) throw new WireError(`unsupported label type 0x${kind.toString(16)}`);
    if (pos + 1 + b > msg.length) throw new WireError('label runs past end of message');
    len += b + 1;
    if (len + 1 > MAX_NAME) throw new WireError('name longer than 255 octets');
    parts.push(msg.subarray(pos, pos + 1 + b));
    pos += 1 + b;
  }
  parts.push(ROOT);
  return { name: Buffer.concat(parts, len + 1), end };
}

/** Length of the (possibly compressed) name encoding at `off`, without decoding it. */
export function skipName(msg: Buffer, off: number): number {
  let pos = off;
  for (;;) {
    if (pos >= msg.length) throw new WireError('name runs past end of message');
    const b = msg[pos];
    if (b === 0) return pos + 1;
    if ((b & 0xc0) === 0xc0) {
      if (pos + 1 >= msg.length) throw new WireError('truncated compression pointer');
      return pos + 2;
    }
    if ((b & 0xc0) !== 0) throw new WireError('unsupported label type');
    pos += 1 + b;
  }
}

/** The labels of an uncompressed wire name, without the root label. */
export function labels(wire: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (wire[pos] !== 0) {
    const n = wire[pos];
    out.push(wire.subarray(pos + 1, pos + 1 + n));
    pos += 1 + n;
  }
  return out;
}

export function labelCount(wire: Buffer): number {
  let n = 0;
  let pos = 0;
  while (wire[pos] !== 0) {
    pos += 1 + wire[pos];
    n++;
  }
  return n;
}

/** Builds a wire name from labels (root appended). */
export function fromLabels(parts: Buffer[]): Buffer {
  const chunks: Buffer[] = [];
  for (const l of parts) chunks.push(Buffer.from([l.length]), l);
  chunks.push(ROOT);
  return Buffer.concat(chunks);
}

/** Removes the first `n` labels: parent(www.example.com, 1) = example.com. */
export function stripLabels(wire: Buffer, n: number): Buffer {
  let pos = 0;
  for (let i = 0; i < n && wire[pos] !== 0; i++) pos += 1 + wire[pos];
  return wire.subarray(pos);
}

/** ASCII-only lower-casing (RFC 4343): other octets are compared as they are. */
export function toLower(wire: Buffer): Buffer {
  let out: Buffer | undefined;
  let pos = 0;
  while (wire[pos] !== 0) {
    const n = wire[pos];
    for (let i = pos + 1; i <= pos + n; i++) {
      const c = wire[i];
      if (c >= 0x41 && c <= 0x5a) {
        if (!out) out = Buffer.from(wire);
        out[i] = c + 0x20;
      }
    }
    pos += 1 + n;
  }
  return out ?? wire;
}

export function equalNames(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && toLower(a).equals(toLower(b));
}

/** True when `name` is `zone` or below it (case-insensitive). */
export function isSubdomain(name: Buffer, zone: Buffer): boolean {
  if (name.length < zone.length) return false;
  const off = name.length - zone.length;
  // The suffix must start on a label boundary of `name`.
  let pos = 0;
  while (pos < off) pos += 1 + name[pos];
  if (pos !== off) return false;
  return toLower(name.subarray(off)).equals(toLower(zone));
}

/**
 * Index key for a name: labels from the root down, each as length byte + lower-cased octets.
 * Length prefixes make the encoding prefix-free, so every name below X sorts in the open
 * interval (key(X), key(X) || 0xff): "has descendants" is one index range probe.
 */
export function nameKey(wire: Buffer): Buffer {
  // One pass for the label starts, one to write them root-first, lower-cased: on the query path.
  let n = 0;
  let pos = 0;
  while (wire[pos] !== 0) {
    LABEL_STARTS[n++] = pos;
    pos += 1 + wire[pos];
  }
  const out = Buffer.allocUnsafe(pos);
  let o = 0;
  for (let i = n - 1; i >= 0; i--) {
    const s = LABEL_STARTS[i];
    const len = wire[s];
    out[o++] = len;
    for (let j = s + 1; j <= s + len; j++) {
      const c = wire[j];
      out[o++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
    }
  }
  return out;
}

/** A name has at most 127 labels (255 octets). */
const LABEL_STARTS = new Int32Array(128);

// RFC 1035 §5.1: characters with special meaning in master files are escaped with '\'.
const SPECIAL = new Set([0x22, 0x28, 0x29, 0x2e, 0x3b, 0x5c, 0x40, 0x24]);

function labelToText(label: Buffer): string {
  let s = '';
  for (const c of label) {
    if (SPECIAL.has(c)) s += `\\${String.fromCharCode(c)}`;
    else if (c < 0x21 || c > 0x7e) s += `\\${c.toString().padStart(3, '0')}`;
    else s += String.fromCharCode(c);
  }
  return s;
}

/**
 * Presentation form. `fqdn` adds the trailing dot as dig prints names inside rdata;
 * without it the root is "." and other names carry no trailing dot (the store's `name` column).
 */
export function nameToText(wire: Buffer, fqdn = true): string {
  const ls = labels(wire);
  if (ls.length === 0) return '.';
  const text = ls.map(labelToText).join('.');
  return fqdn ? `${text}.` : text;
}

/** Parses presentation text (with \X and \DDD escapes); relative names are taken as absolute. */
export function textToName(text: string): Buffer {
  if (text === '.' || text === '') return Buffer.from(ROOT);
  const parts: Buffer[] = [];
  let cur: number[] = [];
  const bytes = Buffer.from(text, 'utf8');
  let i = 0;
  const endLabel = () => {
    if (cur.length === 0) throw new WireError(`empty label in "${text}"`);
    if (cur.length > MAX_LABEL) throw new WireError(`label longer than 63 octets in "${text}"`);
    parts.push(Buffer.from(cur));
    cur = [];
  };
  while (i < bytes.length) {
    const c = bytes[i];
    if (c === 0x5c) {
      const d = bytes.subarray(i + 1, i + 4).toString('latin1');
      if (/^[0-9]{3}$/.test(d)) {
        const v = Number(d);
        if (v > 255) throw new WireError(`bad escape \\${d} in "${text}"`);
        cur.push(v);
        i += 4;
      } else {
        if (i + 1 >= bytes.length) throw new WireError(`dangling escape in "${text}"`);
        cur.push(bytes[i + 1]);
        i += 2;
      }
    } else if (c === 0x2e) {
      endLabel();
      i++;
    } else {
      cur.push(c);
      i++;
    }
  }
  if (cur.length > 0) endLabel();
  const wire = fromLabels(parts);
  if (wire.length > MAX_NAME) throw new WireError(`name longer than 255 octets: "${text}"`);
  return wire;
}

/** The wire name (lower case) of a nameKey(): the inverse of nameKey for lower-case names. */
export function keyToName(nkey: Buffer): Buffer {
  // The same labels leaf-first: each root-first label is copied to the end of what is left.
  const out = Buffer.allocUnsafe(nkey.length + 1);
  out[nkey.length] = 0;
  let w = nkey.length;
  for (let pos = 0; pos < nkey.length; pos += 1 + nkey[pos]) {
    w -= 1 + nkey[pos];
    nkey.copy(out, w, pos, pos + 1 + nkey[pos]);
  }
  return out;
}
