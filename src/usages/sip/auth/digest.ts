import { createHash, createHmac } from 'node:crypto';
import { textEqualInConstantTime } from '../../../runtime/constant-time.js';

/*
 * HTTP Digest as SIP uses it (RFC 3261 s22.4), with the algorithms of RFC 8760: MD5 for the
 * phones that know nothing else, SHA-256 preferred. Only HA1 = H(user:realm:password) is ever
 * stored, so a stolen user file does not give away passwords for other realms.
 */
export type DigestAlgorithm = 'MD5' | 'SHA-256';
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-256', 'MD5'];

function hash(algorithm: DigestAlgorithm, text: string): string {
  return createHash(algorithm === 'MD5' ? 'md5' : 'sha256').update(text, 'utf8').digest('hex');
}

export function ha1(algorithm: DigestAlgorithm, user: string, realm: string, password: string): string {
  return hash(algorithm, `${user}:${realm}:${password}`);
}

export interface DigestResponseInput {
  readonly algorithm: DigestAlgorithm;
  readonly ha1: string;
  readonly method: string;
  readonly uri: string;
  readonly nonce: string;
  /** qop=auth: with nc and cnonce; without qop, the RFC 2069 form. */
  readonly qop?: 'auth';
  readonly nc?: string;
  readonly cnonce?: string;
}

/** The `response` value a client computes and the server recomputes (RFC 2617 s3.2.2.1). */
export function digestResponse(input: DigestResponseInput): string {
  const ha2 = hash(input.algorithm, `${input.method}:${input.uri}`);
  return input.qop
    ? hash(input.algorithm, `${input.ha1}:${input.nonce}:${input.nc}:${input.cnonce}:${input.qop}:${ha2}`)
    : hash(input.algorithm, `${input.ha1}:${input.nonce}:${ha2}`);
}

export function sameDigest(a: string, b: string): boolean {
  return textEqualInConstantTime(a.toLowerCase(), b.toLowerCase());
}

/**
 * Stateless nonces: time and an HMAC over it with a per-process secret, so the registrar keeps
 * no table and can still tell its own fresh nonces from forged or stale ones (s22.1 leaves the
 * nonce's form to the server).
 */
export class NonceIssuer {
  /** Tells apart nonces issued in one millisecond, whose counts would otherwise be shared (RFC 7616 s3.4.5). */
  private issued = 0;

  constructor(
    private readonly secret: Uint8Array,
    private readonly lifetimeMs: number,
  ) {}

  issue(nowMs: number): string {
    this.issued = (this.issued + 1) % 0x100000000;
    const stamp = `${Math.floor(nowMs).toString(36)}-${this.issued.toString(36)}`;
    return `${stamp}.${this.mac(stamp)}`;
  }

  /** 'fresh', 'stale' (ours, but too old: the client retries without asking the user, s22.4) or 'forged'. */
  check(nonce: string, nowMs: number): 'fresh' | 'stale' | 'forged' {
    const dot = nonce.indexOf('.');
    if (dot <= 0) return 'forged';
    const stamp = nonce.slice(0, dot);
    if (!sameDigest(nonce.slice(dot + 1), this.mac(stamp))) return 'forged';
    const issued = parseInt(stamp.slice(0, stamp.indexOf('-')), 36);
    if (!Number.isFinite(issued) || issued > nowMs + 1000) return 'forged';
    return nowMs - issued > this.lifetimeMs ? 'stale' : 'fresh';
  }

  private mac(text: string): string {
    return createHmac('sha256', this.secret).update(text).digest('base64url').slice(0, 22);
  }
}
