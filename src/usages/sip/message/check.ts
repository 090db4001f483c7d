import { badRequest } from '../sip-error.js';
import { type NameAddr, parseNameAddr } from './name-addr.js';
import type { SipMessage, SipRequest } from './sip-message.js';
import { parseSipUri, type SipUri } from './uri.js';
import { parseVia, type Via } from './via.js';

/*
 * The headers every request and response must carry, read once (RFC 3261 s8.1.1, s8.2.2):
 * Via, From, To, Call-ID, CSeq, and Max-Forwards when present. A message missing one is
 * answered 400 with the reason, or dropped when it is a response (s18.1.2).
 */
export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

export interface Essentials {
  readonly vias: readonly Via[];
  readonly from: NameAddr;
  readonly to: NameAddr;
  readonly callId: string;
  readonly cseq: CSeq;
  readonly maxForwards: number | undefined;
}

export interface CheckedRequest extends Essentials {
  readonly requestUri: SipUri;
}

export function parseCSeq(text: string): CSeq {
  const match = /^(\d{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)$/.exec(text.trim());
  if (!match || Number(match[1]) >= 2 ** 31) throw badRequest('malformed CSeq');
  return { seq: Number(match[1]), method: match[2] };
}

export function readEssentials(message: SipMessage): Essentials {
  const { headers } = message;
  const required = (name: string): string => {
    const value = headers.get(name);
    if (value === undefined || value === '') throw badRequest(`missing ${name}`);
    return value;
  };
  const vias = headers.getAll('Via').map(parseVia);
  if (vias.length === 0) throw badRequest('missing Via');
  const maxForwardsText = headers.get('Max-Forwards');
  if (maxForwardsText !== undefined && !/^\d{1,3}$/.test(maxForwardsText)) throw badRequest('malformed Max-Forwards');
  return {
    vias,
    from: parseNameAddr(required('From')),
    to: parseNameAddr(required('To')),
    callId: required('Call-ID'),
    cseq: parseCSeq(required('CSeq')),
    maxForwards: maxForwardsText === undefined ? undefined : Number(maxForwardsText),
  };
}

export function checkRequest(request: SipRequest): CheckedRequest {
  const essentials = readEssentials(request);
  if (essentials.cseq.method !== request.method) throw badRequest('CSeq method does not match the request');
  return { ...essentials, requestUri: parseSipUri(request.uri) };
}
