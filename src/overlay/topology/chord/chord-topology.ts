import type { TimerHandle } from '../../../runtime/clock.js';
import { KeyCounts } from '../../../runtime/key-counts.js';
import { randomInt } from '../../../runtime/random.js';
import { type Address, addressKey } from '../../../wire/address.js';
import { type Id, idShort, idToHex } from '../../../wire/id.js';
import { nodeDestination, resourceDestination } from '../../../wire/message.js';
import { ErrorCode, MessageCode } from '../../../wire/message-codes.js';
import { OverlayError } from '../../overlay-error.js';
import { type ChordView, ChordUpdateType } from '../../../wire/messages/chord-view.js';
import type { Contact } from '../../../wire/messages/contact.js';
import { joinAns, joinReq } from '../../../wire/messages/join.js';
import { leaveAns, leaveReq } from '../../../wire/messages/leave.js';
import { updateAns, updateReq } from '../../../wire/messages/update.js';
import type { OverlayRouter } from '../../router.js';
import type { Attacher, Topology } from '../topology.js';
import { FingerTable } from './finger-table.js';
import { JoinMachine } from './join-machine.js';
import { NeighborTable } from './neighbor-table.js';
import { betweenOpen, betweenRightClosed, clockwise } from './ring.js';

/*
 * CHORD-RELOAD (RFC 6940 s10): join through an admitting peer, neighbour tables kept fresh by
 * periodic Updates, fingers found with routed Attaches, failures detected by the hop transport,
 * graceful Leave, and greedy recursive routing over fingers and neighbours.
 */

export interface ChordOptions {
  readonly successors: number;
  readonly stabilizeIntervalMs: number;
  /** How long a failed or departed peer is not re-learnt from others' stale tables. */
  readonly failedMemoryMs: number;
  readonly joinRetryMaxMs: number;
  /** Our own reachable address, advertised in views. */
  readonly advertisedAddress: () => Address;
  /** Sets up links with Attach and connectivity checks (RFC 6940 s6.5.1). */
  readonly attacher: () => Attacher;
  /** Whether others must Attach to us before sending (we are behind a NAT that filters). */
  readonly attachFirst: () => boolean;
}

const ANNOUNCE_HOLDOFF_MS = 1000;
/** After our own address changed, links that die within this long died with it: their peers are not remembered as failed. */
const OWN_CHANGE_GRACE_MS = 15_000;
/** A failed contact behind a filtering NAT that neighbours still list is Attached to again after this long (see acceptable). */
const REATTACH_FAILED_MS = 10_000;
/** Attaches that one node's views may have us run at once, of the 16 in all. */
const ATTACHES_PER_TELLER = 4;

export const DEFAULT_CHORD_OPTIONS = {
  successors: 5,
  stabilizeIntervalMs: 10_000,
  failedMemoryMs: 60_000,
  joinRetryMaxMs: 30_000,
};

export interface ChordCounters {
  joins: number;
  updatesSent: number;
  updatesReceived: number;
  fingerLookups: number;
  neighborFailures: number;
  leavesReceived: number;
}

/** A peer still looking for the ring after this long says so at the default log level. */
const STUCK_WARNING_MS = 30_000;
const STUCK_REPEAT_MS = 300_000;

export class ChordTopology implements Topology {
  readonly name = 'CHORD-RELOAD';
  readonly counters: ChordCounters = { joins: 0, updatesSent: 0, updatesReceived: 0, fingerLookups: 0, neighborFailures: 0, leavesReceived: 0 };
  private router!: OverlayRouter;
  private table!: NeighborTable;
  private fingers!: FingerTable;
  /** Alone after every neighbour failed, and joining the ring found again (see recoverSuccessor). */
  private mergingAlone = false;
  private readonly failed = new Map<Id, number>();
  /** When our own public address last changed (see ownAddressChanged). */
  private ownAddressChangedAt = -Infinity;
  private readonly join = new JoinMachine();
  private stabilizeTimer: TimerHandle | undefined;
  private bootstrap: readonly Address[] = [];
  private seekingSince = 0;
  private stuckWarnedAt = -Infinity;
  /** First successor and predecessor as last published, and when each was last told of us. */
  private announced = new Set<Id>();
  private readonly lastAnnounce = new Map<Id, number>();
  private readonly changeListeners: (() => void)[] = [];
  private admissionHandler: (joiner: Id, done: () => void) => void = (_joiner, done) => done();
  /** The peer our Join went to, while it runs. */
  private admitting: Id | undefined;
  private publishedSignature = '';
  /** Second-hand contacts behind filtering NATs, being Attached to before use. */
  private readonly attaching = new Set<Id>();
  /** Of those, how many each neighbour's view had us start (at most ATTACHES_PER_TELLER). */
  private readonly attachingFor = new KeyCounts<Id>();

  constructor(private readonly options: ChordOptions) {}

  get joined(): boolean {
    return this.join.state === 'joined';
  }

  attach(router: OverlayRouter): void {
    this.router = router;
    this.table = new NeighborTable(router.nodeId, this.options.successors);
    this.fingers = new FingerTable(router.nodeId);
    router.handle(MessageCode.JoinReq, (req) => {
      const { joiningPeerId, attachFirst } = joinReq.decode(req.body);
      if (joiningPeerId !== req.origin || !req.previousHop) throw new OverlayError(ErrorCode.Forbidden, 'a Join must come from the joining peer');
      // RFC 7890 s2: a client uses the overlay but never routes or stores, so it never joins.
      if (req.certificate.claims.role === 'client') throw new OverlayError(ErrorCode.Forbidden, 'a client certificate cannot join the ring');
      const joiner = { id: joiningPeerId, address: req.previousHop.address, ...(attachFirst ? { attachFirst } : {}) };
      // RFC 6940 s10.6: the joining peer gets what it will be responsible for, then the admitting
      // peer takes it as its predecessor; answered, it is responsible the moment it has joined.
      this.admissionHandler(joiningPeerId, () => {
        // Left meanwhile: said at once, so the newcomer looks for another peer rather than time out.
        if (this.join.state === 'left') return req.fail(ErrorCode.NotFound, 'this peer is leaving the ring');
        this.learn([joiner], true);
        this.counters.joins++;
        req.respond(joinAns.encode({ view: this.view(ChordUpdateType.Full) }));
      });
    });
    router.handle(MessageCode.UpdateReq, (req) => {
      const { view } = updateReq.decode(req.body);
      if (req.certificate.claims.role === 'client') throw new OverlayError(ErrorCode.Forbidden, 'a client is not a ring neighbour');
      this.counters.updatesReceived++;
      if (req.previousHop && req.via.length === 0) this.merge(senderContact(req.origin, req.previousHop.address, view), view);
      req.respond(updateAns.encode({ view: this.view(ChordUpdateType.Full) }));
    });
    router.handle(MessageCode.LeaveReq, (req) => {
      const { leavingPeerId, view } = leaveReq.decode(req.body);
      if (leavingPeerId !== req.origin) throw new OverlayError(ErrorCode.Forbidden, 'a Leave must come from the leaving peer');
      this.counters.leavesReceived++;
      this.forget(leavingPeerId);
      // Only the leaver's own first neighbours: it checked those every stabilisation, while
      // deeper entries of its lists may be stale (RFC 6940 s10.8 hands over the same pair).
      this.learn([view.successors[0], view.predecessors[0]].filter((c): c is Contact => !!c), false);
      req.respond(leaveAns.encode({}));
      // The last other peer left politely (a restart of the family's first peer, say): alone now,
      // look for the ring again through the bootstrap peers, as after a failure.
      if (this.joined && this.table.successors.length === 0) this.recoverSuccessor();
    });
  }

  start(bootstrap: readonly Address[]): void {
    this.bootstrap = bootstrap.filter((a) => addressKey(a) !== addressKey(this.options.advertisedAddress()));
    if (this.bootstrap.length === 0) {
      this.join.transition('joined');
      this.scheduleStabilize();
      return;
    }
    this.join.transition('seeking');
    this.seekingSince = this.router.clock.now();
    this.stuckWarnedAt = -Infinity;
    this.seekAdmittingPeer(0);
  }

  leave(done: () => void): void {
    const neighbors = [this.table.successor, this.table.predecessor].filter((c): c is Contact => !!c);
    const unique = [...new Map(neighbors.map((c) => [c.id, c])).values()];
    this.halt();
    if (unique.length === 0) return done();
    let outstanding = unique.length;
    const body = leaveReq.encode({ leavingPeerId: this.router.nodeId, view: this.view(ChordUpdateType.Full) });
    for (const neighbor of unique) {
      this.router.request([nodeDestination(neighbor.id)], MessageCode.LeaveReq, body, () => {
        if (--outstanding === 0) done();
      }, { timeoutMs: 3000 });
    }
  }

  halt(): void {
    this.router.clock.clearTimer(this.stabilizeTimer);
    this.stabilizeTimer = undefined;
    if (this.join.state !== 'left') this.join.transition('left');
  }

  isResponsible(id: Id): boolean {
    if (!this.joined) return false;
    const pred = this.table.predecessor;
    if (!pred) return this.table.successors.length === 0;
    return betweenRightClosed(id, pred.id, this.router.nodeId);
  }

  /**
   * Best first. With a `detour`, one of the four closest preceding peers picked by it comes
   * first: a path around whoever the best one leads to (randomised routing, RFC 6940 s13.5).
   * The last hop to a responsible peer in our successor list never detours.
   */
  nextHops(id: Id, detour = 0): Contact[] {
    const self = this.router.nodeId;
    const successor = this.table.successor;
    if (!successor) return [];
    // RFC 6940 s10.3: if the ID lies between us and our successor, the successor is responsible.
    const successors = this.table.successors;
    if (betweenRightClosed(id, self, successor.id)) return [...successors];
    // A retry goes straight to a responsible peer further along our successor list, past a
    // predecessor that might not forward. (First tries do not: right after failures the list
    // can miss a newcomer, and the classic hop through the predecessor finds it.)
    for (let i = 1; detour && i < successors.length; i++) {
      if (betweenRightClosed(id, successors[i - 1].id, successors[i].id)) return successors.slice(i);
    }
    const known = new Map<Id, Contact>();
    for (const c of [...this.fingers.contacts(), ...this.table.all()]) known.set(c.id, c);
    const preceding = [...known.values()]
      .filter((c) => betweenOpen(c.id, self, id))
      .sort((a, b) => (clockwise(a.id, id) < clockwise(b.id, id) ? -1 : 1))
      .slice(0, 4);
    if (detour && preceding.length > 1) preceding.unshift(...preceding.splice(detour % preceding.length, 1));
    return preceding.length ? preceding : [successor];
  }

  ownAddressChanged(): void {
    // Not their failures but ours: without this, fingers lost to it stay out for failedMemoryMs.
    // Links that died with the old address are mostly found dead only later (their keepalives
    // time out), so those are not remembered either for a while (OWN_CHANGE_GRACE_MS).
    this.failed.clear();
    this.ownAddressChangedAt = this.router.clock.now();
  }

  neighborFailed(id: Id): void {
    // Once per failure: every message that was in flight to a dead hop reports it.
    const ours = this.router.clock.now() - this.ownAddressChangedAt < OWN_CHANGE_GRACE_MS;
    if (id === this.router.nodeId || ((this.failed.has(id) || ours) && !this.holds(id))) return;
    this.counters.neighborFailures++;
    this.forget(id);
    if (ours) this.failed.delete(id); // lost with our old address: may be learnt again at once
    if (this.joined && this.table.successors.length === 0) this.recoverSuccessor();
  }

  neighbors(): Contact[] {
    return this.table.all();
  }

  /** Whether `id` is a neighbour or a finger. */
  private holds(id: Id): boolean {
    return this.table.all().some((c) => c.id === id) || this.fingers.contacts().some((c) => c.id === id);
  }

  onNeighborsChanged(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  beforeAdmitting(handler: (joiner: Id, done: () => void) => void): void {
    this.admissionHandler = handler;
  }

  admittingPeer(): Id | undefined {
    return this.join.state === 'joining' ? this.admitting : undefined;
  }

  successorIds(): Id[] {
    return this.table.successors.map((c) => c.id);
  }

  predecessorIds(): Id[] {
    return this.table.predecessors.map((c) => c.id);
  }

  status(): Record<string, unknown> {
    return {
      topology: this.name,
      state: this.join.state,
      successors: this.table.successors.map(describe),
      predecessors: this.table.predecessors.map(describe),
      fingers: this.fingers.entries().map(([k, c]) => ({ k, ...describe(c) })),
      counters: { ...this.counters },
    };
  }

  // --- joining (RFC 6940 s10.6) ---

  /** Step 1: an Attach routed to our own Node-ID reaches the admitting peer. */
  private seekAdmittingPeer(attempt: number): void {
    if (this.join.state !== 'seeking') return;
    const firstHop = this.bootstrap[attempt % this.bootstrap.length];
    this.options.attacher().attach(nodeDestination(this.router.nodeId), { firstHop, attempt }, (error, outcome) => {
      if (this.join.state !== 'seeking') return;
      if (error || !outcome) return this.retryJoin(attempt, `attach failed: ${error?.message}`);
      this.join.transition('joining');
      this.sendJoin({ id: outcome.id, address: outcome.address }, attempt);
    }); // later tries take other paths (router: randomised routing)
  }

  /** Step 2: Join to the admitting peer; its answer fills our neighbour table. */
  private sendJoin(admitting: Contact, attempt: number): void {
    this.router.connections.learn(admitting.id, admitting.address);
    this.admitting = admitting.id;
    const body = joinReq.encode({ joiningPeerId: this.router.nodeId, ...(this.options.attachFirst() ? { attachFirst: true } : {}) });
    this.router.request([nodeDestination(admitting.id)], MessageCode.JoinReq, body, (error, response) => {
      if (this.join.state !== 'joining') return;
      if (error || !response) {
        if (this.mergingAlone) {
          // Still a ring of one: keep serving as one and look again later.
          this.join.transition('joined');
          return this.retryMerge(attempt);
        }
        this.join.transition('seeking');
        return this.retryJoin(attempt, `join failed: ${error?.message}`);
      }
      const { view } = joinAns.decode(response.body);
      this.mergingAlone = false;
      this.table.consider([admitting]);
      this.learn([...view.successors, ...view.predecessors], false);
      this.join.transition('joined');
      this.router.log.info('joined', { admitting: idShort(admitting.id) });
      // Step 3: tell our new neighbours at once rather than at the next stabilisation,
      // then fill the finger table (RFC 6940 s10.6: the joining peer populates its fingers).
      this.stabilize();
      this.populateFingers();
    }, { firstHop: admitting.address });
  }

  private retryJoin(attempt: number, reason: string): void {
    const delay = Math.min(this.options.joinRetryMaxMs, 1000 * 2 ** Math.min(attempt, 10));
    this.router.log.info('join-retry', { reason, delayMs: delay });
    // Said at the default log level, once in a while: a peer that can never join must not stay silent.
    const now = this.router.clock.now();
    if (now - this.seekingSince >= STUCK_WARNING_MS && now - this.stuckWarnedAt >= STUCK_REPEAT_MS) {
      this.stuckWarnedAt = now;
      this.router.log.warn('join-stuck', {
        seconds: Math.round((now - this.seekingSince) / 1000),
        tried: this.bootstrap.map(addressKey).join(','),
        lastError: reason,
        hint: 'the bootstrap peer must reach this peer at the address it advertises (--advertise, else --bind) and this peer must reach the bootstrap',
      });
    }
    this.router.clock.setTimer(delay + randomInt(this.router.random, 500), () => this.seekAdmittingPeer(attempt + 1));
  }

  /**
   * All successors failed at once: fall back on the nearest live peer we know. With none left,
   * carry on as a ring of one (responsible for every ID, so the family's own peer keeps serving)
   * and look for the rest of the ring through the bootstrap peers, merging with a Join when found.
   */
  private recoverSuccessor(): void {
    this.table.consider(this.fingers.contacts());
    if (this.table.successors.length > 0) return;
    this.router.log.warn('partitioned-alone', { bootstrapPeers: this.bootstrap.length, meaning: 'no other peer answers (normal while the other homes are off): this one serves alone and keeps looking' });
    this.seekWhileAlone(0);
  }

  private seekWhileAlone(attempt: number): void {
    if (this.join.state !== 'joined' || this.table.successors.length > 0 || this.bootstrap.length === 0) return;
    const firstHop = this.bootstrap[attempt % this.bootstrap.length];
    this.options.attacher().attach(nodeDestination(this.router.nodeId), { firstHop, timeoutMs: 5_000 }, (error, outcome) => {
      if (this.join.state !== 'joined' || this.table.successors.length > 0) return;
      if (error || !outcome || outcome.id === this.router.nodeId) return this.retryMerge(attempt);
      this.mergingAlone = true;
      this.join.transition('joining');
      this.sendJoin({ id: outcome.id, address: outcome.address }, attempt);
    });
  }

  private retryMerge(attempt: number): void {
    const delay = Math.min(this.options.joinRetryMaxMs, 1000 * 2 ** Math.min(attempt, 10));
    this.router.clock.setTimer(delay + randomInt(this.router.random, 500), () => this.seekWhileAlone(attempt + 1));
  }

  // --- stabilisation (RFC 6940 s10.7) ---

  private scheduleStabilize(): void {
    const interval = this.options.stabilizeIntervalMs;
    const jitter = randomInt(this.router.random, Math.max(1, Math.floor(interval / 5))) - interval / 10;
    this.stabilizeTimer = this.router.clock.setTimer(interval + jitter, () => {
      this.stabilize();
    });
  }

  private stabilize(): void {
    this.router.clock.clearTimer(this.stabilizeTimer);
    if (this.join.state === 'left') return;
    this.expireFailed();
    if (this.joined) {
      const targets = [this.table.successor, this.table.predecessor].filter((c): c is Contact => !!c);
      for (const target of new Map(targets.map((c) => [c.id, c])).values()) this.sendUpdate(target);
      this.refreshFinger();
    }
    this.scheduleStabilize();
  }

  private sendUpdate(target: Contact): void {
    this.counters.updatesSent++;
    // The table's address only where we hold no link: a neighbour whose link moved (its relay
    // died and it Attached again) must not be sent back to its old address every round.
    this.router.connections.suggest(target.id, target.address);
    const body = updateReq.encode({ view: this.view(ChordUpdateType.Full) });
    this.router.request([nodeDestination(target.id)], MessageCode.UpdateReq, body, (error, response) => {
      if (error || !response) return; // a dead link is reported by the transport
      this.merge(target, updateAns.decode(response.body).view);
    });
  }

  /** Looks up every finger the successor list does not cover, spread over a second. */
  private populateFingers(): void {
    this.fingers.uncovered(this.table.successors).forEach((finger, i) => {
      this.router.clock.setTimer(20 + i * 50, () => {
        if (this.joined) this.lookUpFinger(finger);
      });
    });
  }

  private refreshFinger(): void {
    const next = this.fingers.nextToRefresh(this.table.successors);
    if (next) this.lookUpFinger(next);
  }

  private lookUpFinger(next: { k: number; target: Id }): void {
    this.counters.fingerLookups++;
    this.options.attacher().attach(resourceDestination(next.target), {}, (error, outcome) => {
      if (error || !outcome || this.failed.has(outcome.id) || outcome.id === this.router.nodeId) return;
      this.fingers.set(next.k, { id: outcome.id, address: outcome.address });
      this.watchLinks();
    });
  }

  // --- neighbour table upkeep ---

  /** Folds a neighbour's view into ours, trusting it most for the side it is on. */
  private merge(from: Contact, view: ChordView): void {
    this.failed.delete(from.id);
    this.learn([from], true);
    const successors = this.reachable(view.successors.filter((c) => this.acceptable(c, from)), from);
    const predecessors = this.reachable(view.predecessors.filter((c) => this.acceptable(c, from)), from);
    if (this.table.successor?.id === from.id) this.table.adoptSuccessorView(from, successors, predecessors);
    else if (this.table.predecessor?.id === from.id) this.table.adoptPredecessorView(from, successors, predecessors);
    else this.table.consider([...successors, ...predecessors]);
    this.publishNeighbors();
  }

  private learn(contacts: readonly Contact[], verified: boolean): void {
    const fresh = verified ? contacts : this.reachable(contacts.filter((c) => this.acceptable(c)));
    if (verified) for (const c of fresh) this.failed.delete(c.id);
    this.table.consider(fresh);
    this.publishNeighbors();
  }

  /**
   * Second-hand contacts as we can use them: at the address our own link to them uses when we
   * have one; held back, and Attached to through the overlay, when they sit behind a NAT that
   * would drop our packets (RFC 6940 s10.6: a peer Attaches to each of its neighbours).
   */
  private reachable(contacts: readonly Contact[], toldBy?: Contact): Contact[] {
    const out: Contact[] = [];
    for (const c of contacts) {
      const linked = this.router.connections.proven(c.id);
      if (linked) out.push({ ...c, address: linked });
      else if (c.attachFirst) this.attachTo(c, toldBy);
      else out.push(c);
    }
    return out;
  }

  /**
   * The Attach goes first to the neighbour that told us of the contact, which has a link to it:
   * routed by our own table, one that falls in the range we believe ours (our link to it died,
   * and with it our belief that it sits between us and our predecessor) would come back to us.
   */
  private attachTo(contact: Contact, toldBy?: Contact): void {
    if (this.attaching.has(contact.id) || this.attaching.size >= 16 || this.join.state === 'left') return;
    // One node's views (it may be a rogue one, swallowing what it is sent) hold a few slots at most.
    if (toldBy && this.attachingFor.of(toldBy.id) >= ATTACHES_PER_TELLER) return;
    this.attaching.add(contact.id);
    if (toldBy) this.attachingFor.add(toldBy.id);
    const firstHop = toldBy && (this.router.connections.proven(toldBy.id) ?? toldBy.address);
    this.options.attacher().attach(nodeDestination(contact.id), firstHop ? { firstHop } : {}, (error, outcome) => {
      this.attaching.delete(contact.id);
      if (toldBy) this.attachingFor.remove(toldBy.id);
      if (error || !outcome || outcome.id !== contact.id || this.join.state === 'left') {
        if (this.failed.has(contact.id)) this.failed.set(contact.id, this.router.clock.now()); // still gone: wait again
        return;
      }
      this.learn([{ ...contact, address: outcome.address }], true); // the Attach's checks proved it
    });
  }

  /**
   * Contacts we did not find failed lately. One behind a filtering NAT that a neighbour still
   * lists (its link to that neighbour lives) is Attached to again after a short wait: our own
   * link to it may have died of a change on our side (our public address, our router's
   * mappings), and the Attach through that neighbour proves it before it is used.
   */
  private acceptable(c: Contact, toldBy?: Contact): boolean {
    if (c.id === this.router.nodeId) return false;
    const failedAt = this.failed.get(c.id);
    if (failedAt === undefined) return true;
    const neighbour = toldBy !== undefined && this.table.all().some((n) => n.id === toldBy.id);
    return neighbour && c.attachFirst === true && this.router.clock.now() - failedAt >= REATTACH_FAILED_MS;
  }

  private forget(id: Id): void {
    this.failed.set(id, this.router.clock.now());
    this.table.remove(id);
    this.fingers.remove(id);
    this.router.connections.forget(id);
    this.publishNeighbors();
  }

  private expireFailed(): void {
    const cutoff = this.router.clock.now() - this.options.failedMemoryMs;
    for (const [id, at] of this.failed) if (at < cutoff) this.failed.delete(id);
    for (const [id, at] of this.lastAnnounce) if (at < cutoff) this.lastAnnounce.delete(id);
  }

  /**
   * The links routing relies on are watched: keepalives hold them (and the NAT pinholes on them)
   * open and find them dead. Every neighbour and finger (RFC 6940 keeps a connection to each): one
   * idle for a minute behind a NAT that filters would otherwise swallow the next message routed
   * through it, and that request would wait out a timeout.
   */
  private watchLinks(): void {
    const links = new Map<Id, Contact>();
    for (const c of [...this.table.all(), ...this.fingers.contacts()]) links.set(c.id, c);
    this.router.transport.setWatched([...links.values()].map((c) => this.router.connections.proven(c.id) ?? c.address));
  }

  /**
   * Neighbours' addresses go to the connection table, and their links are watched (watchLinks).
   * Updates go to the first successor and predecessor (which usually keeps those links busy); the
   * rest of each list is refreshed through those two neighbours' views.
   */
  private publishNeighbors(): void {
    const signature = [...this.table.successors, ...this.table.predecessors].map((c) => c.id).join(',');
    if (signature !== this.publishedSignature) {
      this.publishedSignature = signature;
      for (const listener of this.changeListeners) listener();
    }
    // Only where we hold no link yet: a link's address is at least as fresh as the table's (every
    // direct message, and every Attach, sets it), and a neighbour whose link moved (its relay
    // died, it Attached again) must not be sent back to the old address.
    for (const c of this.table.all()) this.router.connections.suggest(c.id, c.address);
    const firsts = [this.table.successor, this.table.predecessor].filter((c): c is Contact => !!c);
    this.watchLinks();
    // A new first successor or predecessor is told at once (Chord's notify), which also
    // checks that it is alive instead of trusting a second-hand report until the next tick.
    if (!this.joined) return;
    for (const c of firsts) {
      if (this.announced.has(c.id)) continue;
      const last = this.lastAnnounce.get(c.id) ?? -Infinity;
      if (this.router.clock.now() - last < ANNOUNCE_HOLDOFF_MS) continue;
      this.lastAnnounce.set(c.id, this.router.clock.now());
      this.sendUpdate(c);
    }
    this.announced = new Set(firsts.map((c) => c.id));
  }

  private view(type: ChordUpdateType): ChordView {
    return {
      uptimeSeconds: this.router.uptimeSeconds(),
      type,
      predecessors: this.table.predecessors,
      successors: this.table.successors,
      ...(this.options.attachFirst() ? { senderAttachFirst: true } : {}),
    };
  }
}

function senderContact(id: Id, address: Address, view: ChordView): Contact {
  return view.senderAttachFirst ? { id, address, attachFirst: true } : { id, address };
}

function describe(c: Contact): { id: string; address: string } {
  return { id: idToHex(c.id), address: addressKey(c.address) };
}
