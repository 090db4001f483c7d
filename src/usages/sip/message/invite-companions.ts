import { parseNameAddr } from './name-addr.js';
import { SipHeaders, type SipRequest, type SipResponse } from './sip-message.js';

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

/**
 * A request of the dialog a 2xx to `invite` made, from the INVITE's sender straight to the answerer
 * (s12.2.1.1, no route set between): the 2xx's ACK (s13.2.2.4, the INVITE's CSeq number) or a BYE
 * (the next number). It goes to the answer's Contact, else where the INVITE went.
 */
export function inDialogRequest(invite: SipRequest, answer: SipResponse, method: 'ACK' | 'BYE', via: string): SipRequest {
  const headers = new SipHeaders();
  headers.add('Via', via);
  headers.add('Max-Forwards', '70');
  headers.add('From', invite.headers.get('From')!);
  headers.add('To', answer.headers.get('To') ?? invite.headers.get('To')!);
  headers.add('Call-ID', invite.headers.get('Call-ID')!);
  const seq = Number(invite.headers.get('CSeq')!.split(/\s+/)[0]);
  headers.add('CSeq', `${method === 'ACK' ? seq : seq + 1} ${method}`);
  let uri = invite.uri;
  try {
    const contact = answer.headers.get('Contact');
    if (contact) uri = parseNameAddr(contact).uri;
  } catch {
    // an unreadable Contact: the INVITE's Request-URI still reaches the phone over its flow
  }
  return { kind: 'request', method, uri, headers, body: new Uint8Array(0) };
}
