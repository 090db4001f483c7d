/**
 * The enrollment authority's used nonces on disk (src/node/enrollment/used-nonces.ts): a nonce is
 * good once across restarts, and the file stays bounded while the authority runs.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { UsedNonces } from '../../../src/node/enrollment/used-nonces.js';

const root = mkdtempSync(path.join(tmpdir(), 'p2psip-nonces-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const nonceFile = (): string => path.join(root, `${dirs++}`, 'authority-nonces.bin');
const NOW = 1_800_000_000;
const WINDOW = 600;
const nonce = (i: number): string => i.toString(16).padStart(32, '0');

test('a nonce is good once, and still spent after a restart while its time can be believed', () => {
  const file = nonceFile();
  const nonces = UsedNonces.open(file, 100, NOW);
  assert.equal(nonces.firstUse(nonce(1), NOW + WINDOW, NOW), true);
  assert.equal(nonces.firstUse(nonce(1), NOW + WINDOW, NOW + 1), false);
  const restarted = UsedNonces.open(file, 100, NOW + 60);
  assert.equal(restarted.firstUse(nonce(1), NOW + WINDOW, NOW + 60), false, 'replayed after the restart');
  assert.equal(restarted.firstUse(nonce(2), NOW + 60 + WINDOW, NOW + 60), true);
  const muchLater = UsedNonces.open(file, 100, NOW + WINDOW + 30);
  assert.equal(muchLater.size, 1, 'the expired nonce is dropped at the start');
});

test('a running authority compacts its file: signed requests at the transport rate all day keep it bounded', () => {
  const file = nonceFile();
  const nonces = UsedNonces.open(file, 10_000, NOW);
  // One request every 2 s (the enrollment transport's rate for one source) for 22 hours: 40,000
  // records of 37 bytes, 1.5 MB appended (before, a file grew like this by 1.6 MB a day until a
  // start found it over 4 MB and read none of it).
  const requests = 40_000;
  let largest = 0;
  for (let i = 0; i < requests; i++) {
    const now = NOW + 2 * i;
    assert.equal(nonces.firstUse(nonce(i), now + WINDOW, now), true);
    if (i % 500 === 0) largest = Math.max(largest, statSync(file).size);
  }
  assert.ok(largest <= 1024 * 1024 + 37, `the file reached ${largest} bytes`);
  const end = NOW + 2 * (requests - 1);
  // The live ones (the last 10 minutes: 301 of them) survive the next start; older ones were dropped.
  const restarted = UsedNonces.open(file, 10_000, end);
  assert.equal(restarted.size, WINDOW / 2 + 1);
  assert.equal(restarted.firstUse(nonce(requests - 1), end + WINDOW, end), false, 'the newest is still spent');
  assert.equal(restarted.firstUse(nonce(requests - 1 - WINDOW / 2), end, end), false, 'the oldest live one is still spent');
});

test('a record torn by a crash mid-append is dropped; the records before it stand', () => {
  const file = nonceFile();
  const nonces = UsedNonces.open(file, 100, NOW);
  nonces.firstUse(nonce(7), NOW + WINDOW, NOW);
  appendFileSync(file, Buffer.from([0x6b, 0x49, 0xd6, 0x58, 32, 0x30, 0x30])); // 32 bytes promised, 2 written
  const restarted = UsedNonces.open(file, 100, NOW + 1);
  assert.equal(restarted.size, 1);
  assert.equal(restarted.firstUse(nonce(7), NOW + WINDOW, NOW + 1), false);
  assert.equal(restarted.firstUse(nonce(8), NOW + WINDOW, NOW + 1), true);
  assert.equal(statSync(file).size, 2 * (5 + 32), 'the torn record is gone from the file');
  assert.equal(UsedNonces.open(file, 100, NOW + 2).size, 2, 'and what came after it reads back');
});

test('opening only reads: a listing run as another user, or on a read-only copy, leaves the file as it was (review F4)', () => {
  const file = nonceFile();
  const nonces = UsedNonces.open(file, 100, NOW);
  nonces.firstUse(nonce(1), NOW + 10, NOW);
  nonces.firstUse(nonce(2), NOW + WINDOW, NOW);
  const before = statSync(file);
  const opened = UsedNonces.open(file, 100, NOW + 60);
  assert.equal(opened.size, 1, 'the expired one is not believed');
  const after = statSync(file);
  assert.deepEqual([after.ino, after.size, after.mtimeMs, after.uid], [before.ino, before.size, before.mtimeMs, before.uid], 'the same file, untouched');
  assert.equal(opened.firstUse(nonce(3), NOW + 60 + WINDOW, NOW + 60), true);
  assert.equal(statSync(file).size, 2 * (5 + 32), 'the first nonce taken drops the expired record');
});
