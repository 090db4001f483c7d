import path from 'node:path';
import { userInDomain } from '../../identity/authority-trust.js';
import { type Certificate, certificateSignatureValid, issueCertificate, parseCertificate } from '../../identity/certificate.js';
import { keyFingerprint } from '../../identity/ids.js';
import type { NodeIdentity } from '../../identity/identity.js';
import { type KeyPair, keyPairFromSeed, publicKeyObject, verifyBytes } from '../../identity/keys.js';
import type { Random } from '../../runtime/random.js';
import { P2psipError } from '../../runtime/errors.js';
import { DEFAULT_KINDS } from '../../storage/kind.js';
import { DEFAULT_STORAGE_LIMITS } from '../../storage/resource-store.js';
import type { Address } from '../../wire/address.js';
import { type Id, idFromBytes, idToBytes, readId } from '../../wire/id.js';
import { readArray, readBool, readBytes, readList, readText, readUint } from '../../wire/schema.js';
import { readCborFile, writeCborFile } from '../cbor-file.js';
import { saveConfig } from '../config/config-file.js';
import { type OverlayConfig, type SignedConfig, signConfig } from '../config/overlay-config.js';
import { saveIdentity } from '../identity-store.js';
import {
  ENROLL,
  USER,
  RELEASE,
  type EnrollmentAnswer,
  type EnrollmentRequest,
  type IssuedAnswer,
  type RefusedAnswer,
  type ReleasedAnswer,
  type ReleaseRequest,
  releaseProofInput,
  answerMac,
  enrollMac,
  enrollProofInput,
  RENEW,
  RENEW_MAX_SKEW_SECONDS,
  renewProofInput,
  type UserRequest,
  userProofInput,
} from './enrollment-protocol.js';
import { bytesEqualInConstantTime } from '../../runtime/constant-time.js';
import { EnrollmentRefused } from './enrollment-errors.js';
import { DEFAULT_HOUSEHOLD_SIZE, HouseholdLedger } from './household-ledger.js';
import { encodeInvitation, INVITATION_ID_BYTES, INVITATION_SECRET_BYTES } from './invitation.js';
import { UsedNonces } from './used-nonces.js';

/*
 * The enrollment authority of one family (RFC 6940 s11.3's enrollment server, on the family's
 * first peer). It issues certificates with assigned Node-IDs, hands out one-time invitations,
 * renews certificates, and as the overlay's root signs the configuration document.
 *   DIR/authority.cbor   = [name, seed]                     (mode 0600)
 *   DIR/invitations.cbor = [* [id, secret, user / null, client, expires, used, ? household-size]]
 *   DIR/issued.cbor      = [* [subject, key-fingerprint, node-id, expires]]   (what revoke looks up)
 */
export const DEFAULT_CERT_LIFETIME_SECONDS = 30 * 24 * 3600;
const RENEW_MIN_INTERVAL_SECONDS = 60;
export const DEFAULT_INVITATION_SECONDS = 3600;
/** Certificates start this much in the past, for devices whose clocks run a little behind. */
const CLOCK_SKEW_SECONDS = 300;
const AUTHORITY_FILE = 'authority.cbor';
const INVITATIONS_FILE = 'invitations.cbor';
const ISSUED_FILE = 'issued.cbor';
const NONCES_FILE = 'authority-nonces.bin';
/** A home gives up at most this many users a day (each may add revocations every node carries). */
const RELEASES_PER_WINDOW = 8;
const RELEASE_WINDOW_SECONDS = 86_400;

/** A certificate this authority issued, remembered so that `p2psip revoke USER` can find its key. */
export interface IssuedRecord {
  readonly subject: string;
  readonly fingerprint: string;
  readonly nodeId: Id;
  readonly expires: number;
  /** A user certificate (role user), false for a device's; undefined in records kept before this was. */
  readonly user?: boolean;
}

export { EnrollmentRefused };

interface StoredInvitation {
  readonly id: Uint8Array;
  readonly secret: Uint8Array;
  readonly user: string | null;
  readonly client: boolean;
  readonly expires: number;
  used: boolean;
  /** How many users the home it enrolls may add (`invite --household N`). */
  readonly household: number;
}

export interface InitOptions {
  readonly overlay: string;
  /** The domain this authority names users under; the overlay name by default. */
  readonly domain?: string;
  /** The first peer's user name (local part or full); "home" by default. */
  readonly user?: string;
  readonly certificateLifetimeSeconds?: number;
  readonly bootstrap?: readonly Address[];
}

export class EnrollmentAuthority {
  private invitations: StoredInvitation[];
  private issued: IssuedRecord[];
  /** Nonces of signed requests seen lately (on disk, across restarts): each is good once while its time can be believed. */
  private readonly renewNonces: UsedNonces;
  /** When each key last renewed (bounded by the certificates issued here). */
  private readonly lastRenewal = new Map<string, number>();
  /** Who holds which user, and how many each home may hold. */
  readonly households: HouseholdLedger;
  /** When each home last gave users up (release-req), for RELEASES_PER_WINDOW. */
  private readonly releases = new Map<string, number[]>();

  private constructor(
    private readonly dir: string,
    readonly name: string,
    private readonly keys: KeyPair,
    private signed: SignedConfig,
    private readonly random: Random,
    nowSeconds: number,
  ) {
    this.renewNonces = UsedNonces.open(path.join(dir, NONCES_FILE), 10_000, nowSeconds);
    this.invitations = loadInvitations(dir);
    this.issued = loadIssued(dir);
    this.households = new HouseholdLedger(dir);
  }

  /** `p2psip init`: a new overlay with this authority as its root, and the first peer's identity. */
  static create(dir: string, options: InitOptions, random: Random, nowSeconds: number): { authority: EnrollmentAuthority; identity: NodeIdentity } {
    const domain = (options.domain ?? options.overlay).toLowerCase();
    const keys = keyPairFromSeed(random.bytes(32));
    const config: OverlayConfig = {
      overlay: options.overlay,
      sequence: 1,
      authorities: [{ name: domain, publicKey: keys.publicKey, domains: [domain] }],
      bootstrap: options.bootstrap ?? [],
      kinds: DEFAULT_KINDS,
      limits: DEFAULT_STORAGE_LIMITS,
      replicas: 3,
      revoked: [],
      certificateLifetimeSeconds: options.certificateLifetimeSeconds ?? DEFAULT_CERT_LIFETIME_SECONDS,
      issuedAt: nowSeconds,
    };
    writeCborFile(path.join(dir, AUTHORITY_FILE), [domain, keys.seed]);
    const signed = signConfig(config, keys);
    saveConfig(dir, signed);
    const authority = new EnrollmentAuthority(dir, domain, keys, signed, random, nowSeconds);
    const nodeKeys = keyPairFromSeed(random.bytes(32));
    const certificate = authority.issue(nodeKeys.publicKey, qualify(options.user ?? 'home', domain), nowSeconds);
    const identity = { nodeId: certificate.claims.nodeIds[0], keys: nodeKeys, certificate };
    saveIdentity(dir, 'authority', identity);
    return { authority, identity };
  }

  /** The authority kept in DIR, if this node holds one (`nowSeconds`: to forget nonces no longer live). */
  static load(dir: string, signed: SignedConfig, random: Random, nowSeconds: number): EnrollmentAuthority | undefined {
    const value = readCborFile(path.join(dir, AUTHORITY_FILE), 1024);
    if (value === undefined) return undefined;
    const [name, seed] = readArray(value, '$.authority', 2, 2);
    return new EnrollmentAuthority(dir, readText(name, '$.authority.name', 64), keyPairFromSeed(readBytes(seed, '$.authority.seed', 32, 32)), signed, random, nowSeconds);
  }

  get config(): SignedConfig {
    return this.signed;
  }

  get fingerprint(): string {
    return keyFingerprint(this.keys.publicKey);
  }

  /** The overlay's root authority: the one that signs the configuration. */
  get isRoot(): boolean {
    return Buffer.compare(this.signed.config.authorities[0].publicKey, this.keys.publicKey) === 0;
  }

  /** A certificate for `publicKey` under `subject`, with a Node-ID the authority picks (RFC 6940 s11.3). */
  issue(publicKey: Uint8Array, subject: string, nowSeconds: number, nodeId?: Id, role?: 'client' | 'user'): Certificate {
    const { config } = this.signed;
    const domains = config.authorities.find((a) => a.name === this.name)?.domains ?? [];
    if (!domains.some((d) => userInDomain(subject, d))) throw new EnrollmentRefused(`${subject} is outside ${domains.join(', ')}`);
    const certificate = issueCertificate(
      {
        issuer: this.name,
        subject,
        nodeIds: [nodeId ?? idFromBytes(this.random.bytes(16))],
        publicKey,
        overlay: config.overlay,
        notBefore: nowSeconds - CLOCK_SKEW_SECONDS,
        expires: nowSeconds + config.certificateLifetimeSeconds,
        ...(role ? { role } : {}),
      },
      this.keys,
    );
    this.record(certificate, nowSeconds);
    return certificate;
  }

  /**
   * `p2psip revoke`: puts the keys of a user's certificates (or one key by fingerprint) on the
   * configuration's revocation list and signs the new document; ConfigUpdate carries it on.
   */
  revoke(target: { user?: string; fingerprint?: string }, ownFingerprint: string, nowSeconds: number): { fingerprints: string[]; users: string[]; config: SignedConfig } {
    const subject = target.user ? qualify(target.user, this.name) : undefined;
    const matches = this.issued.filter((r) => (subject ? r.subject === subject : r.fingerprint === target.fingerprint));
    // A fingerprint need not be in the ledger: a key seen elsewhere (a status output) can be revoked too.
    const fingerprints = subject ? matches.map((r) => r.fingerprint) : [target.fingerprint ?? ''].filter(Boolean);
    if (fingerprints.length === 0) throw new EnrollmentRefused(`no certificate was issued here to ${subject}`);
    if (fingerprints.includes(ownFingerprint)) throw new EnrollmentRefused("that is this peer's own key: the authority cannot revoke itself");
    const config = this.updateConfig((c) => ({ revoked: [...new Set([...c.revoked, ...fingerprints])] }), nowSeconds);
    return { fingerprints, users: [...new Set(matches.map((r) => r.subject))], config };
  }

  /** `p2psip invite`: a one-time token for one device. */
  invite(options: { user?: string; client?: boolean; ttlSeconds?: number; household?: number; enrollAt: Address }, nowSeconds: number): { token: string; expires: number; user: string | null; household: number } {
    const user = options.user ? qualify(options.user, this.name) : null;
    if (user && !userInDomain(user, this.name)) throw new EnrollmentRefused(`${user} is outside ${this.name}`);
    const invitation: StoredInvitation = {
      id: this.random.bytes(INVITATION_ID_BYTES),
      secret: this.random.bytes(INVITATION_SECRET_BYTES),
      user,
      client: options.client ?? false,
      expires: nowSeconds + (options.ttlSeconds ?? DEFAULT_INVITATION_SECONDS),
      used: false,
      household: options.household ?? DEFAULT_HOUSEHOLD_SIZE,
    };
    // Forget invitations that can no longer be used, so the file stays small.
    this.invitations = this.invitations.filter((i) => !i.used && i.expires > nowSeconds).concat(invitation);
    this.saveInvitations();
    const root = this.signed.config.authorities[0];
    return {
      token: encodeInvitation({ enrollAt: options.enrollAt, rootFingerprint: keyFingerprint(root.publicKey), id: invitation.id, secret: invitation.secret, expires: invitation.expires }),
      expires: invitation.expires,
      user,
      household: invitation.household,
    };
  }

  /** Answers one enrollment request; refusals carry a reason the joiner can show. */
  answer(request: ReleaseRequest, nowSeconds: number): ReleasedAnswer | RefusedAnswer;
  answer(request: Exclude<EnrollmentRequest, ReleaseRequest>, nowSeconds: number): IssuedAnswer | RefusedAnswer;
  answer(request: EnrollmentRequest, nowSeconds: number): EnrollmentAnswer;
  answer(request: EnrollmentRequest, nowSeconds: number): EnrollmentAnswer {
    try {
      if (request.type === ENROLL) return this.enroll(request, nowSeconds);
      if (request.type === USER) return this.userFor(request, nowSeconds);
      if (request.type === RELEASE) return this.releaseFor(request, nowSeconds);
      return this.renew(request, nowSeconds);
    } catch (error) {
      if (error instanceof P2psipError) return { ok: false, reason: error.message };
      return { ok: false, reason: 'malformed request' };
    }
  }

  private enroll(request: Extract<EnrollmentRequest, { type: typeof ENROLL }>, nowSeconds: number): IssuedAnswer {
    const invitation = this.invitations.find((i) => Buffer.compare(i.id, request.invitationId) === 0);
    if (!invitation) throw new EnrollmentRefused('unknown invitation');
    if (!bytesEqualInConstantTime(enrollMac(invitation.secret, request.invitationId, request.publicKey, request.nonce, request.proof), request.mac)) {
      throw new EnrollmentRefused('invitation secret does not match');
    }
    if (invitation.used) throw new EnrollmentRefused('invitation already used');
    if (invitation.expires < nowSeconds) throw new EnrollmentRefused('invitation expired');
    // Proof of possession: the joiner holds the private key it asks us to certify.
    if (!verifyBytes(publicKeyObject(request.publicKey), enrollProofInput(request.invitationId, request.publicKey, request.nonce), request.proof)) {
      throw new EnrollmentRefused('proof of possession does not verify');
    }
    invitation.used = true;
    this.saveInvitations();
    const subject = invitation.user ?? this.deviceName(invitation.client ? 'client' : 'peer');
    if (invitation.user) this.households.claim(subject, subject, { unlimited: true }); // a device enrolled as a user holds that name
    if (!invitation.client) this.households.setHouseholdSize(subject, invitation.household);
    const certificate = this.issue(request.publicKey, subject, nowSeconds, undefined, invitation.client ? 'client' : undefined);
    return { ok: true, certificate: certificate.bytes, config: this.signed.bytes, mac: answerMac(invitation.secret, request.nonce, certificate.bytes, this.signed.bytes) };
  }

  /**
   * A certificate for one of a home's users (issue 15's households): the home proves who it is
   * with its own certificate and key; the ledger decides whether it may hold that user.
   */
  private userFor(request: UserRequest, nowSeconds: number): IssuedAnswer {
    const home = this.checkIssuedHere(request.certificate, nowSeconds);
    if (home.role !== undefined) throw new EnrollmentRefused(`a ${home.role} certificate cannot hold users: only a home peer can`);
    this.checkTime(request.time, nowSeconds, 'request');
    if (!verifyBytes(publicKeyObject(home.publicKey), userProofInput(request.certificate, request.user, request.userKey, request.nonce, request.time), request.proof)) {
      throw new EnrollmentRefused('proof of possession does not verify');
    }
    if (!this.renewNonces.firstUse(Buffer.from(request.nonce).toString('hex'), request.time + RENEW_MAX_SKEW_SECONDS, nowSeconds)) throw new EnrollmentRefused('request replayed');
    const certificate = this.issueUser(request.userKey, request.user, home.subject, nowSeconds);
    return { ok: true, certificate: certificate.bytes, config: this.signed.bytes, mac: null };
  }

  /** A home gives up one of its users (`user remove`): proven as userFor's requests are. */
  private releaseFor(request: ReleaseRequest, nowSeconds: number): ReleasedAnswer {
    const home = this.checkIssuedHere(request.certificate, nowSeconds);
    if (home.role !== undefined) throw new EnrollmentRefused(`a ${home.role} certificate holds no users`);
    this.checkTime(request.time, nowSeconds, 'request');
    if (!verifyBytes(publicKeyObject(home.publicKey), releaseProofInput(request.certificate, request.user, request.nonce, request.time), request.proof)) {
      throw new EnrollmentRefused('proof of possession does not verify');
    }
    if (!this.renewNonces.firstUse(Buffer.from(request.nonce).toString('hex'), request.time + RENEW_MAX_SKEW_SECONDS, nowSeconds)) throw new EnrollmentRefused('request replayed');
    return { ok: 'released', config: this.releaseUser(request.user, home.subject, nowSeconds).bytes };
  }

  /**
   * `home` no longer holds `user`: the name is free for any home (its household has room again)
   * and the user's certificates are revoked, so the one the home kept signs nothing any more.
   * Returns the configuration, newly signed when something was revoked.
   */
  releaseUser(user: string, home: string, nowSeconds: number): SignedConfig {
    const subject = qualify(user.toLowerCase(), this.name);
    this.households.checkRelease(subject, home);
    // Each release may grow the configuration's revocation list, which every node must open: a
    // family gives up a few people a year, so a home that does it more is refused.
    const recent = (this.releases.get(home) ?? []).filter((t) => t > nowSeconds - RELEASE_WINDOW_SECONDS);
    if (recent.length >= RELEASES_PER_WINDOW) throw new EnrollmentRefused(`this home gave up ${recent.length} users in the last day: try again tomorrow`);
    const fingerprints = this.issued.filter((r) => r.subject === subject && r.user !== false).map((r) => r.fingerprint);
    if (fingerprints.length && !this.isRoot) throw new EnrollmentRefused('only the root authority can revoke the certificates of a user it frees');
    // Revoked first, then freed: a failure between the two leaves the name held, never free with its certificates believed.
    const signed = fingerprints.length ? this.updateConfig((c) => ({ revoked: [...new Set([...c.revoked, ...fingerprints])] }), nowSeconds) : this.signed;
    this.households.release(subject, home);
    if (this.releases.size >= 10_000) this.releases.clear();
    this.releases.set(home, [...recent, nowSeconds]);
    return signed;
  }

  /**
   * A user certificate held by `home` (a home's subject), if the ledger lets that home hold the
   * user. The peer beside the authority (the family that ran init) holds users without limit.
   */
  issueUser(userKey: Uint8Array, user: string, home: string, nowSeconds: number, options: { unlimited?: boolean } = {}): Certificate {
    const subject = qualify(user.toLowerCase(), this.name);
    // A device's name (the first peer's, a joined peer-… or client-…) is nobody's user: no home
    // may take it, nor give it up later and so have the device's certificates revoked.
    if (this.issued.some((r) => r.subject === subject && r.user !== true) && this.households.holderOf(subject) !== subject) {
      throw new EnrollmentRefused(`${subject.slice(0, subject.lastIndexOf('@'))} is taken: a device of the overlay has that name`);
    }
    this.households.claim(subject, home, options);
    return this.issue(userKey, subject, nowSeconds, undefined, 'user');
  }

  /**
   * A signed request's clock must be near ours: its nonce is remembered that long (on disk, so
   * a request captured before a restart cannot be played after it: a user given up, taken back,
   * and given up anew).
   */
  private checkTime(time: number, nowSeconds: number, what: string): void {
    if (Math.abs(time - nowSeconds) > RENEW_MAX_SKEW_SECONDS) throw new EnrollmentRefused(`${what} is stale or from the future: check the clock`);
  }

  /** A certificate this authority issued, still valid and not revoked: its claims. */
  private checkIssuedHere(bytes: Uint8Array, nowSeconds: number): Certificate['claims'] {
    const parsed = parseCertificate(bytes);
    const { claims } = parsed;
    if (claims.issuer !== this.name) throw new EnrollmentRefused(`certificate was issued by ${claims.issuer}`);
    if (!certificateSignatureValid(parsed, publicKeyObject(this.keys.publicKey))) throw new EnrollmentRefused('certificate was not issued here');
    if (claims.expires < nowSeconds) throw new EnrollmentRefused('certificate already expired: enroll again with an invitation');
    if (this.signed.config.revoked.includes(keyFingerprint(claims.publicKey))) throw new EnrollmentRefused('certificate is revoked');
    return claims;
  }

  /** A name for a device enrolled without a user: 64 random bits, and never one already issued. */
  private deviceName(kind: string): string {
    for (let attempt = 0; attempt < 8; attempt++) {
      const name = `${kind}-${Buffer.from(this.random.bytes(8)).toString('hex')}@${this.name}`;
      if (!this.issued.some((r) => r.subject === name)) return name;
    }
    throw new EnrollmentRefused('could not draw an unused device name'); // 8 collisions in 2^64: the random source is broken
  }

  /** Renewal keeps the user name, key and Node-IDs; only the validity moves on. */
  private renew(request: Extract<EnrollmentRequest, { type: typeof RENEW }>, nowSeconds: number): IssuedAnswer {
    const claims = this.checkIssuedHere(request.certificate, nowSeconds);
    this.checkTime(request.time, nowSeconds, 'renewal');
    if (!verifyBytes(publicKeyObject(claims.publicKey), renewProofInput(request.certificate, request.nonce, request.time), request.proof)) {
      throw new EnrollmentRefused('proof of possession does not verify');
    }
    // One renewal a minute per key (a quarter of the lifetime where that is shorter; an honest node
    // renews once per two thirds of it): a node that asks more fills neither the ledger nor the nonce memory.
    const fingerprint = keyFingerprint(claims.publicKey);
    const interval = Math.min(RENEW_MIN_INTERVAL_SECONDS, this.signed.config.certificateLifetimeSeconds / 4);
    if (nowSeconds - (this.lastRenewal.get(fingerprint) ?? -Infinity) < interval) throw new EnrollmentRefused('renewed a moment ago: try again in a minute');
    if (!this.renewNonces.firstUse(Buffer.from(request.nonce).toString('hex'), request.time + RENEW_MAX_SKEW_SECONDS, nowSeconds)) {
      throw new EnrollmentRefused('renewal replayed');
    }
    this.lastRenewal.set(fingerprint, nowSeconds);
    const renewed = issueCertificate({ ...claims, notBefore: nowSeconds - CLOCK_SKEW_SECONDS, expires: nowSeconds + this.signed.config.certificateLifetimeSeconds }, this.keys);
    this.record(renewed, nowSeconds);
    return { ok: true, certificate: renewed.bytes, config: this.signed.bytes, mac: null };
  }

  /** A new configuration: the root re-signs with a higher sequence number. */
  updateConfig(change: (config: OverlayConfig) => Partial<OverlayConfig>, nowSeconds: number): SignedConfig {
    if (!this.isRoot) throw new EnrollmentRefused('only the root authority signs the configuration');
    const current = this.signed.config;
    this.signed = signConfig({ ...current, ...change(current), sequence: current.sequence + 1, issuedAt: nowSeconds }, this.keys);
    saveConfig(this.dir, this.signed);
    return this.signed;
  }

  /** Takes a configuration that came from the overlay (ConfigUpdate) as the current one. */
  adopt(signed: SignedConfig): void {
    this.signed = signed;
  }

  private record(certificate: Certificate, nowSeconds: number): void {
    const { claims } = certificate;
    const fingerprint = keyFingerprint(claims.publicKey);
    this.issued = this.issued
      .filter((r) => r.fingerprint !== fingerprint && r.expires > nowSeconds)
      .concat({ subject: claims.subject, fingerprint, nodeId: claims.nodeIds[0], expires: claims.expires, user: claims.role === 'user' });
    writeCborFile(
      path.join(this.dir, ISSUED_FILE),
      this.issued.map((r) => [r.subject, r.fingerprint, idToBytes(r.nodeId), r.expires, ...(r.user === undefined ? [] : [r.user])]),
    );
  }

  private saveInvitations(): void {
    writeCborFile(
      path.join(this.dir, INVITATIONS_FILE),
      this.invitations.map((i) => [i.id, i.secret, i.user, i.client, i.expires, i.used, i.household]),
    );
  }
}

/** "alice" -> "alice@domain"; a full name is kept as it is. */
export function qualify(user: string, domain: string): string {
  return user.includes('@') ? user : `${user}@${domain}`;
}

function loadInvitations(dir: string): StoredInvitation[] {
  const value = readCborFile(path.join(dir, INVITATIONS_FILE), 1 << 20);
  if (value === undefined) return [];
  return readList(value, '$.invitations', 100_000, (item, p) => {
    const [id, secret, user, client, expires, used, household] = readArray(item, p, 6, 7);
    return {
      id: readBytes(id, `${p}.id`, INVITATION_ID_BYTES, INVITATION_ID_BYTES),
      secret: readBytes(secret, `${p}.secret`, INVITATION_SECRET_BYTES, INVITATION_SECRET_BYTES),
      user: user === null ? null : readText(user, `${p}.user`, 256),
      client: readBool(client, `${p}.client`),
      expires: readUint(expires, `${p}.expires`),
      used: readBool(used, `${p}.used`),
      household: household === undefined ? DEFAULT_HOUSEHOLD_SIZE : readUint(household, `${p}.household`, 10_000),
    };
  });
}

function loadIssued(dir: string): IssuedRecord[] {
  const value = readCborFile(path.join(dir, ISSUED_FILE), 4 << 20);
  if (value === undefined) return [];
  return readList(value, '$.issued', 100_000, (item, p) => {
    const [subject, fingerprint, nodeId, expires, user] = readArray(item, p, 4, 5);
    return {
      subject: readText(subject, `${p}.subject`, 256),
      fingerprint: readText(fingerprint, `${p}.fingerprint`, 64),
      nodeId: readId(nodeId, `${p}.nodeId`),
      expires: readUint(expires, `${p}.expires`),
      ...(user === undefined ? {} : { user: readBool(user, `${p}.user`) }),
    };
  });
}
