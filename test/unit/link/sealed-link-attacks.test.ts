import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOpenIdentity } from '../../../src/identity/open-identity.js';
import { FrameType } from '../../../src/wire/frame.js';
import { decodeSecurityFrame, encodeSecurityFrame, type LinkHello, type SealedFrame } from '../../../src/wire/link-security.js';
import { DecodeError } from '../../../src/wire/decode-error.js';
import { issueCertificate, SELF_ISSUER } from '../../../src/identity/certificate.js';
import { keyPairFromSeed } from '../../../src/identity/keys.js';
import { ed25519Suite } from '../../../src/identity/signature-suite.js';
import { nodeIdFromPublicKey, overlayHash } from '../../../src/identity/ids.js';
import { SealedLink } from '../../../src/link/secure/sealed-link.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { frame, OVERLAY, world } from '../../helpers/sealed-world.js';

/*
 * The link handshake as an attacker uses it (issue 13), each on the simulator's network where a
 * source address can be spoofed at will: none of these may stop a node, make it believe an
 * address is a node it is not, silence a link, or make it send more bytes than it received.
 */

const hellosIn = (wire: Uint8Array[]) => wire.map((bytes) => decodeSecurityFrame(bytes)).filter((f): f is LinkHello => f.type === FrameType.LinkHello);
const sealedIn = (wire: Uint8Array[]) => wire.map((bytes) => decodeSecurityFrame(bytes)).filter((f): f is SealedFrame => f.type === FrameType.Sealed);

test('a sealed frame with a counter of 2^48 or more is refused at decode; one just below fails its tag; the node runs on', () => {
  const { make, settle } = world();
  const a = make(1);
  const b = make(2);
  a.link.send(b.link.localAddress, frame(1));
  settle();
  const live = sealedIn(a.wire).at(-1)!;
  for (const counter of [2 ** 48, 2 ** 53 - 1, 2 ** 48 - 1]) {
    const bytes = encodeSecurityFrame({ ...live, counter });
    if (counter >= 2 ** 48) assert.throws(() => decodeSecurityFrame(bytes), DecodeError);
    a.send(b.link.localAddress, bytes);
  }
  settle();
  assert.equal(b.link.counters.malformed, 2);
  assert.equal(b.link.counters.badTags, 1);
  assert.equal(b.link.counters.faults, 0);
  a.link.send(b.link.localAddress, frame(2));
  settle();
  assert.deepEqual(b.received.map((r) => r.bytes[2]), [1, 2], 'the replay window did not move: traffic goes on');
});

test('a handler that throws is caught by the link\'s guard: counted, dropped, and the next datagram is handled', () => {
  const { make, settle } = world();
  const a = make(1);
  const b = make(2);
  let calls = 0;
  b.link.onDatagram(() => {
    calls++;
    if (calls === 1) throw new TypeError('a bug above the link');
  });
  a.link.send(b.link.localAddress, frame(1));
  a.link.send(b.link.localAddress, frame(2));
  settle();
  assert.equal(calls, 2);
  assert.equal(b.link.counters.faults, 1);
});

test('a first hello gets only a cookie: no signature, no key, no state, fewer bytes out than in', () => {
  const { network, make, settle } = world();
  const a = make(1);
  const b = make(2);
  a.link.send(b.link.localAddress, frame(1));
  settle();
  const hello = a.wire.find((bytes) => decodeSecurityFrame(bytes).type === FrameType.LinkHello)!;
  const before = { answered: b.link.counters.handshakesAnswered, wire: b.wire.length };
  // From a spoofed source (the victim): the hello's signature is good, but the victim never asked.
  const victim = { host: '198.18.250.1', port: 9 };
  const freshHello = encodeSecurityFrame({ ...decodeSecurityFrame(hello) as LinkHello, session: new Uint8Array(8).fill(7), cookie: undefined });
  for (let i = 0; i < 5; i++) network.deliver(victim, b.link.localAddress, freshHello);
  settle();
  const out = b.wire.slice(before.wire);
  assert.equal(b.link.counters.handshakesAnswered, before.answered, 'nothing signed for an unproven address');
  assert.equal(b.link.status().halfOpen, 0);
  const bytesOut = out.reduce((n, d) => n + d.length, 0);
  assert.ok(out.length >= 1 && out.every((d) => decodeSecurityFrame(d).type === FrameType.LinkCookie));
  assert.ok(bytesOut <= 5 * freshHello.length / 4, `reflection ${bytesOut} bytes for ${5 * freshHello.length}`);
});

test('a hello relayed by an outsider from its own address never makes that address pass as the hello\'s node', () => {
  const { network, make, settle } = world();
  const a = make(1);
  const relay = make(2);
  const outsider = network.addHost();
  // The outsider gets A to sign a hello toward it (A has something to send to the outsider's address).
  const toOutsider: Uint8Array[] = [];
  outsider.onDatagram((_, bytes) => toOutsider.push(bytes));
  a.link.send(outsider.localAddress, frame(1));
  settle();
  const aHello = hellosIn(toOutsider)[0];
  assert.ok(aHello, 'A sent its hello to the outsider');
  // It hands A's hello to the relay peer, echoing the cookie the relay gives it: a believable hello.
  outsider.send(relay.link.localAddress, encodeSecurityFrame(aHello));
  settle();
  const cookie = toOutsider.map((b) => decodeSecurityFrame(b)).find((f) => f.type === FrameType.LinkCookie);
  assert.ok(cookie && cookie.type === FrameType.LinkCookie);
  outsider.send(relay.link.localAddress, encodeSecurityFrame({ ...aHello, cookie: cookie.cookie }));
  settle();
  assert.equal(relay.link.counters.handshakesAnswered, 1, 'the relay answered the hello');
  assert.equal(relay.link.peerAt(outsider.localAddress), undefined, 'but believes the outsider to be nobody');
  // Whatever the outsider sends now cannot open, and the relay never sends on the half-open session.
  for (let i = 0; i < 10; i++) outsider.send(relay.link.localAddress, encodeSecurityFrame({ type: FrameType.Sealed, session: new Uint8Array(8), counter: i, ciphertext: new Uint8Array(20) }));
  relay.link.send(outsider.localAddress, frame(9));
  settle(25_000);
  settle(35_000);
  assert.equal(relay.received.length, 0);
  assert.equal(relay.link.status().halfOpen, 0, 'the unconfirmed session expired');
  assert.ok(relay.link.counters.halfOpenExpired >= 1);
  assert.equal(relay.link.peerAt(outsider.localAddress), undefined);
});

test('a hello replayed after the reply is forgotten never silences the link: the half-open session is never sent on', () => {
  const { make, settle } = world();
  const a = make(1);
  const b = make(2);
  a.link.send(b.link.localAddress, frame(1));
  settle();
  const helloWithCookie = a.wire.filter((bytes) => decodeSecurityFrame(bytes).type === FrameType.LinkHello).at(-1)!;
  settle(60_000); // well past the 20 s the reply bytes are kept
  a.send(b.link.localAddress, helloWithCookie); // replayed from A's own address (the cookie may have rotated)
  settle();
  b.link.send(a.link.localAddress, frame(2));
  a.link.send(b.link.localAddress, frame(3));
  settle();
  assert.deepEqual(a.received.map((r) => r.bytes[2]), [2], 'B still sends to A on the session A can open');
  assert.deepEqual(b.received.map((r) => r.bytes[2]), [1, 3]);
  assert.equal(a.link.counters.badTags, 0);
});

test('a hello replayed at once gets the remembered reply and no new session, for as long as the hello can be believed', () => {
  const { make, settle } = world();
  const a = make(1);
  const b = make(2);
  a.link.send(b.link.localAddress, frame(1));
  settle();
  const helloWithCookie = hellosIn(a.wire).at(-1)!;
  assert.ok(helloWithCookie.cookie);
  const answered = b.link.counters.handshakesAnswered;
  for (let i = 0; i < 3; i++) a.send(b.link.localAddress, encodeSecurityFrame(helloWithCookie));
  settle();
  assert.equal(b.link.counters.handshakesAnswered, answered);
  assert.equal(b.link.status().halfOpen, 0);
});

test('a copy of A\'s hello that reaches B first from another address does not keep A\'s own hello out', () => {
  const { network, make, settle } = world();
  const a = make(1);
  const b = make(2);
  const thief = network.addHost();
  // Capture A's first hello on its way, and send it ahead from the thief's address.
  const send = a.raw.send.bind(a.raw);
  let stolen = false;
  a.raw.send = (to, bytes) => {
    if (!stolen && decodeSecurityFrame(bytes).type === FrameType.LinkHello) {
      stolen = true;
      thief.send(to, bytes);
    }
    send(to, bytes);
  };
  a.link.send(b.link.localAddress, frame(1));
  settle();
  assert.ok(stolen);
  assert.deepEqual(b.received.map((r) => r.bytes[2]), [1]);
  assert.equal(b.received[0].from.host, a.link.localAddress.host);
});

test('a flood of junk hellos from spoofed sources does not stop honest links from forming', () => {
  const { network, make, settle, clock } = world();
  const target = make(2);
  const forger = createOpenIdentity(new Uint8Array(32).fill(66), 'forger@elsewhere', 'elsewhere', Math.floor(clock.wallTime() / 1000));
  const junk = (i: number) =>
    encodeSecurityFrame({
      type: FrameType.LinkHello,
      session: new Uint8Array(8).fill(i & 0xff),
      ephemeral: new Uint8Array(32).fill(9),
      time: Math.floor(clock.wallTime() / 1000),
      certificate: forger.certificate.bytes,
      signature: new Uint8Array(64),
      cookie: new Uint8Array(16).fill(i & 0xff),
    });
  const honest = [make(3), make(4), make(5)];
  for (let second = 0; second < 3; second++) {
    for (let i = 0; i < 2_000; i++) network.deliver({ host: `198.19.${(i >> 8) & 0xff}.${i & 0xff}`, port: 1000 + second }, target.link.localAddress, junk(i));
    honest[second].link.send(target.link.localAddress, frame(second));
    settle(1000);
  }
  assert.deepEqual(target.received.map((r) => r.bytes[2]), [0, 1, 2], 'every honest node got its link');
  assert.equal(target.link.counters.handshakesRefused, 0, 'no junk hello reached a certificate check');
  assert.ok(target.link.counters.cookiesRefused >= 6000);
});

test('sealed frames for unknown sessions get a hint smaller than themselves, within a budget; nothing is signed', () => {
  const { network, make, settle } = world();
  const b = make(2);
  const bogus = encodeSecurityFrame({ type: FrameType.Sealed, session: new Uint8Array(8).fill(3), counter: 0, ciphertext: new Uint8Array(16) });
  const sentBefore = b.wire.length;
  for (let i = 0; i < 1000; i++) network.deliver({ host: `198.19.1.${i % 250}`, port: 2000 + i }, b.link.localAddress, bogus);
  settle();
  const out = b.wire.slice(sentBefore);
  assert.equal(b.link.counters.handshakesStarted, 0);
  assert.ok(out.every((d) => d.length < bogus.length));
  assert.ok(out.length <= 200, `${out.length} hints for 1000 frames (overall budget)`);
});

test('a user certificate (a credential that signs values) never opens a link, in either role', () => {
  const { network, clock, make, settle, trust } = world();
  const b = make(2);
  const keys = keyPairFromSeed(new Uint8Array(32).fill(77));
  const nowSeconds = Math.floor(clock.wallTime() / 1000);
  const certificate = issueCertificate(
    { issuer: SELF_ISSUER, subject: 'grandpa@seal.p2psip', nodeIds: [nodeIdFromPublicKey(keys.publicKey)], publicKey: keys.publicKey, overlay: OVERLAY, notBefore: nowSeconds - 60, expires: nowSeconds + 3600, role: 'user' },
    keys,
  );
  assert.equal(trust.accept(certificate.bytes, nowSeconds).claims.role, 'user', 'the certificate itself is believed');
  const raw = network.addHost();
  const user = new SealedLink(raw, { identity: { nodeId: certificate.claims.nodeIds[0], keys, certificate }, trust, suite: ed25519Suite, clock, random: new SeededRandom(77), log: silentLogger, overlayId: overlayHash(OVERLAY) });
  const got: Uint8Array[] = [];
  user.onDatagram((_, bytes) => got.push(bytes));
  user.send(b.link.localAddress, frame(1));
  settle(3000);
  b.link.send(raw.localAddress, frame(2));
  settle(3000);
  assert.equal(b.received.length, 0);
  assert.equal(got.length, 0);
  assert.ok(b.link.counters.handshakesRefused >= 2, 'refused as initiator and as responder');
});

test('half-open sessions held by strangers make room for an honest handshake: the oldest go, none is refused', () => {
  const { network, make, settle } = world({ maxHalfOpen: 4 });
  const victim = make(2);
  const other = make(3);
  // A hello of node 1 (sent to node 3), replayed by four hosts with their own cookies: four half-open sessions.
  const one = make(1);
  one.link.send(other.link.localAddress, frame(1));
  settle();
  const hello = hellosIn(one.wire)[0];
  for (let i = 0; i < 4; i++) {
    const host = network.addHost();
    host.onDatagram((_, bytes) => {
      const f = decodeSecurityFrame(bytes);
      if (f.type === FrameType.LinkCookie) host.send(victim.link.localAddress, encodeSecurityFrame({ ...hello, cookie: f.cookie }));
    });
    host.send(victim.link.localAddress, encodeSecurityFrame({ ...hello, cookie: undefined }));
  }
  settle();
  assert.equal(victim.link.status().halfOpen, 4, 'the table is full of sessions nobody will confirm');
  const honest = make(4);
  honest.link.send(victim.link.localAddress, frame(7));
  settle();
  assert.deepEqual(victim.received.map((r) => r.bytes[2]), [7]);
  assert.ok(victim.link.status().halfOpen <= 4);
});

test('a per-address budget table full of spoofed sources still lets every honest datagram through', () => {
  const { network, make, settle } = world();
  const a = make(1);
  const b = make(2);
  a.link.send(b.link.localAddress, frame(0));
  settle();
  for (let second = 1; second <= 5; second++) {
    for (let i = 0; i < 5_000; i++) network.deliver({ host: `198.19.${(i >> 8) & 0xff}.${i & 0xff}`, port: 9 }, b.link.localAddress, new Uint8Array([0x82, 0x07]));
    for (let i = 0; i < 10; i++) a.link.send(b.link.localAddress, frame(second));
    settle(1000);
  }
  assert.equal(b.received.length, 51, 'all 50 honest datagrams after the first arrived');
});
