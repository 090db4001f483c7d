import { type Destination, decodeDestination, encodeDestination } from '../message.js';
import { readBool } from '../schema.js';
import { arrayBody } from './body-codec.js';
import { type Contact, decodeContact, encodeContact } from './contact.js';

/*
 * RFC 6940 s6.4.2.4 RouteQuery: "where would you send a message for this destination?".
 * The answer names the next hop, or null when the answering peer is itself responsible.
 * `p2psip route` walks a path with it, one hop at a time.
 *
 *   route-query-req = [send-update: bool, destination: destination]
 *   route-query-ans = [next-peer: contact / null]
 */
export interface RouteQueryReq {
  readonly sendUpdate: boolean;
  readonly destination: Destination;
}
export interface RouteQueryAns {
  readonly nextPeer: Contact | null;
}

export const routeQueryReq = arrayBody<RouteQueryReq>(
  'routeQueryReq',
  2,
  2,
  (v) => [v.sendUpdate, encodeDestination(v.destination)],
  (f, p) => ({ sendUpdate: readBool(f[0], `${p}.sendUpdate`), destination: decodeDestination(f[1], `${p}.destination`) }),
);

export const routeQueryAns = arrayBody<RouteQueryAns>(
  'routeQueryAns',
  1,
  1,
  (v) => [v.nextPeer ? encodeContact(v.nextPeer) : null],
  (f, p) => ({ nextPeer: f[0] === null ? null : decodeContact(f[0], `${p}.nextPeer`) }),
);
