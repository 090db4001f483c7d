import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Binding, LocationService } from '../../../src/usages/sip/registrar/location.js';

/* Bindings live until their expiry (RFC 3261 s10.2.1.1): the sweep drops them and says so. */
const binding = (contact: string, expiresAt: number): Binding => ({ contact, expiresAt, callId: 'c', cseq: 1, flow: { transport: 'UDP', remote: { host: '127.0.0.1', port: 5060 } }, q: undefined });

test('expired bindings disappear at once from lookups, and the sweep removes them and tells listeners', () => {
  let now = 1_000_000;
  const location = new LocationService(() => now);
  const changes: [string, number][] = [];
  location.onChange((aor, bindings) => changes.push([aor, bindings.length]));
  location.set('alice@smiths.example', [binding('sip:a@192.0.2.1', now + 60_000), binding('sip:a@192.0.2.2', now + 3_600_000)]);
  now += 61_000;
  assert.deepEqual(location.bindings('alice@smiths.example').map((b) => b.contact), ['sip:a@192.0.2.2']);
  location.sweep();
  assert.deepEqual(changes.at(-1), ['alice@smiths.example', 1]);
  now += 3_600_000;
  location.sweep();
  assert.deepEqual(changes.at(-1), ['alice@smiths.example', 0], 'the last phone gone: listeners hear of an empty set (the overlay record is removed)');
  assert.deepEqual(location.aors(), []);
  assert.equal(location.size, 0);
});
