import type { Clock, TimerHandle } from '../../../runtime/clock.js';
import type { CheckedRequest } from '../message/check.js';
import { createResponse, responseFlow } from '../message/response.js';
import { serializeSipMessage } from '../message/serializer.js';
import type { SipRequest, SipResponse } from '../message/sip-message.js';
import { BRANCH_COOKIE } from '../message/via.js';
import type { SipFlow, SipTransport } from '../transport/sip-transport.js';

/*
 * Non-INVITE server transactions (RFC 3261 s17.2.2) and request matching (s17.2.3). A request
 * that matches a live transaction is a retransmission: it gets the latest response again and
 * never reaches the layer above. After a final response the transaction stays Completed for
 * Timer J (64*T1 on UDP, none on TCP) to absorb retransmissions, then is gone.
 */
export const T1_MS = 500;
const TIMER_J_MS = 64 * T1_MS;
const MAX_TRANSACTIONS = 10_000;

type State = 'trying' | 'proceeding' | 'completed' | 'terminated';

export class NonInviteServerTransaction {
  state: State = 'trying';
  private last: Uint8Array | undefined;
  private timer: TimerHandle | undefined;

  constructor(
    readonly key: string,
    readonly request: SipRequest,
    readonly checked: CheckedRequest,
    readonly flow: SipFlow,
    private readonly owner: ServerTransactions,
  ) {}

  /** Sends a response built from the request (s8.2.6); a final one completes the transaction. */
  respond(status: number, reason: string, decorate?: (response: SipResponse) => void, toTag?: string): void {
    const response = createResponse(this.request, this.checked, this.flow, status, reason, toTag);
    decorate?.(response);
    this.send(response);
  }

  send(response: SipResponse): void {
    if (this.state === 'completed' || this.state === 'terminated') return; // s17.2.2: one final response
    this.last = serializeSipMessage(response);
    this.owner.transmit(responseFlow(this.checked, this.flow), this.last);
    if (response.status < 200) {
      this.state = 'proceeding';
      return;
    }
    this.state = 'completed';
    this.timer = this.owner.clock.setTimer(this.flow.transport === 'UDP' ? TIMER_J_MS : 0, () => this.terminate());
  }

  /** A retransmitted request: the latest response again (s17.2.2 Proceeding and Completed). */
  retransmitted(): void {
    if (this.last) this.owner.transmit(responseFlow(this.checked, this.flow), this.last);
  }

  terminate(): void {
    this.state = 'terminated';
    this.owner.clock.clearTimer(this.timer);
    this.owner.forget(this.key);
  }
}

export class ServerTransactions {
  private readonly live = new Map<string, NonInviteServerTransaction>();
  retransmissionsAbsorbed = 0;

  constructor(
    private readonly transport: SipTransport,
    readonly clock: Clock,
  ) {}

  /** The transaction for a new request, or undefined when it was a retransmission (answered here). */
  receive(request: SipRequest, checked: CheckedRequest, flow: SipFlow): NonInviteServerTransaction | undefined {
    const key = transactionKey(request, checked);
    const existing = this.live.get(key);
    // An ACK for a non-2xx final answer belongs to its INVITE's transaction and ends there (s17.2.1).
    if (request.method === 'ACK') return undefined;
    if (existing) {
      this.retransmissionsAbsorbed++;
      existing.retransmitted();
      return undefined;
    }
    if (this.live.size >= MAX_TRANSACTIONS) {
      // Full: the oldest has long been answered; make room rather than refuse new phones.
      this.live.values().next().value?.terminate();
    }
    const transaction = new NonInviteServerTransaction(key, request, checked, flow, this);
    this.live.set(key, transaction);
    return transaction;
  }

  transmit(flow: SipFlow, bytes: Uint8Array): void {
    this.transport.send(flow, bytes);
  }

  forget(key: string): void {
    this.live.delete(key);
  }

  get size(): number {
    return this.live.size;
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
