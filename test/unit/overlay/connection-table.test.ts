import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionTable } from '../../../src/overlay/connection-table.js';

/*
 * Where Node-IDs are: an address the node proved (learn) against one a view suggested (suggest).
 */
const A = { host: '198.18.0.1', port: 6084 };
const B = { host: '198.18.0.2', port: 6084 };

test('a suggestion fills a gap, never replaces what is known, and gives way to a proof', () => {
  const table = new ConnectionTable();
  table.suggest(1n, A);
  assert.deepEqual(table.lookup(1n), A);
  assert.equal(table.proven(1n), undefined, 'only suggested');
  table.suggest(1n, B);
  assert.deepEqual(table.lookup(1n), A, 'a second suggestion does not move it');
  table.learn(1n, B);
  assert.deepEqual(table.proven(1n), B, 'the node proved another address');
  table.suggest(1n, A);
  assert.deepEqual(table.proven(1n), B, 'a suggestion never replaces a proof');
  // A proof at the suggested address makes the same entry proven.
  table.suggest(2n, A);
  table.learn(2n, A);
  assert.deepEqual(table.proven(2n), A);
  assert.deepEqual(table.idsAt(A), [2n]);
});

test('entries unused for half an hour go; reading a proven address is a use', () => {
  let now = 0;
  const table = new ConnectionTable(() => now);
  table.learn(1n, A);
  table.suggest(2n, B);
  for (let minute = 1; minute <= 40; minute++) {
    now = minute * 60_000;
    table.proven(1n);
  }
  // The sweep runs every 256 operations.
  for (let i = 0; i < 256; i++) table.suggest(1000n + BigInt(i), B);
  assert.deepEqual(table.proven(1n), A, 'in use');
  assert.equal(table.lookup(2n), undefined, 'unused, gone');
});

test('a full table drops a suggestion first, then the entry used least recently, never one in use', () => {
  let now = 0;
  const table = new ConnectionTable(() => now, 3);
  table.learn(1n, A);
  table.suggest(2n, B);
  table.learn(3n, B);
  table.learn(4n, B);
  assert.equal(table.lookup(2n), undefined, 'the suggestion went, though it was not the oldest');
  assert.deepEqual(table.proven(1n), A, 'the oldest proven entry stayed');
  // Entry 1 is used (forwarding reads it for every message, here twice a second); entries 3 and 4 are not.
  for (let tick = 1; tick <= 10; tick++) {
    now = tick * 500;
    table.proven(1n);
  }
  table.learn(5n, A);
  assert.deepEqual(table.proven(1n), A, 'the entry in use stays, though it was learnt first');
  assert.equal(table.proven(3n), undefined, 'the least recently used went');
  assert.ok(table.proven(4n) && table.proven(5n));
  assert.equal(table.size, 3);
});

test('a suggestion that arrives when the table is full of proofs is not kept: made-up views cannot flush proven addresses', () => {
  const table = new ConnectionTable(() => 0, 100);
  for (let i = 0n; i < 100n; i++) table.learn(i, A);
  for (let i = 1000n; i < 1050n; i++) table.suggest(i, B);
  for (let i = 0n; i < 100n; i++) assert.deepEqual(table.proven(i), A, `proof ${i} kept`);
  assert.equal(table.lookup(1000n), undefined);
  assert.equal(table.size, 100);
  // A new proof still finds room: the least recently used proof goes.
  table.learn(2000n, B);
  assert.deepEqual(table.proven(2000n), B);
  assert.equal(table.size, 100);
});
