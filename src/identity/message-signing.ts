import { P2psipError } from '../runtime/errors.js';
import { type Id } from '../wire/id.js';
import { decodePayload, encodePayload, signatureInput } from '../wire/payload.js';
import type { Certificate } from './certificate.js';
import type { NodeIdentity } from './identity.js';
import type { SignatureSuite } from './signature-suite.js';
import type { TrustPolicy } from './trust.js';

/** A message whose signature or certificate does not hold; it is dropped before any state changes. */
export class SignatureError extends P2psipError {
  override readonly name = 'SignatureError';
}

export interface SignedFields {
  readonly overlay: number;
  readonly transactionId: Uint8Array;
  readonly code: number;
}

/** RFC 6940 s6.3.4: every message carries its sender's certificate and signature. */
export function sealPayload(suite: SignatureSuite, identity: NodeIdentity, fields: SignedFields, body: Uint8Array): Uint8Array {
  const signature = suite.sign(identity.keys, signatureInput(fields.overlay, fields.transactionId, fields.code, body));
  return encodePayload({ body, certificate: identity.certificate.bytes, signature });
}

export interface OpenedPayload {
  readonly body: Uint8Array;
  readonly certificate: Certificate;
}

/**
 * Verifies a received payload: a believable certificate, a valid signature over the signed
 * fields, and (when the claimed sender is known from the via list) a sender whose Node-ID the
 * certificate holds. Throws DecodeError, CertificateError or SignatureError.
 */
export function openPayload(
  suite: SignatureSuite,
  trust: TrustPolicy,
  fields: SignedFields,
  payload: Uint8Array,
  claimedSender: Id | undefined,
  nowSeconds: number,
): OpenedPayload {
  const { body, certificate, signature } = decodePayload(payload);
  const cert = trust.accept(certificate, nowSeconds);
  if (!suite.verify(cert, signatureInput(fields.overlay, fields.transactionId, fields.code, body), signature)) {
    throw new SignatureError('message signature does not verify');
  }
  if (claimedSender !== undefined && !cert.claims.nodeIds.includes(claimedSender)) {
    throw new SignatureError('sender Node-ID is not in its certificate');
  }
  return { body, certificate: cert };
}
