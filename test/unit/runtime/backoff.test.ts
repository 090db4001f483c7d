import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextWait } from '../../../src/runtime/backoff.js';

/* The waits between tries after failures in a row: the first, then doubled up to the most. */
const waits = (firstMs: number, maxMs: number, tries: number) => {
  const out: number[] = [];
  let previous: number | undefined;
  for (let i = 0; i < tries; i++) out.push((previous = nextWait(previous, { firstMs, maxMs })));
  return out;
};

test('a media link Attach (1 s to 16 s) and a registration store (5 s to 60 s) wait as before: first, doubled, capped', () => {
  assert.deepEqual(waits(1_000, 16_000, 7), [1_000, 2_000, 4_000, 8_000, 16_000, 16_000, 16_000]);
  assert.deepEqual(waits(5_000, 60_000, 6), [5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
  assert.equal(nextWait(undefined, { firstMs: 90_000, maxMs: 60_000 }), 60_000, 'never past the most');
});
