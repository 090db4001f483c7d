import { type Certificate, CertificateError, certificateSignatureValid, parseCertificate, SELF_ISSUER } from './certificate.js';
import { nodeIdFromPublicKey } from './ids.js';
import { publicKeyObject } from './keys.js';

/**
 * Decides which certificates to believe. Open mode accepts self-issued certificates whose
 * Node-ID is the hash of their key; the enrollment issue adds authority-issued ones.
 * Verified certificates are cached by their bytes, so a busy neighbour costs one check.
 */
export interface TrustPolicy {
  readonly mode: 'open' | 'authority';
  readonly overlay: string;
  /** Returns the certificate if it is believable at `nowSeconds`, or throws CertificateError. */
  accept(bytes: Uint8Array, nowSeconds: number): Certificate;
}

/** Whether `trust` believes the certificate at `nowSeconds` (verdicts are cached: a lookup, mostly). */
export function believes(trust: TrustPolicy, certificate: Uint8Array, nowSeconds: number): boolean {
  try {
    trust.accept(certificate, nowSeconds);
    return true;
  } catch {
    return false;
  }
}

/**
 * What every policy shares: verified certificates are cached by their bytes (a busy neighbour
 * costs one check), and validity in time is checked on every use.
 */
export abstract class CachingTrustPolicy implements TrustPolicy {
  abstract readonly mode: 'open' | 'authority';
  private readonly cache = new Map<string, Certificate>();

  /** `cacheLimit`: certificates remembered; a device talks to a few hundred peers at most. */
  constructor(
    readonly overlay: string,
    private readonly cacheLimit = 1024,
  ) {}

  accept(bytes: Uint8Array, nowSeconds: number): Certificate {
    const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
    let cert = this.cache.get(key);
    if (!cert) {
      cert = this.verify(new Uint8Array(bytes)); // own copy: `bytes` may view a whole datagram
      if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, cert);
    }
    const { claims } = cert;
    if (nowSeconds < claims.notBefore || nowSeconds > claims.expires) {
      throw new CertificateError(`certificate of ${claims.subject} is not valid now`);
    }
    return cert;
  }

  /** Forgets every verdict, when what makes a certificate believable has changed. */
  protected forget(): void {
    this.cache.clear();
  }

  /** Checks a certificate once, whatever the time; throws CertificateError. */
  protected abstract verify(bytes: Uint8Array): Certificate;
}

/** Open mode: self-issued certificates whose Node-ID is the hash of their key. */
export class OpenTrustPolicy extends CachingTrustPolicy {
  readonly mode = 'open' as const;

  protected verify(bytes: Uint8Array): Certificate {
    const parsed = parseCertificate(bytes);
    const { claims } = parsed;
    if (claims.overlay !== this.overlay) throw new CertificateError(`certificate is for overlay ${claims.overlay}`);
    if (claims.issuer !== SELF_ISSUER) throw new CertificateError('open overlays accept only self-issued certificates');
    const derived = nodeIdFromPublicKey(claims.publicKey);
    if (claims.nodeIds.length !== 1 || claims.nodeIds[0] !== derived) {
      throw new CertificateError('a self-issued Node-ID must be the hash of its key');
    }
    const publicKey = publicKeyObject(claims.publicKey);
    if (!certificateSignatureValid(parsed, publicKey)) throw new CertificateError('certificate signature does not verify');
    return { claims, bytes, publicKey };
  }
}
