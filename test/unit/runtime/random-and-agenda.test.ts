import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededRandom } from '../../../src/runtime/random.js';
import { EventQueue } from '../../../src/sim/event-queue.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';

test('a seeded generator replays the same stream and differs across seeds', () => {
  const a = new SeededRandom(1);
  const b = new SeededRandom(1);
  const c = new SeededRandom(2);
  const seqA = Array.from({ length: 100 }, () => a.u32());
  assert.deepEqual(seqA, Array.from({ length: 100 }, () => b.u32()));
  assert.notDeepEqual(seqA, Array.from({ length: 100 }, () => c.u32()));
  const mean = Array.from({ length: 10_000 }, () => a.float()).reduce((x, y) => x + y, 0) / 10_000;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `uniform mean ${mean}`);
});

test('the agenda runs events in time order, and same-time events in the order scheduled', () => {
  const q = new EventQueue();
  const order: string[] = [];
  q.push(5, () => order.push('c'));
  q.push(1, () => order.push('a'));
  q.push(5, () => order.push('d'));
  q.push(3, () => order.push('b'));
  for (let e = q.pop(); e; e = q.pop()) e.run();
  assert.deepEqual(order, ['a', 'b', 'c', 'd']);
});

test('virtual timers fire at their virtual time and cleared ones never fire', () => {
  const clock = new VirtualClock();
  const fired: number[] = [];
  clock.setTimer(100, () => fired.push(clock.now()));
  const cancelled = clock.setTimer(50, () => fired.push(-1));
  clock.setTimer(200, () => clock.setTimer(10, () => fired.push(clock.now())));
  clock.clearTimer(cancelled);
  clock.runUntil(1000);
  assert.deepEqual(fired, [100, 210]);
  assert.equal(clock.pendingTimers(), 0);
});
