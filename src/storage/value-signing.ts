import type { Certificate } from '../identity/certificate.js';
import type { NodeIdentity } from '../identity/identity.js';
import type { SignatureSuite } from '../identity/signature-suite.js';
import type { TrustPolicy } from '../identity/trust.js';
import { P2psipError } from '../runtime/errors.js';
import type { Id } from '../wire/id.js';
import { type StoredData, type StoredEntry, storedSignatureInput } from '../wire/messages/stored-data.js';

/** RFC 6940 s7.1: every stored value carries its storer's signature. */
export class ValueSignatureError extends P2psipError {
  override readonly name = 'ValueSignatureError';
}

export function signValue(
  suite: SignatureSuite,
  identity: NodeIdentity,
  resource: Id,
  kind: number,
  entry: StoredEntry,
  storageTime: bigint,
  lifetime: number,
): StoredData {
  const unsigned = { storageTime, lifetime, entry };
  const signature = suite.sign(identity.keys, storedSignatureInput(resource, kind, unsigned));
  return { ...unsigned, certificate: identity.certificate.bytes, signature };
}

/** Checks the certificate and signature of a stored value; returns the signer's certificate. */
export function verifyValue(suite: SignatureSuite, trust: TrustPolicy, resource: Id, kind: number, data: StoredData, nowSeconds: number): Certificate {
  const cert = trust.accept(data.certificate, nowSeconds);
  if (!suite.verify(cert, storedSignatureInput(resource, kind, data), data.signature)) {
    throw new ValueSignatureError('stored value signature does not verify');
  }
  return cert;
}
