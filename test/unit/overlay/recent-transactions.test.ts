import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentTransactions } from '../../../src/overlay/recent-transactions.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import { nodeDestination, type OverlayMessage } from '../../../src/wire/message.js';

test('a request seen lately is recognised until its minute is up, with the answer that was sent', () => {
  const clock = new VirtualClock();
  const recent = new RecentTransactions(clock);
  assert.equal(recent.lookup('a/1'), undefined);
  recent.remember('a/1', null);
  assert.equal(recent.lookup('a/1'), null, 'seen, not answered yet');
  clock.runUntil(clock.now() + 59_000);
  assert.equal(recent.lookup('a/1'), null);
  clock.runUntil(clock.now() + 2_000);
  assert.equal(recent.lookup('a/1'), undefined, 'forgotten after 60 s');
});

test('after a burst, the old answers go with the next request instead of lingering until 4,096 newer ones push them out', () => {
  const clock = new VirtualClock();
  const recent = new RecentTransactions(clock);
  for (let i = 0; i < 3000; i++) recent.remember(`burst/${i}`, null);
  assert.equal(recent.size, 3000);
  clock.runUntil(clock.now() + 61_000);
  recent.remember('later/1', null);
  assert.equal(recent.size, 1, 'only the new request is kept');
});

test('never more than 4,096 remembered, the oldest going first', () => {
  const clock = new VirtualClock();
  const recent = new RecentTransactions(clock);
  for (let i = 0; i < 5000; i++) recent.remember(`k/${i}`, null);
  assert.equal(recent.size, 4096);
  assert.equal(recent.lookup('k/0'), undefined);
  assert.equal(recent.lookup('k/4999'), null);
});

test('the answer sent is the answer a replay gets, field for field', () => {
  const recent = new RecentTransactions(new VirtualClock());
  const answer: OverlayMessage = {
    header: { overlay: 7, configSequence: 3, ttl: 100, fragment: { offset: 0, total: 3 }, via: [], destinations: [nodeDestination(0x1234n)], transactionId: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), code: 9 },
    payload: new Uint8Array([0xff, 0x00, 0x80]),
  };
  recent.remember('a/1', answer);
  assert.deepEqual(recent.lookup('a/1'), answer);
});
