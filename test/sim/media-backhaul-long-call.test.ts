import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OverlayMediaBackhaul } from '../../src/node/media-backhaul.js';
import { silentLogger } from '../../src/runtime/log.js';
import { Simulation } from '../../src/sim/simulation.js';
import { type Address, addressKey } from '../../src/wire/address.js';

/*
 * A call's media between two homes over their overlay link (when their media ports cannot reach
 * each other) goes beside the hop transport, which forgets a link nobody used for five minutes.
 * A call longer than that must not lose its link, and with it its media, every five minutes.
 */
function twoHomes() {
  const sim = new Simulation({ nodes: 16, seed: 5, crypto: 'ed25519' });
  const first = sim.addNode(undefined);
  for (let i = 1; i < 16; i++) sim.addNode(first);
  assert.notEqual(sim.runUntilCorrect(120_000), null, 'ring formed');
  // Two homes that are neither neighbours nor fingers (the topology watches those links): their
  // link is the call's own, nobody else's.
  const fingers = (i: number) => ((sim.nodes[i].peer.router.topology as unknown as { fingers: { contacts(): { id: bigint }[] } }).fingers.contacts().map((c) => c.id));
  const neighbours = (i: number) => new Set([...sim.nodes[i].peer.router.topology.successorIds(), ...sim.nodes[i].peer.router.topology.predecessorIds(), ...fingers(i)]);
  const far = sim.nodes.findIndex((n, i) => i > 0 && !neighbours(0).has(n.peer.nodeId) && !neighbours(i).has(sim.nodes[0].peer.nodeId));
  assert.ok(far > 0, 'two homes that are not neighbours');
  const [a, b] = [sim.nodes[0].peer, sim.nodes[far].peer];
  // How many holds home a's links are under (held for media, or for a call ringing).
  const holds = { a: 0 };
  const hold = a.transport.hold.bind(a.transport);
  a.transport.hold = (address) => {
    holds.a++;
    const release = hold(address);
    let released = false;
    return () => {
      if (!released) holds.a--;
      released = true;
      release();
    };
  };
  const backhauls = [new OverlayMediaBackhaul(a, silentLogger), new OverlayMediaBackhaul(b, silentLogger)];
  const received = [0, 0];
  a.mediaLink.onMedia(() => received[0]++);
  b.mediaLink.onMedia(() => received[1]++);
  backhauls[0].prepare(b.nodeId);
  backhauls[1].prepare(a.nodeId);
  sim.clock.runUntil(sim.clock.now() + 5_000);
  assert.ok(a.router.connections.proven(b.nodeId) && b.router.connections.proven(a.nodeId), 'the homes hold a link');
  const frame = new Uint8Array(172);
  /** One 20 ms frame each way. */
  const sendFrames = () => {
    backhauls[0].send(b.nodeId, 40_000, frame, false);
    backhauls[1].send(a.nodeId, 40_000, frame, false);
  };
  return { sim, a, b, backhauls, received, sendFrames, holds };
}

test('media over the overlay link flows for a ten-minute call without losing its link', () => {
  const { sim, backhauls, received, sendFrames, holds } = twoHomes();
  const attachesBefore = backhauls.map((h) => h.counters.attaches);
  // 20 ms frames both ways for ten virtual minutes.
  const frames = 10 * 60 * 50;
  const start = sim.clock.now();
  for (let i = 0; i < frames; i++) {
    sim.clock.runUntil(start + i * 20);
    sendFrames();
  }
  sim.clock.runUntil(start + frames * 20 + 1_000);
  for (const [i, backhaul] of backhauls.entries()) {
    assert.equal(backhaul.counters.framesWithoutLink, 0, `home ${i} always had a link to send on`);
    assert.equal(backhaul.counters.attaches, attachesBefore[i], `home ${i} never had to Attach again`);
  }
  assert.deepEqual(received, [frames, frames], 'every frame arrived');
  // The call is over: its link is let go half a minute later (to expire as idle links do, unless
  // the topology watches it by then: over ten minutes either home may have made the other a finger).
  assert.equal(holds.a, 1, 'held during the call');
  sim.clock.runUntil(sim.clock.now() + 60_000);
  assert.equal(holds.a, 0, 'let go after the call');
});

test('a link that dies twice in a call is found dead and set up again both times', () => {
  const { sim, a, b, received, sendFrames } = twoHomes();
  // The path between the homes can fail: everything lost, or everything but STUN until a
  // connectivity check gets through (as a relay's lapsed permission, which only an Attach renews).
  const network = sim.network as unknown as { deliver: (from: Address, to: Address, datagram: Uint8Array) => void };
  const deliver = network.deliver.bind(sim.network);
  const pair = new Set([addressKey(a.address), addressKey(b.address)]);
  let path: 'open' | 'down' | 'until-stun' = 'open';
  network.deliver = (from, to, datagram) => {
    if (path !== 'open' && pair.has(addressKey(from)) && pair.has(addressKey(to))) {
      if (path === 'down' || datagram[0] > 3) return;
      path = 'open';
    }
    deliver(from, to, datagram);
  };
  const start = sim.clock.now();
  let atLastMinute = [0, 0];
  for (let i = 0; i < 6 * 60 * 50; i++) {
    sim.clock.runUntil(start + i * 20);
    if (i === 60 * 50) path = 'down';
    if (i === 100 * 50) path = 'open';
    if (i === 200 * 50) path = 'until-stun';
    if (i === 5 * 60 * 50) atLastMinute = [...received];
    sendFrames();
  }
  sim.clock.runUntil(sim.clock.now() + 1_000);
  assert.equal(path, 'open', 'a connectivity check repaired the path');
  const lastMinute = received.map((n, i) => n - atLastMinute[i]);
  // (A frame sent just before the minute began may land in it.)
  assert.ok(lastMinute.every((n) => n >= 60 * 50 && n <= 60 * 50 + 1), `every frame of the last minute arrived: ${lastMinute}`);
});

test('a peer that stops lets go at once of the links its calls held, and sends no more media', () => {
  const { sim, b, backhauls, sendFrames, holds } = twoHomes();
  const start = sim.clock.now();
  for (let i = 0; i < 50; i++) {
    sim.clock.runUntil(start + i * 20);
    sendFrames();
  }
  assert.equal(holds.a, 1, 'the call holds its link');
  backhauls[0].stop();
  assert.equal(holds.a, 0, 'stopping lets go of it without waiting for the idle timer');
  const sent = backhauls[0].counters.framesSent;
  backhauls[0].send(b.nodeId, 40_000, new Uint8Array(172), false);
  assert.equal(backhauls[0].counters.framesSent, sent, 'nothing is sent after stop');
  assert.equal(holds.a, 0, 'and nothing is held again');
});

test('the first frame after a direct media path went quiet tells the peer its address may have changed (NatUpkeep checks); other frames do not', () => {
  const { a, b, backhauls } = twoHomes();
  let signs = 0;
  a.addressMayHaveChanged = () => signs++;
  backhauls[0].send(b.nodeId, 40_000, new Uint8Array(172), false);
  assert.equal(signs, 0);
  backhauls[0].send(b.nodeId, 40_000, new Uint8Array(172), true);
  backhauls[0].send(b.nodeId, 40_000, new Uint8Array(172), false);
  assert.equal(signs, 1);
});

test('directHost: the host where the sealed link proved the other home is, for the renumbered-home probes; none for a home we hold no link to', () => {
  const { a, b, backhauls } = twoHomes();
  const proven = a.router.connections.proven(b.nodeId);
  assert.ok(proven);
  assert.equal(backhauls[0].directHost(b.nodeId), proven.host);
  assert.equal(backhauls[0].directHost(0x1234n), undefined);
});

test('a link set up when the call starts ringing is still there when it is answered a minute later', () => {
  const { sim, backhauls, received, sendFrames } = twoHomes();
  const attachesBefore = backhauls.map((h) => h.counters.attaches);
  // The phone rings for a minute: no media yet, the link idles past any NAT's pinhole.
  sim.clock.runUntil(sim.clock.now() + 60_000);
  const start = sim.clock.now();
  for (let i = 0; i < 50; i++) {
    sim.clock.runUntil(start + i * 20);
    sendFrames();
  }
  sim.clock.runUntil(sim.clock.now() + 1_000);
  for (const [i, backhaul] of backhauls.entries()) {
    assert.equal(backhaul.counters.framesWithoutLink, 0, `home ${i} had its link when the call was answered`);
    assert.equal(backhaul.counters.attaches, attachesBefore[i], `home ${i} did not Attach again`);
  }
  assert.deepEqual(received, [50, 50], 'the first words were heard');
});
