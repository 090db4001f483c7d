import type { TimerHandle } from '../runtime/clock.js';
import type { Link } from '../link/link.js';
import type { Logger } from '../runtime/log.js';
import type { KindDefinition } from '../storage/kind.js';
import { ANNOUNCE_INTERVAL_MS, announceRelay, findRelays, type RelayEntry } from '../usages/relay/relay-directory.js';
import { type Address, addressKey, sameAddress } from '../wire/address.js';
import { rankByRoundTrip } from '../nat/relay/relay-choice.js';
import { nodeDestination } from '../wire/message.js';
import type { OverlayPeer } from './overlay-peer.js';

/*
 * NAT upkeep once the node has joined: relays, both sides, and the keepalive interval. A peer that
 * relays (its address public, or its router forwarding its ports) announces itself under RELAY-SERVICE and renews the entry; a node whose NAT filters finds the
 * relays by that name (falling back on its bootstrap peers), opens a sealed link to one (a relay
 * serves enrolled nodes only) and takes an allocation, whose address then goes into every
 * Attach as its relayed candidate.
 */
const CHECK_MS = 5_000;
const RETRY_MS = 30_000;
/** How often a node holding an allocation looks up the other relays, to have one ready. */
const STANDBY_SURVEY_MS = 120_000;
/**
 * Sooner while it has none ready (it found none, or none would open a link), doubling up to the
 * survey interval: right after our join the relays' entry may not have reached us yet, and an
 * overlay with one relay should not be asked every few seconds.
 */
const STANDBY_RETRY_MS = 10_000;
/**
 * How often our server-reflexive address is asked for again: what goes into every Attach and
 * into the SDP of every call between homes, which an ISP that renumbers the home (or a router that
 * reboots and maps our port anew) makes stale.
 */
const REFLEXIVE_REFRESH_MS = 5 * 60_000;
/**
 * Sooner when something suggests it changed (a neighbour no longer knows our link session, our
 * relay went silent), but not more often than this: a neighbour that restarts says the same.
 */
const REFLEXIVE_RECHECK_MS = 15_000;
/** A relay that stopped answering is not taken again for this long. */
const LOST_RELAY_AVOIDED_MS = 120_000;
/**
 * The Attach that moves a link off a lost relay: quick, for a call is silent meanwhile. It takes
 * about 200 ms in the NAT lab, so a try lost on the way is given up after 1 s, not 2 (issue 16's
 * budget is 3 s of silence, and noticing the loss already took about 1.5).
 */
const MOVE_ATTACH = { timeoutMs: 1_000, attempts: 3 } as const;

export class NatUpkeep {
  private timer: TimerHandle | undefined;
  private nextAnnounceAt = 0;
  private nextAllocateAt = 0;
  private nextSurveyAt = 0;
  private surveying = false;
  private standbyRetryMs = STANDBY_RETRY_MS;
  private busy = false;
  private lifetimeMeasured = false;
  private nextReflexiveAt = 0;
  /** Whether the last ask went unanswered: the next goes to another bootstrap peer. */
  private reflexiveUnanswered = false;
  private reflexiveTurn = 0;
  /** When we last acted on a sign that our address changed; one that came sooner after is acted on when the wait is over. */
  private addressCheckedAt = -Infinity;
  private addressCheckPending = false;
  private stopped = false;
  /** Relays that stopped answering ("host:port"), until when they are passed over. */
  private readonly avoided = new Map<string, number>();
  /** Nodes whose link went through a relay that was lost: Attached again once we hold a new allocation (or could not get one). */
  private moving: bigint[] = [];
  /** The relays found by name at the last allocation, nearest first: where to go at once when ours is lost. */
  private lastFound: RelayEntry[] = [];
  readonly counters = { relaysLost: 0, linksMoved: 0, linkMovesFailed: 0 };
  /** Our own RELAY-SERVICE entry, when we relay: how often it was stored, or could not be. */
  readonly announcements = { stored: 0, failed: 0 };
  /** The relays found by name at the last allocation, as measured (status `nat.relayChoice`). */
  relayRoundTrips: { address: string; rttMs: number | null }[] = [];

  constructor(
    private readonly peer: OverlayPeer,
    private readonly bootstrap: readonly Address[],
    /** Whether this peer relays for others (and so announces itself). */
    private readonly serves: boolean,
    private readonly log: Logger,
    /** Opens extra UDP sockets (binding-lifetime probes); absent: keepalives stay at the default. */
    private readonly openSocket?: (bind: Address) => Promise<Link>,
  ) {}

  start(): void {
    this.peer.nat.relay.onLost = (server, routed, silent) => this.relayLost(server, routed, silent);
    this.peer.sealedLink?.onSessionReset(() => this.addressMayHaveChanged('session-reset'));
    this.peer.addressMayHaveChanged = () => this.addressMayHaveChanged('media-path-quiet');
    this.nextReflexiveAt = this.peer.router.clock.now() + REFLEXIVE_REFRESH_MS; // learnt while joining
    this.schedule(1_000);
  }

  /**
   * Our relay stopped answering (RelayClient's liveness checks): take an allocation on another
   * at once, then Attach again to every node whose link went through the lost one, so a call
   * through it goes on through the new one (or directly, if the new checks find a way).
   */
  private relayLost(server: Address, routed: readonly Address[], silent: boolean): void {
    const now = this.peer.router.clock.now();
    this.counters.relaysLost++;
    // One that answered (it restarted and forgot us) is alive: only a silent one is passed over.
    if (silent) this.avoided.set(addressKey(server), now + LOST_RELAY_AVOIDED_MS);
    const connections = this.peer.router.connections;
    for (const address of routed) {
      for (const id of connections.idsAt(address)) if (!this.moving.includes(id) && this.moving.length < 64) this.moving.push(id);
    }
    this.nextAllocateAt = 0;
    if (silent) this.addressMayHaveChanged('relay-silent', server);
    // The relays measured last time, less the lost one: looking them up again could take a route
    // through the very peer that died.
    if (!this.busy && !this.stopped) this.allocate(this.lastFound);
  }

  /**
   * Attaches again to the nodes whose link went through the lost relay. The request goes first to
   * the new relay (a public peer with a working link to us and, like every peer, to the ring):
   * our own route to those nodes may still be the dead one.
   */
  private moveLinks(): void {
    const moving = this.moving;
    this.moving = [];
    const firstHop = this.peer.nat.relay.server;
    const startedAt = this.peer.router.clock.now();
    for (const id of moving) {
      this.peer.attach.attach(nodeDestination(id), { ...MOVE_ATTACH, ...(firstHop ? { firstHop } : {}) }, (error) => {
        if (error) this.counters.linkMovesFailed++;
        else this.counters.linksMoved++;
        // Tried again after the next allocation (without a relay of our own, or with one whose
        // Attach failed, a link may not be there yet).
        if (error && !this.moving.includes(id) && this.moving.length < 64) this.moving.push(id);
        this.log.info('relay-link-moved', { node: id.toString(16).padStart(32, '0').slice(0, 8), ok: !error, ms: this.peer.router.clock.now() - startedAt, ...(error ? { error: error.message } : {}) });
      });
    }
  }

  stop(): void {
    this.stopped = true;
    this.peer.router.clock.clearTimer(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = this.peer.router.clock.setTimer(delayMs, () => this.tick());
  }

  private tick(): void {
    const now = this.peer.router.clock.now();
    if (this.addressCheckPending && now - this.addressCheckedAt >= REFLEXIVE_RECHECK_MS) this.addressMayHaveChanged('deferred');
    if (this.peer.topology.joined && now >= this.nextReflexiveAt && this.bootstrap.length > 0) this.refreshReflexive(now);
    if (this.peer.topology.joined && !this.busy) {
      if (this.peer.attachFirst) {
        if (this.peer.nat.relay.state === 'none' && now >= this.nextAllocateAt) this.allocate();
        else if (this.peer.nat.relay.state === 'allocated' && now >= this.nextSurveyAt && !this.surveying) this.surveyStandby();
        else if (!this.lifetimeMeasured && this.openSocket && this.bootstrap[0]) {
          // Once, in the background: it takes as long as the bindings it waits out.
          this.lifetimeMeasured = true;
          void this.peer.measureBindingLifetime(this.bootstrap[0], this.openSocket);
        }
      } else if (this.serves && this.peer.mayRelay && now >= this.nextAnnounceAt) {
        // A public peer, or a port-mapped home whose router forwards each relayed port too.
        this.announce();
      }
    }
    this.schedule(CHECK_MS);
  }

  /**
   * Asks for our server-reflexive address again: of the peer that told us last (behind a NAT whose
   * mapping depends on the destination, another peer sees another port), or, when that one did
   * not answer last time, of the next bootstrap peer.
   */
  private refreshReflexive(now: number): void {
    this.nextReflexiveAt = now + REFLEXIVE_REFRESH_MS;
    const last = this.peer.nat.reflexiveServer;
    let servers: readonly Address[];
    if (last && !this.reflexiveUnanswered) servers = [last, ...this.bootstrap];
    else {
      const turn = ++this.reflexiveTurn % this.bootstrap.length;
      servers = [...this.bootstrap.slice(turn), ...this.bootstrap.slice(0, turn)];
    }
    this.peer.nat.learnReflexive(servers, (answered, changed) => {
      this.reflexiveUnanswered = !answered;
      // The links we lost with our old address failed on our side: those peers may come back at once.
      if (changed) this.peer.topology.ownAddressChanged();
    });
  }

  /**
   * Our public address may have changed (a neighbour no longer knows our link session; our relay
   * went `silent`; a call's direct media path went quiet): every neighbour gets a keepalive now, so that each meets our new address at
   * once, and we ask for that address again (of another server than `silent`, when that one told
   * us last). A sign that comes within REFLEXIVE_RECHECK_MS of the last is acted on when that
   * wait is over (the tick), not dropped: the renumbering may have come after the first.
   */
  private addressMayHaveChanged(sign: 'session-reset' | 'relay-silent' | 'media-path-quiet' | 'deferred', silent?: Address): void {
    if (this.stopped || !this.peer.topology.joined) return;
    const last = this.peer.nat.reflexiveServer;
    if (silent && last && sameAddress(silent, last)) this.reflexiveUnanswered = true;
    const now = this.peer.router.clock.now();
    if (now - this.addressCheckedAt < REFLEXIVE_RECHECK_MS) {
      if (!this.addressCheckPending) this.log.debug('address-check-deferred', { inMs: this.addressCheckedAt + REFLEXIVE_RECHECK_MS - now });
      this.addressCheckPending = true;
      return;
    }
    this.log.info('address-check', { sign });
    this.addressCheckPending = false;
    this.addressCheckedAt = now;
    this.peer.transport.keepaliveNow();
    if (this.bootstrap.length > 0) this.refreshReflexive(now);
  }

  private announce(): void {
    const kind = this.peer.kinds.named('RELAY-SERVICE');
    if (!kind) return;
    this.busy = true;
    announceRelay(this.peer.client, kind, this.peer.identity, this.peer.relayAddress, this.peer.relayServer!.free, (error) => {
      this.busy = false;
      this.nextAnnounceAt = this.peer.router.clock.now() + (error ? RETRY_MS : ANNOUNCE_INTERVAL_MS);
      if (error) this.log.info('relay-announce-failed', { error: error.message });
      if (error) this.announcements.failed++;
      else this.announcements.stored++;
    });
  }

  /** Takes an allocation on the nearest relay found by name (or on `known`, when given, without looking again). */
  private allocate(known?: readonly RelayEntry[]): void {
    const kind = this.peer.kinds.named('RELAY-SERVICE');
    this.busy = true;
    const now = this.peer.router.clock.now();
    for (const [key, until] of this.avoided) if (until <= now) this.avoided.delete(key);
    const usable = (address: Address) => !this.avoided.has(addressKey(address));
    const fallback = this.bootstrap.filter(usable);
    // Relays announce an address anyone reaches (public, or forwarded): the sealed link opens straight to
    // one, from behind any NAT, with no Attach routed round the ring (which, when we are moving
    // off a lost relay, could cross the dead peer). The bootstrap peers come last.
    const withRelays = (relays: readonly RelayEntry[]): void => {
      const unique = [...new Map([...relays.map((r) => r.address), ...fallback].map((address) => [addressKey(address), address])).values()];
      if (unique.length === 0) return this.allocated(false);
      this.peer.allocateRelayOn(unique, (ok) => this.allocated(ok), relays[0]?.nodeId);
    };
    if (!kind) return withRelays([]);
    const stillUsable = (known ?? []).filter((r) => usable(r.address));
    if (stillUsable.length) return withRelays(stillUsable);
    if (known) this.log.info('relay-survey', { reason: known.length ? 'the relays found last are passed over' : 'no relays found yet' });
    this.survey(kind, usable, withRelays);
  }

  /**
   * The relays under RELAY-SERVICE, nearest first (status `nat.relayChoice`). Kept fresh while we
   * hold an allocation, so that losing it needs no lookup: the ring may route one through the
   * very relay that died.
   */
  private survey(kind: KindDefinition, usable: (address: Address) => boolean, done: (ranked: RelayEntry[], error?: Error) => void): void {
    findRelays(this.peer.client, kind, (error, relays) => {
      // A lookup that failed (a route through a peer that just died) tells nothing: keep what we knew.
      if (error) return done(this.lastFound.filter((r) => usable(r.address)), error);
      const found = (relays ?? []).filter((r) => r.free > 0 && r.nodeId !== this.peer.nodeId && usable(r.address));
      const clock = this.peer.router.clock;
      const ping = (address: Address, answered: (rttMs: number | undefined) => void): void => {
        const sentAt = clock.now();
        this.peer.nat.bindingRequest(address, (mapped) => answered(mapped ? clock.now() - sentAt : undefined), 2);
      };
      // The nearest relay first: media through it pays its round trip twice.
      rankByRoundTrip(found, ping, (ranked) => {
        this.lastFound = ranked.map((r) => r.relay);
        this.relayRoundTrips = ranked.map((r) => ({ address: addressKey(r.relay.address), rttMs: r.rttMs ?? null }));
        done(this.lastFound);
      });
    });
  }

  /** Refreshes the relays to fall back on should ours be lost. */
  private surveyStandby(): void {
    const kind = this.peer.kinds.named('RELAY-SERVICE');
    this.nextSurveyAt = this.peer.router.clock.now() + STANDBY_SURVEY_MS;
    if (!kind) return;
    // Not `busy`: losing our relay meanwhile must not wait for this lookup.
    this.surveying = true;
    const ours = this.peer.nat.relay.server;
    this.survey(kind, (address) => !ours || addressKey(address) !== addressKey(ours), (ranked, error) => {
      this.surveying = false;
      // A warm standby: with a sealed link open to the nearest other relay, losing ours costs no
      // handshake, only the Allocate.
      const standby = ranked[0];
      this.log.info('relay-standby', { found: ranked.length, standby: standby ? addressKey(standby.address) : null, ...(error ? { error: error.message } : {}) });
      const retrySoon = () => {
        this.nextSurveyAt = Math.min(this.nextSurveyAt, this.peer.router.clock.now() + this.standbyRetryMs);
        this.standbyRetryMs = Math.min(this.standbyRetryMs * 2, STANDBY_SURVEY_MS);
      };
      if (!standby) return retrySoon();
      if (this.stopped) return;
      this.peer.openSealedLink(standby.address, standby.nodeId, (error) => (error ? retrySoon() : (this.standbyRetryMs = STANDBY_RETRY_MS)));
    });
  }

  private allocated(ok: boolean): void {
    this.busy = false;
    if (!ok) this.nextAllocateAt = this.peer.router.clock.now() + RETRY_MS;
    if (this.moving.length) this.moveLinks();
  }
}
