import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/*
 * Ed25519 identity keys from node:crypto. Keys are made from a 32-byte seed so that the
 * simulator, given a seeded Random, builds the same identities on every run.
 */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

export interface KeyPair {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject;
}

export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  if (seed.length !== 32) throw new RangeError('an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { seed, publicKey: new Uint8Array(spki.subarray(SPKI_ED25519_PREFIX.length)), privateKey };
}

export function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function signBytes(keys: KeyPair, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, keys.privateKey));
}

export function verifyBytes(publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    return verify(null, data, publicKey, signature);
  } catch {
    return false;
  }
}
