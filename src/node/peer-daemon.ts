import { networkInterfaces } from 'node:os';
import { keyFingerprint } from '../identity/ids.js';
import { UdpLink } from '../link/udp-link.js';
import { SystemClock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { SystemRandom } from '../runtime/random.js';
import { type Address, addressKey } from '../wire/address.js';
import { idToHex } from '../wire/id.js';
import { ConfigError, type SignedConfig } from './config/overlay-config.js';
import { bindOrExplain } from './port-in-use.js';
import { ConfigSync } from './config/config-sync.js';
import { saveConfig } from './config/config-file.js';
import { AuthorityTrustPolicy } from '../identity/authority-trust.js';
import { EnrollmentAuthority, EnrollmentRefused } from './enrollment/enrollment-authority.js';
import { renewCertificate } from './enrollment/enrollment-client.js';
import { EnrollmentServer } from './enrollment/enrollment-transport.js';
import { loadNodeSetup, type NodeSetup, OPEN_MODE_WARNING } from './node-setup.js';
import { ControlServer } from './control-server.js';
import { DataDirLock } from './data-dir-lock.js';
import { saveIdentity } from './identity-store.js';
import { OverlayPeer } from './overlay-peer.js';
import { traceRoute } from './route-trace.js';
import { attachCommand } from './attach-command.js';
import { NatUpkeep } from './nat-upkeep.js';
import { type MappingProtocol, PortMapper } from '../nat/port-mapping/port-mapper.js';
import { systemPortMappingIo } from './port-mapping-io.js';
import { createBackend } from '../storage/backends/registry.js';
import type { StorageBackend } from '../storage/backends/backend.js';
import type { ControlRequest } from './control-protocol.js';
import { fetchCommand, storeCommand } from './storage-commands.js';
import type { StorageLimits } from '../storage/resource-store.js';
import path from 'node:path';
import { SipService } from '../usages/sip/sip-service.js';
import type { DigestAlgorithm } from '../usages/sip/auth/digest.js';
import { sipDomain, SipUserStore } from './sip-users.js';
import { userName } from './overlay-names.js';
import { RELAY_SERVICE_NAME } from '../usages/relay/relay-directory.js';
import { SavedBindings } from './saved-bindings.js';
import { HouseholdUsers } from './household-users.js';
import { DiskUserSigners, userCertificateSource } from './sip-signers.js';
import { RegistrationPublisher } from '../usages/sip/overlay/registration-publisher.js';
import { lookupUser } from './sip-lookup.js';
import { OverlayHomes, serveSipAppAttach, serveSipTunnel } from './sip-overlay-homes.js';
import { homeMedia } from './home-media.js';
import type { MediaAnchorMode } from '../usages/sip/media/sip-media.js';

/*
 * A peer on a device: real UDP, the system clock and randomness, a control socket in its data
 * directory. Insertion (RFC 7890 s3) happens here on every start; enrollment happened before.
 */
export interface PeerDaemonOptions {
  readonly dataDir: string;
  readonly overlayPort: number;
  readonly bindHost: string;
  readonly advertiseHost?: string;
  readonly bootstrap: readonly Address[];
  readonly open: boolean;
  readonly overlayName: string;
  /** Storage backend name (storage/backends/registry.ts); the file backend by default. */
  readonly storage: string;
  /** Quotas: bytes this peer holds in all, and per Resource-ID. */
  readonly storageLimits?: StorageLimits;
  /** SIP port (UDP and TCP) for the family's phones; undefined: no SIP. */
  readonly sipPort?: number;
  /** Digest authentication of REGISTER (off only for benchmarks and labs). */
  readonly sipAuth?: boolean;
  /**
   * SIP with other homes directly, each way: send to their SIP port when AppAttach finds it, and
   * offer ours (else SIP between homes always goes through the overlay).
   */
  readonly sipDirect?: boolean;
  /** Digest algorithms offered, most preferred first. */
  readonly sipDigest?: readonly DigestAlgorithm[];
  /** The proxy's Timer C in seconds (how long an INVITE may go without any answer or ringing news). */
  readonly sipTimerCSeconds?: number;
  /** `auto`: relay for nodes behind NATs when this peer's address is public; `off`: never. */
  readonly relay?: 'auto' | 'off';
  /** The relay's UDP ports for allocations (a firewall can then open just these); any free port when unset. */
  readonly relayPorts?: { low: number; high: number };
  /** Anchor the media of calls that cross homes (`auto`, the default) or never (`off`). */
  readonly mediaAnchor?: MediaAnchorMode;
  /** The anchor's UDP port range, RTP on even ports. */
  readonly mediaPorts?: { low: number; high: number };
  /** Seconds without a media packet before an anchored call's ports are freed. */
  readonly mediaTimeoutSeconds?: number;
  /** Anchored calls at once; more are answered 503 with Retry-After. */
  readonly maxCalls?: number;
  /** Which port-mapping protocols to ask the home router with, in order; [] asks none. */
  readonly portMapping?: readonly MappingProtocol[];
  readonly log: Logger;
}

export class PeerDaemon {
  private renewTimer: NodeJS.Timeout | undefined;
  private natUpkeep: NatUpkeep | undefined;

  private constructor(
    readonly peer: OverlayPeer,
    private readonly lock: DataDirLock,
    private readonly setup: NodeSetup,
    private readonly authority: EnrollmentAuthority | undefined,
    private readonly enrollment: EnrollmentServer | undefined,
    private readonly configSync: ConfigSync | undefined,
    private readonly sip: SipService | undefined,
    private readonly publisher: RegistrationPublisher | undefined,
    private readonly savedBindings: SavedBindings | undefined,
    private readonly signers: DiskUserSigners,
    private readonly household: HouseholdUsers,
    private readonly options: PeerDaemonOptions,
    private readonly random: SystemRandom,
  ) {}

  /** `held`: the data directory's lock, when the caller took it already (join, enrolling first). */
  static async start(options: PeerDaemonOptions, held?: DataDirLock): Promise<PeerDaemon> {
    const lock = held ?? (await DataDirLock.take(options.dataDir, options.log.child('control')));
    try {
      return await PeerDaemon.startLocked(options, lock);
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  private static async startLocked(options: PeerDaemonOptions, lock: DataDirLock): Promise<PeerDaemon> {
    const { log } = options;
    const clock = new SystemClock();
    const random = new SystemRandom();
    const nowSeconds = (): number => Math.floor(clock.wallTime() / 1000);
    const setup = loadNodeSetup(options.dataDir, options.open, options.overlayName, random, nowSeconds(), log);
    const link = await bindOrExplain(() => UdpLink.open({ host: options.bindHost, port: options.overlayPort }, log.child('udp')), options.bindHost, options.overlayPort, 'the overlay (UDP)', '--overlay-port');
    const advertised = { host: options.advertiseHost ?? advertisableHost(options.bindHost), port: link.localAddress.port };
    const authority = setup.config ? EnrollmentAuthority.load(options.dataDir, setup.config, random, nowSeconds()) : undefined;
    let enrollment: EnrollmentServer | undefined;
    // A home gave up a user: the configuration that revokes its certificates goes out (once ConfigSync runs).
    let publishConfig: (signed: SignedConfig) => void = () => {};
    if (authority) {
      // RFC 6940 s11.3's enrollment server, on TCP at the overlay's port number.
      const server = new EnrollmentServer((request) => {
        const answer = authority.answer(request, nowSeconds());
        if (answer.ok === 'released') publishConfig(authority.config);
        return answer;
      }, log.child('enrollment'), clock);
      enrollment = server;
      await bindOrExplain(() => server.listen({ host: options.bindHost, port: link.localAddress.port }), options.bindHost, link.localAddress.port, 'enrollment (TCP, on the overlay port)', '--overlay-port');
      announceEnrollmentAddress(authority, advertised, nowSeconds());
    }
    const role = setup.identity.certificate.claims.role ?? 'peer';
    if (role === 'user') throw new ConfigError('this data directory holds a user certificate, which cannot run a node: enroll the device with an invitation');
    const backend = createBackend(options.storage, path.join(options.dataDir, 'storage'));
    const storageLimits = fitToDisk(options.storageLimits ?? setup.limits, backend, log);
    const peer = new OverlayPeer({
      identity: setup.identity,
      trust: setup.trust,
      link,
      clock,
      random,
      log,
      overlayName: setup.overlayName,
      advertisedAddress: advertised,
      role,
      kinds: setup.kinds,
      ...(options.portMapping?.length !== 0 ? { portMapper: new PortMapper(systemPortMappingIo(log.child('port-mapping')), clock, random, log.child('port-mapping'), advertised, options.portMapping) } : {}),
      // Not only for relaying: a public peer answers RFC 5780's change-port from a socket of its own.
      openSocket: (bind: Address) => UdpLink.open(bind, log.child('probe-port')),
      ...(role !== 'client' && options.relay !== 'off' ? { relay: { openSocket: (bind: Address) => UdpLink.openInRange(bind, options.relayPorts, random, log.child('relay-port')), ownHosts: allInterfaceAddresses() } } : {}),
      // A client stores nothing for the overlay (RFC 7890 s2), so it opens no backend.
      storage:
        role === 'client'
          ? undefined
          : {
              backend,
              kinds: setup.kinds,
              limits: storageLimits,
              replicas: setup.replicas,
            },
    });
    const sipPort = options.sipPort;
    const media = sipPort !== undefined && options.mediaAnchor !== 'off' ? homeMedia(options, setup.identity, setup.trust, peer, advertised.host, clock, random, nowSeconds, log.child('media')) : undefined;
    const initialConfig = authority?.config ?? setup.config;
    const configSync = initialConfig
      ? new ConfigSync({
          router: peer.router,
          topology: peer.topology,
          clock,
          log: log.child('config'),
          initial: initialConfig,
          adopt: (signed) => {
            adoptConfig(signed, options.dataDir, setup, authority, peer);
            media?.revalidate(); // a home revoked mid-call loses its media at once
          },
        })
      : undefined;
    configSync?.start();
    if (configSync) publishConfig = (signed) => configSync.publish(signed);
    const domain = sipDomain(setup.identity.certificate.claims.subject, setup.overlayName);
    const registrationKind = setup.kinds.named('SIP-REGISTRATION');
    const sip =
      sipPort === undefined
        ? undefined
        : await bindOrExplain(() => SipService.start({
            bind: { host: options.bindHost, port: sipPort },
            advertisedHost: advertised.host,
            realm: domain,
            domains: [domain],
            requireAuth: options.sipAuth ?? true,
            ...(options.sipDigest ? { algorithms: options.sipDigest } : {}),
            credentials: new SipUserStore(options.dataDir, domain),
            ...(registrationKind ? { remote: new OverlayHomes(peer.router, peer.client, registrationKind, log.child('sip-overlay'), options.sipDirect ?? true) } : {}),
            nodeId: idToHex(peer.nodeId),
            clock,
            log: log.child('sip'),
            nonceSecret: random.bytes(32),
            ...(options.sipTimerCSeconds ? { timerCMs: options.sipTimerCSeconds * 1000 } : {}),
            localHosts: localAddresses(options.bindHost),
            ...(media ? { media } : {}),
          }), options.bindHost, sipPort, 'SIP (UDP and TCP)', '--sip-port');
    if (sip) {
      // With --sip-direct off, other homes are not offered our SIP port either (a firewall keeps it to the LAN).
      serveSipAppAttach(peer.router, () => ({ host: advertised.host, port: sip.address.port }), () => (options.sipDirect ?? true) && !peer.attachFirst);
      serveSipTunnel(peer.router, sip.transport, log.child('sip-overlay'));
    }
    const signers = new DiskUserSigners(
      options.dataDir,
      setup.identity,
      domain,
      setup.mode,
      setup.mode === 'open' ? undefined : userCertificateSource(setup.identity, authority, () => (configSync?.config ?? setup.config!).config, random),
      random,
      nowSeconds,
      log.child('sip'),
      setup.trust instanceof AuthorityTrustPolicy ? (key) => (setup.trust as AuthorityTrustPolicy).isRevoked(key) : undefined,
    );
    const publisher =
      sip && registrationKind
        ? new RegistrationPublisher(
            peer.client,
            registrationKind,
            peer.nodeId,
            signers,
            clock,
            log.child('sip-overlay'),
            (aor) => sip.location.bindings(aor),
          )
        : undefined;
    const users = new SipUserStore(options.dataDir, domain);
    if (sip && publisher) {
      sip.location.onChange((aor, bindings) => publisher.bindingsChanged(aor, bindings));
      // A certificate that arrives after the user's phones registered: publish them now.
      signers.onIssued = (user) => publisher.bindingsChanged(`${user}@${domain}`, sip.location.bindings(`${user}@${domain}`));
      signers.retryPending(() => users.list());
    }
    // Insertion: the phones registered here before a restart are here again, and stored in the overlay.
    const savedBindings = sip ? new SavedBindings(options.dataDir, sip.location, clock, log.child('sip')) : undefined;
    const people = new Set(users.list().map((user) => `${user}@${domain}`));
    const restored = savedBindings?.restore((aor) => people.has(aor)) ?? 0;
    if (restored) log.info('bindings-restored', { bindings: restored });
    const household = new HouseholdUsers(users, signers, sip, publisher);
    let daemon: PeerDaemon | undefined;
    const control = new ControlServer((request) => daemon!.handleControl(request), log.child('control'));
    control.listen(lock);
    daemon = new PeerDaemon(peer, lock, setup, authority, enrollment, configSync, sip, publisher, savedBindings, signers, household, options, random);
    const self = addressKey(advertised);
    const configured = (authority?.config.config.bootstrap ?? setup.bootstrap).filter((a) => addressKey(a) !== self);
    const bootstrap = options.bootstrap.length ? options.bootstrap : configured;
    peer.start(bootstrap);
    daemon.natUpkeep = new NatUpkeep(peer, bootstrap, options.relay !== 'off', log.child('relay'), (bind) => UdpLink.open(bind, log.child('probe')));
    daemon.natUpkeep.start();
    if (setup.mode === 'authority') daemon.scheduleRenewal();
    log.info('started', { nodeId: peer.status().nodeId as string, address: self, mode: setup.mode });
    return daemon;
  }

  /** Renews the certificate when a third of the overlay's certificate lifetime is left (RFC 6940 s11.3 leaves when to the node). */
  private scheduleRenewal(retryMs?: number): void {
    const { claims } = this.setup.identity.certificate;
    const renewAtMs = (claims.expires - this.currentConfig().config.certificateLifetimeSeconds / 3) * 1000;
    const delay = Math.min(retryMs ?? Math.max(1000, renewAtMs - Date.now()), 0x7fffffff);
    this.renewTimer = setTimeout(() => void this.renew(), delay);
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    const identity = this.setup.identity;
    const now = Math.floor(Date.now() / 1000);
    try {
      const renewed =
        this.authority && this.authority.name === identity.certificate.claims.issuer
          ? this.authority.issue(identity.keys.publicKey, identity.certificate.claims.subject, now, identity.nodeId)
          : await renewCertificate(identity, this.currentConfig().config, this.random, now);
      // Saved before it is used: one that could not be saved (a full disk) would be lost at the
      // next start, with the one on disk then perhaps expired; this way the renewal is tried again.
      saveIdentity(this.options.dataDir, 'authority', { ...identity, certificate: renewed });
      identity.certificate = renewed;
      this.options.log.info('certificate-renewed', { expires: new Date(renewed.claims.expires * 1000).toISOString() });
      this.scheduleRenewal();
    } catch (error) {
      const left = identity.certificate.claims.expires * 1000 - Date.now();
      this.options.log.warn('certificate-renewal-failed', { error: (error as Error).message, secondsLeft: Math.round(left / 1000) });
      this.scheduleRenewal(Math.max(1000, Math.min(60_000, left / 10)));
    }
  }

  private currentConfig(): SignedConfig {
    return this.configSync?.config ?? this.authority?.config ?? this.setup.config!;
  }

  /** Leaves the ring gracefully and releases the port and the control socket. */
  async stop(): Promise<void> {
    clearTimeout(this.renewTimer);
    this.natUpkeep?.stop();
    this.signers.close();
    this.savedBindings?.close();
    this.publisher?.close();
    await this.sip?.close();
    await this.enrollment?.close();
    await this.peer.leave();
    await this.lock.release();
    this.options.log.info('stopped');
  }

  status(): Record<string, unknown> {
    const peerStatus = this.peer.status();
    // The relays found by name, as measured when this node last chose one (nearest first).
    const nat = peerStatus.nat && this.natUpkeep ? { nat: { ...(peerStatus.nat as Record<string, unknown>), relayChoice: this.natUpkeep.relayRoundTrips, relayFailover: this.natUpkeep.counters, relayAnnouncements: this.natUpkeep.announcements } } : {};
    const status = { ...peerStatus, ...nat, ...(this.sip ? { sip: { ...this.sip.status(), overlay: this.publisher?.counters ?? null } } : {}), memory: memoryStatus() };
    if (this.setup.mode === 'open') return { ...status, warning: OPEN_MODE_WARNING };
    const { claims } = this.setup.identity.certificate;
    const { config } = this.currentConfig();
    // A device whose key the authority revoked is out of the overlay whatever its ring table says.
    const revoked = config.revoked.includes(keyFingerprint(claims.publicKey));
    return {
      ...status,
      ...(revoked ? { state: 'revoked' } : {}),
      enrollment: {
        user: claims.subject,
        issuer: claims.issuer,
        certificateExpires: new Date(claims.expires * 1000).toISOString(),
        configSequence: config.sequence,
        authorities: config.authorities.map((a) => ({ name: a.name, domains: a.domains, fingerprint: keyFingerprint(a.publicKey) })),
        revoked: config.revoked.length,
        authority: this.authority ? this.authority.name : null,
        configUpdates: this.configSync?.counters,
      },
    };
  }

  /** This home's SIP domain: a bare name on the command line (`lookup bob`) is a user of it. */
  private ownDomain(): string {
    return sipDomain(this.setup.identity.certificate.claims.subject, this.setup.overlayName);
  }

  private async handleControl(request: ControlRequest): Promise<unknown> {
    const { client, kinds, identity } = this.peer;
    switch (request.op) {
      case 'status':
        return this.status();
      case 'route':
        // A user's name (bare ones are this home's), or the relays' well-known name as it is.
        return traceRoute(this.peer.router, request.name === RELAY_SERVICE_NAME ? RELAY_SERVICE_NAME : userName(String(request.name), this.ownDomain()));
      case 'attach':
        return attachCommand(this.peer.attach, String(request.nodeId));
      case 'calls':
        return this.sip?.activeCalls() ?? [];
      case 'store':
        return storeCommand(client, kinds, identity, request);
      case 'fetch':
        return fetchCommand(client, kinds, identity, request.kind, request.name);
      case 'invite': {
        if (!this.authority) throw new EnrollmentRefused('this peer holds no enrollment authority: invite from the one that ran p2psip init');
        const invitation = this.authority.invite({ user: request.user, client: request.client, ttlSeconds: request.ttlSeconds, household: request.household, enrollAt: this.peer.address }, Math.floor(Date.now() / 1000));
        return { ...invitation, expires: new Date(invitation.expires * 1000).toISOString(), enrollAt: addressKey(this.peer.address) };
      }
      case 'lookup':
        return lookupUser(userName(String(request.aor), this.ownDomain()), client, kinds, this.sip, Date.now());
      case 'user-certificate':
        return this.signers.obtain(String(request.user).toLowerCase());
      case 'users':
        return this.household.list();
      case 'user-release': {
        const user = String(request.user).toLowerCase();
        // Its phones can register no more: their bindings go, and with them (signed while the
        // certificate still stands) the record that sends calls here.
        this.sip?.location.set(`${user}@${this.ownDomain()}`, []);
        const outcome = await this.signers.release(user);
        if (outcome.released && this.authority && this.configSync) this.configSync.publish(this.authority.config);
        return outcome;
      }
      case 'households':
        if (!this.authority) throw new EnrollmentRefused('this peer holds no enrollment authority: ask the one that ran p2psip init');
        return this.authority.households.users();
      case 'revoke': {
        if (!this.authority?.isRoot || !this.configSync) throw new EnrollmentRefused('only the peer holding the root authority can revoke: run this where p2psip init ran');
        const ownFingerprint = keyFingerprint(this.peer.identity.keys.publicKey);
        const result = this.authority.revoke({ user: request.user, fingerprint: request.fingerprint }, ownFingerprint, Math.floor(Date.now() / 1000));
        this.configSync.publish(result.config);
        return { users: result.users, fingerprints: result.fingerprints, configSequence: result.config.config.sequence, revoked: result.config.config.revoked.length };
      }
      default:
        throw new Error(`unknown control operation ${(request as { op: string }).op}`);
    }
  }
}

/**
 * A newer configuration takes effect: kept on disk, trust anchors and revocations replaced (links
 * whose certificate no longer holds are dropped), the authority signs from it. Kinds, limits and
 * replicas take effect at the next start.
 */
function adoptConfig(signed: SignedConfig, dataDir: string, setup: NodeSetup, authority: EnrollmentAuthority | undefined, peer: OverlayPeer): void {
  saveConfig(dataDir, signed);
  if (setup.trust instanceof AuthorityTrustPolicy) setup.trust.update(signed.config);
  authority?.adopt(signed);
  peer.sealedLink?.revalidate();
}

/** The address to tell others: the bind address, or for a wildcard bind the first external IPv4. */
function advertisableHost(bindHost: string): string {
  if (bindHost !== '0.0.0.0' && bindHost !== '::') return bindHost;
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) if (entry.family === 'IPv4' && !entry.internal) return entry.address;
  }
  return '127.0.0.1';
}

/**
 * The root authority's peer puts its own address in the configuration as a bootstrap peer and
 * as where it enrolls, so that joined nodes can find it again (to insert, and to renew).
 */
function announceEnrollmentAddress(authority: EnrollmentAuthority, address: Address, nowSeconds: number): void {
  const { config } = authority.config;
  const own = config.authorities.find((a) => a.name === authority.name);
  const key = addressKey(address);
  if (!authority.isRoot) return;
  if (own?.enrollAt && addressKey(own.enrollAt) === key && config.bootstrap.some((b) => addressKey(b) === key)) return;
  authority.updateConfig(
    (c) => ({
      authorities: c.authorities.map((a) => (a.name === authority.name ? { ...a, enrollAt: address } : a)),
      bootstrap: [address, ...c.bootstrap.filter((b) => addressKey(b) !== key)].slice(0, 8),
    }),
    nowSeconds,
  );
}

/** Resident memory and where it goes (MB): what a 256 MB router has to spare. */
function memoryStatus(): Record<string, number> {
  const m = process.memoryUsage();
  const mb = (bytes: number) => Math.round(bytes / 104857.6) / 10;
  return { rssMB: mb(m.rss), heapUsedMB: mb(m.heapUsed), heapTotalMB: mb(m.heapTotal), externalMB: mb(m.external), arrayBuffersMB: mb(m.arrayBuffers) };
}

/** The addresses phones on the LAN may know this host by: every interface's when bound to all of them. */
/** Every address of this host's interfaces (a relay on it must never send to any of them). */
function allInterfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

function localAddresses(bindHost: string): string[] {
  if (bindHost !== '0.0.0.0' && bindHost !== '::') return [bindHost];
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** The storage quota, lowered to what the backend's disk has room for (FileBackend.room), and said so. */
function fitToDisk(limits: StorageLimits, backend: StorageBackend, log: Logger): StorageLimits {
  const room = backend.room?.();
  if (room === undefined || room >= limits.maxBytesTotal) return limits;
  log.warn('storage-quota-fit-to-disk', { maxBytesTotal: room, asked: limits.maxBytesTotal });
  return { ...limits, maxBytesTotal: room };
}
