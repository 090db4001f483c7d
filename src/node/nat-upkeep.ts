import type { TimerHandle } from '../runtime/clock.js';
import type { Link } from '../link/link.js';
import type { Logger } from '../runtime/log.js';
import { ANNOUNCE_INTERVAL_MS, announceRelay, findRelays, type RelayEntry } from '../usages/relay/relay-directory.js';
import { type Address, addressKey } from '../wire/address.js';
import { rankByRoundTrip } from '../nat/relay/relay-choice.js';
import { nodeDestination } from '../wire/message.js';
import type { OverlayPeer } from './overlay-peer.js';

/*
 * NAT upkeep once the node has joined: relays, both sides, and the keepalive interval. A peer with a public address that relays
 * announces itself under RELAY-SERVICE and renews the entry; a node whose NAT filters finds the
 * relays by that name (falling back on its bootstrap peers), opens a sealed link to one (a relay
 * serves enrolled nodes only) and takes an allocation, whose address then goes into every
 * Attach as its relayed candidate.
 */
const CHECK_MS = 5_000;
const RETRY_MS = 30_000;

export class NatUpkeep {
  private timer: TimerHandle | undefined;
  private nextAnnounceAt = 0;
  private nextAllocateAt = 0;
  private busy = false;
  private lifetimeMeasured = false;
  private stopped = false;
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
    this.schedule(1_000);
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
    if (this.peer.topology.joined && !this.busy) {
      if (this.peer.attachFirst) {
        if (this.peer.nat.relay.state === 'none' && now >= this.nextAllocateAt) this.allocate();
        else if (!this.lifetimeMeasured && this.openSocket && this.bootstrap[0]) {
          // Once, in the background: it takes as long as the bindings it waits out.
          this.lifetimeMeasured = true;
          void this.peer.measureBindingLifetime(this.bootstrap[0], this.openSocket);
        }
      } else if (this.serves && this.peer.mayRelay && now >= this.nextAnnounceAt) {
        // A port-mapped home reaches the overlay, but its relay's new ports would not be reachable:
        // only peers with a public address of their own announce themselves as relays.
        this.announce();
      }
    }
    this.schedule(CHECK_MS);
  }

  private announce(): void {
    const kind = this.peer.kinds.named('RELAY-SERVICE');
    if (!kind) return;
    this.busy = true;
    announceRelay(this.peer.client, kind, this.peer.identity, this.peer.address, this.peer.relayServer!.free, (error) => {
      this.busy = false;
      this.nextAnnounceAt = this.peer.router.clock.now() + (error ? RETRY_MS : ANNOUNCE_INTERVAL_MS);
      if (error) this.log.info('relay-announce-failed', { error: error.message });
    });
  }

  private allocate(): void {
    const kind = this.peer.kinds.named('RELAY-SERVICE');
    this.busy = true;
    const fallback = this.bootstrap.map((address) => ({ nodeId: undefined, address }));
    const withRelays = (relays: readonly { nodeId?: bigint; address: Address }[]): void => {
      const first = relays[0];
      if (!first) return this.allocated(false);
      // A relay found by name may be no neighbour of ours: Attach to it, then open a sealed link.
      if (first.nodeId === undefined) return this.peer.allocateRelayOn(relays.map((r) => r.address), (ok) => this.allocated(ok));
      this.peer.attach.attach(nodeDestination(first.nodeId), { timeoutMs: 5_000 }, () => {
        this.peer.allocateRelayOn(relays.map((r) => r.address), (ok) => this.allocated(ok));
      });
    };
    if (!kind) return withRelays(fallback);
    findRelays(this.peer.client, kind, (error, relays) => {
      const found = (relays ?? []).filter((r) => r.free > 0 && r.nodeId !== this.peer.nodeId);
      const known = new Set(found.map((r: RelayEntry) => addressKey(r.address)));
      const clock = this.peer.router.clock;
      const ping = (address: Address, answered: (rttMs: number | undefined) => void): void => {
        const sentAt = clock.now();
        this.peer.nat.bindingRequest(address, (mapped) => answered(mapped ? clock.now() - sentAt : undefined), 2);
      };
      // The nearest relay first: media through it pays its round trip twice.
      rankByRoundTrip(found, ping, (ranked) => {
        this.relayRoundTrips = ranked.map((r) => ({ address: addressKey(r.relay.address), rttMs: r.rttMs ?? null }));
        withRelays([...ranked.map((r) => r.relay), ...fallback.filter((f) => !known.has(addressKey(f.address)))]);
      });
    });
  }

  private allocated(ok: boolean): void {
    this.busy = false;
    if (!ok) this.nextAllocateAt = this.peer.router.clock.now() + RETRY_MS;
  }
}
