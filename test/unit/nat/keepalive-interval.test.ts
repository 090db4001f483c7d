import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keepaliveIntervalFor } from '../../../src/nat/binding-lifetime.js';

/*
 * A link's keepalives hold two NATs open: ours, which the node measures, and the far end's, which
 * it cannot. The measurement may make them more frequent, never less.
 */
const DEFAULT_MS = 25_000;

test('a binding that outlived the probe keeps the default: the far NAT may close at 30 s', () => {
  assert.equal(keepaliveIntervalFor({ survivedSeconds: 150, expiredBySeconds: null }, DEFAULT_MS), DEFAULT_MS);
});

test('a binding seen to expire sets keepalives at 80% of what it survived, between 2 s and the default', () => {
  assert.equal(keepaliveIntervalFor({ survivedSeconds: 10, expiredBySeconds: 20 }, DEFAULT_MS), 8_000);
  assert.equal(keepaliveIntervalFor({ survivedSeconds: 1, expiredBySeconds: 2 }, DEFAULT_MS), 2_000);
  assert.equal(keepaliveIntervalFor({ survivedSeconds: 60, expiredBySeconds: 90 }, DEFAULT_MS), DEFAULT_MS);
});
