import assert from 'node:assert/strict';
import { test } from 'node:test';
import { frame, OVERLAY, world } from '../../helpers/sealed-world.js';
import { decodeSecurityFrame, encodeSecurityFrame } from '../../../src/wire/link-security.js';
import { FrameType } from '../../../src/wire/frame.js';

/*
 * The sealed link on its own, over the simulator's network: both ends authenticate each other
 * with certificates, every datagram is sealed, and replays, alterations, plaintext and untrusted
 * certificates are refused, each counted.
 */
test('two ends handshake, then datagrams arrive opened, in order, with the sender proven by its certificate', () => {
  const { make, settle } = world();
  const a = make(1);
  const b = make(2);
  for (let i = 0; i < 5; i++) a.link.send(b.link.localAddress, frame(i));
  settle();
  assert.deepEqual(b.received.map((r) => r.bytes[2]), [0, 1, 2, 3, 4]);
  assert.deepEqual(b.received[0].peer?.nodeIds, [a.identity.nodeId]);
  b.link.send(a.link.localAddress, frame(9));
  settle();
  assert.equal(a.received[0].bytes[2], 9);
  assert.equal(a.received[0].peer?.subject, 'node2@seal.p2psip');
  assert.equal(a.link.counters.handshakesStarted, 1);
  assert.equal(a.link.counters.handshakesCompleted, 1);
  assert.equal(b.link.counters.handshakesAnswered, 1);
  assert.equal(b.link.counters.handshakesStarted, 0, 'B answered on the session A opened');
});

test('the plaintext is not on the wire; a replayed or altered datagram is dropped and counted', () => {
  const { make, settle } = world();
  const a = make(1);
  const b = make(2);
  const secret = new TextEncoder().encode('\x82\x00the secret words');
  a.link.send(b.link.localAddress, secret);
  settle();
  assert.equal(b.received.length, 1);
  const sealed = a.wire.at(-1)!;
  assert.equal(Buffer.from(sealed).includes(Buffer.from('the secret words')), false);
  a.send(b.link.localAddress, sealed); // replayed from A's own address
  settle();
  assert.equal(b.received.length, 1);
  assert.equal(b.link.counters.replays, 1);
  const parsed = decodeSecurityFrame(sealed);
  assert.equal(parsed.type, FrameType.Sealed);
  if (parsed.type !== FrameType.Sealed) return;
  const altered = new Uint8Array(parsed.ciphertext);
  altered[0] ^= 1;
  a.send(b.link.localAddress, encodeSecurityFrame({ ...parsed, counter: parsed.counter + 50, ciphertext: altered }));
  settle();
  assert.equal(b.received.length, 1);
  assert.equal(b.link.counters.badTags, 1);
  // The forged counter did not move the replay window: the next real datagram still gets in.
  a.link.send(b.link.localAddress, frame(7));
  settle();
  assert.equal(b.received.at(-1)!.bytes[2], 7);
});

test('plaintext overlay frames are refused; STUN passes through untouched for the layer above', () => {
  const { network, make, settle } = world();
  const b = make(2);
  const raw = network.addHost();
  raw.send(b.link.localAddress, frame(1));
  raw.send(b.link.localAddress, new Uint8Array([0x00, 0x01, 0x00, 0x00]));
  settle();
  assert.equal(b.link.counters.plaintextRefused, 1);
  assert.equal(b.received.length, 1);
  assert.equal(b.received[0].bytes[0], 0x00);
  assert.equal(b.received[0].peer, undefined);
});

test('a node whose certificate is not believed cannot complete a handshake in either role', () => {
  const { make, settle } = world();
  const b = make(2);
  const stranger = make(3, 'other.overlay');
  stranger.link.send(b.link.localAddress, frame(1));
  settle(5000);
  assert.equal(b.received.length, 0);
  assert.equal(b.link.counters.handshakesRefused, 1);
  assert.equal(b.link.counters.handshakesAnswered, 0);
  b.link.send(stranger.link.localAddress, frame(2));
  settle(5000);
  assert.equal(stranger.received.length, 0, 'B refuses the stranger as a responder too');
  assert.equal(b.link.counters.handshakesRefused, 2);
});

test('a hello replayed later than the allowed clock skew is refused', () => {
  const { make, settle } = world();
  const a = make(1);
  const b = make(2);
  a.link.send(b.link.localAddress, frame(1));
  settle();
  const hello = a.wire[0];
  assert.equal(decodeSecurityFrame(hello).type, FrameType.LinkHello);
  settle(11 * 60_000);
  const c = make(4);
  a.send(c.link.localAddress, hello);
  settle();
  assert.equal(c.link.counters.handshakesRefused, 1);
  assert.equal(c.received.length, 0);
});

test('after one end restarts, sealed frames for its lost session make it handshake again, and traffic resumes', () => {
  const { make, settle } = world();
  const a = make(1);
  const b = make(2);
  a.link.send(b.link.localAddress, frame(1));
  settle();
  const resets: string[] = [];
  a.link.onSessionReset((address) => resets.push(`${address.host}:${address.port}`));
  // B restarts: a new link on the same socket address, knowing no sessions.
  const b2 = make(2, OVERLAY, b.raw);
  a.link.send(b.link.localAddress, frame(2)); // sealed for a session B2 never had: dropped
  settle();
  assert.equal(b2.link.counters.unknownSessions, 1);
  assert.equal(b2.link.counters.unknownHintsSent, 1, 'B2 told A, in a small hint, that it holds no such session');
  assert.equal(b2.link.counters.handshakesStarted, 0, 'B2 signed nothing for an unauthenticated sender');
  assert.equal(a.link.counters.recoveries, 1);
  assert.equal(a.link.counters.handshakesStarted, 2, 'A, the session owner, opened a fresh one');
  assert.deepEqual(resets, [`${b.link.localAddress.host}:${b.link.localAddress.port}`], 'and told the layer above (our address may have changed)');
  a.link.send(b.link.localAddress, frame(3));
  settle();
  assert.deepEqual(b2.received.map((r) => r.bytes[2]), [3]);
  b2.link.send(a.link.localAddress, frame(4));
  settle();
  assert.equal(a.received.at(-1)!.bytes[2], 4);
});

test('revoking a certificate drops its sessions at the next check, and it cannot handshake again', () => {
  const { trust, make, settle } = world();
  const a = make(1);
  const b = make(2);
  a.link.send(b.link.localAddress, frame(1));
  settle();
  trust.revoked.add('node1@seal.p2psip');
  b.link.revalidate();
  assert.equal(b.link.counters.sessionsRevoked, 1);
  a.link.send(b.link.localAddress, frame(2));
  settle(5000);
  a.link.send(b.link.localAddress, frame(3));
  settle(5000);
  assert.deepEqual(b.received.map((r) => r.bytes[2]), [1]);
  assert.ok(b.link.counters.handshakesRefused >= 1);
});

test('an old session is replaced by a fresh handshake after the rekey interval, without losing datagrams', () => {
  const { make, settle } = world({ rekeyAfterMs: 10_000 });
  const a = make(1);
  const b = make(2);
  for (let i = 0; i < 30; i++) {
    a.link.send(b.link.localAddress, frame(i));
    settle(1000);
  }
  assert.equal(b.received.length, 30);
  assert.ok(a.link.counters.handshakesStarted >= 2, `rekeyed: ${a.link.counters.handshakesStarted} handshakes`);
});

test("both ends of a session derive the same exported secret for a label, and no one else holds one (relay Allocates are keyed with it); after a rekey the session sent on comes first", () => {
  const { make, settle } = world({ rekeyAfterMs: 10_000 });
  const a = make(1);
  const b = make(2);
  const c = make(3);
  assert.deepEqual(a.link.exportedSecrets(b.link.localAddress, 'label'), [], 'no session yet, no secret');
  a.link.send(b.link.localAddress, frame(1));
  settle();
  const [fromA] = a.link.exportedSecrets(b.link.localAddress, 'label');
  const [fromB] = b.link.exportedSecrets(a.link.localAddress, 'label');
  assert.equal(fromA.length, 32);
  assert.deepEqual(fromA, fromB, 'the same on both ends');
  assert.notDeepEqual(a.link.exportedSecrets(b.link.localAddress, 'other')[0], fromA, 'another label, another secret');
  c.link.send(b.link.localAddress, frame(2));
  settle();
  assert.notDeepEqual(b.link.exportedSecrets(c.link.localAddress, 'label')[0], fromA, "another node's session, another secret");
  for (let i = 0; i < 12; i++) {
    a.link.send(b.link.localAddress, frame(i));
    settle(1000);
  }
  const [newest] = a.link.exportedSecrets(b.link.localAddress, 'label');
  assert.notDeepEqual(newest, fromA, 'rekeyed: a new secret');
  assert.ok(b.link.exportedSecrets(a.link.localAddress, 'label').some((secret) => Buffer.from(secret).equals(Buffer.from(newest))), 'which the far end holds too');
});

test('a flooding address is held to its datagram budget while another address is served in full', () => {
  const { make, settle } = world({ datagramLimit: { ratePerSecond: 100, burst: 200 } });
  const target = make(2);
  const flooder = make(1);
  const honest = make(3);
  flooder.link.send(target.link.localAddress, frame(0));
  honest.link.send(target.link.localAddress, frame(0));
  settle();
  for (let second = 0; second < 5; second++) {
    for (let i = 0; i < 5000; i++) flooder.link.send(target.link.localAddress, frame(1));
    for (let i = 0; i < 20; i++) honest.link.send(target.link.localAddress, frame(2));
    settle(1000);
  }
  const fromHonest = target.received.filter((r) => r.bytes[2] === 2).length;
  const fromFlooder = target.received.filter((r) => r.bytes[2] === 1).length;
  assert.equal(fromHonest, 100, 'every honest datagram got through');
  assert.ok(fromFlooder <= 200 + 5 * 100, `flooder held to its budget: ${fromFlooder} of 25000`);
  assert.ok(target.link.counters.rateLimited >= 24_000);
});
