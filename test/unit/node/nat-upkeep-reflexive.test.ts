import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NatTraversal } from '../../../src/nat/nat-traversal.js';
import { NatUpkeep } from '../../../src/node/nat-upkeep.js';
import type { OverlayPeer } from '../../../src/node/overlay-peer.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import { type Address, addressKey } from '../../../src/wire/address.js';
import { natNode } from '../../helpers/nat-node.js';

/*
 * A home's public address changes under it (the ISP renumbers the line, the router reboots and
 * maps the port anew): what goes into its Attaches and into the SDP of its calls must follow. Two
 * public peers answer STUN (each a NatTraversal, as in a peer); the home sits behind a NAT whose
 * mapping the test changes, and NatUpkeep asks again every five minutes.
 */
const HOME: Address = { host: '192.168.1.10', port: 6084 };
const PUBLIC: Address[] = [
  { host: '198.18.0.1', port: 6084 },
  { host: '198.18.0.2', port: 6084 },
];

function world() {
  const clock = new VirtualClock();
  const random = new SeededRandom(5);
  let mapped: Address = { host: '198.18.7.1', port: 40000 };
  const silent = new Set<string>();
  const nats = new Map<string, NatTraversal>();
  const node = (host: Address): NatTraversal => {
    const nat = natNode(host, clock, random.fork(), (to, datagram) => {
      // The home's datagrams leave through its NAT; answers to the mapping come back to it.
      const source = addressKey(host) === addressKey(HOME) ? mapped : host;
      if (silent.has(addressKey(host))) return;
      const target = addressKey(to) === addressKey(mapped) ? nats.get(addressKey(HOME)) : nats.get(addressKey(to));
      if (target) clock.setTimer(5, () => target.receive('host', source, datagram));
    });
    nats.set(addressKey(host), nat);
    return nat;
  };
  for (const p of PUBLIC) node(p);
  const home = node(HOME);
  // The sealed link tells of a neighbour that no longer knows our session (we come from a new address).
  let sessionReset: (address: Address) => void = () => {};
  const sealedLink = { onSessionReset: (handler: (address: Address) => void) => (sessionReset = handler) };
  const keepalives = { rounds: 0 };
  const transport = { keepaliveNow: () => keepalives.rounds++ };
  const topology = { joined: true, ownAddressChanges: 0, ownAddressChanged: () => topology.ownAddressChanges++ };
  const peer = { router: { clock }, topology, attachFirst: false, nat: home, sealedLink, transport } as unknown as OverlayPeer;
  return {
    clock,
    home,
    sessionReset: (by: Address) => sessionReset(by),
    peer,
    keepalives,
    topology,
    upkeep: new NatUpkeep(peer, PUBLIC, false, silentLogger),
    renumber: (to: Address) => (mapped = to),
    silence: (p: Address) => silent.add(addressKey(p)),
  };
}

/** A world whose home learnt its public address as when it joined, with NatUpkeep running. */
function joinedWorld() {
  const w = world();
  w.home.learnReflexive([PUBLIC[0]]);
  w.clock.runUntil(1_000);
  w.upkeep.start();
  return w;
}

test('the public address is asked for again every five minutes, so a renumbered home advertises its new one', () => {
  const w = joinedWorld();
  assert.equal(w.home.publicHost, '198.18.7.1');
  w.renumber({ host: '198.18.9.9', port: 51000 });
  w.clock.runUntil(4 * 60_000);
  assert.equal(w.home.publicHost, '198.18.7.1', 'not asked again before five minutes');
  w.clock.runUntil(5 * 60_000 + 6_000);
  assert.equal(w.home.publicHost, '198.18.9.9', 'the new address after five minutes');
  assert.ok(w.home.candidates().some((c) => c.address.host === '198.18.9.9' && c.address.port === 51000), 'and in the Attach candidates');
  assert.equal(addressKey(w.home.reflexiveServer!), addressKey(PUBLIC[0]), 'asked of the same peer, whose view of our mapping is the one to compare');
  w.upkeep.stop();
});

test('when the peer that told us stops answering, the next refresh asks another bootstrap peer', () => {
  const w = joinedWorld();
  w.silence(PUBLIC[0]);
  w.renumber({ host: '198.18.9.10', port: 52000 });
  w.clock.runUntil(5 * 60_000 + 60_000);
  assert.equal(w.home.publicHost, '198.18.7.1', 'the first peer did not answer: nothing learnt');
  w.clock.runUntil(10 * 60_000 + 60_000);
  assert.equal(w.home.publicHost, '198.18.9.10', 'the second peer told us');
  assert.equal(addressKey(w.home.reflexiveServer!), addressKey(PUBLIC[1]));
  w.upkeep.stop();
});

test('a neighbour that no longer knows our link session has us greet every neighbour and ask our address at once; a second sign within 15 s is acted on when the 15 s are over', () => {
  const w = joinedWorld();
  w.renumber({ host: '198.18.9.11', port: 53000 });
  w.clock.runUntil(20_000);
  assert.equal(w.home.publicHost, '198.18.7.1', 'nothing said yet: the five-minute refresh is not due');
  w.sessionReset(PUBLIC[1]);
  w.clock.runUntil(21_000);
  assert.equal(w.home.publicHost, '198.18.9.11', 'asked at once');
  assert.equal(w.keepalives.rounds, 1, 'and every neighbour got a keepalive from the new address');
  // Renumbered again at once (a router that rebooted twice): the second sign waits out the 15 s, then is acted on.
  w.renumber({ host: '198.18.9.12', port: 53001 });
  w.sessionReset(PUBLIC[1]);
  w.clock.runUntil(30_000);
  assert.equal(w.home.publicHost, '198.18.9.11', 'not asked again within 15 s');
  assert.equal(w.keepalives.rounds, 1);
  w.clock.runUntil(42_000);
  assert.equal(w.home.publicHost, '198.18.9.12', 'asked again once the 15 s were over, with no further sign');
  assert.equal(w.keepalives.rounds, 2);
  w.clock.runUntil(120_000);
  assert.equal(w.keepalives.rounds, 2, 'and only once');
  w.upkeep.stop();
});

test('a call whose direct media path went quiet (OverlayPeer.addressMayHaveChanged, from the media backhaul) has us check at once too', () => {
  const w = joinedWorld();
  w.renumber({ host: '198.18.9.13', port: 54000 });
  w.clock.runUntil(20_000);
  w.peer.addressMayHaveChanged();
  w.clock.runUntil(21_000);
  assert.equal(w.home.publicHost, '198.18.9.13');
  assert.equal(w.keepalives.rounds, 1);
  w.upkeep.stop();
});

test('a changed public address tells the topology (the links lost with the old one were not the peers\' failures); the same address again does not', () => {
  const w = joinedWorld();
  w.peer.addressMayHaveChanged();
  w.clock.runUntil(2_000);
  assert.equal(w.topology.ownAddressChanges, 0, 'asked, and still the same address');
  w.renumber({ host: '198.18.9.14', port: 55000 });
  w.clock.runUntil(20_000);
  w.peer.addressMayHaveChanged();
  w.clock.runUntil(21_000);
  assert.equal(w.home.publicHost, '198.18.9.14');
  assert.equal(w.topology.ownAddressChanges, 1);
  w.upkeep.stop();
});
