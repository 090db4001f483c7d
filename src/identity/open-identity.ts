import { selfIssueCertificate } from './certificate.js';
import type { NodeIdentity } from './identity.js';
import { keyPairFromSeed } from './keys.js';

/** One year: open-mode certificates are for labs; the enrollment issue brings renewal. */
export const OPEN_CERT_LIFETIME_SECONDS = 365 * 24 * 3600;

/** An identity for an open (authority-less) overlay, made from a 32-byte seed. */
export function createOpenIdentity(seed: Uint8Array, subject: string, overlay: string, nowSeconds: number): NodeIdentity {
  const keys = keyPairFromSeed(seed);
  const certificate = selfIssueCertificate(keys, subject, overlay, nowSeconds, OPEN_CERT_LIFETIME_SECONDS);
  return { nodeId: certificate.claims.nodeIds[0], keys, certificate };
}
