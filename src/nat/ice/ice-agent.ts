import type { Clock } from '../../runtime/clock.js';
import type { Random } from '../../runtime/random.js';
import type { Address } from '../../wire/address.js';
import { integrityValid, shortTermKey } from '../stun/integrity.js';
import { Attr, attribute, type StunMessage, textAttribute } from '../stun/message.js';
import type { StunTransactions } from '../stun/stun-transactions.js';
import { type Base, DEFAULT_ICE_TIMING, type IceCredentials, IceSession, type IceTiming } from './ice-session.js';

/*
 * The node's ICE sessions, one per Attach in progress. A check names its session by the
 * USERNAME "our-ufrag:their-ufrag" (RFC 8445 s7.2.2) and must carry MESSAGE-INTEGRITY made
 * with our password (s7.3), so only the node we exchanged an Attach with can complete a check:
 * a stranger who sprays Binding requests gets plain STUN answers, never a link.
 */
const MAX_SESSIONS = 256;
const LINGER_MS = 15_000;

export interface IceAgentCounters {
  sessions: number;
  completed: number;
  failed: number;
  checksAnswered: number;
  /** Checks naming no session of ours (late, or a stranger's). */
  checksUnknown: number;
  /** Checks whose MESSAGE-INTEGRITY failed with our password. */
  checksForged: number;
}

export class IceAgent {
  readonly counters: IceAgentCounters = { sessions: 0, completed: 0, failed: 0, checksAnswered: 0, checksUnknown: 0, checksForged: 0 };
  private readonly sessions = new Map<string, IceSession>();
  /** The local relayed candidate, when this node holds a relay allocation. */
  hasRelay = false;

  constructor(
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly transactions: StunTransactions,
    private readonly send: (base: Base, to: Address, datagram: Uint8Array) => void,
    private readonly timing: IceTiming = DEFAULT_ICE_TIMING,
    /** Whether checks may go to an address (every address, unless the node says otherwise). */
    private readonly checkable: (address: Address) => boolean = () => true,
  ) {}

  /** A new session with fresh credentials (s5.3: ufrag >= 24 bits, password >= 128 bits of randomness). */
  createSession(): IceSession | undefined {
    if (this.sessions.size >= MAX_SESSIONS) return undefined;
    const credentials: IceCredentials = { ufrag: this.token(6), pwd: this.token(18) };
    const session = new IceSession(credentials, this.random.bytes(8), {
      clock: this.clock,
      transactions: this.transactions,
      send: this.send,
      hasRelay: () => this.hasRelay,
      timing: this.timing,
      checkable: this.checkable,
    });
    this.sessions.set(credentials.ufrag, session);
    this.counters.sessions++;
    session.onDone((result) => {
      if (result) this.counters.completed++;
      else this.counters.failed++;
      // Stay a while to answer the other side's retransmitted checks, then go; one that never
      // checked has nothing to answer, and must not hold a place (a failing Attach retried often).
      if (!session.started) this.sessions.delete(credentials.ufrag);
      else this.clock.setTimer(LINGER_MS, () => this.sessions.delete(credentials.ufrag));
    });
    return session;
  }

  /** A Binding request that carries ICE credentials: the answer to send, or nothing (not ours). */
  answerCheck(base: Base, from: Address, bytes: Uint8Array, request: StunMessage): Uint8Array | undefined {
    const username = textAttribute(request, Attr.Username);
    if (!username) return undefined;
    const session = this.sessions.get(username.split(':')[0]);
    if (!session) {
      this.counters.checksUnknown++;
      return undefined;
    }
    if (!integrityValid(bytes, request, shortTermKey(session.local.pwd))) {
      this.counters.checksForged++;
      return undefined;
    }
    this.counters.checksAnswered++;
    return session.answerCheck(base, from, request);
  }

  /** True when the request is an ICE check rather than a plain Binding (it names a user). */
  static isCheck(request: StunMessage): boolean {
    return attribute(request, Attr.Username) !== undefined;
  }

  close(): void {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  private token(bytes: number): string {
    return Buffer.from(this.random.bytes(bytes)).toString('base64url');
  }
}
