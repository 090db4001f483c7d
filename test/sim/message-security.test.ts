import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Simulation } from '../../src/sim/simulation.js';
import { createOpenIdentity } from '../../src/identity/open-identity.js';
import { resourceId } from '../../src/identity/ids.js';
import { nodeDestination, resourceDestination } from '../../src/wire/message.js';
import { MessageCode } from '../../src/wire/message-codes.js';
import { pingReq } from '../../src/wire/messages/ping.js';
import { updateReq } from '../../src/wire/messages/update.js';
import { craftDatagram } from '../helpers/craft.js';

/*
 * Forged, altered, replayed and misrouted messages against real overlay peers in the simulator,
 * signed with real Ed25519. Each is dropped (or answered with an error) before it changes state.
 */
function ring() {
  const sim = new Simulation({ nodes: 8, seed: 7, crypto: 'ed25519' });
  const first = sim.addNode(undefined);
  for (let i = 1; i < 8; i++) sim.addNode(first);
  assert.notEqual(sim.runUntilCorrect(120_000), null, 'ring formed');
  const attackerLink = sim.network.addHost();
  const overlay = 'sim.p2psip';
  const nowSeconds = Math.floor(sim.clock.wallTime() / 1000);
  const attacker = createOpenIdentity(new Uint8Array(32).fill(0xee), 'mallory', overlay, nowSeconds);
  return { sim, target: sim.nodes[3].peer, victim: sim.nodes[4].peer, attackerLink, attacker, overlay };
}

test('a message altered after signing is dropped and counted, and the handler never runs', () => {
  const { sim, target, attackerLink, attacker, overlay } = ring();
  const handled = target.router.counters.requestsHandled;
  attackerLink.send(target.address, craftDatagram(attacker, { overlay, destinations: [nodeDestination(target.nodeId)], code: MessageCode.PingReq, body: pingReq.encode({}), tamper: true }));
  sim.clock.runUntil(sim.clock.now() + 2000);
  assert.equal(target.router.counters.rejectedSignatures + target.router.counters.rejectedMalformed, 1);
  assert.equal(target.router.counters.requestsHandled, handled);
});

test("a message claiming to originate from another node's ID is refused", () => {
  const { sim, target, victim, attackerLink, attacker, overlay } = ring();
  const successorsBefore = target.topology.successorIds();
  // Pretend to be the victim announcing an empty neighbour table.
  const body = updateReq.encode({ view: { uptimeSeconds: 1, type: 3, predecessors: [], successors: [] } });
  attackerLink.send(target.address, craftDatagram(attacker, { overlay, destinations: [nodeDestination(target.nodeId)], code: MessageCode.UpdateReq, body, via: [victim.nodeId] }));
  sim.clock.runUntil(sim.clock.now() + 2000);
  assert.equal(target.router.counters.rejectedSignatures, 1);
  assert.deepEqual(target.topology.successorIds(), successorsBefore);
});

test('a replayed request is recognised by its transaction ID and not handled twice', () => {
  const { sim, target, attackerLink, attacker, overlay } = ring();
  const datagram = (seq: number) =>
    craftDatagram(attacker, { overlay, destinations: [nodeDestination(target.nodeId)], code: MessageCode.PingReq, body: pingReq.encode({}), seq });
  const handled = target.router.counters.requestsHandled;
  attackerLink.send(target.address, datagram(1));
  sim.clock.runUntil(sim.clock.now() + 1000);
  attackerLink.send(target.address, datagram(2)); // new link frame, same message
  sim.clock.runUntil(sim.clock.now() + 1000);
  assert.equal(target.router.counters.requestsHandled, handled + 1);
  assert.equal(target.router.counters.replays, 1);
});

test('a request whose TTL runs out is answered with Error_TTL_Exceeded instead of forwarded', () => {
  const { sim, target, attackerLink, attacker, overlay } = ring();
  // A resource the target is not responsible for, so it would have to forward.
  let name = 0;
  while (target.topology.isResponsible(resourceId(`r${name}`))) name++;
  const forwarded = target.router.counters.forwarded;
  attackerLink.send(target.address, craftDatagram(attacker, { overlay, destinations: [resourceDestination(resourceId(`r${name}`))], code: MessageCode.PingReq, body: pingReq.encode({}), ttl: 1 }));
  sim.clock.runUntil(sim.clock.now() + 1000);
  assert.equal(target.router.counters.ttlExceeded, 1);
  assert.equal(target.router.counters.forwarded, forwarded);
});

test('a message for another overlay is dropped', () => {
  const { sim, target, attackerLink, attacker } = ring();
  attackerLink.send(target.address, craftDatagram(attacker, { overlay: 'elsewhere', destinations: [nodeDestination(target.nodeId)], code: MessageCode.PingReq, body: pingReq.encode({}) }));
  sim.clock.runUntil(sim.clock.now() + 1000);
  assert.equal(target.router.counters.wrongOverlay, 1);
});

test("a frame claiming to come from another node's ID does not redirect traffic for that node", () => {
  const { sim, target, victim, attackerLink, attacker, overlay } = ring();
  const before = target.router.connections.lookup(victim.nodeId);
  attackerLink.send(
    target.address,
    craftDatagram(attacker, { overlay, destinations: [nodeDestination(target.nodeId)], code: MessageCode.PingReq, body: pingReq.encode({}), hopSender: victim.nodeId }),
  );
  sim.clock.runUntil(sim.clock.now() + 2000);
  const after = target.router.connections.lookup(victim.nodeId);
  assert.notDeepEqual(after, attackerLink.localAddress);
  assert.deepEqual(after, before);
});
