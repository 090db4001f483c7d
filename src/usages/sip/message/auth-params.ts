import { badRequest } from '../sip-error.js';
import { splitOutsideQuotes, unquote } from './params.js';

/*
 * Credentials and challenges (RFC 3261 s25.1, RFC 7616): `Digest name=value, name="value", ...`.
 * Names are case-insensitive; each may appear once.
 */
export interface AuthParams {
  readonly scheme: string;
  readonly params: Map<string, string>;
}

export function parseAuthParams(text: string): AuthParams {
  const trimmed = text.trim();
  const space = trimmed.search(/\s/);
  if (space <= 0) throw badRequest('malformed credentials');
  const params = new Map<string, string>();
  for (const piece of splitOutsideQuotes(trimmed.slice(space + 1), ',')) {
    const eq = piece.indexOf('=');
    if (eq <= 0) throw badRequest('malformed credentials parameter');
    const name = piece.slice(0, eq).trim().toLowerCase();
    if (params.has(name)) throw badRequest(`credentials repeat ${name}`);
    params.set(name, unquote(piece.slice(eq + 1).trim()));
  }
  return { scheme: trimmed.slice(0, space), params };
}
