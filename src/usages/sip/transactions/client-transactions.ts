import type { Clock, TimerHandle } from '../../../runtime/clock.js';
import type { Essentials } from '../message/check.js';
import { serializeSipMessage } from '../message/serializer.js';
import { inviteCompanion } from '../message/invite-companions.js';
import type { SipRequest, SipResponse } from '../message/sip-message.js';
import type { SipFlow, SipTransport } from '../transport/sip-transport.js';
import { T1_MS, T2_MS, T4_MS, TIMEOUT_MS } from './timers.js';

/*
 * Client transactions (RFC 3261 s17.1), matched to responses by the branch of our top Via and
 * the CSeq method (s17.1.3).
 *   INVITE (s17.1.1): retransmitted on UDP (Timer A, T1 doubling) until a response; Timer B
 *     (64*T1) gives up only while nothing at all has come back (s17.1.1.2: a provisional
 *     response stops it; a ringing phone is the proxy's Timer C to judge). A non-2xx final
 *     response is acknowledged here, hop by hop, and its retransmissions absorbed for Timer D;
 *     after a 2xx the transaction stays 'accepted' for Timer M (RFC 6026 s8.4), passing each
 *     retransmitted 2xx up so the proxy forwards it statefully (its ACK is end to end).
 *   non-INVITE (s17.1.2): retransmitted on UDP (Timer E, T1 doubling to T2) until a final
 *     response; Timer F gives up; Timer K absorbs retransmitted finals.
 */
export interface ClientCallbacks {
  response(response: SipResponse, essentials: Essentials): void;
  /** No final response in time (Timer B or F): the layer above acts as on a 408 (s16.7). */
  timeout(): void;
  /** The request could not be sent at all (a closed connection): s8.1.3.1 treats it as a 503. */
  transportError?(): void;
}

type State = 'calling' | 'proceeding' | 'accepted' | 'completed' | 'terminated';

export class ClientTransaction {
  state: State = 'calling';
  private bytes: Uint8Array;
  private retransmitTimer: TimerHandle | undefined;
  private timeoutTimer: TimerHandle | undefined;
  private endTimer: TimerHandle | undefined;
  private interval = T1_MS;
  private ackBytes: Uint8Array | undefined;

  constructor(
    readonly key: string,
    readonly request: SipRequest,
    readonly flow: SipFlow,
    private readonly callbacks: ClientCallbacks,
    private readonly owner: ClientTransactions,
  ) {
    this.bytes = serializeSipMessage(request);
  }

  get isInvite(): boolean {
    return this.request.method === 'INVITE';
  }

  start(): void {
    if (!this.owner.transmit(this.flow, this.bytes)) {
      this.terminate();
      (this.callbacks.transportError ?? this.callbacks.timeout)();
      return;
    }
    if (this.flow.transport === 'UDP') this.scheduleRetransmit();
    this.timeoutTimer = this.owner.clock.setTimer(TIMEOUT_MS, () => {
      if (this.waiting) {
        this.terminate();
        this.callbacks.timeout();
      }
    });
  }

  receive(response: SipResponse, essentials: Essentials): void {
    if (this.state === 'terminated') return;
    if (this.state === 'accepted') {
      if (response.status >= 200 && response.status < 300) this.callbacks.response(response, essentials); // RFC 6026 s8.4
      return;
    }
    if (this.state === 'completed') {
      if (this.ackBytes && response.status >= 300) this.owner.transmit(this.flow, this.ackBytes); // s17.1.1.2: ACK each retransmission
      return;
    }
    if (response.status < 200) {
      this.state = 'proceeding';
      if (this.isInvite) {
        this.owner.clock.clearTimer(this.retransmitTimer); // Timer A stops; a non-INVITE keeps E at T2
        this.owner.clock.clearTimer(this.timeoutTimer); // s17.1.1.2: so does Timer B
      }
      this.callbacks.response(response, essentials);
      return;
    }
    this.owner.clock.clearTimer(this.retransmitTimer);
    this.owner.clock.clearTimer(this.timeoutTimer);
    if (this.isInvite && response.status < 300) {
      this.state = 'accepted';
      this.endTimer = this.owner.clock.setTimer(TIMEOUT_MS, () => this.terminate()); // Timer M
    } else {
      if (this.isInvite) {
        this.ackBytes = serializeSipMessage(inviteCompanion(this.request, 'ACK', response.headers.get('To')!)); // s17.1.1.3
        this.owner.transmit(this.flow, this.ackBytes);
      }
      this.state = 'completed';
      const linger = this.flow.transport === 'UDP' ? (this.isInvite ? TIMEOUT_MS : T4_MS) : 0; // Timer D or K
      this.endTimer = this.owner.clock.setTimer(linger, () => this.terminate());
    }
    this.callbacks.response(response, essentials);
  }

  /** The connection it went out on was never made: the layer above hears of it as a transport error. */
  failed(): void {
    if (!this.waiting) return;
    this.terminate();
    (this.callbacks.transportError ?? this.callbacks.timeout)();
  }

  /** No final response yet. */
  get waiting(): boolean {
    return this.state === 'calling' || this.state === 'proceeding';
  }

  /** Stops everything without telling anyone (the layer above gave up on this branch). */
  terminate(): void {
    this.state = 'terminated';
    this.owner.clock.clearTimer(this.retransmitTimer);
    this.owner.clock.clearTimer(this.timeoutTimer);
    this.owner.clock.clearTimer(this.endTimer);
    this.owner.forget(this.key, this);
  }

  private scheduleRetransmit(): void {
    this.retransmitTimer = this.owner.clock.setTimer(this.interval, () => {
      if (this.state !== 'calling' && !(this.state === 'proceeding' && !this.isInvite)) return;
      this.owner.transmit(this.flow, this.bytes);
      // s17.1.2.2: doubling to T2 while Trying; every T2 once a provisional response came (Proceeding).
      this.interval = this.isInvite ? this.interval * 2 : this.state === 'proceeding' ? T2_MS : Math.min(this.interval * 2, T2_MS);
      this.scheduleRetransmit();
    });
  }
}

export class ClientTransactions {
  private readonly live = new Map<string, ClientTransaction>();

  constructor(
    private readonly transport: SipTransport,
    readonly clock: Clock,
  ) {
    transport.onConnectFailed((connectionId) => {
      for (const tx of [...this.live.values()]) if (tx.flow.transport === 'TCP' && tx.flow.connectionId === connectionId) tx.failed();
    });
  }

  /** Sends `request`, whose top Via carries a fresh branch of ours. */
  send(request: SipRequest, branch: string, flow: SipFlow, callbacks: ClientCallbacks): ClientTransaction {
    const key = `${branch}|${request.method}`;
    // One transaction per branch and method (s17.1.3): asking again (a second CANCEL for one
    // branch) gets the one already under way instead of a twin that would steal its responses.
    const running = this.live.get(key);
    if (running) return running;
    const transaction = new ClientTransaction(key, request, flow, callbacks, this);
    this.live.set(key, transaction);
    transaction.start();
    return transaction;
  }

  /** Hands a response to its transaction; false when none matches (s17.1.3). */
  receive(response: SipResponse, essentials: Essentials): boolean {
    const branch = essentials.vias[0].params.get('branch');
    const tx = branch ? this.live.get(`${branch}|${essentials.cseq.method}`) : undefined;
    if (!tx) return false;
    tx.receive(response, essentials);
    return true;
  }

  transmit(flow: SipFlow, bytes: Uint8Array): boolean {
    return this.transport.send(flow, bytes);
  }

  forget(key: string, transaction?: ClientTransaction): void {
    if (transaction && this.live.get(key) !== transaction) return;
    this.live.delete(key);
  }

  get size(): number {
    return this.live.size;
  }

  /** Shutting down: every transaction stops its timers, silently. */
  terminateAll(): void {
    for (const transaction of [...this.live.values()]) transaction.terminate();
  }
}
