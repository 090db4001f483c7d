import { badRequest } from '../sip-error.js';
import { formatParams, type Params, parseParams, splitOutsideQuotes } from './params.js';
import { parseHostPort } from './uri.js';

/*
 * Via (RFC 3261 s20.42): SIP/2.0/TRANSPORT sent-by *(;params), with branch, received and rport
 * (RFC 3581) among the parameters. The magic cookie z9hG4bK marks RFC 3261 branches (s8.1.1.7).
 */
export const BRANCH_COOKIE = 'z9hG4bK';

export interface Via {
  readonly transport: string;
  readonly host: string;
  readonly port?: number;
  readonly params: Params;
}

export function parseVia(text: string): Via {
  const [sentPart, ...paramPieces] = splitOutsideQuotes(text.trim(), ';');
  const match = /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(\S+)\s*$/i.exec(sentPart.trim());
  if (!match) throw badRequest('malformed Via');
  const { host, port } = parseHostPort(match[2]);
  return { transport: match[1].toUpperCase(), host, ...(port !== undefined ? { port } : {}), params: parseParams(paramPieces) };
}

export function formatVia(via: Via): string {
  return `SIP/2.0/${via.transport} ${via.host}${via.port !== undefined ? `:${via.port}` : ''}${formatParams(via.params)}`;
}
