import type { KeyObject } from 'node:crypto';
import { decodeCbor, encodeCbor } from '../wire/cbor.js';
import { DecodeError } from '../wire/decode-error.js';
import { readArray, readBytes } from '../wire/schema.js';
import { type KeyPair, SIGNATURE_BYTES, signBytes, verifyBytes } from './keys.js';

/*
 * COSE_Sign1 (RFC 9052 s4.2) with EdDSA, the envelope of certificates and of the overlay's
 * configuration document:
 *   [protected: bstr .cbor {1: -8}, unprotected: {}, payload: bstr, signature: bstr .size 64]
 */
const COSE_ALG_EDDSA = -8;
const PROTECTED_HEADER = encodeCbor(new Map([[1, COSE_ALG_EDDSA]]));

export interface OpenedSign1 {
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

/** COSE Sig_structure for Sign1 (RFC 9052 s4.4). */
function sigStructure(payload: Uint8Array): Uint8Array {
  return encodeCbor(['Signature1', PROTECTED_HEADER, new Uint8Array(0), payload]);
}

export function signSign1(payload: Uint8Array, keys: KeyPair): Uint8Array {
  return encodeCbor([PROTECTED_HEADER, new Map(), payload, signBytes(keys, sigStructure(payload))]);
}

/** Decodes the envelope; the signature is checked separately, once the signer's key is known. */
export function openSign1(bytes: Uint8Array, path: string, maxPayload: number): OpenedSign1 {
  const [protectedHeader, unprotected, payload, signature] = readArray(decodeCbor(bytes, maxPayload + 256, path), path, 4, 4);
  const header = readBytes(protectedHeader, `${path}.protected`, 1, 32);
  if (Buffer.compare(header, PROTECTED_HEADER) !== 0) throw new DecodeError(`${path}.protected`, 'only EdDSA is accepted');
  if (!(unprotected instanceof Map)) throw new DecodeError(`${path}.unprotected`, 'expected a map');
  return {
    payload: readBytes(payload, `${path}.payload`, 1, maxPayload),
    signature: readBytes(signature, `${path}.signature`, SIGNATURE_BYTES, SIGNATURE_BYTES),
  };
}

export function sign1Valid(opened: OpenedSign1, key: KeyObject): boolean {
  return verifyBytes(key, sigStructure(opened.payload), opened.signature);
}
