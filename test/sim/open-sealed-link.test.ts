import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Simulation } from '../../src/sim/simulation.js';

/*
 * A node that loses its relay opens a sealed link to another before it may allocate there
 * (relays serve enrolled nodes only). The rest of the ring may be dead by then: the peer that
 * carried our links among them. Opening the link must not depend on routing round the ring.
 */
function twoSurvivors() {
  const sim = new Simulation({ nodes: 8, seed: 11, crypto: 'ed25519' });
  const first = sim.addNode(undefined);
  for (let i = 1; i < 8; i++) sim.addNode(first);
  assert.notEqual(sim.runUntilCorrect(120_000), null, 'ring formed');
  // Two nodes with no sealed session between them; everyone else dies.
  const unlinked = (a: number, b: number) => a !== b && !sim.nodes[a].peer.sealedLink!.peerAt(sim.nodes[b].peer.address) && !sim.nodes[b].peer.sealedLink!.peerAt(sim.nodes[a].peer.address);
  const pair = [...sim.nodes.keys()].flatMap((a) => [...sim.nodes.keys()].filter((b) => unlinked(a, b)).map((b) => [a, b]))[0];
  assert.ok(pair, 'some two nodes of the ring hold no sealed session with each other');
  const [us, relay] = pair.map((i) => sim.nodes[i].peer);
  for (const node of sim.nodes) if (node.peer !== us && node.peer !== relay) sim.fail(node);
  return { sim, us, relay };
}

function timeToOpen(withNodeId: boolean): { ms: number; open: boolean } {
  const { sim, us, relay } = twoSurvivors();
  const start = sim.clock.now();
  let ms = -1;
  us.openSealedLink(relay.address, withNodeId ? relay.nodeId : undefined, () => (ms = sim.clock.now() - start));
  sim.clock.runUntil(start + 10_000);
  return { ms, open: us.sealedLink!.peerAt(relay.address) !== undefined };
}

test("a sealed link to a relay found by name opens in one exchange with the relay, whatever the rest of the ring's state", () => {
  const byNodeId = timeToOpen(true);
  assert.ok(byNodeId.open, 'the session is open');
  assert.ok(byNodeId.ms >= 0 && byNodeId.ms < 500, `done after ${byNodeId.ms} ms`);
  // The Ping addressed to ourselves (all a bootstrap address allows) is routed back by the relay
  // through its ring, here dead: the session opens just as fast, but the caller waits out the Ping.
  const bySelfPing = timeToOpen(false);
  assert.ok(bySelfPing.open);
  assert.ok(bySelfPing.ms >= 3_000, `done after ${bySelfPing.ms} ms`);
});
