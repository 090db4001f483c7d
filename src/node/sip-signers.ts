import path from 'node:path';
import { type Certificate, parseCertificate } from '../identity/certificate.js';
import type { NodeIdentity } from '../identity/identity.js';
import { keyPairFromSeed, publicKeyObject } from '../identity/keys.js';
import { createOpenIdentity } from '../identity/open-identity.js';
import type { Logger } from '../runtime/log.js';
import type { Random } from '../runtime/random.js';
import type { UserSigners } from '../usages/sip/overlay/registration-publisher.js';
import { readArray, readBytes, readList, readText } from '../wire/schema.js';
import { readCborFile, writeCborFile } from './cbor-file.js';
import type { EnrollmentAuthority } from './enrollment/enrollment-authority.js';

/*
 * Who signs a family user's SIP-REGISTRATION records (USER-NODE-MATCH wants the user's own
 * certificate, RFC 7904 s3.2). In order:
 *   - this peer's own identity, when its certificate names that user (a device enrolled with
 *     `invite --user bob` registers bob's phones);
 *   - a key kept for the user in DIR/sip-identities.cbor = [* [user, seed, certificate]],
 *     certified by this peer's authority (bound to this peer's Node-ID, revocable with
 *     `p2psip revoke USER`), or self-issued in open mode; renewed when a third of its life is left;
 *   - none: the user's phones still register and are reached here, but the overlay is not told.
 */
const FILE = 'sip-identities.cbor';

export class DiskUserSigners implements UserSigners {
  private readonly identities = new Map<string, NodeIdentity>();

  constructor(
    private readonly dir: string,
    private readonly own: NodeIdentity,
    private readonly domain: string,
    private readonly mode: 'open' | 'authority',
    private readonly authority: EnrollmentAuthority | undefined,
    private readonly random: Random,
    private readonly nowSeconds: () => number,
    private readonly log: Logger,
  ) {
    this.load();
  }

  signerFor(user: string): NodeIdentity | undefined {
    const subject = `${user}@${this.domain}`;
    if (this.own.certificate.claims.subject === subject) return this.own;
    const kept = this.identities.get(user);
    if (kept && !this.dueForRenewal(kept.certificate)) return kept;
    const made = this.certify(user, subject, kept);
    if (made) {
      this.identities.set(user, made);
      this.save();
    }
    return made ?? kept;
  }

  private certify(user: string, subject: string, kept: NodeIdentity | undefined): NodeIdentity | undefined {
    const now = this.nowSeconds();
    if (this.mode === 'open') return createOpenIdentity(kept?.keys.seed ?? this.random.bytes(32), subject, this.own.certificate.claims.overlay, now);
    if (!this.authority) {
      this.log.info('no-user-certificate', { user: subject, hint: 'only the peer holding the authority, or a device enrolled as this user, can sign its registrations' });
      return undefined;
    }
    const keys = kept?.keys ?? keyPairFromSeed(this.random.bytes(32));
    try {
      // A user's credential: it signs that user's values only, under a Node-ID of its own (never this peer's).
      const certificate = this.authority.issue(keys.publicKey, subject, now, undefined, 'user');
      return { nodeId: certificate.claims.nodeIds[0], keys, certificate };
    } catch (error) {
      this.log.warn('user-certificate-refused', { user: subject, error: (error as Error).message });
      return undefined;
    }
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
