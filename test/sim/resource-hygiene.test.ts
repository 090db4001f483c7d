import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type SimNode, Simulation } from '../../src/sim/simulation.js';
import { nodeResourceId } from '../../src/storage/access-control.js';

/*
 * An always-on device runs for months: nothing may pile up. A week of virtual time with one
 * peer failing and a newcomer joining every hour: at the end there are no more timers, sockets,
 * links or pending transactions per live peer than after the first day, and a failed peer
 * leaves nothing behind (no timer of its own still firing, its socket gone from the network).
 * Each newcomer stores a value that lives an hour: expired values go, with what the storing and
 * replicating peers kept about them.
 */
const HOUR = 3_600_000;
const NODES = 8;

function census(sim: Simulation) {
  const live = sim.live();
  return {
    live: live.length,
    timers: sim.clock.pendingTimers(),
    sockets: sim.network.hostCount,
    links: live.reduce((n, node) => n + (node.peer.transport.stats().links as number), 0),
    pending: live.reduce((n, node) => n + node.peer.router.pendingCount(), 0),
    connections: live.reduce((n, node) => n + node.peer.router.connections.size, 0),
    entries: live.reduce((n, node) => n + storage(node).entries, 0),
    copiesTracked: live.reduce((n, node) => n + storage(node).copiesTracked, 0),
  };
}

function storage(node: SimNode): { entries: number; copiesTracked: number } {
  return node.peer.storage!.status() as { entries: number; copiesTracked: number };
}

/** A newcomer's own value under its Node-ID, living an hour. */
function storeOwnValue(node: SimNode): void {
  const kind = node.peer.kinds.named('DEBUG-NODE')!;
  node.peer.client.store(kind, nodeResourceId(node.peer.router.nodeId), [{ key: null, exists: true, value: new Uint8Array(64) }], 3600, () => {});
}

test('a simulated week of hourly churn leaks no timers, sockets, links or transactions', { timeout: 300_000 }, () => {
  // Small and slow-ticking, so that a week of virtual time takes about a minute.
  const sim = new Simulation({ nodes: NODES, seed: 5, tuning: { stabilizeIntervalMs: 60_000 } });
  const first = sim.addNode(undefined);
  for (let i = 1; i < NODES; i++) sim.clock.schedule(i * 200, () => sim.addNode(first));
  sim.clock.runUntil(10_000);
  assert.notEqual(sim.runUntilCorrect(300_000), null);
  const churn = () => {
    const candidates = sim.live().filter((n) => n !== first);
    sim.fail(candidates[Math.floor(sim.random.float() * candidates.length)]);
    const newcomer = sim.addNode(sim.randomLive());
    sim.clock.schedule(60_000, () => storeOwnValue(newcomer));
  };
  const runHours = (hours: number) => {
    for (let h = 0; h < hours; h++) {
      churn();
      sim.clock.runUntil(sim.clock.now() + HOUR);
    }
  };
  runHours(24);
  const day1 = census(sim);
  runHours(6 * 24);
  const day7 = census(sim);
  console.log(JSON.stringify({ day1, day7, failedPeers: sim.nodes.length - day7.live }));
  assert.equal(day7.live, NODES);
  assert.equal(sim.nodes.length - day7.live, 7 * 24, 'one failure an hour');
  assert.equal(day7.sockets, day7.live, 'a failed peer leaves no socket');
  assert.ok(day7.timers <= day1.timers * 1.25 + NODES, `timers: day 1 ${day1.timers}, day 7 ${day7.timers}`);
  assert.ok(day7.links <= day1.links * 1.5 + NODES, `links: day 1 ${day1.links}, day 7 ${day7.links}`);
  assert.ok(day7.connections <= day1.connections * 1.5 + NODES, `connections: day 1 ${day1.connections}, day 7 ${day7.connections}`);
  assert.ok(day7.pending <= NODES, `pending transactions: ${day7.pending}`);
  // About two live values (this hour's and last hour's, not yet swept), each with its replicas.
  assert.ok(day7.entries <= 3 * 3, `entries held: day 1 ${day1.entries}, day 7 ${day7.entries}`);
  assert.ok(day7.copiesTracked <= day7.entries, `replication bookkeeping: ${day7.copiesTracked} for ${day7.entries} entries`);
  assert.equal(sim.ringErrors(), 0);
});
