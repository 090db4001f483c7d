import { P2psipError } from '../runtime/errors.js';
import { decodeCbor, encodeCbor } from '../wire/cbor.js';
import { DecodeError } from '../wire/decode-error.js';
import { type Id, idToBytes, readId } from '../wire/id.js';
import { readBytes, readList, readText, readUint } from '../wire/schema.js';
import { type OpenedSign1, openSign1, sign1Valid, signSign1 } from './cose-sign1.js';
import { type KeyPair, PUBLIC_KEY_BYTES, publicKeyObject } from './keys.js';
import { nodeIdFromPublicKey } from './ids.js';
import type { KeyObject } from 'node:crypto';

/*
 * A certificate is a COSE_Sign1 structure (RFC 9052 s4.2) whose payload is a CWT-style claims
 * map (RFC 8392) binding a user name, assigned Node-IDs, a public key, an overlay and a validity
 * period. Integer map keys keep it compact; private claims use keys below -65536 as RFC 8392
 * s4 allows. In open mode the subject signs its own certificate ("self-issued"); the enrollment
 * issue adds certificates issued by an overlay's enrollment authority.
 *
 *   certificate = [protected: bstr .cbor {1: -8}, unprotected: {}, payload: bstr .cbor claims,
 *                  signature: bstr .size 64]
 *   claims = {1: issuer, 2: subject, 4: expires, 5: not-before, 8: {1: {1: 1, -1: 6, -2: key}},
 *             -65537: overlay, -65538: [+ node-id], ? -65539: 1 / 2}   ; -65539: 1 a client, 2 a user
 *
 * A client (RFC 7890 s2) uses the overlay without routing or storing; peers refuse to let a
 * client certificate join the ring. A user certificate is a SIP user's credential that a home
 * peer holds to sign that user's registrations: it signs stored values only, never a link or a
 * message, and its Node-ID is its own, never the home peer's. The claim is absent for peers.
 */
export const SELF_ISSUER = 'self';
const CLAIM_ISSUER = 1;
const CLAIM_SUBJECT = 2;
const CLAIM_EXPIRES = 4;
const CLAIM_NOT_BEFORE = 5;
const CLAIM_CONFIRMATION = 8;
const CLAIM_OVERLAY = -65537;
const CLAIM_NODE_IDS = -65538;
const CLAIM_ROLE = -65539;
const ROLE_CLIENT = 1;
const ROLE_USER = 2;
const MAX_NODE_IDS = 8;

export interface CertificateClaims {
  readonly issuer: string;
  readonly subject: string;
  readonly nodeIds: readonly Id[];
  readonly publicKey: Uint8Array;
  readonly overlay: string;
  /** Seconds since the Unix epoch. */
  readonly notBefore: number;
  readonly expires: number;
  /** 'client' for a node that must not route or store, 'user' for a credential that signs values only; absent (a peer) otherwise. */
  readonly role?: 'client' | 'user';
}

export interface Certificate {
  readonly claims: CertificateClaims;
  /** The encoded certificate, exactly as signed and sent. */
  readonly bytes: Uint8Array;
  readonly publicKey: KeyObject;
}

export class CertificateError extends P2psipError {
  override readonly name = 'CertificateError';
}

function claimsMap(c: CertificateClaims): Map<number, unknown> {
  // Keys in RFC 8949 s4.2.1 order (by encoded bytes) so the encoding is deterministic.
  return new Map<number, unknown>([
    [CLAIM_ISSUER, c.issuer],
    [CLAIM_SUBJECT, c.subject],
    [CLAIM_EXPIRES, c.expires],
    [CLAIM_NOT_BEFORE, c.notBefore],
    [CLAIM_CONFIRMATION, new Map([[1, new Map<number, unknown>([[1, 1], [-1, 6], [-2, c.publicKey]])]])],
    [CLAIM_OVERLAY, c.overlay],
    [CLAIM_NODE_IDS, c.nodeIds.map(idToBytes)],
    ...(c.role ? [[CLAIM_ROLE, c.role === 'client' ? ROLE_CLIENT : ROLE_USER] as [number, unknown]] : []),
  ]);
}

export function issueCertificate(claims: CertificateClaims, issuerKeys: KeyPair): Certificate {
  const bytes = signSign1(encodeCbor(claimsMap(claims)), issuerKeys);
  return { claims, bytes, publicKey: publicKeyObject(claims.publicKey) };
}

/** Open mode: the node vouches for itself; its Node-ID is derived from its key. */
export function selfIssueCertificate(keys: KeyPair, subject: string, overlay: string, nowSeconds: number, lifetimeSeconds: number): Certificate {
  return issueCertificate(
    {
      issuer: SELF_ISSUER,
      subject,
      nodeIds: [nodeIdFromPublicKey(keys.publicKey)],
      publicKey: keys.publicKey,
      overlay,
      notBefore: nowSeconds - 60,
      expires: nowSeconds + lifetimeSeconds,
    },
    keys,
  );
}

interface ParsedCertificate extends OpenedSign1 {
  readonly claims: CertificateClaims;
}

export function parseCertificate(bytes: Uint8Array): ParsedCertificate {
  const path = '$.certificate';
  const opened = openSign1(bytes, path, 2048);
  const payloadBytes = opened.payload;
  const claimsValue = decodeCbor(payloadBytes, 2048, `${path}.claims`);
  if (!(claimsValue instanceof Map)) throw new DecodeError(`${path}.claims`, 'expected a map');
  const get = (key: number): unknown => {
    if (!claimsValue.has(key)) throw new DecodeError(`${path}.claims[${key}]`, 'missing claim');
    return claimsValue.get(key);
  };
  const confirmation = get(CLAIM_CONFIRMATION);
  const coseKey = confirmation instanceof Map ? confirmation.get(1) : undefined;
  if (!(coseKey instanceof Map) || coseKey.get(1) !== 1 || coseKey.get(-1) !== 6) {
    throw new DecodeError(`${path}.claims.cnf`, 'expected an Ed25519 OKP key');
  }
  return {
    claims: {
      issuer: readText(get(CLAIM_ISSUER), `${path}.claims.iss`, 256),
      subject: readText(get(CLAIM_SUBJECT), `${path}.claims.sub`, 256),
      expires: readUint(get(CLAIM_EXPIRES), `${path}.claims.exp`),
      notBefore: readUint(get(CLAIM_NOT_BEFORE), `${path}.claims.nbf`),
      publicKey: readBytes(coseKey.get(-2), `${path}.claims.cnf.x`, PUBLIC_KEY_BYTES, PUBLIC_KEY_BYTES),
      overlay: readText(get(CLAIM_OVERLAY), `${path}.claims.overlay`, 256),
      nodeIds: readList(get(CLAIM_NODE_IDS), `${path}.claims.nodeIds`, MAX_NODE_IDS, readId, 1),
      ...readRole(claimsValue.get(CLAIM_ROLE), `${path}.claims.role`),
    },
    ...opened,
  };
}

function readRole(value: unknown, path: string): { role?: 'client' | 'user' } {
  if (value === undefined) return {};
  if (value === ROLE_CLIENT) return { role: 'client' };
  if (value === ROLE_USER) return { role: 'user' };
  throw new DecodeError(path, 'unknown role');
}

/** Checks the issuer's signature on a parsed certificate. */
export function certificateSignatureValid(parsed: ParsedCertificate, issuerKey: KeyObject): boolean {
  return sign1Valid(parsed, issuerKey);
}

export { type ParsedCertificate };
