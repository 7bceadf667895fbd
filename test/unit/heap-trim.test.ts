/**
 * When the C heap is trimmed (src/heap-trim.ts): after zone loads pause for a second, at most every
 * 10 s while they go on, never when nothing was freed. A fake clock drives it.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { HeapTrimmer } from '../../src/heap-trim.js';

describe('heap trimming (heap-trim.ts)', () => {
  const setup = () => {
    let t = 0;
    let trims = 0;
    const trimmer = new HeapTrimmer(
      () => trims++,
      () => t,
    );
    return { trimmer, at: (ms: number) => (t = ms), trims: () => trims };
  };

  it('trims once loads have been quiet for a second, once per burst', () => {
    const { trimmer, at, trims } = setup();
    trimmer.tick();
    assert.equal(trims(), 0, 'nothing freed yet');
    at(100);
    trimmer.churned();
    at(900);
    trimmer.tick();
    assert.equal(trims(), 0, 'still loading');
    at(1100);
    trimmer.tick();
    assert.equal(trims(), 1);
    at(5000);
    trimmer.tick();
    assert.equal(trims(), 1, 'no churn since');
  });

  it('trims every 10 s while loads go on without a pause', () => {
    const { trimmer, at, trims } = setup();
    for (let ms = 0; ms <= 25_000; ms += 500) {
      at(ms);
      trimmer.churned();
      trimmer.tick();
    }
    assert.equal(trims(), 2); // at 10 s and 20 s
  });

  it('the addon is built beside the UDP one and callable', () => {
    const addon = createRequire(import.meta.url)('../../build/Release/heap_trim.node') as {
      trim: () => unknown;
    };
    assert.equal(typeof addon.trim(), 'boolean');
  });
});
