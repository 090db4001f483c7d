import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthorityTrustPolicy, userInDomain } from '../../../src/identity/authority-trust.js';
import { CertificateError, issueCertificate } from '../../../src/identity/certificate.js';
import { keyFingerprint } from '../../../src/identity/ids.js';
import { keyPairFromSeed } from '../../../src/identity/keys.js';
import { ConfigError, isNewerConfig, openConfig, type OverlayConfig, signConfig } from '../../../src/node/config/overlay-config.js';
import { decodeInvitation, encodeInvitation, InvitationError } from '../../../src/node/enrollment/invitation.js';
import { DEFAULT_KINDS } from '../../../src/storage/kind.js';
import { FIXED_NOW_SECONDS as NOW } from '../../helpers/fixtures.js';

const smiths = keyPairFromSeed(new Uint8Array(32).fill(1));
const joneses = keyPairFromSeed(new Uint8Array(32).fill(2));
const device = keyPairFromSeed(new Uint8Array(32).fill(3));
const OVERLAY = 'family.example';

const config: OverlayConfig = {
  overlay: OVERLAY,
  sequence: 1,
  authorities: [
    { name: 'smiths', publicKey: smiths.publicKey, domains: ['smiths.example'], enrollAt: { host: '198.18.0.1', port: 6084 } },
    { name: 'joneses', publicKey: joneses.publicKey, domains: ['joneses.example'] },
  ],
  bootstrap: [{ host: '198.18.0.1', port: 6084 }],
  kinds: DEFAULT_KINDS,
  limits: { maxBytesPerResource: 1000, maxBytesTotal: 100_000 },
  replicas: 3,
  revoked: [],
  certificateLifetimeSeconds: 86_400,
  issuedAt: NOW,
};

function cert(issuer: string, keys: typeof smiths, subject: string, overlay = OVERLAY) {
  return issueCertificate({ issuer, subject, nodeIds: [42n], publicKey: device.publicKey, overlay, notBefore: NOW - 10, expires: NOW + 100 }, keys).bytes;
}

test('user names belong to a domain or its subdomains only', () => {
  assert.ok(userInDomain('alice@smiths.example', 'smiths.example'));
  assert.ok(userInDomain('alice@home.smiths.example', 'smiths.example'));
  assert.ok(!userInDomain('alice@evilsmiths.example', 'smiths.example'));
  assert.ok(!userInDomain('smiths.example', 'smiths.example'));
});

test('several families: each authority may issue names only under its own domain', () => {
  const trust = new AuthorityTrustPolicy(OVERLAY, config);
  assert.equal(trust.accept(cert('smiths', smiths, 'alice@smiths.example'), NOW).claims.subject, 'alice@smiths.example');
  assert.equal(trust.accept(cert('joneses', joneses, 'bob@joneses.example'), NOW).claims.subject, 'bob@joneses.example');
  const refused = (bytes: Uint8Array, why: RegExp) => assert.throws(() => trust.accept(bytes, NOW), (e: unknown) => e instanceof CertificateError && why.test(e.message));
  refused(cert('joneses', joneses, 'alice@smiths.example'), /may not issue/);
  refused(cert('smiths', joneses, 'alice@smiths.example'), /signature/);
  refused(cert('stranger', device, 'x@smiths.example'), /not an authority/);
  refused(cert('smiths', smiths, 'alice@smiths.example', 'other.example'), /overlay/);
  assert.throws(() => trust.accept(cert('smiths', smiths, 'alice@smiths.example'), NOW + 1000), /not valid now/);
});

test('a revoked key is refused once the configuration says so', () => {
  const trust = new AuthorityTrustPolicy(OVERLAY, config);
  const bytes = cert('smiths', smiths, 'alice@smiths.example');
  trust.accept(bytes, NOW);
  trust.update({ ...config, revoked: [keyFingerprint(device.publicKey)] });
  assert.throws(() => trust.accept(bytes, NOW), /revoked/);
});

test('the configuration document: signed by its root, pinned, and newer only with a higher sequence', () => {
  const signed = signConfig(config, smiths);
  const opened = openConfig(signed.bytes, keyFingerprint(smiths.publicKey));
  assert.deepEqual(opened.config, config);
  assert.throws(() => openConfig(signed.bytes, keyFingerprint(joneses.publicKey)), ConfigError);
  assert.throws(() => signConfig(config, joneses), ConfigError);
  // A joneses-rooted document claiming the same overlay is not an update of ours.
  const hijack = signConfig({ ...config, sequence: 9, authorities: [config.authorities[1], config.authorities[0]] }, joneses);
  assert.equal(isNewerConfig(config, openConfig(hijack.bytes).config), false);
  assert.equal(isNewerConfig(config, { ...config, sequence: 2 }), true);
  assert.equal(isNewerConfig(config, { ...config, sequence: 1 }), false);
  // One flipped bit in the payload breaks the signature.
  const tampered = new Uint8Array(signed.bytes);
  tampered[40] ^= 1;
  assert.throws(() => openConfig(tampered));
});

test('a configuration too big for a node to open is never signed (a revocation list grown without bound)', () => {
  const many = Array.from({ length: 1200 }, (_, i) => keyFingerprint(keyPairFromSeed(new Uint8Array(32).fill(i % 250).map((b, j) => (j === 0 ? i >> 8 : b))).publicKey));
  assert.throws(() => signConfig({ ...config, revoked: many }, smiths), (e: unknown) => e instanceof ConfigError && /too many revocations/.test(e.message));
  const fits = signConfig({ ...config, revoked: many.slice(0, 100) }, smiths);
  assert.equal(openConfig(fits.bytes).config.revoked.length, 100);
});

test('invitation tokens round-trip, and anything else is refused clearly', () => {
  const invitation = { enrollAt: { host: '198.18.0.1', port: 6084 }, rootFingerprint: keyFingerprint(smiths.publicKey), id: new Uint8Array(8).fill(5), secret: new Uint8Array(16).fill(6), expires: NOW };
  const token = encodeInvitation(invitation);
  assert.ok(token.length < 120, `token is short (${token.length} chars)`);
  const decoded = decodeInvitation(token);
  assert.deepEqual({ ...decoded, id: new Uint8Array(decoded.id), secret: new Uint8Array(decoded.secret) }, invitation);
  assert.throws(() => decodeInvitation('hello'), InvitationError);
  assert.throws(() => decodeInvitation(token.slice(0, 30)), (e: unknown) => e instanceof InvitationError && /cut short: copy all of it again, one line starting with p2psip1:/.test(e.message));
});
