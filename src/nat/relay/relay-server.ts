import type { Link } from '../../link/link.js';
import type { Clock, TimerHandle } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import { bytesToHex } from '../../runtime/hex.js';
import type { Random } from '../../runtime/random.js';
import { type RateLimit, TokenBucket } from '../../runtime/token-bucket.js';
import { type Address, addressKey } from '../../wire/address.js';
import { integrityValid, seal } from '../stun/integrity.js';
import { isGlobalUnicast } from '../address-scope.js';
import { Attr, attribute, encodeStun, encodeXorAddress, StunClass, type StunMessage, StunMethod } from '../stun/message.js';
import { allocationKey, newKeyShare } from './allocation-key.js';
import { DEFAULT_LIFETIME_SECONDS, decodeIndication, encodeIndication, errorAnswer, lifetimeAttr, peerAddresses, readLifetime } from './turn-codec.js';

/*
 * A relay peer (RFC 6940 s9 with TURN, RFC 8656): for a node whose NAT lets no one in, it opens
 * a UDP port (the relayed address) and passes datagrams between that port and the node,
 * wrapped in Send and Data indications on the relay's overlay port. Only peers the node has
 * given a permission reach it (s9), and permissions are only for global unicast addresses, never
 * the relay's own, so no node reaches the relay owner's LAN, loopback or router through it. The
 * Allocate and its answer agree on a key (allocation-key.ts); every later request and Send
 * indication must carry MESSAGE-INTEGRITY under it, so someone who forges the node's source
 * address can neither end nor use its allocation (RFC 8656 uses long-term credentials for this;
 * our nodes already proved who they are on the sealed link, so a per-allocation key is enough).
 * Strangers get no answer.
 * Limits: allocations in all and per node, and a datagram rate per relayed pair, so one pair
 * cannot take the relay's uplink from the others.
 */
export interface RelayLimits {
  readonly maxAllocations: number;
  readonly maxPerNode: number;
  readonly pairRate: RateLimit;
  readonly maxLifetimeSeconds: number;
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxAllocations: 64,
  maxPerNode: 2,
  pairRate: { ratePerSecond: 400, burst: 800 },
  maxLifetimeSeconds: 3600,
};

const PERMISSION_MS = 300_000;
/**
 * After an Allocate that does not match, how long the allocation's holder has to show it is alive
 * (a request or Send under the key; a live client refreshes every 5 s at most) before the
 * allocation is taken for a crashed node's, and ended so that the node, restarted on the same
 * port, can allocate again.
 */
const DOUBT_MS = 15_000;
/**
 * Live permissions one allocation may hold: a node behind a NAT talks through its relay to its
 * neighbours, fingers and the homes it is in calls with, a few dozen hosts. Expired ones are
 * forgotten as new ones come, so the map never grows past this.
 */
const MAX_PERMISSIONS = 128;
/**
 * How long an Allocate's transaction ID is remembered once served: as long as the link session
 * its integrity was keyed with may live (an hour until a rekey, and an hour more as the older
 * session), so a captured Allocate cannot open an allocation again once its own has ended.
 */
const SERVED_ALLOCATE_MS = 2 * 3_600_000;
const MAX_SERVED_ALLOCATES = 4096;
/**
 * Answers telling a node of an older release why it gets no allocation, in all: larger than the
 * Allocate that asks, and its source can be forged (as any linked node's), so they are few.
 */
const OLDER_RELEASE_ANSWERS: RateLimit = { ratePerSecond: 1, burst: 5 };

export interface RelayServerDeps {
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  /** The host the relayed ports are bound to and announced at. */
  readonly host: string;
  readonly openSocket: (bind: Address) => Promise<Link>;
  /** Sends from the relay's own (overlay) port. */
  readonly sendRaw: (to: Address, datagram: Uint8Array) => void;
  /**
   * The enrolled node behind a client address (its sealed link), if any: its Node-ID, whether
   * its certificate is still believed (asked again at every Refresh and CreatePermission, so a
   * node revoked or expired since it allocated loses its relay), and the link's secrets for
   * RELAY_LINK_LABEL, one per session, which its Allocate must carry MESSAGE-INTEGRITY under.
   */
  readonly nodeAt: (address: Address) => RelayClientNode | undefined;
  /** This host's own addresses: never a permitted peer. */
  readonly ownHosts?: readonly string[];
  /** Whether relayed ports would be reachable now (our address is public or the router forwards for us); else Allocates get 508. */
  readonly serving?: () => boolean;
  /**
   * Where the internet reaches a relayed port of ours: on a port-mapped home, a forward of its own
   * from the router (`lost` when the router drops it); nothing when none can be had. Without it,
   * the port is reachable at `host` itself (a public address).
   */
  readonly exposePort?: (port: number, lost: () => void) => Promise<ExposedPort | undefined>;
  readonly limits: RelayLimits;
}

export interface ExposedPort {
  readonly external: Address;
  close(): Promise<void>;
}

export interface RelayServerCounters {
  allocations: number;
  refused: number;
  relayedToPeers: number;
  relayedToClients: number;
  droppedNoPermission: number;
  droppedOverRate: number;
  /** Permissions refused: not a global unicast address, or one of the relay's own. */
  forbiddenPeers: number;
  /** Requests and Send indications without valid MESSAGE-INTEGRITY under the allocation's key, dropped. */
  unauthenticated: number;
  /** Allocations ended because we could no longer relay (endAll). */
  endedUnreachable: number;
  /** Allocations ended because their node's certificate was no longer believed (revoked, expired). */
  endedNotEnrolled: number;
  /** Allocations ended because another Allocate came from their address and they fell silent (a restarted node). */
  endedSuperseded: number;
}

export interface RelayClientNode {
  readonly id: string;
  readonly stillBelieved: () => boolean;
  readonly linkSecrets: readonly Uint8Array[];
}

interface Allocation {
  readonly client: Address;
  readonly node: string;
  readonly stillBelieved: () => boolean;
  readonly socket: Link;
  /** Where peers send to reach the client (the port's forward on the router, for a port-mapped relay). */
  readonly relayed: Address;
  readonly exposed: ExposedPort;
  readonly key: Uint8Array;
  /** The relay's X25519 share the key was agreed with, for the answer and its retransmissions. */
  readonly share: Uint8Array;
  /** The Allocate that made it: only its retransmissions are answered again. */
  readonly allocateId: string;
  readonly permissions: Map<string, number>;
  readonly pairs: Map<string, TokenBucket>;
  expiry: TimerHandle | undefined;
  /** When a request or Send under the key last came (ms). */
  heardAt: number;
  /** Set while a mismatched Allocate waits to see whether the holder is alive. */
  doubt: TimerHandle | undefined;
}

export class RelayServer {
  readonly counters: RelayServerCounters = { allocations: 0, refused: 0, relayedToPeers: 0, relayedToClients: 0, droppedNoPermission: 0, droppedOverRate: 0, forbiddenPeers: 0, unauthenticated: 0, endedUnreachable: 0, endedNotEnrolled: 0, endedSuperseded: 0 };
  private readonly allocations = new Map<string, Allocation>();
  /** Allocates still being set up (a router forward can take a while), by client address: their node. */
  private readonly opening = new Map<string, string>();
  private closed = false;
  /** Allocates under way, which close() waits for (each gives back what it got once it sees us closed). */
  private readonly settling = new Set<Promise<unknown>>();
  private readonly ownHosts: ReadonlySet<string>;
  /** Transaction IDs (hex) of Allocates served, with when they may be forgotten (ms), oldest first. */
  private readonly servedAllocates = new Map<string, number>();
  private readonly olderReleaseAnswers: TokenBucket;

  constructor(private readonly deps: RelayServerDeps) {
    this.ownHosts = new Set([deps.host, ...(deps.ownHosts ?? [])].map((h) => h.toLowerCase()));
    this.olderReleaseAnswers = new TokenBucket(OLDER_RELEASE_ANSWERS, deps.clock);
  }

  /** Takes the TURN messages among what reached the overlay port (`bytes`: as received); false for anything else. */
  handle(from: Address, message: StunMessage, bytes: Uint8Array): boolean {
    const isSend = message.klass === StunClass.Indication && message.method === StunMethod.Send;
    const isTurnRequest = message.klass === StunClass.Request && (message.method === StunMethod.Allocate || message.method === StunMethod.Refresh || message.method === StunMethod.CreatePermission);
    if (!isSend && !isTurnRequest) return false;
    if (message.method === StunMethod.Allocate) {
      const settled = this.allocate(from, message, bytes).catch((error: unknown) => this.deps.log.warn('relay-allocate-failed', { error }));
      this.settling.add(settled);
      void settled.then(() => this.settling.delete(settled));
      return true;
    }
    // Everything after Allocate proves it comes from the allocation's holder; else it is dropped unanswered.
    const allocation = this.allocations.get(addressKey(from));
    if (!allocation || !integrityValid(bytes, message, allocation.key)) {
      this.counters.unauthenticated++;
      return true;
    }
    allocation.heardAt = this.deps.clock.now();
    if (isSend) {
      this.relayToPeer(allocation, message);
      return true;
    }
    if (!allocation.stillBelieved()) {
      // Revoked or expired since it allocated: its relay ends here, whatever keys it holds.
      this.counters.endedNotEnrolled++;
      void this.release(allocation);
      this.deps.sendRaw(from, errorAnswer(message.method, message.transactionId, 403, 'Forbidden: no longer an enrolled node', allocation.key));
      return true;
    }
    if (message.method === StunMethod.Refresh) this.refresh(allocation, message);
    else this.permit(allocation, message);
    return true;
  }

  status(): Record<string, unknown> {
    return { ...this.counters, active: this.allocations.size, limits: { maxAllocations: this.deps.limits.maxAllocations, maxPerNode: this.deps.limits.maxPerNode, pairDatagramsPerSecond: this.deps.limits.pairRate.ratePerSecond } };
  }

  get free(): number {
    return this.deps.limits.maxAllocations - this.allocations.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.releaseAll();
    await Promise.all(this.settling);
  }

  /**
   * Ends every allocation now, its socket and router forward given back: we may no longer relay
   * (our router stopped forwarding our overlay port, so clients cannot refresh, and new Allocates
   * get 508 meanwhile). Each client's liveness check finds its allocation gone and it moves on.
   */
  async endAll(): Promise<void> {
    this.counters.endedUnreachable += this.allocations.size;
    await this.releaseAll();
  }

  private releaseAll(): Promise<unknown> {
    return Promise.all([...this.allocations.values()].map((a) => this.release(a)));
  }

  // --- requests (RFC 8656 s7-s9) ---

  private async allocate(from: Address, request: StunMessage, bytes: Uint8Array): Promise<void> {
    const key = addressKey(from);
    const enrolled = this.deps.nodeAt(from);
    if (!enrolled) {
      this.counters.refused++; // a stranger: dropped, not answered (no reflection, no amplification)
      return;
    }
    // Only the node at the far end of the sealed link can key its Allocate with the link's secret;
    // a host that passes the link's datagrams along, or forges its address, cannot.
    const linkSecret = enrolled.linkSecrets.find((secret) => integrityValid(bytes, request, secret));
    const answer = (answerBytes: Uint8Array): void => this.deps.sendRaw(from, answerBytes);
    if (!linkSecret) {
      this.counters.unauthenticated++;
      // None at all: a node of an earlier release, told so. The answer holds nothing and goes only
      // to a linked address, but it is larger than the request, so at most one a second in all.
      if (!attribute(request, Attr.MessageIntegrity) && this.olderReleaseAnswers.take()) answer(errorAnswer(StunMethod.Allocate, request.transactionId, 400, 'Bad Request: no integrity under the sealed link (this node runs an older p2psip)'));
      return;
    }
    const refuse = (code: number, reason: string): void => {
      this.counters.refused++;
      answer(errorAnswer(StunMethod.Allocate, request.transactionId, code, reason, linkSecret));
    };
    const existing = this.allocations.get(key);
    if (existing) {
      // A retransmission gets the same answer (s7.2). Any other Allocate from this 5-tuple gets 437:
      // the node restarted on the same port (or a second start of it), and the live one keeps it.
      if (bytesToHex(request.transactionId) === existing.allocateId) return answer(this.allocated(request, existing, linkSecret));
      this.doubt(existing);
      return refuse(437, 'Allocation Mismatch');
    }
    if (this.opening.has(key) || this.closed || this.servedBefore(request.transactionId)) return;
    const node = enrolled.id;
    const nodeShare = attribute(request, Attr.KeyShare)?.value;
    const share = newKeyShare(this.deps.random);
    let agreed: Uint8Array;
    try {
      agreed = allocationKey(share, nodeShare ?? new Uint8Array(0), linkSecret, request.transactionId, 'relay');
    } catch {
      return refuse(400, 'Bad Request: no X25519 key share (the node runs an older p2psip)');
    }
    if (this.deps.serving && !this.deps.serving()) return refuse(508, 'Insufficient Capacity: this peer is behind a NAT, its relayed ports would not be reachable');
    if (this.allocations.size + this.opening.size >= this.deps.limits.maxAllocations) return refuse(508, 'Insufficient Capacity');
    const held = [...this.allocations.values()].filter((a) => a.node === node).length + [...this.opening.values()].filter((n) => n === node).length;
    if (held >= this.deps.limits.maxPerNode) return refuse(486, 'Allocation Quota Reached');
    this.opening.set(key, node);
    let socket: Link;
    try {
      socket = await this.deps.openSocket({ host: this.deps.host, port: 0 });
    } catch (error) {
      this.opening.delete(key);
      this.deps.log.warn('relay-socket-failed', { error });
      return refuse(508, 'Insufficient Capacity');
    }
    const port = socket.localAddress.port;
    const lost = (): void => {
      const current = this.allocations.get(key);
      if (current?.socket === socket) void this.release(current); // the client's liveness check finds it gone and moves on
    };
    const exposed = this.deps.exposePort ? await this.deps.exposePort(port, lost).catch(() => undefined) : { external: { host: this.deps.host, port }, close: async () => {} };
    this.opening.delete(key);
    if (!exposed || this.closed) {
      // (Closed meanwhile: the forward the router just granted goes back at once, never left behind.)
      await Promise.all([socket.close(), exposed?.close()]);
      return exposed ? undefined : refuse(508, 'Insufficient Capacity: the router would not forward a relayed port');
    }
    const allocation: Allocation = { client: from, node, stillBelieved: enrolled.stillBelieved, socket, relayed: exposed.external, exposed, key: agreed, share: share.publicKey, allocateId: bytesToHex(request.transactionId), permissions: new Map(), pairs: new Map(), expiry: undefined, heardAt: this.deps.clock.now(), doubt: undefined };
    socket.onDatagram((peer, datagram) => this.relayToClient(allocation, peer, datagram));
    this.allocations.set(key, allocation);
    this.counters.allocations++;
    this.expireIn(allocation, this.lifetime(request));
    answer(this.allocated(request, allocation, linkSecret));
  }

  /** Whether this Allocate was served before (a replay, its allocation ended); else it is noted as served now. */
  private servedBefore(transactionId: Uint8Array): boolean {
    const id = bytesToHex(transactionId);
    const now = this.deps.clock.now();
    if ((this.servedAllocates.get(id) ?? -Infinity) > now) {
      this.counters.refused++;
      return true;
    }
    for (const [old, until] of this.servedAllocates) {
      if (until > now && this.servedAllocates.size < MAX_SERVED_ALLOCATES) break;
      this.servedAllocates.delete(old); // expired, or the oldest when full
    }
    this.servedAllocates.set(id, now + SERVED_ALLOCATE_MS);
    return false;
  }

  /** The Allocate's answer, under the link's secret: only the relay at the far end of the link could have given it. */
  private allocated(request: StunMessage, allocation: Allocation, linkSecret: Uint8Array): Uint8Array {
    return seal(
      encodeStun(StunMethod.Allocate, StunClass.Success, request.transactionId, [
        { type: Attr.XorRelayedAddress, value: encodeXorAddress(allocation.relayed, request.transactionId) },
        { type: Attr.XorMappedAddress, value: encodeXorAddress(allocation.client, request.transactionId) },
        lifetimeAttr(this.lifetime(request)),
        { type: Attr.KeyShare, value: allocation.share },
      ]),
      linkSecret,
    );
  }

  private refresh(allocation: Allocation, request: StunMessage): void {
    const lifetime = this.lifetime(request);
    if (lifetime === 0) void this.release(allocation);
    else this.expireIn(allocation, lifetime);
    this.deps.sendRaw(allocation.client, seal(encodeStun(StunMethod.Refresh, StunClass.Success, request.transactionId, [lifetimeAttr(lifetime)]), allocation.key));
  }

  private permit(allocation: Allocation, request: StunMessage): void {
    const answer = (bytes: Uint8Array) => this.deps.sendRaw(allocation.client, bytes);
    let peers: Address[] = [];
    try {
      peers = peerAddresses(request);
    } catch {
      // An address that cannot be read is a Bad Request (below), not a fault of the relay's.
    }
    if (peers.length === 0 || peers.length > 16) return answer(errorAnswer(StunMethod.CreatePermission, request.transactionId, 400, 'Bad Request', allocation.key));
    // RFC 8656 s9.1 lets a relay refuse peers by policy (403): ours is global unicast, not our own addresses.
    // (A port-mapped relay's own public address is its router's: never a peer either.)
    const own = new Set([...this.ownHosts, allocation.relayed.host.toLowerCase()]);
    if (!peers.every((peer) => isGlobalUnicast(peer.host, own))) {
      this.counters.forbiddenPeers++;
      return answer(errorAnswer(StunMethod.CreatePermission, request.transactionId, 403, 'Forbidden: only global unicast peers', allocation.key));
    }
    const now = this.deps.clock.now();
    for (const [host, until] of allocation.permissions) if (until <= now) allocation.permissions.delete(host);
    const added = new Set(peers.map((peer) => peer.host).filter((host) => !allocation.permissions.has(host)));
    if (allocation.permissions.size + added.size > MAX_PERMISSIONS) {
      this.counters.refused++;
      return answer(errorAnswer(StunMethod.CreatePermission, request.transactionId, 508, `Insufficient Capacity: ${MAX_PERMISSIONS} permissions`, allocation.key));
    }
    for (const peer of peers) allocation.permissions.set(peer.host, now + PERMISSION_MS);
    answer(seal(encodeStun(StunMethod.CreatePermission, StunClass.Success, request.transactionId, []), allocation.key));
  }

  // --- relaying (s11, s12) ---

  private relayToPeer(allocation: Allocation, indication: StunMessage): void {
    const carried = decodeIndication(indication);
    if (!carried) return;
    if (!this.permitted(allocation, carried.peer)) return;
    if (!this.pairBudget(allocation, carried.peer)) return;
    this.counters.relayedToPeers++;
    allocation.socket.send(carried.peer, carried.data);
  }

  private relayToClient(allocation: Allocation, peer: Address, datagram: Uint8Array): void {
    if (!this.permitted(allocation, peer)) return;
    if (!this.pairBudget(allocation, peer)) return;
    this.counters.relayedToClients++;
    this.deps.sendRaw(allocation.client, encodeIndication(StunMethod.Data, this.deps.random.bytes(12), peer, datagram));
  }

  private permitted(allocation: Allocation, peer: Address): boolean {
    const until = allocation.permissions.get(peer.host);
    if (until !== undefined && until > this.deps.clock.now()) return true;
    this.counters.droppedNoPermission++;
    return false;
  }

  /** Keyed by the peer's host, as permissions are: a peer hopping source ports gets no fresh budget. */
  private pairBudget(allocation: Allocation, peer: Address): boolean {
    const key = peer.host;
    let bucket = allocation.pairs.get(key);
    if (!bucket) {
      if (allocation.pairs.size >= 64) for (const [k, b] of allocation.pairs) if (b.isIdle()) allocation.pairs.delete(k);
      bucket = new TokenBucket(this.deps.limits.pairRate, this.deps.clock);
      allocation.pairs.set(key, bucket);
    }
    if (bucket.take()) return true;
    this.counters.droppedOverRate++;
    return false;
  }

  private lifetime(request: StunMessage): number {
    const asked = readLifetime(request) ?? DEFAULT_LIFETIME_SECONDS;
    return asked === 0 ? 0 : Math.min(this.deps.limits.maxLifetimeSeconds, Math.max(DEFAULT_LIFETIME_SECONDS, asked));
  }

  private expireIn(allocation: Allocation, seconds: number): void {
    this.deps.clock.clearTimer(allocation.expiry);
    allocation.expiry = this.deps.clock.setTimer(seconds * 1000, () => void this.release(allocation));
  }

  /**
   * Someone sent an Allocate from this allocation's address: its node restarted and forgot it, or
   * a stranger forged the address. The holder's next request under the key settles it; silence
   * ends the allocation (the restarted node's next Allocate is then served).
   */
  private doubt(allocation: Allocation): void {
    if (allocation.doubt) return;
    const since = this.deps.clock.now();
    allocation.doubt = this.deps.clock.setTimer(DOUBT_MS, () => {
      allocation.doubt = undefined;
      if (allocation.heardAt >= since) return; // the holder is alive: the Allocate was not its own
      this.counters.endedSuperseded++;
      void this.release(allocation);
    });
  }

  private async release(allocation: Allocation): Promise<void> {
    this.deps.clock.clearTimer(allocation.expiry);
    this.deps.clock.clearTimer(allocation.doubt);
    if (this.allocations.get(addressKey(allocation.client)) === allocation) this.allocations.delete(addressKey(allocation.client));
    await Promise.all([allocation.socket.close(), allocation.exposed.close()]);
  }
}
