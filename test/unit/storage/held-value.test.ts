import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeldValue, isExpired } from '../../../src/storage/held-value.js';
import { KindRegistry } from '../../../src/storage/kind.js';
import { ResourceStore } from '../../../src/storage/resource-store.js';
import { verifyValue } from '../../../src/storage/value-signing.js';
import { ed25519Suite } from '../../../src/identity/signature-suite.js';
import { OpenTrustPolicy } from '../../../src/identity/trust.js';
import type { EntryKey } from '../../../src/wire/messages/stored-data.js';
import { FIXED_NOW_SECONDS, TEST_OVERLAY, testIdentity } from '../../helpers/fixtures.js';
import { NOW_MS, nodeKey, nodeResource, userResource, value } from '../../helpers/storage-fixtures.js';

const alice = testIdentity(1);
const R = userResource(alice);

test('a packed value unpacks to exactly what was stored, for every data model (null, array index, dictionary key, empty key, empty value)', () => {
  const keys: EntryKey[] = [null, 0, 7, new Uint8Array(nodeKey(alice)), new Uint8Array(0)];
  for (const key of keys) {
    for (const text of ['', 'sip:alice@192.0.2.1', 'x'.repeat(1000)]) {
      const stored = value(alice, R, 1, key, text, { time: NOW_MS + 5, lifetime: 60 });
      const unpacked = HeldValue.pack(stored, stored.certificate).unpack();
      assert.deepEqual(unpacked, stored, `key ${String(key)}, ${text.length} bytes`);
    }
  }
});

test('bytes 0x80-0xff survive packing (the latin1 string holds every byte value)', () => {
  const stored = value(alice, R, 1, new Uint8Array([0xff, 0x00, 0x80]), '');
  const every = { ...stored, entry: { ...stored.entry, value: Uint8Array.from({ length: 256 }, (_, i) => i) } };
  assert.deepEqual(HeldValue.pack(every, every.certificate).unpack(), every);
});

test('values fetched from the store still verify: the signature and the signed fields come back byte for byte', () => {
  const kinds = new KindRegistry();
  const relay = kinds.named('RELAY-SERVICE')!.id;
  const store = new ResourceStore(kinds);
  const resource = nodeResource(alice);
  const stored = value(alice, resource, relay, new Uint8Array(nodeKey(alice)), 'relay 198.18.0.1:6084');
  for (const change of store.prepare(resource, { kind: relay, generation: 0n, values: [stored] }, false, NOW_MS)) store.apply(change);
  const [fetched] = store.fetch(resource, relay, { all: true }, NOW_MS).values;
  const signer = verifyValue(ed25519Suite, new OpenTrustPolicy(TEST_OVERLAY), resource, relay, fetched, FIXED_NOW_SECONDS);
  assert.equal(signer.claims.subject, alice.certificate.claims.subject, 'the fetched value verifies');
  assert.deepEqual(fetched, stored);
});

test('expiry is storage time plus lifetime', () => {
  assert.equal(isExpired({ storageTime: BigInt(NOW_MS), lifetime: 10 }, NOW_MS + 10_000), false);
  assert.equal(isExpired({ storageTime: BigInt(NOW_MS), lifetime: 10 }, NOW_MS + 10_001), true);
});
