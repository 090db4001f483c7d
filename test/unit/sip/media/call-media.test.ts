import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededRandom } from '../../../../src/runtime/random.js';
import { VirtualClock } from '../../../../src/sim/virtual-clock.js';
import { CallMedia, type MediaBackhaul } from '../../../../src/usages/sip/media/call-media.js';
import { MediaRefused, SipMedia } from '../../../../src/usages/sip/media/sip-media.js';
import { SipHeaders } from '../../../../src/usages/sip/message/sip-message.js';
import { MediaAnchor, type MediaSocket } from '../../../../src/usages/sip/media/media-anchor.js';
import { MediaPortPool } from '../../../../src/usages/sip/media/port-pool.js';
import { parseSdp, type Endpoint, SdpError } from '../../../../src/usages/sip/media/sdp.js';
import { CertificateError } from '../../../../src/identity/certificate.js';
import { SipError } from '../../../../src/usages/sip/sip-error.js';
import { OpenTrustPolicy, type TrustPolicy } from '../../../../src/identity/trust.js';
import { FIXED_NOW_SECONDS, TEST_OVERLAY, testIdentity } from '../../../helpers/fixtures.js';
import { idToHex } from '../../../../src/wire/id.js';

/*
 * A call's media between two homes on an in-memory network: phone A's offer crosses home A
 * (anchored, key share added), home B (share checked, anchored again) and reaches phone B
 * naming B's anchor; the answer goes back the same way. Then RTP from each phone reaches the
 * other, sealed on the internet leg, plain on each LAN. A share signed by another node than its
 * certificate names, none at all, or one from a node the trust policy refuses (revoked) is
 * refused with 488.
 */
const key = (e: Endpoint) => `${e.address}:${e.port}`;
function network() {
  const sockets = new Map<string, (bytes: Uint8Array, from: Endpoint) => void>();
  const wire: { from: Endpoint; to: Endpoint; bytes: Uint8Array }[] = [];
  const deliver = (from: Endpoint, to: Endpoint, bytes: Uint8Array) => {
    wire.push({ from, to, bytes });
    sockets.get(key(to))?.(bytes, from);
  };
  const factoryAt = (host: string) => async (port: number, receive: (bytes: Uint8Array, from: Endpoint) => void): Promise<MediaSocket | undefined> => {
    const here = { address: host, port };
    if (sockets.has(key(here))) return undefined;
    sockets.set(key(here), receive);
    return { send: (bytes, to) => deliver(here, to, bytes), close: () => sockets.delete(key(here)) };
  };
  const phone = (address: string, port: number) => {
    const heard: Uint8Array[] = [];
    sockets.set(`${address}:${port}`, (bytes) => heard.push(bytes));
    return { heard, send: (to: Endpoint, bytes: Uint8Array) => deliver({ address, port }, to, bytes) };
  };
  return { factoryAt, phone, wire };
}

const HOME_A = '203.0.113.1';
const HOME_B = '203.0.113.2';
/** Home B's Node-ID: what home A's offers name (every offer here goes from A to B). */
const TO_B = idToHex(testIdentity(12).nodeId);
const offer = (address: string, port: number) =>
  new TextEncoder().encode(`v=0\r\no=- 1 1 IN IP4 ${address}\r\ns=-\r\nc=IN IP4 ${address}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n`);
const enc = (text: string) => new TextEncoder().encode(text);
const mediaOf = (sdp: string) => parseSdp(sdp).streams[0].rtp;

let audioMark = 0;
/** Each phone sends to the anchor port its SDP named, and the other phone hears exactly that, through both homes. */
function assertTwoWayAudio(a: { phone: ReturnType<ReturnType<typeof network>['phone']>; sdp: string }, b: typeof a, label = 'phone B hears phone A') {
  const [fromA, fromB] = [new Uint8Array(172).fill(++audioMark), new Uint8Array(172).fill(++audioMark)];
  a.phone.send(mediaOf(a.sdp), fromA);
  b.phone.send(mediaOf(b.sdp), fromB);
  assert.deepEqual(b.phone.heard.at(-1), fromA, label);
  assert.deepEqual(a.phone.heard.at(-1), fromB, `${label}: and back`);
}

function homes(trust: TrustPolicy = new OpenTrustPolicy(TEST_OVERLAY), identities = { a: testIdentity(11), b: testIdentity(12) }, backhaul?: MediaBackhaul, nowSeconds = FIXED_NOW_SECONDS, publicOf: Partial<Record<'a' | 'b', string>> = {}) {
  const net = network();
  const clock = new VirtualClock();
  /** Both homes' wall clock, which a test may move on. */
  const wall = { seconds: nowSeconds };
  const at = (host: string, id: 'a' | 'b', low: number) =>
    new CallMedia({
      anchor: new MediaAnchor(new MediaPortPool(low, low + 99), net.factoryAt(host), clock, 60_000),
      identity: identities[id],
      random: new SeededRandom(low),
      lanHost: host,
      publicHost: () => publicOf[id] ?? host,
      trust,
      nowSeconds: () => wall.seconds,
      ...(backhaul ? { backhaul } : {}),
    });
  return { net, clock, wall, identities, a: at(HOME_A, 'a', 40000), b: at(HOME_B, 'b', 50000) };
}

test('an offer and its answer cross both homes: each phone is told its own home\'s anchor, and audio flows both ways, sealed between the homes', async () => {
  const { net, a, b } = homes();
  const phoneA = net.phone('192.168.1.20', 10000);
  const phoneB = net.phone('192.168.2.30', 20000);
  const toB = await a.offerFromPhone('call-1', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  assert.match(toB, /a=p2psip-key-v4:/);
  assert.equal(mediaOf(toB).address, HOME_A);
  const toPhoneB = await b.offerFromHome('call-1', enc(toB), HOME_A);
  assert.doesNotMatch(toPhoneB, /p2psip-key/, 'a phone never sees a key share');
  assert.equal(mediaOf(toPhoneB).address, HOME_B);
  const toA = b.answerFromPhone('call-1', offer('192.168.2.30', 20000), '192.168.2.30');
  const toPhoneA = a.answerFromHome('call-1', enc(toA), HOME_B);
  assert.equal(mediaOf(toPhoneA).address, HOME_A);

  const rtp = (n: number) => new Uint8Array(172).fill(n);
  phoneA.send(mediaOf(toPhoneA), rtp(1));
  assert.deepEqual(phoneB.heard.at(-1), rtp(1), 'phone A is heard at phone B');
  phoneB.send(mediaOf(toPhoneB), rtp(2));
  assert.deepEqual(phoneA.heard.at(-1), rtp(2), 'and back');
  const between = net.wire.filter((w) => w.from.address.startsWith('203.') && w.to.address.startsWith('203.'));
  assert.equal(between.length, 2);
  assert.ok(between.every((w) => !Buffer.from(w.bytes).includes(Buffer.from(rtp(1).subarray(0, 64))) && !Buffer.from(w.bytes).includes(Buffer.from(rtp(2).subarray(0, 64)))), 'no plain RTP between the homes');
  a.close('call-1');
  b.close('call-1');
  assert.equal(a.active + b.active, 0);
});

test('while both phones are silent (a call on hold), each home keeps the direct path alive with a sealed empty probe every 500 ms, and stops when the call ends', async () => {
  const { net, clock, a, b } = homes();
  const phoneA = net.phone('192.168.1.20', 10000);
  const phoneB = net.phone('192.168.2.30', 20000);
  const toB = await a.offerFromPhone('call-h', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  const toPhoneB = await b.offerFromHome('call-h', enc(toB), HOME_A);
  const toA = b.answerFromPhone('call-h', offer('192.168.2.30', 20000), '192.168.2.30');
  const toPhoneA = a.answerFromHome('call-h', enc(toA), HOME_B);
  phoneA.send(mediaOf(toPhoneA), new Uint8Array(172).fill(1));
  phoneB.send(mediaOf(toPhoneB), new Uint8Array(172).fill(2));
  const between = () => net.wire.filter((w) => w.from.address.startsWith('203.') && w.to.address.startsWith('203.'));
  const before = between().length;
  clock.runUntil(clock.now() + 2_000);
  const probes = between().slice(before);
  assert.equal(probes.filter((w) => w.from.address === HOME_A).length, 4, 'home A: one in each 500 ms');
  assert.equal(probes.filter((w) => w.from.address === HOME_B).length, 4, 'home B too');
  assert.ok(probes.every((w) => w.bytes.length < 40 && w.to.port === (w.from.address === HOME_A ? mediaOf(toA).port : mediaOf(toB).port)), 'small, sealed, to the RTP port the other home was heard from (RTCP was never heard: no probe)');
  assert.equal(phoneA.heard.length + phoneB.heard.length, 2, 'no phone hears a probe');
  a.close('call-h');
  b.close('call-h');
  const after = between().length;
  clock.runUntil(clock.now() + 2_000);
  assert.equal(between().length, after, 'none once the call ended');
});

test('a key share signed by another node than its certificate names, none at all, or from a revoked node is refused with 488, holding no ports', async () => {
  // Home A's peer signs with its own key but sends a certificate of another node (a thief's replay of it).
  const impostor = { a: { ...testIdentity(11), certificate: testIdentity(13).certificate }, b: testIdentity(12) };
  const forged = homes(undefined, impostor);
  const toB = await forged.a.offerFromPhone('call-2', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await assert.rejects(forged.b.offerFromHome('call-2', enc(toB), HOME_A), (e: unknown) => e instanceof SdpError && e.status === 488 && /not signed by it/.test(e.reason));
  const stripped = toB.replace(/a=p2psip-key-v4:[^\r]*\r\n/, '');
  await assert.rejects(forged.b.offerFromHome('call-3', enc(stripped), HOME_A), (e: unknown) => e instanceof SdpError && /no media key/.test(e.reason));
  // A home that seals under media keys v1 (before the flags byte): refused with the reason, not connected silent.
  const v1 = toB.replace('a=p2psip-key-v4:', 'a=p2psip-key:');
  await assert.rejects(forged.b.offerFromHome('call-3b', enc(v1), HOME_A), (e: unknown) => e instanceof SdpError && e.status === 488 && /older version \(p2psip-key v1\)/.test(e.reason));
  // v3 derived a stream's keys for its place among the anchored streams, not its m= line: refused the same way.
  const v3 = toB.replace('a=p2psip-key-v4:', 'a=p2psip-key-v3:');
  await assert.rejects(forged.b.offerFromHome('call-3c', enc(v3), HOME_A), (e: unknown) => e instanceof SdpError && e.status === 488 && /older version \(p2psip-key v3\)/.test(e.reason));
  assert.equal(forged.b.active, 0, 'the refused offers hold no ports');
  // The overlay revoked home A: its certificate is not believed, so its media is refused.
  const open = new OpenTrustPolicy(TEST_OVERLAY);
  const revokedA: TrustPolicy = {
    mode: 'authority',
    overlay: TEST_OVERLAY,
    accept: (bytes, now) => {
      const certificate = open.accept(bytes, now);
      if (certificate.claims.subject === 'node11@test.p2psip') throw new CertificateError('certificate is revoked');
      return certificate;
    },
  };
  const revoked = homes(revokedA);
  const fromRevoked = await revoked.a.offerFromPhone('call-4', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await assert.rejects(revoked.b.offerFromHome('call-4', enc(fromRevoked), HOME_A), (e: unknown) => e instanceof SdpError && /revoked/.test(e.reason));
});

test('a stranger\'s offer with a key share that is not believed opens no port at all', async () => {
  const { b } = homes();
  const junk = enc(`v=0\r\no=- 1 1 IN IP4 198.51.100.66\r\ns=-\r\nc=IN IP4 198.51.100.66\r\nt=0 0\r\n${'m=audio 7000 RTP/AVP 0\r\n'.repeat(16)}a=p2psip-key-v4:AAAA\r\n`);
  const errors = await Promise.all(Array.from({ length: 8 }, () => b.offerFromHome('junk', junk, '198.51.100.66').catch((e: unknown) => e)));
  assert.ok(errors.every((e) => e instanceof SdpError && e.status === 488));
  assert.equal(b.anchor.counters.sessions, 0, 'no session (and so no socket) was ever opened for them');
});

test('two offers for one new call at once (a forked late offer) share one session, and close frees every port', async () => {
  const { a } = homes();
  const [first, second] = await Promise.all([a.offerFromPhone('fork', offer('192.168.1.20', 10000), '192.168.1.20', TO_B), a.offerFromPhone('fork', offer('192.168.1.21', 10002), '192.168.1.21', TO_B)]);
  assert.equal(mediaOf(first).port, mediaOf(second).port, 'the same anchor ports');
  assert.equal(a.active, 1);
  assert.equal(a.anchor.portsInUse, 4);
  a.close('fork');
  assert.equal(a.anchor.portsInUse, 0, 'nothing orphaned');
});

test("once a call's keys are agreed, SDP for it that home A did not sign, or signed earlier, is refused: seeing its SDP does not re-point the media (review F1)", async () => {
  const { net, a, b } = homes();
  const phoneB = net.phone('192.168.2.30', 20000);
  const toB = await a.offerFromPhone('call-5', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  const toPhoneB = await b.offerFromHome('call-5', enc(toB), HOME_A);
  a.answerFromHome('call-5', enc(b.answerFromPhone('call-5', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
  // Someone who saw home A's INVITE: its genuine key line under SDP of their own, a made-up one, none at all.
  const keyLine = /a=p2psip-key-v4:[^\r]*\r\n/.exec(toB)![0];
  const theirs = (share: string) => enc(`v=0\r\no=- 1 2 IN IP4 198.51.100.66\r\ns=-\r\nc=IN IP4 198.51.100.66\r\nt=0 0\r\n${share}m=audio 7777 RTP/AVP 0\r\na=inactive\r\n`);
  await assert.rejects(b.offerFromHome('call-5', theirs(keyLine), '198.51.100.66'), (e: unknown) => e instanceof SdpError && /not signed by it/.test(e.reason));
  assert.throws(() => b.answerFromHome('call-5', theirs('a=p2psip-key-v4:AAAA\r\n'), '198.51.100.66'), (e: unknown) => e instanceof SdpError && /no media key/.test(e.reason));
  await assert.rejects(b.offerFromHome('call-5', enc(toB.replace(keyLine, '')), '198.51.100.66'), SdpError);
  // Home A's first offer, whole, played again as a re-offer.
  await assert.rejects(b.offerFromHome('call-5', enc(toB), '198.51.100.66'), (e: unknown) => e instanceof SdpError && /earlier SDP/.test(e.reason));
  // Home A's own re-offer (signed afresh, later) is taken.
  const reoffer = await a.offerFromPhone('call-5', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await b.offerFromHome('call-5', enc(reoffer), HOME_A);
  // Phone B's audio still goes to home A, never to the attacker.
  phoneB.send(mediaOf(toPhoneB), new Uint8Array(172).fill(7));
  assert.ok(!net.wire.some((w) => w.to.address === '198.51.100.66'), 'nothing sent to the stranger');
});

test('a new call\'s offer is believed by the home it names, once, and while it is fresh: replayed elsewhere, again, or stale, it opens no port (review F1)', async () => {
  const { a, b } = homes();
  const toB = await a.offerFromPhone('call-r', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  // Home C (another node) is not the home it names.
  const c = homes(undefined, { a: testIdentity(11), b: testIdentity(14) }).b;
  await assert.rejects(c.offerFromHome('call-r', enc(toB), HOME_A), (e: unknown) => e instanceof SdpError && /another home/.test(e.reason));
  assert.equal(c.anchor.counters.sessions, 0);
  await b.offerFromHome('call-r', enc(toB), HOME_A);
  b.close('call-r'); // the call ended
  await assert.rejects(b.offerFromHome('call-r', enc(toB), HOME_A), (e: unknown) => e instanceof SdpError && /already received/.test(e.reason));
  // An offer that names no home opens no call when it comes in a request (a late offer in a 200 may).
  const unnamed = await a.offerFromPhone('call-u', offer('192.168.1.20', 10000), '192.168.1.20');
  await assert.rejects(b.offerFromHome('call-u', enc(unnamed), HOME_A), (e: unknown) => e instanceof SdpError && /for none/.test(e.reason));
  await b.offerFromHome('call-u', enc(unnamed), HOME_A, false);
  // Signed eleven minutes ago.
  const late = homes(undefined, undefined, undefined, FIXED_NOW_SECONDS - 660);
  const stale = await late.a.offerFromPhone('call-s', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await assert.rejects(b.offerFromHome('call-s', enc(stale), HOME_A), (e: unknown) => e instanceof SdpError && /too long ago/.test(e.reason));
  assert.equal(b.active, 1, 'only the late offer in a response holds ports');
});

test('a home revoked in the middle of a call: its media ends when the configuration says so, and its re-offers are refused (review F4)', async () => {
  const open = new OpenTrustPolicy(TEST_OVERLAY);
  let revokedNow = false;
  const trust: TrustPolicy = {
    mode: 'authority',
    overlay: TEST_OVERLAY,
    accept: (bytes, now) => {
      const certificate = open.accept(bytes, now);
      if (revokedNow && certificate.claims.subject === 'node11@test.p2psip') throw new CertificateError('certificate is revoked');
      return certificate;
    },
  };
  const { net, a, b } = homes(trust);
  const phoneB = net.phone('192.168.2.30', 20000);
  const toPhoneB = await b.offerFromHome('call-v', enc(await a.offerFromPhone('call-v', offer('192.168.1.20', 10000), '192.168.1.20', TO_B)), HOME_A);
  a.answerFromHome('call-v', enc(b.answerFromPhone('call-v', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
  revokedNow = true;
  const reoffer = await a.offerFromPhone('call-v', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await assert.rejects(b.offerFromHome('call-v', enc(reoffer), HOME_A), (e: unknown) => e instanceof SdpError && /revoked/.test(e.reason));
  const media = new SipMedia(b, 'auto', { maxCalls: 4, retryAfterSeconds: 30 }, () => 0);
  media.revalidate();
  assert.equal(b.active, 0, 'the call with the revoked home lost its media');
  assert.equal(b.anchor.portsInUse, 0);
  assert.equal(media.counters.endedRevoked, 1);
  phoneB.send(mediaOf(toPhoneB), new Uint8Array(172).fill(7));
  assert.ok(!net.wire.some((w) => w.to.address === HOME_A && w.from.address !== HOME_A), 'nothing goes to home A any more');
});

test('an answer in a 183 leaves the call ringing: with no media for longer than --media-timeout it keeps its ports, and the 200 starts the timeout (review M2)', async () => {
  const { clock, a, b } = homes();
  const atA = new SipMedia(a, 'auto', { maxCalls: 4, retryAfterSeconds: 30 }, () => 0);
  const response = (status: number, reason: string, cseq: string, body: Uint8Array) => {
    const headers = new SipHeaders();
    headers.add('CSeq', cseq);
    headers.add('Content-Type', 'application/sdp');
    return { kind: 'response' as const, status, reason, headers, body };
  };
  const toB = await a.offerFromPhone('call-e', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await b.offerFromHome('call-e', enc(toB), HOME_A);
  const early = enc(b.answerFromPhone('call-e', offer('192.168.2.30', 20000), '192.168.2.30'));
  await atA.rewrite('call-e', response(183, 'Session Progress', '1 INVITE', early), 'answer', 'home', HOME_B, undefined, TO_B);
  clock.runUntil(clock.now() + 90_000); // rings a minute and a half, no early media sent
  assert.equal(a.active, 1, 'still ringing, still anchored');
  assert.equal(a.anchor.counters.timeouts, 0);
  const answer = enc(b.answerFromPhone('call-e', offer('192.168.2.30', 20000), '192.168.2.30'));
  const forPhone = Buffer.from(await atA.rewrite('call-e', response(200, 'OK', '1 INVITE', answer), 'answer', 'home', HOME_B, undefined, TO_B)).toString();
  assert.match(forPhone, /m=audio 4\d{4} /, 'the 200 reaches the phone with its SDP');
  clock.runUntil(clock.now() + 59_000);
  assert.equal(a.active, 1);
  clock.runUntil(clock.now() + 2_000);
  assert.equal(a.active, 0, 'answered and silent for --media-timeout: its ports go back');
});

test('an old-style hold (c=0.0.0.0) reaches the far phone as one, with no address of either home; the resume brings audio back both ways (review M4)', async () => {
  const { net, a, b } = homes();
  const phoneA = net.phone('192.168.1.20', 10000);
  const phoneB = net.phone('192.168.2.30', 20000);
  const exchange = async (fromA: Uint8Array) => {
    const toPhoneB = await b.offerFromHome('call-h', enc(await a.offerFromPhone('call-h', fromA, '192.168.1.20', TO_B)), HOME_A);
    const toPhoneA = a.answerFromHome('call-h', enc(b.answerFromPhone('call-h', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
    return { toPhoneA, toPhoneB };
  };
  const talking = await exchange(offer('192.168.1.20', 10000));
  assertTwoWayAudio({ phone: phoneA, sdp: talking.toPhoneA }, { phone: phoneB, sdp: talking.toPhoneB });
  const held = await exchange(enc(Buffer.from(offer('192.168.1.20', 10000)).toString().replace('c=IN IP4 192.168.1.20', 'c=IN IP4 0.0.0.0')));
  assert.match(held.toPhoneB, /\r\nc=IN IP4 0\.0\.0\.0\r\n/, 'phone B is told it is held');
  assert.doesNotMatch(held.toPhoneB, /192\.168\.|203\.0\.113\.1\b/, 'nor phone A\'s address, nor home A\'s');
  phoneB.send(mediaOf(talking.toPhoneB), new Uint8Array(172).fill(7));
  assert.notDeepEqual(phoneA.heard.at(-1), new Uint8Array(172).fill(7), 'a held phone is sent nothing');
  const resumed = await exchange(offer('192.168.1.20', 10000));
  assertTwoWayAudio({ phone: phoneA, sdp: resumed.toPhoneA }, { phone: phoneB, sdp: resumed.toPhoneB }, 'resumed: phone B hears phone A');
});

test("video taken up mid-call, disabled in the first offer or added as a new m= line (a softphone's video button): both homes anchor it, it flows both ways sealed between them, and no phone's address crosses (review M3)", async () => {
  for (const firstVideo of [0, undefined]) {
    const { net, a, b } = homes();
    const callId = `call-v-${firstVideo ?? 'added'}`;
    const sdpWith = (address: string, port: number, videoPort?: number) =>
      videoPort === undefined ? offer(address, port) : enc(`${Buffer.from(offer(address, port)).toString()}m=video ${videoPort} RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n`);
    const videoOf = (sdp: string) => parseSdp(sdp).streams[1].rtp;
    const [audioA, videoA] = [net.phone('192.168.1.20', 10000), net.phone('192.168.1.20', 10002)];
    const [audioB, videoB] = [net.phone('192.168.2.30', 20000), net.phone('192.168.2.30', 20002)];
    const toB = await a.offerFromPhone(callId, sdpWith('192.168.1.20', 10000, firstVideo), '192.168.1.20', TO_B);
    await b.offerFromHome(callId, enc(toB), HOME_A);
    a.answerFromHome(callId, enc(b.answerFromPhone(callId, sdpWith('192.168.2.30', 20000, firstVideo), '192.168.2.30')), HOME_B);
    const portsBefore = a.anchor.portsInUse;

    const reoffer = await a.offerFromPhone(callId, sdpWith('192.168.1.20', 10000, 10002), '192.168.1.20');
    assert.match(reoffer, /m=video [1-9]\d* RTP\/AVP 96/, `${callId}: offered to the other home at a port of home A`);
    assert.doesNotMatch(reoffer, /192\.168\./);
    assert.equal(a.anchor.portsInUse, portsBefore + 4, 'an RTP/RTCP pair on each side for the video');
    const toPhoneB = await b.offerFromHome(callId, enc(reoffer), HOME_A);
    assert.equal(videoOf(toPhoneB).address, HOME_B);
    assert.doesNotMatch(toPhoneB, /192\.168\.|203\.0\.113\.1/);
    const toPhoneA = a.answerFromHome(callId, enc(b.answerFromPhone(callId, sdpWith('192.168.2.30', 20000, 20002), '192.168.2.30')), HOME_B);
    assert.equal(videoOf(toPhoneA).address, HOME_A);
    assert.doesNotMatch(toPhoneA, /192\.168\.|203\.0\.113\.2/);

    const frame = (n: number) => new Uint8Array(900).fill(n);
    videoA.send(videoOf(toPhoneA), frame(7));
    assert.deepEqual(videoB.heard.at(-1), frame(7), `${callId}: phone A's video reaches phone B`);
    videoB.send(videoOf(toPhoneB), frame(8));
    assert.deepEqual(videoA.heard.at(-1), frame(8), 'and back');
    audioA.send(mediaOf(toPhoneA), frame(9).subarray(0, 172));
    assert.deepEqual(audioB.heard.at(-1), frame(9).subarray(0, 172), 'the audio goes on as before');
    const between = net.wire.filter((w) => w.from.address.startsWith('203.') && w.to.address.startsWith('203.') && w.bytes.length > 100);
    assert.ok(between.length >= 3 && between.every((w) => ![7, 8, 9].some((n) => Buffer.from(w.bytes).includes(Buffer.from(frame(n).subarray(0, 64))))), 'sealed between the homes');
    a.close(callId);
    b.close(callId);
    assert.equal(a.anchor.portsInUse + b.anchor.portsInUse, 0, 'the video ports go back with the call');
  }
});

/** Audio, and video at `videoPort` (0: disabled), as a softphone offers them. */
const withVideo = (address: string, port: number, videoPort: number) => enc(`${Buffer.from(offer(address, port)).toString()}m=video ${videoPort} RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n`);
const videoOf = (sdp: string) => parseSdp(sdp).streams[1].rtp;

test('two re-offers adding video at once (a phone and a retransmission, or two homes racing) open its ports once: the second waits for the first (review 22, 1)', async () => {
  const h = homes();
  await liveCall(h, 'call-race');
  const before = h.a.anchor.portsInUse;
  const [first, second] = await Promise.all([h.a.offerFromPhone('call-race', withVideo('192.168.1.20', 10000, 10002), '192.168.1.20'), h.a.offerFromPhone('call-race', withVideo('192.168.1.20', 10000, 10002), '192.168.1.20')]);
  assert.equal(h.a.anchor.portsInUse, before + 4, 'one RTP/RTCP pair on each side, not two');
  assert.equal(videoOf(first).port, videoOf(second).port);
  assert.equal(h.a.anchor.sessionsNow().find((x) => x.id === 'call-race')!.streams.length, 2);
});

test("a video re-offer the far phone refuses (488) leaves the call as it was: the next audio-only re-offer (a hold) is taken, not refused for its fewer m= lines (review 22, 2)", async () => {
  const h = homes();
  const phoneA = h.net.phone('192.168.1.20', 10000);
  const phoneB = h.net.phone('192.168.2.30', 20000);
  await liveCall(h, 'call-refused');
  await h.b.offerFromHome('call-refused', enc(await h.a.offerFromPhone('call-refused', withVideo('192.168.1.20', 10000, 10002), '192.168.1.20')), HOME_A);
  // Phone B answers 488: no answer comes back. Phone A holds, with its one m= line.
  const held = Buffer.from(offer('192.168.1.20', 10000)).toString().replace('a=sendrecv', 'a=sendonly');
  const toPhoneB = await h.b.offerFromHome('call-refused', enc(await h.a.offerFromPhone('call-refused', enc(held), '192.168.1.20')), HOME_A);
  const answer = Buffer.from(offer('192.168.2.30', 20000)).toString().replace('a=sendrecv', 'a=recvonly');
  const toPhoneA = h.a.answerFromHome('call-refused', enc(h.b.answerFromPhone('call-refused', enc(answer), '192.168.2.30')), HOME_B);
  assert.match(toPhoneA, /a=recvonly/);
  assertTwoWayAudio({ phone: phoneA, sdp: toPhoneA }, { phone: phoneB, sdp: toPhoneB }, 'the audio goes on');
});

test("a re-offer that fails (the far phone answers 488) leaves the session as the last answer had it: phone A, silent on hold, still hears phone B at its old port; answered, the same re-offer moves it (review M5)", async () => {
  const h = homes();
  const oldPort = h.net.phone('192.168.1.20', 10000);
  const newPort = h.net.phone('192.168.1.20', 10010);
  const phoneB = h.net.phone('192.168.2.30', 20000);
  const { toPhoneB } = await liveCall(h, 'call-m5');
  const moved = (version: number) => enc(Buffer.from(offer('192.168.1.20', 10010)).toString().replace('o=- 1 1', `o=- 1 ${version}`));
  await h.b.offerFromHome('call-m5', enc(await h.a.offerFromPhone('call-m5', moved(2), '192.168.1.20')), HOME_A);
  // Phone B answers 488: the failure goes back through both homes.
  h.b.offerFailed('call-m5');
  h.a.offerFailed('call-m5');
  phoneB.send(mediaOf(toPhoneB), new Uint8Array(172).fill(7));
  assert.deepEqual(oldPort.heard.at(-1), new Uint8Array(172).fill(7), 'phone A hears phone B where the session had it');
  assert.equal(newPort.heard.length, 0, 'not at the port of the offer that failed');

  const toPhoneB2 = await h.b.offerFromHome('call-m5', enc(await h.a.offerFromPhone('call-m5', moved(3), '192.168.1.20')), HOME_A);
  h.a.answerFromHome('call-m5', enc(h.b.answerFromPhone('call-m5', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
  h.a.offerFailed('call-m5'); // a failure said late (of an offer already answered) changes nothing
  phoneB.send(mediaOf(toPhoneB2), new Uint8Array(172).fill(8));
  assert.deepEqual(newPort.heard.at(-1), new Uint8Array(172).fill(8), 'answered, the re-offer moved phone A');
});

test('video added mid-call still flows after one home forgot the call and took it up under a new key: both homes derive its keys for its m= line (review 22, 3)', async () => {
  const h = homes();
  const [videoA, videoB] = [h.net.phone('192.168.1.20', 10002), h.net.phone('192.168.2.30', 20002)];
  await liveCall(h, 'call-rekey');
  await h.b.offerFromHome('call-rekey', enc(await h.a.offerFromPhone('call-rekey', withVideo('192.168.1.20', 10000, 10002), '192.168.1.20')), HOME_A);
  h.a.answerFromHome('call-rekey', enc(h.b.answerFromPhone('call-rekey', withVideo('192.168.2.30', 20000, 20002), '192.168.2.30')), HOME_B);
  h.b.close('call-rekey'); // home B's --media-timeout; phone A re-offers, and home B takes the call up as new
  const toPhoneB = await h.b.offerFromHome('call-rekey', enc(await h.a.offerFromPhone('call-rekey', withVideo('192.168.1.20', 10000, 10002), '192.168.1.20')), HOME_A);
  const toPhoneA = h.a.answerFromHome('call-rekey', enc(h.b.answerFromPhone('call-rekey', withVideo('192.168.2.30', 20000, 20002), '192.168.2.30')), HOME_B);
  const frame = (n: number) => new Uint8Array(900).fill(n);
  videoA.send(videoOf(toPhoneA), frame(3));
  assert.deepEqual(videoB.heard.at(-1), frame(3), "phone A's video reaches phone B under the new keys");
  videoB.send(videoOf(toPhoneB), frame(4));
  assert.deepEqual(videoA.heard.at(-1), frame(4), 'and back');
});

test('a re-offer whose new stream is still opening when the call ends (a BYE) is refused 491, and holds no port (review 22, 6)', async () => {
  const h = homes();
  await liveCall(h, 'call-bye');
  const reoffer = h.a.offerFromPhone('call-bye', withVideo('192.168.1.20', 10000, 10002), '192.168.1.20');
  h.a.close('call-bye');
  await assert.rejects(reoffer, (e: unknown) => e instanceof SipError && e.status === 491);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(h.a.anchor.portsInUse, 0);
});

test('video offered mid-call when the media ports have run out goes on disabled (port 0), and the call keeps its audio', async () => {
  const { a, b } = homes();
  const toB = await a.offerFromPhone('call-full', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await b.offerFromHome('call-full', enc(toB), HOME_A);
  const toPhoneA = a.answerFromHome('call-full', enc(b.answerFromPhone('call-full', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
  for (let i = 0; i < 24; i++) await a.offerFromPhone(`filler-${i}`, offer('192.168.1.21', 12000 + 2 * i), '192.168.1.21', TO_B); // 50 pairs in use of 50
  const reoffer = await a.offerFromPhone('call-full', withVideo('192.168.1.20', 10000, 10002), '192.168.1.20');
  assert.match(reoffer, /m=video 0 RTP\/AVP 96/);
  assert.equal(parseSdp(reoffer).streams[0].rtp.port, mediaOf(toB).port, 'the audio keeps its port');
  const toPhoneB = await b.offerFromHome('call-full', enc(reoffer), HOME_A);
  assert.match(toPhoneB, /m=video 0 /);
  const toPhoneAgain = a.answerFromHome('call-full', enc(b.answerFromPhone('call-full', enc(`${Buffer.from(offer('192.168.2.30', 20000)).toString()}m=video 0 RTP/AVP 96\r\n`), '192.168.2.30')), HOME_B);
  assert.equal(mediaOf(toPhoneAgain).port, mediaOf(toPhoneA).port);
  assert.match(toPhoneAgain, /m=video 0 /);
});

test('a call that ends while its ports are still opening (a CANCEL just after a late offer) gives them back once they open (review M7)', async () => {
  const { a } = homes();
  const opening = a.offerFromPhone('call-c', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  assert.equal(a.active, 1, 'counted while its ports open');
  a.close('call-c');
  await opening;
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(a.active, 0);
  assert.equal(a.anchor.portsInUse, 0, 'no port held for the five minutes an unanswered call may ring');
});

test("a late offer forked to two of our phones: the one that offered in its 183 does not keep the other's 200 from offering", async () => {
  const { a } = homes();
  const atA = new SipMedia(a, 'auto', { maxCalls: 4, retryAfterSeconds: 30 }, () => 0);
  const response = (status: number, body: Uint8Array) => {
    const headers = new SipHeaders();
    headers.add('CSeq', '1 INVITE');
    headers.add('Content-Type', 'application/sdp');
    return { kind: 'response' as const, status, reason: status === 200 ? 'OK' : 'Session Progress', headers, body };
  };
  await atA.rewrite('forked-late', response(183, offer('192.168.1.20', 10000)), 'offer', 'phone', '192.168.1.20', '0', TO_B);
  const fromKitchen = Buffer.from(await atA.rewrite('forked-late', response(200, offer('192.168.1.21', 12000)), 'offer', 'phone', '192.168.1.21', '1', TO_B)).toString();
  assert.match(fromKitchen, /a=p2psip-key-v4:/, "the kitchen phone's 200 goes to the other home with its offer, signed");
});

test('SDP in a PRACK is the answer only while an offer waits for one (a late offer in a reliable 183); after a 183 that answered, it is a new offer (review M8)', async () => {
  const { a, b } = homes();
  const toB = await a.offerFromPhone('call-p', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  assert.equal(a.awaitsAnswer('call-p'), true, 'the INVITE offered');
  await b.offerFromHome('call-p', enc(toB), HOME_A);
  a.answerFromHome('call-p', enc(b.answerFromPhone('call-p', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
  assert.equal(a.awaitsAnswer('call-p'), false, 'answered in the reliable 183: SDP in the PRACK offers anew');
  await a.offerFromPhone('call-p', offer('192.168.1.20', 10000), '192.168.1.20');
  assert.equal(a.awaitsAnswer('call-p'), true);
  assert.equal(a.awaitsAnswer('no-such-call'), false);
});

test('a BYE ends the media only for the dialog that answered first; the BYE of a second dialog a fork made leaves it', async () => {
  const { a } = homes();
  const media = new SipMedia(a, 'auto', { maxCalls: 4, retryAfterSeconds: 30 }, () => 0);
  await a.offerFromPhone('forked', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  media.answeredBy('forked', 'x-tag');
  media.byeAnswered('forked', ['caller-tag', 'y-tag']); // the caller hangs up the second 2xx's dialog
  assert.equal(a.active, 1, 'the answered call keeps its media');
  media.byeAnswered('forked', ['caller-tag', 'x-tag']);
  assert.equal(a.active, 0, 'its own BYE ends it');
  assert.equal(a.anchor.portsInUse, 0);
});

test('before the call is answered, a BYE in one early dialog (a forked phone\'s) leaves the media to the phones still ringing (review M11)', async () => {
  const { a } = homes();
  const media = new SipMedia(a, 'auto', { maxCalls: 4, retryAfterSeconds: 30 }, () => 0);
  await a.offerFromPhone('early-bye', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  media.byeAnswered('early-bye', ['caller-tag', 'early-1']);
  assert.equal(a.active, 1, 'the other branch may still answer with SDP');
  media.ended('early-bye'); // the INVITE's final failure (or the CANCEL) ends it
  assert.equal(a.anchor.portsInUse, 0);
  // A call answered with no winning dialog noted here (taken up again by a re-INVITE): its BYE ends it.
  await a.offerFromPhone('resumed', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  a.anchor.answered('resumed');
  media.byeAnswered('resumed', ['caller-tag', 'x']);
  assert.equal(a.active, 0);
});

test('with --media-anchor always, thousands of refused INVITEs do not make a live local call forget its caller (review F9)', () => {
  const { a } = homes();
  const media = new SipMedia(a, 'always', { maxCalls: 4, retryAfterSeconds: 30 }, () => 0);
  const invite = { kind: 'request' as const, method: 'INVITE', uri: 'sip:bob@x', headers: new SipHeaders(), body: new Uint8Array(0) };
  const side = (callId: string, fromTag: string) => media.sideOf(invite, { home: false, ownPhone: true }, { registered: true }, { callId, fromTag });
  assert.equal(side('live', 'alice-tag'), 'caller');
  for (let i = 0; i < 5000; i++) {
    assert.equal(side(`junk-${i}`, 'x'), 'caller');
    media.refused(`junk-${i}`, 'caller'); // answered 488 or 503: it never began
  }
  assert.equal(side('live', 'bob-tag'), 'callee', "bob's re-INVITE is still the callee's");
  assert.equal(side('live', 'alice-tag'), 'caller');
});

test('--max-calls counts calls whose ports are still opening: of three new calls at once over a limit of one, two are refused with 503', async () => {
  const { a } = homes();
  const media = new SipMedia(a, 'auto', { maxCalls: 1, retryAfterSeconds: 30 }, () => 0);
  const message = (callId: string) => ({ kind: 'request' as const, method: 'INVITE', uri: 'sip:bob@x', headers: new SipHeaders(), body: offer('192.168.1.20', 10000), callId });
  const results = await Promise.allSettled(['c1', 'c2', 'c3'].map((id) => media.rewrite(id, message(id), 'offer', 'phone', '192.168.1.20')));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'rejected']);
  assert.ok(results.slice(1).every((r) => r.status === 'rejected' && r.reason instanceof MediaRefused && r.reason.status === 503 && r.reason.retryAfterSeconds === 30));
  assert.equal(a.anchor.portsInUse, 4, 'only the admitted call holds ports');
});

test('an offer forked to two phones: each is offered its own anchor port; the early media of one is heard until the other answers, which keeps its port while the first\'s goes back', async () => {
  const { net, a, b } = homes();
  const phoneA = net.phone('192.168.1.20', 10000);
  const ringing = net.phone('192.168.2.30', 20000);
  const answering = net.phone('192.168.2.31', 22000);
  const toB = await a.offerFromPhone('forked', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  const toFirst = await b.offerFromHome('forked', enc(toB), HOME_A);
  const toSecond = (await b.branchOffer('forked', '1'))!;
  assert.ok(toSecond, 'the second branch has an offer of its own');
  assert.equal(mediaOf(toSecond).address, HOME_B);
  assert.notEqual(mediaOf(toSecond).port, mediaOf(toFirst).port, 'on a port of its own');
  assert.doesNotMatch(toSecond, /p2psip-key/);
  const rtp = (n: number) => new Uint8Array(172).fill(n);

  // The first phone plays early media (183 with SDP): phone A hears it.
  const early = b.answerFromPhone('forked', offer('192.168.2.30', 20000), '192.168.2.30', '0');
  const toPhoneA = a.answerFromHome('forked', enc(early), HOME_B);
  ringing.send(mediaOf(toFirst), rtp(1));
  assert.deepEqual(phoneA.heard.at(-1), rtp(1), 'early media from the first phone');
  phoneA.send(mediaOf(toPhoneA), rtp(2));
  assert.deepEqual(ringing.heard.at(-1), rtp(2));

  // The second phone answers (200 with SDP): it is heard, the first is not, and the first's port goes back.
  const answer = b.answerFromPhone('forked', offer('192.168.2.31', 22000), '192.168.2.31', '1');
  b.branchWon('forked', '1');
  a.answerFromHome('forked', enc(answer), HOME_B);
  answering.send(mediaOf(toSecond), rtp(3));
  assert.deepEqual(phoneA.heard.at(-1), rtp(3), 'the answering phone is heard');
  const heard = phoneA.heard.length;
  ringing.send(mediaOf(toFirst), rtp(4));
  assert.equal(phoneA.heard.length, heard, 'the cancelled phone is not');
  phoneA.send(mediaOf(toPhoneA), rtp(5));
  assert.deepEqual(answering.heard.at(-1), rtp(5), 'and phone A reaches the one that answered');
  assert.equal(b.anchor.portsInUse, 4, 'the first branch\'s pair is free');
  b.close('forked');
  a.close('forked');
  assert.equal(a.anchor.portsInUse + b.anchor.portsInUse, 0);
});

test("an UPDATE in the early dialog of a forked phone not heard now names that phone's own ports, and its answer makes it the one heard (review M6)", async () => {
  const { net, a, b } = homes();
  const atB = new SipMedia(b, 'auto', { maxCalls: 4, retryAfterSeconds: 30 }, () => 0);
  const phoneA = net.phone('192.168.1.20', 10000);
  const kitchen = net.phone('192.168.2.30', 20000);
  const hall = net.phone('192.168.2.31', 22000);
  /** A message of the call at home B: From phone A's tag, To `toTag` (the branch's), with SDP. */
  const sip = (start: { method: string } | { status: number }, cseq: string, toTag: string, body: Uint8Array) => {
    const headers = new SipHeaders();
    headers.add('From', '<sip:alice@home-a>;tag=caller');
    headers.add('To', `<sip:bob@home-b>${toTag ? `;tag=${toTag}` : ''}`);
    headers.add('CSeq', cseq);
    headers.add('Content-Type', 'application/sdp');
    return 'method' in start ? { kind: 'request' as const, method: start.method, uri: 'sip:bob@192.168.2.30', headers, body } : { kind: 'response' as const, status: start.status, reason: 'x', headers, body };
  };
  const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();
  const toB = await a.offerFromPhone('m6', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  const toKitchen = text(await atB.rewrite('m6', sip({ method: 'INVITE' }, '1 INVITE', '', enc(toB)), 'offer', 'home', HOME_A));
  const toHall = text((await atB.branchOffer('m6', '1'))!);
  const rtp = (n: number) => new Uint8Array(172).fill(n);
  // Both phones play early media (183 with SDP, reliably): the hall's came last, so it is heard.
  a.answerFromHome('m6', enc(text(await atB.rewrite('m6', sip({ status: 183 }, '1 INVITE', 'k', offer('192.168.2.30', 20000)), 'answer', 'phone', '192.168.2.30', '0'))), HOME_B);
  const toPhoneA = a.answerFromHome('m6', enc(text(await atB.rewrite('m6', sip({ status: 183 }, '1 INVITE', 'h', offer('192.168.2.31', 22000)), 'answer', 'phone', '192.168.2.31', '1'))), HOME_B);
  hall.send(mediaOf(toHall), rtp(1));
  assert.deepEqual(phoneA.heard.at(-1), rtp(1));
  // Phone A updates the kitchen's early dialog (RFC 3311): the kitchen is offered its own ports, not the hall's.
  const update = await a.offerFromPhone('m6', offer('192.168.1.20', 10000), '192.168.1.20');
  const updateToKitchen = text(await atB.rewrite('m6', sip({ method: 'UPDATE' }, '2 UPDATE', 'k', enc(update)), 'offer', 'home', HOME_A));
  assert.equal(mediaOf(updateToKitchen).port, mediaOf(toKitchen).port, "the kitchen's own port");
  // The kitchen answers the UPDATE: it is heard now, both ways; the hall is not.
  const kitchenAnswer = text(await atB.rewrite('m6', sip({ status: 200 }, '2 UPDATE', 'k', offer('192.168.2.30', 20000)), 'answer', 'phone', '192.168.2.30'));
  a.answerFromHome('m6', enc(kitchenAnswer), HOME_B);
  kitchen.send(mediaOf(toKitchen), rtp(2));
  assert.deepEqual(phoneA.heard.at(-1), rtp(2), "the kitchen's early media");
  const heard = phoneA.heard.length;
  hall.send(mediaOf(toHall), rtp(3));
  assert.equal(phoneA.heard.length, heard, 'not the hall');
  phoneA.send(mediaOf(toPhoneA), rtp(4));
  assert.deepEqual(kitchen.heard.at(-1), rtp(4), 'phone A reaches the kitchen');
  assert.notDeepEqual(hall.heard.at(-1), rtp(4));
  atB.close();
  a.close('m6');
});

test('an offer from our own phone to another home is not forked here: no branch ports', async () => {
  const { a } = homes();
  await a.offerFromPhone('outward', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  assert.equal(await a.branchOffer('outward', '1'), undefined);
  assert.equal(a.anchor.portsInUse, 4);
  a.close('outward');
});

test('a ringing branch whose SDP has another number of media lines is refused and does not take the call\'s media from the phone heard', async () => {
  const { net, a, b } = homes();
  const phoneA = net.phone('192.168.1.20', 10000);
  const ringing = net.phone('192.168.2.30', 20000);
  const toB = await a.offerFromPhone('forked', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  const toFirst = await b.offerFromHome('forked', enc(toB), HOME_A);
  await b.branchOffer('forked', '1');
  a.answerFromHome('forked', enc(b.answerFromPhone('forked', offer('192.168.2.30', 20000), '192.168.2.30', '0')), HOME_B);
  const twoStreams = enc(`${new TextDecoder().decode(offer('192.168.2.31', 22000))}m=video 22002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n`);
  assert.throws(() => b.answerFromPhone('forked', twoStreams, '192.168.2.31', '1'), SdpError);
  ringing.send(mediaOf(toFirst), new Uint8Array(172).fill(7));
  assert.deepEqual(phoneA.heard.at(-1), new Uint8Array(172).fill(7), 'the first phone is still heard');
  b.close('forked');
  a.close('forked');
});

test('a peer that stops ends every call: each call\'s ports go back and the links between homes are let go', async () => {
  let stopped = 0;
  const { a } = homes(undefined, undefined, { prepare: () => {}, send: () => {}, directHost: () => undefined, stop: () => stopped++ });
  await a.offerFromPhone('call-s1', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await a.offerFromPhone('call-s2', offer('192.168.1.21', 10000), '192.168.1.21', TO_B);
  assert.equal(a.active, 2);
  a.closeAll();
  assert.equal(a.active, 0, 'no call holds ports');
  assert.equal(a.anchor.portsInUse, 0, 'every port went back');
  assert.equal(stopped, 1, 'the backhaul let go of its links');
});

/** A receiver report (RFC 3550 s6.4.2) with one report block: `lostFraction`/256 of packets lost. */
function receiverReport(lostFraction: number): Uint8Array {
  const rr = new Uint8Array(32);
  rr[0] = 0x81; // version 2, one report block
  rr[1] = 201;
  rr[3] = 7; // length in 32-bit words, less one
  rr[12] = lostFraction;
  return rr;
}

test('rtcp-mux offered by one phone and declined by the other: RTCP goes to the RTCP ports on every leg, both ways (RFC 5761 s5.1.1)', async () => {
  const { net, a, b } = homes();
  const rtcpA = net.phone('192.168.1.20', 10001);
  const rtcpB = net.phone('192.168.2.30', 20001);
  const rtpA = net.phone('192.168.1.20', 10000);
  const withMux = new TextDecoder().decode(offer('192.168.1.20', 10000)) + 'a=rtcp-mux\r\n';
  const toB = await a.offerFromPhone('call-m', enc(withMux), '192.168.1.20', TO_B);
  assert.match(toB, /a=rtcp-mux/, 'the offer of mux goes on to the other home and its phone');
  const toPhoneB = await b.offerFromHome('call-m', enc(toB), HOME_A);
  assert.match(toPhoneB, /a=rtcp-mux/);
  const toA = b.answerFromPhone('call-m', offer('192.168.2.30', 20000), '192.168.2.30'); // declines: no a=rtcp-mux
  const toPhoneA = a.answerFromHome('call-m', enc(toA), HOME_B);
  assert.doesNotMatch(toPhoneA, /a=rtcp-mux/);

  rtcpB.send({ ...mediaOf(toPhoneB), port: mediaOf(toPhoneB).port + 1 }, receiverReport(64));
  assert.deepEqual(rtcpA.heard, [receiverReport(64)], 'phone B\'s report reaches phone A\'s RTCP port, through home A\'s RTCP port');
  assert.equal(rtpA.heard.length, 0, 'not its RTP port, which it did not agree to share');
  rtcpA.send({ ...mediaOf(toPhoneA), port: mediaOf(toPhoneA).port + 1 }, receiverReport(32));
  assert.deepEqual(rtcpB.heard, [receiverReport(32)], 'and phone A\'s reaches phone B\'s');
  const [session] = a.anchor.sessionsNow();
  assert.deepEqual(session.streams[0].quality.summary(), { lossPercent: 25, jitterMs: 0 }, 'the worse of the two reports');
  assert.equal(a.anchor.totals().dropped.unsealed ?? 0, 0, 'nothing sealed for one port arrived at the other');
});

test('rtcp-mux offered and accepted (a WebRTC-style offer with a=rtcp:9 beside it): RTCP rides the RTP ports end to end, and its reports still count', async () => {
  const { net, a, b } = homes();
  const rtpA = net.phone('192.168.1.20', 10000);
  const rtpB = net.phone('192.168.2.30', 20000);
  const muxed = (address: string, port: number) => new TextDecoder().decode(offer(address, port)) + 'a=rtcp:9 IN IP4 0.0.0.0\r\na=rtcp-mux\r\n';
  const toB = await a.offerFromPhone('call-w', enc(muxed('192.168.1.20', 10000)), '192.168.1.20', TO_B);
  const toPhoneB = await b.offerFromHome('call-w', enc(toB), HOME_A);
  const toA = b.answerFromPhone('call-w', enc(muxed('192.168.2.30', 20000)), '192.168.2.30');
  const toPhoneA = a.answerFromHome('call-w', enc(toA), HOME_B);
  assert.match(toPhoneA, /a=rtcp-mux/);

  rtpB.send(mediaOf(toPhoneB), receiverReport(128));
  assert.deepEqual(rtpA.heard, [receiverReport(128)], 'phone B\'s report reaches phone A on its RTP port');
  rtpA.send(mediaOf(toPhoneA), receiverReport(0));
  assert.deepEqual(rtpB.heard, [receiverReport(0)], 'and back');
  assert.deepEqual(a.anchor.sessionsNow()[0].streams[0].quality.summary(), { lossPercent: 50, jitterMs: 0 });
});

test('a call held with neither RTP nor RTCP past --media-timeout loses its ports at both homes, and the resume (a re-INVITE) anchors it afresh: audio both ways again, under new keys', async () => {
  const { net, clock, a, b } = homes();
  const phoneA = net.phone('192.168.1.20', 10000);
  const phoneB = net.phone('192.168.2.30', 20000);
  const exchange = async () => {
    const toB = await a.offerFromPhone('call-t', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
    const toPhoneB = await b.offerFromHome('call-t', enc(toB), HOME_A);
    const toA = b.answerFromPhone('call-t', offer('192.168.2.30', 20000), '192.168.2.30');
    return { toB, toPhoneB, toPhoneA: a.answerFromHome('call-t', enc(toA), HOME_B) };
  };
  const first = await exchange();
  for (const home of [a, b]) home.anchor.answered('call-t'); // each proxy saw the 200 (SipMedia tells the anchor)
  phoneA.send(mediaOf(first.toPhoneA), new Uint8Array(172).fill(1));
  phoneB.send(mediaOf(first.toPhoneB), new Uint8Array(172).fill(2));
  assert.equal(phoneA.heard.length + phoneB.heard.length, 2);

  clock.runUntil(clock.now() + 61_000); // on hold, both phones silent: the homes' keepalives are no media
  assert.equal(a.anchor.counters.timeouts + b.anchor.counters.timeouts, 2, 'each home ended the call\'s media at the timeout');
  assert.equal(a.anchor.portsInUse + b.anchor.portsInUse, 0, 'and gave its ports back');
  assert.equal(a.active + b.active, 0);

  const resumed = await exchange();
  assert.notEqual(/a=p2psip-key-v4:(\S+)/.exec(resumed.toB)![1], /a=p2psip-key-v4:(\S+)/.exec(first.toB)![1], 'a new key share: nothing sealed before is accepted again');
  assertTwoWayAudio({ phone: phoneA, sdp: resumed.toPhoneA }, { phone: phoneB, sdp: resumed.toPhoneB }, 'phone B hears phone A again');
});

test('the o= version each phone is given goes up by one whenever its SDP changes, the anchor\'s new ports after a timeout too, and stays while nothing changed (review M9)', async () => {
  const { clock, a, b } = homes();
  const version = (sdp: string) => BigInt(/^o=\S+ \S+ (\d+) /m.exec(sdp)![1]);
  const exchange = async () => {
    const toPhoneB = await b.offerFromHome('call-o', enc(await a.offerFromPhone('call-o', offer('192.168.1.20', 10000), '192.168.1.20', TO_B)), HOME_A);
    const toPhoneA = a.answerFromHome('call-o', enc(b.answerFromPhone('call-o', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
    return { toPhoneA, toPhoneB };
  };
  const first = await exchange();
  const refresh = await exchange(); // a session refresh: the same SDP from both phones, the same ports
  assert.equal(version(refresh.toPhoneA), version(first.toPhoneA), 'the same SDP keeps its version');
  assert.equal(refresh.toPhoneB, first.toPhoneB.replace(/^o=.*$/m, refresh.toPhoneB.match(/^o=.*$/m)![0]));
  for (const home of [a, b]) home.anchor.answered('call-o');
  clock.runUntil(clock.now() + 61_000); // on hold, silent: both homes let the media go
  const resumed = await exchange(); // the phones' SDP and versions as before; the anchors' ports are new
  assert.notEqual(mediaOf(resumed.toPhoneA).port, mediaOf(first.toPhoneA).port);
  assert.equal(version(resumed.toPhoneA), version(first.toPhoneA) + 1n, "phone A is told of the anchor's new port by a new version");
  assert.equal(version(resumed.toPhoneB), version(first.toPhoneB) + 1n);
});

test('a call whose media ended at one home only: that home offers it afresh and the other takes it as new, whichever home called; played again, that offer moves nothing (review F10)', async () => {
  for (const forgets of ['caller', 'callee'] as const) {
    const { net, a, b } = homes();
    const phoneA = net.phone('192.168.1.20', 10000);
    const phoneB = net.phone('192.168.2.30', 20000);
    await b.offerFromHome('call-f', enc(await a.offerFromPhone('call-f', offer('192.168.1.20', 10000), '192.168.1.20', TO_B)), HOME_A);
    a.answerFromHome('call-f', enc(b.answerFromPhone('call-f', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
    // One home's --media-timeout passed (its phone sent nothing it heard), the other's not.
    const [gone, kept, goneHost, keptId] = forgets === 'caller' ? [a, b, HOME_A, TO_B] : [b, a, HOME_B, idToHex(testIdentity(11).nodeId)];
    gone.close('call-f');
    const phoneOfGone = forgets === 'caller' ? { address: '192.168.1.20', port: 10000 } : { address: '192.168.2.30', port: 20000 };
    const resume = await gone.offerFromPhone('call-f', offer(phoneOfGone.address, phoneOfGone.port), phoneOfGone.address, keptId);
    const toKeptPhone = await kept.offerFromHome('call-f', enc(resume), goneHost);
    await assert.rejects(kept.offerFromHome('call-f', enc(resume), goneHost), (e: unknown) => e instanceof SdpError, 'the same offer again');
    const keptPhone = forgets === 'caller' ? { address: '192.168.2.30', port: 20000 } : { address: '192.168.1.20', port: 10000 };
    const toGonePhone = gone.answerFromHome('call-f', enc(kept.answerFromPhone('call-f', offer(keptPhone.address, keptPhone.port), keptPhone.address)), forgets === 'caller' ? HOME_B : HOME_A);
    assert.equal(kept.active, 1, 'the old session gave way to the new');
    const [toPhoneA, toPhoneB] = forgets === 'caller' ? [toGonePhone, toKeptPhone] : [toKeptPhone, toGonePhone];
    assertTwoWayAudio({ phone: phoneA, sdp: toPhoneA }, { phone: phoneB, sdp: toPhoneB }, `${forgets} forgot: phone B hears phone A`);
  }
});

/** A call from phone A (home A) to phone B (home B), answered. */
async function liveCall(h: ReturnType<typeof homes>, callId: string) {
  const toB = await h.a.offerFromPhone(callId, offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  const toPhoneB = await h.b.offerFromHome(callId, enc(toB), HOME_A);
  const toPhoneA = h.a.answerFromHome(callId, enc(h.b.answerFromPhone(callId, offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
  return { toB, toPhoneB, toPhoneA };
}
const TO_A = idToHex(testIdentity(11).nodeId);

test('no SDP a home believed once is believed again: a re-offer or an offer from a 200 played back as a new call, or an old re-offer after the call was taken up again (second review F-1, F-3)', async () => {
  const h = homes();
  await liveCall(h, 'call-x');
  const hold = await h.a.offerFromPhone('call-x', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await h.b.offerFromHome('call-x', enc(hold), HOME_A);
  h.b.close('call-x'); // a BYE
  await assert.rejects(h.b.offerFromHome('call-x', enc(hold), '198.51.100.66'), (e: unknown) => e instanceof SdpError && /already received/.test(e.reason));
  assert.equal(h.b.active, 0);
  // A late offer: B's phone offers in its 200; A answers in the ACK. Played back to A as an INVITE.
  const in200 = await h.b.offerFromPhone('call-l', offer('192.168.2.30', 20000), '192.168.2.30', TO_A);
  await h.a.offerFromHome('call-l', enc(in200), HOME_B, false);
  h.b.answerFromHome('call-l', enc(h.a.answerFromPhone('call-l', offer('192.168.1.20', 10000), '192.168.1.20')), HOME_A);
  h.a.close('call-l');
  await assert.rejects(h.a.offerFromHome('call-l', enc(in200), '198.51.100.66'), (e: unknown) => e instanceof SdpError && /already received/.test(e.reason));
  // Home A forgets a live call and takes it up again under a new key; its old re-offer comes again.
  const phoneA = h.net.phone('192.168.1.20', 10000);
  const phoneB = h.net.phone('192.168.2.30', 20000);
  await liveCall(h, 'call-k');
  const oldHold = await h.a.offerFromPhone('call-k', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await h.b.offerFromHome('call-k', enc(oldHold), HOME_A);
  h.a.close('call-k');
  const toPhoneB = await h.b.offerFromHome('call-k', enc(await h.a.offerFromPhone('call-k', offer('192.168.1.20', 10000), '192.168.1.20', TO_B)), HOME_A);
  const toPhoneA = h.a.answerFromHome('call-k', enc(h.b.answerFromPhone('call-k', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
  const sessions = h.b.anchor.counters.sessions;
  await assert.rejects(h.b.offerFromHome('call-k', enc(oldHold), '198.51.100.66'), SdpError);
  assert.equal(h.b.anchor.counters.sessions, sessions, 'the live session stayed');
  assertTwoWayAudio({ phone: phoneA, sdp: toPhoneA }, { phone: phoneB, sdp: toPhoneB });
});

test("SDP from another home than the one the route says it came from is refused: a late offer in a 200 from home C when the INVITE went to home B (second review F-2)", async () => {
  const h = homes();
  const c = homes(undefined, { a: testIdentity(14), b: testIdentity(12) }).a;
  const fromC = await c.offerFromPhone('call-m', offer('192.168.3.40', 30000), '192.168.3.40');
  await assert.rejects(h.a.offerFromHome('call-m', enc(fromC), HOME_B, false, TO_B), (e: unknown) => e instanceof SdpError && /another home than the one it came from/.test(e.reason));
  assert.equal(h.a.active, 0);
});

test('a call whose media ended at one home only, taken up by the home that kept it: either home may have forgotten, and audio comes back both ways (second review F-4)', async () => {
  for (const forgot of ['callee', 'caller'] as const) {
    const h = homes();
    const phoneA = h.net.phone('192.168.1.20', 10000);
    const phoneB = h.net.phone('192.168.2.30', 20000);
    await liveCall(h, 'call-4');
    let toPhoneA: string;
    let toPhoneB: string;
    if (forgot === 'callee') {
      h.b.close('call-4'); // home B's --media-timeout; the caller resumes
      toPhoneB = await h.b.offerFromHome('call-4', enc(await h.a.offerFromPhone('call-4', offer('192.168.1.20', 10000), '192.168.1.20', TO_B)), HOME_A);
      toPhoneA = h.a.answerFromHome('call-4', enc(h.b.answerFromPhone('call-4', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
    } else {
      h.a.close('call-4'); // home A's; the callee re-offers
      toPhoneA = await h.a.offerFromHome('call-4', enc(await h.b.offerFromPhone('call-4', offer('192.168.2.30', 20000), '192.168.2.30', TO_A)), HOME_B);
      toPhoneB = h.b.answerFromHome('call-4', enc(h.a.answerFromPhone('call-4', offer('192.168.1.20', 10000), '192.168.1.20')), HOME_A);
    }
    assertTwoWayAudio({ phone: phoneA, sdp: toPhoneA }, { phone: phoneB, sdp: toPhoneB }, `${forgot} forgot: phone B hears phone A`);
  }
});

test('a call whose media ended at one home only, resumed by a re-INVITE without SDP: the offer comes in the 200 and the answer in the ACK, whichever home forgot, and audio comes back both ways (third review X3)', async () => {
  for (const forgot of ['callee', 'caller'] as const) {
    const h = homes();
    const phoneA = h.net.phone('192.168.1.20', 10000);
    const phoneB = h.net.phone('192.168.2.30', 20000);
    await liveCall(h, 'call-3');
    let toPhoneA: string;
    let toPhoneB: string;
    if (forgot === 'callee') {
      h.b.close('call-3'); // home B's --media-timeout; phone A re-INVITEs without SDP, phone B offers in its 200
      const in200 = await h.b.offerFromPhone('call-3', offer('192.168.2.30', 20000), '192.168.2.30', TO_A);
      toPhoneA = await h.a.offerFromHome('call-3', enc(in200), HOME_B, false, TO_B);
      toPhoneB = h.b.answerFromHome('call-3', enc(h.a.answerFromPhone('call-3', offer('192.168.1.20', 10000), '192.168.1.20')), HOME_A, false, TO_A);
    } else {
      h.a.close('call-3'); // home A's; phone B re-INVITEs without SDP, phone A offers in its 200
      const in200 = await h.a.offerFromPhone('call-3', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
      toPhoneB = await h.b.offerFromHome('call-3', enc(in200), HOME_A, false, TO_A);
      toPhoneA = h.a.answerFromHome('call-3', enc(h.b.answerFromPhone('call-3', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B, false, TO_B);
    }
    assertTwoWayAudio({ phone: phoneA, sdp: toPhoneA }, { phone: phoneB, sdp: toPhoneB }, `${forgot} forgot: phone B hears phone A`);
  }
});

test('both homes forgot the call and both phones offer it afresh at once: each offer is answered 491 (not 488), and once the failed re-INVITEs let their states go, the first retry carries audio both ways (third review X5)', async () => {
  const h = homes();
  const phoneA = h.net.phone('192.168.1.20', 10000);
  const phoneB = h.net.phone('192.168.2.30', 20000);
  await liveCall(h, 'call-5');
  h.a.close('call-5'); // a long hold: both anchors time out together
  h.b.close('call-5');
  const fromA = await h.a.offerFromPhone('call-5', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  const fromB = await h.b.offerFromPhone('call-5', offer('192.168.2.30', 20000), '192.168.2.30', TO_A);
  const glare = (e: unknown) => e instanceof SipError && e.status === 491 && /Request Pending/.test(e.reason);
  await assert.rejects(h.b.offerFromHome('call-5', enc(fromA), HOME_A, true, TO_A), glare);
  // At home A, as its proxy meets it: the re-INVITE is answered 491.
  const atA = new SipMedia(h.a, 'auto', { maxCalls: 4, retryAfterSeconds: 30 }, () => 0);
  const reinvite = { kind: 'request' as const, method: 'INVITE', uri: 'sip:alice@x', headers: new SipHeaders(), body: enc(fromB) };
  await assert.rejects(atA.rewrite('call-5', reinvite, 'offer', 'home', HOME_B, undefined, TO_B), (e: unknown) => e instanceof MediaRefused && e.status === 491);
  // Each re-INVITE failed (491): the proxy lets the media it began go (proxy-phones tests that); phone B retries first.
  h.a.close('call-5');
  h.b.close('call-5');
  const retry = await h.b.offerFromPhone('call-5', offer('192.168.2.30', 20000), '192.168.2.30', TO_A);
  const toPhoneA = await h.a.offerFromHome('call-5', enc(retry), HOME_B, true, TO_B);
  const toPhoneB = h.b.answerFromHome('call-5', enc(h.a.answerFromPhone('call-5', offer('192.168.1.20', 10000), '192.168.1.20')), HOME_A, false, TO_A);
  assertTwoWayAudio({ phone: phoneA, sdp: toPhoneA }, { phone: phoneB, sdp: toPhoneB }, 'phone B hears phone A');
});

test("the other home's 200 sent again (its first lost on the way to our phone) reaches the phone with the same SDP, an answer or a late offer; its SDP in a request, or changed, is still refused", async () => {
  const h = homes();
  const toB = await h.a.offerFromPhone('call-r', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await h.b.offerFromHome('call-r', enc(toB), HOME_A);
  const answer200 = enc(h.b.answerFromPhone('call-r', offer('192.168.2.30', 20000), '192.168.2.30'));
  const first = h.a.answerFromHome('call-r', answer200, HOME_B, false, TO_B);
  assert.equal(h.a.answerFromHome('call-r', answer200, HOME_B, false, TO_B), first, 'the 2xx retransmission carries the same SDP to phone A');
  assert.match(first, /m=audio 4\d{4} /);
  const edited = enc(Buffer.from(answer200).toString().replace('a=sendrecv', 'a=recvonly'));
  assert.throws(() => h.a.answerFromHome('call-r', edited, HOME_B, false, TO_B), (e: unknown) => e instanceof SdpError && /not signed by it/.test(e.reason));
  // A late offer: phone A's SDP-less re-INVITE; phone B offers in its 200, sent twice.
  const late200 = enc(await h.b.offerFromPhone('call-r', offer('192.168.2.30', 20000), '192.168.2.30', TO_A));
  const toPhoneA = await h.a.offerFromHome('call-r', late200, HOME_B, false, TO_B);
  assert.equal(await h.a.offerFromHome('call-r', late200, HOME_B, false, TO_B), toPhoneA);
  // The same bytes as a request (a re-INVITE played back) are believed no more than before.
  await assert.rejects(h.a.offerFromHome('call-r', late200, HOME_B, true, TO_B), (e: unknown) => e instanceof SdpError);
});

test("what a 200 sent again may repeat is that 200's SDP only: not in an ACK, not as the other kind, not after newer SDP, not past 64*T1 (fourth media review F1)", async () => {
  const h = homes();
  const toB = await h.a.offerFromPhone('call-c', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await h.b.offerFromHome('call-c', enc(toB), HOME_A);
  const answer200 = enc(h.b.answerFromPhone('call-c', offer('192.168.2.30', 20000), '192.168.2.30'));
  h.a.answerFromHome('call-c', answer200, HOME_B, false, TO_B);
  const refused = (e: unknown) => e instanceof SdpError;
  assert.throws(() => h.a.answerFromHome('call-c', answer200, HOME_B, true, TO_B), refused, 'the same bytes in an ACK are a replay');
  await assert.rejects(h.a.offerFromHome('call-c', answer200, HOME_B, false, TO_B), refused, 'an answer is not taken as an offer');
  // Newer SDP from the other home (a late offer in the 200 to an SDP-less re-INVITE) is believed.
  const late200 = enc(await h.b.offerFromPhone('call-c', offer('192.168.2.30', 20000), '192.168.2.30', TO_A));
  await h.a.offerFromHome('call-c', late200, HOME_B, false, TO_B);
  assert.throws(() => h.a.answerFromHome('call-c', answer200, HOME_B, false, TO_B), refused, 'the older answer is not played again');
  h.wall.seconds += 33;
  await assert.rejects(h.a.offerFromHome('call-c', late200, HOME_B, false, TO_B), refused, 'past 64*T1 it is no 2xx resent');
});

test('SDP under the agreed key is bounded in time too: a re-offer held back on the way for eleven minutes is refused, and one signed now is taken (third review X6)', async () => {
  const h = homes();
  const phoneA = h.net.phone('192.168.1.20', 10000);
  const phoneB = h.net.phone('192.168.2.30', 20000);
  const { toPhoneA } = await liveCall(h, 'call-6');
  const heldBack = await h.a.offerFromPhone('call-6', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  h.wall.seconds += 660;
  await assert.rejects(h.b.offerFromHome('call-6', enc(heldBack), HOME_A), (e: unknown) => e instanceof SdpError && /too long ago/.test(e.reason));
  const toPhoneB = await h.b.offerFromHome('call-6', enc(await h.a.offerFromPhone('call-6', offer('192.168.1.20', 10000), '192.168.1.20', TO_B)), HOME_A);
  assertTwoWayAudio({ phone: phoneA, sdp: toPhoneA }, { phone: phoneB, sdp: toPhoneB });
});

test('a call taken up under a new key never goes back to an old one, even with a statement held back on the way: the old keys would seal with their nonces from 0 again (third review X1)', async () => {
  const h = homes();
  const phoneA = h.net.phone('192.168.1.20', 10000);
  const phoneB = h.net.phone('192.168.2.30', 20000);
  await liveCall(h, 'call-w');
  // A hold re-offer of home A's under its first key, which the attacker keeps from home B.
  const withheld = await h.a.offerFromPhone('call-w', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  h.a.close('call-w'); // home A forgets the call and takes it up under a new key; home B re-keys
  const toPhoneB = await h.b.offerFromHome('call-w', enc(await h.a.offerFromPhone('call-w', offer('192.168.1.20', 10000), '192.168.1.20', TO_B)), HOME_A);
  const toPhoneA = h.a.answerFromHome('call-w', enc(h.b.answerFromPhone('call-w', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
  await assert.rejects(h.b.offerFromHome('call-w', enc(withheld), '198.51.100.66'), (e: unknown) => e instanceof SdpError && /key it had before/.test(e.reason));
  assertTwoWayAudio({ phone: phoneA, sdp: toPhoneA }, { phone: phoneB, sdp: toPhoneB });
});

test('statements are remembered per home: another home signing a thousand fills only its own memory and cannot push out the one home A signed (third review X4)', async () => {
  const h = homes();
  const toB = await h.a.offerFromPhone('call-y', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await h.b.offerFromHome('call-y', enc(toB), HOME_A);
  h.b.close('call-y');
  // Home C, enrolled, signs 1,100 re-offers in a call of its own with home B.
  const c = homes(undefined, { a: testIdentity(14), b: testIdentity(12) }).a;
  await h.b.offerFromHome('call-c', enc(await c.offerFromPhone('call-c', offer('192.168.3.40', 30000), '192.168.3.40', TO_B)), '198.51.100.7');
  let refused = 0;
  for (let i = 0; i < 1100; i++) await h.b.offerFromHome('call-c', enc(await c.offerFromPhone('call-c', offer('192.168.3.40', 30000), '192.168.3.40', TO_B)), '198.51.100.7').catch(() => refused++);
  assert.equal(refused, 1100 - 255, 'past 256 live statements, home C is refused, never another home forgotten');
  await assert.rejects(h.b.offerFromHome('call-y', enc(toB), '198.51.100.66'), (e: unknown) => e instanceof SdpError && /already received/.test(e.reason));
});

test("a call's first SDP from the other home, in a request too (the ACK of a late offer), must come from the home it was offered to (third review X2)", async () => {
  const h = homes();
  // Home A's phone offers in its 200 to home B's INVITE without SDP; the route knew home B.
  const in200 = await h.a.offerFromPhone('call-z', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  // Home C, enrolled and on the path, signs an answer of its own for call-z, for home A (it got
  // an offer of home A's identity for that Call-ID to do so), and sends it in an ACK.
  const cHome = homes(undefined, { a: testIdentity(11), b: testIdentity(14) });
  await cHome.b.offerFromHome('call-z', enc(await cHome.a.offerFromPhone('call-z', offer('192.168.1.20', 10000), '192.168.1.20', idToHex(testIdentity(14).nodeId))), HOME_A);
  const answerOfC = cHome.b.answerFromPhone('call-z', offer('192.168.3.40', 30000), '192.168.3.40');
  assert.throws(() => h.a.answerFromHome('call-z', enc(answerOfC), '198.51.100.7'), (e: unknown) => e instanceof SdpError && /another home than the one this call was offered to/.test(e.reason));
  // Home B's own answer is still taken.
  await h.b.offerFromHome('call-z', enc(in200), HOME_A, false);
  h.a.answerFromHome('call-z', enc(h.b.answerFromPhone('call-z', offer('192.168.2.30', 20000), '192.168.2.30')), HOME_B);
  assert.ok(h.a.farHomeOf('call-z') !== undefined);
});

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const muxing = (address: string, port: number) => `${text(offer(address, port))}a=rtcp-mux\r\n`;
const rtcpPort = (sdp: string) => ({ ...mediaOf(sdp), port: mediaOf(sdp).port + 1 });

async function placeCall(a: CallMedia, b: CallMedia, callId: string, offerText: string, answerText: string) {
  const toB = await a.offerFromPhone(callId, enc(offerText), '192.168.1.20', TO_B);
  const toPhoneB = await b.offerFromHome(callId, enc(toB), HOME_A);
  const toA = b.answerFromPhone(callId, enc(answerText), '192.168.2.30');
  return { toB, toPhoneB, toA, toPhoneA: a.answerFromHome(callId, enc(toA), HOME_B) };
}

test('with rtcp-mux in use, the homes still send each other RTCP (and its keepalive probes) at the RTCP ports: nothing fails the far anchor\'s keys', async () => {
  const backhaul: MediaBackhaul = { prepare: () => {}, send: () => {}, directHost: () => undefined, stop: () => {} };
  const { clock, a, b } = homes(undefined, undefined, backhaul);
  await placeCall(a, b, 'call-mp', muxing('192.168.1.20', 10000), muxing('192.168.2.30', 20000));
  clock.runUntil(clock.now() + 2_000);
  assert.equal(a.anchor.totals().dropped.unsealed + b.anchor.totals().dropped.unsealed, 0);
  assert.ok(a.anchor.totals().probesIn > 0 && b.anchor.totals().probesIn > 0, 'the probes arrived and opened');
});

test('a re-offer keeps rtcp-mux as the answer settled it: while it is pending (or if it fails), and once it is answered the same way, each phone\'s reports still go where its RTCP comes from', async () => {
  const { net, a, b } = homes();
  const natA = net.phone('192.168.1.20', 30001); // phone A's RTCP leaves from another port than its SDP's
  const sdpA = net.phone('192.168.1.20', 10001);
  const rtpA = net.phone('192.168.1.20', 10000);
  const rtcpB = net.phone('192.168.2.30', 20001);
  const first = await placeCall(a, b, 'call-ro', muxing('192.168.1.20', 10000), text(offer('192.168.2.30', 20000)));
  natA.send(rtcpPort(first.toPhoneA), receiverReport(1));
  rtcpB.send(rtcpPort(first.toPhoneB), receiverReport(2));
  assert.equal(natA.heard.length, 1, 'latched where phone A\'s RTCP comes from');

  const again = muxing('192.168.1.20', 10000).replace('o=- 1 1', 'o=- 1 2'); // a session refresh, mux offered again
  const toB = await a.offerFromPhone('call-ro', enc(again), '192.168.1.20', TO_B);
  await b.offerFromHome('call-ro', enc(toB), HOME_A);
  rtcpB.send(rtcpPort(first.toPhoneB), receiverReport(3));
  assert.equal(natA.heard.length, 2, 'pending re-offer: phone B\'s report still reaches phone A');
  const toA = b.answerFromPhone('call-ro', offer('192.168.2.30', 20000), '192.168.2.30');
  a.answerFromHome('call-ro', enc(toA), HOME_B);
  rtcpB.send(rtcpPort(first.toPhoneB), receiverReport(4));
  assert.equal(natA.heard.length, 3, 'answered the same way: the latch held');
  assert.equal(sdpA.heard.length + rtpA.heard.length, 0);
  assert.equal(a.anchor.totals().dropped.unsealed + b.anchor.totals().dropped.unsealed, 0);
});

test('our own phone\'s answers (a 183, then the 200) leave the latch on the other home where it is, though it sends from an address its SDP does not name', async () => {
  // Home A's SDP names an address its media does not leave from (no STUN answer yet, say).
  const { net, a, b } = homes(undefined, undefined, undefined, undefined, { a: '192.0.2.99' });
  const phoneA = net.phone('192.168.1.20', 10000);
  const elsewhere = await a.offerFromPhone('call-la', offer('192.168.1.20', 10000), '192.168.1.20', TO_B);
  await b.offerFromHome('call-la', enc(elsewhere), '10.0.0.1');
  const early = b.answerFromPhone('call-la', offer('192.168.2.30', 20000), '192.168.2.30');
  const toPhoneA = a.answerFromHome('call-la', enc(early), HOME_B);
  phoneA.send(mediaOf(toPhoneA), new Uint8Array(172).fill(1));
  const rtp = b.anchor.sessionsNow()[0].streams[0].rtp;
  assert.equal(rtp.latchedTo('b')?.address, HOME_A, 'latched where home A\'s sealed media came from');
  b.answerFromPhone('call-la', offer('192.168.2.30', 20000), '192.168.2.30');
  assert.equal(rtp.latchedTo('b')?.address, HOME_A, 'the 200 moved nothing: only home A\'s own datagrams can');
});

test('SRTP calls\' reports are not read: their blocks are ciphertext, and calls shows no made-up loss', async () => {
  const { net, a, b } = homes();
  const rtcpB = net.phone('192.168.2.30', 20001);
  const srtp = (address: string, port: number) => text(offer(address, port)).replace('RTP/AVP', 'RTP/SAVP') + 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n';
  const call = await placeCall(a, b, 'call-s', srtp('192.168.1.20', 10000), srtp('192.168.2.30', 20000));
  rtcpB.send(rtcpPort(call.toPhoneB), receiverReport(200));
  assert.equal(b.anchor.sessionsNow()[0].streams[0].quality.summary(), undefined);
});
