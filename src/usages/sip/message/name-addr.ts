import { badRequest } from '../sip-error.js';
import { formatParams, type Params, parseParams, quote, scanOutsideQuotes, splitOutsideQuotes, unquote } from './params.js';

/*
 * The From, To, Contact, Route and Record-Route value (RFC 3261 s20.10, s25.1):
 *   [display-name] <uri> *(;param)   or   uri *(;param)
 * In the second form the parameters belong to the header, not the URI (s20.10).
 */
export interface NameAddr {
  readonly display?: string;
  readonly uri: string;
  readonly params: Params;
}

export function parseNameAddr(text: string): NameAddr {
  const value = text.trim();
  const open = scanOutsideQuotes(value, (c) => c === '<');
  if (open >= 0) {
    const close = value.indexOf('>', open);
    if (close < 0) throw badRequest('missing > in address');
    // s25.1: LAQUOT addr-spec RAQUOT, no white space inside the brackets (RFC 4475 s3.1.2.14).
    if (/^\s|\s$/.test(value.slice(open + 1, close))) throw badRequest('white space inside <> in address');
    const displayText = value.slice(0, open).trim();
    const display = displayText ? unquote(displayText) : undefined;
    const rest = value.slice(close + 1).trim();
    if (rest && !rest.startsWith(';')) throw badRequest('junk after address');
    return { ...(display ? { display } : {}), uri: value.slice(open + 1, close).trim(), params: parseParams(splitOutsideQuotes(rest.slice(1), ';')) };
  }
  const [uri, ...params] = splitOutsideQuotes(value, ';');
  if (!uri.includes(':')) throw badRequest('address is not a URI');
  // s20: a URI with a comma, question mark or semicolon must be in <> (RFC 4475 s3.1.2.13).
  if (uri.includes('?')) throw badRequest('address with ? must be enclosed in <>');
  return { uri: uri.trim(), params: parseParams(params) };
}

export function formatNameAddr(value: NameAddr): string {
  const display = value.display ? `${quote(value.display)} ` : '';
  return `${display}<${value.uri}>${formatParams(value.params)}`;
}
