import type { SignatureSuite } from '../identity/signature-suite.js';
import type { TrustPolicy } from '../identity/trust.js';
import { OverlayError } from '../overlay/overlay-error.js';
import type { IncomingRequest, OverlayRouter } from '../overlay/router.js';
import type { TimerHandle } from '../runtime/clock.js';
import { appended, without } from '../runtime/exact-array.js';
import { KeyCounts } from '../runtime/key-counts.js';
import { InFlightQueue } from '../runtime/in-flight-queue.js';
import type { Logger } from '../runtime/log.js';
import type { Id } from '../wire/id.js';
import { nodeDestination } from '../wire/message.js';
import { ErrorCode, MessageCode } from '../wire/message-codes.js';
import { fetchAns, fetchReq } from '../wire/messages/fetch.js';
import { findAns, findReq } from '../wire/messages/find.js';
import { statAns, statReq } from '../wire/messages/stat.js';
import { MAX_KINDS_PER_MESSAGE, MAX_VALUES_PER_STORE, type StoreKindData, storeAns, storeReq } from '../wire/messages/store.js';
import { encodeStoredData } from '../wire/messages/stored-data.js';
import { encodeCbor } from '../wire/cbor.js';
import { betweenRightClosed } from '../overlay/topology/chord/ring.js';
import type { Topology } from '../overlay/topology/topology.js';
import { checkAccess } from './access-control.js';
import type { StorageBackend, StorageChange } from './backends/backend.js';
import type { ResourceStore } from './resource-store.js';
import { verifyValue } from './value-signing.js';

/*
 * The storing peer's side of RFC 6940 s7: Store, Fetch, Stat and Find handlers; every value's
 * signature and access policy checked before anything is kept; acknowledgement only after the
 * backend made the change durable; copies on the next successors (replicas), restored when
 * peers join, leave or fail; expiry of values past their lifetime.
 */
export interface StorageServiceOptions {
  /** Copies in all, the responsible peer's included (RFC 6940 s10.7 suggests 3). */
  readonly replicas: number;
  readonly expiryIntervalMs: number;
  readonly rebalanceDelayMs: number;
}

/**
 * Copies to other peers in flight at once. A hand-over of thousands of resources would otherwise
 * hold thousands of transactions (timers, encoded Stores) at once, enough to exhaust a router's
 * heap, and overrun the receiving neighbour's request budget; waiting copies cost a few words.
 */
const COPIES_IN_FLIGHT = 16;
/** Of those, to one peer: one that stalls our Stores holds no more slots than this. */
const COPIES_IN_FLIGHT_PER_PEER = 4;

/**
 * How long a Join waits for the admitting peer's hand-over (RFC 6940 s10.6 step 5). A small one
 * takes a round trip; a large one carries on behind the Join rather than hold the newcomer out.
 */
const HANDOVER_WAIT_MS = 1_500;
/** A peer that joins again within this long is not sent everything again (see handOverTo). */
const REHANDOVER_MS = 60_000;
/**
 * After a copy to a peer failed, nothing more is sent to it for this long, doubling with each
 * failure up to COPY_BACKOFF_MAX_MS: a neighbour that refuses or never answers our Stores would
 * otherwise have its whole range sent again at every rebalance (500 ms). Short enough that an
 * honest peer behind a link that came back gets its replicas soon.
 */
const COPY_BACKOFF_MS = 5_000;
const COPY_BACKOFF_MAX_MS = 30_000;
/** Values a copy's StoreReq carries at most, by their encoded size: room left for the message's header, via list and signature. */
const COPY_BYTES = 48 * 1024;
const MAX_COPIES_IN_PARTS = 1024;
/** The parts of one copy follow each other (in order, one at a time): a part later than this starts another copy. */
const COPY_PARTS_MS = 30_000;

interface Copy {
  readonly peer: Id;
  readonly resource: Id;
  readonly replicaNumber: number;
  /** A hand-over to a predecessor, not a replica for a successor (the counters tell them apart). */
  readonly handover: boolean;
  /** Called once the peer acknowledged the copy, or it failed. */
  readonly sent?: () => void;
}

export const DEFAULT_STORAGE_OPTIONS: StorageServiceOptions = { replicas: 3, expiryIntervalMs: 60_000, rebalanceDelayMs: 500 };

export interface StorageCounters {
  stores: number;
  storesRefused: number;
  replicaStores: number;
  fetches: number;
  replicationsSent: number;
  handovers: number;
  expired: number;
  backendErrors: number;
}

export class StorageService {
  readonly counters: StorageCounters = { stores: 0, storesRefused: 0, replicaStores: 0, fetches: 0, replicationsSent: 0, handovers: 0, expired: 0, backendErrors: 0 };
  /**
   * Which peers were sent the current copy of each Resource-ID: a list of one or two (a Set
   * would cost about 230 bytes for each of the thousands of resources a peer holds).
   */
  private readonly copiesSent = new Map<Id, readonly Id[]>();
  /** Copies arriving in several StoreReqs, taken whole so far: whose, and how many values they carried. */
  private readonly copyInParts = new Map<Id, { readonly origin: Id; readonly values: number; readonly at: number }>();
  private readonly copies = new InFlightQueue<Copy>(COPIES_IN_FLIGHT, (copy, done) => this.runCopy(copy, done));
  /** Copies in flight to each peer, and those waiting for one of its slots. */
  private readonly inFlightTo = new KeyCounts<Id>();
  private readonly waitingFor = new Map<Id, Copy[]>();
  /** Joining peers we handed data over to in the last REHANDOVER_MS, and when. */
  private readonly handedOver = new Map<Id, number>();
  /** Joining peers whose hand-over is still being sent. */
  private readonly handingOver = new Set<Id>();
  /** Peers whose last copy failed: how many times in a row, and until when nothing goes to them. */
  private readonly copyBackoff = new Map<Id, { failures: number; until: number }>();
  private rebalanceAt = Infinity;
  private rebalanceTimer: TimerHandle | undefined;
  private expiryTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly router: OverlayRouter,
    private readonly topology: Topology,
    private readonly trust: TrustPolicy,
    private readonly suite: SignatureSuite,
    readonly store: ResourceStore,
    readonly backend: StorageBackend,
    private readonly log: Logger,
    private readonly options: StorageServiceOptions = DEFAULT_STORAGE_OPTIONS,
  ) {}

  /** Replays the backend, then serves. */
  start(): void {
    this.startedAt = this.router.clock.now();
    this.bytesAtStart = this.backend.stats().bytesWritten;
    for (const change of this.backend.load()) this.store.apply(change);
    const { damagedBytes = 0, cutAtLoad = 0, setAside, setAsideError } = this.backend.stats();
    // A torn last append is routine after a crash; anything more is damage a person should hear of.
    if (damagedBytes > 0 || setAside || setAsideError) this.log.warn('storage-log-damaged', { damagedBytes, cutAtLoad, ...(setAside ? { setAside } : {}), ...(setAsideError ? { setAsideError } : {}) });
    else if (cutAtLoad > 0) this.log.info('storage-log-torn-tail', { cutAtLoad });
    this.router.handle(MessageCode.StoreReq, (req) => this.onStore(req));
    this.router.handle(MessageCode.FetchReq, (req) => this.onFetch(req));
    this.router.handle(MessageCode.StatReq, (req) => this.onStat(req));
    this.router.handle(MessageCode.FindReq, (req) => this.onFind(req));
    this.topology.onNeighborsChanged(() => this.scheduleRebalance());
    this.topology.beforeAdmitting((joiner, done) => this.handOverTo(joiner, done));
    this.scheduleExpiry();
  }

  stop(): void {
    this.stopped = true;
    this.copies.clear();
    this.waitingFor.clear();
    this.router.clock.clearTimer(this.rebalanceTimer);
    this.router.clock.clearTimer(this.expiryTimer);
  }

  private nowMs(): number {
    return this.router.clock.wallTime();
  }

  private onStore(req: IncomingRequest): void {
    const request = storeReq.decode(req.body);
    const { resource, replicaNumber } = request;
    const replica = replicaNumber > 0;
    if (replica) {
      // RFC 6940 s7.4.1.3: replicas come from the responsible peer, one of our predecessors, or
      // (handing over after a join) from a successor that held the data until now.
      const near = this.options.replicas - 1;
      const neighbors = [...this.topology.predecessorIds().slice(0, near), ...this.topology.successorIds().slice(0, near)];
      if (!neighbors.includes(req.origin) && !this.fromAdmittingPeer(req.origin, resource)) throw new OverlayError(ErrorCode.Forbidden, 'copies are accepted only from ring neighbours');
      this.counters.replicaStores++;
    } else if (!this.topology.isResponsible(resource)) {
      throw new OverlayError(ErrorCode.Forbidden, 'not responsible for this Resource-ID');
    }
    const changes: StorageChange[] = [];
    try {
      for (const kindData of request.kinds) changes.push(...this.check(resource, kindData, replica));
    } catch (error) {
      this.store.release(changes); // the kinds checked before the one refused
      this.counters.storesRefused++;
      throw error;
    }
    this.backend.append(changes, (error) => {
      if (error) {
        this.store.release(changes);
        this.counters.backendErrors++;
        this.log.error('backend-write-failed', { error });
        req.fail(ErrorCode.DataTooLarge, 'storage is failing on this peer');
        return;
      }
      for (const change of changes) this.store.apply(change);
      // A copy that we took whole, of everything we hold, leaves its sender holding what we hold:
      // it needs no copy back (else the two would send the range to each other at every rebalance).
      // A large copy comes in several StoreReqs: what they carried is counted together.
      const copied = request.kinds.reduce((n, k) => n + k.values.length, 0);
      const whole = replica && changes.length === copied;
      const now = this.router.clock.now();
      const before = this.copyInParts.get(resource);
      const carried = copied + (whole && before?.origin === req.origin && now - before.at < COPY_PARTS_MS ? before.values : 0);
      this.copyInParts.delete(resource);
      if (whole) {
        if (this.copyInParts.size >= MAX_COPIES_IN_PARTS) this.copyInParts.delete(this.copyInParts.keys().next().value!);
        this.copyInParts.set(resource, { origin: req.origin, values: carried, at: now });
      }
      if (whole && this.store.entriesOf(resource) === carried) this.copiesSent.set(resource, [req.origin]);
      else this.copiesSent.delete(resource);
      this.counters.stores++;
      const replicas = replica ? [] : this.replicaSet();
      req.respond(
        storeAns.encode({
          kinds: request.kinds.map((k) => ({ kind: k.kind, generation: this.store.generation(resource, k.kind), replicas })),
        }),
      );
      if (!replica || this.topology.isResponsible(resource)) this.replicate(resource);
    });
  }

  /**
   * While we join, the admitting peer hands over our future range, which lies before it: never
   * its own range, between us and it.
   */
  private fromAdmittingPeer(origin: Id, resource: Id): boolean {
    const admitting = this.topology.admittingPeer();
    return admitting !== undefined && origin === admitting && !betweenRightClosed(resource, this.router.nodeId, admitting);
  }

  /** Signature, access control, then the store's own rules; throws OverlayError. */
  private check(resource: Id, kindData: StoreKindData, replica: boolean): StorageChange[] {
    const kind = this.store.kind(kindData.kind);
    for (const value of kindData.values) {
      let signer;
      try {
        signer = verifyValue(this.suite, this.trust, resource, kind.id, value, Math.floor(this.nowMs() / 1000));
      } catch (error) {
        throw new OverlayError(ErrorCode.Forbidden, (error as Error).message);
      }
      const denied = checkAccess(kind, resource, value.entry.key, signer);
      if (denied) throw new OverlayError(ErrorCode.Forbidden, denied);
    }
    return this.store.prepare(resource, kindData, replica, this.nowMs());
  }

  private onFetch(req: IncomingRequest): void {
    const { resource, specifiers } = fetchReq.decode(req.body);
    this.counters.fetches++;
    const now = this.nowMs();
    req.respond(fetchAns.encode({ kinds: specifiers.map((s) => this.store.fetch(resource, s.kind, s.selector, now)) }));
  }

  private onStat(req: IncomingRequest): void {
    const { resource, specifiers } = statReq.decode(req.body);
    const now = this.nowMs();
    req.respond(statAns.encode({ kinds: specifiers.map((s) => this.store.stat(resource, s.kind, s.selector, now)) }));
  }

  private onFind(req: IncomingRequest): void {
    const { resource, kinds } = findReq.decode(req.body);
    const closest = this.store.find(resource, kinds);
    req.respond(findAns.encode({ results: kinds.map((kind, i) => ({ kind, closest: closest[i] })) }));
  }

  // --- replication (RFC 6940 s10.7) ---

  private replicaSet(): Id[] {
    return this.topology.successorIds().slice(0, this.options.replicas - 1);
  }

  /** Sends our copy of `resource` to each replica peer that does not have it yet. */
  private replicate(resource: Id): void {
    this.replicaSet().forEach((peer, i) => {
      this.copyOnce({ peer, resource, replicaNumber: i + 1, handover: false });
    });
  }

  /** Queues our copy of `resource` for `peer`, unless it was already sent there or the peer is backed off. */
  private copyOnce(copy: Copy): void {
    const sent = this.copiesSent.get(copy.resource) ?? [];
    if (sent.includes(copy.peer)) return;
    const backoff = this.backoffLeft(copy.peer);
    if (backoff > 0) return this.scheduleRebalance(backoff);
    this.copiesSent.set(copy.resource, appended(sent, copy.peer));
    this.copies.add(copy);
  }

  /** Runs a copy within its peer's share of the slots, or puts it aside until one is free. */
  private runCopy(copy: Copy, done: () => void): void {
    const running = this.inFlightTo.of(copy.peer);
    if (running >= COPIES_IN_FLIGHT_PER_PEER) {
      const waiting = this.waitingFor.get(copy.peer);
      if (waiting) waiting.push(copy);
      else this.waitingFor.set(copy.peer, [copy]);
      return done();
    }
    this.inFlightTo.add(copy.peer);
    this.sendCopy(copy, () => {
      this.inFlightTo.remove(copy.peer);
      const waiting = this.waitingFor.get(copy.peer);
      const next = waiting?.shift();
      if (waiting?.length === 0) this.waitingFor.delete(copy.peer);
      done();
      copy.sent?.();
      if (next && !this.stopped) this.copies.add(next);
    });
  }

  /** Sends what we hold of `resource` (as it is now, not when the copy was queued). */
  private sendCopy({ peer, resource, replicaNumber, handover }: Copy, done: () => void): void {
    // Queued before the peer failed us: given back, for the rebalance after the back-off.
    const backoff = this.backoffLeft(peer);
    if (backoff > 0) {
      this.unmark(resource, peer);
      this.scheduleRebalance(backoff);
      return done();
    }
    const byKind = new Map<number, StoreKindData>();
    for (const change of this.store.changesFor(resource)) {
      if (change.op !== 'put') continue;
      const entry = byKind.get(change.kind) ?? { kind: change.kind, generation: change.generation, values: [] };
      byKind.set(change.kind, { ...entry, values: [...entry.values, change.data] });
    }
    if (byKind.size === 0 || this.stopped) return done();
    if (handover) this.counters.handovers++;
    else this.counters.replicationsSent++;
    const bodies = copyBodies(resource, replicaNumber, [...byKind.values()]);
    const sendFrom = (index: number, finished: (error: unknown) => void): void =>
      this.router.request([nodeDestination(peer)], MessageCode.StoreReq, bodies[index], (error) => (error || index + 1 === bodies.length ? finished(error) : sendFrom(index + 1, finished)), { attempts: 2 });
    sendFrom(0, (error) => {
      done();
      const now = this.router.clock.now();
      const backoff = this.copyBackoff.get(peer);
      if (!error) {
        // One answer does not undo every failure: a peer that answers one copy a round and
        // stalls the rest stays backed off.
        if (backoff && backoff.failures > 1) this.copyBackoff.set(peer, { ...backoff, failures: backoff.failures - 1 });
        else this.copyBackoff.delete(peer);
        return;
      }
      this.unmark(resource, peer);
      // Sent again not at the next ring change, which may be the failure that takes the last
      // copy, but once the peer's back-off is over. One failure counts per round of copies: the
      // others in it failed for the same reason.
      if (backoff && backoff.until > now) return this.scheduleRebalance(backoff.until - now);
      for (const [id, b] of this.copyBackoff) if (b.until <= now - COPY_BACKOFF_MAX_MS) this.copyBackoff.delete(id);
      const failures = (this.copyBackoff.get(peer)?.failures ?? 0) + 1;
      const waitMs = Math.min(COPY_BACKOFF_MS * 2 ** (failures - 1), COPY_BACKOFF_MAX_MS);
      this.copyBackoff.set(peer, { failures, until: now + waitMs });
      this.scheduleRebalance(waitMs);
    });
  }

  /** How long nothing more goes to `peer` (0: copies may go). */
  private backoffLeft(peer: Id): number {
    return Math.max(0, (this.copyBackoff.get(peer)?.until ?? 0) - this.router.clock.now());
  }

  private unmark(resource: Id, peer: Id): void {
    const sent = this.copiesSent.get(resource);
    if (sent) this.copiesSent.set(resource, without(sent, peer));
  }

  /**
   * RFC 6940 s10.6 step 5: a peer joining through us first gets what it will be responsible for,
   * the resources between our predecessor and it, so that the moment it has joined, a fetch it
   * answers finds them (else it would answer "nothing stored" until our next rebalance).
   */
  private handOverTo(joiner: Id, done: () => void): void {
    // A Join means the peer starts afresh (it may have restarted with nothing): it gets its range
    // even if we sent it before, but once a minute at most, and not while its last hand-over is
    // still on its way, or each Join (a peer may send 200 requests a second) would send it all again.
    const now = this.router.clock.now();
    for (const [id, at] of this.handedOver) if (now - at >= REHANDOVER_MS) this.handedOver.delete(id);
    if (this.stopped || this.handedOver.has(joiner) || this.handingOver.has(joiner)) return done();
    const self = this.router.nodeId;
    // (A peer that restarts joins again while it may still be our predecessor.)
    const from = this.topology.predecessorIds().find((id) => id !== joiner) ?? self;
    // Only a newcomer that will be our predecessor takes anything from us.
    if (joiner === self || (from !== self && !betweenRightClosed(joiner, from, self))) return done();
    this.handedOver.set(joiner, now); // before the scan: each Join costs one, at most once a minute
    // It may have failed our copies before it restarted.
    this.copyBackoff.delete(joiner);
    const resources = this.store.resourceIds().filter((r) => betweenRightClosed(r, from, joiner));
    if (resources.length === 0) return done();
    this.handingOver.add(joiner);
    let waiting = resources.length;
    let answered = false;
    const answer = (): void => {
      if (answered) return;
      answered = true;
      this.router.clock.clearTimer(timer);
      done();
    };
    const timer = this.router.clock.setTimer(HANDOVER_WAIT_MS, answer);
    const sent = (): void => {
      if (--waiting > 0) return;
      this.handingOver.delete(joiner);
      answer();
    };
    for (const resource of resources) {
      // Sent again even if sent before (its back-off is cleared above, so copyOnce queues each).
      this.unmark(resource, joiner);
      this.copyOnce({ peer: joiner, resource, replicaNumber: 1, handover: true, sent });
    }
  }

  /** A rebalance in `delayMs` (or sooner, if one is due sooner already). */
  private scheduleRebalance(delayMs = this.options.rebalanceDelayMs): void {
    const at = this.router.clock.now() + delayMs;
    if (this.stopped || (this.rebalanceTimer && this.rebalanceAt <= at)) return;
    this.router.clock.clearTimer(this.rebalanceTimer);
    this.rebalanceAt = at;
    this.rebalanceTimer = this.router.clock.setTimer(delayMs, () => {
      this.rebalanceTimer = undefined;
      this.rebalance();
    });
  }

  /**
   * After the ring changed: resources we are now responsible for get their replicas restored;
   * resources a newly joined predecessor is now responsible for are handed to it.
   */
  private rebalance(): void {
    if (!this.topology.joined) return;
    const preds = this.topology.predecessorIds();
    for (const resource of this.store.resourceIds()) {
      if (this.topology.isResponsible(resource)) {
        this.replicate(resource);
        continue;
      }
      // Which predecessor is responsible now, and is it one we have not given the data to?
      for (let i = 0; i < preds.length; i++) {
        const before = preds[i + 1];
        if (before === undefined || betweenRightClosed(resource, before, preds[i])) {
          if (i < this.options.replicas - 1) this.copyOnce({ peer: preds[i], resource, replicaNumber: i + 1, handover: true });
          break;
        }
      }
    }
  }

  // --- lifetimes ---

  private scheduleExpiry(): void {
    this.expiryTimer = this.router.clock.setTimer(this.options.expiryIntervalMs, () => {
      const removals = this.store.expired(this.nowMs());
      if (removals.length) {
        this.backend.append(removals, (error) => {
          if (error) return this.log.error('backend-write-failed', { error });
          for (const r of removals) {
            this.store.apply(r);
            if (!this.store.holds(r.resource)) this.copiesSent.delete(r.resource);
          }
          this.counters.expired += removals.length;
          this.maybeCompact();
        });
      } else {
        this.maybeCompact();
      }
      if (!this.stopped) this.scheduleExpiry();
    });
  }

  private maybeCompact(): void {
    if (!this.backend.wantsCompaction(this.store.size.entries)) return;
    this.backend.compact(
      () => this.store.changesFor(),
      (error) => error && this.log.error('compaction-failed', { error }),
    );
  }

  status(): Record<string, unknown> {
    const stats = this.backend.stats();
    // Flash wears with writes: what this peer writes an hour, averaged since it started.
    const hours = Math.max(1 / 60, (this.router.clock.now() - this.startedAt) / 3_600_000);
    const bytesWrittenPerHour = Math.round((stats.bytesWritten - this.bytesAtStart) / hours);
    return { ...this.store.size, maxEntries: this.store.limits.maxEntries ?? null, maxBytes: this.store.limits.maxBytesTotal, copiesTracked: this.copiesSent.size, copiesQueued: this.copies.queued, counters: { ...this.counters, copiesDatedAhead: this.store.copiesDatedAhead }, backend: { name: this.backend.name, ...stats, bytesWrittenPerHour } };
  }

  private startedAt = 0;
  private bytesAtStart = 0;
}

/**
 * A copy of one resource as StoreReqs that each fit a message: a resource may hold more than one
 * message carries (64 notes of 1 KiB with their certificates come to 84 kB), and a copy that
 * does not fit would be refused for ever and keep its peer backed off.
 */
function copyBodies(resource: Id, replicaNumber: number, kinds: readonly StoreKindData[]): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  let batch: StoreKindData[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (batch.length) bodies.push(storeReq.encode({ resource, replicaNumber, kinds: batch }));
    batch = [];
    bytes = 0;
  };
  for (const kind of kinds) {
    for (const value of kind.values) {
      const size = encodeCbor(encodeStoredData(value)).length;
      const last = batch[batch.length - 1];
      const fullKind = last?.kind === kind.kind && last.values.length === MAX_VALUES_PER_STORE;
      if (bytes + size > COPY_BYTES || fullKind || (last?.kind !== kind.kind && batch.length === MAX_KINDS_PER_MESSAGE)) flush();
      const current = batch[batch.length - 1];
      if (current?.kind === kind.kind) batch[batch.length - 1] = { ...current, values: [...current.values, value] };
      else batch.push({ kind: kind.kind, generation: kind.generation, values: [value] });
      bytes += size;
    }
  }
  flush();
  return bodies;
}
