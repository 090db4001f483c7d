import type { Clock, TimerHandle } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import type { Random } from '../../runtime/random.js';
import { type Address, addressKey } from '../../wire/address.js';
import { isGlobalUnicast } from '../address-scope.js';
import { integrityValid, seal } from '../stun/integrity.js';
import { Attr, attribute, decodeXorAddress, encodeStun, encodeXorAddress, StunClass, type StunMessage, StunMethod } from '../stun/message.js';
import type { StunTransactions } from '../stun/stun-transactions.js';
import { allocationKey, newKeyShare } from './allocation-key.js';
import type { RelayLink } from './relay-link.js';
import { DEFAULT_LIFETIME_SECONDS, encodeIndication, errorCode, lifetimeAttr, UDP_TRANSPORT } from './turn-codec.js';

type Attributes = { type: number; value: Uint8Array }[];

/*
 * A node's allocation on a relay peer (RFC 8656 s7-s10): allocated once a node knows it is
 * behind a NAT that filters, refreshed at half its lifetime, with permissions installed for
 * each peer it checks with (and renewed every two minutes for the peers its links reach through
 * the relay, since traffic does not renew them), and released when the node stops.
 */
export interface RelayClientDeps {
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly transactions: StunTransactions;
  readonly sendRaw: (to: Address, datagram: Uint8Array) => void;
  readonly link: RelayLink;
  /** The sealed link's secret for RELAY_LINK_LABEL with the relay at this address (the session we send on), if a link is open. */
  readonly linkSecret: (relay: Address) => Uint8Array | undefined;
}

export type RelayState = 'none' | 'allocating' | 'allocated';

/*
 * Whether the relay still holds our allocation (in the manner of RFC 7675's consent checks): a
 * Refresh under the allocation's key every 5 s, or every 250 ms while datagrams go through it (a
 * call's media: a dead relay is a silent call, to be moved within 3 s). A Refresh, not a Binding:
 * a relay that restarted answers Bindings but has forgotten us. The relay is lost when three
 * checks have each gone unanswered for longer than the loss time (four round trips as measured
 * so far, at least 600 ms, at most 5 s): a slow link is not a dead relay, and a late answer still
 * counts. An error answer (it no longer knows the allocation) loses it at once.
 */
export const RELAY_LIVENESS = { busyMs: 250, idleMs: 5_000, minLossMs: 600, maxLossMs: 5_000, missesToLose: 3, answerWaitMs: 6_000 } as const;

export class RelayClient {
  state: RelayState = 'none';
  server: Address | undefined;
  relayed: Address | undefined;
  lastError: string | undefined;
  private livenessTimer: TimerHandle | undefined;
  /** When each liveness check still unanswered was sent (ms). */
  private unanswered: number[] = [];
  /** Smoothed round trip of the liveness checks (ms), once one was answered. */
  private srttMs: number | undefined;
  private traffic = 0;
  readonly counters = { livenessChecks: 0, lost: 0 };
  /**
   * The allocation is gone (dropped here): `silent` when the relay stopped answering, else it
   * answered that it no longer holds it. These peers were reached through it.
   */
  onLost: (server: Address, routed: readonly Address[], silent: boolean) => void = () => {};
  /** The allocation's key (agreed in the Allocate and its answer): what follows carries MESSAGE-INTEGRITY under it. */
  private key: Uint8Array | undefined;
  private readonly permitted = new Map<string, number>();

  constructor(private readonly deps: RelayClientDeps) {}

  /** Allocates on the first of `servers` that grants one; `done` gets the relayed address. */
  allocate(servers: readonly Address[], done: (relayed: Address | undefined) => void): void {
    if (this.state !== 'none') return done(this.relayed);
    const server = servers[0];
    if (!server) return done(undefined);
    const linkSecret = this.deps.linkSecret(server);
    if (!linkSecret) {
      this.lastError = 'no sealed link with the relay';
      return this.allocate(servers.slice(1), done);
    }
    this.state = 'allocating';
    const share = newKeyShare(this.deps.random);
    const attributes = [{ type: Attr.RequestedTransport, value: new Uint8Array([UDP_TRANSPORT, 0, 0, 0]) }, lifetimeAttr(DEFAULT_LIFETIME_SECONDS), { type: Attr.KeyShare, value: share.publicKey }];
    // Keyed with the link's secret, both ways: the relay knows the Allocate is ours, and we know the answer is its.
    this.request(server, StunMethod.Allocate, attributes, (ok, answer) => {
      // Everything the answer says is read before anything changes: a relay (any enrolled node
      // can offer itself as one) whose answer cannot be read is refused like one that says no,
      // and the next is asked. Before, a bad address left us "allocated" with no relay for good.
      let relayed: Address | undefined;
      let key: Uint8Array | undefined;
      let refusal = answer ? `error ${errorCode(answer)}` : 'no answer';
      if (ok && answer) {
        try {
          const relayedAttr = attribute(answer, Attr.XorRelayedAddress);
          relayed = relayedAttr && decodeXorAddress(relayedAttr.value, answer.transactionId);
          refusal = 'answer without a relayed address';
          const relayShare = attribute(answer, Attr.KeyShare)?.value;
          if (relayShare === undefined) [relayed, refusal] = [undefined, 'answer without a key share'];
          else key = allocationKey(share, relayShare, linkSecret, answer.transactionId, 'node');
        } catch (error) {
          relayed = undefined;
          refusal = `unreadable answer: ${(error as Error).message}`;
        }
      }
      if (!ok || !answer || !relayed || !key) {
        this.state = 'none';
        this.lastError = refusal;
        this.deps.log.info('relay-refused', { server: addressKey(server), error: this.lastError });
        return this.allocate(servers.slice(1), done);
      }
      this.state = 'allocated';
      this.server = server;
      this.key = key;
      this.relayed = relayed;
      this.deps.link.useRelay(server, (peer, datagram) => this.wrap(peer, datagram));
      // The liveness checks are Refreshes: they keep the allocation too (every 5 s at most, of a 600 s lifetime).
      this.watch(server);
      this.deps.log.info('relay-allocated', { server: addressKey(server), relayed: addressKey(this.relayed) });
      done(this.relayed);
    }, undefined, false, linkSecret);
  }

  /** Lets these peers' addresses send to us through the relay (s9), before checks with them. */
  permit(peers: readonly Address[]): void {
    if (this.state !== 'allocated' || !this.server) return;
    const now = this.deps.clock.now();
    // The relay permits only global unicast peers other than itself, and refuses a whole request
    // that names one more (RFC 8656 s9.1, 403). A remote candidate relayed by this same relay is
    // such an address: asked for with the others, it would cost every pair its permission.
    const relayHost = new Set([this.server.host]);
    // Permissions last 300 s at the relay; renew well before. One that lapsed there is forgotten
    // here too, or every host ever Attached through a long-lived relay stays (leak review F1).
    for (const [host, at] of this.permitted) if (at < now - 300_000) this.permitted.delete(host);
    const fresh = peers.filter((p) => isGlobalUnicast(p.host, relayHost) && (this.permitted.get(p.host) ?? -Infinity) < now - 120_000);
    const unique = [...new Map(fresh.map((p) => [p.host, p])).values()].slice(0, 16);
    if (unique.length > 0) this.createPermission(unique, now);
  }

  /** One CreatePermission; refused as a whole, each host is asked for alone so one cannot spoil the rest. */
  private createPermission(peers: readonly Address[], now: number): void {
    for (const p of peers) this.permitted.set(p.host, now);
    // XOR-PEER-ADDRESS is XORed with the carrying message's transaction ID.
    const attributes = (id: Uint8Array) => peers.map((p) => ({ type: Attr.XorPeerAddress, value: encodeXorAddress(p, id) }));
    // An unsealed error may split a batch, never refuse a peer: a relay of the release before
    // sends its errors unsealed, and a batch it refuses would otherwise wait out its time.
    this.request(this.server!, StunMethod.CreatePermission, attributes, (ok, answer) => {
      if (ok) return;
      for (const p of peers) if (this.permitted.get(p.host) === now) this.permitted.delete(p.host);
      this.deps.log.info('relay-permission-refused', { peers: peers.map(addressKey).join(' '), error: answer ? `error ${errorCode(answer)}` : 'no answer' });
      if (answer && peers.length > 1 && this.state === 'allocated') for (const p of peers) this.createPermission([p], now);
    }, undefined, peers.length > 1);
  }

  /** Sends one datagram to `peer` out of the relayed address. */
  wrap(peer: Address, datagram: Uint8Array): void {
    if (!this.server) return;
    this.deps.sendRaw(this.server, encodeIndication(StunMethod.Send, this.deps.transactions.newTransactionId(), peer, datagram, this.key));
  }

  release(): void {
    if (this.state === 'allocated' && this.server) this.request(this.server, StunMethod.Refresh, [lifetimeAttr(0)], () => {});
    this.drop();
  }

  /** Forgets the allocation (timers, key, permissions) and stops wrapping datagrams for the relay. */
  private drop(): void {
    this.deps.clock.clearTimer(this.livenessTimer);
    this.state = 'none';
    this.server = undefined;
    this.relayed = undefined;
    this.key = undefined;
    this.permitted.clear();
    this.deps.link.useRelay(undefined);
  }

  /** Checks the relay holds our allocation, as often as what goes through it needs (RELAY_LIVENESS). */
  private watch(server: Address): void {
    this.unanswered = [];
    this.srttMs = undefined;
    const traffic = () => this.deps.link.wrapped + this.deps.link.unwrapped;
    this.traffic = traffic();
    const check = (): void => {
      if (this.state !== 'allocated' || this.server !== server) return;
      const now = this.deps.clock.now();
      const lossMs = Math.min(RELAY_LIVENESS.maxLossMs, Math.max(RELAY_LIVENESS.minLossMs, 4 * (this.srttMs ?? 0)));
      if (this.unanswered.filter((sentAt) => now - sentAt > lossMs).length >= RELAY_LIVENESS.missesToLose) return this.lose(server, true);
      const busy = traffic() !== this.traffic;
      this.traffic = traffic();
      this.livenessTimer = this.deps.clock.setTimer(busy ? RELAY_LIVENESS.busyMs : RELAY_LIVENESS.idleMs, check);
      // Our own table of STUN transactions full is no news of the relay.
      if (this.deps.transactions.full) return;
      // Traffic does not renew a permission (RFC 8656 s9): without this, every link through the
      // relay would go dead 300 s after the Attach that permitted it.
      this.permit(this.deps.link.routedPeers());
      this.counters.livenessChecks++;
      this.unanswered.push(now);
      if (this.unanswered.length > 16) this.unanswered.shift();
      this.request(server, StunMethod.Refresh, [lifetimeAttr(DEFAULT_LIFETIME_SECONDS)], (ok, answer) => {
        if (this.state !== 'allocated' || this.server !== server || !answer) return;
        if (!ok) return this.lose(server, false);
        const rtt = this.deps.clock.now() - now;
        this.srttMs = this.srttMs === undefined ? rtt : 0.875 * this.srttMs + 0.125 * rtt;
        // An answer, late or not: the relay is there, and holds us.
        this.unanswered = [];
      }, { rtoMs: RELAY_LIVENESS.answerWaitMs, attempts: 1 });
    };
    this.livenessTimer = this.deps.clock.setTimer(RELAY_LIVENESS.idleMs, check);
  }

  private lose(server: Address, silent: boolean): void {
    const routed = this.deps.link.routedPeers();
    this.counters.lost++;
    this.lastError = silent ? 'relay stopped answering' : 'relay no longer holds the allocation';
    this.deps.log.warn('relay-lost', { server: addressKey(server), silent, peersThroughIt: routed.length });
    // A silent relay may only have been cut off from us: if it hears this, it frees our allocation,
    // and an Allocate of ours from this same address later is answered, not refused as a mismatch (437).
    if (silent) this.request(server, StunMethod.Refresh, [lifetimeAttr(0)], () => {});
    this.drop();
    this.onLost(server, routed, silent);
  }

  status(): Record<string, unknown> {
    return { state: this.state, server: this.server ? addressKey(this.server) : null, relayed: this.relayed ? addressKey(this.relayed) : null, lastError: this.lastError ?? null, permissions: this.permitted.size, ...this.counters };
  }

  /** A request under the allocation's key (`key` instead: the link's secret, for the Allocate). */
  private request(server: Address, method: number, attributes: Attributes | ((transactionId: Uint8Array) => Attributes), done: (ok: boolean, answer?: StunMessage) => void, options = { rtoMs: 250, attempts: 5 }, unsealedErrors = false, key = this.key): void {
    const transactionId = this.deps.transactions.newTransactionId();
    const bytes = seal(encodeStun(method, StunClass.Request, transactionId, typeof attributes === 'function' ? attributes(transactionId) : attributes), key);
    // Once allocated, the relay seals every answer (error ones too) under the allocation's key:
    // a forged error, even from the relay's own address, must not cost us the relay.
    const accept = key && ((answer: { bytes: Uint8Array; message: StunMessage }) => integrityValid(answer.bytes, answer.message, key) || (unsealedErrors && answer.message.klass === StunClass.Error));
    this.deps.transactions.request(transactionId, bytes, server, this.deps.sendRaw, (answer) => {
      done(answer?.message.klass === StunClass.Success, answer?.message);
    }, { ...options, symmetric: true, accept }); // the allocation is this 5-tuple's
  }
}
