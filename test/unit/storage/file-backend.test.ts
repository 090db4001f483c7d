import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import type { StorageChange } from '../../../src/storage/backends/backend.js';
import { FileBackend } from '../../../src/storage/backends/file-backend.js';
import { testIdentity } from '../../helpers/fixtures.js';
import { removeDir, tempDir } from '../../helpers/processes.js';
import { userResource, value } from '../../helpers/storage-fixtures.js';

const alice = testIdentity(1);
const R = userResource(alice);
const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

function dir(): string {
  const d = tempDir('p2psip-fb-');
  dirs.push(d);
  return d;
}

function put(i: number): StorageChange {
  return { op: 'put', resource: R, kind: 0xf0001, generation: BigInt(i + 1), data: value(alice, R, 0xf0001, i, `value ${i}`) };
}

function appendAll(backend: FileBackend, changes: StorageChange[]): Promise<void> {
  return new Promise((resolve, reject) => backend.append(changes, (e) => (e ? reject(e) : resolve())));
}

test('appended changes survive a reopen, in order, and each append is synced before it is acknowledged', async () => {
  const d = dir();
  const a = new FileBackend(d);
  assert.equal(a.load().length, 0);
  for (let i = 0; i < 10; i++) await appendAll(a, [put(i)]);
  await appendAll(a, [{ op: 'remove', resource: R, kind: 0xf0001, key: '#3' }]);
  assert.ok(a.stats().syncs >= 11);
  await a.close();
  const loaded = new FileBackend(d).load();
  assert.equal(loaded.length, 11);
  assert.deepEqual(loaded.slice(0, 10).map((c) => (c.op === 'put' ? c.data.entry.key : -1)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(loaded[10].op, 'remove');
});

test('a torn last record (a kill mid-write) is cut off at load, and later appends start clean', async () => {
  const d = dir();
  const a = new FileBackend(d);
  a.load();
  await appendAll(a, [put(0), put(1)]);
  await a.close();
  const file = `${d}/store.log`;
  const whole = readFileSync(file);
  appendFileSync(file, whole.subarray(0, 20)); // half a record
  const b = new FileBackend(d);
  assert.equal(b.load().length, 2);
  assert.equal(b.recoveredTailBytes, 20);
  await appendAll(b, [put(2)]);
  await b.close();
  assert.equal(new FileBackend(d).load().length, 3);
});

test('a record whose checksum fails is never served', async () => {
  const d = dir();
  const a = new FileBackend(d);
  a.load();
  await appendAll(a, [put(0), put(1), put(2)]);
  await a.close();
  const file = `${d}/store.log`;
  const bytes = readFileSync(file);
  const second = 8 + bytes.readUInt32BE(0);
  bytes[second + 30] ^= 0x40; // flip a bit inside the second record
  writeFileSync(file, bytes);
  const loaded = new FileBackend(d).load();
  assert.equal(loaded.length, 1, 'only the records before the corruption are believed');
});

test('compaction rewrites the log to the live records and appends keep working after it', async () => {
  const d = dir();
  const a = new FileBackend(d);
  a.load();
  for (let i = 0; i < 50; i++) await appendAll(a, [put(i % 5)]);
  const before = statSync(`${d}/store.log`).size;
  await new Promise<void>((resolve, reject) => a.compact(() => [0, 1, 2, 3, 4].map(put), (e) => (e ? reject(e) : resolve())));
  await appendAll(a, [put(7)]);
  await a.close();
  assert.ok(statSync(`${d}/store.log`).size < before / 5);
  assert.equal(new FileBackend(d).load().length, 6);
  assert.equal(a.stats().compactions, 1);
});
