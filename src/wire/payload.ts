import { encodeCbor } from './cbor.js';
import { readArray, readBytes } from './schema.js';
import { decodeCbor } from './cbor.js';
import { MAX_MESSAGE_BYTES } from './message.js';

/*
 * The end-to-end part of a message: the message body and the sender's security block
 * (RFC 6940 s6.3.4): its certificate and its signature over the signature input below.
 *
 *   payload = [ body: bstr, certificate: bstr, signature: bstr ]
 */
export interface Payload {
  readonly body: Uint8Array;
  readonly certificate: Uint8Array;
  readonly signature: Uint8Array;
}

export const MAX_CERTIFICATE_BYTES = 2048;
export const MAX_SIGNATURE_BYTES = 128;

export function encodePayload(p: Payload): Uint8Array {
  return encodeCbor([p.body, p.certificate, p.signature]);
}

export function decodePayload(bytes: Uint8Array): Payload {
  const path = '$.payload';
  const [body, certificate, signature] = readArray(decodeCbor(bytes, MAX_MESSAGE_BYTES, path), path, 3, 3);
  return {
    body: readBytes(body, `${path}.body`, 0, MAX_MESSAGE_BYTES),
    certificate: readBytes(certificate, `${path}.certificate`, 1, MAX_CERTIFICATE_BYTES),
    signature: readBytes(signature, `${path}.signature`, 1, MAX_SIGNATURE_BYTES),
  };
}

/**
 * What the sender signs: deterministic CBOR of the fields a forwarder must not change.
 * The via and destination lists and the TTL are left out because forwarders rewrite them
 * (RFC 6940 s6.3.4 signs the same set).
 *
 *   signature-input = ["p2psip-message", overlay, transaction-id, code, body]
 */
export function signatureInput(overlay: number, transactionId: Uint8Array, code: number, body: Uint8Array): Uint8Array {
  return encodeCbor(['p2psip-message', overlay, transactionId, code, body]);
}
