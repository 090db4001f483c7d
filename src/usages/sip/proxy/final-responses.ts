import { newTag } from '../message/response.js';
import { SipHeaders, type SipRequest, type SipResponse } from '../message/sip-message.js';

/*
 * The responses a forking proxy sends up (RFC 3261 s16.7): which final response wins when every
 * branch has answered, and the ones it makes itself (a branch that timed out or failed).
 */

/** The response as the next hop up sees it: our Via removed (s16.7 step 9). */
export function upstream(response: SipResponse): SipResponse {
  const headers = response.headers.clone();
  headers.removeFirstValue('Via');
  return { ...response, headers };
}

/**
 * s16.7 step 6: a 6xx if there is one, else the lowest class; within it, something more telling
 * than a timeout (a busy callee's 486 reaches the caller rather than another phone's 408).
 */
function best(finals: readonly SipResponse[]): SipResponse {
  const global = finals.find((r) => r.status >= 600);
  if (global) return global;
  const lowest = Math.min(...finals.map((r) => Math.floor(r.status / 100)));
  const inClass = finals.filter((r) => Math.floor(r.status / 100) === lowest);
  return inClass.find((r) => r.status !== 408 && r.status !== 487) ?? inClass[0];
}

/**
 * The final response that goes up once every branch has answered (s16.7 steps 6 and 7): the best
 * one; a 430 (a registered flow failed) a 480; a 503 becomes a 500 (a callee's overload is not ours, and would stop the caller trying us);
 * a 401 or 407 carries every branch's challenge, so the caller can answer them all at once.
 */
export function chosenFinal(finals: readonly SipResponse[]): SipResponse {
  const chosen = best(finals);
  if (chosen.status === 503) return { ...chosen, status: 500, reason: 'Server Internal Error' };
  // A phone's flow failed here (RFC 5626's 430 is between proxies): to the caller, the phone is just not reachable now.
  if (chosen.status === 430) return { ...chosen, status: 480, reason: 'Temporarily Unavailable' };
  if (chosen.status !== 401 && chosen.status !== 407) return chosen;
  const headers = chosen.headers.clone();
  for (const [status, name] of [[401, 'WWW-Authenticate'], [407, 'Proxy-Authenticate']] as const) {
    headers.remove(name);
    for (const response of finals) if (response.status === status) for (const value of response.headers.getAll(name)) headers.add(name, value);
  }
  return { ...chosen, headers };
}

export function synthetic(status: number, reason: string, headers: SipHeaders): SipResponse {
  return { kind: 'response', status, reason, headers, body: new Uint8Array(0) };
}

/**
 * The headers a locally made final response needs to travel up: the branch request's Vias and
 * dialog identifiers, and a To tag of ours (s8.2.6.2: every final response but a 100 has one).
 */
export function response408Headers(request: SipRequest): SipHeaders {
  const headers = new SipHeaders();
  for (const via of request.headers.getAll('Via')) headers.add('Via', via);
  for (const name of ['From', 'Call-ID', 'CSeq']) headers.add(name, request.headers.get(name)!);
  const to = request.headers.get('To')!;
  headers.add('To', /;\s*tag=/i.test(to) ? to : `${to};tag=${newTag()}`);
  return headers;
}
