import { createHash } from 'node:crypto';
import type { Certificate } from './certificate.js';
import { type KeyPair, signBytes, verifyBytes } from './keys.js';

/**
 * How message signatures are made and checked. Devices always use Ed25519. The simulator may
 * choose `simulated`, a keyed hash that costs microseconds instead of the ~150 us of an Ed25519
 * check, so that runs of ten thousand nodes finish on one core; it proves only that a message
 * was not altered, not who made it, and is refused anywhere but the simulator.
 */
export interface SignatureSuite {
  readonly name: 'ed25519' | 'simulated';
  sign(keys: KeyPair, data: Uint8Array): Uint8Array;
  verify(certificate: Certificate, data: Uint8Array, signature: Uint8Array): boolean;
}

export const ed25519Suite: SignatureSuite = {
  name: 'ed25519',
  sign: (keys, data) => signBytes(keys, data),
  verify: (certificate, data, signature) => verifyBytes(certificate.publicKey, data, signature),
};

function simulatedTag(publicKey: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(publicKey).update(data).digest().subarray(0, 32));
}

export const simulatedSuite: SignatureSuite = {
  name: 'simulated',
  sign: (keys, data) => simulatedTag(keys.publicKey, data),
  verify: (certificate, data, signature) => Buffer.compare(simulatedTag(certificate.claims.publicKey, data), signature) === 0,
};
