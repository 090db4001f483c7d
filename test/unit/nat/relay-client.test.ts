import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Link } from '../../../src/link/link.js';
import { RELAY_LIVENESS, RelayClient } from '../../../src/nat/relay/relay-client.js';
import { RelayLink } from '../../../src/nat/relay/relay-link.js';
import { RelayServer } from '../../../src/nat/relay/relay-server.js';
import { Attr, decodeStun, encodeStun, encodeXorAddress, StunClass, type StunMessage, StunMethod } from '../../../src/nat/stun/message.js';
import { seal } from '../../../src/nat/stun/integrity.js';
import { StunTransactions } from '../../../src/nat/stun/stun-transactions.js';
import { errorAnswer } from '../../../src/nat/relay/turn-codec.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import type { Address } from '../../../src/wire/address.js';

/*
 * A node's relay allocation against the real relay server, in one process: what the client asks
 * for must be what the relay's policy grants.
 */
const RELAY = { host: '198.18.0.1', port: 6084 };
const CLIENT = { host: '198.18.0.11', port: 6084 };
/** What the sealed link between the client and each relay gives both for RELAY_LINK_LABEL. */
const LINK_SECRET = new Uint8Array(32).fill(7);

function setup(ownHosts: string[] = []) {
  const clock = new VirtualClock();
  const random = new SeededRandom(5);
  const transactions = new StunTransactions(clock, random);
  const requests: { method: number; klass: number; transactionId: Uint8Array }[] = [];
  const answers: { method: number; klass: number }[] = [];
  /** The relay's host: it answers Bindings (as every peer's STUN server does) until it dies. */
  const relayHost = { alive: true, answerDelayMs: 0, believed: true };
  let nextPort = 50000;
  let fromPeer: (from: Address, datagram: Uint8Array) => void = () => {};
  const server = new RelayServer({
    clock,
    random,
    log: silentLogger,
    host: RELAY.host,
    ownHosts,
    openSocket: async (bind) => ({ localAddress: { host: bind.host, port: nextPort++ }, send: () => {}, onDatagram: (h) => (fromPeer = h), close: async () => {} }) as Link,
    sendRaw: (_to, datagram) => {
      const message = decodeStun(datagram);
      answers.push({ method: message.method, klass: message.klass });
      const deliver = () => transactions.handleAnswer(RELAY, datagram, message);
      if (relayHost.answerDelayMs > 0) clock.schedule(relayHost.answerDelayMs, deliver);
      else deliver();
    },
    nodeAt: () => ({ id: 'node-client', stillBelieved: () => relayHost.believed, linkSecrets: [LINK_SECRET] }),
    limits: { maxAllocations: 4, maxPerNode: 1, pairRate: { ratePerSecond: 10, burst: 5 }, maxLifetimeSeconds: 3600 },
  });
  const current = { server };
  const inner: Link = { localAddress: CLIENT, send: () => {}, onDatagram: () => {}, close: async () => {} };
  const link = new RelayLink(inner);
  const client = new RelayClient({
    clock,
    random,
    log: silentLogger,
    transactions,
    // The relay is reached in the same turn of the event loop, as if over a perfect network.
    sendRaw: (_to: Address, datagram: Uint8Array) => {
      const message = decodeStun(datagram);
      requests.push({ method: message.method, klass: message.klass, transactionId: message.transactionId });
      if (!relayHost.alive) return;
      if (message.method === StunMethod.Binding) {
        const answer = encodeStun(StunMethod.Binding, StunClass.Success, message.transactionId, []);
        transactions.handleAnswer(RELAY, answer, decodeStun(answer));
      } else current.server.handle(CLIENT, message, datagram);
    },
    link,
    linkSecret: () => LINK_SECRET,
  });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  /** Whether a datagram from `peer` to the relayed port is let through to the client. */
  const reaches = (peer: Address) => {
    const before = server.counters.relayedToClients;
    fromPeer(peer, new Uint8Array([0x80, 0, 0, 1]));
    return server.counters.relayedToClients > before;
  };
  /** The relay restarts: a fresh server that holds no allocation (and answers Bindings all the same). */
  const restartRelay = () => {
    const fresh = new RelayServer({ clock, random, log: silentLogger, host: RELAY.host, ownHosts, openSocket: async (bind) => ({ localAddress: { host: bind.host, port: nextPort++ }, send: () => {}, onDatagram: () => {}, close: async () => {} }) as Link, sendRaw: (_to, datagram) => transactions.handleAnswer(RELAY, datagram, decodeStun(datagram)), nodeAt: () => ({ id: 'node-client', stillBelieved: () => true, linkSecrets: [LINK_SECRET] }), limits: { maxAllocations: 4, maxPerNode: 1, pairRate: { ratePerSecond: 10, burst: 5 }, maxLifetimeSeconds: 3600 } });
    current.server = fresh;
  };
  return { clock, server, client, link, relayHost, requests, answers, settle, reaches, restartRelay, transactions, random };
}

test('permissions are asked only for peers the relay may serve: a candidate on the same relay does not cost the others theirs', async () => {
  const { server, client, requests, answers, settle, reaches } = setup();
  let relayed: Address | undefined;
  client.allocate([RELAY], (address) => (relayed = address));
  await settle();
  assert.equal(relayed?.host, RELAY.host, 'allocated on the relay');
  // Another home behind the same carrier NAT: its relayed candidate is on this same relay, its
  // reflexive one is the carrier's public address, its host one a private address.
  const sameRelay = { host: RELAY.host, port: 50007 };
  const carrier = { host: '198.18.0.50', port: 40123 };
  client.permit([{ host: '192.168.1.20', port: 6084 }, carrier, sameRelay]);
  await settle();
  const permissions = requests.filter((r) => r.method === StunMethod.CreatePermission);
  assert.equal(permissions.length, 1, 'one CreatePermission');
  assert.equal(answers.at(-1)?.klass, StunClass.Success, 'granted');
  assert.equal(server.counters.forbiddenPeers, 0, 'nothing the relay refuses was asked for');
  assert.ok(reaches(carrier), 'the carrier address may send through the relay');
});

test('a refused CreatePermission is not remembered as granted: each peer is asked for alone, and asked again later', async () => {
  const { client, requests, settle, reaches } = setup(['198.18.0.99']);
  client.allocate([RELAY], () => {});
  await settle();
  // The relay also refuses its other addresses, which the client cannot know.
  client.permit([{ host: '198.18.0.50', port: 40123 }, { host: '198.18.0.99', port: 5000 }]);
  await settle();
  const asked = () => requests.filter((r) => r.method === StunMethod.CreatePermission).length;
  assert.equal(asked(), 3, 'the batch, then each alone');
  assert.ok(reaches({ host: '198.18.0.50', port: 40123 }), 'the one it may serve is permitted');
  client.permit([{ host: '198.18.0.99', port: 5000 }]);
  await settle();
  assert.equal(asked(), 4, 'the refused one is asked for again, not taken as held');
});

test('an unsealed error (a relay of the release before, or a forger) splits a batch of permissions; each peer alone is refused only under the key (review F5)', async () => {
  const { clock, client, transactions, requests, relayHost, settle, reaches } = setup();
  client.allocate([RELAY], () => {});
  await settle();
  const peers = [{ host: '198.18.0.50', port: 40123 }, { host: '198.18.0.51', port: 40124 }];
  relayHost.answerDelayMs = 20; // the unsealed 403 comes first
  const refuseUnsealed = () => {
    for (const r of requests.filter((q) => q.method === StunMethod.CreatePermission)) {
      const error = errorAnswer(StunMethod.CreatePermission, r.transactionId, 403, 'Forbidden');
      transactions.handleAnswer(RELAY, error, decodeStun(error));
    }
  };
  client.permit(peers);
  refuseUnsealed();
  const asked = () => requests.filter((r) => r.method === StunMethod.CreatePermission).length;
  assert.equal(asked(), 3, 'the batch at once, then each alone (not after the batch timed out)');
  refuseUnsealed(); // and each alone, refused unsealed too: not believed
  clock.runUntil(clock.now() + 1_000);
  assert.ok(peers.every(reaches), 'both permitted, under the key');
});

test('a relay that stops answering mid-call is noticed within 1.6 s and handed back with the peers reached through it; an idle one within 21 s', async () => {
  const { clock, client, link, relayHost, settle } = setup();
  client.allocate([RELAY], () => {});
  await settle();
  const home = { host: '198.18.0.77', port: 6084 };
  link.routeThroughRelay(home);
  const lost: { server: Address; routed: readonly Address[]; silent: boolean; at: number }[] = [];
  client.onLost = (server, routed, silent) => lost.push({ server, routed, silent, at: clock.now() });
  // A call's media: a datagram through the relay every 20 ms, for 20 s.
  const media = (until: number) => {
    for (let t = clock.now(); t < until; t += 20) clock.schedule(t - clock.now(), () => link.send(home, new Uint8Array([0x80, 0, 1, 2])));
  };
  media(20_000);
  clock.runUntil(10_000);
  assert.equal(lost.length, 0, 'an answering relay is kept');
  assert.ok(client.counters.livenessChecks >= 10_000 / RELAY_LIVENESS.idleMs + 4 * 4, `checked often while busy (${client.counters.livenessChecks})`);
  relayHost.alive = false;
  const diedAt = clock.now();
  clock.runUntil(20_000);
  assert.equal(lost.length, 1, 'lost once');
  assert.ok(lost[0].at - diedAt <= 1_600, `noticed after ${lost[0].at - diedAt} ms`);
  assert.equal(lost[0].silent, true);
  assert.deepEqual(lost[0].server, RELAY);
  assert.deepEqual(lost[0].routed, [home]);
  assert.equal(client.state, 'none', 'the allocation is dropped');
  assert.equal(link.isRouted(home), false, 'nothing is wrapped for the dead relay any more');

  // Idle: nothing goes through the relay; its death is still noticed, on the slow cadence.
  const idle = setup();
  idle.client.allocate([RELAY], () => {});
  await idle.settle();
  const idleLost: number[] = [];
  idle.client.onLost = () => idleLost.push(idle.clock.now());
  idle.clock.runUntil(30_000);
  assert.equal(idleLost.length, 0);
  idle.relayHost.alive = false;
  idle.clock.runUntil(60_000);
  assert.equal(idleLost.length, 1);
  assert.ok(idleLost[0] - 30_000 <= 21_000, `idle relay noticed after ${idleLost[0] - 30_000} ms`);
});

test('a relay cut off from us for a while, then back, allocates for us again: our silent loss released the old allocation (review F1)', async () => {
  const { clock, client, relayHost, server, settle } = setup();
  client.allocate([RELAY], () => {});
  await settle();
  const lost: boolean[] = [];
  client.onLost = (_server, _routed, silent) => lost.push(silent);
  relayHost.alive = false; // our requests stop reaching it
  for (let t = 100; lost.length === 0 && t <= 30_000; t += 100) clock.runUntil(t);
  assert.deepEqual(lost, [true]);
  relayHost.alive = true; // back: the release, retransmitted, gets through
  clock.runUntil(clock.now() + 5_000);
  assert.equal(server.status().active, 0, 'the relay freed the allocation we no longer use');
  let relayed: Address | undefined;
  client.allocate([RELAY], (address) => (relayed = address));
  await settle();
  assert.ok(relayed, `allocated again (${client.lastError})`);
});

test('a slow relay is not a dead one (late answers count); a relay that restarted and forgot us is lost; our own full STUN table says nothing of the relay', async () => {
  const slow = setup();
  slow.client.allocate([RELAY], () => {});
  await slow.settle();
  const home = { host: '198.18.0.77', port: 6084 };
  slow.link.routeThroughRelay(home);
  let lost = 0;
  slow.client.onLost = () => lost++;
  for (let t = 0; t < 30_000; t += 20) slow.clock.schedule(t, () => slow.link.send(home, new Uint8Array([0x80, 0, 1, 2])));
  slow.relayHost.answerDelayMs = 700; // a loaded uplink: every answer 700 ms late
  slow.clock.runUntil(30_000);
  assert.equal(lost, 0, 'answers 700 ms late keep the relay');
  slow.relayHost.answerDelayMs = 0;

  // The relay process restarts: it answers, but no longer holds our allocation; our Refreshes are dropped.
  const restarted = setup();
  restarted.client.allocate([RELAY], () => {});
  await restarted.settle();
  const losses: boolean[] = [];
  restarted.client.onLost = (_server, _routed, silent) => losses.push(silent);
  restarted.restartRelay();
  restarted.clock.runUntil(30_000);
  assert.deepEqual(losses, [true], 'lost within the idle checks, not at the next refresh 300 s on');

  // Our STUN transaction table is full (say, of connectivity checks others made us send): checks wait, nothing is lost.
  const busy = setup();
  busy.client.allocate([RELAY], () => {});
  await busy.settle();
  let busyLost = 0;
  busy.client.onLost = () => busyLost++;
  for (let i = 0; i < 1024; i++) {
    const id = new Uint8Array(12);
    id[0] = i >> 8;
    id[1] = i & 0xff;
    id[11] = 0xee;
    busy.transactions.request(id, new Uint8Array(20), { host: '198.18.0.99', port: 9 }, () => {}, () => {}, { rtoMs: 60_000, attempts: 1 });
  }
  assert.equal(busy.transactions.full, true);
  busy.clock.runUntil(50_000);
  assert.equal(busyLost, 0, 'a full table is no news of the relay');
});

test('the peers a link reaches through the relay keep their permissions for as long as the allocation lives (traffic alone does not renew one); a lapsed one is forgotten', async () => {
  const { clock, client, link, requests, settle, reaches } = setup();
  client.allocate([RELAY], () => {});
  await settle();
  const routed = { host: '198.18.0.50', port: 40123 };
  const merelyChecked = { host: '198.18.0.51', port: 40123 };
  client.permit([routed, merelyChecked]);
  link.routeThroughRelay(routed);
  await settle();
  assert.ok(reaches(routed) && reaches(merelyChecked));
  // Twenty minutes of a call through the relay: each permission lasts 300 s at the relay.
  for (let t = 0; t < 20 * 60_000; t += RELAY_LIVENESS.idleMs) {
    clock.runUntil(clock.now() + RELAY_LIVENESS.idleMs);
    await settle();
  }
  assert.ok(reaches(routed), 'the peer a link goes to through the relay may still send');
  assert.ok(!reaches(merelyChecked), 'a candidate that was only checked lost its permission');
  assert.equal(client.status().permissions, 1, 'and is forgotten here too (leak review F1)');
  const renewals = requests.filter((r) => r.method === StunMethod.CreatePermission).length - 1;
  assert.ok(renewals >= 20 / 3 && renewals <= 20 / 2 + 1, `${renewals} renewals in 20 minutes (one every 2 to 3 minutes)`);
});

/** A client of its own on `world`'s clock and transactions, whose datagrams go to `sendRaw` (the relays a test plays). */
function clientOf(world: ReturnType<typeof setup>, sendRaw: (to: Address, datagram: Uint8Array) => void, linkSecret = (_relay: Address): Uint8Array | undefined => LINK_SECRET): RelayClient {
  const link = new RelayLink({ localAddress: CLIENT, send: () => {}, onDatagram: () => {}, close: async () => {} });
  return new RelayClient({ clock: world.clock, random: world.random, log: silentLogger, transactions: world.transactions, sendRaw, link, linkSecret });
}

test('a relay whose Allocate answer cannot be read is refused like one that says no, and the next relay is asked (review F8)', async () => {
  const world = setup();
  const { server, transactions } = world;
  const ROGUE = { host: '198.18.0.66', port: 6084 };
  const asked: string[] = [];
  const client = clientOf(world, (to, datagram) => {
    const message = decodeStun(datagram);
    asked.push(`${to.host} ${message.method}`);
    if (to.host !== ROGUE.host) return server.handle(CLIENT, message, datagram);
    // Success, with a relayed address 7 bytes long.
    const answer = seal(encodeStun(StunMethod.Allocate, StunClass.Success, message.transactionId, [{ type: Attr.XorRelayedAddress, value: new Uint8Array(7) }]), LINK_SECRET);
    transactions.handleAnswer(ROGUE, answer, decodeStun(answer));
  });
  const results: (Address | undefined)[] = [];
  client.allocate([ROGUE, RELAY], (relayed) => results.push(relayed));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(results.length, 1, 'done is called once');
  assert.equal(results[0]?.host, RELAY.host, 'the second relay holds the allocation');
  assert.equal(client.state, 'allocated');
  assert.deepEqual(client.server, RELAY);
  assert.deepEqual(asked.slice(0, 2), [`${ROGUE.host} ${StunMethod.Allocate}`, `${RELAY.host} ${StunMethod.Allocate}`]);
});

test("an Allocate answer not keyed with the sealed link's secret is not believed (a host that passes the link's datagrams, answering for the relay; a relay of the release before, which sent the key itself in clear); a relay with no sealed link is passed over at once", async () => {
  const world = setup();
  const { clock, server, transactions, random } = world;
  const MIDDLE = { host: '198.18.0.68', port: 6084 };
  const OLD = { host: '198.18.0.67', port: 6084 };
  const UNLINKED = { host: '198.18.0.69', port: 6084 };
  const asked: string[] = [];
  const answerAs = (from: Address, message: StunMessage, attributes: { type: number; value: Uint8Array }[], key?: Uint8Array) => {
    const answer = seal(encodeStun(StunMethod.Allocate, StunClass.Success, message.transactionId, [{ type: Attr.XorRelayedAddress, value: encodeXorAddress({ host: from.host, port: 50001 }, message.transactionId) }, ...attributes]), key);
    transactions.handleAnswer(from, answer, decodeStun(answer));
  };
  const client = clientOf(
    world,
    (to, datagram) => {
      const message = decodeStun(datagram);
      asked.push(to.host);
      // The old relay: unsealed, with a 16-byte key in the attribute 0xc0f1. The middle host: under a key of its own.
      if (to.host === OLD.host) return answerAs(OLD, message, [{ type: 0xc0f1, value: random.bytes(16) }]);
      if (to.host === MIDDLE.host) return answerAs(MIDDLE, message, [], random.bytes(32));
      server.handle(CLIENT, message, datagram);
    },
    (relay) => (relay.host === UNLINKED.host ? undefined : LINK_SECRET),
  );
  const results: (Address | undefined)[] = [];
  client.allocate([UNLINKED, MIDDLE, OLD, RELAY], (relayed) => results.push(relayed));
  for (let t = 1_000; t <= 40_000 && results.length === 0; t += 1_000) {
    await new Promise((resolve) => setImmediate(resolve));
    clock.runUntil(t);
  }
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(results.map((r) => r?.host), [RELAY.host], "the relay's own answer is the one believed");
  assert.ok(!asked.includes(UNLINKED.host), 'nothing is sent to a relay we hold no sealed link with');
  assert.equal(asked.filter((host) => host === MIDDLE.host).length, 5, "the middle host's answers are ignored: the Allocate is retransmitted until it times out");
  assert.equal(asked.filter((host) => host === OLD.host).length, 5, "and so are the old relay's");
});

test('an error answer forged from the relay\'s own address, without the allocation\'s key, does not cost us the relay; the relay\'s own sealed refusal does (RFC 8489 s9.1.4)', async () => {
  const { clock, client, transactions, requests, relayHost, settle } = setup();
  client.allocate([RELAY], () => {});
  await settle();
  assert.equal(client.state, 'allocated');
  let lost = 0;
  client.onLost = () => lost++;
  // An on-path attacker answers each Refresh first, spoofing the relay: 437 Allocation Mismatch, sealed under no key or a guessed one.
  let forged = 0;
  const seen = new Set<string>();
  for (let t = 0; t < 30_000; t += 5) {
    clock.schedule(t, () => {
      for (const r of requests.filter((q) => q.method === StunMethod.Refresh)) {
        const id = Buffer.from(r.transactionId).toString('hex');
        if (seen.has(id)) continue;
        seen.add(id);
        const error = errorAnswer(StunMethod.Refresh, r.transactionId, 437, 'Allocation Mismatch', forged % 2 ? new Uint8Array(16) : undefined);
        forged++;
        transactions.handleAnswer(RELAY, error, decodeStun(error));
      }
    });
  }
  relayHost.answerDelayMs = 20; // the real answer comes after the forged one
  clock.runUntil(30_000);
  assert.ok(forged >= 4, `${forged} forged errors`);
  assert.equal(lost, 0, 'the relay is kept');
  assert.equal(client.state, 'allocated');
  assert.ok(transactions.forgedAnswers >= forged, 'each forged answer dropped and counted');

  // The relay itself refuses (we were revoked): its 403 is sealed under the key, and ends the allocation at once.
  relayHost.believed = false;
  clock.runUntil(40_000);
  assert.equal(lost, 1);
  assert.equal(client.state, 'none');
  assert.match(client.lastError ?? '', /no longer holds/);
});
