import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OverlayError } from '../../../src/overlay/overlay-error.js';
import { decodeChange, encodeChange } from '../../../src/storage/backends/change-codec.js';
import { KindRegistry } from '../../../src/storage/kind.js';
import { ResourceStore } from '../../../src/storage/resource-store.js';
import { ErrorCode } from '../../../src/wire/message-codes.js';
import { testIdentity } from '../../helpers/fixtures.js';
import { NOW_MS, userResource, value } from '../../helpers/storage-fixtures.js';

const kinds = new KindRegistry();
const NOTE = kinds.named('DEBUG-NOTE')!.id;
const alice = testIdentity(1);
const R = userResource(alice);

function refused(code: number, run: () => unknown): void {
  assert.throws(run, (e: unknown) => e instanceof OverlayError && e.code === code, `expected error ${code}`);
}

function storeAll(store: ResourceStore, generation: bigint, values: ReturnType<typeof value>[]): bigint {
  const changes = store.prepare(R, { kind: NOTE, generation, values }, false, NOW_MS);
  for (const c of changes) store.apply(c);
  return store.generation(R, NOTE);
}

test('generation counters advance per Store, and a stale generation is refused with Error_Generation_Counter_Too_Low', () => {
  const store = new ResourceStore(kinds);
  assert.equal(storeAll(store, 0n, [value(alice, R, NOTE, 0, 'a')]), 1n);
  assert.equal(storeAll(store, 1n, [value(alice, R, NOTE, 1, 'b')]), 2n);
  refused(ErrorCode.GenerationCounterTooLow, () => store.prepare(R, { kind: NOTE, generation: 1n, values: [value(alice, R, NOTE, 2, 'c')] }, false, NOW_MS));
  assert.equal(storeAll(store, 0n, [value(alice, R, NOTE, 2, 'c')]), 3n, 'generation 0 means "do not check"');
});

test('an older value never replaces a newer one (Error_Data_Too_Old), and expired values are refused', () => {
  const store = new ResourceStore(kinds);
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'new', { time: NOW_MS })]);
  refused(ErrorCode.DataTooOld, () => store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, 0, 'old', { time: NOW_MS - 1000 })] }, false, NOW_MS));
  refused(ErrorCode.DataTooOld, () => store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, 5, 'x', { time: NOW_MS - 10_000, lifetime: 1 })] }, false, NOW_MS));
});

test("a value dated more than 20 minutes ahead of this peer's clock is refused, saying so (a copy passes it over): dated years ahead, it refused every later Store to its entry as older, for good (fuzz review F7, regression review F1)", () => {
  const store = new ResourceStore(kinds);
  const farAhead = value(alice, R, NOTE, 0, 'from the future', { time: NOW_MS + 100 * 365 * 86_400_000, lifetime: 0xffffffff });
  assert.throws(() => store.prepare(R, { kind: NOTE, generation: 0n, values: [farAhead] }, false, NOW_MS), (error: unknown) => error instanceof OverlayError && error.code === ErrorCode.InvalidMessage && /52560000 minutes ahead of this peer's clock/.test(error.message));
  assert.equal(store.prepare(R, { kind: NOTE, generation: 7n, values: [farAhead] }, true, NOW_MS).length, 0);
  assert.equal(store.copiesDatedAhead, 1, 'counted: a skewed clock somewhere costs a replica');
  refused(ErrorCode.InvalidMessage, () => store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, 1, 'x', { time: NOW_MS + 21 * 60_000 })] }, false, NOW_MS));
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'a slow clock', { time: NOW_MS + 9 * 60_000 })]);
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'now', { time: NOW_MS + 9 * 60_000 + 1 })]);
  assert.deepEqual(store.fetch(R, NOTE, { all: true }, NOW_MS).values.map((v) => new TextDecoder().decode(v.entry.value)), ['now']);
  // A writer 9 minutes fast stored at a peer with the right time, which copies it to one 9 minutes slow: each pair could talk, and the copy is kept.
  assert.equal(store.prepare(R, { kind: NOTE, generation: 7n, values: [value(alice, R, NOTE, 2, 'via a replica', { time: NOW_MS + 18 * 60_000 })] }, true, NOW_MS).length, 1);
});

test('a copy from a neighbour (a replica) passes over what we hold newer, or what expired on the way, and keeps the rest', () => {
  const store = new ResourceStore(kinds);
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'newer here', { time: NOW_MS })]);
  const copy = [value(alice, R, NOTE, 0, 'older there', { time: NOW_MS - 1000 }), value(alice, R, NOTE, 1, 'expired', { time: NOW_MS - 10_000, lifetime: 1 }), value(alice, R, NOTE, 2, 'new to us')];
  const changes = store.prepare(R, { kind: NOTE, generation: 7n, values: copy }, true, NOW_MS);
  assert.equal(changes.length, 1, 'only the value we lacked');
  for (const c of changes) store.apply(c);
  const held = store.fetch(R, NOTE, { all: true }, NOW_MS).values.map((v) => new TextDecoder().decode(v.entry.value));
  assert.deepEqual(held.sort(), ['new to us', 'newer here']);
  // Refusing the whole copy would have it sent again at every rebalance; a Store from a user still is refused.
  refused(ErrorCode.DataTooOld, () => store.prepare(R, { kind: NOTE, generation: 0n, values: copy }, false, NOW_MS));
});

test('the data model, value size, entry count and unknown kinds are enforced', () => {
  const store = new ResourceStore(kinds);
  refused(ErrorCode.InvalidMessage, () => store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, null, 'single in an array kind')] }, false, NOW_MS));
  refused(ErrorCode.DataTooLarge, () => store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, 0, 'x'.repeat(2000))] }, false, NOW_MS));
  const many = Array.from({ length: 65 }, (_, i) => value(alice, R, NOTE, i, 'v'));
  refused(ErrorCode.DataTooLarge, () => store.prepare(R, { kind: NOTE, generation: 0n, values: many }, false, NOW_MS));
  refused(ErrorCode.UnknownKind, () => store.prepare(R, { kind: 4242, generation: 0n, values: [] }, false, NOW_MS));
});

test('a full store refuses new data with an error and keeps everything it had', () => {
  const store = new ResourceStore(kinds, { maxBytesPerResource: 100_000, maxBytesTotal: 1500 });
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'x'.repeat(1000))]);
  refused(ErrorCode.DataTooLarge, () => store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, 1, 'y'.repeat(1000))] }, false, NOW_MS));
  assert.equal(store.size.entries, 1);
  assert.equal(store.fetch(R, NOTE, { all: true }, NOW_MS).values.length, 1);
});

test('the per-Resource-ID quota refuses more data for that resource only', () => {
  const store = new ResourceStore(kinds, { maxBytesPerResource: 1000, maxBytesTotal: 100_000 });
  const bob = testIdentity(2);
  const B = userResource(bob);
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'x'.repeat(600))]);
  refused(ErrorCode.DataTooLarge, () => store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, 1, 'y'.repeat(500))] }, false, NOW_MS));
  // Replacing a value counts only the difference.
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'z'.repeat(950))]);
  for (const c of store.prepare(B, { kind: NOTE, generation: 0n, values: [value(bob, B, NOTE, 0, 'b'.repeat(900))] }, false, NOW_MS)) store.apply(c);
  assert.deepEqual(store.size, { resources: 2, entries: 2, bytes: 1850 });
});

test('the entry quota (the memory cap) refuses new entries with a clear error, still takes replacements, and loses nothing', () => {
  const store = new ResourceStore(kinds, { maxBytesPerResource: 100_000, maxBytesTotal: 100_000, maxEntries: 3 });
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'a'), value(alice, R, NOTE, 1, 'b'), value(alice, R, NOTE, 2, 'c')]);
  assert.throws(
    () => store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, 3, 'd')] }, false, NOW_MS),
    (e: unknown) => e instanceof OverlayError && e.code === ErrorCode.DataTooLarge && /most entries \(3; its memory is capped\)/.test(e.message),
  );
  storeAll(store, 0n, [value(alice, R, NOTE, 1, 'B', { time: NOW_MS + 1 })]);
  assert.deepEqual(store.size, { resources: 1, entries: 3, bytes: 3 });
  assert.deepEqual(store.fetch(R, NOTE, { all: true }, NOW_MS).values.map((v) => Buffer.from(v.entry.value).toString()), ['a', 'B', 'c']);
});

test('a Store is all or nothing: one bad value means none is kept', () => {
  const store = new ResourceStore(kinds);
  refused(ErrorCode.DataTooLarge, () => store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, 0, 'ok'), value(alice, R, NOTE, 1, 'z'.repeat(5000))] }, false, NOW_MS));
  assert.equal(store.size.entries, 0);
});

test('fetch selects array ranges; expired entries are not served and are listed for removal', () => {
  const store = new ResourceStore(kinds);
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'a'), value(alice, R, NOTE, 1, 'b', { lifetime: 10 }), value(alice, R, NOTE, 2, 'c')]);
  assert.deepEqual(store.fetch(R, NOTE, { ranges: [[1, 2]] }, NOW_MS).values.map((v) => v.entry.key), [1, 2]);
  const later = NOW_MS + 60_000;
  assert.deepEqual(store.fetch(R, NOTE, { all: true }, later).values.map((v) => v.entry.key), [0, 2]);
  const removals = store.expired(later);
  assert.equal(removals.length, 1);
  for (const r of removals) store.apply(r);
  assert.equal(store.size.entries, 2);
  assert.deepEqual(store.find(0n, [NOTE]), [R]);
  assert.equal(store.stat(R, NOTE, { all: true }, later).values[0].sha256.length, 32);
});

test('a copy carrying the largest generation there is leaves it there: the next Store does not count past 2^64 - 1', () => {
  const store = new ResourceStore(kinds);
  const top = (1n << 64n) - 1n;
  for (const c of store.prepare(R, { kind: NOTE, generation: top, values: [value(alice, R, NOTE, 0, 'a')] }, true, NOW_MS)) store.apply(c);
  assert.equal(storeAll(store, 0n, [value(alice, R, NOTE, 1, 'b')]), top);
  assert.equal(storeAll(store, top, [value(alice, R, NOTE, 2, 'c')]), top, 'a Store naming the generation held still matches it');
});

test('Stores checked but not yet durable count against the quotas: a burst cannot pass the checks all at once, and a refused write gives its share back', () => {
  const store = new ResourceStore(kinds, { maxBytesPerResource: 256 * 1024, maxBytesTotal: 1024 * 1024, maxEntries: 100 });
  const batch = (first: number) => Array.from({ length: 32 }, (_, i) => value(alice, R, NOTE, first + i, 'x'.repeat(400)));
  // Each Store is checked as it arrives; none is applied until the disk has it (as StorageService does).
  const first = store.prepare(R, { kind: NOTE, generation: 0n, values: batch(0) }, false, NOW_MS);
  const second = store.prepare(R, { kind: NOTE, generation: 0n, values: batch(32) }, false, NOW_MS);
  refused(ErrorCode.DataTooLarge, () => store.prepare(R, { kind: NOTE, generation: 0n, values: batch(64) }, false, NOW_MS));
  store.release(second); // its write failed
  // A Store of an entry another Store has in flight counts it as new until that one is applied.
  const again = store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, 0, 'y', { time: NOW_MS + 1 })] }, false, NOW_MS);
  assert.equal(again[0].op === 'put' && again[0].reserved?.entries, 1);
  store.release(again);
  for (const change of first) store.apply(change);
  assert.deepEqual(store.size, { resources: 1, entries: 32, bytes: 32 * 400 });
  const third = store.prepare(R, { kind: NOTE, generation: 0n, values: batch(64) }, false, NOW_MS);
  for (const change of third) store.apply(change);
  assert.equal(store.size.entries, 64);
  refused(ErrorCode.DataTooLarge, () => store.prepare(R, { kind: NOTE, generation: 0n, values: batch(96) }, false, NOW_MS));
});

test('the expiry sweep removes the value it saw expire, not a newer one a refresh stored meanwhile (in memory and when the log is replayed)', async () => {
  const store = new ResourceStore(kinds);
  const later = NOW_MS + 10_000;
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'old', { lifetime: 5 })]);
  const removals = store.expired(later);
  assert.equal(removals.length, 1);
  // A refresh was checked before the sweep ran, and is applied (and logged) before the removal.
  const refresh = store.prepare(R, { kind: NOTE, generation: 0n, values: [value(alice, R, NOTE, 0, 'fresh', { time: later - 1000 })] }, false, later - 1000);
  const log = [...refresh, ...removals].map((change) => decodeChange(encodeChange(change)));
  for (const change of [...refresh, ...removals]) store.apply(change);
  assert.equal(store.fetch(R, NOTE, { all: true }, later).values.length, 1, 'the acknowledged refresh is kept');
  const replayed = new ResourceStore(kinds);
  for (const change of log) replayed.apply(change);
  assert.equal(replayed.fetch(R, NOTE, { all: true }, later).values.length, 1, 'and kept after a restart');
  // A removal written by an older version names no value: whatever is there goes.
  replayed.apply({ op: 'remove', resource: R, kind: NOTE, key: log[1].op === 'remove' ? log[1].key : '' });
  assert.equal(replayed.size.entries, 0);
});

test('Find answers every kind asked in one pass over what is held, and refuses a kind it does not know (Error_Unknown_Kind)', () => {
  const store = new ResourceStore(kinds);
  const bob = testIdentity(3);
  const B = userResource(bob);
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'a')]);
  for (const c of store.prepare(B, { kind: NOTE, generation: 0n, values: [value(bob, B, NOTE, 0, 'b')] }, false, NOW_MS)) store.apply(c);
  const [low, high] = R < B ? [R, B] : [B, R];
  const registration = kinds.named('SIP-REGISTRATION')!.id;
  assert.deepEqual(store.find(0n, [NOTE, registration]), [low, null]);
  assert.deepEqual(store.find(low + 1n, [NOTE]), [high]);
  assert.deepEqual(store.find(high + 1n, [NOTE]), [null]);
  refused(ErrorCode.UnknownKind, () => store.find(0n, [NOTE, 0xbad]));
});

test('a signer\'s certificate is kept once while any value it signed is held, and let go with the last of them', () => {
  const store = new ResourceStore(kinds);
  const signers = [alice, testIdentity(3), testIdentity(4)];
  for (const signer of signers) {
    const resource = userResource(signer);
    for (let i = 0; i < 3; i++) for (const c of store.prepare(resource, { kind: NOTE, generation: 0n, values: [value(signer, resource, NOTE, i, 'v', { lifetime: 5 })] }, false, NOW_MS)) store.apply(c);
  }
  assert.equal(store.certificatesHeld, 3);
  storeAll(store, 0n, [value(alice, R, NOTE, 0, 'replaced', { time: NOW_MS + 1 })]);
  assert.equal(store.certificatesHeld, 3, 'a value replaced by its own signer keeps the one copy');
  for (const removal of store.expired(NOW_MS + 10_000)) store.apply(removal);
  assert.equal(store.size.entries, 1);
  assert.equal(store.certificatesHeld, 1, 'only alice still has a value held');
});
