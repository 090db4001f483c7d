import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaPortPool, MediaPortsExhausted } from '../../../../src/usages/sip/media/port-pool.js';

test('RTP on even ports, handed out round the range so a freed pair is reused last', () => {
  const pool = new MediaPortPool(40001, 40010); // pairs 40002, 40004, 40006, 40008
  assert.equal(pool.capacity, 4);
  const a = pool.allocate();
  const b = pool.allocate();
  assert.deepEqual([a, b], [40002, 40004]);
  pool.release(a);
  assert.equal(pool.allocate(), 40006, 'not the pair just freed');
  assert.equal(pool.allocate(), 40008);
  assert.equal(pool.allocate(), 40002, 'round again, to the freed pair');
  assert.equal(pool.pairsInUse, 4);
});

test('a full range is a typed error (the peer answers 503 with Retry-After); ports the system refuses are skipped', () => {
  const pool = new MediaPortPool(40000, 40003);
  assert.equal(pool.allocate((port) => port === 40000), 40002);
  assert.throws(() => pool.allocate((port) => port === 40000), MediaPortsExhausted);
  assert.throws(() => new MediaPortPool(80, 90), /1024-65535/);
  assert.throws(() => new MediaPortPool(40000, 40000), /at least one/);
});
