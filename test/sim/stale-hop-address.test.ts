import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Simulation, type SimNode } from '../../src/sim/simulation.js';
import type { FingerTable } from '../../src/overlay/topology/chord/finger-table.js';
import type { Address } from '../../src/wire/address.js';
import { type Id, idFromBytes, idToBytes } from '../../src/wire/id.js';
import { nodeDestination, resourceDestination } from '../../src/wire/message.js';
import { MessageCode } from '../../src/wire/message-codes.js';
import type { Contact } from '../../src/wire/messages/contact.js';
import { pingReq } from '../../src/wire/messages/ping.js';

/*
 * A neighbour's address in the Chord table comes from views, second hand, and lags a node that
 * moved (its NAT binding changed, it took another relay); the connection table holds the address
 * its own link last proved. Forwarding must use the link's address, and a hop known only from the
 * topology (a finger whose link lapsed) that stops answering must leave it, not be tried again on
 * every request. And a proof goes stale: a node behind a NAT that filters is reachable at its
 * proven address only while its NAT keeps a pinhole open for us.
 */
const NOWHERE: Address = { host: '198.18.250.250', port: 9 };

function ring(nodes = 8): Simulation {
  const sim = new Simulation({ nodes, seed: 21 });
  const first = sim.addNode(undefined);
  for (let i = 1; i < nodes; i++) sim.addNode(first);
  assert.notEqual(sim.runUntilCorrect(120_000), null, 'ring formed');
  return sim;
}

/** The Chord table's own record of a node (white box: the table is the topology's private state). */
function tableOf(node: SimNode): { successors: Contact[] } {
  return (node.peer.router.topology as unknown as { table: { successors: Contact[] } }).table;
}

/** Puts the first successor at a dead address in the table, as a stale view would. */
function staleSuccessor(node: SimNode): Contact {
  const table = tableOf(node);
  const successor = table.successors[0];
  table.successors = [{ ...successor, address: NOWHERE }, ...table.successors.slice(1)];
  return successor;
}

/** An ID just past `from`, so its responsible peer is from's first successor. */
function idJustAfter(from: Id): Id {
  const bytes = idToBytes(from);
  for (let i = bytes.length - 1; i >= 0 && ++bytes[i] === 256; i--) bytes[i] = 0;
  return idFromBytes(bytes);
}

function ping(sim: Simulation, from: SimNode, id: Id): { ms: number; responder: Id | undefined } {
  const start = sim.clock.now();
  let result: { ms: number; responder: Id | undefined } = { ms: -1, responder: undefined };
  from.peer.router.request([resourceDestination(id)], MessageCode.PingReq, pingReq.encode({}), (error, response) => {
    result = { ms: sim.clock.now() - start, responder: error ? undefined : response?.responder };
  });
  // Only until the answer: the topology's own upkeep (finger refreshes) must not mend things meanwhile.
  for (let t = start + 10; result.ms < 0 && t <= start + 20_000; t += 10) sim.clock.runUntil(t);
  return result;
}

test('a hop is sent to the address its link proved, not to the stale one in the Chord table', () => {
  const sim = ring();
  const node = sim.nodes[0];
  const successor = staleSuccessor(node);
  const target = idJustAfter(node.peer.nodeId);
  assert.deepEqual(node.peer.router.topology.nextHops(target)[0], { ...successor, address: NOWHERE }, 'the topology offers the stale address');
  assert.deepEqual(node.peer.router.connections.proven(successor.id), successor.address, 'the link to the successor is proven');
  const before = { ...node.peer.router.counters };
  const answer = ping(sim, node, target);
  assert.ok(answer.ms >= 0 && answer.ms < 1_000, `answered after ${answer.ms} ms`);
  assert.equal(answer.responder, successor.id);
  assert.equal(node.peer.router.counters.forwardRetries, before.forwardRetries, 'the first hop took it');
  assert.equal(node.peer.router.counters.timeouts, before.timeouts);
});

test('a finger whose link has lapsed and that does not answer is evicted at the first failure, not tried on every request', () => {
  const sim = ring(32);
  const { node, target } = deadFinger(sim);
  const failuresBefore = neighbourFailures(node);
  assert.equal(node.peer.router.topology.nextHops(target)[0].address, NOWHERE, 'the topology offers the dead address first');
  const first = ping(sim, node, target);
  assert.ok(first.responder !== undefined, 'answered through another hop');
  // Evicted by the failure itself (the finger's own refresh would replace it too, but silently
  // and only when its turn comes).
  assert.equal(neighbourFailures(node), failuresBefore + 1, 'the failed hop was named a failed neighbour');
  assert.ok(!fingersOf(node).contacts().some((c) => c.address === NOWHERE), 'the finger at the dead address is gone');
  const retries = node.peer.router.counters.forwardRetries;
  const second = ping(sim, node, target);
  assert.ok(second.responder !== undefined && second.ms < 1_000, `answered after ${second.ms} ms`);
  assert.equal(node.peer.router.counters.forwardRetries, retries, 'the dead address was not tried again');
});

/**
 * A finger outside its node's neighbour lists (those the topology re-enters in the connection
 * table) whose link lapsed (unused for half an hour) and that has moved meanwhile; and an ID it
 * is responsible for.
 */
function deadFinger(sim: Simulation): { node: SimNode; target: Id } {
  const chosen = sim.nodes.flatMap((node) => fingersOf(node).entries().filter(([, c]) => !neighbourIds(node).has(c.id)).map(([k, c]) => ({ node, k, finger: c })))[0];
  assert.ok(chosen, 'some node has a finger beyond its neighbour lists');
  const { node, k, finger } = chosen;
  fingersOf(node).set(k, { ...finger, address: NOWHERE });
  node.peer.router.connections.forget(finger.id);
  return { node, target: idJustAfter(finger.id) };
}

function fingersOf(node: SimNode): FingerTable {
  return (node.peer.router.topology as unknown as { fingers: FingerTable }).fingers;
}

function neighbourFailures(node: SimNode): number {
  return (node.peer.router.topology.status() as { counters: { neighborFailures: number } }).counters.neighborFailures;
}

function neighbourIds(node: SimNode): Set<Id> {
  return new Set([...node.peer.router.topology.successorIds(), ...node.peer.router.topology.predecessorIds()]);
}

test("a neighbour view's word for a node's address neither replaces the address the node proved nor outranks the Chord table's", () => {
  const sim = ring();
  const node = sim.nodes[0];
  const successor = tableOf(node).successors[0];
  const target = idJustAfter(node.peer.nodeId);
  const connections = node.peer.router.connections;
  // A rogue's view says "the successor is at my address".
  const rogue = sim.nodes.find((n) => n !== node && n.peer.nodeId !== successor.id)!.peer.address;
  connections.suggest(successor.id, rogue);
  assert.deepEqual(connections.proven(successor.id), successor.address, 'the proven address stands');
  const kept = ping(sim, node, target);
  assert.equal(kept.responder, successor.id);
  // Without a proven address, the suggestion does not outrank the topology's own.
  connections.forget(successor.id);
  connections.suggest(successor.id, NOWHERE);
  const retries = node.peer.router.counters.forwardRetries;
  const answer = ping(sim, node, target);
  assert.ok(answer.responder === successor.id && answer.ms < 1_000, `answered after ${answer.ms} ms`);
  assert.equal(node.peer.router.counters.forwardRetries, retries);
});

test('a neighbour that proves itself at a new address while a send to its old one is dying stays a neighbour', () => {
  const sim = ring();
  const node = sim.nodes[0];
  const successorId = node.peer.router.topology.successorIds()[0];
  const successor = sim.nodes.find((n) => n.peer.nodeId === successorId)!;
  const connections = node.peer.router.connections;
  // Proven at an address that has since died (its relay went away).
  connections.learn(successorId, NOWHERE);
  const failuresBefore = neighbourFailures(node);
  const start = sim.clock.now();
  let answered = false;
  node.peer.router.request([resourceDestination(idJustAfter(node.peer.nodeId))], MessageCode.PingReq, pingReq.encode({}), () => (answered = true));
  sim.clock.runUntil(start + 1_000);
  // Meanwhile it speaks to us from its real address (it Attached again through another relay).
  successor.peer.router.request([nodeDestination(node.peer.nodeId)], MessageCode.PingReq, pingReq.encode({}), () => {}, { firstHop: node.peer.address });
  for (let t = start + 1_010; !answered && t <= start + 20_000; t += 10) sim.clock.runUntil(t);
  assert.ok(answered);
  assert.deepEqual(connections.proven(successorId), successor.peer.address, 'proven at its real address');
  assert.ok(node.peer.router.topology.successorIds().includes(successorId), 'still a successor');
  assert.equal(neighbourFailures(node), failuresBefore, 'the old address died, not the node');
});

test('a hop only the Chord table placed, that proves itself elsewhere while the send to the table\'s address is dying, stays', () => {
  const sim = ring();
  const node = sim.nodes[0];
  const successor = staleSuccessor(node);
  const connections = node.peer.router.connections;
  connections.forget(successor.id);
  const failuresBefore = neighbourFailures(node);
  const start = sim.clock.now();
  let answered = false;
  node.peer.router.request([resourceDestination(idJustAfter(node.peer.nodeId))], MessageCode.PingReq, pingReq.encode({}), () => (answered = true));
  sim.clock.runUntil(start + 1_000);
  // It speaks to us from where it really is before our send to the table's address gives up.
  const live = sim.nodes.find((n) => n.peer.nodeId === successor.id)!;
  live.peer.router.request([nodeDestination(node.peer.nodeId)], MessageCode.PingReq, pingReq.encode({}), () => {}, { firstHop: node.peer.address });
  for (let t = start + 1_010; !answered && t <= start + 20_000; t += 10) sim.clock.runUntil(t);
  assert.ok(answered);
  assert.deepEqual(connections.proven(successor.id), successor.address);
  assert.equal(neighbourFailures(node), failuresBefore, 'not evicted');
});

test('every message in flight to a dead hop reports it; the hop counts as failed once', () => {
  const sim = ring(32);
  const { node, k, finger } = sim.nodes.flatMap((n) => fingersOf(n).entries().filter(([, c]) => !neighbourIds(n).has(c.id)).map(([k, c]) => ({ node: n, k, finger: c })))[0];
  fingersOf(node).set(k, { ...finger, address: NOWHERE });
  node.peer.router.connections.forget(finger.id);
  const failuresBefore = neighbourFailures(node);
  const start = sim.clock.now();
  let done = 0;
  for (let i = 0; i < 3; i++) node.peer.router.request([resourceDestination(idJustAfter(finger.id))], MessageCode.PingReq, pingReq.encode({}), () => done++);
  for (let t = start + 10; done < 3 && t <= start + 20_000; t += 10) sim.clock.runUntil(t);
  assert.equal(done, 3);
  assert.equal(neighbourFailures(node), failuresBefore + 1);
});

test('a node proven long ago behind a filtering NAT is reached through the overlay, not at the address whose pinhole has closed', () => {
  const sim = ring(48);
  const key = (address: Address) => `${address.host}:${address.port}`;
  // Who sent whom a datagram last, and when: the pinholes a NAT that filters would hold open.
  const network = sim.network as unknown as { deliver: (from: Address, to: Address, datagram: Uint8Array) => void };
  const deliver = network.deliver.bind(sim.network);
  const lastSent = new Map<string, number>();
  let filtered: { b: string; a: string; dropped: number } | undefined;
  network.deliver = (from, to, datagram) => {
    lastSent.set(`${key(from)}>${key(to)}`, sim.clock.now());
    // Behind b's NAT, a datagram from a gets in only if b sent a one in the last 30 s.
    if (filtered && key(to) === filtered.b && key(from) === filtered.a && sim.clock.now() - (lastSent.get(`${filtered.b}>${filtered.a}`) ?? -Infinity) > 30_000) {
      filtered.dropped++;
      return;
    }
    deliver(from, to, datagram);
  };
  // Calls from one home (not the first node, every node's STUN server) to homes that are not its
  // neighbours set up links to them, with an Attach through the overlay each.
  const a = sim.nodes[1];
  const others = sim.nodes.slice(2).filter((n) => !neighbourIds(a).has(n.peer.nodeId) && !neighbourIds(n).has(a.peer.nodeId));
  for (const b of others) a.peer.attach.attach(nodeDestination(b.peer.nodeId), {}, () => {});
  sim.clock.runUntil(sim.clock.now() + 5_000);
  // The calls ended a minute ago. A home that sent a nothing since (a's pinhole in its NAT closed)
  // and that a still holds a proof for:
  sim.clock.runUntil(sim.clock.now() + 60_000);
  const b = others.find((n) => a.peer.router.connections.proven(n.peer.nodeId) && sim.clock.now() - (lastSent.get(`${key(n.peer.address)}>${key(a.peer.address)}`) ?? -Infinity) > 30_000);
  assert.ok(b, 'a home whose NAT has closed its pinhole for a');
  filtered = { b: key(b.peer.address), a: key(a.peer.address), dropped: 0 };
  const before = { ...a.peer.router.counters };
  const start = sim.clock.now();
  let answered = -1;
  a.peer.router.request([nodeDestination(b.peer.nodeId)], MessageCode.PingReq, pingReq.encode({}), (error) => (answered = error ? -2 : sim.clock.now() - start));
  for (let t = start + 10; answered === -1 && t <= start + 20_000; t += 10) sim.clock.runUntil(t);
  assert.ok(answered >= 0 && answered < 1_000, `b answered after ${answered} ms (the first try went into the closed pinhole when this is over a second)`);
  assert.equal(a.peer.router.counters.timeouts, before.timeouts, 'no try timed out');
  assert.equal(filtered.dropped, 0, 'a sent nothing into the closed pinhole');
});

test('a retry sent through a finger only the topology placed, whose link dies, evicts that finger', () => {
  const sim = ring(32);
  const { node, target } = deadFinger(sim);
  const hops = node.peer.router.topology.nextHops(target);
  const index = hops.findIndex((h) => h.address === NOWHERE);
  assert.ok(index >= 0 && hops.length > 1, 'the dead finger is one of several next hops');
  const failuresBefore = neighbourFailures(node);
  // A retry leaves through the next hop its attempt number picks (RFC 6940 s13.5): make it the dead finger.
  let done = false;
  node.peer.router.request([resourceDestination(target)], MessageCode.PingReq, pingReq.encode({}), () => (done = true), { attempt: index || hops.length, timeoutMs: 30_000 });
  const start = sim.clock.now();
  for (let t = start + 10; !done && t <= start + 40_000; t += 10) sim.clock.runUntil(t);
  assert.ok(done);
  assert.equal(neighbourFailures(node), failuresBefore + 1, 'the finger that did not answer the retry was named failed');
  assert.ok(!fingersOf(node).contacts().some((c) => c.address === NOWHERE), 'and is gone');
});

test('a message for a node in our own range that we hold only a stale proof for goes to its last address, never to us', () => {
  const sim = ring(8);
  const [peer, sender] = [sim.nodes[3], sim.nodes[6]];
  // A node (a client of this peer, say) whose Node-ID is in the peer's range, last proved at a host
  // that no longer answers.
  const client = (peer.peer.nodeId - 1n) as Id;
  assert.ok(peer.peer.router.topology.isResponsible(client), 'the peer is responsible for that Node-ID');
  const host = (sim.network as unknown as { addHost(): { localAddress: Address; onDatagram(h: () => void): void } }).addHost();
  let reached = 0;
  host.onDatagram(() => reached++);
  peer.peer.router.connections.learn(client, host.localAddress);
  sim.clock.runUntil(sim.clock.now() + 60_000);
  let outcome: string | undefined;
  sender.peer.router.request([nodeDestination(client)], MessageCode.PingReq, pingReq.encode({}), (error, response) => (outcome = error ? 'error' : `answered by ${response?.responder}`), { timeoutMs: 5_000 });
  const start = sim.clock.now();
  for (let t = start + 10; outcome === undefined && t <= start + 20_000; t += 10) sim.clock.runUntil(t);
  assert.ok(reached > 0, 'the peer sent it to where the node last was');
  assert.equal(outcome, 'error', 'nobody else answered in its name');
});

test('behind NATs that filter, routing through fingers still works after minutes of quiet: their links are kept open', () => {
  const sim = ring(32);
  const key = (address: Address) => `${address.host}:${address.port}`;
  // From now on every node sits behind a NAT that filters: a datagram from x gets in only if the
  // node sent x one in the last minute.
  const network = sim.network as unknown as { deliver: (from: Address, to: Address, datagram: Uint8Array) => void };
  const deliver = network.deliver.bind(sim.network);
  const start = sim.clock.now();
  const lastSent = new Map<string, number>();
  let dropped = 0;
  network.deliver = (from, to, datagram) => {
    lastSent.set(`${key(from)}>${key(to)}`, sim.clock.now());
    if (sim.clock.now() - (lastSent.get(`${key(to)}>${key(from)}`) ?? start) > 60_000) return void dropped++;
    deliver(from, to, datagram);
  };
  sim.clock.runUntil(start + 3 * 60_000);
  const timeoutsBefore = sim.nodes.reduce((n, node) => n + node.peer.router.counters.timeouts, 0);
  let answered = 0;
  for (let i = 0; i < 40; i++) {
    const from = sim.nodes[(i * 7) % sim.nodes.length];
    const result = ping(sim, from, idJustAfter(sim.nodes[(i * 13 + 5) % sim.nodes.length].peer.nodeId));
    if (result.responder !== undefined && result.ms < 1_000) answered++;
  }
  const timeouts = sim.nodes.reduce((n, node) => n + node.peer.router.counters.timeouts, 0) - timeoutsBefore;
  assert.equal(answered, 40, `every lookup answered within a second (timeouts: ${timeouts}, datagrams the NATs dropped: ${dropped})`);
});
