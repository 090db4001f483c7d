import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReceiveWindow } from '../../../src/link/receive-window.js';

test('duplicates are recognised in order, out of order, and across a gap', () => {
  const w = new ReceiveWindow();
  assert.equal(w.accept(10), true);
  assert.equal(w.accept(10), false);
  assert.equal(w.accept(12), true);
  assert.equal(w.accept(11), true);
  assert.equal(w.accept(11), false);
  assert.equal(w.accept(1000), true); // a burst: 13..999 may still arrive late
  assert.equal(w.accept(12), false);
  assert.equal(w.accept(13), true);
  assert.equal(w.accept(13), false);
  assert.equal(w.mask, 0);
  assert.equal(w.accept(999), true);
  assert.equal(w.mask, 1, 'the ack mask shows 999 received');
  assert.equal(w.accept(3000), true);
  assert.equal(w.accept(1000), false, 'too old to tell is treated as seen');
});

test('a sender that restarted its numbering far away is accepted afresh', () => {
  const w = new ReceiveWindow();
  w.accept(1_000_000_000);
  assert.equal(w.accept(3), true);
  assert.equal(w.accept(4), true);
  assert.equal(w.accept(3), false);
});
