import path from 'node:path';
import { type Certificate, parseCertificate } from '../identity/certificate.js';
import type { NodeIdentity } from '../identity/identity.js';
import { type KeyPair, keyPairFromSeed, publicKeyObject } from '../identity/keys.js';
import { createOpenIdentity } from '../identity/open-identity.js';
import type { Logger } from '../runtime/log.js';
import type { Random } from '../runtime/random.js';
import type { UserSigners } from '../usages/sip/overlay/registration-publisher.js';
import { readArray, readBytes, readList, readText } from '../wire/schema.js';
import { readCborFile, writeCborFile } from './cbor-file.js';
import type { OverlayConfig } from './config/overlay-config.js';
import type { EnrollmentAuthority } from './enrollment/enrollment-authority.js';
import { requestUserCertificate, releaseUserAtAuthority } from './enrollment/enrollment-client.js';
import { EnrollmentRefused } from './enrollment/enrollment-errors.js';

/*
 * Who signs a family user's SIP-REGISTRATION records (USER-NODE-MATCH wants the user's own
 * certificate, RFC 7904 s3.2). In order:
 *   - this peer's own identity, when its certificate names that user (a device enrolled with
 *     `invite --user bob` registers bob's phones);
 *   - a key kept for the user in DIR/sip-identities.cbor = [* [user, seed, certificate]], made
 *     here and certified by the overlay's authority: on this peer when it holds the authority,
 *     otherwise asked for over the network with this home's own certificate (the authority's
 *     household ledger decides); self-issued in open mode; renewed when a third of its life is left;
 *   - none yet: the user's phones still register and are reached here, and the certificate is
 *     asked for again every RETRY_MS until the authority answers (pending) or says no (refused).
 */
const FILE = 'sip-identities.cbor';
const RETRY_MS = 15_000;

/** Where user certificates come from for an enrolled home. */
export type UserCertificateSource =
  /** This peer holds the authority: issue here, under this home's name. */
  | { readonly kind: 'local'; issue(userKey: Uint8Array, user: string, nowSeconds: number): Certificate; release(user: string, nowSeconds: number): Promise<void> }
  /** Ask the authority over the network (rejects with EnrollmentRefused when it says no). */
  | { readonly kind: 'remote'; request(user: string, userKeys: KeyPair, nowSeconds: number): Promise<Certificate>; release(user: string, nowSeconds: number, userKey?: Uint8Array): Promise<void> };

/** What became of a user this home gave up (`user remove`). */
export type UserRelease = { readonly released: true } | { readonly released: false; readonly reason: string };

export type UserCertificateState =
  | { readonly state: 'issued'; readonly expires: string }
  | { readonly state: 'pending'; readonly reason: string }
  | { readonly state: 'refused'; readonly reason: string }
  /** The overlay's configuration revokes it (`p2psip revoke USER`): nothing is stored under it any more. */
  | { readonly state: 'revoked'; readonly expires: string }
  | { readonly state: 'none' };

export class DiskUserSigners implements UserSigners {
  private readonly identities = new Map<string, NodeIdentity>();
  private readonly failures = new Map<string, { state: 'pending' | 'refused'; reason: string }>();
  private readonly inFlight = new Map<string, Promise<UserCertificateState>>();
  /** Users this home gave up: nothing asks for their certificate again until `user add` does. */
  private readonly released = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  /** Called when a user's certificate arrives later than its phones (to publish them now). */
  onIssued: (user: string) => void = () => undefined;

  constructor(
    private readonly dir: string,
    private readonly own: NodeIdentity,
    private readonly domain: string,
    private readonly mode: 'open' | 'authority',
    private readonly source: UserCertificateSource | undefined,
    private readonly random: Random,
    private readonly nowSeconds: () => number,
    private readonly log: Logger,
    /** Whether the overlay's current configuration revokes a key (an enrolled overlay's trust policy). */
    private readonly isRevoked: (publicKey: Uint8Array) => boolean = () => false,
  ) {
    this.load();
  }

  signerFor(user: string): NodeIdentity | undefined {
    if (this.isOwn(user)) return this.own;
    if (this.released.has(user)) return undefined;
    const kept = this.identities.get(user);
    if (kept && this.isRevoked(kept.certificate.claims.publicKey)) return undefined; // every store would be refused
    if (kept && !this.dueForRenewal(kept.certificate)) return kept;
    if (this.source?.kind === 'remote') {
      // Answered later (onIssued publishes then); a refusal stands until `user add` asks again.
      if (this.failures.get(user)?.state !== 'refused') void this.obtain(user);
      return kept && kept.certificate.claims.expires > this.nowSeconds() ? kept : undefined;
    }
    const made = this.certifyHere(user, kept);
    return made ?? kept;
  }

  /** Makes sure `user` has a certificate (asking the authority if need be) and says how that went. */
  obtain(user: string): Promise<UserCertificateState> {
    this.released.delete(user);
    if (this.isOwn(user)) return Promise.resolve(this.state(user));
    const kept = this.identities.get(user);
    if (kept && !this.dueForRenewal(kept.certificate)) return Promise.resolve(this.state(user));
    if (this.source?.kind !== 'remote') {
      this.certifyHere(user, kept);
      return Promise.resolve(this.state(user));
    }
    const running = this.inFlight.get(user);
    if (running) return running;
    const source = this.source;
    const asked = (async (): Promise<UserCertificateState> => {
      const keys = kept?.keys ?? keyPairFromSeed(this.random.bytes(32));
      try {
        const certificate = await source.request(user, keys, this.nowSeconds());
        this.keep(user, { nodeId: certificate.claims.nodeIds[0], keys, certificate });
        this.log.info('user-certificate-issued', { user: this.subject(user), expires: new Date(certificate.claims.expires * 1000).toISOString() });
        this.onIssued(user);
      } catch (error) {
        const state = error instanceof EnrollmentRefused ? 'refused' : 'pending';
        this.failures.set(user, { state, reason: (error as Error).message });
        this.log.warn(state === 'refused' ? 'user-certificate-refused' : 'user-certificate-pending', { user: this.subject(user), reason: (error as Error).message });
      } finally {
        this.inFlight.delete(user);
      }
      return this.state(user);
    })();
    this.inFlight.set(user, asked);
    return asked;
  }

  /** Where `user`'s certificate stands: `user list` shows this. */
  state(user: string): UserCertificateState {
    const certificate = this.isOwn(user) ? this.own.certificate : this.identities.get(user)?.certificate;
    if (certificate) return { state: this.isRevoked(certificate.claims.publicKey) ? 'revoked' : 'issued', expires: new Date(certificate.claims.expires * 1000).toISOString() };
    return this.failures.get(user) ?? { state: 'none' };
  }

  /**
   * Gives `user` up at the overlay's authority, which frees the name for any home and revokes the
   * user's certificates, then forgets the certificate here. A device enrolled as that user keeps it.
   */
  async release(user: string): Promise<UserRelease> {
    if (this.isOwn(user)) return { released: false, reason: 'this device was enrolled as that user: the name goes with the device' };
    if (!this.source) {
      this.forget(user); // open mode: nobody holds names
      return { released: true };
    }
    try {
      await this.source.release(user, this.nowSeconds(), this.identities.get(user)?.certificate.claims.publicKey);
    } catch (error) {
      return { released: false, reason: (error as Error).message };
    }
    this.forget(user);
    this.released.add(user);
    return { released: true };
  }

  /** Forgets a user removed from this home (`user remove`). */
  forget(user: string): void {
    this.failures.delete(user);
    if (this.identities.delete(user)) this.save();
  }

  /** Keeps asking for the certificates of `users()` that have none, until each is issued or refused. */
  retryPending(users: () => readonly string[]): void {
    if (this.source?.kind !== 'remote') return;
    this.retryTimer = setInterval(() => {
      for (const user of users()) {
        const state = this.state(user).state;
        if (state === 'none' || state === 'pending') void this.obtain(user);
      }
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  close(): void {
    clearInterval(this.retryTimer);
  }

  private certifyHere(user: string, kept: NodeIdentity | undefined): NodeIdentity | undefined {
    const now = this.nowSeconds();
    const subject = this.subject(user);
    if (this.mode === 'open') return this.keep(user, createOpenIdentity(kept?.keys.seed ?? this.random.bytes(32), subject, this.own.certificate.claims.overlay, now));
    if (this.source?.kind !== 'local') {
      this.failures.set(user, { state: 'pending', reason: 'this peer knows no enrollment authority to ask' });
      return undefined;
    }
    const keys = kept?.keys ?? keyPairFromSeed(this.random.bytes(32));
    try {
      // A user's credential: it signs that user's values only, under a Node-ID of its own (never this peer's).
      const certificate = this.source.issue(keys.publicKey, user, now);
      return this.keep(user, { nodeId: certificate.claims.nodeIds[0], keys, certificate });
    } catch (error) {
      this.failures.set(user, { state: 'refused', reason: (error as Error).message });
      this.log.warn('user-certificate-refused', { user: subject, error: (error as Error).message });
      return undefined;
    }
  }

  private keep(user: string, identity: NodeIdentity): NodeIdentity {
    this.identities.set(user, identity);
    this.failures.delete(user);
    this.save();
    return identity;
  }

  private isOwn(user: string): boolean {
    return this.own.certificate.claims.subject === this.subject(user);
  }

  private subject(user: string): string {
    return `${user}@${this.domain}`;
  }

  private dueForRenewal(certificate: Certificate): boolean {
    const { notBefore, expires } = certificate.claims;
    return this.nowSeconds() > expires - (expires - notBefore) / 3;
  }

  private load(): void {
    const value = readCborFile(path.join(this.dir, FILE), 1 << 20);
    if (value === undefined) return;
    for (const [user, identity] of readList(value, '$.sipIdentities', 10_000, (item, p) => {
      const [name, seed, cert] = readArray(item, p, 3, 3);
      const bytes = readBytes(cert, `${p}.certificate`, 1, 4096);
      const parsed = parseCertificate(bytes);
      const certificate = { claims: parsed.claims, bytes, publicKey: publicKeyObject(parsed.claims.publicKey) };
      return [readText(name, `${p}.user`, 64), { nodeId: parsed.claims.nodeIds[0], keys: keyPairFromSeed(readBytes(seed, `${p}.seed`, 32, 32)), certificate }] as const;
    })) {
      this.identities.set(user, identity);
    }
  }

  private save(): void {
    writeCborFile(
      path.join(this.dir, FILE),
      [...this.identities].map(([user, id]) => [user, id.keys.seed, id.certificate.bytes]),
      0o600,
    );
  }
}

/** Where an enrolled home gets its users' certificates: its own authority, or the overlay's over the network. */
export function userCertificateSource(home: NodeIdentity, authority: EnrollmentAuthority | undefined, config: () => OverlayConfig, random: Random): UserCertificateSource {
  const own = home.certificate.claims.subject;
  if (authority) {
    return {
      kind: 'local',
      issue: (key, user, now) => authority.issueUser(key, user, own, now, { unlimited: true }),
      release: async (user, now) => void authority.releaseUser(user, own, now),
    };
  }
  return {
    kind: 'remote',
    request: (user, keys, now) => requestUserCertificate(home, config(), user, keys, random, now),
    release: (user, now, userKey) => releaseUserAtAuthority(home, config(), user, userKey, random, now),
  };
}
