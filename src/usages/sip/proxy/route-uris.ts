import { parseNameAddr } from '../message/name-addr.js';
import { parseSipUri, type SipUri } from '../message/uri.js';
import type { SipFlow } from '../transport/sip-transport.js';

/** Small readings of URIs the proxy routes by: Route values, IP literals, a parameter taken out. */

/** `uri` with one ;name=value parameter taken out (before any ?headers). */
export function withoutParam(uri: string, name: string): string {
  return uri.replace(new RegExp(`;${name}=[^;?>]*`, 'i'), '');
}

/** `uri` with its host[:port] replaced by `host` (a user at one of our aliases, retargeted to the home's domain). */
export function withHost(uri: string, host: string): string {
  const start = uri.lastIndexOf('@') + 1;
  const end = uri.slice(start).search(/[;?]/);
  return uri.slice(0, start) + host + (end < 0 ? '' : uri.slice(start + end));
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
