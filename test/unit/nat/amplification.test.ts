import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NatTraversal } from '../../../src/nat/nat-traversal.js';
import { RelayLink } from '../../../src/nat/relay/relay-link.js';
import { RelayServer, DEFAULT_RELAY_LIMITS } from '../../../src/nat/relay/relay-server.js';
import { encodeIndication, lifetimeAttr } from '../../../src/nat/relay/turn-codec.js';
import { seal } from '../../../src/nat/stun/integrity.js';
import { Attr, encodeStun, encodeXorAddress, StunClass, StunMethod } from '../../../src/nat/stun/message.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';
import type { Address } from '../../../src/wire/address.js';

/*
 * What a stranger (no sealed link, no allocation) gets back from a public relay peer's port for
 * each kind of STUN/TURN request, in bytes out per byte in. Only the plain Binding answer may be
 * larger than its request (32 bytes, RFC 8489's minimum); everything else is at most 1, most of it
 * 0. Then the per-source limit: a flood of Binding requests from one address is answered 20 times.
 */
const PEER: Address = { host: '198.18.0.1', port: 6084 };
const STRANGER: Address = { host: '198.18.0.66', port: 40000 };

function publicPeer() {
  const clock = new VirtualClock();
  const random = new SeededRandom(5);
  const out: { to: Address; bytes: number }[] = [];
  const link = { localAddress: PEER, send: () => {}, onDatagram: () => {}, close: async () => {} };
  const sendRaw = (to: Address, datagram: Uint8Array) => out.push({ to, bytes: datagram.length });
  const relayServer = new RelayServer({ clock, random, log: silentLogger, host: PEER.host, openSocket: async () => link, sendRaw, nodeAt: () => undefined, limits: DEFAULT_RELAY_LIMITS });
  const nat = new NatTraversal({
    clock,
    random,
    log: silentLogger,
    host: () => PEER,
    sendRaw,
    relayLink: new RelayLink(link),
    linkSecret: () => undefined,
    relayServer,
    changeResponder: () => ({ otherAddress: () => ({ host: '198.18.0.2', port: 6084 }), send: (_flags, to, answer) => sendRaw(to, answer) }),
    isEnrolled: () => false,
  });
  return { nat, out, random, clock };
}

test('amplification per request type from a stranger: at most 1, the plain Binding answer aside', async () => {
  const { nat, out, random } = publicPeer();
  const id = () => random.bytes(12);
  const requests: Record<string, Uint8Array> = {
    'Binding (20 bytes)': encodeStun(StunMethod.Binding, StunClass.Request, id(), []),
    'Binding with FINGERPRINT': seal(encodeStun(StunMethod.Binding, StunClass.Request, id(), [])),
    'Binding, unknown comprehension-required attribute': encodeStun(StunMethod.Binding, StunClass.Request, id(), [{ type: 0x0030, value: new Uint8Array(4) }]),
    'Binding with CHANGE-REQUEST': encodeStun(StunMethod.Binding, StunClass.Request, id(), [{ type: Attr.ChangeRequest, value: new Uint8Array([0, 0, 0, 6]) }]),
    'Binding with RESPONSE-PORT': encodeStun(StunMethod.Binding, StunClass.Request, id(), [{ type: Attr.ResponsePort, value: new Uint8Array([0x1f, 0x90, 0, 0]) }]),
    'ICE check for no session': encodeStun(StunMethod.Binding, StunClass.Request, id(), [{ type: Attr.Username, value: new TextEncoder().encode('abcd:efgh') }]),
    Allocate: encodeStun(StunMethod.Allocate, StunClass.Request, id(), [{ type: Attr.RequestedTransport, value: new Uint8Array([17, 0, 0, 0]) }]),
    'Refresh (lifetime 0)': encodeStun(StunMethod.Refresh, StunClass.Request, id(), [lifetimeAttr(0)]),
    CreatePermission: ((t: Uint8Array) => encodeStun(StunMethod.CreatePermission, StunClass.Request, t, [{ type: Attr.XorPeerAddress, value: encodeXorAddress({ host: '127.0.0.1', port: 5351 }, t) }]))(id()),
    Send: encodeIndication(StunMethod.Send, id(), { host: '127.0.0.1', port: 5351 }, new Uint8Array(8)),
  };
  const table: string[] = [];
  for (const [name, bytes] of Object.entries(requests)) {
    out.length = 0;
    nat.receive('host', STRANGER, bytes);
    await new Promise((resolve) => setImmediate(resolve));
    const sent = out.reduce((n, o) => n + o.bytes, 0);
    const factor = sent / bytes.length;
    table.push(`${name.padEnd(52)} ${String(bytes.length).padStart(4)} B in, ${String(sent).padStart(3)} B out, factor ${factor.toFixed(2)}`);
    if (name.startsWith('Binding') && !name.includes('unknown')) assert.ok(sent <= 32, `${name}: the plain Binding answer, 32 bytes at most (${sent})`);
    else assert.ok(factor <= 1, `${name}: factor ${factor}`);
    for (const o of out) assert.equal(o.to.host, STRANGER.host, `${name}: nothing goes to anyone but the asker's own address`);
  }
  console.log(`\nBytes a stranger gets back, per request type:\n${table.join('\n')}\n`);
});

test('a flood of Binding requests from one source is answered 20 times (its burst), then dropped before any work', () => {
  const { nat, out, random } = publicPeer();
  for (let i = 0; i < 1000; i++) nat.receive('host', STRANGER, encodeStun(StunMethod.Binding, StunClass.Request, random.bytes(12), []));
  assert.equal(out.length, 20);
  assert.equal(nat.counters.rateLimited, 980);
  // Another source still gets its answer: the limit is per source (and a larger overall one).
  nat.receive('host', { host: '198.18.0.67', port: 1 }, encodeStun(StunMethod.Binding, StunClass.Request, random.bytes(12), []));
  assert.equal(out.length, 21);
});

test('CHANGE-REQUEST from strangers has a budget of 60 (it costs a signed overlay message), RESPONSE-PORT one of 40: a spoofer cannot aim answers at a victim\'s ports for long', () => {
  const { nat, out, random } = publicPeer();
  for (let i = 0; i < 100; i++) {
    const source = { host: `198.18.1.${i}`, port: 1000 }; // many sources: the per-source limit does not apply
    nat.receive('host', source, encodeStun(StunMethod.Binding, StunClass.Request, random.bytes(12), [{ type: Attr.ChangeRequest, value: new Uint8Array([0, 0, 0, 6]) }]));
  }
  assert.equal(out.length, 60);
  assert.equal(nat.counters.redirectsRefused, 40);
  out.length = 0;
  for (let i = 0; i < 100; i++) {
    const source = { host: `198.18.2.${i}`, port: 1000 };
    nat.receive('host', source, encodeStun(StunMethod.Binding, StunClass.Request, random.bytes(12), [{ type: Attr.ResponsePort, value: new Uint8Array([0x1f, 0x90, 0, 0]) }]));
  }
  assert.equal(out.length, 40);
});
