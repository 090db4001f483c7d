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

/** Headers that carry one value (s20): a second one makes the message ambiguous (RFC 4475 s3.3.8). */
const SINGLE_VALUED = ['From', 'To', 'Call-ID', 'CSeq', 'Max-Forwards', 'Content-Type', 'Expires', 'Date'];

/** s20.17: rfc1123-date, always in GMT (RFC 4475 s3.1.2.12). */
const SIP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

export function readEssentials(message: SipMessage): Essentials {
  const { headers } = message;
  const required = (name: string): string => {
    const value = headers.get(name);
    if (value === undefined || value === '') throw badRequest(`missing ${name}`);
    return value;
  };
  const vias = headers.getAll('Via').map(parseVia);
  if (vias.length === 0) throw badRequest('missing Via');
  for (const name of SINGLE_VALUED) if (headers.count(name) > 1) throw badRequest(`more than one ${name}`);
  const maxForwardsText = headers.get('Max-Forwards');
  // 1*DIGIT, so leading zeros are fine (RFC 4475 s3.1.1.1); a hop count above 255 is not.
  if (maxForwardsText !== undefined && (!/^\d{1,10}$/.test(maxForwardsText) || Number(maxForwardsText) > 255)) throw badRequest('malformed Max-Forwards');
  return {
    vias,
    from: parseNameAddr(required('From')),
    to: parseNameAddr(required('To')),
    callId: required('Call-ID'),
    cseq: parseCSeq(required('CSeq')),
    maxForwards: maxForwardsText === undefined ? undefined : Number(maxForwardsText),
  };
}

/** s19.1.1, s25.1: scheme ":" ...; anything else in the Request-URI's place is malformed, not merely unsupported. */
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+\-.]*:[^\s<>"]+$/;

export function checkRequest(request: SipRequest): CheckedRequest {
  const essentials = readEssentials(request);
  if (essentials.cseq.method !== request.method) throw badRequest('CSeq method does not match the request');
  // A request's Date is checked (RFC 4475 s3.1.2.12); a response's is nobody's business here,
  // and a 200 dropped for a one-digit day would end a call that was answered.
  const date = request.headers.get('Date');
  if (date !== undefined && !SIP_DATE.test(date)) throw badRequest('Date is not an RFC 1123 date in GMT');
  if (!ABSOLUTE_URI.test(request.uri)) throw badRequest('malformed Request-URI');
  const requestUri = parseSipUri(request.uri);
  // s19.1.5: header fields ride in a URI only to be copied into a request built from it.
  if (requestUri.headers !== undefined) throw badRequest('Request-URI carries headers');
  return { ...essentials, requestUri };
}
