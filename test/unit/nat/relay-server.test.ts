import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Link } from '../../../src/link/link.js';
import { RelayServer, type RelayLimits } from '../../../src/nat/relay/relay-server.js';
import { decodeIndication, encodeIndication, errorCode, lifetimeAttr } from '../../../src/nat/relay/turn-codec.js';
import { seal } from '../../../src/nat/stun/integrity.js';
import { Attr, attribute, decodeStun, decodeXorAddress, encodeStun, encodeXorAddress, StunClass, type StunMessage, StunMethod } from '../../../src/nat/stun/message.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import { type Address, addressKey } from '../../../src/wire/address.js';

/*
 * The relay's side of TURN as we use it (RFC 8656 subset): who gets an allocation, what it may
 * relay and how much.
 */
const CLIENT = { host: '198.18.0.11', port: 6084 };
const PEER = { host: '198.18.0.12', port: 7000 };

function setup(limits: Partial<RelayLimits> = {}) {
  const clock = new VirtualClock();
  const random = new SeededRandom(3);
  const toClients: { to: Address; message: StunMessage }[] = [];
  const sockets: { link: Link; sent: { to: Address; datagram: Uint8Array }[]; deliver: (from: Address, d: Uint8Array) => void; closed: boolean }[] = [];
  let nextPort = 50000;
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
    nodeAt: (address) => (address.host.startsWith('198.18.0.1') ? `node-${address.host}` : undefined),
    limits: { maxAllocations: 4, maxPerNode: 1, pairRate: { ratePerSecond: 10, burst: 5 }, maxLifetimeSeconds: 3600, ...limits },
  });
  const request = (from: Address, method: number, attributes: { type: number; value: Uint8Array }[] = []) => {
    const id = random.bytes(12);
    server.handle(from, decodeStun(seal(encodeStun(method, StunClass.Request, id, attributes))));
    return id;
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { clock, server, toClients, sockets, request, settle, random };
}

test('an enrolled node gets an allocation with a relayed address; a stranger gets 403, a second allocation 486', async () => {
  const { request, toClients, settle } = setup();
  request(CLIENT, StunMethod.Allocate, [lifetimeAttr(600)]);
  await settle();
  const answer = toClients.pop()!.message;
  assert.equal(answer.klass, StunClass.Success);
  const relayed = decodeXorAddress(attribute(answer, Attr.XorRelayedAddress)!.value, answer.transactionId);
  assert.equal(addressKey(relayed), '198.18.0.1:50000');
  request({ host: '198.18.9.9', port: 1 }, StunMethod.Allocate);
  await settle();
  assert.equal(errorCode(toClients.pop()!.message), 403);
  request({ ...CLIENT, port: 6085 }, StunMethod.Allocate); // same node, another port
  await settle();
  assert.equal(errorCode(toClients.pop()!.message), 486);
});

test('datagrams pass only to and from peers with a permission, and a pair is held to its rate', async () => {
  const { request, toClients, sockets, settle, server, random } = setup();

  request(CLIENT, StunMethod.Allocate);
  await settle();
  const socket = sockets[0];
  const send = (data: Uint8Array) => server.handle(CLIENT, decodeStun(encodeIndication(StunMethod.Send, random.bytes(12), PEER, data)));
  send(new Uint8Array([0x80, 1]));
  socket.deliver(PEER, new Uint8Array([0x80, 2]));
  assert.equal(socket.sent.length, 0, 'nothing to a peer without a permission');
  assert.equal(server.counters.droppedNoPermission, 2);
  const id = random.bytes(12);
  server.handle(CLIENT, decodeStun(seal(encodeStun(StunMethod.CreatePermission, StunClass.Request, id, [{ type: Attr.XorPeerAddress, value: encodeXorAddress(PEER, id) }]))));
  assert.equal(toClients.pop()!.message.klass, StunClass.Success);
  for (let i = 0; i < 20; i++) send(new Uint8Array([0x80, i]));
  assert.equal(socket.sent.length, 5, 'the burst of the pair limit, then drops');
  assert.equal(server.counters.droppedOverRate, 15);
  // One budget per pair, both directions: the peer's answer waits for tokens too.
  socket.deliver(PEER, new Uint8Array([0x80, 0x42]));
  assert.equal(server.counters.droppedOverRate, 16);
  assert.equal(server.counters.relayedToClients, 0);
});

test('a Data indication carries the peer and its datagram back to the client; Refresh with lifetime 0 releases the port', async () => {
  const { clock, request, toClients, sockets, settle, server } = setup({ pairRate: { ratePerSecond: 1000, burst: 1000 } });
  request(CLIENT, StunMethod.Allocate);
  await settle();
  const id = new Uint8Array(12).fill(1);
  server.handle(CLIENT, decodeStun(seal(encodeStun(StunMethod.CreatePermission, StunClass.Request, id, [{ type: Attr.XorPeerAddress, value: encodeXorAddress(PEER, id) }]))));
  toClients.length = 0;
  sockets[0].deliver(PEER, new Uint8Array([0x82, 0x01, 0x02]));
  const data = toClients.pop()!;
  assert.equal(addressKey(data.to), addressKey(CLIENT));
  assert.equal(data.message.method, StunMethod.Data);
  const carried = decodeIndication(data.message)!;
  assert.equal(addressKey(carried.peer), addressKey(PEER));
  assert.deepEqual([...carried.data], [0x82, 0x01, 0x02]);
  request(CLIENT, StunMethod.Refresh, [lifetimeAttr(0)]);
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
