import assert from 'node:assert/strict';
import fs, { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import type { StorageChange } from '../../../src/storage/backends/backend.js';
import { FileBackend } from '../../../src/storage/backends/file-backend.js';
import { testIdentity } from '../../helpers/fixtures.js';
import { crc32 } from '../../../src/runtime/crc32.js';
import { encodeCbor } from '../../../src/wire/cbor.js';
import { idToBytes } from '../../../src/wire/id.js';
import { encodeStoredData } from '../../../src/wire/messages/stored-data.js';
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

/** A log holding `changes`, its backend closed. */
async function logOf(changes: StorageChange[]): Promise<{ d: string; file: string }> {
  const d = dir();
  const backend = new FileBackend(d);
  backend.load();
  await appendAll(backend, changes);
  await backend.close();
  return { d, file: `${d}/store.log` };
}

/** Which put(i) a loaded change is. */
function valueIndex(change: StorageChange): number | undefined {
  return change.op === 'put' && typeof change.data.entry.key === 'number' ? change.data.entry.key : undefined;
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
  const { d, file } = await logOf([put(0), put(1)]);
  const whole = readFileSync(file);
  appendFileSync(file, whole.subarray(0, 20)); // half a record
  const b = new FileBackend(d);
  assert.equal(b.load().length, 2);
  assert.equal(b.recoveredTailBytes, 20);
  assert.equal(b.setAside, undefined, 'a torn append is routine: nothing kept aside');
  await appendAll(b, [put(2)]);
  await b.close();
  assert.equal(new FileBackend(d).load().length, 3);
});

test('damage that cuts off more than a torn append leaves (a bad length field mid-log): the log as it was is kept aside, and status says so (durability review F1)', async () => {
  const big = (i: number): StorageChange => ({ op: 'put', resource: R, kind: 0xf0001, generation: BigInt(i + 1), data: value(alice, R, 0xf0001, i, `${i} `.repeat(4000)) });
  const { d, file } = await logOf(Array.from({ length: 12 }, (_, i) => big(i)));
  const whole = readFileSync(file);
  const third = whole.readUInt32BE(0) + 8 + whole.readUInt32BE(whole.readUInt32BE(0) + 8) + 8;
  const damaged = Buffer.from(whole);
  damaged.writeUInt32BE(0xffffffff, third); // the third record's length: nothing after it can be found
  writeFileSync(file, damaged);
  const b = new FileBackend(d);
  assert.equal(b.load().length, 2);
  assert.ok(b.recoveredTailBytes > 64 * 1024);
  assert.equal(b.setAside, `${d}/store.log.damaged`);
  assert.deepEqual(readFileSync(b.setAside!), damaged, 'the log as it was, every good record after the damage in it');
  assert.deepEqual({ cutAtLoad: b.stats().cutAtLoad, setAside: b.stats().setAside }, { cutAtLoad: b.recoveredTailBytes, setAside: b.setAside });
  await b.close();

  // The copy cannot be made (a full disk; here a directory in its way): the peer still starts, and says why.
  const again = await logOf(Array.from({ length: 12 }, (_, i) => big(i)));
  writeFileSync(again.file, damaged);
  fs.mkdirSync(`${again.d}/store.log.damaged/in-the-way`, { recursive: true });
  const c = new FileBackend(again.d);
  assert.equal(c.load().length, 2);
  assert.equal(c.setAside, undefined);
  assert.ok(c.stats().setAsideError, 'the reason is in status');
  await c.close();
});

test('a record whose checksum fails is never served; the records after it are kept, and compaction drops it', async () => {
  const { d, file } = await logOf([put(0), put(1), put(2)]);
  const bytes = readFileSync(file);
  const second = 8 + bytes.readUInt32BE(0);
  bytes[second + 30] ^= 0x40; // flip a bit inside the second record
  writeFileSync(file, bytes);
  const b = new FileBackend(d);
  const loaded = b.load();
  assert.deepEqual(loaded.map(valueIndex), [0, 2], 'the damaged record is passed over, the acknowledged one after it kept');
  assert.equal(b.damagedBytes, 8 + bytes.readUInt32BE(second));
  assert.equal(b.wantsCompaction(2), true, 'the damaged bytes are left behind at the next compaction');
  await new Promise<void>((resolve, reject) => b.compact(() => loaded, (e) => (e ? reject(e) : resolve())));
  await b.close();
  const c = new FileBackend(d);
  assert.deepEqual(c.load().map(valueIndex), [0, 2]);
  assert.equal(c.damagedBytes, 0);
  await c.close();
});

test('damage in the last record is a torn tail: cut off, as a kill mid-write leaves it', async () => {
  const { d, file } = await logOf([put(0), put(1)]);
  const bytes = readFileSync(file);
  bytes[bytes.length - 3] ^= 0x01;
  writeFileSync(file, bytes);
  const b = new FileBackend(d);
  assert.deepEqual(b.load().map(valueIndex), [0]);
  assert.equal(b.damagedBytes, 0);
  assert.equal(statSync(file).size, 8 + bytes.readUInt32BE(0));
  await b.close();
});

test('a whole record that is no change we can read (a 64-bit field past 2^64) is passed over, not taken for the end of the log', async () => {
  const d = dir();
  const a = new FileBackend(d);
  a.load();
  await appendAll(a, [put(0)]);
  // An older version let a replica's generation reach 2^64: a bignum no 64-bit field reads back.
  const body = encodeCbor([0, idToBytes(R), 0xf0001, 1n << 64n, encodeStoredData(value(alice, R, 0xf0001, 1, 'value 1'))]);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(body.length, 0);
  header.writeUInt32BE(crc32(body), 4);
  appendFileSync(`${d}/store.log`, Buffer.concat([header, body]));
  await appendAll(a, [put(2)]);
  await a.close();
  const c = new FileBackend(d);
  assert.deepEqual(c.load().map(valueIndex), [0, 2], 'the Store acknowledged after the unreadable record survives a restart');
  await c.close();
});

test('an append that fails half-way (a full disk) is cut off the log, so the Stores acknowledged after it survive a restart', async () => {
  const d = dir();
  const a = new FileBackend(d);
  a.load();
  await appendAll(a, [put(0)]);
  const realWrite = fs.write;
  let calls = 0;
  // The disk fills during the next append: the first write gets half the bytes out, the next fails.
  (fs as unknown as { write: unknown }).write = (fd: number, buffer: Buffer, offset: number, length: number, position: null, callback: (error: Error | null, written: number) => void) => {
    if (++calls === 1) return realWrite(fd, buffer, offset, Math.floor(length / 2), position, callback);
    process.nextTick(() => callback(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }), 0));
  };
  let failure: unknown;
  try {
    await appendAll(a, [put(1)]);
  } catch (error) {
    failure = error;
  } finally {
    (fs as unknown as { write: unknown }).write = realWrite;
  }
  assert.match(String(failure), /ENOSPC/, 'that Store is refused');
  for (let i = 2; i < 6; i++) await appendAll(a, [put(i)]);
  await a.close();
  const b = new FileBackend(d);
  assert.deepEqual(b.load().map(valueIndex), [0, 2, 3, 4, 5]);
  assert.equal(b.recoveredTailBytes + b.damagedBytes, 0, 'no half record was left in the log');
  await b.close();
});

test('a compaction the full disk cuts short leaves the log as it was and no partial copy, and the next tries come ever later (durability review 3)', async () => {
  const d = dir();
  const a = new FileBackend(d);
  a.load();
  for (let i = 0; i < 1100; i++) await appendAll(a, [put(i % 5)]);
  const realWrite = fs.write;
  // The disk is full: each write gets a few bytes out, the next fails.
  (fs as unknown as { write: unknown }).write = (fd: number, buffer: Buffer, offset: number, length: number, position: null, callback: (error: Error | null, written: number) => void) => {
    if (length > 100) return realWrite(fd, buffer, offset, 100, position, callback);
    process.nextTick(() => callback(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }), 0));
  };
  const compact = () => new Promise<Error | undefined>((resolve) => a.compact(() => [0, 1, 2, 3, 4].map(put), resolve));
  const skipped = () => {
    let n = 0;
    while (!a.wantsCompaction(5) && n < 1000) n++;
    return n;
  };
  try {
    assert.equal(a.wantsCompaction(5), true);
    assert.match(String(await compact()), /ENOSPC/);
    assert.ok(!fs.existsSync(`${d}/store.log.compact`), 'the partial copy is gone');
    assert.equal(skipped(), 1, 'the next check passes it over');
    assert.match(String(await compact()), /ENOSPC/);
    assert.equal(skipped(), 2);
    assert.match(String(await compact()), /ENOSPC/);
    assert.equal(skipped(), 4, 'and the next twice as many');
  } finally {
    (fs as unknown as { write: unknown }).write = realWrite;
  }
  assert.equal(a.stats().compactionsFailed, 3);
  assert.equal(await compact(), undefined, 'with room again it compacts');
  assert.equal(a.wantsCompaction(5), false);
  await a.close();
  assert.deepEqual(new FileBackend(d).load().map(valueIndex), [0, 1, 2, 3, 4]);
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
