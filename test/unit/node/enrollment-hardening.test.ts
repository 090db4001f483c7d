import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { parseCertificate } from '../../../src/identity/certificate.js';
import { keyPairFromSeed, signBytes } from '../../../src/identity/keys.js';
import { EnrollmentAuthority } from '../../../src/node/enrollment/enrollment-authority.js';
import { decodeAnswer, ENROLL, encodeRequest, enrollMac, enrollProofInput, RENEW, renewProofInput } from '../../../src/node/enrollment/enrollment-protocol.js';
import { DEFAULT_ENROLLMENT_SERVER_LIMITS, EnrollmentServer, sendEnrollment } from '../../../src/node/enrollment/enrollment-transport.js';
import { decodeInvitation } from '../../../src/node/enrollment/invitation.js';
import { silentLogger } from '../../../src/runtime/log.js';
import { SystemClock } from '../../../src/runtime/clock.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { VirtualClock } from '../../../src/sim/virtual-clock.js';

/*
 * The enrollment authority as an attacker meets it (issue 13): a captured renewal cannot be
 * replayed, device names cannot collide, and the listener holds no more connections, for no
 * longer, than its limits allow.
 */
const root = mkdtempSync(path.join(tmpdir(), 'p2psip-enrollment-hardening-'));
after(() => rmSync(root, { recursive: true, force: true }));
const NOW = 1_800_000_000;

function authority(name: string) {
  return EnrollmentAuthority.create(path.join(root, name), { overlay: `${name}.test` }, new SeededRandom(name.length), NOW);
}

/** A device's first request, on a fresh invitation. */
function enrollRequest(a: EnrollmentAuthority, seed: number) {
  const { id, secret } = decodeInvitation(a.invite({ enrollAt: { host: '127.0.0.1', port: 1 } }, NOW).token);
  const keys = keyPairFromSeed(new Uint8Array(32).fill(seed));
  const nonce = new Uint8Array(16).fill(seed);
  const proof = signBytes(keys, enrollProofInput(id, keys.publicKey, nonce));
  return { keys, request: { type: ENROLL, invitationId: id, publicKey: keys.publicKey, nonce, proof, mac: enrollMac(secret, id, keys.publicKey, nonce, proof) } as const };
}

function enroll(a: EnrollmentAuthority, seed: number) {
  const { keys, request } = enrollRequest(a, seed);
  const answer = a.answer(request, NOW);
  assert.ok(answer.ok, answer.ok ? '' : answer.reason);
  return { keys, certificate: answer.certificate };
}

test('a renewal is good once, only near its time, and once a minute per key: a captured one replayed, an old one, or a flood is refused', () => {
  const { authority: a } = authority('renewals');
  const { keys, certificate } = enroll(a, 1);
  const renew = (nonceByte: number, time: number, now = NOW) => {
    const nonce = new Uint8Array(16).fill(nonceByte);
    return a.answer({ type: RENEW, certificate, nonce, time, proof: signBytes(keys, renewProofInput(certificate, nonce, time)) }, now);
  };
  assert.equal(renew(7, NOW).ok, true);
  const soon = renew(8, NOW + 5, NOW + 5);
  assert.match(soon.ok ? '' : soon.reason, /a moment ago/, 'one renewal a minute per key');
  const replayed = renew(7, NOW, NOW + 61);
  assert.equal(replayed.ok, false);
  assert.match(replayed.ok ? '' : replayed.reason, /replayed/);
  const stale = renew(11, NOW - 3600, NOW + 61);
  assert.match(stale.ok ? '' : stale.reason, /stale/);
  assert.equal(renew(9, NOW + 62, NOW + 122).ok, true, 'a clock a minute behind is fine');
});

test('devices enrolled without a user get names of 64 random bits, all different', () => {
  const { authority: a } = authority('devices');
  const names = new Set<string>();
  for (let i = 0; i < 20; i++) names.add(parseCertificate(enroll(a, 10 + i).certificate).claims.subject);
  assert.equal(names.size, 20);
  for (const name of names) assert.match(name, /^peer-[0-9a-f]{16}@devices\.test$/);
});

test('the listener holds at most its connections per source and in all, and closes each at its deadline', async () => {
  const { authority: a } = authority('listener');
  const server = new EnrollmentServer((request) => a.answer(request, NOW), silentLogger, new SystemClock(), { ...DEFAULT_ENROLLMENT_SERVER_LIMITS, maxConnections: 6, maxPerSource: 4, deadlineMs: 600 });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const port = (server as unknown as { server: import('node:net').Server }).server.address() as import('node:net').AddressInfo;
  const closedAt: number[] = [];
  const start = Date.now();
  const sockets = Array.from({ length: 6 }, () => {
    const socket = connect(port.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.on('close', () => closedAt.push(Date.now() - start));
    // A slow sender: a byte now and then, never a whole request (an idle timeout alone would wait forever).
    const drip = setInterval(() => socket.writable && socket.write(new Uint8Array([0])), 100);
    socket.on('close', () => clearInterval(drip));
    return socket;
  });
  await new Promise((r) => setTimeout(r, 2000));
  for (const s of sockets) s.destroy();
  await server.close();
  closedAt.sort((x, y) => x - y);
  assert.equal(server.refused, 2, 'the fifth and sixth connection from one source were refused');
  assert.ok(closedAt[1] < 300, `refused ones closed at once: ${closedAt}`);
  assert.ok(closedAt.slice(2).every((t) => t >= 550 && t < 1500), `the rest closed at their deadline, slow as they were: ${closedAt}`);
});

test('one source gets a burst of requests, then one every two seconds; a request trickled a byte at a time is still read', async () => {
  const { authority: a } = authority('rate');
  const clock = new VirtualClock();
  const server = new EnrollmentServer((request) => a.answer(request, NOW), silentLogger, clock, { ...DEFAULT_ENROLLMENT_SERVER_LIMITS, perSourceRate: { burst: 3, ratePerSecond: 0.5 } });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const { port } = (server as unknown as { server: import('node:net').Server }).server.address() as import('node:net').AddressInfo;
  const to = { host: '127.0.0.1', port };
  let seed = 40;
  const ask = () => sendEnrollment(to, enrollRequest(a, seed++).request).then((answer) => answer.ok, (error: Error) => error.name);
  try {
    const burst = [];
    for (let i = 0; i < 4; i++) burst.push(await ask());
    assert.deepEqual(burst, [true, true, true, 'EnrollmentUnreachable'], 'the fourth at once is refused');
    clock.runUntil(clock.now() + 2_000);
    assert.equal(await ask(), true, 'two seconds later there is room for one more');
    assert.equal(await ask(), 'EnrollmentUnreachable');
    clock.runUntil(clock.now() + 2_000);
    // The same request, a byte at a time.
    const socket = connect(port, '127.0.0.1');
    const request = encodeRequest(enrollRequest(a, 60).request);
    const framed = Buffer.concat([Buffer.from([0, 0, request.length >> 8, request.length & 0xff]), request]);
    const answer = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
    await new Promise((resolve) => socket.once('connect', resolve));
    for (const byte of framed) {
      socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const bytes = await answer;
    assert.equal(decodeAnswer(new Uint8Array(bytes.subarray(4))).ok, true);
    assert.equal(server.refused, 2);
  } finally {
    await server.close();
  }
});
