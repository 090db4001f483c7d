import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NeighborTable } from '../../../src/overlay/topology/chord/neighbor-table.js';
import { betweenOpen, betweenRightClosed, clockwise, fingerTarget } from '../../../src/overlay/topology/chord/ring.js';
import { RING_SIZE } from '../../../src/wire/id.js';

const MAX = RING_SIZE - 1n;
const c = (id: bigint) => ({ id, address: { host: '198.18.0.1', port: Number(id % 60000n) } });

test('ring intervals wrap around zero', () => {
  assert.equal(clockwise(MAX, 1n), 2n);
  assert.ok(betweenOpen(0n, MAX, 5n));
  assert.ok(!betweenOpen(5n, MAX, 5n));
  assert.ok(betweenRightClosed(5n, MAX, 5n));
  assert.ok(betweenRightClosed(123n, 7n, 7n), 'a lone peer is responsible for everything');
  assert.equal(fingerTarget(MAX, 1), (MAX + (1n << 127n)) % RING_SIZE);
});

test('the neighbour table keeps the closest peers on each side, nearest first', () => {
  const t = new NeighborTable(100n, 2);
  t.consider([c(300n), c(150n), c(50n), c(MAX), c(99n)]);
  assert.deepEqual(t.successors.map((x) => x.id), [150n, 300n]);
  assert.deepEqual(t.predecessors.map((x) => x.id), [99n, 50n]);
  t.remove(150n);
  assert.deepEqual(t.successors.map((x) => x.id), [300n]);
});

test("our successor's view replaces the far end of our successor list (stale entries drop out)", () => {
  const t = new NeighborTable(100n, 3);
  t.consider([c(200n), c(300n), c(400n)]);
  // 300 has died; 200 reports its successors without it.
  t.adoptSuccessorView(c(200n), [c(400n), c(500n)], [c(100n)]);
  assert.deepEqual(t.successors.map((x) => x.id), [200n, 400n, 500n]);
  // 200 reports a newcomer 150 as its predecessor: it becomes our successor.
  t.adoptSuccessorView(c(200n), [c(400n)], [c(150n)]);
  assert.deepEqual(t.successors.map((x) => x.id), [150n, 200n, 400n]);
});
