import type { Clock, TimerHandle } from '../../../runtime/clock.js';
import type { Logger } from '../../../runtime/log.js';
import { type Address, addressKey } from '../../../wire/address.js';
import { type Id, idToHex } from '../../../wire/id.js';
import { nodeDestination } from '../../../wire/message.js';
import type { Contact } from '../../../wire/messages/contact.js';
import type { OverlayRouter } from '../../router.js';
import type { Attacher, Topology } from '../topology.js';

/*
 * A client (RFC 6940 s3.2.1, RFC 7890 s2) uses the overlay without routing or storing. It
 * attaches to the peer responsible for its own Node-ID, found with an Attach routed to that ID
 * through a bootstrap peer, and sends everything through that peer; messages for the client
 * reach the same peer, which knows the client's address from the Attach. It attaches again every
 * refresh (following the ring as peers come and go, and noticing within seconds that its peer
 * died), and through the next bootstrap peer at once when its peer stops answering.
 */
export interface ClientTopologyOptions {
  readonly advertisedAddress: () => Address;
  readonly attacher: () => Attacher;
  readonly clock: Clock;
  readonly log: Logger;
  /** Wait before trying the next bootstrap peer after a failed attach. */
  readonly retryMs: number;
  /** Attach again this often, to follow the responsible peer as peers join and leave. */
  readonly refreshMs: number;
}

export const DEFAULT_CLIENT_OPTIONS = { retryMs: 5_000, refreshMs: 15_000 };

type ClientState = 'idle' | 'attaching' | 'attached' | 'left';

export class ClientTopology implements Topology {
  readonly name = 'client';
  readonly counters = { attaches: 0, attachFailures: 0, peerFailures: 0 };
  private router!: OverlayRouter;
  private state: ClientState = 'idle';
  private peer: Contact | undefined;
  private bootstrap: Address[] = [];
  private nextBootstrap = 0;
  private timer: TimerHandle | undefined;
  private readonly listeners: (() => void)[] = [];

  constructor(private readonly options: ClientTopologyOptions) {}

  get joined(): boolean {
    return this.state === 'attached';
  }

  attach(router: OverlayRouter): void {
    this.router = router;
  }

  start(bootstrap: readonly Address[]): void {
    this.bootstrap = bootstrap.filter((a) => addressKey(a) !== addressKey(this.options.advertisedAddress()));
    if (this.bootstrap.length === 0) {
      this.options.log.warn('client-without-bootstrap', { hint: 'a client needs a peer to attach to: pass --bootstrap or enroll with a configuration that names one' });
      return;
    }
    this.attachToPeer();
  }

  /** RFC 6940 s10.6's first step, as a client: an Attach to our own Node-ID reaches the responsible peer. */
  private attachToPeer(): void {
    if (this.state === 'left') return;
    if (!this.peer) this.state = 'attaching';
    const via = this.peer?.address ?? this.bootstrap[this.nextBootstrap++ % this.bootstrap.length];
    this.counters.attaches++;
    this.options.attacher().attach(nodeDestination(this.router.nodeId), { firstHop: via, timeoutMs: 5_000 }, (error, outcome) => {
      if (this.state === 'left') return;
      if (error || !outcome) {
        this.counters.attachFailures++;
        this.options.log.info('client-attach-failed', { via: addressKey(via), error: error?.message });
        // Our peer stopped answering: try a bootstrap peer at once; otherwise pause between tries.
        const lostPeer = this.peer !== undefined;
        if (lostPeer) this.neighborLost();
        this.schedule(lostPeer ? 0 : this.options.retryMs);
        return;
      }
      const { id, address } = outcome;
      const changed = this.peer?.id !== id;
      this.peer = { id, address };
      this.router.transport.setWatched([address]); // keepalives hold the link (and a NAT binding) open
      this.state = 'attached';
      if (changed) {
        this.options.log.info('client-attached', { peer: idToHex(id), address: addressKey(address) });
        for (const listener of this.listeners) listener();
      }
      this.schedule(this.options.refreshMs);
    });
  }

  private schedule(delayMs: number): void {
    this.options.clock.clearTimer(this.timer);
    this.timer = this.options.clock.setTimer(delayMs, () => this.attachToPeer());
  }

  leave(done: () => void): void {
    this.halt();
    done();
  }

  halt(): void {
    this.state = 'left';
    this.options.clock.clearTimer(this.timer);
  }

  /** A client is responsible for nothing: every message it does not address to itself goes to its peer. */
  isResponsible(): boolean {
    return false;
  }

  nextHops(): Contact[] {
    return this.peer ? [this.peer] : [];
  }

  ownAddressChanged(): void {
    // A client keeps no memory of failed peers: its one link is set up again when it fails.
  }

  neighborFailed(id: Id): void {
    if (id !== this.peer?.id) return;
    this.neighborLost();
    this.schedule(0);
  }

  private neighborLost(): void {
    this.counters.peerFailures++;
    this.peer = undefined;
    this.router.transport.setWatched([]);
    this.state = 'attaching';
    for (const listener of this.listeners) listener();
  }

  neighbors(): Contact[] {
    return this.peer ? [this.peer] : [];
  }

  successorIds(): Id[] {
    return [];
  }

  predecessorIds(): Id[] {
    return [];
  }

  /** A client admits no one. */
  beforeAdmitting(): void {}

  /** A client never joins the ring. */
  admittingPeer(): undefined {
    return undefined;
  }

  onNeighborsChanged(listener: () => void): void {
    this.listeners.push(listener);
  }

  status(): Record<string, unknown> {
    const describe = (c: Contact) => ({ id: idToHex(c.id), address: addressKey(c.address) });
    return {
      topology: 'client',
      state: this.state,
      peer: this.peer ? describe(this.peer) : null,
      successors: [],
      predecessors: [],
      fingers: [],
      counters: { ...this.counters },
    };
  }
}
