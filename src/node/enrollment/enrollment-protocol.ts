import { createHmac } from 'node:crypto';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from '../../identity/keys.js';
import { decodeCbor, encodeCbor } from '../../wire/cbor.js';
import { DecodeError } from '../../wire/decode-error.js';
import { readArray, readBytes, readOneOf, readText, readUint } from '../../wire/schema.js';
import { INVITATION_ID_BYTES } from './invitation.js';

/*
 * Enrollment (RFC 6940 s11.3 does it over HTTPS; we use one CBOR request and one CBOR answer
 * over TCP on the overlay's port number, each framed by a 4-byte length):
 *   enroll-req = [1, invitation-id, public-key, nonce, proof, mac]
 *       proof = Ed25519 by the new key over ["p2psip-enroll", invitation-id, public-key, nonce]
 *       mac   = HMAC-SHA256(secret, ["p2psip-enroll", invitation-id, public-key, nonce, proof])
 *   renew-req  = [2, certificate, nonce, proof, time]   proof by the certified key over ["p2psip-renew", certificate, nonce, time]
 *       time: the renewer's clock, seconds; the authority takes it within RENEW_MAX_SKEW_SECONDS and
 *       remembers each nonce for that long, so a captured renewal cannot be replayed
 *   user-req   = [3, certificate, user, user-key, nonce, time, proof]   a home asks for a certificate for
 *       one of its household's users; proof by the home's certified key over
 *       ["p2psip-user", certificate, user, user-key, nonce, time]; time and nonce as for renew-req
 *   release-req = [4, certificate, user, nonce, time, proof]   a home gives up one of its users (`user
 *       remove`): the name is free for anyone, the user's certificates are revoked; proof by the
 *       home's certified key over ["p2psip-release", certificate, user, nonce, time]
 *   answer     = [0, certificate, config, mac / null]   mac = HMAC(secret, ["p2psip-enrolled", nonce, certificate, config])
 *              / [1, reason]
 *              / [2, config]   released: the configuration that now revokes the user's certificates
 */
export const ENROLL = 1;
export const RENEW = 2;
export const USER = 3;
export const RELEASE = 4;
export const MAX_ENROLLMENT_MESSAGE = 32 * 1024;
const NONCE_BYTES = 16;

export interface EnrollRequest {
  readonly type: typeof ENROLL;
  readonly invitationId: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly nonce: Uint8Array;
  readonly proof: Uint8Array;
  readonly mac: Uint8Array;
}

export interface RenewRequest {
  readonly type: typeof RENEW;
  readonly certificate: Uint8Array;
  readonly nonce: Uint8Array;
  readonly proof: Uint8Array;
  /** The renewer's clock, seconds. */
  readonly time: number;
}

export interface UserRequest {
  readonly type: typeof USER;
  /** The asking home's own certificate. */
  readonly certificate: Uint8Array;
  /** The user's local name ("grandpa"). */
  readonly user: string;
  /** The key the user's certificate is to certify: made by the home, never leaves it. */
  readonly userKey: Uint8Array;
  readonly nonce: Uint8Array;
  readonly time: number;
  readonly proof: Uint8Array;
}

export interface ReleaseRequest {
  readonly type: typeof RELEASE;
  /** The releasing home's own certificate. */
  readonly certificate: Uint8Array;
  /** The user's local name ("erin"). */
  readonly user: string;
  readonly nonce: Uint8Array;
  readonly time: number;
  readonly proof: Uint8Array;
}

export type EnrollmentRequest = EnrollRequest | RenewRequest | UserRequest | ReleaseRequest;

export type IssuedAnswer = { readonly ok: true; readonly certificate: Uint8Array; readonly config: Uint8Array; readonly mac: Uint8Array | null };
export type ReleasedAnswer = { readonly ok: 'released'; readonly config: Uint8Array };
export type RefusedAnswer = { readonly ok: false; readonly reason: string };
export type EnrollmentAnswer = IssuedAnswer | ReleasedAnswer | RefusedAnswer;

/** The answer to a request for a certificate: issued, or refused with the reason (anything else is refused). */
export function issuedOrRefused(answer: EnrollmentAnswer): IssuedAnswer | RefusedAnswer {
  return answer.ok === 'released' ? { ok: false, reason: 'the authority answered another request' } : answer;
}

export const enrollProofInput = (id: Uint8Array, publicKey: Uint8Array, nonce: Uint8Array): Uint8Array => encodeCbor(['p2psip-enroll', id, publicKey, nonce]);
export const renewProofInput = (certificate: Uint8Array, nonce: Uint8Array, time: number): Uint8Array => encodeCbor(['p2psip-renew', certificate, nonce, time]);
export const userProofInput = (certificate: Uint8Array, user: string, userKey: Uint8Array, nonce: Uint8Array, time: number): Uint8Array =>
  encodeCbor(['p2psip-user', certificate, user, userKey, nonce, time]);
export const releaseProofInput = (certificate: Uint8Array, user: string, nonce: Uint8Array, time: number): Uint8Array => encodeCbor(['p2psip-release', certificate, user, nonce, time]);
export const RENEW_MAX_SKEW_SECONDS = 600;

export function enrollMac(secret: Uint8Array, id: Uint8Array, publicKey: Uint8Array, nonce: Uint8Array, proof: Uint8Array): Uint8Array {
  return hmac(secret, encodeCbor(['p2psip-enroll', id, publicKey, nonce, proof]));
}

export function answerMac(secret: Uint8Array, nonce: Uint8Array, certificate: Uint8Array, config: Uint8Array): Uint8Array {
  return hmac(secret, encodeCbor(['p2psip-enrolled', nonce, certificate, config]));
}

function hmac(secret: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', secret).update(data).digest());
}

export function encodeRequest(r: EnrollmentRequest): Uint8Array {
  if (r.type === ENROLL) return encodeCbor([ENROLL, r.invitationId, r.publicKey, r.nonce, r.proof, r.mac]);
  if (r.type === USER) return encodeCbor([USER, r.certificate, r.user, r.userKey, r.nonce, r.time, r.proof]);
  if (r.type === RELEASE) return encodeCbor([RELEASE, r.certificate, r.user, r.nonce, r.time, r.proof]);
  return encodeCbor([RENEW, r.certificate, r.nonce, r.proof, r.time]);
}

export function decodeRequest(bytes: Uint8Array): EnrollmentRequest {
  const path = '$.enrollment';
  const items = readArray(decodeCbor(bytes, MAX_ENROLLMENT_MESSAGE, path), path, 5, 7);
  const type = readOneOf(items[0], `${path}.type`, [ENROLL, RENEW, USER, RELEASE]);
  if (type === RELEASE) {
    if (items.length !== 6) throw new DecodeError(path, 'a release request has 6 items');
    return {
      type,
      certificate: readBytes(items[1], `${path}.certificate`, 1, 4096),
      user: readText(items[2], `${path}.user`, 64),
      nonce: readBytes(items[3], `${path}.nonce`, NONCE_BYTES, NONCE_BYTES),
      time: readUint(items[4], `${path}.time`, Number.MAX_SAFE_INTEGER),
      proof: readBytes(items[5], `${path}.proof`, SIGNATURE_BYTES, SIGNATURE_BYTES),
    };
  }
  if (type === USER) {
    if (items.length !== 7) throw new DecodeError(path, 'a user request has 7 items');
    return {
      type,
      certificate: readBytes(items[1], `${path}.certificate`, 1, 4096),
      user: readText(items[2], `${path}.user`, 64),
      userKey: readBytes(items[3], `${path}.userKey`, PUBLIC_KEY_BYTES, PUBLIC_KEY_BYTES),
      nonce: readBytes(items[4], `${path}.nonce`, NONCE_BYTES, NONCE_BYTES),
      time: readUint(items[5], `${path}.time`, Number.MAX_SAFE_INTEGER),
      proof: readBytes(items[6], `${path}.proof`, SIGNATURE_BYTES, SIGNATURE_BYTES),
    };
  }
  if (type === ENROLL) {
    if (items.length !== 6) throw new DecodeError(path, 'an enroll request has 6 items');
    return {
      type,
      invitationId: readBytes(items[1], `${path}.id`, INVITATION_ID_BYTES, INVITATION_ID_BYTES),
      publicKey: readBytes(items[2], `${path}.key`, PUBLIC_KEY_BYTES, PUBLIC_KEY_BYTES),
      nonce: readBytes(items[3], `${path}.nonce`, NONCE_BYTES, NONCE_BYTES),
      proof: readBytes(items[4], `${path}.proof`, SIGNATURE_BYTES, SIGNATURE_BYTES),
      mac: readBytes(items[5], `${path}.mac`, 32, 32),
    };
  }
  if (items.length !== 5) throw new DecodeError(path, 'a renew request has 5 items');
  return {
    type,
    certificate: readBytes(items[1], `${path}.certificate`, 1, 4096),
    nonce: readBytes(items[2], `${path}.nonce`, NONCE_BYTES, NONCE_BYTES),
    proof: readBytes(items[3], `${path}.proof`, SIGNATURE_BYTES, SIGNATURE_BYTES),
    time: readUint(items[4], `${path}.time`, Number.MAX_SAFE_INTEGER),
  };
}

export function encodeAnswer(a: EnrollmentAnswer): Uint8Array {
  if (a.ok === 'released') return encodeCbor([2, a.config]);
  return a.ok ? encodeCbor([0, a.certificate, a.config, a.mac]) : encodeCbor([1, a.reason]);
}

export function decodeAnswer(bytes: Uint8Array): EnrollmentAnswer {
  const path = '$.enrollmentAnswer';
  const items = readArray(decodeCbor(bytes, MAX_ENROLLMENT_MESSAGE, path), path, 2, 4);
  const status = readOneOf(items[0], `${path}.status`, [0, 1, 2]);
  if (status === 1) return { ok: false, reason: readText(items[1], `${path}.reason`, 512) };
  if (status === 2) {
    if (items.length !== 2) throw new DecodeError(path, 'a release answer has 2 items');
    return { ok: 'released', config: readBytes(items[1], `${path}.config`, 1, MAX_ENROLLMENT_MESSAGE) };
  }
  if (items.length !== 4) throw new DecodeError(path, 'an answer has 4 items');
  return {
    ok: true,
    certificate: readBytes(items[1], `${path}.certificate`, 1, 4096),
    config: readBytes(items[2], `${path}.config`, 1, MAX_ENROLLMENT_MESSAGE),
    mac: items[3] === null ? null : readBytes(items[3], `${path}.mac`, 32, 32),
  };
}

export { NONCE_BYTES };
