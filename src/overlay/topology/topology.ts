import type { Id } from '../../wire/id.js';
import type { Contact } from '../../wire/messages/contact.js';
import type { P2psipError } from '../../runtime/errors.js';
import type { Address } from '../../wire/address.js';
import type { Destination } from '../../wire/message.js';
import type { OverlayRouter, RequestOptions } from '../router.js';

/** Sets up a link to whoever is responsible for a destination (the Attach service). */
export interface Attacher {
  attach(destination: Destination, options: RequestOptions, done: (error: P2psipError | undefined, outcome?: { readonly id: Id; readonly address: Address }) => void): void;
}

/**
 * The topology plugin interface (RFC 6940 s10 describes CHORD-RELOAD as one such plugin).
 * The overlay asks it who is responsible for an ID and where to send a message next; it keeps
 * its own neighbour state with the messages it registers on the router.
 */
export interface Topology {
  readonly name: string;
  /** True once the node is part of the overlay and may route and store. */
  readonly joined: boolean;
  attach(router: OverlayRouter): void;
  /** Joins through the bootstrap contacts (none: start a new overlay). */
  start(bootstrap: readonly Address[]): void;
  /** Leaves gracefully; calls `done` when the neighbours were told (or gave up). */
  leave(done: () => void): void;
  /** Stops timers without telling anyone (a crash, in the simulator). */
  halt(): void;
  isResponsible(id: Id): boolean;
  /**
   * Candidate next hops toward `id`, best first; empty when this node is responsible. A non-zero
   * `detour` (a random byte) asks for another good hop first, for a retry to take another path.
   */
  nextHops(id: Id, detour?: number): Contact[];
  /** A neighbour stopped answering. */
  neighborFailed(id: Id): void;
  /**
   * Our own public address changed (the ISP renumbered us, the router mapped us anew): the peers
   * whose links died with it did not fail, and may be learnt again at once.
   */
  ownAddressChanged(): void;
  /** Addresses whose links should be kept alive. */
  neighbors(): Contact[];
  /** Successors, nearest first: where replicas go (RFC 6940 s10.7). */
  successorIds(): Id[];
  /** Predecessors, nearest first. */
  predecessorIds(): Id[];
  /** Called whenever the successor or predecessor lists change. */
  onNeighborsChanged(listener: () => void): void;
  /**
   * What the layer above does for a peer asking to join through us before it is admitted
   * (RFC 6940 s10.6 step 5: the storage hands over what the newcomer will be responsible for).
   */
  beforeAdmitting(handler: (joiner: Id, done: () => void) => void): void;
  /** While joining: the peer admitting us, whose hand-over comes before we are part of the ring. */
  admittingPeer(): Id | undefined;
  status(): Record<string, unknown>;
}
