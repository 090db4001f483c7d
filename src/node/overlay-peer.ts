import type { P2psipError } from '../runtime/errors.js';
import type { NodeIdentity } from '../identity/identity.js';
import { overlayHash } from '../identity/ids.js';
import { believes, type TrustPolicy } from '../identity/trust.js';
import type { SignatureSuite } from '../identity/signature-suite.js';
import { DEFAULT_TRANSPORT_OPTIONS, HopTransport, type TransportOptions } from '../link/hop-transport.js';
import type { Link } from '../link/link.js';
import { NatTraversal } from '../nat/nat-traversal.js';
import type { PortMapper } from '../nat/port-mapping/port-mapper.js';
import { type BindingLifetime, BindingLifetimeProbe, keepaliveIntervalFor } from '../nat/binding-lifetime.js';
import { RELAY_LINK_LABEL } from '../nat/relay/allocation-key.js';
import { RelayLink } from '../nat/relay/relay-link.js';
import { SideChannelLink } from '../link/side-channel-link.js';
import { DEFAULT_RELAY_LIMITS, type ExposedPort, type RelayLimits, RelayServer } from '../nat/relay/relay-server.js';
import { DEFAULT_SEALED_LINK_OPTIONS, SEALED_FRAME_OVERHEAD, SealedLink, type SealedLinkOptions } from '../link/secure/sealed-link.js';
import { AttachService } from '../overlay/attach-service.js';
import { NatProbeService } from '../overlay/nat-probe-service.js';
import { serveDiagnostics } from '../overlay/diagnostics.js';
import { DEFAULT_ROUTER_OPTIONS, OverlayRouter } from '../overlay/router.js';
import type { StorageBackend } from '../storage/backends/backend.js';
import { KindRegistry } from '../storage/kind.js';
import { ResourceStore, type StorageLimits } from '../storage/resource-store.js';
import { StorageClient } from '../storage/storage-client.js';
import { DEFAULT_STORAGE_OPTIONS, StorageService } from '../storage/storage-service.js';
import { ChordTopology, DEFAULT_CHORD_OPTIONS } from '../overlay/topology/chord/chord-topology.js';
import { ClientTopology, DEFAULT_CLIENT_OPTIONS } from '../overlay/topology/client/client-topology.js';
import type { Topology } from '../overlay/topology/topology.js';
import { clockwise } from '../overlay/topology/chord/ring.js';
import type { Clock, TimerHandle } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import type { Random } from '../runtime/random.js';
import { type Address, addressKey } from '../wire/address.js';
import { type Id, idToHex } from '../wire/id.js';
import { nodeDestination } from '../wire/message.js';
import { MessageCode } from '../wire/message-codes.js';
import { pingReq } from '../wire/messages/ping.js';

/** How long insertion waits for the home router to map our port (PCP, NAT-PMP, then UPnP each try in turn). */
const PORT_MAPPING_WAIT_MS = 10_000;
/**
 * A port-mapped home relays through at most this many router forwards at once: home routers hold
 * few (some 32 in all), each is renewed every minute, and the family's own devices need theirs.
 */
const MAX_RELAY_FORWARDS = 16;

/**
 * One overlay node assembled from its parts. The same assembly runs on a device (UdpLink,
 * SystemClock) and in the simulator (SimLink, VirtualClock): only the injected parts differ.
 */
export interface OverlayTuning {
  readonly successors?: number;
  readonly stabilizeIntervalMs?: number;
  readonly requestTimeoutMs?: number;
  readonly transport?: Partial<TransportOptions>;
  /** Only the simulator may pass `simulatedSuite`. */
  readonly suite?: SignatureSuite;
  /** Simulator fault injection: a rogue peer that drops what it should forward. */
  readonly dropForwarded?: boolean;
  /**
   * `sealed` (the default): links are authenticated and encrypted (docs/security.md). `plain`
   * exists for the simulator's largest runs, where the key agreements would dominate.
   */
  readonly linkSecurity?: 'sealed' | 'plain';
  readonly sealedLink?: Partial<SealedLinkOptions>;
}

export interface OverlayPeerDeps {
  readonly identity: NodeIdentity;
  readonly trust: TrustPolicy;
  readonly link: Link;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly overlayName: string;
  /** The address others should use; defaults to the link's local address. */
  readonly advertisedAddress?: Address;
  readonly tuning?: OverlayTuning;
  /** Peers store for the overlay; leave it out for a node that only routes (tests). */
  readonly storage?: StorageSetup;
  /** A client (its certificate says so) neither routes nor stores: it attaches to one peer. */
  readonly role?: 'peer' | 'client';
  /** The overlay's kinds, when there is no storage setup to carry them (a client). */
  readonly kinds?: KindRegistry;
  /** Asks the home router to forward the overlay port (PCP, NAT-PMP, UPnP IGD); none: never asks. */
  readonly portMapper?: PortMapper;
  /** Opens another UDP socket on our host (RFC 5780: answering CHANGE-REQUEST from another port). */
  readonly openSocket?: (bind: Address) => Promise<Link>;
  /** Relay for nodes behind NATs (a peer with a public address): how to open relayed ports. */
  readonly relay?: { readonly openSocket: (bind: Address) => Promise<Link>; readonly limits?: Partial<RelayLimits>; /** This host's addresses: a relay never sends to them. */ readonly ownHosts?: readonly string[] };
}

export interface StorageSetup {
  readonly backend: StorageBackend;
  readonly kinds?: KindRegistry;
  readonly replicas?: number;
  readonly limits?: StorageLimits;
}

export class OverlayPeer {
  readonly router: OverlayRouter;
  readonly topology: Topology;
  readonly transport: HopTransport;
  readonly storage: StorageService | undefined;
  readonly client: StorageClient;
  readonly kinds: KindRegistry;
  /** The sealing layer under the transport, unless links are plain. */
  readonly sealedLink: SealedLink | undefined;
  /**
   * Told of a sign, seen above the overlay, that our public address may have changed (a call's
   * direct media path went quiet): NatUpkeep, once it runs, checks.
   */
  addressMayHaveChanged: () => void = () => {};
  /** STUN on the overlay port, candidates and connectivity checks (nat/). */
  readonly nat: NatTraversal;
  readonly attach: AttachService;
  private readonly relayLink: RelayLink;
  /** Media frames between home peers, on the overlay port, beside the sealed link (issue 16). */
  readonly mediaLink: SideChannelLink;
  private relayServerPart: RelayServer | undefined;
  private natProbe: NatProbeService | undefined;
  private bindingLifetime: BindingLifetime | undefined;
  private readonly advertised: Address;
  private hasStunServers = false;

  constructor(private readonly deps: OverlayPeerDeps) {
    const tuning = deps.tuning ?? {};
    const suite = tuning.suite ?? DEFAULT_ROUTER_OPTIONS.suite;
    const overlayId = overlayHash(deps.overlayName);
    this.advertised = deps.advertisedAddress ?? deps.link.localAddress;
    // Relaying sits under the sealing: links through a relay are sealed end to end.
    this.relayLink = new RelayLink(deps.link);
    this.mediaLink = new SideChannelLink(this.relayLink);
    this.sealedLink =
      tuning.linkSecurity === 'plain'
        ? undefined
        : new SealedLink(this.mediaLink, {
            identity: deps.identity,
            trust: deps.trust,
            suite,
            clock: deps.clock,
            random: deps.random,
            log: deps.log.child('seal'),
            overlayId,
            options: { ...DEFAULT_SEALED_LINK_OPTIONS, ...tuning.sealedLink },
          });
    const transportOptions = { ...DEFAULT_TRANSPORT_OPTIONS, ...tuning.transport };
    this.transport = new HopTransport(
      this.sealedLink ?? this.mediaLink,
      deps.clock,
      deps.identity.nodeId,
      () => deps.random.u32() & 0x3fffffff,
      deps.log.child('link'),
      // A sealed frame wraps the link frame; the datagram on the wire stays within the budget.
      this.sealedLink ? { ...transportOptions, datagramBudget: transportOptions.datagramBudget - SEALED_FRAME_OVERHEAD } : transportOptions,
    );
    this.nat = new NatTraversal({
      clock: deps.clock,
      random: deps.random,
      log: deps.log.child('nat'),
      host: () => this.advertised,
      sendRaw: (to, datagram) => this.transport.sendRaw(to, datagram),
      relayLink: this.relayLink,
      linkSecret: (address, label) => this.sealedLink?.exportedSecrets(address, label)[0],
      // Only a peer with a public address answers RFC 5780's CHANGE-REQUEST.
      changeResponder: () => (this.attachFirst ? undefined : this.natProbe),
      isEnrolled: (address) => this.sealedLink?.peerAt(address) !== undefined,
      relayServer: (this.relayServerPart = deps.relay
        ? new RelayServer({
            clock: deps.clock,
            random: deps.random,
            log: deps.log.child('relay-server'),
            host: this.advertised.host,
            openSocket: deps.relay.openSocket,
            sendRaw: (to, datagram) => this.transport.sendRaw(to, datagram),
            nodeAt: (address) => {
              const peer = this.sealedLink?.peerAt(address);
              if (!peer) return undefined;
              const certificate = peer.certificate.bytes;
              const linkSecrets = this.sealedLink!.exportedSecrets(address, RELAY_LINK_LABEL);
              return { id: idToHex(peer.nodeIds[0]), stillBelieved: () => believes(deps.trust, certificate, Math.floor(deps.clock.wallTime() / 1000)), linkSecrets };
            },
            limits: { ...DEFAULT_RELAY_LIMITS, ...deps.relay.limits },
            ...(deps.relay.ownHosts ? { ownHosts: deps.relay.ownHosts } : {}),
            serving: () => this.mayRelay,
            exposePort: (port, lost) => this.exposeRelayPort(port, lost),
          })
        : undefined),
    });
    this.transport.onStun((from, datagram) => this.nat.receive('host', from, datagram));
    const isClient = deps.role === 'client';
    const attacher = () => this.attach;
    this.topology = isClient
      ? new ClientTopology({ ...DEFAULT_CLIENT_OPTIONS, advertisedAddress: () => this.advertised, attacher, clock: deps.clock, log: deps.log.child('client') })
      : new ChordTopology({
          ...DEFAULT_CHORD_OPTIONS,
          successors: tuning.successors ?? DEFAULT_CHORD_OPTIONS.successors,
          stabilizeIntervalMs: tuning.stabilizeIntervalMs ?? DEFAULT_CHORD_OPTIONS.stabilizeIntervalMs,
          advertisedAddress: () => this.advertised,
          attacher,
          attachFirst: () => this.attachFirst,
        });
    this.router = new OverlayRouter(deps.identity, deps.trust, this.transport, deps.clock, deps.random, this.topology, deps.log.child('overlay'), {
      ...DEFAULT_ROUTER_OPTIONS,
      requestTimeoutMs: tuning.requestTimeoutMs ?? DEFAULT_ROUTER_OPTIONS.requestTimeoutMs,
      suite,
      dropForwarded: tuning.dropForwarded,
      overlayName: deps.overlayName,
      overlayId,
    });
    this.attach = new AttachService(this.router, this.nat);
    this.natProbe = isClient
      ? undefined
      : new NatProbeService({
          router: this.router,
          topology: this.topology,
          host: () => this.advertised,
          sendRaw: (to, datagram) => this.transport.sendRaw(to, datagram),
          openSocket: deps.openSocket ?? deps.relay?.openSocket,
          log: deps.log.child('nat-probe'),
        });
    this.kinds = deps.storage?.kinds ?? deps.kinds ?? new KindRegistry();
    this.client = new StorageClient(this.router, deps.identity, deps.trust, suite);
    if (deps.storage && !isClient) {
      const store = new ResourceStore(this.kinds, deps.storage.limits);
      this.storage = new StorageService(this.router, this.topology, deps.trust, suite, store, deps.storage.backend, deps.log.child('storage'), {
        ...DEFAULT_STORAGE_OPTIONS,
        replicas: deps.storage.replicas ?? DEFAULT_STORAGE_OPTIONS.replicas,
      });
      this.storage.start();
    }
    serveDiagnostics(this.router, {
      numResources: () => this.storage?.store.size.resources ?? 0,
      responsibleShare: () => this.responsibleShare(),
      successorIds: () => this.topology.successorIds(),
    });
  }

  get nodeId(): bigint {
    return this.deps.identity.nodeId;
  }

  get identity(): NodeIdentity {
    return this.deps.identity;
  }

  /** The user name of this node's certificate. */
  get subject(): string {
    return this.deps.identity.certificate.claims.subject;
  }

  get address(): Address {
    return this.advertised;
  }

  /** Insertion (RFC 7890 s3): learn our address as the bootstrap peers see it, then join. */
  start(bootstrap: readonly Address[]): void {
    this.hasStunServers = bootstrap.some((a) => addressKey(a) !== addressKey(this.advertised));
    this.nat.learnReflexive(bootstrap, () => {
      if (!this.attachFirst) return this.topology.start(bootstrap);
      // Behind a NAT: ask it to forward our port, then learn how it behaves (RFC 5780) before
      // talking to anyone else.
      void this.mapPort(bootstrap).then(() => this.nat.discover(bootstrap[0], bootstrap[1], () => {
        if (!this.attachFirst || this.sealedLink === undefined) return this.topology.start(bootstrap);
        // Behind a filtering NAT, the admitting peer may be behind one too: take a relay
        // allocation on a bootstrap peer first, so even the Join's Attach has a relayed candidate.
        this.allocateRelayOn(bootstrap, () => this.topology.start(bootstrap));
      }));
    });
  }

  /** A forwarded port goes into our candidates; the reflexive address is learnt again after it. */
  private async mapPort(bootstrap: readonly Address[]): Promise<void> {
    const mapper = this.deps.portMapper;
    if (!mapper) return;
    // Whatever the router does later (renewed elsewhere, lost, back), our candidates follow at once.
    mapper.onChange = (changed) => {
      this.nat.portMapped = changed?.external;
      // Relayed ports are no use when clients cannot reach our overlay port to keep them.
      if (!this.mayRelay) void this.relayServerPart?.endAll();
    };
    // Insertion waits for the router a bounded time; a mapping that comes later still counts (onChange).
    let timer: TimerHandle | undefined;
    const deadline = new Promise<undefined>((resolve) => (timer = this.deps.clock.setTimer(PORT_MAPPING_WAIT_MS, () => resolve(undefined))));
    const mapping = await Promise.race([mapper.map().catch(() => undefined), deadline]);
    this.deps.clock.clearTimer(timer);
    if (!mapping) return;
    await new Promise<void>((resolve) => this.nat.learnReflexive(bootstrap, () => resolve()));
  }

  /**
   * A relay allocation on the first of `relays` that grants one. A relay serves sealed links only,
   * so one is opened to each in turn before its Allocate (before, only to the first: the others
   * could serve only a node that happened to hold a link with them). `firstId` is the first
   * relay's Node-ID, when it was found by name.
   */
  allocateRelayOn(relays: readonly Address[], done: (ok: boolean) => void, firstId?: Id): void {
    const [first, ...rest] = relays;
    if (!first) return done(false);
    this.openSealedLink(first, firstId, () => this.nat.relay.allocate([first], (relayed) => (relayed ? done(true) : this.allocateRelayOn(rest, done))));
  }

  /**
   * Has a sealed link with the peer at `to` (at once if one is open: a call may be waiting), by a
   * Ping whose handshake and retransmissions the hop layer carries. With the peer's Node-ID the Ping
   * is for the peer itself, which answers over that same link; only without it is the Ping for us,
   * routed back by the peer through the ring, which may still lead through a peer that just died.
   */
  openSealedLink(to: Address, nodeId: Id | undefined, done: (error?: P2psipError) => void): void {
    if (!this.sealedLink || this.sealedLink.peerAt(to)) return done();
    const startedAt = this.router.clock.now();
    this.router.request([nodeDestination(nodeId ?? this.nodeId)], MessageCode.PingReq, pingReq.encode({}), (error) => {
      // A relay we could not reach costs whoever waits on it this long: say so (relay failover's steps).
      this.deps.log.child('relay').info('sealed-link-opened', { to: addressKey(to), ok: !error, ms: this.router.clock.now() - startedAt, ...(error ? { error: error.message } : {}) });
      done(error);
    }, { firstHop: to, timeoutMs: 3_000 });
  }

  /** Behind a NAT that drops what it did not ask for: others must Attach first. */
  get attachFirst(): boolean {
    return !this.nat.reachableUnsolicited(this.hasStunServers);
  }

  /** Router forwards held for relay allocations (a port-mapped home's). */
  private relayForwards = 0;

  /** The relay server, if this node has one (whether it may serve now is `mayRelay`). */
  get relayServer(): RelayServer | undefined {
    return this.relayServerPart;
  }

  /**
   * Whether this peer may relay now: its relayed ports must be reachable from the internet, so
   * its own address is public, or the router forwards its overlay port (STUN confirmed it) and
   * will forward each relayed port the same way.
   */
  get mayRelay(): boolean {
    if (this.relayServerPart === undefined) return false;
    return this.nat.noNat(this.hasStunServers) || (this.deps.portMapper !== undefined && this.nat.confirmedPortMapping() !== undefined);
  }

  /** Where relays find us (RELAY-SERVICE): our own address, or the router's forward of our overlay port. */
  get relayAddress(): Address {
    return this.nat.noNat(this.hasStunServers) ? this.advertised : (this.nat.confirmedPortMapping() ?? this.advertised);
  }

  /**
   * Where the internet reaches a relayed port of ours: at our own address when nothing stands in
   * front of it; behind a router that forwards our overlay port, at a forward of its own, asked
   * for the same way and taken only on the external address STUN confirmed for the overlay port.
   */
  private async exposeRelayPort(port: number, lost: () => void): Promise<ExposedPort | undefined> {
    if (this.nat.noNat(this.hasStunServers)) return { external: { host: this.advertised.host, port }, close: async () => {} };
    const confirmed = this.nat.confirmedPortMapping();
    if (!confirmed || this.relayForwards >= MAX_RELAY_FORWARDS) return undefined;
    const mapper = this.deps.portMapper?.forPort(port);
    if (!mapper) return undefined;
    this.relayForwards++;
    const mapping = await mapper.map().catch(() => undefined);
    const close = (): Promise<void> => {
      mapper.onChange = () => {};
      this.relayForwards--;
      return mapper.remove();
    };
    // The same port outside as inside: what the relay sends leaves from the port it announced.
    if (!mapping || mapping.external.host !== confirmed.host || mapping.external.port !== port) {
      await close();
      return undefined;
    }
    // Gone, or moved (a new WAN address): the allocation ends, and its client takes another relay.
    mapper.onChange = (changed) => (changed && addressKey(changed.external) === addressKey(mapping.external) ? undefined : lost());
    return { external: mapping.external, close };
  }

  /**
   * Measures how long the NAT keeps an idle binding (RFC 5780 s4.6) against a public peer and
   * sets the keepalive interval from it; until then keepalives go every 25 s.
   */
  async measureBindingLifetime(server: Address, openSocket: (bind: Address) => Promise<Link>): Promise<void> {
    const probe = new BindingLifetimeProbe(this.deps.clock, this.deps.random, openSocket, this.advertised.host, server);
    const lifetime = await probe.measure().catch(() => undefined);
    if (!lifetime) return;
    const keepaliveMs = keepaliveIntervalFor(lifetime, DEFAULT_TRANSPORT_OPTIONS.keepaliveIntervalMs);
    this.bindingLifetime = lifetime;
    this.transport.setKeepaliveInterval(keepaliveMs);
    this.deps.log.info('binding-lifetime', { survivedSeconds: lifetime.survivedSeconds, expiredBySeconds: lifetime.expiredBySeconds, keepaliveMs });
  }

  get stun() {
    return this.nat.stun;
  }

  /** Graceful: tell the neighbours, then close the link and the store. */
  leave(): Promise<void> {
    this.storage?.stop();
    // The router's forwards go with us: our own, and those of the relayed ports we hold for others.
    const unmapped = Promise.all([this.deps.portMapper?.remove(), this.relayServerPart?.close()]);
    return new Promise<void>((resolve) => {
      this.topology.leave(() => {
        this.router.abortAll('node stopped');
        this.nat.close();
        this.transport.stop().then(resolve, resolve);
      });
    })
      .then(() => unmapped)
      .then(() => this.storage?.backend.close());
  }

  /** Abrupt: as if the power went (the simulator's failures). */
  halt(): void {
    this.storage?.stop();
    this.topology.halt();
    this.router.abortAll('node halted');
    this.nat.close();
    void this.transport.stop();
  }

  /** The relay server our datagrams to `address` go through, if they go through ours. */
  relayServerFor(address: Address): Address | undefined {
    return this.relayLink.isRouted(address) ? this.nat.relay.server : undefined;
  }

  status(): Record<string, unknown> {
    return {
      role: this.deps.role ?? 'peer',
      nodeId: idToHex(this.nodeId),
      overlay: this.deps.overlayName,
      mode: this.deps.trust.mode,
      address: `${this.advertised.host}:${this.advertised.port}`,
      uptimeSeconds: this.router.uptimeSeconds(),
      ...this.topology.status(),
      router: { ...this.router.counters, pending: this.router.pendingCount(), connections: this.router.connections.size },
      transport: { ...this.transport.counters, ...this.transport.stats() },
      stun: { ...this.stun.counters },
      nat: {
        ...this.nat.status(),
        attachFirst: this.attachFirst,
        attach: { ...this.attach.counters },
        ...(this.natProbe && !this.attachFirst ? { changeRequests: { ...this.natProbe.counters } } : {}),
        portMapping: this.deps.portMapper ? this.deps.portMapper.status() : 'off',
        // What goes through our own relay allocation: datagrams wrapped and unwrapped, and the peers reached through it.
        relayLink: { wrapped: this.relayLink.wrapped, unwrapped: this.relayLink.unwrapped, routedPeers: this.relayLink.routedPeers().map(addressKey) },
        // Where this peer relays for others (RELAY-SERVICE), when it may: null when it may not.
        relaying: this.mayRelay ? addressKey(this.relayAddress) : null,
        bindingLifetime: this.bindingLifetime ?? null,
        keepaliveMs: this.transport.keepaliveIntervalMs,
      },
      linkSecurity: this.sealedLink ? { mode: 'sealed', ...this.sealedLink.status() } : { mode: 'plain' },
      ...(this.storage ? { storage: this.storage.status() } : {}),
    };
  }

  private responsibleShare(): number {
    const pred = this.topology.predecessorIds()[0];
    if (pred === undefined) return 0xffffffff;
    return Number(clockwise(pred, this.nodeId) >> 96n);
  }
}
