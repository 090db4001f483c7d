import { type Address, sameHost } from '../../../wire/address.js';
import type { Binding } from '../registrar/location.js';
import { tryParseSipUri } from './route-uris.js';

/**
 * Where to open a new connection to a phone whose registered TCP connection has closed (RFC 3261
 * s18.1.1: a request goes over a connection its sender opens to the target; s18.2.1: a phone on
 * TCP listens where its Contact says). Only for a Contact with ;transport=tcp on the very host the
 * phone's connection came from: a phone behind another NAT names an address nobody here can reach,
 * and a Contact naming any other host would have us knock on a stranger's door. A phone using
 * outbound (RFC 5626, ;reg-id) is reached over its own flow or not at all (s5.3: 430). Hosts are
 * compared as addresses, not text: under --bind :: an IPv4 phone's flow is ::ffff:a.b.c.d.
 */
export function reconnectAddress(binding: Binding): Address | undefined {
  if (binding.flow.transport !== 'TCP' || binding.params?.has('reg-id')) return undefined;
  const uri = tryParseSipUri(binding.contact);
  if (!uri || uri.scheme !== 'sip' || uri.params.get('transport')?.toLowerCase() !== 'tcp') return undefined;
  if (!sameHost(uri.host, binding.flow.remote.host)) return undefined;
  return { host: binding.flow.remote.host, port: uri.port ?? 5060 };
}
