import { randomBytes } from 'node:crypto';
import type { SipFlow } from '../transport/sip-transport.js';
import type { CheckedRequest } from './check.js';
import { formatNameAddr } from './name-addr.js';
import { SipHeaders, type SipRequest, type SipResponse } from './sip-message.js';
import { formatVia, type Via } from './via.js';

/*
 * A response to a request (RFC 3261 s8.2.6.2): the same Via list, From, Call-ID and CSeq, and a
 * To with our tag. The top Via learns where the request really came from: `received` when the
 * address differs from sent-by (s18.2.1) and `rport` filled in when the client asked (RFC 3581).
 */
export function createResponse(request: SipRequest, checked: CheckedRequest, flow: SipFlow, status: number, reason: string, toTag?: string): SipResponse {
  const headers = new SipHeaders();
  checked.vias.forEach((via, i) => headers.add('Via', formatVia(i > 0 ? via : stampVia(via, flow))));
  const to = checked.to.params.has('tag') || status === 100 ? checked.to : { ...checked.to, params: new Map([...checked.to.params, ['tag', toTag ?? newTag()]]) };
  headers.add('From', request.headers.get('From')!);
  headers.add('To', formatNameAddr(to));
  headers.add('Call-ID', checked.callId);
  headers.add('CSeq', `${checked.cseq.seq} ${checked.cseq.method}`);
  return { kind: 'response', status, reason, headers, body: new Uint8Array(0) };
}

/**
 * The top Via as the receiver saw the request arrive: `received` when the source address differs
 * from sent-by (s18.2.1), and always when the client asked for rport, which gets the source port
 * (RFC 3581 s4). Messages through the overlay have no source address of their own to add.
 */
export function stampVia(via: Via, flow: SipFlow): Via {
  if (flow.transport === 'OVERLAY') return via;
  const params = new Map(via.params);
  const asked = params.has('rport');
  if (asked || (via.host !== flow.remote.host && via.host !== `[${flow.remote.host}]`)) params.set('received', flow.remote.host);
  if (asked) params.set('rport', String(flow.remote.port));
  return { ...via, params };
}

export function newTag(): string {
  return randomBytes(6).toString('hex');
}

/**
 * Where a response goes (RFC 3261 s18.2.2, RFC 3581 s4): back over the request's TCP
 * connection, or through the overlay to the peer it came from; over UDP to the source address and port when the client asked for rport (what a
 * phone behind a NAT needs), else to the source address and the port in sent-by.
 */
export function responseFlow(checked: CheckedRequest, flow: SipFlow): SipFlow {
  if (flow.transport !== 'UDP') return flow; // back over the TCP connection, or through the overlay
  const top = checked.vias[0];
  if (top.params.has('rport')) return flow;
  return { transport: 'UDP', remote: { host: flow.remote.host, port: top.port ?? 5060 } };
}
