import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChordTopology, DEFAULT_CHORD_OPTIONS } from '../../../src/overlay/topology/chord/chord-topology.js';
import type { OverlayRouter } from '../../../src/overlay/router.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import type { Address } from '../../../src/wire/address.js';
import type { Id } from '../../../src/wire/id.js';
import { ChordUpdateType } from '../../../src/wire/messages/chord-view.js';
import type { Contact } from '../../../src/wire/messages/contact.js';
import { MessageCode } from '../../../src/wire/message-codes.js';
import { updateReq } from '../../../src/wire/messages/update.js';

/*
 * Neighbours behind filtering NATs, learnt from another peer's view, are Attached to before use
 * (RFC 6940 s10.6). The Attach goes through the peer whose view listed them: routed by our own
 * table, an ID we wrongly believe in our range (our link to it died when our address changed)
 * comes back to us. One that failed is tried again 10 s later while a neighbour still lists it,
 * and no one peer's views take more than 4 of the 16 Attach slots.
 */
const ME = 0x40n << 120n;
const NEIGHBOUR: Contact = { id: 0x50n << 120n, address: { host: '198.18.0.1', port: 6084 } };

function world() {
  const clock = new VirtualClock();
  const handlers = new Map<number, (req: unknown) => void>();
  const attaches: { id: Id; firstHop: Address | undefined }[] = [];
  const router = {
    nodeId: ME,
    clock,
    random: new SeededRandom(3),
    log: silentLogger,
    handle: (code: number, handler: (req: unknown) => void) => handlers.set(code, handler),
    request: () => {},
    connections: { suggest: () => {}, proven: () => undefined, forget: () => {} },
    transport: { setWatched: () => {} },
    uptimeSeconds: () => 1,
  } as unknown as OverlayRouter;
  const topology = new ChordTopology({
    ...DEFAULT_CHORD_OPTIONS,
    advertisedAddress: () => ({ host: '198.18.0.40', port: 6084 }),
    attacher: () => ({ attach: (destination, options) => attaches.push({ id: destination.id, firstHop: options.firstHop }) }),
    attachFirst: () => true,
  });
  topology.attach(router);
  /** An Update from our neighbour whose view lists `contacts` among its predecessors. */
  const update = (contacts: Contact[]) =>
    handlers.get(MessageCode.UpdateReq)!({
      body: updateReq.encode({ view: { uptimeSeconds: 10, type: ChordUpdateType.Full, predecessors: contacts, successors: [] } }),
      origin: NEIGHBOUR.id,
      previousHop: { address: NEIGHBOUR.address },
      via: [],
      certificate: { claims: {} },
      respond: () => {},
    });
  return { clock, topology, attaches, update };
}

const behindNat = (n: number): Contact => ({ id: (0x40n << 120n) + BigInt(n) * (1n << 100n), address: { host: `198.19.${n}.2`, port: 6084 }, attachFirst: true });

test('contacts behind NATs a neighbour lists are Attached to through that neighbour, 4 at a time at most', () => {
  const w = world();
  w.update([1, 2, 3, 4, 5, 6].map(behindNat));
  assert.equal(w.attaches.length, 4, "one neighbour's view has 4 Attaches running at most");
  assert.ok(w.attaches.every((a) => a.firstHop?.host === NEIGHBOUR.address.host && a.firstHop.port === NEIGHBOUR.address.port), 'each sent first to the neighbour that listed it');
});

test('a contact behind a NAT that failed is Attached to again 10 s later, not before, while a neighbour lists it', () => {
  const w = world();
  const home = behindNat(7);
  w.update([]); // the neighbour is in our table
  w.topology.neighborFailed(home.id); // our link to it died (our own address changed, say)
  w.clock.runUntil(5_000);
  w.update([home]);
  assert.equal(w.attaches.length, 0, 'within 10 s of its failure: not yet');
  w.clock.runUntil(10_500);
  w.update([home]);
  assert.deepEqual(w.attaches.map((a) => a.id), [home.id], 'after 10 s: through the neighbour that lists it');
});

test('once our own public address changed, contacts whose links died with it (found before or within 15 s after) are Attached to at once, not after the failure memory', () => {
  const w = world();
  const home = behindNat(8);
  w.update([]);
  w.topology.neighborFailed(home.id); // lost with our old address
  w.clock.runUntil(2_000);
  w.update([home]);
  assert.equal(w.attaches.length, 0, 'remembered as failed');
  w.topology.ownAddressChanged(); // NatUpkeep learnt our new address: the failure was ours
  w.update([home]);
  assert.deepEqual(w.attaches.map((a) => a.id), [home.id]);
  // Most links that die with the old address are found dead only after that (keepalives time out).
  const later = behindNat(9);
  w.clock.runUntil(6_000);
  w.topology.neighborFailed(later.id);
  w.update([later]);
  assert.deepEqual(w.attaches.map((a) => a.id), [home.id, later.id], 'within 15 s of the change: not remembered as failed');
  // Past the 15 s, a failure is the peer's again.
  const gone = behindNat(10);
  w.clock.runUntil(20_000);
  w.topology.neighborFailed(gone.id);
  w.update([gone]);
  assert.equal(w.attaches.length, 2, 'remembered as failed, as before');
});
