import { SipHeaders, type SipRequest } from './sip-message.js';

/**
 * A request that belongs to an INVITE's transaction (RFC 3261 s9.1 CANCEL, s17.1.1.3 the ACK of a
 * non-2xx answer): same Request-URI, top Via, Route set, From, Call-ID and CSeq number, with its
 * own method; the ACK takes its To (with the answerer's tag) from the response.
 */
export function inviteCompanion(invite: SipRequest, method: 'ACK' | 'CANCEL', to = invite.headers.get('To')!): SipRequest {
  const headers = new SipHeaders();
  headers.add('Via', invite.headers.getAll('Via')[0]);
  for (const route of invite.headers.getAll('Route')) headers.add('Route', route);
  headers.add('Max-Forwards', '70');
  headers.add('From', invite.headers.get('From')!);
  headers.add('To', to);
  headers.add('Call-ID', invite.headers.get('Call-ID')!);
  headers.add('CSeq', `${invite.headers.get('CSeq')!.split(/\s+/)[0]} ${method}`);
  return { kind: 'request', method, uri: invite.uri, headers, body: new Uint8Array(0) };
}
