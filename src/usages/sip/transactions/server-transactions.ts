import type { Clock, TimerHandle } from '../../../runtime/clock.js';
import type { CheckedRequest } from '../message/check.js';
import { createResponse, responseFlow } from '../message/response.js';
import { serializeSipMessage } from '../message/serializer.js';
import type { SipRequest, SipResponse } from '../message/sip-message.js';
import { BRANCH_COOKIE } from '../message/via.js';
import type { SipFlow, SipTransport } from '../transport/sip-transport.js';

/*
 * Server transactions (RFC 3261 s17.2) and request matching (s17.2.3). A request that matches a
 * live transaction is a retransmission: it gets the latest response again and never reaches
 * the layer above.
 *   non-INVITE (s17.2.2): after a final response, Completed for Timer J (64*T1 on UDP, none on
 *     TCP), then gone.
 *   INVITE (s17.2.1): a non-2xx final response is retransmitted on UDP (Timer G, T1 doubling to
 *     T2) until the ACK comes (Confirmed, Timer I) or Timer H (64*T1) gives up. After a 2xx the
 *     transaction is Accepted for Timer L (RFC 6026 s7.1): the INVITE retransmitted is absorbed
 *     (it must not fork the call again), later 2xx from the core go out through it, and the ACK
 *     (end to end) goes up.
 */
import { T1_MS, T2_MS, T4_MS, TIMEOUT_MS } from './timers.js';

const TIMER_J_MS = TIMEOUT_MS;
const MAX_TRANSACTIONS = 10_000;
/**
 * What live transactions may hold, requests and the responses kept to answer retransmissions
 * (counted as twice each request's size): a flood of large requests, each kept 32 s, must not
 * fill a router's heap.
 */
const MAX_HELD_BYTES = 4 * 1024 * 1024;

type State = 'trying' | 'proceeding' | 'completed' | 'terminated';

export type ServerTransaction = NonInviteServerTransaction | InviteServerTransaction;

/** What both kinds of server transaction share: the request they answer and how they answer it. */
abstract class BaseServerTransaction {
  /** Bytes counted against MAX_HELD_BYTES while it lives. */
  readonly heldBytes: number;

  constructor(
    readonly key: string,
    readonly request: SipRequest,
    readonly checked: CheckedRequest,
    readonly flow: SipFlow,
    protected readonly owner: ServerTransactions,
  ) {
    this.heldBytes = 2 * requestSize(request);
  }

  /** Sends a response built from the request (s8.2.6); a final one completes the transaction. */
  respond(status: number, reason: string, decorate?: (response: SipResponse) => void, toTag?: string): void {
    const response = createResponse(this.request, this.checked, this.flow, status, reason, toTag);
    decorate?.(response);
    this.send(response);
  }

  abstract send(response: SipResponse): void;
}

export class NonInviteServerTransaction extends BaseServerTransaction {
  readonly invite = false;
  state: State = 'trying';
  private last: Uint8Array | undefined;
  private timer: TimerHandle | undefined;

  send(response: SipResponse): void {
    if (this.state === 'completed' || this.state === 'terminated') return; // s17.2.2: one final response
    this.last = serializeSipMessage(response);
    this.owner.transmit(this, this.last);
    if (response.status < 200) {
      this.state = 'proceeding';
      return;
    }
    this.state = 'completed';
    this.owner.answered(this);
    this.timer = this.owner.clock.setTimer(this.flow.transport === 'UDP' ? TIMER_J_MS : 0, () => this.terminate());
  }

  /** A retransmitted request: the latest response again (s17.2.2 Proceeding and Completed). */
  retransmitted(): void {
    if (this.last) this.owner.transmit(this, this.last);
  }

  /**
   * Ends without a final response (RFC 4320 s4.1: no 408 to a non-INVITE request; its sender's
   * Timer F has fired as ours did, and a late 408 only adds to an overload). Retransmissions are
   * still absorbed for Timer J, so they are not taken for new requests.
   */
  endUnanswered(): void {
    if (this.state === 'completed' || this.state === 'terminated') return;
    this.state = 'completed';
    this.owner.answered(this);
    this.timer = this.owner.clock.setTimer(this.flow.transport === 'UDP' ? TIMER_J_MS : 0, () => this.terminate());
  }

  terminate(): void {
    this.state = 'terminated';
    this.owner.clock.clearTimer(this.timer);
    this.owner.forget(this.key);
  }
}

type InviteState = 'proceeding' | 'accepted' | 'completed' | 'confirmed' | 'terminated';

export class InviteServerTransaction extends BaseServerTransaction {
  readonly invite = true;
  state: InviteState = 'proceeding';
  private last: Uint8Array | undefined;
  private retransmitTimer: TimerHandle | undefined;
  private endTimer: TimerHandle | undefined;
  private interval = T1_MS;

  send(response: SipResponse): void {
    const success = response.status >= 200 && response.status < 300;
    if (this.state === 'accepted' && success) {
      this.owner.transmit(this, serializeSipMessage(response)); // RFC 6026 s7.1
      return;
    }
    if (this.state !== 'proceeding') return;
    this.last = serializeSipMessage(response);
    this.transmit();
    if (response.status < 200) return;
    if (success) {
      this.state = 'accepted';
      this.endTimer = this.owner.clock.setTimer(TIMEOUT_MS, () => this.terminate()); // Timer L
      return;
    }
    this.state = 'completed';
    this.owner.answered(this);
    if (this.flow.transport === 'UDP') this.scheduleRetransmit();
    this.endTimer = this.owner.clock.setTimer(TIMEOUT_MS, () => this.terminate()); // Timer H
  }

  /** The INVITE again: the latest response again. */
  retransmitted(): void {
    if (this.last && (this.state === 'proceeding' || this.state === 'completed')) this.transmit();
  }

  /** The ACK for our non-2xx final response (s17.2.1): stop retransmitting, linger for Timer I. */
  acknowledged(): void {
    if (this.state !== 'completed') return;
    this.state = 'confirmed';
    this.owner.clock.clearTimer(this.retransmitTimer);
    this.owner.clock.clearTimer(this.endTimer);
    this.endTimer = this.owner.clock.setTimer(this.flow.transport === 'UDP' ? T4_MS : 0, () => this.terminate());
  }

  terminate(): void {
    this.state = 'terminated';
    this.owner.clock.clearTimer(this.retransmitTimer);
    this.owner.clock.clearTimer(this.endTimer);
    this.owner.forget(this.key);
  }

  private transmit(): void {
    if (this.last) this.owner.transmit(this, this.last);
  }

  private scheduleRetransmit(): void {
    this.retransmitTimer = this.owner.clock.setTimer(this.interval, () => {
      if (this.state !== 'completed') return;
      this.transmit();
      this.interval = Math.min(this.interval * 2, T2_MS); // Timer G
      this.scheduleRetransmit();
    });
  }
}

export class ServerTransactions {
  private readonly live = new Map<string, ServerTransaction>();
  /** Live transactions that gave their final answer (a non-INVITE's, an INVITE's non-2xx), oldest first: the first to go when full. */
  private readonly finished = new Map<string, ServerTransaction>();
  private held = 0;
  retransmissionsAbsorbed = 0;
  /** New requests refused (503) because the live transactions held all they may. */
  refusedFull = 0;

  constructor(
    private readonly transport: SipTransport,
    readonly clock: Clock,
  ) {}

  /**
   * The transaction for a new request, or undefined when it was a retransmission (answered
   * here) or an ACK that belongs to one of our INVITE transactions (it ends there, s17.2.1).
   * An ACK that matches none (the ACK of a 2xx, end to end) comes back as 'ack' for the core,
   * and a new request when the transactions are full is 'full' (to be refused with 503).
   */
  receive(request: SipRequest, checked: CheckedRequest, flow: SipFlow): ServerTransaction | 'ack' | 'full' | undefined {
    const key = transactionKey(request, checked);
    const existing = this.live.get(key);
    if (request.method === 'ACK') {
      if (existing?.invite && existing.state !== 'accepted') {
        existing.acknowledged();
        return undefined;
      }
      return 'ack'; // the ACK of a 2xx, end to end (RFC 6026: passed up in Accepted too)
    }
    if (existing) {
      this.retransmissionsAbsorbed++;
      existing.retransmitted();
      return undefined;
    }
    const transaction = request.method === 'INVITE' ? new InviteServerTransaction(key, request, checked, flow, this) : new NonInviteServerTransaction(key, request, checked, flow, this);
    // Full: transactions that have given their final answer make room, oldest first (they only
    // absorb retransmissions now); one still waiting for its answer (a ringing call) never does.
    const full = () => this.live.size >= MAX_TRANSACTIONS || this.held + transaction.heldBytes > MAX_HELD_BYTES;
    for (const answered of this.finished.values()) {
      if (!full()) break;
      answered.terminate();
    }
    if (full()) {
      this.refusedFull++;
      return 'full';
    }
    this.live.set(key, transaction);
    this.held += transaction.heldBytes;
    return transaction;
  }

  /** A transaction gave its final answer and only absorbs retransmissions now: it may make room for new ones. */
  answered(transaction: ServerTransaction): void {
    this.finished.set(transaction.key, transaction);
  }

  /** The INVITE transaction a CANCEL is for (s9.2: same branch, sent-by and Request-URI). */
  inviteFor(cancel: SipRequest, checked: CheckedRequest): InviteServerTransaction | undefined {
    const tx = this.live.get(transactionKey({ ...cancel, method: 'INVITE' }, checked));
    return tx?.invite ? tx : undefined;
  }

  /**
   * A response, where s18.2.2 sends it: over the request's connection while that is open, else
   * over a new one to the address it came from at the port in sent-by (a phone on TCP listens there).
   */
  transmit(tx: BaseServerTransaction, bytes: Uint8Array): void {
    let flow = responseFlow(tx.checked, tx.flow);
    if (flow.transport === 'TCP' && !this.transport.hasConnection(flow.connectionId!)) {
      flow = this.transport.connect({ host: flow.remote.host, port: tx.checked.vias[0].port ?? 5060 }) ?? flow;
    }
    this.transport.send(flow, bytes);
  }

  forget(key: string): void {
    const transaction = this.live.get(key);
    if (transaction) this.held -= transaction.heldBytes;
    this.live.delete(key);
    this.finished.delete(key);
  }

  /** Bytes the live transactions hold (as counted against MAX_HELD_BYTES). */
  get heldBytes(): number {
    return this.held;
  }

  get size(): number {
    return this.live.size;
  }

  /** Shutting down: every transaction stops its timers, silently. */
  terminateAll(): void {
    for (const transaction of [...this.live.values()]) transaction.terminate();
  }
}

/**
 * s17.2.3: an RFC 3261 branch (magic cookie) with the sent-by and the method identifies the
 * transaction; older clients' requests are matched on Call-ID, CSeq, From tag and top Via.
 */
export function transactionKey(request: SipRequest, checked: CheckedRequest): string {
  const top = checked.vias[0];
  const branch = top.params.get('branch');
  const sentBy = `${top.host}:${top.port ?? ''}`;
  const method = request.method === 'ACK' ? 'INVITE' : request.method;
  if (branch && branch.startsWith(BRANCH_COOKIE)) return `${branch}|${sentBy}|${method}`;
  return `legacy|${request.uri}|${checked.callId}|${checked.cseq.seq}|${checked.from.params.get('tag') ?? ''}|${sentBy}|${method}`;
}

/** A request's size on the wire, near enough: start line, header lines and body. */
function requestSize(request: SipRequest): number {
  let size = request.method.length + request.uri.length + 12 + request.body.length;
  for (const [name, value] of request.headers.lines()) size += name.length + value.length + 4;
  return size;
}
