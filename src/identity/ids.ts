import { createHash } from 'node:crypto';
import { type Id, idFromBytes } from '../wire/id.js';

/*
 * Resource-ID = the first 128 bits of SHA-256 of the resource name. RELOAD's CHORD-RELOAD uses
 * SHA-1 truncated to 128 bits (RFC 6940 s10.2); SHA-256 is the stronger hash at no extra cost.
 * An AOR sip:alice@o is stored at resourceId("alice@o") (RFC 7904 s3).
 */
export function resourceId(name: string): Id {
  return idFromBytes(createHash('sha256').update(name, 'utf8').digest());
}

/** In open mode a Node-ID is derived from the public key, so it cannot be picked freely. */
export function nodeIdFromPublicKey(publicKey: Uint8Array): Id {
  return idFromBytes(createHash('sha256').update('p2psip-node-id').update(publicKey).digest());
}

/** The 32-bit overlay identifier in every forwarding header (RFC 6940 s6.3.2: hash of the name). */
export function overlayHash(overlayName: string): number {
  return createHash('sha256').update(overlayName, 'utf8').digest().readUInt32BE(0);
}

/** A short, human-checkable fingerprint of a public key. */
export function keyFingerprint(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('base64url').slice(0, 16);
}
