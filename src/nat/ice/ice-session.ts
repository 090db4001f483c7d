import type { Clock, TimerHandle } from '../../runtime/clock.js';
import { type Address, addressKey } from '../../wire/address.js';
import { type Candidate, CandidateType } from '../../wire/messages/attach.js';
import { integrityValid, seal, shortTermKey } from '../stun/integrity.js';
import { Attr, encodeStun, encodeXorAddress, StunClass, StunMethod, type StunMessage } from '../stun/message.js';
import type { StunAnswer, StunTransactions } from '../stun/stun-transactions.js';
import { candidatePriority, pairPriority, PEER_REFLEXIVE_PREFERENCE } from './candidates.js';

/*
 * One set of ICE-style connectivity checks (RFC 8445 s6-s8), as an Attach starts them
 * (RFC 6940 s6.5.1.3): both ends send paced STUN Binding checks to every candidate of the
 * other, and a check that is answered proves a path through both NATs (the simultaneous sends
 * are the hole punching). The Attach requester controls: it nominates the best pair that
 * worked (USE-CANDIDATE), and both ends then use that pair. One UDP port per node, so a pair is
 * a local base (the port itself, or the node's relay allocation) and a remote address.
 */
export type Base = 'host' | 'relay';
export type IceRole = 'controlling' | 'controlled';
export type IceState = 'waiting' | 'checking' | 'completed' | 'failed';

export interface IceCredentials {
  readonly ufrag: string;
  readonly pwd: string;
}

export interface IceResult {
  readonly base: Base;
  readonly remote: Address;
  /** What the winning remote address was: one of its candidates, or learned from its check. */
  readonly remoteType: 'host' | 'srflx' | 'relay' | 'prflx';
  readonly setupMs: number;
  readonly checksSent: number;
}

export interface IceTiming {
  /** Ta (s14.2): one new check at most this often. */
  readonly paceMs: number;
  readonly rtoMs: number;
  readonly attempts: number;
  /** How long the controlling side waits for a better pair after the first one works. */
  readonly nominationGraceMs: number;
  readonly giveUpMs: number;
}

export const DEFAULT_ICE_TIMING: IceTiming = { paceMs: 20, rtoMs: 100, attempts: 6, nominationGraceMs: 150, giveUpMs: 10_000 };

type PairState = 'waiting' | 'in-progress' | 'succeeded' | 'failed';

interface Pair {
  readonly base: Base;
  readonly remote: Address;
  readonly remoteType: IceResult['remoteType'];
  readonly priority: bigint;
  state: PairState;
  nominated: boolean;
}

export interface IceSessionDeps {
  readonly clock: Clock;
  readonly transactions: StunTransactions;
  readonly send: (base: Base, to: Address, datagram: Uint8Array) => void;
  /** The local relayed candidate exists: checks may also go out through the relay. */
  readonly hasRelay: () => boolean;
  readonly timing: IceTiming;
  /** Whether checks may go to this address at all (nat-traversal.ts: not a third party's LAN or loopback). */
  readonly checkable: (address: Address) => boolean;
}

/**
 * Bounds on what one Attach can make us send: its first 8 usable candidates, and a check list of
 * at most 100 pairs, peer-reflexive ones included (RFC 8445 s6.1.2.5's default limit).
 */
export const MAX_REMOTE_CANDIDATES = 8;
export const MAX_PAIRS = 100;

const REMOTE_TYPE: Record<CandidateType, IceResult['remoteType']> = {
  [CandidateType.Host]: 'host',
  [CandidateType.ServerReflexive]: 'srflx',
  [CandidateType.Relayed]: 'relay',
};

export class IceSession {
  state: IceState = 'waiting';
  private readonly pairs = new Map<string, Pair>();
  private readonly triggered: Pair[] = [];
  /** Checks that arrived before the Attach answer told us the other side's credentials. */
  private readonly early: { base: Base; from: Address; request: StunMessage }[] = [];
  private remote: IceCredentials | undefined;
  private role: IceRole = 'controlled';
  private paceTimer: TimerHandle | undefined;
  private graceTimer: TimerHandle | undefined;
  private giveUpTimer: TimerHandle | undefined;
  private nominating: Pair | undefined;
  private startedAt = 0;
  /** Whether checks ever began (an Attach whose request failed never starts its session). */
  started = false;
  private checksSent = 0;
  private result: IceResult | undefined;
  private readonly listeners: ((result: IceResult | undefined) => void)[] = [];

  /** Checks sent and not yet answered (their transaction IDs). */
  private readonly inFlight = new Set<Uint8Array>();

  constructor(
    readonly local: IceCredentials,
    private readonly tieBreaker: Uint8Array,
    private readonly deps: IceSessionDeps,
  ) {}

  /** Starts checking once the other side's credentials and candidates are known. */
  start(role: IceRole, remote: IceCredentials, localPriority: number, remoteCandidates: readonly Candidate[]): void {
    this.transition('checking');
    this.started = true;
    this.role = role;
    this.remote = remote;
    this.startedAt = this.deps.clock.now();
    for (const c of remoteCandidates.filter((candidate) => this.deps.checkable(candidate.address)).slice(0, MAX_REMOTE_CANDIDATES)) {
      this.addPair('host', c.address, REMOTE_TYPE[c.type], localPriority, c.priority);
      // A relay reaches anything but another relay (two relays add nothing over one).
      if (this.deps.hasRelay() && c.type !== CandidateType.Relayed) this.addPair('relay', c.address, REMOTE_TYPE[c.type], 0, c.priority);
    }
    this.giveUpTimer = this.deps.clock.setTimer(this.deps.timing.giveUpMs, () => this.finish(undefined));
    for (const { base, from, request } of this.early.splice(0)) this.answerCheck(base, from, request);
    this.pace();
  }

  onDone(listener: (result: IceResult | undefined) => void): void {
    if (this.state === 'completed' || this.state === 'failed') listener(this.result);
    else this.listeners.push(listener);
  }

  /**
   * A check from the other side (its integrity already verified with our password): the
   * answer to send back, after noting the path it came by (s7.3).
   */
  answerCheck(base: Base, from: Address, request: StunMessage): Uint8Array {
    const answer = seal(
      encodeStun(StunMethod.Binding, StunClass.Success, request.transactionId, [{ type: Attr.XorMappedAddress, value: encodeXorAddress(from, request.transactionId) }]),
      shortTermKey(this.local.pwd),
    );
    if (this.state === 'waiting' && this.early.length < 16) this.early.push({ base, from, request });
    if (this.state !== 'checking') return answer;
    const useCandidate = request.attributes.some((a) => a.type === Attr.UseCandidate);
    let pair = this.pairs.get(pairKey(base, from));
    if (!pair) {
      // s7.3.1.3-4: an address we had no candidate for is peer-reflexive; check it back (while the list has room).
      pair = this.addPair(base, from, 'prflx', this.localPriority(base), readPriority(request));
      if (!pair) return answer;
    }
    if (pair.state === 'waiting' || pair.state === 'failed') {
      pair.state = 'waiting';
      this.triggered.push(pair);
    }
    if (useCandidate && this.role === 'controlled') {
      pair.nominated = true;
      if (pair.state === 'succeeded') this.finish(pair);
    }
    return answer;
  }

  close(): void {
    this.deps.clock.clearTimer(this.paceTimer);
    this.deps.clock.clearTimer(this.graceTimer);
    this.deps.clock.clearTimer(this.giveUpTimer);
    if (this.state === 'checking' || this.state === 'waiting') this.finish(undefined);
  }

  // --- checks ---

  private pace(): void {
    if (this.state !== 'checking') return;
    const next = this.triggered.shift() ?? this.bestWaiting();
    if (next) this.check(next, false);
    if (next || this.triggered.length) this.paceTimer = this.deps.clock.setTimer(this.deps.timing.paceMs, () => this.pace());
    else this.paceTimer = undefined;
  }

  private check(pair: Pair, nominate: boolean): void {
    pair.state = 'in-progress';
    const transactionId = this.deps.transactions.newTransactionId();
    const remote = this.remote!;
    const roleAttr = this.role === 'controlling' ? Attr.IceControlling : Attr.IceControlled;
    const priority = new Uint8Array(4);
    new DataView(priority.buffer).setUint32(0, this.localPriority(pair.base));
    const attributes = [
      { type: Attr.Username, value: new TextEncoder().encode(`${remote.ufrag}:${this.local.ufrag}`) },
      { type: Attr.Priority, value: priority },
      { type: roleAttr, value: this.tieBreaker },
      ...(nominate ? [{ type: Attr.UseCandidate, value: new Uint8Array(0) }] : []),
    ];
    const request = seal(encodeStun(StunMethod.Binding, StunClass.Request, transactionId, attributes), shortTermKey(remote.pwd));
    const send = (to: Address, datagram: Uint8Array): void => {
      this.checksSent++;
      this.deps.send(pair.base, to, datagram);
    };
    const { rtoMs, attempts } = this.deps.timing;
    this.inFlight.add(transactionId);
    // s7.2.5.1: an answer without the right MESSAGE-INTEGRITY (success or error) is not one.
    const authentic = (answer: StunAnswer): boolean => integrityValid(answer.bytes, answer.message, shortTermKey(remote.pwd));
    this.deps.transactions.request(transactionId, request, pair.remote, send, (answer) => {
      this.inFlight.delete(transactionId);
      this.checked(pair, nominate, answer);
    }, { rtoMs, attempts, symmetric: true, accept: authentic });
  }

  private checked(pair: Pair, nominated: boolean, answer: StunAnswer | undefined): void {
    if (this.state !== 'checking') return;
    // The transaction let through only authentic answers from where the check went (s7.2.5.2.1).
    const ok = answer !== undefined && answer.message.klass === StunClass.Success;
    pair.state = ok ? 'succeeded' : 'failed';
    if (this.role === 'controlled') {
      if (ok && pair.nominated) this.finish(pair);
    } else if (nominated) {
      if (ok) return this.finish(pair);
      this.nominating = undefined;
      this.nominateBest();
    } else if (ok && !this.nominating) {
      // Nominate at once if nothing better can still work; else give better pairs a moment.
      if (!this.betterPending(pair)) this.nominateBest();
      else this.graceTimer ??= this.deps.clock.setTimer(this.deps.timing.nominationGraceMs, () => this.nominateBest());
    } else if (!this.nominating && this.graceTimer && !this.anyPending()) {
      this.nominateBest();
    }
    if (!this.anyPending() && !this.nominating && ![...this.pairs.values()].some((p) => p.state === 'succeeded')) {
      if (this.role === 'controlling') this.finish(undefined);
    }
  }

  private nominateBest(): void {
    this.deps.clock.clearTimer(this.graceTimer);
    if (this.state !== 'checking' || this.nominating) return;
    const best = [...this.pairs.values()].filter((p) => p.state === 'succeeded').sort(byPriority)[0];
    if (!best) return;
    this.nominating = best;
    best.nominated = true;
    this.check(best, true);
  }

  private finish(pair: Pair | undefined): void {
    if (this.state === 'completed' || this.state === 'failed') return;
    this.transition(pair ? 'completed' : 'failed');
    this.deps.clock.clearTimer(this.paceTimer);
    this.deps.clock.clearTimer(this.graceTimer);
    this.deps.clock.clearTimer(this.giveUpTimer);
    // The session is over: no check of it goes out again (their retransmissions would go on for seconds).
    for (const transactionId of this.inFlight) this.deps.transactions.cancel(transactionId);
    this.inFlight.clear();
    this.result = pair && {
      base: pair.base,
      remote: pair.remote,
      remoteType: pair.remoteType,
      setupMs: this.deps.clock.now() - this.startedAt,
      checksSent: this.checksSent,
    };
    for (const listener of this.listeners.splice(0)) listener(this.result);
  }

  // --- pairs ---

  private addPair(base: Base, remote: Address, remoteType: IceResult['remoteType'], localPriority: number, remotePriority: number): Pair | undefined {
    const key = pairKey(base, remote);
    const known = this.pairs.get(key);
    if (known) return known;
    if (this.pairs.size >= MAX_PAIRS) return undefined;
    const [g, d] = this.role === 'controlling' ? [localPriority, remotePriority] : [remotePriority, localPriority];
    const pair: Pair = { base, remote, remoteType, priority: pairPriority(g, d), state: 'waiting', nominated: false };
    this.pairs.set(key, pair);
    if (this.state === 'checking' && !this.paceTimer) this.paceTimer = this.deps.clock.setTimer(0, () => this.pace());
    return pair;
  }

  private localPriority(base: Base): number {
    return base === 'relay' ? candidatePriority(0) : candidatePriority(PEER_REFLEXIVE_PREFERENCE);
  }

  private bestWaiting(): Pair | undefined {
    return [...this.pairs.values()].filter((p) => p.state === 'waiting').sort(byPriority)[0];
  }

  private betterPending(than: Pair): boolean {
    return [...this.pairs.values()].some((p) => p.priority > than.priority && (p.state === 'waiting' || p.state === 'in-progress'));
  }

  private anyPending(): boolean {
    return [...this.pairs.values()].some((p) => p.state === 'waiting' || p.state === 'in-progress');
  }

  private transition(to: IceState): void {
    const allowed: Record<IceState, IceState[]> = { waiting: ['checking', 'failed'], checking: ['completed', 'failed'], completed: [], failed: [] };
    if (!allowed[this.state].includes(to)) throw new Error(`ICE session: ${this.state} -> ${to} is not a transition`);
    this.state = to;
  }
}

function pairKey(base: Base, remote: Address): string {
  return `${base}/${addressKey(remote)}`;
}

function byPriority(a: Pair, b: Pair): number {
  return a.priority > b.priority ? -1 : a.priority < b.priority ? 1 : 0;
}

function readPriority(message: StunMessage): number {
  const attr = message.attributes.find((a) => a.type === Attr.Priority);
  return attr && attr.value.length === 4 ? new DataView(attr.value.buffer, attr.value.byteOffset, 4).getUint32(0) : candidatePriority(PEER_REFLEXIVE_PREFERENCE);
}
