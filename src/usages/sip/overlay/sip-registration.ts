import { decodeCbor, encodeCbor } from '../../../wire/cbor.js';
import { DecodeError } from '../../../wire/decode-error.js';
import { type Destination, decodeDestination, encodeDestination } from '../../../wire/message.js';
import { readArray, readList, readText, readUint } from '../../../wire/schema.js';

/*
 * The SIP-REGISTRATION value (RFC 7904 s3.1), in CBOR. A home peer stores, under H(AOR), one
 * dictionary entry per registering node: either a URI to send requests to, or (what a home peer
 * stores) a destination list that reaches the peer holding the phones' bindings.
 *
 *   sip-registration = [1, uri: tstr] / [2, contact-prefs: tstr, destinations: [+ destination]]
 */
export type SipRegistration =
  | { readonly type: 'uri'; readonly uri: string }
  | { readonly type: 'route'; readonly contactPrefs: string; readonly destinations: readonly Destination[] };

export function encodeSipRegistration(r: SipRegistration): Uint8Array {
  return encodeCbor(r.type === 'uri' ? [1, r.uri] : [2, r.contactPrefs, r.destinations.map(encodeDestination)]);
}

export function decodeSipRegistration(bytes: Uint8Array): SipRegistration {
  const path = '$.sipRegistration';
  const f = readArray(decodeCbor(bytes, 2048, path), path, 2, 3);
  switch (readUint(f[0], `${path}.type`)) {
    case 1:
      readArray(f, path, 2, 2);
      return { type: 'uri', uri: readText(f[1], `${path}.uri`, 1024) };
    case 2:
      readArray(f, path, 3, 3);
      return { type: 'route', contactPrefs: readText(f[1], `${path}.contactPrefs`, 1024), destinations: readList(f[2], `${path}.destinations`, 8, decodeDestination, 1) };
    default:
      throw new DecodeError(`${path}.type`, 'unknown registration type');
  }
}
