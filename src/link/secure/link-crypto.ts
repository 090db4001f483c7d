import { MAX_SEALED_COUNTER } from '../../wire/link-security.js';
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';

/*
 * The link's cryptography, all from node:crypto: X25519 ephemeral keys (made from injected
 * random bytes, so the simulator replays), HKDF-SHA256 for the two directional keys, and
 * ChaCha20-Poly1305 (RFC 8439) with a per-direction counter as the nonce.
 */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const TAG_BYTES = 16;

export interface EphemeralKey {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
}

export function ephemeralFromBytes(secret: Uint8Array): EphemeralKey {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, secret]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: new Uint8Array(spki.subarray(SPKI_X25519_PREFIX.length)) };
}

export interface DirectionalKeys {
  readonly initiatorToResponder: Uint8Array;
  readonly responderToInitiator: Uint8Array;
  /** A third key, for secrets exported beside the link (exportedSecret); HKDF gives the first two as before. */
  readonly exporter: Uint8Array;
}

/**
 * X25519, then HKDF over the shared secret with both sessions as salt and, as info, both keys and
 * the hash of the transcript (both certificates), so agreeing on keys means agreeing on who is who.
 */
export function deriveLinkKeys(
  own: EphemeralKey,
  peerPublic: Uint8Array,
  initiatorSession: Uint8Array,
  responderSession: Uint8Array,
  initiatorEphemeral: Uint8Array,
  responderEphemeral: Uint8Array,
  transcript: Uint8Array,
): DirectionalKeys {
  const shared = sharedSecret(own, peerPublic);
  const salt = Buffer.concat([initiatorSession, responderSession]);
  const transcriptHash = createHash('sha256').update(transcript).digest();
  const info = Buffer.concat([Buffer.from('p2psip link keys v2'), initiatorEphemeral, responderEphemeral, transcriptHash]);
  const okm = new Uint8Array(hkdfSync('sha256', shared, salt, info, 96));
  return { initiatorToResponder: okm.subarray(0, 32), responderToInitiator: okm.subarray(32, 64), exporter: okm.subarray(64, 96) };
}

/** X25519 with the peer's 32-byte public key; throws for one that is none, or of small order. */
export function sharedSecret(own: EphemeralKey, peerPublic: Uint8Array): Buffer {
  if (peerPublic.length !== 32) throw new RangeError(`an X25519 key has 32 bytes, not ${peerPublic.length}`);
  const peerKey = createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, peerPublic]), format: 'der', type: 'spki' });
  const shared = diffieHellman({ privateKey: own.privateKey, publicKey: peerKey });
  // RFC 7748 s6.1: an all-zero result means the peer sent a small-order point.
  if (shared.every((b) => b === 0)) throw new RangeError('X25519 gave the all-zero secret');
  return shared;
}

/**
 * A secret for `label` that both ends of a session derive from its exporter key, for proofs beside
 * the link (never the keys that seal it). No one else can: the key never leaves the two ends, not
 * even to a host that passed the handshake along.
 */
export function exportedSecret(exporter: Uint8Array, label: string): Uint8Array {
  return new Uint8Array(createHmac('sha256', exporter).update(label).digest());
}

function nonceFor(counter: number): Buffer {
  if (!(counter >= 0 && counter <= MAX_SEALED_COUNTER)) throw new RangeError(`nonce counter out of range: ${counter}`);
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(counter, 6, 6);
  return nonce;
}

/** A 16-byte MAC (HMAC-SHA256, truncated) for the responder's stateless cookies. */
export function cookieMac(secret: Uint8Array, input: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', secret).update(input).digest().subarray(0, 16));
}

/** Seals `plaintext` under `key` with the counter as nonce; `aad` binds the frame's header. */
export function sealBytes(key: Uint8Array, counter: number, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const cipher = createCipheriv('chacha20-poly1305', key, nonceFor(counter), { authTagLength: TAG_BYTES });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  cipher.final();
  return new Uint8Array(Buffer.concat([body, cipher.getAuthTag()]));
}

/** Opens a sealed body, or returns undefined when the tag does not verify (or the counter cannot be a nonce). */
export function openBytes(key: Uint8Array, counter: number, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < TAG_BYTES || !(counter >= 0 && counter <= MAX_SEALED_COUNTER)) return undefined;
  const decipher = createDecipheriv('chacha20-poly1305', key, nonceFor(counter), { authTagLength: TAG_BYTES });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  decipher.setAAD(aad, { plaintextLength: sealed.length - TAG_BYTES });
  const body = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return new Uint8Array(body);
}
