import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appended, without } from '../../../src/runtime/exact-array.js';

test('appended and without return new lists and leave the old one alone', () => {
  const list = ['a', 'b'];
  assert.deepEqual(appended(list, 'c'), ['a', 'b', 'c']);
  assert.deepEqual(without(list, 'a'), ['b']);
  assert.deepEqual(without(list, 'b'), ['a']);
  assert.equal(without(list, 'z'), list, 'nothing to remove: the same list');
  assert.deepEqual(list, ['a', 'b']);
});
