/**
 * Where zone images come from: the writer thread, right after it commits (it holds the data
 * and is off the answering path). An AXFR gets a fresh base image; an IXFR a patch of the owners
 * it touched, until the patches laid over a base grow past a share of it — then a fresh base,
 * so lookups never wade through a large overlay.
 */
import { nameKey } from '../dns/name.js';
import type { Diff, ZoneStore } from '../store/zone-store.js';
import { buildImage, buildPatch, type ImageData, ownerCount } from './zone-image.js';

/** What a serving thread installs: a new base, or a patch over the base it holds. */
export interface ImageUpdate {
  zone: string;
  serial: number;
  kind: 'base' | 'patch';
  data: ImageData;
}

/** A fresh base once the overlay holds more owners than this share of the base (or 2000). */
const REBUILD_SHARE = 0.05;
const REBUILD_MIN = 2000;

export class ImageSource {
  /** Per zone: owners in the base, owners patched since. */
  private readonly sizes = new Map<string, { base: number; patched: number }>();

  constructor(private readonly store: ZoneStore) {}

  /** The zone's committed version as a base image (undefined when the zone holds no data). */
  base(zone: string): ImageUpdate | undefined {
    const soa = this.store.soaRecord(zone);
    if (!soa) return undefined;
    try {
      const data = this.store.snapshot(() => buildImage(this.store.scanZone(zone)));
      this.sizes.set(zone, { base: ownerCount(data), patched: 0 });
      return { zone, serial: soa.serial, kind: 'base', data };
    } finally {
      // No read snapshot left open in the writer: it would hold back WAL checkpoints.
      this.store.invalidate();
    }
  }

  /** After an IXFR commit: the touched owners' new contents, or a fresh base. */
  afterDiffs(zone: string, serial: number, diffs: readonly Diff[]): ImageUpdate | undefined {
    const size = this.sizes.get(zone);
    const touched = new Map<string, Buffer>();
    for (const d of diffs)
      for (const rr of [...d.deleted, ...d.added]) {
        const k = nameKey(rr.owner);
        touched.set(k.toString('latin1'), k);
      }
    if (!size || size.patched + touched.size > Math.max(REBUILD_MIN, size.base * REBUILD_SHARE))
      return this.base(zone);
    try {
      const reader = this.store.reader(zone);
      const data = this.store.snapshot(() =>
        buildPatch([...touched.values()].map((k) => [k, reader.node(k)])),
      );
      size.patched += touched.size;
      return { zone, serial, kind: 'patch', data };
    } finally {
      this.store.invalidate();
    }
  }

  forget(zone: string): void {
    this.sizes.delete(zone);
  }
}
