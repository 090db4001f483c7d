import type { Clock, TimerHandle } from '../../runtime/clock.js';
import type { Random } from '../../runtime/random.js';
import { type Address, addressKey } from '../../wire/address.js';
import type { StunMessage } from './message.js';
import { bytesToHex } from '../../runtime/hex.js';

/*
 * STUN client transactions over UDP (RFC 8489 s6.2.1): a request is retransmitted with a
 * doubling timeout until an answer with its transaction ID arrives or the tries run out.
 * The lab-friendly defaults (100 ms, 5 tries: about 3 s) are ICE's pacing (RFC 8445 s14.3)
 * rather than RFC 8489's 500 ms, which suits checks that race each other. A symmetric request's
 * answer counts only from where the request went, and an answer `accept` refuses (one without
 * MESSAGE-INTEGRITY under the request's key, RFC 8489 s9.1.4) is dropped as if never received:
 * one forged by someone who saw the transaction ID neither fails an ICE check nor ends a TURN
 * request early, even from a spoofed source.
 */
export interface StunAnswer {
  readonly message: StunMessage;
  readonly bytes: Uint8Array;
  /** Where the answer came from (RFC 8445 s7.2.5.2.1: it must be where the request went). */
  readonly from: Address;
}

export interface StunRequestOptions {
  readonly rtoMs?: number;
  readonly attempts?: number;
  /**
   * Count an answer only from where the request went: ICE checks (RFC 8445 s7.2.5.2.1) and TURN,
   * whose allocation is the 5-tuple. A plain Binding may be answered from another of the server's
   * addresses (a wildcard-bound server on a host with two), and a CHANGE-REQUEST (RFC 5780) must be.
   */
  readonly symmetric?: boolean;
  /**
   * Whether an answer is authentic (its MESSAGE-INTEGRITY under the key the request was sealed
   * with): one that is not is counted in `forgedAnswers`, and the transaction waits on.
   */
  readonly accept?: (answer: StunAnswer) => boolean;
}

export type StunSend = (to: Address, datagram: Uint8Array) => void;

interface Pending {
  readonly done: (answer: StunAnswer | undefined) => void;
  /** Where the answer must come from (addressKey), for a symmetric request. */
  readonly from: string | undefined;
  readonly accept: ((answer: StunAnswer) => boolean) | undefined;
  timer: TimerHandle | undefined;
}

const MAX_PENDING = 1024;

export class StunTransactions {
  private readonly pending = new Map<string, Pending>();
  retransmissions = 0;
  /** Answers with a pending transaction's ID from somewhere the request did not go: dropped, and the transaction waits on. */
  strayAnswers = 0;
  /** Answers from the right place that failed their request's integrity check: dropped, and the transaction waits on. */
  forgedAnswers = 0;

  constructor(
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  /** No room for another transaction now (a request would be answered at once with nothing). */
  get full(): boolean {
    return this.pending.size >= MAX_PENDING;
  }

  newTransactionId(): Uint8Array {
    return this.random.bytes(12);
  }

  /** Sends `request` (built with `transactionId`) and calls `done` once, with the answer or nothing. */
  request(transactionId: Uint8Array, request: Uint8Array, to: Address, send: StunSend, done: (answer: StunAnswer | undefined) => void, options: StunRequestOptions = {}): void {
    const key = bytesToHex(transactionId);
    if (this.pending.size >= MAX_PENDING) return done(undefined);
    const entry: Pending = { done, from: options.symmetric ? addressKey(to) : undefined, accept: options.accept, timer: undefined };
    this.pending.set(key, entry);
    const attempts = options.attempts ?? 5;
    const transmit = (attempt: number, rto: number): void => {
      if (this.pending.get(key) !== entry) return;
      if (attempt > 0) this.retransmissions++;
      send(to, request);
      entry.timer = this.clock.setTimer(rto, () => {
        if (attempt + 1 < attempts) return transmit(attempt + 1, rto * 2);
        this.pending.delete(key);
        done(undefined);
      });
    };
    transmit(0, options.rtoMs ?? 100);
  }

  /** An answer (success or error class); false when it belongs to no transaction of ours. */
  handleAnswer(from: Address, bytes: Uint8Array, message: StunMessage): boolean {
    const key = bytesToHex(message.transactionId);
    const entry = this.pending.get(key);
    if (!entry) return false;
    // A forged or misrouted answer must neither end the transaction nor give it a false address.
    if (entry.from !== undefined && entry.from !== addressKey(from)) {
      this.strayAnswers++;
      return true;
    }
    const answer = { message, bytes, from };
    if (entry.accept && !entry.accept(answer)) {
      this.forgedAnswers++;
      return true;
    }
    this.pending.delete(key);
    this.clock.clearTimer(entry.timer);
    entry.done(answer);
    return true;
  }

  /** Stops a transaction's retransmissions without an answer; its `done` is not called. */
  cancel(transactionId: Uint8Array): void {
    const key = bytesToHex(transactionId);
    const entry = this.pending.get(key);
    if (!entry) return;
    this.clock.clearTimer(entry.timer);
    this.pending.delete(key);
  }

  cancelAll(): void {
    for (const [key, entry] of this.pending) {
      this.clock.clearTimer(entry.timer);
      this.pending.delete(key);
    }
  }

  get size(): number {
    return this.pending.size;
  }
}
