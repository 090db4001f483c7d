import type { Clock } from '../../../runtime/clock.js';
import { parseAuthParams } from '../message/auth-params.js';
import type { SipRequest, SipResponse } from '../message/sip-message.js';
import { SipError } from '../sip-error.js';
import { type DigestAlgorithm, digestResponse, type NonceIssuer, sameDigest } from './digest.js';
import { NonceCounts } from './nonce-counts.js';

/*
 * Digest authentication of one request (RFC 3261 s22), for the registrar (401, Authorization)
 * and the proxy (407, Proxy-Authorization) alike. Nonces are stateless (digest.ts); what is kept
 * is the highest nonce-count seen per nonce and cnonce (RFC 7616 s3.4.5), so a captured request
 * replayed, from anywhere, within the nonce's life is refused and challenged again.
 */
export interface Credentials {
  /** HA1 per algorithm for a user of this realm, or undefined for an unknown user. */
  lookup(user: string): Readonly<Record<DigestAlgorithm, string>> | undefined;
}

export type Challenge = { readonly status: 401 | 407; readonly header: 'WWW-Authenticate' | 'Proxy-Authenticate' };
export const REGISTRAR_CHALLENGE: Challenge = { status: 401, header: 'WWW-Authenticate' };
export const PROXY_CHALLENGE: Challenge = { status: 407, header: 'Proxy-Authenticate' };

export interface AuthCounters {
  authFailures: number;
  replays: number;
}

/** The last credentials that failed: whose, and why (what a family checks when a phone will not register). */
export interface AuthFailure {
  readonly user: string;
  readonly reason: 'wrong password' | 'no such user here';
  /** Wall-clock ms. */
  readonly at: number;
}

export class DigestAuthenticator {
  readonly counters: AuthCounters = { authFailures: 0, replays: 0 };
  lastFailure: AuthFailure | undefined;
  /** Told of each failure as it happens. */
  onFailure: (failure: AuthFailure) => void = () => {};
  private readonly counts: NonceCounts;

  constructor(
    private readonly credentials: Credentials,
    private readonly nonces: NonceIssuer,
    private readonly clock: Clock,
    private readonly realm: string,
    private readonly algorithms: readonly DigestAlgorithm[],
    nonceLifetimeMs: number,
  ) {
    this.counts = new NonceCounts(nonceLifetimeMs, 20_000);
  }

  /** The authenticated user, or whether a stale nonce was seen (the client may retry silently). */
  verify(request: SipRequest, challenge: Challenge): { user: string } | { user?: undefined; stale: boolean } {
    const now = this.clock.wallTime();
    const header = challenge.status === 401 ? 'Authorization' : 'Proxy-Authorization';
    let stale = false;
    for (const value of request.headers.getAll(header)) {
      const auth = parseAuthParams(value);
      const p = auth.params;
      if (auth.scheme.toLowerCase() !== 'digest' || p.get('realm') !== this.realm) continue;
      const algorithm = (p.get('algorithm') ?? 'MD5').toUpperCase() as DigestAlgorithm;
      if (!this.algorithms.includes(algorithm)) continue;
      const user = p.get('username');
      const nonce = p.get('nonce');
      const response = p.get('response');
      const uri = p.get('uri');
      if (!user || !uri) throw new SipError(400, 'incomplete credentials');
      // An empty nonce or response (3GPP TS 24.229's first REGISTER, which some ATAs send) asks for a challenge (s22.4).
      if (!nonce || !response) continue;
      const verdict = this.nonces.check(nonce, now);
      if (verdict === 'stale') {
        stale = true;
        continue;
      }
      const ha1 = this.credentials.lookup(user)?.[algorithm];
      const qop = p.get('qop');
      const nc = p.get('nc') ?? '';
      const cnonce = p.get('cnonce') ?? '';
      if (qop !== undefined && !/^[0-9a-f]{8}$/i.test(nc)) throw new SipError(400, 'malformed nonce-count (8 hex digits: RFC 7616 s3.4)');
      // The digest's uri is not compared with the Request-URI (RFC 2617 s3.2.2.5 would): SIPp puts
      // the server's address there, and the nonce-count already stops a captured request's reuse.
      const rightPassword = () =>
        sameDigest(digestResponse({ algorithm, ha1: ha1!, method: request.method, uri, nonce, ...(qop ? { qop: 'auth' as const, nc, cnonce } : {}) }), response);
      if (verdict === 'forged' && ha1 && (qop === undefined || qop === 'auth') && rightPassword()) {
        // Our nonce from before a restart (another secret): the phone knows the password, so it is
        // told stale=true and answers our new nonce at once, as after any nonce's expiry (s22.4).
        stale = true;
        continue;
      }
      if (verdict === 'fresh' && ha1 && (qop === undefined || qop === 'auth')) {
        if (rightPassword()) {
          // Without qop there is no count: such a nonce is good once.
          if (this.counts.advance(`${nonce}|${qop ? cnonce : ''}`, qop ? parseInt(nc, 16) : 1, this.clock.now())) return { user };
          // A count used before: challenge with stale=true, so a phone that did this by mistake
          // retries with a fresh nonce instead of asking its user for a password.
          this.counters.replays++;
          stale = true;
          continue;
        }
      }
      this.counters.authFailures++;
      // Told to the family only for a real attempt (our fresh nonce, a qop we offer): a forged
      // nonce says nothing about the phone's settings. The name as printable ASCII, at most 64.
      if (verdict === 'fresh' && (qop === undefined || qop === 'auth')) {
        this.lastFailure = { user: user.slice(0, 64).replace(/[^\x21-\x7e]/g, '?'), reason: ha1 ? 'wrong password' : 'no such user here', at: now };
        this.onFailure(this.lastFailure);
      }
    }
    return { stale };
  }

  /** Whether a credentials header is for this realm (a proxy takes those off what it forwards). */
  isOurRealm(value: string): boolean {
    try {
      return parseAuthParams(value).params.get('realm') === this.realm;
    } catch {
      return false;
    }
  }

  /** Adds one challenge per algorithm, most preferred first (RFC 8760 s2.4). */
  challengeHeaders(response: SipResponse, challenge: Challenge, stale: boolean): void {
    const nonce = this.nonces.issue(this.clock.wallTime());
    for (const algorithm of this.algorithms) {
      response.headers.add(challenge.header, `Digest realm="${this.realm}", nonce="${nonce}", algorithm=${algorithm}, qop="auth"${stale ? ', stale=true' : ''}`);
    }
  }
}
