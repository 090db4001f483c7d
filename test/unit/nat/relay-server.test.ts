import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Link } from '../../../src/link/link.js';
import { type RelayServerDeps, RelayServer, type RelayLimits } from '../../../src/nat/relay/relay-server.js';
import { decodeIndication, encodeIndication, errorCode, lifetimeAttr } from '../../../src/nat/relay/turn-codec.js';
import type { EphemeralKey } from '../../../src/link/secure/link-crypto.js';
import { allocationKey, newKeyShare } from '../../../src/nat/relay/allocation-key.js';
import { seal } from '../../../src/nat/stun/integrity.js';
import { Attr, attribute, decodeStun, decodeXorAddress, encodeStun, encodeXorAddress, StunClass, type StunMessage, StunMethod } from '../../../src/nat/stun/message.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { bytesToHex } from '../../../src/runtime/hex.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import { type Address, addressKey } from '../../../src/wire/address.js';

/*
 * The relay's side of TURN as we use it (RFC 8656 subset): who gets an allocation, what it may
 * relay and how much.
 */
const CLIENT = { host: '198.18.0.11', port: 6084 };
const PEER = { host: '198.18.0.12', port: 7000 };
/** What the sealed link with each client gives both ends for RELAY_LINK_LABEL (the relay is told it by nodeAt). */
const LINK_SECRET = new Uint8Array(32).fill(9);

function setup(limits: Partial<RelayLimits> = {}, more: Partial<RelayServerDeps> = {}) {
  const clock = new VirtualClock();
  const random = new SeededRandom(3);
  const toClients: { to: Address; message: StunMessage }[] = [];
  const sockets: { link: Link; sent: { to: Address; datagram: Uint8Array }[]; deliver: (from: Address, d: Uint8Array) => void; closed: boolean }[] = [];
  let nextPort = 50000;
  /** Hosts whose node's certificate is no longer believed. */
  const revoked = new Set<string>();
  const server = new RelayServer({
    clock,
    random,
    log: silentLogger,
    host: '198.18.0.1',
    openSocket: async (bind) => {
      let handler: (from: Address, d: Uint8Array) => void = () => {};
      const socket = { sent: [] as { to: Address; datagram: Uint8Array }[], deliver: (from: Address, d: Uint8Array) => handler(from, d), closed: false, link: undefined as unknown as Link };
      socket.link = { localAddress: { host: bind.host, port: nextPort++ }, send: (to, datagram) => socket.sent.push({ to, datagram }), onDatagram: (h) => (handler = h), close: async () => void (socket.closed = true) };
      sockets.push(socket);
      return socket.link;
    },
    sendRaw: (to, datagram) => toClients.push({ to, message: decodeStun(datagram) }),
    nodeAt: (address) => (address.host.startsWith('198.18.0.1') ? { id: `node-${address.host}`, stillBelieved: () => !revoked.has(address.host), linkSecrets: [LINK_SECRET] } : undefined),
    limits: { maxAllocations: 4, maxPerNode: 1, pairRate: { ratePerSecond: 10, burst: 5 }, maxLifetimeSeconds: 3600, ...limits },
    ...more,
  });
  /** Hands the relay a datagram as it arrived. */
  const deliver = (from: Address, bytes: Uint8Array) => server.handle(from, decodeStun(bytes), bytes);
  /** The node's X25519 share of each Allocate sent, by transaction ID: the key is derived from it and the answer's. */
  const shares = new Map<string, EphemeralKey>();
  /** An Allocate's attributes with a key share of the node's, as every node sends it. */
  const withShare = (id: Uint8Array, attributes: { type: number; value: Uint8Array }[]) => {
    if (attributes.some((a) => a.type === Attr.KeyShare)) return attributes;
    const share = newKeyShare(random);
    shares.set(bytesToHex(id), share);
    return [...attributes, { type: Attr.KeyShare, value: share.publicKey }];
  };
  /** A request, with MESSAGE-INTEGRITY under `key` (the allocation's), or for an Allocate the link's secret. */
  const request = (from: Address, method: number, attributes: { type: number; value: Uint8Array }[] | ((id: Uint8Array) => { type: number; value: Uint8Array }[]) = [], key?: Uint8Array) => {
    const id = random.bytes(12);
    const listed = typeof attributes === 'function' ? attributes(id) : attributes;
    const allocate = method === StunMethod.Allocate;
    deliver(from, seal(encodeStun(method, StunClass.Request, id, allocate ? withShare(id, listed) : listed), key ?? (allocate ? LINK_SECRET : undefined)));
    return id;
  };
  /** The allocation's key, as the node derives it from the relay's answer to its Allocate. */
  const keyOf = (answer: StunMessage) => allocationKey(shares.get(bytesToHex(answer.transactionId))!, attribute(answer, Attr.KeyShare)!.value, LINK_SECRET, answer.transactionId, 'node');
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  /** Allocates for `from` and returns the allocation's key from the answer. */
  const allocate = async (from: Address = CLIENT, attributes: { type: number; value: Uint8Array }[] = []) => {
    request(from, StunMethod.Allocate, attributes);
    await settle();
    return keyOf(toClients.at(-1)!.message);
  };
  const permit = (key: Uint8Array, peer: Address = PEER, from: Address = CLIENT) => request(from, StunMethod.CreatePermission, (id) => [{ type: Attr.XorPeerAddress, value: encodeXorAddress(peer, id) }], key);
  const send = (key: Uint8Array | undefined, data: Uint8Array, peer: Address = PEER, from: Address = CLIENT) => deliver(from, encodeIndication(StunMethod.Send, random.bytes(12), peer, data, key));
  return { clock, server, toClients, sockets, request, settle, random, allocate, permit, send, deliver, revoked, withShare, keyOf };
}

test('an enrolled node gets an allocation with a relayed address; a stranger gets nothing, a second allocation 486', async () => {
  const { request, toClients, settle } = setup();
  request(CLIENT, StunMethod.Allocate, [lifetimeAttr(600)]);
  await settle();
  const answer = toClients.pop()!.message;
  assert.equal(answer.klass, StunClass.Success);
  const relayed = decodeXorAddress(attribute(answer, Attr.XorRelayedAddress)!.value, answer.transactionId);
  assert.equal(addressKey(relayed), '198.18.0.1:50000');
  const before = toClients.length;
  request({ host: '198.18.9.9', port: 1 }, StunMethod.Allocate);
  await settle();
  assert.equal(toClients.length, before, 'a stranger\'s Allocate is dropped, not answered (no reflection)');
  request({ ...CLIENT, port: 6085 }, StunMethod.Allocate); // same node, another port
  await settle();
  assert.equal(errorCode(toClients.pop()!.message), 486);
});

test("only a retransmission of the Allocate gets the allocation again; another Allocate from its 5-tuple gets 437 and no key (review F1); one not keyed with the sealed link's secret gets nothing", async () => {
  const { deliver, toClients, settle, random, withShare, keyOf, server } = setup();
  const id = random.bytes(12);
  const allocateBytes = seal(encodeStun(StunMethod.Allocate, StunClass.Request, id, withShare(id, [lifetimeAttr(600)])), LINK_SECRET);
  deliver(CLIENT, allocateBytes);
  await settle();
  const key = keyOf(toClients.pop()!.message);
  deliver(CLIENT, allocateBytes); // the client's retransmission: its answer was lost
  await settle();
  const again = toClients.pop()!.message;
  assert.equal(again.klass, StunClass.Success);
  assert.deepEqual(keyOf(again), key, 'the same allocation, the same key');
  // Someone who forges the client's address (or passes its link's datagrams along) without the link's secret.
  const before = toClients.length;
  const forgedId = random.bytes(12);
  deliver(CLIENT, seal(encodeStun(StunMethod.Allocate, StunClass.Request, forgedId, withShare(forgedId, [lifetimeAttr(600)])), random.bytes(32)));
  deliver(CLIENT, encodeStun(StunMethod.Allocate, StunClass.Request, random.bytes(12), withShare(random.bytes(12), [lifetimeAttr(600)])));
  await settle();
  assert.equal(toClients.length, before + 1, 'the one under a wrong key is not answered');
  const told = toClients.pop()!.message;
  assert.equal(errorCode(told), 400, 'the one with no integrity at all is told it runs an older release');
  assert.equal(attribute(told, Attr.KeyShare), undefined);
  assert.equal(server.counters.unauthenticated, 2);
  assert.equal(server.status().active, 1, 'the allocation stands');
  // The node itself, restarted on the same port, with a transaction of its own.
  const restartedId = random.bytes(12);
  deliver(CLIENT, seal(encodeStun(StunMethod.Allocate, StunClass.Request, restartedId, withShare(restartedId, [lifetimeAttr(600)])), LINK_SECRET));
  await settle();
  const mismatch = toClients.pop()!.message;
  assert.equal(errorCode(mismatch), 437);
  assert.equal(attribute(mismatch, Attr.KeyShare), undefined, 'no share, so no key of the allocation, is given out again');
});

test("the allocation's key is agreed, never sent: an Allocate without the node's X25519 share is refused (400); whoever reads the answer and forges the node's address cannot end the allocation with anything in it", async () => {
  const { deliver, toClients, settle, random, request, keyOf, server, sockets } = setup();
  // A node of the release before: no share, and no integrity (it is told so, unsealed: the answer holds nothing).
  deliver(CLIENT, seal(encodeStun(StunMethod.Allocate, StunClass.Request, random.bytes(12), [lifetimeAttr(600)])));
  await settle();
  const refused = toClients.pop()!.message;
  assert.equal(errorCode(refused), 400);
  assert.equal(attribute(refused, Attr.MessageIntegrity), undefined);
  assert.equal(sockets.length, 0, 'no port opened for it');
  // Under the link, but no share, or a share that is no X25519 key.
  deliver(CLIENT, seal(encodeStun(StunMethod.Allocate, StunClass.Request, random.bytes(12), [lifetimeAttr(600)]), LINK_SECRET));
  await settle();
  assert.equal(errorCode(toClients.pop()!.message), 400);
  deliver(CLIENT, seal(encodeStun(StunMethod.Allocate, StunClass.Request, random.bytes(12), [{ type: Attr.KeyShare, value: random.bytes(16) }]), LINK_SECRET));
  await settle();
  assert.equal(errorCode(toClients.pop()!.message), 400);
  // The answer to an Allocate with no integrity is larger than it, and its source can be forged: a flood of them gets few.
  const told = toClients.length;
  for (let i = 0; i < 50; i++) deliver(CLIENT, encodeStun(StunMethod.Allocate, StunClass.Request, random.bytes(12), []));
  await settle();
  assert.ok(toClients.length - told <= 5, `${toClients.length - told} answers to 50 (the burst; then one a second)`);
  toClients.splice(told);

  request(CLIENT, StunMethod.Allocate, [lifetimeAttr(600)]);
  await settle();
  const answer = toClients.pop()!.message;
  const key = keyOf(answer);
  // The watcher tries every value the answer carries as the key, in a Refresh that would end it.
  for (const { value } of answer.attributes) {
    for (const guess of [value, value.subarray(0, 16)]) request(CLIENT, StunMethod.Refresh, [lifetimeAttr(0)], new Uint8Array(guess));
  }
  assert.equal(server.status().active, 1, 'still allocated');
  assert.ok(server.counters.unauthenticated >= answer.attributes.length, 'each forgery dropped unanswered');
  request(CLIENT, StunMethod.Refresh, [lifetimeAttr(0)], key);
  await settle();
  assert.equal(server.status().active, 0, 'the node itself, holding its half, ends it');
});

test('a captured Allocate replayed from the node\'s address after its allocation ended opens nothing (review F6)', async () => {
  const { deliver, toClients, settle, random, withShare, keyOf, server, sockets, request } = setup();
  const id = random.bytes(12);
  const captured = seal(encodeStun(StunMethod.Allocate, StunClass.Request, id, withShare(id, [lifetimeAttr(600)])), LINK_SECRET);
  deliver(CLIENT, captured);
  await settle();
  const key = keyOf(toClients.pop()!.message);
  request(CLIENT, StunMethod.Refresh, [lifetimeAttr(0)], key); // the node moves to another relay
  await settle();
  assert.equal(server.status().active, 0);
  const answered = toClients.length;
  deliver(CLIENT, captured);
  await settle();
  assert.equal(server.status().active, 0, 'no allocation');
  assert.equal(sockets.length, 1, 'no port opened');
  assert.equal(toClients.length, answered, 'not answered');
  // The node itself allocates again, with a transaction of its own: served.
  assert.equal((await (async () => (request(CLIENT, StunMethod.Allocate, [lifetimeAttr(600)]), await settle(), toClients.pop()!.message))()).klass, StunClass.Success);
});

test('after a mismatched Allocate, an allocation whose holder goes on refreshing is kept; a silent one (its node restarted) ends, and the node allocates again', async () => {
  const { clock, server, request, toClients, settle, allocate, keyOf } = setup();
  const key = await allocate();
  const again = async () => {
    request(CLIENT, StunMethod.Allocate, [lifetimeAttr(600)]);
    await settle();
    return toClients.pop()!.message;
  };
  // A second Allocate under the link (a second start of the node, say): the live holder refreshes every 5 s, as its liveness checks do.
  assert.equal(errorCode(await again()), 437);
  for (let t = 5_000; t <= 30_000; t += 5_000) {
    clock.runUntil(t);
    request(CLIENT, StunMethod.Refresh, [lifetimeAttr(600)], key);
    assert.equal(toClients.pop()!.message.klass, StunClass.Success, `still held at ${t} ms`);
  }
  assert.equal(server.counters.endedSuperseded, 0);
  // The node restarted on the same port: its new Allocate gets 437, and nothing refreshes the old one.
  clock.runUntil(clock.now() + 1_000);
  assert.equal(errorCode(await again()), 437);
  clock.runUntil(clock.now() + 16_000);
  assert.equal(server.counters.endedSuperseded, 1);
  assert.equal(server.status().active, 0);
  const answer = await again();
  assert.equal(answer.klass, StunClass.Success, 'its next Allocate is served');
  assert.notDeepEqual(keyOf(answer), key, 'a new allocation, a new key');
});

test('datagrams pass only to and from peers with a permission, and a pair is held to its rate', async () => {
  const { toClients, sockets, server, allocate, permit, send } = setup();
  const key = await allocate();
  const socket = sockets[0];
  send(key, new Uint8Array([0x80, 1]));
  socket.deliver(PEER, new Uint8Array([0x80, 2]));
  assert.equal(socket.sent.length, 0, 'nothing to a peer without a permission');
  assert.equal(server.counters.droppedNoPermission, 2);
  permit(key);
  assert.equal(toClients.pop()!.message.klass, StunClass.Success);
  for (let i = 0; i < 20; i++) send(key, new Uint8Array([0x80, i]));
  assert.equal(socket.sent.length, 5, 'the burst of the pair limit, then drops');
  assert.equal(server.counters.droppedOverRate, 15);
  // One budget per pair, both directions: the peer's answer waits for tokens too.
  socket.deliver(PEER, new Uint8Array([0x80, 0x42]));
  assert.equal(server.counters.droppedOverRate, 16);
  assert.equal(server.counters.relayedToClients, 0);
});

test('a peer hopping source ports shares one budget: the pair is the peer host (review F7)', async () => {
  const { sockets, server, allocate, permit } = setup();
  const key = await allocate();
  permit(key);
  for (let port = 7000; port < 7100; port++) sockets[0].deliver({ host: PEER.host, port }, new Uint8Array([0x80, 1]));
  assert.equal(server.counters.relayedToClients, 5, 'the burst once, not once per port');
  assert.equal(server.counters.droppedOverRate, 95);
});

test('one allocation holds at most 128 live permissions; expired ones make room (review F3)', async () => {
  const { clock, toClients, allocate, request } = setup();
  const key = await allocate();
  const ask = (first: number) =>
    request(CLIENT, StunMethod.CreatePermission, (id) => Array.from({ length: 16 }, (_, i) => ({ type: Attr.XorPeerAddress, value: encodeXorAddress({ host: `198.19.${first + i}.1`, port: 1 }, id) })), key);
  const codes: (number | 'ok')[] = [];
  for (let round = 0; round < 9; round++) {
    ask(round * 16);
    const answer = toClients.pop()!.message;
    codes.push(answer.klass === StunClass.Success ? 'ok' : errorCode(answer)!);
  }
  assert.deepEqual(codes, ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 508], 'the ninth 16 would make 144');
  ask(0);
  assert.equal(toClients.pop()!.message.klass, StunClass.Success, 'renewing hosts it holds adds none');
  clock.runUntil(clock.now() + 301_000);
  ask(200);
  assert.equal(toClients.pop()!.message.klass, StunClass.Success, 'once the old ones expired there is room');
});

test('a node revoked after it allocated loses its relay at its next Refresh or CreatePermission (review F2)', async () => {
  const { toClients, sockets, settle, server, allocate, permit, request, revoked } = setup();
  const key = await allocate();
  permit(key);
  assert.equal(toClients.pop()!.message.klass, StunClass.Success);
  revoked.add(CLIENT.host);
  request(CLIENT, StunMethod.Refresh, [lifetimeAttr(600)], key);
  await settle();
  assert.equal(errorCode(toClients.pop()!.message), 403);
  assert.equal(sockets[0].closed, true);
  assert.equal(server.status().active, 0);
  assert.equal(server.counters.endedNotEnrolled, 1);
});

test('a Data indication carries the peer and its datagram back to the client; Refresh with lifetime 0 releases the port', async () => {
  const { clock, request, toClients, sockets, settle, server, allocate, permit } = setup({ pairRate: { ratePerSecond: 1000, burst: 1000 } });
  const key = await allocate();
  permit(key);
  toClients.length = 0;
  sockets[0].deliver(PEER, new Uint8Array([0x82, 0x01, 0x02]));
  const data = toClients.pop()!;
  assert.equal(addressKey(data.to), addressKey(CLIENT));
  assert.equal(data.message.method, StunMethod.Data);
  const carried = decodeIndication(data.message)!;
  assert.equal(addressKey(carried.peer), addressKey(PEER));
  assert.deepEqual([...carried.data], [0x82, 0x01, 0x02]);
  request(CLIENT, StunMethod.Refresh, [lifetimeAttr(0)], key);
  await settle();
  assert.equal(sockets[0].closed, true);
  assert.equal(server.status().active, 0);
  clock.runUntil(clock.now() + 1000);
});

test('an allocation nobody refreshes expires with its lifetime', async () => {
  const { clock, request, sockets, settle, server } = setup();
  request(CLIENT, StunMethod.Allocate, [lifetimeAttr(600)]);
  await settle();
  clock.runUntil(clock.now() + 599_000);
  assert.equal(server.status().active, 1);
  clock.runUntil(clock.now() + 2_000);
  await settle();
  assert.equal(sockets[0].closed, true);
  assert.equal(server.status().active, 0);
});

test('a permission for loopback, a LAN, link-local, multicast or the relay\'s own address is refused (403); nothing is ever sent there', async () => {
  const { toClients, sockets, server, allocate, permit, send } = setup();
  const key = await allocate();
  // IPv4 written inside IPv6 (mapped in hex, NAT64, 6to4) is judged as the IPv4 it carries.
  const hidden = ['::ffff:7f00:1', '::ffff:c612:1', '64:ff9b::a01:203', '2002:c0a8:101::1', '::1', 'fe80::1'];
  for (const host of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '172.20.0.5', '169.254.1.1', '100.64.0.9', '224.0.0.251', '255.255.255.255', '0.0.0.0', '198.18.0.1', ...hidden]) {
    permit(key, { host, port: 5351 });
    assert.equal(errorCode(toClients.pop()!.message), 403, host);
    send(key, new Uint8Array([0x80, 1]), { host, port: 5351 });
  }
  assert.equal(sockets[0].sent.length, 0, 'not one datagram left the relayed port');
  assert.equal(server.counters.forbiddenPeers, 16);
  permit(key, { host: '198.18.0.12', port: 7000 });
  assert.equal(toClients.pop()!.message.klass, StunClass.Success, 'a global peer is fine');
});

test("a peer address that cannot be read is a Bad Request in CreatePermission (400), and drops a Send: neither is a fault of the relay's (fuzz review)", async () => {
  const { toClients, sockets, allocate, request, deliver } = setup();
  const key = await allocate();
  const garbled = { type: Attr.XorPeerAddress, value: new Uint8Array([0, 9, 1]) };
  assert.doesNotThrow(() => request(CLIENT, StunMethod.CreatePermission, [garbled], key));
  assert.equal(errorCode(toClients.pop()!.message), 400);
  const data = { type: Attr.Data, value: new Uint8Array([0x80, 1]) };
  assert.doesNotThrow(() => deliver(CLIENT, seal(encodeStun(StunMethod.Send, StunClass.Indication, new Uint8Array(12).fill(4), [garbled, data]), key)));
  assert.equal(sockets[0].sent.length, 0);
});

test('after Allocate, requests and Send indications without MESSAGE-INTEGRITY under the allocation\'s key are dropped: a spoofed Refresh cannot end it', async () => {
  const { request, toClients, sockets, settle, server, allocate, permit, send } = setup();
  const key = await allocate();
  const answered = toClients.length;
  request(CLIENT, StunMethod.Refresh, [lifetimeAttr(0)]); // forged source, no key
  request(CLIENT, StunMethod.Refresh, [lifetimeAttr(0)], new Uint8Array(16).fill(9)); // a guessed key
  await settle();
  assert.equal(server.status().active, 1, 'the allocation lives');
  assert.equal(sockets[0].closed, false);
  assert.equal(toClients.length, answered, 'and the forger got no answer');
  permit(key);
  send(undefined, new Uint8Array([0x80, 7])); // a Send without the key
  assert.equal(sockets[0].sent.length, 0);
  assert.equal(server.counters.unauthenticated, 3);
  send(key, new Uint8Array([0x80, 8]));
  assert.equal(sockets[0].sent.length, 1, 'the holder\'s own Send goes');
});

test('a port-mapped relay announces each relayed port at its router forward, refuses its router as a peer, and gives the forward back with the allocation', async () => {
  // The home router: forwards WAN 198.18.0.50:<port> to the relay's LAN port, as PCP or UPnP grant it.
  const forwards = new Map<number, { lost: () => void }>();
  let refuse = false;
  const exposePort = async (port: number, lost: () => void) => {
    if (refuse) return undefined;
    forwards.set(port, { lost });
    return { external: { host: '198.18.0.50', port: port + 1000 }, close: async () => void forwards.delete(port) };
  };
  const { request, toClients, settle, allocate, permit, sockets, send, clock, keyOf } = setup({ maxPerNode: 2 }, { host: '198.19.1.2', exposePort });
  request(CLIENT, StunMethod.Allocate);
  await settle();
  const answer = toClients.at(-1)!.message;
  const relayed = decodeXorAddress(attribute(answer, Attr.XorRelayedAddress)!.value, answer.transactionId);
  assert.equal(addressKey(relayed), '198.18.0.50:51000', 'the relayed address is the forward, not the LAN port');
  assert.deepEqual([...forwards.keys()], [50000]);
  const key = keyOf(answer);

  // The router's own public address is the relay's own: no peer may be there (its forwards, its services).
  permit(key, { host: '198.18.0.50', port: 5351 });
  await settle();
  assert.equal(errorCode(toClients.pop()!.message), 403);
  permit(key);
  await settle();
  assert.equal(toClients.pop()!.message.klass, StunClass.Success);
  send(key, new Uint8Array([1, 2, 3]));
  assert.equal(sockets[0].sent.length, 1, 'relayed to a permitted peer');

  // The router drops the forward (it rebooted and would not grant it again): the allocation goes with it.
  forwards.get(50000)!.lost();
  await settle();
  assert.equal(sockets[0].closed, true);
  send(key, new Uint8Array([4]));
  assert.equal(sockets[0].sent.length, 1, 'nothing relayed on an allocation whose forward is gone');

  // A router that will not forward a new port: 508, and the socket opened for it is closed again.
  refuse = true;
  const other = { ...CLIENT, host: '198.18.0.13' };
  request(other, StunMethod.Allocate);
  await settle();
  assert.equal(errorCode(toClients.pop()!.message), 508);
  assert.equal(sockets.at(-1)!.closed, true);

  // An allocation that expires gives its forward back.
  refuse = false;
  await allocate(other, [lifetimeAttr(600)]);
  assert.equal(forwards.size, 1);
  clock.runUntil(clock.now() + 601_000);
  await settle();
  assert.equal(forwards.size, 0, 'the forward is removed when the allocation ends');
});

test('a port-mapped relay gives back a forward the router grants after it closed, and counts Allocates under way against the per-node quota', async () => {
  let grant: (() => void) | undefined;
  const forwards = new Set<number>();
  const exposePort = (port: number) =>
    new Promise<{ external: Address; close: () => Promise<void> }>((resolve) => {
      grant = () => {
        forwards.add(port);
        resolve({ external: { host: '198.18.0.50', port }, close: async () => void forwards.delete(port) });
      };
    });
  const { request, toClients, settle, server, sockets } = setup({ maxPerNode: 1 }, { host: '198.19.1.2', exposePort });
  request(CLIENT, StunMethod.Allocate);
  await settle();
  // The same node from another port while the first is still waiting on the router: over its quota.
  request({ ...CLIENT, port: 6085 }, StunMethod.Allocate);
  await settle();
  assert.equal(errorCode(toClients.pop()!.message), 486);
  // The peer stops while the router is still answering: what it then grants goes straight back.
  const closed = server.close();
  grant!();
  await closed;
  assert.equal(forwards.size, 0, 'no forward left behind');
  assert.equal(sockets[0].closed, true);
  assert.equal(server.status().active, 0);
});

test('when the relay may no longer serve (its overlay port is not forwarded any more), endAll ends every allocation and gives back its socket and forward', async () => {
  const forwards = new Map<number, true>();
  let serving = true;
  const exposePort = async (port: number) => {
    forwards.set(port, true);
    return { external: { host: '198.18.0.50', port }, close: async () => void forwards.delete(port) };
  };
  const { server, request, toClients, settle, allocate, permit, sockets, send } = setup({ maxPerNode: 2 }, { host: '198.19.1.2', exposePort, serving: () => serving });
  const keys = [await allocate(CLIENT), await allocate({ ...CLIENT, host: '198.18.0.13' })];
  permit(keys[0]);
  await settle();
  assert.equal(forwards.size, 2);

  serving = false;
  await server.endAll();
  assert.deepEqual([sockets[0].closed, sockets[1].closed], [true, true]);
  assert.equal(forwards.size, 0, 'both router forwards given back');
  assert.equal(server.counters.endedUnreachable, 2);
  assert.equal(server.free, 4);
  send(keys[0], new Uint8Array([1]));
  assert.equal(sockets[0].sent.length, 0, 'nothing relayed any more');
  // The client's next check gets no answer (it is no longer the holder of anything): it moves on.
  const answers = toClients.length;
  request(CLIENT, StunMethod.Refresh, [lifetimeAttr(600)], keys[0]);
  await settle();
  assert.equal(toClients.length, answers);
  // Meanwhile new clients are told the relay cannot serve.
  request({ ...CLIENT, host: '198.18.0.14' }, StunMethod.Allocate);
  await settle();
  assert.equal(errorCode(toClients.pop()!.message), 508);
});
