import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OverlayMediaBackhaul } from '../../src/node/media-backhaul.js';
import { silentLogger } from '../../src/runtime/log.js';
import { Simulation } from '../../src/sim/simulation.js';

/*
 * A call's media between two homes over their overlay link (when their media ports cannot reach
 * each other) goes beside the hop transport, which forgets a link nobody used for five minutes.
 * A call longer than that must not lose its link, and with it its media, every five minutes.
 */
test('media over the overlay link flows for a ten-minute call without losing its link', () => {
  const sim = new Simulation({ nodes: 16, seed: 5, crypto: 'ed25519' });
  const first = sim.addNode(undefined);
  for (let i = 1; i < 16; i++) sim.addNode(first);
  assert.notEqual(sim.runUntilCorrect(120_000), null, 'ring formed');
  // Two homes that are not neighbours: their link is the call's own, nobody else's.
  const neighbours = (i: number) => new Set([...sim.nodes[i].peer.router.topology.successorIds(), ...sim.nodes[i].peer.router.topology.predecessorIds()]);
  const far = sim.nodes.findIndex((n, i) => i > 0 && !neighbours(0).has(n.peer.nodeId) && !neighbours(i).has(sim.nodes[0].peer.nodeId));
  assert.ok(far > 0, 'two homes that are not neighbours');
  const [a, b] = [sim.nodes[0].peer, sim.nodes[far].peer];
  const backhauls = [new OverlayMediaBackhaul(a, silentLogger), new OverlayMediaBackhaul(b, silentLogger)];
  const received = [0, 0];
  a.mediaLink.onMedia(() => received[0]++);
  b.mediaLink.onMedia(() => received[1]++);
  backhauls[0].prepare(b.nodeId);
  backhauls[1].prepare(a.nodeId);
  sim.clock.runUntil(sim.clock.now() + 5_000);
  assert.ok(a.router.connections.proven(b.nodeId) && b.router.connections.proven(a.nodeId), 'the homes hold a link');
  const attachesBefore = backhauls.map((h) => h.counters.attaches);

  // 20 ms frames both ways for ten virtual minutes.
  const frame = new Uint8Array(172);
  const frames = 10 * 60 * 50;
  const start = sim.clock.now();
  for (let i = 0; i < frames; i++) {
    sim.clock.runUntil(start + i * 20);
    backhauls[0].send(b.nodeId, 40_000, frame, false);
    backhauls[1].send(a.nodeId, 40_000, frame, false);
  }
  sim.clock.runUntil(start + frames * 20 + 1_000);
  for (const [i, backhaul] of backhauls.entries()) {
    assert.equal(backhaul.counters.framesWithoutLink, 0, `home ${i} always had a link to send on`);
    assert.equal(backhaul.counters.attaches, attachesBefore[i], `home ${i} never had to Attach again`);
  }
  assert.deepEqual(received, [frames, frames], 'every frame arrived');
  // The call is over: its links are let go, and expire as idle links do.
  sim.clock.runUntil(sim.clock.now() + 6 * 60_000);
  assert.equal(a.router.connections.proven(b.nodeId), undefined, 'the idle link expired after the call');
});
