import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPayload, sealPayload, SignatureError } from '../../../src/identity/message-signing.js';
import { ed25519Suite, simulatedSuite } from '../../../src/identity/signature-suite.js';
import { OpenTrustPolicy } from '../../../src/identity/trust.js';
import { decodePayload, encodePayload } from '../../../src/wire/payload.js';
import { FIXED_NOW_SECONDS, TEST_OVERLAY, testIdentity } from '../../helpers/fixtures.js';

const alice = testIdentity(1);
const mallory = testIdentity(2);
const fields = { overlay: 7, transactionId: new Uint8Array(8).fill(1), code: 23 };
const body = new Uint8Array([0x80]);

for (const suite of [ed25519Suite, simulatedSuite]) {
  test(`${suite.name}: a sealed payload opens and names its signer`, () => {
    const opened = openPayload(suite, new OpenTrustPolicy(TEST_OVERLAY), fields, sealPayload(suite, alice, fields, body), alice.nodeId, FIXED_NOW_SECONDS);
    assert.deepEqual(Buffer.from(opened.body), Buffer.from(body));
    assert.equal(opened.certificate.claims.nodeIds[0], alice.nodeId);
  });

  test(`${suite.name}: an altered body, transaction or code fails the signature check`, () => {
    const sealed = sealPayload(suite, alice, fields, body);
    const p = decodePayload(sealed);
    const altered = encodePayload({ ...p, body: new Uint8Array([0x81, 0x01]) });
    const trust = new OpenTrustPolicy(TEST_OVERLAY);
    assert.throws(() => openPayload(suite, trust, fields, altered, alice.nodeId, FIXED_NOW_SECONDS), SignatureError);
    assert.throws(() => openPayload(suite, trust, { ...fields, code: 25 }, sealed, alice.nodeId, FIXED_NOW_SECONDS), SignatureError);
    assert.throws(() => openPayload(suite, trust, { ...fields, transactionId: new Uint8Array(8) }, sealed, alice.nodeId, FIXED_NOW_SECONDS), SignatureError);
  });
}

test('a message claiming another sender than its certificate names is refused', () => {
  const sealed = sealPayload(ed25519Suite, mallory, fields, body);
  assert.throws(() => openPayload(ed25519Suite, new OpenTrustPolicy(TEST_OVERLAY), fields, sealed, alice.nodeId, FIXED_NOW_SECONDS), /not in its certificate/);
});

test("swapping in someone else's certificate breaks the signature", () => {
  const p = decodePayload(sealPayload(ed25519Suite, mallory, fields, body));
  const forged = encodePayload({ ...p, certificate: alice.certificate.bytes });
  assert.throws(() => openPayload(ed25519Suite, new OpenTrustPolicy(TEST_OVERLAY), fields, forged, alice.nodeId, FIXED_NOW_SECONDS), SignatureError);
});
