import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyCounts } from '../../../src/runtime/key-counts.js';

test('counts per key go up and down, and a remove too many never goes below zero', () => {
  const counts = new KeyCounts<bigint>();
  counts.add(1n);
  counts.add(1n);
  counts.add(2n);
  assert.equal(counts.of(1n), 2);
  assert.equal(counts.of(2n), 1);
  counts.remove(1n);
  counts.remove(2n);
  assert.equal(counts.of(1n), 1);
  assert.equal(counts.of(2n), 0);
  counts.remove(2n);
  assert.equal(counts.of(2n), 0);
  assert.equal(counts.of(3n), 0);
});
