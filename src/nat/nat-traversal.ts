import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import type { Random } from '../runtime/random.js';
import { type Address, addressKey } from '../wire/address.js';
import type { Candidate } from '../wire/messages/attach.js';
import { gatherCandidates } from './ice/candidates.js';
import { IceAgent } from './ice/ice-agent.js';
import type { Base } from './ice/ice-session.js';
import { seal } from './stun/integrity.js';
import { decodeStun, encodeStun, mappedAddress, StunClass, StunError, StunMethod } from './stun/message.js';
import { StunServer } from './stun/stun-server.js';
import { StunTransactions } from './stun/stun-transactions.js';

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
}

export interface NatCounters {
  stunRequestsSent: number;
  malformed: number;
}

const REFLEXIVE_REFRESH_MS = 5 * 60_000;

export class NatTraversal {
  readonly stun = new StunServer();
  readonly transactions: StunTransactions;
  readonly ice: IceAgent;
  readonly counters: NatCounters = { stunRequestsSent: 0, malformed: 0 };
  /** Server-reflexive addresses, one per STUN server asked, first answer first. */
  private reflexive: { server: Address; mapped: Address }[] = [];
  private reflexiveAt = -Infinity;
  /** Set by the relay client when it holds an allocation. */
  private relayed: Address | undefined;
  private relaySend: ((to: Address, datagram: Uint8Array) => void) | undefined;

  constructor(private readonly deps: NatTraversalDeps) {
    this.transactions = new StunTransactions(deps.clock, deps.random);
    this.ice = new IceAgent(deps.clock, deps.random, this.transactions, (base, to, datagram) => this.send(base, to, datagram));
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
    if (message.klass !== StunClass.Request) return;
    const answer = IceAgent.isCheck(message) ? this.ice.answerCheck(base, from, datagram, message) : this.stun.answer(datagram, from);
    if (answer) this.send(base, from, answer);
  }

  send(base: Base, to: Address, datagram: Uint8Array): void {
    if (base === 'relay' && this.relaySend) this.relaySend(to, datagram);
    else this.deps.sendRaw(to, datagram);
  }

  /** Asks one STUN server for our address as it sees it (RFC 8489 s6.2); undefined on no answer. */
  bindingRequest(server: Address, done: (mapped: Address | undefined) => void, attempts = 5): void {
    const transactionId = this.transactions.newTransactionId();
    const request = seal(encodeStun(StunMethod.Binding, StunClass.Request, transactionId, []));
    this.counters.stunRequestsSent++;
    this.transactions.request(transactionId, request, server, this.deps.sendRaw, (answer) => {
      done(answer && answer.message.klass === StunClass.Success ? mappedAddress(answer.message) : undefined);
    }, { rtoMs: 250, attempts });
  }

  /** Learns the server-reflexive address from up to two servers; calls back when both answered or gave up. */
  learnReflexive(servers: readonly Address[], done: () => void = () => {}): void {
    const own = addressKey(this.deps.host());
    const asked = servers.filter((s) => addressKey(s) !== own).slice(0, 2);
    if (asked.length === 0) return done();
    const found: { server: Address; mapped: Address }[] = [];
    let outstanding = asked.length;
    for (const server of asked) {
      this.bindingRequest(server, (mapped) => {
        if (mapped) found.push({ server, mapped });
        if (--outstanding > 0) return;
        if (found.length) {
          this.reflexive = found;
          this.reflexiveAt = this.deps.clock.now();
        }
        this.deps.log.debug('reflexive', { mapped: found.map((f) => addressKey(f.mapped)) });
        done();
      });
    }
  }

  get reflexiveStale(): boolean {
    return this.deps.clock.now() - this.reflexiveAt > REFLEXIVE_REFRESH_MS;
  }

  /** Host, server-reflexive and relayed candidates for an Attach (RFC 6940 s6.5.1.1). */
  candidates(): Candidate[] {
    return gatherCandidates(this.deps.host(), this.reflexive.map((r) => r.mapped), this.relayed);
  }

  /**
   * Whether strangers can send to us unasked: our address is public (the STUN servers see our
   * own address). Until a server answered, a node with STUN servers to ask assumes it cannot.
   */
  reachableUnsolicited(hasServers: boolean): boolean {
    if (this.reflexive.length === 0) return !hasServers;
    const own = addressKey(this.deps.host());
    return this.reflexive.every((r) => addressKey(r.mapped) === own);
  }

  /** An Attach chose this pair: a relayed one sends everything for `remote` through the relay. */
  selected(base: Base, remote: Address): void {
    this.onSelected?.(base, remote);
  }

  onSelected: ((base: Base, remote: Address) => void) | undefined;

  useRelay(relayed: Address | undefined, send?: (to: Address, datagram: Uint8Array) => void): void {
    this.relayed = relayed;
    this.relaySend = send;
    this.ice.hasRelay = relayed !== undefined;
  }

  status(): Record<string, unknown> {
    return {
      reflexive: this.reflexive.map((r) => ({ server: addressKey(r.server), mapped: addressKey(r.mapped) })),
      relayed: this.relayed ? addressKey(this.relayed) : null,
      ice: { ...this.ice.counters, active: this.ice.activeSessions },
      stunClient: { ...this.counters, retransmissions: this.transactions.retransmissions },
    };
  }

  close(): void {
    this.ice.close();
    this.transactions.cancelAll();
  }
}
