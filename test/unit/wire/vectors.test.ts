import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeFrame, encodeFrame } from '../../../src/wire/frame.js';
import { parseCertificate } from '../../../src/identity/certificate.js';
import { hex, unhex } from '../../helpers/fixtures.js';
import { bodyVectors, frameVectors } from '../../vectors/cases.js';
import { decodeSecurityFrame, helloSignatureInput, sealedFrameAad } from '../../../src/wire/link-security.js';
import { openBytes } from '../../../src/link/secure/link-crypto.js';
import { FrameType } from '../../../src/wire/frame.js';
import { overlayHash } from '../../../src/identity/ids.js';
import { publicKeyObject, verifyBytes } from '../../../src/identity/keys.js';

// Set UPDATE_VECTORS=1 to rewrite the file after an intended change of encoding.
const FILE = 'docs/vectors/protocol.json';

function computed(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(bodyVectors)) out[name] = hex(v.codec.encode(v.value));
  for (const [name, bytes] of Object.entries(frameVectors)) out[name] = hex(bytes);
  return out;
}

if (process.env.UPDATE_VECTORS === '1' || !existsSync(FILE)) {
  writeFileSync(FILE, `${JSON.stringify(computed(), null, 2)}\n`);
}
const published = JSON.parse(readFileSync(FILE, 'utf8')) as Record<string, string>;

test('every message body encodes to its published hex vector and decodes back to the same value', () => {
  for (const [name, v] of Object.entries(bodyVectors)) {
    assert.equal(hex(v.codec.encode(v.value)), published[name], `${name} encoding`);
    assert.deepEqual(v.codec.decode(unhex(published[name])), v.value, `${name} decoding`);
  }
});

test('frames in the published vectors decode and re-encode to the identical bytes', () => {
  for (const name of ['data-frame-ping', 'ack-frame', 'keepalive-frame']) {
    assert.equal(hex(frameVectors[name]), published[name], `${name} encoding`);
    const frame = decodeFrame(unhex(published[name]));
    assert.equal(hex(encodeFrame(frame)), published[name], `${name} round trip`);
  }
});

test('the self-issued certificate vector parses to its claims', () => {
  assert.equal(hex(frameVectors['certificate-self-issued']), published['certificate-self-issued']);
  const cert = parseCertificate(unhex(published['certificate-self-issued']));
  assert.equal(cert.claims.issuer, 'self');
  assert.equal(cert.claims.overlay, 'test.p2psip');
  assert.equal(cert.claims.nodeIds.length, 1);
});

test('the data frame vector is plain CBOR: an array of four starting with type 0', () => {
  const bytes = unhex(published['data-frame-ping']);
  assert.equal(bytes[0], 0x84, 'array of 4');
  assert.equal(bytes[1], 0x00, 'frame type data');
  assert.ok(bytes.length < 1200, 'fits one datagram');
});

test("the link hello vector carries a certificate and a signature that verifies under the certificate's key", () => {
  const hello = decodeSecurityFrame(unhex(published['link-hello']));
  assert.equal(hello.type, FrameType.LinkHello);
  if (hello.type !== FrameType.LinkHello) return;
  const cert = parseCertificate(hello.certificate);
  assert.ok(verifyBytes(publicKeyObject(cert.claims.publicKey), helloSignatureInput(overlayHash('test.p2psip'), hello.session, hello.ephemeral, hello.time), hello.signature));
});

test('the sealed vector opens under its key to an ack frame, and not under another key', () => {
  const sealed = decodeSecurityFrame(unhex(published['sealed-ack']));
  assert.equal(sealed.type, FrameType.Sealed);
  if (sealed.type !== FrameType.Sealed) return;
  const aad = sealedFrameAad(sealed.session, sealed.counter);
  const plain = openBytes(new Uint8Array(32).fill(0x42), sealed.counter, aad, sealed.ciphertext);
  assert.ok(plain);
  assert.deepEqual(decodeFrame(plain), { type: 1, seq: 7, received: 0 });
  assert.equal(openBytes(new Uint8Array(32).fill(0x43), sealed.counter, aad, sealed.ciphertext), undefined);
});
