import { createHash, createHmac } from 'node:crypto';
import { bytesEqualInConstantTime } from '../../runtime/constant-time.js';
import { crc32 } from '../../runtime/crc32.js';
import { Attr, HEADER_BYTES, type StunMessage } from './message.js';

/*
 * MESSAGE-INTEGRITY (RFC 8489 s14.5: HMAC-SHA1 over the message up to the attribute, with the
 * header's length counting up to and including it) and FINGERPRINT (s14.7: CRC-32 of the
 * message up to it, XOR 0x5354554e). Keys: short-term credentials use the password itself,
 * long-term ones MD5(username ":" realm ":" password) (s9.2.2). Passwords are taken as already
 * prepared with OpaqueString (the caller's business, as for RFC 5769's vectors).
 */
const FINGERPRINT_XOR = 0x5354554e;

export function shortTermKey(password: string): Uint8Array {
  return new TextEncoder().encode(password);
}

export function longTermKey(username: string, realm: string, password: string): Uint8Array {
  return new Uint8Array(createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest());
}

/** The bytes up to `offset` with the header length set as if the message ended `tail` bytes after it. */
function covered(bytes: Uint8Array, offset: number, tail: number): Uint8Array {
  // A real copy: `bytes` may be a Buffer (whose slice is a view) inside a larger datagram.
  const copy = new Uint8Array(offset);
  copy.set(bytes.subarray(0, offset));
  new DataView(copy.buffer).setUint16(2, offset - HEADER_BYTES + tail);
  return copy;
}

export function integrityValid(bytes: Uint8Array, message: StunMessage, key: Uint8Array): boolean {
  const mi = message.attributes.find((a) => a.type === Attr.MessageIntegrity);
  if (!mi || mi.value.length !== 20) return false;
  const expected = createHmac('sha1', key).update(covered(bytes, mi.offset, 24)).digest();
  return bytesEqualInConstantTime(expected, mi.value);
}

export function fingerprintValid(bytes: Uint8Array, message: StunMessage): boolean {
  const fp = message.attributes.find((a) => a.type === Attr.Fingerprint);
  if (!fp || fp.value.length !== 4 || fp !== message.attributes[message.attributes.length - 1]) return false;
  const expected = (crc32(covered(bytes, fp.offset, 8)) ^ FINGERPRINT_XOR) >>> 0;
  return new DataView(fp.value.buffer, fp.value.byteOffset, 4).getUint32(0) === expected;
}

/** Appends MESSAGE-INTEGRITY (when a key is given) and FINGERPRINT to an encoded message. */
export function seal(bytes: Uint8Array, key?: Uint8Array): Uint8Array {
  let out = bytes;
  if (key) {
    const mac = createHmac('sha1', key).update(covered(out, out.length, 24)).digest();
    out = append(out, Attr.MessageIntegrity, new Uint8Array(mac));
  }
  const fp = new Uint8Array(4);
  new DataView(fp.buffer).setUint32(0, (crc32(covered(out, out.length, 8)) ^ FINGERPRINT_XOR) >>> 0);
  return append(out, Attr.Fingerprint, fp);
}

function append(bytes: Uint8Array, type: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length + 4 + value.length);
  out.set(bytes, 0);
  const view = new DataView(out.buffer);
  view.setUint16(bytes.length, type);
  view.setUint16(bytes.length + 2, value.length);
  out.set(value, bytes.length + 4);
  view.setUint16(2, out.length - HEADER_BYTES);
  return out;
}
