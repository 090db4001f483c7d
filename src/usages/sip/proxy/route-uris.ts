import { parseNameAddr } from '../message/name-addr.js';
import { parseSipUri, type SipUri } from '../message/uri.js';
import type { SipFlow } from '../transport/sip-transport.js';

/** Small readings of URIs the proxy routes by: Route values, IP literals, a parameter taken out. */

/** `uri` with one ;name=value parameter taken out (before any ?headers). */
export function withoutParam(uri: string, name: string): string {
  return uri.replace(new RegExp(`;${name}=[^;?>]*`, 'i'), '');
}

export function tryParseSipUri(text: string): SipUri | undefined {
  try {
    return parseSipUri(text);
  } catch {
    return undefined;
  }
}

export function routeUri(value: string | undefined): SipUri | undefined {
  if (!value) return undefined;
  try {
    return parseSipUri(parseNameAddr(value).uri);
  } catch {
    return undefined;
  }
}

export function isIpLiteral(host: string): boolean {
  return host.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

export function udpTo(uri: SipUri): SipFlow {
  const received = uri.params.get('maddr');
  return { transport: 'UDP', remote: { host: (received ?? uri.host).replace(/^\[|\]$/g, ''), port: uri.port ?? 5060 } };
}
