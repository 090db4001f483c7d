import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OverlayHomes } from '../../../src/node/sip-overlay-homes.js';
import type { OverlayRouter } from '../../../src/overlay/router.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import type { KindDefinition } from '../../../src/storage/kind.js';
import type { StorageClient } from '../../../src/storage/storage-client.js';
import type { SipFlow } from '../../../src/usages/sip/transport/sip-transport.js';
import { encodeSipRegistration } from '../../../src/usages/sip/overlay/sip-registration.js';
import { idToHex } from '../../../src/wire/id.js';
import { nodeDestination } from '../../../src/wire/message.js';

/* How a home finds another home's SIP: the registration's home peer, asked with AppAttach. */
const BOB_HOME = 0x1234n;

test("an AppAttach answer this version cannot read is no answer: SIP goes through the overlay, and the caller is not left waiting for a lookup that never ends (leak review F4)", () => {
  const clock = new VirtualClock();
  const registration = encodeSipRegistration({ type: 'route', contactPrefs: '', destinations: [nodeDestination(BOB_HOME)] });
  const storage = {
    fetch: (_kind: unknown, _resource: unknown, _model: unknown, done: (error: undefined, result: unknown) => void) =>
      done(undefined, { rejected: 0, values: [{ entry: { exists: true, key: new Uint8Array(16), value: registration }, certificate: new Uint8Array(0), storageTime: 0n, lifetime: 3600 }] }),
  } as unknown as StorageClient;
  const router = {
    clock,
    connections: { proven: () => undefined },
    // Home B answers with bytes that are no AppAttach answer.
    request: (_to: unknown, _code: unknown, _body: unknown, done: (error: undefined, response: { body: Uint8Array }) => void) => done(undefined, { body: new Uint8Array([0xff, 0x00, 0x13]) }),
  } as unknown as OverlayRouter;
  const homes = new OverlayHomes(router, storage, {} as KindDefinition, silentLogger);
  let found: SipFlow | undefined | 'nothing yet' = 'nothing yet';
  homes.resolve('sip:bob@joneses.example', (flow) => (found = flow));
  assert.deepEqual(found, { transport: 'OVERLAY', remote: { host: '0.0.0.0', port: 0 }, nodeId: idToHex(BOB_HOME) });
});
