import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../../../src/runtime/log.js';
import { VirtualClock } from '../../../../src/sim/virtual-clock.js';
import { DEFAULT_KINDS } from '../../../../src/storage/kind.js';
import type { StorageClient } from '../../../../src/storage/storage-client.js';
import type { Binding } from '../../../../src/usages/sip/registrar/location.js';
import { RegistrationPublisher } from '../../../../src/usages/sip/overlay/registration-publisher.js';
import { OverlayError } from '../../../../src/overlay/overlay-error.js';
import { testIdentity } from '../../../helpers/fixtures.js';

/*
 * The home's phones in the overlay: a store that fails (the peer is still joining after a
 * restart, a responsible peer just left) is tried again, 5 s, 10 s, 20 s ... up to every minute,
 * while the user has phones here, and no longer once they are gone or the peer stops.
 */
const kind = DEFAULT_KINDS.find((k) => k.name === 'SIP-REGISTRATION')!;
const home = testIdentity(21);
const alice = testIdentity(22);

function publisher(failures: number, log = silentLogger) {
  const clock = new VirtualClock();
  const stores: number[] = [];
  let bindings: Binding[] = [{ contact: 'sip:alice@192.168.1.20', expiresAt: clock.wallTime() + 600_000, callId: 'c', cseq: 1, q: undefined, flow: { transport: 'UDP', remote: { host: '192.168.1.20', port: 5060 } } }];
  const storage = {
    store: (_kind: unknown, _resource: unknown, _entries: unknown, _lifetime: number, done: (error?: Error) => void) => {
      stores.push(clock.now());
      done(stores.length <= failures ? new OverlayError(404, 'no peer answered (still joining)') : undefined);
    },
  } as unknown as StorageClient;
  const published = new RegistrationPublisher(storage, kind, home.nodeId, { signerFor: () => alice }, clock, log, () => bindings);
  return { clock, stores, published, setBindings: (b: Binding[]) => (bindings = b), first: () => bindings };
}

test('a failed store is tried again after 5, 10, 20 s, and once it is stored, no more', () => {
  const { clock, stores, published, first } = publisher(3);
  published.bindingsChanged('alice@smiths.example', first());
  clock.runUntil(clock.now() + 120_000);
  assert.deepEqual(stores, [0, 5_000, 15_000, 35_000]);
  assert.equal(published.counters.failures, 3);
  assert.equal(published.counters.published, 1);
  assert.equal(published.isPublished('alice@smiths.example'), true);
});

test('retries wait at most a minute, stop when the user has no phone here, and stop when the peer stops', () => {
  const always = publisher(Infinity);
  always.published.bindingsChanged('alice@smiths.example', always.first());
  always.clock.runUntil(always.clock.now() + 300_000);
  const gaps = always.stores.slice(1).map((t, i) => t - always.stores[i]);
  assert.deepEqual(gaps.slice(0, 5), [5_000, 10_000, 20_000, 40_000, 60_000]);
  assert.ok(gaps.slice(4).every((g) => g === 60_000));
  always.setBindings([]);
  const count = always.stores.length;
  always.clock.runUntil(always.clock.now() + 300_000);
  assert.equal(always.stores.length, count, 'no phone here: nothing to store');

  const stopping = publisher(Infinity);
  stopping.published.bindingsChanged('alice@smiths.example', stopping.first());
  stopping.published.close();
  stopping.clock.runUntil(stopping.clock.now() + 300_000);
  assert.equal(stopping.stores.length, 1);
});

test("a store that fails once (a peer just started, its ring still forming) is no warning; one whose retry fails too is (README walkthrough review F5)", () => {
  const levels: string[] = [];
  const log = { ...silentLogger, warn: (event: string) => levels.push(`warn ${event}`), info: (event: string) => levels.push(`info ${event}`) };
  const { clock, published, first } = publisher(2, log);
  published.bindingsChanged('alice@smiths.example', first());
  clock.runUntil(clock.now() + 120_000);
  assert.deepEqual(levels, ['info registration-store-failed', 'warn registration-store-failed']);
  assert.equal(published.isPublished('alice@smiths.example'), true);
});
