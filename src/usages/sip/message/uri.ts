import { SipError } from '../sip-error.js';
import { type Params, parseParams } from './params.js';

/*
 * SIP and SIPS URIs (RFC 3261 s19.1): sip:user:password@host:port;params?headers. The user part
 * keeps its %-escapes decoded; hosts may be IPv6 references in brackets. Other schemes are
 * refused with 416 (s21.4.18).
 */
export interface SipUri {
  readonly scheme: 'sip' | 'sips';
  readonly user?: string;
  readonly password?: string;
  readonly host: string;
  readonly port?: number;
  readonly params: Params;
  /** The raw `?...` part, if any. */
  readonly headers?: string;
}

const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)$/;

export function parseSipUri(text: string): SipUri {
  const colon = text.indexOf(':');
  const scheme = colon > 0 ? text.slice(0, colon).toLowerCase() : '';
  if (scheme !== 'sip' && scheme !== 'sips') throw new SipError(416, 'Unsupported URI Scheme');
  let rest = text.slice(colon + 1);
  let user: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const pw = userinfo.indexOf(':');
    user = unescape(pw < 0 ? userinfo : userinfo.slice(0, pw));
    if (pw >= 0) password = unescape(userinfo.slice(pw + 1));
    if (!user) throw badUri('empty user part');
  }
  let headers: string | undefined;
  const q = rest.indexOf('?');
  if (q >= 0) {
    headers = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const [hostport, ...paramPieces] = rest.split(';');
  const { host, port } = parseHostPort(hostport);
  return { scheme, ...(user !== undefined ? { user } : {}), ...(password !== undefined ? { password } : {}), host, ...(port !== undefined ? { port } : {}), params: parseParams(paramPieces), ...(headers !== undefined ? { headers } : {}) };
}

export function parseHostPort(text: string): { host: string; port?: number } {
  let host = text;
  let port: number | undefined;
  const bracket = text.lastIndexOf(']');
  const colon = text.lastIndexOf(':');
  if (colon > bracket && (text.startsWith('[') || text.indexOf(':') === colon)) {
    host = text.slice(0, colon);
    const portText = text.slice(colon + 1);
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw badUri(`bad port ${portText}`);
    port = Number(portText);
  }
  if (!HOST.test(host)) throw badUri(`bad host ${host || '(empty)'}`);
  return { host: host.toLowerCase(), ...(port !== undefined ? { port } : {}) };
}

/** The address-of-record key of a URI: user@host, lowercased host (RFC 3261 s10.3 step 5). */
export function aorOf(uri: SipUri): string {
  return `${uri.user ?? ''}@${uri.host}`;
}

function unescape(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badUri('bad %-escape in user part');
  }
}

function badUri(reason: string): SipError {
  return new SipError(400, `Bad URI: ${reason}`);
}

/** Parameters that must agree whenever either URI has them (RFC 3261 s19.1.4). */
const DECISIVE_PARAMS = ['transport', 'user', 'ttl', 'method', 'maddr'];

/**
 * URI equality as RFC 3261 s19.1.4 defines it: user part case-sensitive, host case-insensitive,
 * a port present on one side only differs, the decisive parameters must agree where either has
 * them, any other parameter only where both have it (phones add ;ob, ;line=, ;rinstance= freely).
 */
export function sameSipUri(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme || a.user !== b.user || a.password !== b.password) return false;
  if (a.host.toLowerCase() !== b.host.toLowerCase() || a.port !== b.port) return false;
  if ((a.headers ?? '') !== (b.headers ?? '')) return false;
  const value = (p: Params, name: string) => p.get(name)?.toLowerCase();
  for (const name of DECISIVE_PARAMS) if (value(a.params, name) !== value(b.params, name)) return false;
  for (const [name] of a.params) if (b.params.has(name) && value(a.params, name) !== value(b.params, name)) return false;
  return true;
}
