import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlightQueue } from '../../../src/runtime/in-flight-queue.js';

test('jobs run in order with at most `limit` in flight; the rest wait until one finishes', () => {
  const started: number[] = [];
  const finish: (() => void)[] = [];
  const queue = new InFlightQueue<number>(2, (job, done) => {
    started.push(job);
    finish.push(done);
  });
  for (let i = 0; i < 5; i++) queue.add(i);
  assert.deepEqual(started, [0, 1]);
  assert.equal(queue.inFlight, 2);
  assert.equal(queue.queued, 3);
  finish[0]();
  finish[0](); // a second call changes nothing
  assert.deepEqual(started, [0, 1, 2]);
  finish[1]();
  finish[2]();
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  assert.equal(queue.queued, 0);
  queue.clear();
  finish[3]();
  finish[4]();
  assert.equal(queue.inFlight, 0);
});

test('a hundred thousand jobs that finish at once run in a loop, not a recursion, and clear() drops the waiting', () => {
  let ran = 0;
  const queue = new InFlightQueue<number>(1, (_job, done) => {
    ran++;
    done();
  });
  for (let i = 0; i < 100_000; i++) queue.add(i);
  assert.equal(ran, 100_000);
  let held: (() => void) | undefined;
  const slow = new InFlightQueue<number>(1, (_job, done) => (held = done));
  for (let i = 0; i < 10; i++) slow.add(i);
  slow.clear();
  held!();
  assert.equal(slow.queued, 0);
  assert.equal(slow.inFlight, 0);
});
