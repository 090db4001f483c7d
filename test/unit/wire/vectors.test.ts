import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeFrame, encodeFrame } from '../../../src/wire/frame.js';
import { parseCertificate } from '../../../src/identity/certificate.js';
import { hex, unhex } from '../../helpers/fixtures.js';
import { bodyVectors, frameVectors } from '../../vectors/cases.js';

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
