import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CertificateError, issueCertificate } from '../../../src/identity/certificate.js';
import { nodeIdFromPublicKey, resourceId } from '../../../src/identity/ids.js';
import { keyPairFromSeed } from '../../../src/identity/keys.js';
import { OpenTrustPolicy } from '../../../src/identity/trust.js';
import { DecodeError } from '../../../src/wire/decode-error.js';
import { FIXED_NOW_SECONDS, TEST_OVERLAY, testIdentity } from '../../helpers/fixtures.js';

const trust = () => new OpenTrustPolicy(TEST_OVERLAY);

test('a self-issued certificate is accepted in open mode and binds the Node-ID to the key hash', () => {
  const id = testIdentity(3);
  const cert = trust().accept(id.certificate.bytes, FIXED_NOW_SECONDS);
  assert.equal(cert.claims.nodeIds[0], nodeIdFromPublicKey(id.keys.publicKey));
  assert.equal(cert.claims.subject, `node3@${TEST_OVERLAY}`);
});

test('a certificate with one flipped bit in its claims does not verify', () => {
  const bytes = new Uint8Array(testIdentity(3).certificate.bytes);
  bytes[40] ^= 0x01;
  assert.throws(() => trust().accept(bytes, FIXED_NOW_SECONDS), (e: unknown) => e instanceof CertificateError || e instanceof DecodeError);
});

test('a Node-ID that is not the hash of the key is refused (no choosing your ring position)', () => {
  const keys = keyPairFromSeed(new Uint8Array(32).fill(9));
  const cert = issueCertificate(
    { issuer: 'self', subject: 'evil', nodeIds: [resourceId('victim')], publicKey: keys.publicKey, overlay: TEST_OVERLAY, notBefore: 0, expires: FIXED_NOW_SECONDS + 10 },
    keys,
  );
  assert.throws(() => trust().accept(cert.bytes, FIXED_NOW_SECONDS), /hash of its key/);
});

test('certificates for another overlay, or expired ones, are refused', () => {
  assert.throws(() => trust().accept(testIdentity(4, 'other.overlay').certificate.bytes, FIXED_NOW_SECONDS), /overlay other.overlay/);
  assert.throws(() => trust().accept(testIdentity(4).certificate.bytes, FIXED_NOW_SECONDS + 400 * 24 * 3600), /not valid now/);
});

test('a certificate signed by a different key than the one it names is refused', () => {
  const subject = keyPairFromSeed(new Uint8Array(32).fill(5));
  const other = keyPairFromSeed(new Uint8Array(32).fill(6));
  const cert = issueCertificate(
    { issuer: 'self', subject: 's', nodeIds: [nodeIdFromPublicKey(subject.publicKey)], publicKey: subject.publicKey, overlay: TEST_OVERLAY, notBefore: 0, expires: FIXED_NOW_SECONDS + 10 },
    other,
  );
  assert.throws(() => trust().accept(cert.bytes, FIXED_NOW_SECONDS), /signature/);
});
