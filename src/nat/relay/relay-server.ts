import type { Link } from '../../link/link.js';
import type { Clock, TimerHandle } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import type { Random } from '../../runtime/random.js';
import { type RateLimit, TokenBucket } from '../../runtime/token-bucket.js';
import { type Address, addressKey } from '../../wire/address.js';
import { seal } from '../stun/integrity.js';
import { Attr, encodeStun, encodeXorAddress, StunClass, type StunMessage, StunMethod } from '../stun/message.js';
import { DEFAULT_LIFETIME_SECONDS, decodeIndication, encodeIndication, errorAnswer, lifetimeAttr, peerAddresses, readLifetime } from './turn-codec.js';

/*
 * A relay peer (RFC 6940 s9 with TURN, RFC 8656): for a node whose NAT lets no one in, it opens
 * a UDP port (the relayed address) and passes datagrams between that port and the node,
 * wrapped in Send and Data indications on the relay's overlay port. Only peers the node has
 * given a permission reach it (s9). Limits: allocations in all and per node, and a datagram
 * rate per relayed pair, so one pair cannot take the relay's uplink from the others.
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

export interface RelayServerDeps {
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  /** The host the relayed ports are bound to and announced at. */
  readonly host: string;
  readonly openSocket: (bind: Address) => Promise<Link>;
  /** Sends from the relay's own (overlay) port. */
  readonly sendRaw: (to: Address, datagram: Uint8Array) => void;
  /** The enrolled node behind a client address (its sealed link), if any. */
  readonly nodeAt: (address: Address) => string | undefined;
  readonly limits: RelayLimits;
}

export interface RelayServerCounters {
  allocations: number;
  refused: number;
  relayedToPeers: number;
  relayedToClients: number;
  droppedNoPermission: number;
  droppedOverRate: number;
}

interface Allocation {
  readonly client: Address;
  readonly node: string;
  readonly socket: Link;
  readonly relayed: Address;
  readonly permissions: Map<string, number>;
  readonly pairs: Map<string, TokenBucket>;
  expiry: TimerHandle | undefined;
}

export class RelayServer {
  readonly counters: RelayServerCounters = { allocations: 0, refused: 0, relayedToPeers: 0, relayedToClients: 0, droppedNoPermission: 0, droppedOverRate: 0 };
  private readonly allocations = new Map<string, Allocation>();
  private readonly opening = new Set<string>();

  constructor(private readonly deps: RelayServerDeps) {}

  /** Takes the TURN messages among what reached the overlay port; false for anything else. */
  handle(from: Address, message: StunMessage): boolean {
    const key = addressKey(from);
    if (message.klass === StunClass.Indication && message.method === StunMethod.Send) {
      this.relayToPeer(this.allocations.get(key), message);
      return true;
    }
    if (message.klass !== StunClass.Request) return false;
    switch (message.method) {
      case StunMethod.Allocate:
        void this.allocate(from, message);
        return true;
      case StunMethod.Refresh:
        this.refresh(from, message);
        return true;
      case StunMethod.CreatePermission:
        this.permit(from, message);
        return true;
      default:
        return false;
    }
  }

  status(): Record<string, unknown> {
    return { ...this.counters, active: this.allocations.size, limits: { maxAllocations: this.deps.limits.maxAllocations, maxPerNode: this.deps.limits.maxPerNode, pairDatagramsPerSecond: this.deps.limits.pairRate.ratePerSecond } };
  }

  get free(): number {
    return this.deps.limits.maxAllocations - this.allocations.size;
  }

  async close(): Promise<void> {
    await Promise.all([...this.allocations.values()].map((a) => this.release(a)));
  }

  // --- requests (RFC 8656 s7-s9) ---

  private async allocate(from: Address, request: StunMessage): Promise<void> {
    const key = addressKey(from);
    const answer = (bytes: Uint8Array): void => this.deps.sendRaw(from, bytes);
    const existing = this.allocations.get(key);
    if (existing) return answer(this.allocated(request, existing)); // a retransmission (s7.2)
    if (this.opening.has(key)) return;
    const node = this.deps.nodeAt(from);
    const refuse = (code: number, reason: string): void => {
      this.counters.refused++;
      answer(errorAnswer(StunMethod.Allocate, request.transactionId, code, reason));
    };
    if (!node) return refuse(403, 'Forbidden: relays serve enrolled nodes over a sealed link');
    if (this.allocations.size + this.opening.size >= this.deps.limits.maxAllocations) return refuse(508, 'Insufficient Capacity');
    if ([...this.allocations.values()].filter((a) => a.node === node).length >= this.deps.limits.maxPerNode) return refuse(486, 'Allocation Quota Reached');
    this.opening.add(key);
    let socket: Link;
    try {
      socket = await this.deps.openSocket({ host: this.deps.host, port: 0 });
    } catch (error) {
      this.opening.delete(key);
      this.deps.log.warn('relay-socket-failed', { error });
      return refuse(508, 'Insufficient Capacity');
    }
    this.opening.delete(key);
    const allocation: Allocation = { client: from, node, socket, relayed: { host: this.deps.host, port: socket.localAddress.port }, permissions: new Map(), pairs: new Map(), expiry: undefined };
    socket.onDatagram((peer, datagram) => this.relayToClient(allocation, peer, datagram));
    this.allocations.set(key, allocation);
    this.counters.allocations++;
    this.expireIn(allocation, this.lifetime(request));
    answer(this.allocated(request, allocation));
  }

  private allocated(request: StunMessage, allocation: Allocation): Uint8Array {
    return seal(
      encodeStun(StunMethod.Allocate, StunClass.Success, request.transactionId, [
        { type: Attr.XorRelayedAddress, value: encodeXorAddress(allocation.relayed, request.transactionId) },
        { type: Attr.XorMappedAddress, value: encodeXorAddress(allocation.client, request.transactionId) },
        lifetimeAttr(this.lifetime(request)),
      ]),
    );
  }

  private refresh(from: Address, request: StunMessage): void {
    const allocation = this.allocations.get(addressKey(from));
    if (!allocation) return this.deps.sendRaw(from, errorAnswer(StunMethod.Refresh, request.transactionId, 437, 'Allocation Mismatch'));
    const lifetime = this.lifetime(request);
    if (lifetime === 0) void this.release(allocation);
    else this.expireIn(allocation, lifetime);
    this.deps.sendRaw(from, seal(encodeStun(StunMethod.Refresh, StunClass.Success, request.transactionId, [lifetimeAttr(lifetime)])));
  }

  private permit(from: Address, request: StunMessage): void {
    const allocation = this.allocations.get(addressKey(from));
    if (!allocation) return this.deps.sendRaw(from, errorAnswer(StunMethod.CreatePermission, request.transactionId, 437, 'Allocation Mismatch'));
    const peers = peerAddresses(request);
    if (peers.length === 0 || peers.length > 16) return this.deps.sendRaw(from, errorAnswer(StunMethod.CreatePermission, request.transactionId, 400, 'Bad Request'));
    const until = this.deps.clock.now() + PERMISSION_MS;
    for (const peer of peers) allocation.permissions.set(peer.host, until);
    this.deps.sendRaw(from, seal(encodeStun(StunMethod.CreatePermission, StunClass.Success, request.transactionId, [])));
  }

  // --- relaying (s11, s12) ---

  private relayToPeer(allocation: Allocation | undefined, indication: StunMessage): void {
    const carried = allocation && decodeIndication(indication);
    if (!allocation || !carried) return;
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

  private pairBudget(allocation: Allocation, peer: Address): boolean {
    const key = addressKey(peer);
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

  private async release(allocation: Allocation): Promise<void> {
    this.deps.clock.clearTimer(allocation.expiry);
    if (this.allocations.get(addressKey(allocation.client)) === allocation) this.allocations.delete(addressKey(allocation.client));
    await allocation.socket.close();
  }
}
