import { checkableFrom } from './address-scope.js';
import { KeyedRateLimiter, TokenBucket } from '../runtime/token-bucket.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import type { Random } from '../runtime/random.js';
import { type Address, addressKey } from '../wire/address.js';
import type { Candidate } from '../wire/messages/attach.js';
import { gatherCandidates } from './ice/candidates.js';
import { IceAgent } from './ice/ice-agent.js';
import type { Base } from './ice/ice-session.js';
import { seal } from './stun/integrity.js';
import { Attr, attribute, decodeStun, encodeStun, mappedAddress, StunClass, StunError, type StunMessage, StunMethod } from './stun/message.js';
import { CHANGE_IP, CHANGE_PORT, discoverBehavior, type NatBehavior } from './behavior-discovery.js';
import { FULL_ANSWER_BYTES, StunServer } from './stun/stun-server.js';
import { StunTransactions } from './stun/stun-transactions.js';
import { RelayClient } from './relay/relay-client.js';
import { RELAY_LINK_LABEL } from './relay/allocation-key.js';
import type { RelayLink } from './relay/relay-link.js';
import type { RelayServer } from './relay/relay-server.js';
import { bytesToHex } from '../runtime/hex.js';

/*
 * A node's NAT traversal on its one UDP port: it answers STUN (as every peer does), learns its
 * server-reflexive address from public peers, gathers Attach candidates and runs the ICE-style
 * checks. The datagrams come from the link layer below; what sits above only asks for
 * candidates and sessions.
 */
export interface NatTraversalDeps {
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  /** The node's own (host) address. */
  readonly host: () => Address;
  /** Sends one raw datagram from the node's port. */
  readonly sendRaw: (to: Address, datagram: Uint8Array) => void;
  /** The node's link with relaying folded in (relay client side). */
  readonly relayLink: RelayLink;
  /** The sealed link's secret for a label with the peer at an address (relay Allocates are keyed with it). */
  readonly linkSecret: (address: Address, label: string) => Uint8Array | undefined;
  /** Present on a peer that relays for others. */
  readonly relayServer?: RelayServer;
  /** Answers RFC 5780 CHANGE-REQUESTs (a public peer with a partner); without it they get 420. */
  readonly changeResponder?: () => ChangeResponder | undefined;
  /** Whether `address` holds a sealed link with an enrolled node (it may redirect answers freely). */
  readonly isEnrolled?: (address: Address) => boolean;
}

/**
 * Unauthenticated STUN, before any work: per source address and port (many homes share one
 * carrier-grade NAT's address) and in all (a plain Binding answer is the
 * only thing a stranger gets, and only this often); answers sent elsewhere than the asker's own
 * address (RESPONSE-PORT) or from elsewhere (CHANGE-REQUEST, which costs a signed overlay message
 * or a new socket) are for enrolled peers, or a small budget shared by everyone else.
 */
const STUN_PER_SOURCE = { ratePerSecond: 10, burst: 20 };
const STUN_OVERALL = { ratePerSecond: 500, burst: 1000 };
/** Homes run RFC 5780 discovery before they join (strangers still): a neighbourhood of them starting at once must fit. */
const CHANGES_FOR_STRANGERS = { ratePerSecond: 20, burst: 60 };
/** RESPONSE-PORT costs nothing but the answer (to the asker's own IP): binding-lifetime probes from fresh sockets use it. */
const RESPONSE_PORTS_FOR_STRANGERS = { ratePerSecond: 20, burst: 40 };

/** Sends a Binding answer from another port, or has another peer send it from another IP. */
export interface ChangeResponder {
  /** The peer that would answer "change IP" (OTHER-ADDRESS), if there is one. */
  otherAddress(): Address | undefined;
  send(flags: number, to: Address, answer: Uint8Array): void;
}

export interface NatCounters {
  stunRequestsSent: number;
  malformed: number;
  /** STUN requests from strangers over the per-source or overall rate, dropped unanswered. */
  rateLimited: number;
  /** RESPONSE-PORT or CHANGE-REQUEST from strangers beyond their budget, dropped. */
  redirectsRefused: number;
}

export class NatTraversal {
  readonly stun = new StunServer();
  readonly transactions: StunTransactions;
  readonly ice: IceAgent;
  readonly counters: NatCounters = { stunRequestsSent: 0, malformed: 0, rateLimited: 0, redirectsRefused: 0 };
  private readonly perSource: KeyedRateLimiter<string>;
  private readonly overall: TokenBucket;
  private readonly strangerChanges: TokenBucket;
  private readonly strangerResponsePorts: TokenBucket;
  /** Server-reflexive addresses, one per STUN server asked, first answer first. */
  private reflexive: { server: Address; mapped: Address }[] = [];
  readonly relay: RelayClient;
  /** The external address the home router forwards to us (port mapping), if any. */
  portMapped: Address | undefined;
  /** What RFC 5780 discovery found, once it ran. */
  behavior: NatBehavior | undefined;
  private readonly hairpinProbes = new Map<string, () => void>();

  constructor(private readonly deps: NatTraversalDeps) {
    this.transactions = new StunTransactions(deps.clock, deps.random);
    this.perSource = new KeyedRateLimiter(STUN_PER_SOURCE, deps.clock);
    this.overall = new TokenBucket(STUN_OVERALL, deps.clock);
    this.strangerChanges = new TokenBucket(CHANGES_FOR_STRANGERS, deps.clock);
    this.strangerResponsePorts = new TokenBucket(RESPONSE_PORTS_FOR_STRANGERS, deps.clock);
    this.ice = new IceAgent(deps.clock, deps.random, this.transactions, (base, to, datagram) => this.send(base, to, datagram), undefined, (address) => checkableFrom(deps.host(), address));
    this.relay = new RelayClient({ clock: deps.clock, random: deps.random, log: deps.log.child('relay'), transactions: this.transactions, sendRaw: deps.sendRaw, link: deps.relayLink, linkSecret: (relay) => deps.linkSecret(relay, RELAY_LINK_LABEL) });
    deps.relayLink.onRelayedStun = (from, datagram) => this.receive('relay', from, datagram);
  }

  /** Every STUN datagram that reached the node's port (or came out of its relay allocation). */
  receive(base: Base, from: Address, datagram: Uint8Array): void {
    let message;
    try {
      message = decodeStun(datagram);
    } catch (error) {
      if (!(error instanceof StunError)) throw error;
      this.counters.malformed++;
      return;
    }
    if (message.klass === StunClass.Success || message.klass === StunClass.Error) {
      this.transactions.handleAnswer(from, datagram, message);
      return;
    }
    if (this.deps.relayServer?.handle(from, message, datagram)) return;
    if (message.klass !== StunClass.Request) return;
    const hairpin = this.hairpinProbes.get(bytesToHex(message.transactionId));
    if (hairpin) return hairpin();
    if (IceAgent.isCheck(message)) {
      const answer = this.ice.answerCheck(base, from, datagram, message);
      if (answer) this.send(base, from, answer);
      return;
    }
    // A plain Binding request: anyone's. Rate-limited before any work.
    const enrolled = this.deps.isEnrolled?.(from) ?? false;
    if (!enrolled && (!this.perSource.allow(addressKey(from)) || !this.overall.take())) {
      this.counters.rateLimited++;
      return;
    }
    const change = attribute(message, Attr.ChangeRequest);
    const redirected = change ? this.strangerChanges : attribute(message, Attr.ResponsePort) ? this.strangerResponsePorts : undefined;
    if (redirected && !enrolled && !redirected.take()) {
      this.counters.redirectsRefused++;
      return;
    }
    const responder = this.deps.changeResponder?.();
    if (change && change.value.length === 4 && responder && base === 'host') {
      // RFC 5780 s6.1: the answer leaves from the other port or address asked for.
      const flags = change.value[3] & (CHANGE_IP | CHANGE_PORT);
      const answer = this.stun.answer(datagram, from, { ignore: [Attr.ChangeRequest], otherAddress: responder.otherAddress() });
      if (answer) responder.send(flags, from, answer);
      return;
    }
    const answer = this.stun.answer(datagram, from, responder ? { otherAddress: responder.otherAddress() } : {});
    // RFC 5780 s7.5 RESPONSE-PORT: the answer goes to that port of the asker's own address.
    const responsePort = attribute(message, Attr.ResponsePort);
    const port = responsePort && responsePort.value.length === 4 ? new DataView(responsePort.value.buffer, responsePort.value.byteOffset, 2).getUint16(0) : 0;
    const to = port > 0 ? { host: from.host, port } : from;
    if (answer) this.send(base, to, answer);
  }

  send(base: Base, to: Address, datagram: Uint8Array): void {
    if (base === 'relay') this.relay.wrap(to, datagram);
    else this.deps.sendRaw(to, datagram);
  }

  /** RFC 5780 discovery against a primary public peer and, when known, a second one. */
  discover(primary: Address, secondary: Address | undefined, done: (behavior: NatBehavior) => void): void {
    discoverBehavior(
      {
        host: this.deps.host(),
        binding: (server, flags, answered) => this.probe(server, flags, answered),
        hairpin: (to, returned) => this.hairpin(to, returned),
      },
      primary,
      secondary,
      (behavior) => {
        this.behavior = behavior;
        this.deps.log.info('nat-behavior', { mapping: behavior.mapping, filtering: behavior.filtering, hairpinning: behavior.hairpinning });
        done(behavior);
      },
    );
  }

  /** A Binding request, with RFC 5780 CHANGE-REQUEST flags when given; the success answer, or nothing. */
  private probe(server: Address, changeFlags: number, done: (answer: StunMessage | undefined) => void, attempts = 3): void {
    const transactionId = this.transactions.newTransactionId();
    const change = new Uint8Array([0, 0, 0, changeFlags]);
    const request = paddedBindingRequest(transactionId, changeFlags ? [{ type: Attr.ChangeRequest, value: change }] : []);
    this.counters.stunRequestsSent++;
    this.transactions.request(transactionId, request, server, this.deps.sendRaw, (answer) => {
      done(answer && answer.message.klass === StunClass.Success ? answer.message : undefined);
    }, { rtoMs: 250, attempts });
  }


  private hairpin(to: Address, done: (returned: boolean) => void): void {
    const transactionId = this.transactions.newTransactionId();
    const key = bytesToHex(transactionId);
    const request = seal(encodeStun(StunMethod.Binding, StunClass.Request, transactionId, []));
    const timer = this.deps.clock.setTimer(1_500, () => {
      this.hairpinProbes.delete(key);
      done(false);
    });
    this.hairpinProbes.set(key, () => {
      this.hairpinProbes.delete(key);
      this.deps.clock.clearTimer(timer);
      done(true);
    });
    for (const delay of [0, 250, 750]) this.deps.clock.setTimer(delay, () => this.hairpinProbes.has(key) && this.deps.sendRaw(to, request));
  }

  /** Asks one STUN server for our address as it sees it (RFC 8489 s6.2); undefined on no answer. */
  bindingRequest(server: Address, done: (mapped: Address | undefined) => void, attempts = 5): void {
    this.probe(server, 0, (answer) => done(answer ? mappedAddress(answer) : undefined), attempts);
  }


  /**
   * Learns the server-reflexive address from the first server (other than ourselves); calls back
   * when it answered or gave up, and whether the address is not the one we had.
   */
  learnReflexive(servers: readonly Address[], done: (answered: boolean, changed: boolean) => void = () => {}): void {
    const own = addressKey(this.deps.host());
    // One server: a second would open our NAT's filter to it before discovery tests filtering.
    const asked = servers.filter((s) => addressKey(s) !== own).slice(0, 1);
    if (asked.length === 0) return done(false, false);
    const found: { server: Address; mapped: Address }[] = [];
    let outstanding = asked.length;
    for (const server of asked) {
      this.bindingRequest(server, (mapped) => {
        if (mapped) found.push({ server, mapped });
        if (--outstanding > 0) return;
        const before = this.reflexive[0]?.mapped;
        if (found.length) this.reflexive = found;
        // Asked again later (NatUpkeep): an ISP renumbers homes, a rebooted router maps ports anew.
        const changed = before !== undefined && found.length > 0 && addressKey(before) !== addressKey(found[0].mapped);
        if (changed) this.deps.log.info('reflexive-changed', { from: addressKey(before), to: addressKey(found[0].mapped) });
        else this.deps.log.debug('reflexive', { mapped: found.map((f) => addressKey(f.mapped)) });
        done(found.length > 0, changed);
      });
    }
  }

  /** The STUN server that told us our server-reflexive address (asked again: the same mapping, unless it changed). */
  get reflexiveServer(): Address | undefined {
    return this.reflexive[0]?.server;
  }

  /** The host other nodes reach us at from outside our NAT: the router's mapped address once STUN confirms it, else what STUN told us. */
  get publicHost(): string | undefined {
    return this.confirmedPortMapping()?.host ?? this.reflexive[0]?.mapped.host;
  }

  /**
   * The router's port mapping, when a STUN server saw us at the same external address: the
   * router's own word (UPnP, NAT-PMP, PCP) is not advertised to the overlay until then, so a LAN
   * device that answers in the router's name cannot plant an address for us.
   */
  confirmedPortMapping(): Address | undefined {
    const mapped = this.portMapped;
    return mapped && this.reflexive.some((r) => r.mapped.host === mapped.host) ? mapped : undefined;
  }

  /** Host, server-reflexive and relayed candidates for an Attach (RFC 6940 s6.5.1.1). */
  candidates(): Candidate[] {
    const confirmed = this.confirmedPortMapping();
    const reflexive = [...(confirmed ? [confirmed] : []), ...this.reflexive.map((r) => r.mapped)];
    return gatherCandidates(this.deps.host(), reflexive, this.relay.state === 'allocated' ? this.relay.relayed : undefined);
  }

  /**
   * Whether strangers can send to us unasked: our address is public (the STUN servers see our
   * own address). Until a server answered, a node with STUN servers to ask assumes it cannot.
   */
  reachableUnsolicited(hasServers: boolean): boolean {
    // A forwarded port lets anyone in, if it is the port others see us at.
    if (this.portMapped && this.reflexive.some((r) => addressKey(r.mapped) === addressKey(this.portMapped!))) return true;
    // A full-cone NAT (RFC 4787 EIM and EIF) lets anyone in once the mapping exists.
    if (this.behavior?.mapping === 'endpoint-independent' && this.behavior.filtering === 'endpoint-independent') return true;
    if (this.reflexive.length === 0) return !hasServers;
    const own = addressKey(this.deps.host());
    return this.reflexive.every((r) => addressKey(r.mapped) === own);
  }

  /**
   * Whether our host address is itself public (no NAT in front of it), as a relay must be: a
   * relay's allocations open new ports, which a router forwards only for the one port it mapped.
   */
  noNat(hasServers: boolean): boolean {
    if (this.reflexive.length === 0) return !hasServers;
    const own = addressKey(this.deps.host());
    return this.reflexive.every((r) => addressKey(r.mapped) === own);
  }

  /** Checks are about to start with these candidates: let them through our relay allocation. */
  prepareChecks(remote: readonly Candidate[]): void {
    this.ice.hasRelay = this.relay.state === 'allocated';
    if (this.ice.hasRelay) this.relay.permit(remote.map((c) => c.address));
  }

  /** An Attach chose this pair: a relayed one sends everything for `remote` through the relay. */
  selected(base: Base, remote: Address): void {
    if (base === 'relay') this.deps.relayLink.routeThroughRelay(remote);
  }

  status(): Record<string, unknown> {
    return {
      reflexive: this.reflexive.map((r) => ({ server: addressKey(r.server), mapped: addressKey(r.mapped) })),
      behavior: this.behavior ? { ...this.behavior, mapped: this.behavior.mapped ? addressKey(this.behavior.mapped) : null } : null,
      relay: this.relay.status(),
      ...(this.deps.relayServer ? { relayServer: this.deps.relayServer.status() } : {}),
      ice: { ...this.ice.counters, active: this.ice.activeSessions },
      stunClient: { ...this.counters, retransmissions: this.transactions.retransmissions, strayAnswers: this.transactions.strayAnswers, forgedAnswers: this.transactions.forgedAnswers },
    };
  }

  close(): void {
    this.relay.release();
    void this.deps.relayServer?.close();
    this.ice.close();
    this.transactions.cancelAll();
  }
}

/**
 * A Binding request padded (RFC 5780 s7.6 PADDING) to the size of the full answer it asks for:
 * servers answer the unpadded kind with XOR-MAPPED-ADDRESS alone, so as not to amplify.
 */
function paddedBindingRequest(transactionId: Uint8Array, attributes: { type: number; value: Uint8Array }[]): Uint8Array {
  const unpadded = seal(encodeStun(StunMethod.Binding, StunClass.Request, transactionId, attributes));
  const padding = Math.max(0, FULL_ANSWER_BYTES - unpadded.length - 4);
  return seal(encodeStun(StunMethod.Binding, StunClass.Request, transactionId, [...attributes, { type: Attr.Padding, value: new Uint8Array(padding) }]));
}
