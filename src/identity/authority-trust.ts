import { type Certificate, CertificateError, certificateSignatureValid, parseCertificate } from './certificate.js';
import { keyFingerprint } from './ids.js';
import { publicKeyObject } from './keys.js';
import { CachingTrustPolicy } from './trust.js';
import type { KeyObject } from 'node:crypto';

/** An enrollment authority as the overlay's configuration names it. */
export interface Authority {
  /** The issuer name its certificates carry. */
  readonly name: string;
  readonly publicKey: Uint8Array;
  /** DNS-style domains it may issue user names under (RFC 6940 s11: one overlay, several issuers). */
  readonly domains: readonly string[];
}

export interface TrustAnchors {
  readonly authorities: readonly Authority[];
  /** Key fingerprints (keyFingerprint) whose certificates are no longer believed. */
  readonly revoked: readonly string[];
}

/** True when `user@host` falls under `domain` (the domain itself or a subdomain of it). */
export function userInDomain(user: string, domain: string): boolean {
  const at = user.lastIndexOf('@');
  if (at < 1) return false;
  const host = user.slice(at + 1).toLowerCase();
  const d = domain.toLowerCase();
  return host === d || host.endsWith(`.${d}`);
}

/**
 * An enrolled overlay: a certificate is believed when one of the configured authorities signed
 * it, the user name lies in that authority's domains, its key is not revoked and it is valid now.
 * Node-IDs are whatever the authority assigned; nobody can pick their place on the ring.
 */
export class AuthorityTrustPolicy extends CachingTrustPolicy {
  readonly mode = 'authority' as const;
  private issuers = new Map<string, { authority: Authority; key: KeyObject }>();
  private revoked = new Set<string>();

  constructor(overlay: string, anchors: TrustAnchors, cacheLimit = 1024) {
    super(overlay, cacheLimit);
    this.update(anchors);
  }

  /** A newer configuration replaces the anchors; certificates are checked afresh. */
  update(anchors: TrustAnchors): void {
    this.issuers = new Map(anchors.authorities.map((a) => [a.name, { authority: a, key: publicKeyObject(a.publicKey) }]));
    this.revoked = new Set(anchors.revoked);
    this.forget();
  }

  isRevoked(publicKey: Uint8Array): boolean {
    return this.revoked.has(keyFingerprint(publicKey));
  }

  protected verify(bytes: Uint8Array): Certificate {
    const parsed = parseCertificate(bytes);
    const { claims } = parsed;
    if (claims.overlay !== this.overlay) throw new CertificateError(`certificate is for overlay ${claims.overlay}`);
    const issuer = this.issuers.get(claims.issuer);
    if (!issuer) throw new CertificateError(`certificate issued by ${claims.issuer}, not an authority of this overlay`);
    if (!certificateSignatureValid(parsed, issuer.key)) throw new CertificateError('certificate signature does not verify');
    if (!issuer.authority.domains.some((d) => userInDomain(claims.subject, d))) {
      throw new CertificateError(`${claims.issuer} may not issue names like ${claims.subject}`);
    }
    if (this.isRevoked(claims.publicKey)) throw new CertificateError(`certificate of ${claims.subject} is revoked`);
    return { claims, bytes, publicKey: publicKeyObject(claims.publicKey) };
  }
}
