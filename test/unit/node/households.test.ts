import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { parseCertificate } from '../../../src/identity/certificate.js';
import { keyPairFromSeed, signBytes } from '../../../src/identity/keys.js';
import { EnrollmentAuthority } from '../../../src/node/enrollment/enrollment-authority.js';
import { decodeAnswer, decodeRequest, ENROLL, encodeAnswer, encodeRequest, enrollMac, enrollProofInput, issuedOrRefused, RELEASE, releaseProofInput, USER, userProofInput } from '../../../src/node/enrollment/enrollment-protocol.js';
import { openConfig } from '../../../src/node/config/overlay-config.js';
import { keyFingerprint } from '../../../src/identity/ids.js';
import { decodeInvitation } from '../../../src/node/enrollment/invitation.js';
import { SystemClock } from '../../../src/runtime/clock.js';
import { SeededRandom } from '../../../src/runtime/random.js';
import { encodeCbor } from '../../../src/wire/cbor.js';
import { DecodeError } from '../../../src/wire/decode-error.js';

/*
 * The household ledger as a rogue or careless home meets it: a user request must carry this
 * authority's unrevoked certificate and a proof by its key, once; a name is held by one home; a
 * home holds at most its invitation's household size; clients hold nobody; what is decided
 * survives a restart of the authority.
 */
const root = mkdtempSync(path.join(tmpdir(), 'p2psip-households-'));
after(() => rmSync(root, { recursive: true, force: true }));
const NOW = 1_800_000_000;
const dir = path.join(root, 'authority');
const { authority } = EnrollmentAuthority.create(dir, { overlay: 'browns.test' }, new SeededRandom(7), NOW);

function enroll(seed: number, options: { household?: number; client?: boolean; user?: string } = {}) {
  const { id, secret } = decodeInvitation(authority.invite({ enrollAt: { host: '127.0.0.1', port: 1 }, ...options }, NOW).token);
  const keys = keyPairFromSeed(new Uint8Array(32).fill(seed));
  const nonce = new Uint8Array(16).fill(seed);
  const proof = signBytes(keys, enrollProofInput(id, keys.publicKey, nonce));
  const answer = authority.answer({ type: ENROLL, invitationId: id, publicKey: keys.publicKey, nonce, proof, mac: enrollMac(secret, id, keys.publicKey, nonce, proof) }, NOW);
  assert.ok(answer.ok, answer.ok ? '' : answer.reason);
  return { keys, certificate: answer.certificate, subject: parseCertificate(answer.certificate).claims.subject };
}

let nonceByte = 0;
function ask(home: ReturnType<typeof enroll>, user: string, options: { signer?: ReturnType<typeof keyPairFromSeed>; nonce?: Uint8Array; time?: number } = {}) {
  const userKey = keyPairFromSeed(new Uint8Array(32).fill(200)).publicKey;
  const nonce = options.nonce ?? new Uint8Array(16).fill(++nonceByte);
  const time = options.time ?? NOW;
  const proof = signBytes(options.signer ?? home.keys, userProofInput(home.certificate, user, userKey, nonce, time));
  const request = decodeRequest(encodeRequest({ type: USER, certificate: home.certificate, user, userKey, nonce, time, proof }));
  return issuedOrRefused(authority.answer(request, NOW));
}
const reason = (a: ReturnType<typeof ask>) => (a.ok ? '' : a.reason);

test('a home gets a user-role certificate with a Node-ID of its own for a user it may hold', () => {
  const home = enroll(1);
  const answer = ask(home, 'grandpa');
  assert.ok(answer.ok, reason(answer));
  const claims = parseCertificate(answer.certificate).claims;
  assert.equal(claims.subject, 'grandpa@browns.test');
  assert.equal(claims.role, 'user');
  assert.notEqual(claims.nodeIds[0], parseCertificate(home.certificate).claims.nodeIds[0]);
  assert.ok(ask(home, 'grandpa').ok, 'the same home may ask again (a new key, a renewal)');
});

test('a name held by one home is refused to another; bad names are refused', () => {
  const other = enroll(2);
  assert.match(reason(ask(other, 'grandpa')), /taken/);
  assert.match(reason(ask(other, 'Not A Name!')), /not a user name/);
});

test('a home holds at most its household size; a client holds nobody', () => {
  const small = enroll(3, { household: 1 });
  assert.ok(ask(small, 'kid').ok);
  assert.match(reason(ask(small, 'pet')), /invitation allows/);
  assert.match(reason(ask(enroll(4, { client: true }), 'laptop-user')), /client certificate cannot hold users/);
});

test('a proof by another key, a replayed nonce, a stale time or a revoked home is refused', () => {
  const home = enroll(5);
  assert.match(reason(ask(home, 'aunt', { signer: keyPairFromSeed(new Uint8Array(32).fill(99)) })), /proof/);
  const nonce = new Uint8Array(16).fill(250);
  assert.ok(ask(home, 'aunt', { nonce }).ok);
  assert.match(reason(ask(home, 'aunt', { nonce })), /replayed/);
  assert.match(reason(ask(home, 'uncle', { time: NOW - 3600 })), /stale/);
  authority.revoke({ user: home.subject }, 'not-the-authority', NOW);
  assert.match(reason(ask(home, 'uncle')), /revoked/);
});

test('the ledger survives a restart of the authority', () => {
  const again = EnrollmentAuthority.load(dir, authority.config, new SeededRandom(8), NOW)!;
  assert.deepEqual(
    again.households.users().map((u) => u.user),
    ['aunt@browns.test', 'grandpa@browns.test', 'kid@browns.test'],
  );
});

function release(home: ReturnType<typeof enroll>, user: string, options: { signer?: ReturnType<typeof keyPairFromSeed>; nonce?: Uint8Array } = {}) {
  const nonce = options.nonce ?? new Uint8Array(16).fill(++nonceByte);
  const proof = signBytes(options.signer ?? home.keys, releaseProofInput(home.certificate, user, nonce, NOW));
  const request = decodeRequest(encodeRequest({ type: RELEASE, certificate: home.certificate, user, nonce, time: NOW, proof }));
  return decodeAnswer(encodeAnswer(authority.answer(request, NOW)));
}

test('a home that gives a user up frees the name and a place in its household, and the user\'s certificate is revoked', () => {
  const small = enroll(6, { household: 1 });
  const first = ask(small, 'lodger');
  assert.ok(first.ok, reason(first));
  assert.match(reason(ask(small, 'guest')), /invitation allows/, 'full');
  assert.match(reason(ask(enroll(7), 'lodger')), /taken/);
  const before = authority.config.config.sequence;
  const answer = release(small, 'lodger');
  assert.equal(answer.ok, 'released', JSON.stringify(answer));
  const config = openConfig(answer.ok === 'released' ? answer.config : new Uint8Array(0), keyFingerprint(authority.config.config.authorities[0].publicKey));
  assert.equal(config.config.sequence, before + 1, 'a new configuration');
  assert.ok(config.config.revoked.includes(keyFingerprint(parseCertificate(first.certificate).claims.publicKey)), 'which revokes the certificate the home kept');
  assert.ok(!authority.households.users().some((u) => u.user === 'lodger@browns.test'));
  assert.ok(ask(small, 'guest').ok, 'the household has room again');
  assert.ok(ask(enroll(8), 'lodger').ok, 'and another home may take the name');
});

test('a release is refused for a user the home does not hold, by another key, replayed, or of the name the device itself was enrolled under', () => {
  const home = enroll(9);
  assert.ok(ask(home, 'cousin').ok);
  const refused = (a: ReturnType<typeof release>) => (a.ok === false ? a.reason : `not refused: ${String(a.ok)}`);
  assert.match(refused(release(home, 'grandpa')), /not held by this home/);
  assert.match(refused(release(home, 'cousin', { signer: keyPairFromSeed(new Uint8Array(32).fill(98)) })), /proof/);
  const nonce = new Uint8Array(16).fill(251);
  assert.equal(release(home, 'cousin', { nonce }).ok, 'released');
  assert.match(refused(release(home, 'cousin', { nonce })), /replayed/);
  const device = enroll(10, { user: 'nan' });
  assert.match(refused(release(device, 'nan')), /enrolled under/);
  assert.ok(authority.households.users().some((u) => u.user === 'nan@browns.test'), 'nothing changed');
});

test("a release captured before the authority restarted cannot be played again after it (its nonce is kept on disk); a device whose clock runs behind is served right after a restart (review E1)", () => {
  const home = enroll(13);
  assert.ok(ask(home, 'niece').ok);
  const signedRelease = (user: string, time: number, seed: number) => {
    const nonce = new Uint8Array(16).fill(seed);
    return decodeRequest(encodeRequest({ type: RELEASE, certificate: home.certificate, user, nonce, time, proof: signBytes(home.keys, releaseProofInput(home.certificate, user, nonce, time)) }));
  };
  const captured = signedRelease('niece', NOW, 240);
  assert.equal(authority.answer(captured, NOW).ok, 'released');
  assert.ok(ask(home, 'niece').ok, 'the home takes her back');
  const restarted = EnrollmentAuthority.load(dir, authority.config, new SeededRandom(9), NOW + 120)!;
  const replayed = restarted.answer(captured, NOW + 180);
  assert.equal(replayed.ok, false);
  assert.match(replayed.ok === false ? replayed.reason : '', /replayed/);
  assert.ok(restarted.households.users().some((u) => u.user === 'niece@browns.test'), 'she is still held');
  // The home's clock is 5 minutes behind: its request is dated before the restart, and still within the skew allowed.
  assert.equal(restarted.answer(signedRelease('niece', NOW + 180 - 300, 241), NOW + 180).ok, 'released', 'a request from a clock behind is taken');

  // A torn last record (a crash mid-append) is dropped; every whole one before it still counts.
  const file = path.join(dir, 'authority-nonces.bin');
  appendFileSync(file, Buffer.from([0, 0, 0xff, 0xff, 32, 0x61]));
  const again = EnrollmentAuthority.load(dir, authority.config, new SeededRandom(10), NOW + 200)!;
  const twice = again.answer(captured, NOW + 200);
  assert.match(twice.ok === false ? twice.reason : '', /replayed/);
  // Nonces no longer live are forgotten after the next start (their requests are stale by then
  // anyway): loading only reads the file (review F4); the first nonce taken rewrites it.
  const size = statSync(file).size;
  const later = EnrollmentAuthority.load(dir, authority.config, new SeededRandom(11), NOW + 3 * 3600)!;
  assert.equal(statSync(file).size, size, 'loading leaves the file as it was');
  later.answer(signedRelease('niece', NOW + 3 * 3600, 242), NOW + 3 * 3600);
  assert.equal(statSync(file).size, 5 + 32, 'only the nonce just taken is left');
});

test('no home may take a device\'s name as a user (and so give it up and have the device\'s certificates revoked)', () => {
  const rogue = enroll(11);
  const other = enroll(12);
  const deviceName = other.subject.slice(0, other.subject.indexOf('@'));
  assert.match(reason(ask(rogue, deviceName)), /a device of the overlay has that name/);
  assert.match(reason(ask(rogue, 'home')), /a device of the overlay has that name/, 'the first peer\'s own name');
  const refused = (a: ReturnType<typeof release>) => (a.ok === false ? a.reason : `not refused: ${String(a.ok)}`);
  assert.match(refused(release(rogue, deviceName)), /not held by this home/);
  assert.ok(!authority.config.config.revoked.includes(keyFingerprint(other.keys.publicKey)));
});

test('a home gives up at most 8 users a day: the revocation list every node opens cannot be grown without bound', () => {
  const churner = enroll(13);
  for (let i = 0; i < 8; i++) {
    assert.ok(ask(churner, `temp${i}`).ok);
    assert.equal(release(churner, `temp${i}`).ok, 'released');
  }
  assert.ok(ask(churner, 'temp8').ok);
  const ninth = release(churner, 'temp8');
  assert.match(ninth.ok === false ? ninth.reason : '', /try again tomorrow/);
  assert.ok(authority.households.users().some((u) => u.user === 'temp8@browns.test'), 'refused before anything changed');
});

test('a home believes a release only from a configuration the root signed that revokes the user\'s key (the link is plain TCP)', async () => {
  const { EnrollmentServer } = await import('../../../src/node/enrollment/enrollment-transport.js');
  const { releaseUserAtAuthority } = await import('../../../src/node/enrollment/enrollment-client.js');
  const { silentLogger } = await import('../../../src/runtime/log.js');
  const { freeUdpPort } = await import('../../helpers/processes.js'); // free for TCP too
  const home = enroll(14);
  const identity = { nodeId: parseCertificate(home.certificate).claims.nodeIds[0], keys: home.keys, certificate: { ...parseCertificate(home.certificate), bytes: home.certificate } };
  // The key the home holds for the user (this file's requests share one user key, revoked by the releases above: another here).
  const userKey = keyPairFromSeed(new Uint8Array(32).fill(201)).publicKey;
  // Someone on the path answers "released" with a genuine but older configuration.
  const stale = authority.config.bytes;
  const port = await freeUdpPort();
  const liar = new EnrollmentServer(() => ({ ok: 'released', config: stale }), silentLogger, new SystemClock());
  await liar.listen({ host: '127.0.0.1', port });
  const config = { ...authority.config.config, authorities: authority.config.config.authorities.map((a) => ({ ...a, enrollAt: { host: '127.0.0.1', port } })) };
  try {
    await assert.rejects(releaseUserAtAuthority(identity as never, config, 'visitor', userKey, new SeededRandom(3), NOW), /does not revoke visitor/);
  } finally {
    await liar.close();
  }
});

test('a malformed user request is a typed DecodeError, never a crash', () => {
  assert.throws(() => decodeRequest(encodeCbor([USER, new Uint8Array(3), 'x', new Uint8Array(31), new Uint8Array(16), 1, new Uint8Array(64)])), DecodeError);
  assert.throws(() => decodeRequest(encodeCbor([USER, new Uint8Array(3), 'x'])), DecodeError);
  assert.throws(() => decodeRequest(encodeCbor([RELEASE, new Uint8Array(3), 'x', new Uint8Array(16), 1])), DecodeError);
  assert.throws(() => decodeAnswer(encodeCbor([2])), DecodeError);
});
