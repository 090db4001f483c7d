import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fingerprintValid, integrityValid, longTermKey, seal, shortTermKey } from '../../../src/nat/stun/integrity.js';
import { Attr, attribute, decodeStun, decodeXorAddress, encodeStun, encodeXorAddress, StunClass, StunError, StunMethod, textAttribute } from '../../../src/nat/stun/message.js';

/*
 * The RFC 5769 test vectors (../shared/vectors/stun, with the values a correct decoder finds):
 * every message decodes to them, MESSAGE-INTEGRITY checks with the right key and fails with a
 * wrong one, FINGERPRINT checks; and what we build ourselves checks the same way.
 */
const DIR = path.resolve('..', 'shared', 'vectors', 'stun');
const expected = JSON.parse(readFileSync(path.join(DIR, 'rfc5769.json'), 'utf8')) as Record<string, { file: string; expect: Record<string, any> }>;
const bytesOf = (file: string) => new Uint8Array(Buffer.from(readFileSync(path.join(DIR, file), 'utf8').replace(/\s+/g, ''), 'hex'));
const CLASSES: Record<string, number> = { request: StunClass.Request, success: StunClass.Success };

test('every RFC 5769 vector decodes to the published values, and its integrity and fingerprint check', () => {
  assert.equal(Object.keys(expected).length, 4);
  for (const [name, { file, expect }] of Object.entries(expected)) {
    const bytes = bytesOf(file);
    const message = decodeStun(bytes);
    assert.equal(message.klass, CLASSES[expect.class], `${name} class`);
    assert.equal(message.method, StunMethod.Binding, `${name} method`);
    if (expect.software) assert.equal(textAttribute(message, Attr.Software), expect.software, `${name} software`);
    if (expect.username) assert.equal(textAttribute(message, Attr.Username), expect.username, `${name} username`);
    if (expect.nonce) assert.equal(textAttribute(message, Attr.Nonce), expect.nonce, `${name} nonce`);
    if (expect.realm) assert.equal(textAttribute(message, Attr.Realm), expect.realm, `${name} realm`);
    if (expect.priority) assert.equal(Buffer.from(attribute(message, Attr.Priority)!.value).toString('hex'), expect.priority);
    if (expect.iceControlled) assert.equal(Buffer.from(attribute(message, Attr.IceControlled)!.value).toString('hex'), expect.iceControlled);
    if (expect.xorMappedAddress) {
      const mapped = decodeXorAddress(attribute(message, Attr.XorMappedAddress)!.value, message.transactionId);
      assert.deepEqual(mapped, { host: expect.xorMappedAddress.address, port: expect.xorMappedAddress.port }, `${name} mapped address`);
    }
    const integrity = expect.integrity;
    const key = integrity.shortTermPassword
      ? shortTermKey(integrity.shortTermPassword)
      : longTermKey(integrity.longTerm.username, integrity.longTerm.realm, integrity.longTerm.password);
    assert.equal(integrityValid(bytes, message, key), true, `${name} integrity`);
    assert.equal(integrityValid(bytes, message, shortTermKey('wrong password')), false, `${name} integrity with a wrong key`);
    assert.equal(fingerprintValid(bytes, message), expect.fingerprint, `${name} fingerprint`);
    if (expect.fingerprint) {
      const altered = new Uint8Array(bytes);
      altered[30] ^= 1;
      assert.equal(fingerprintValid(altered, decodeStun(altered)), false, `${name} fingerprint of an altered message`);
    }
  }
});

test('a Binding success response we build carries the mapped address and checks the same way', () => {
  const transactionId = new Uint8Array(12).fill(7);
  for (const mapped of [{ host: '198.18.0.7', port: 40000 }, { host: '2001:db8::7', port: 5 }]) {
    const key = shortTermKey('VOkJxbRl1RmTxUk/WvJxBt');
    const bytes = seal(encodeStun(StunMethod.Binding, StunClass.Success, transactionId, [{ type: Attr.XorMappedAddress, value: encodeXorAddress(mapped, transactionId) }]), key);
    const message = decodeStun(bytes);
    assert.equal(message.klass, StunClass.Success);
    assert.deepEqual(decodeXorAddress(attribute(message, Attr.XorMappedAddress)!.value, transactionId), mapped);
    assert.ok(integrityValid(bytes, message, key));
    assert.ok(fingerprintValid(bytes, message));
    assert.equal(bytes[0] <= 0x03, true, 'STUN shares the overlay port by its first byte');
  }
});

test('malformed STUN is refused with a StunError, never anything else', () => {
  const good = bytesOf('2.2-ipv4-response.hex');
  const cases = [good.subarray(0, 19), good.subarray(0, good.length - 2), Uint8Array.from([0xc0, ...good.subarray(1)]), Uint8Array.from([...good.subarray(0, 4), 0, 0, 0, 0, ...good.subarray(8)])];
  for (const bad of cases) assert.throws(() => decodeStun(bad), StunError);
  const lying = new Uint8Array(good);
  lying[22] = 0xff; // SOFTWARE claims more bytes than the message has
  assert.throws(() => decodeStun(lying), StunError);
});

test('integrity checks a message carried inside a larger datagram (a Buffer view, as a relay unwraps it) and leaves its bytes alone', () => {
  let checked = 0;
  for (const [, { file, expect }] of Object.entries(expected)) {
    const password = expect.integrity?.shortTermPassword;
    if (!password) continue;
    const inner = bytesOf(file);
    const outer = Buffer.concat([Buffer.alloc(36, 0xaa), Buffer.from(inner), Buffer.alloc(8, 0xbb)]);
    const view = outer.subarray(36, 36 + inner.length);
    const before = Buffer.from(outer);
    assert.ok(integrityValid(view, decodeStun(view), shortTermKey(password)));
    assert.ok(fingerprintValid(view, decodeStun(view)));
    assert.deepEqual(outer, before, 'checking wrote nothing into the datagram');
    checked++;
  }
  assert.equal(checked, 3);
});
