import { resourceId } from '../identity/ids.js';
import { withoutSipScheme } from './overlay-names.js';
import { walkToResponsible } from '../overlay/iterative-walk.js';
import type { OverlayRouter } from '../overlay/router.js';
import { addressKey } from '../wire/address.js';
import { type Id, idToHex } from '../wire/id.js';
import { resourceDestination } from '../wire/message.js';
import { MessageCode } from '../wire/message-codes.js';
import type { Contact } from '../wire/messages/contact.js';
import { pingReq } from '../wire/messages/ping.js';

/*
 * `p2psip route NAME`: walks the path a message to NAME takes, asking each hop in turn with a
 * RouteQuery where it would send it (RFC 6940 s6.4.2.4; the walk the router falls back on),
 * then confirms with a routed Ping that the recursive route reaches the same responsible peer.
 */
export interface RouteTrace {
  name: string;
  resourceId: string;
  path: { id: string; address: string }[];
  responsible: string;
  hops: number;
  ping: { responder: string; hops: number; rttMs: number } | { error: string };
}

function request(router: OverlayRouter, destination: Id, code: number, body: Uint8Array) {
  return new Promise<{ body: Uint8Array; responder: Id; hops: number }>((resolve, reject) => {
    router.request([resourceDestination(destination)], code, body, (error, response) => (error || !response ? reject(error) : resolve(response)));
  });
}

export async function traceRoute(router: OverlayRouter, name: string): Promise<RouteTrace> {
  const target = resourceId(withoutSipScheme(name)); // sip:alice@x and alice@x are one name
  const walked = await new Promise<Contact[]>((resolve) => walkToResponsible(router, target, (_, hops) => resolve(hops)));
  const path: Contact[] = [{ id: router.nodeId, address: router.transport.localAddress }, ...walked];
  const started = router.clock.now();
  let ping: RouteTrace['ping'];
  try {
    const answer = await request(router, target, MessageCode.PingReq, pingReq.encode({}));
    ping = { responder: idToHex(answer.responder), hops: answer.hops, rttMs: Math.round(router.clock.now() - started) };
  } catch (error) {
    ping = { error: (error as Error).message };
  }
  return {
    name,
    resourceId: idToHex(target),
    path: path.map((c) => ({ id: idToHex(c.id), address: addressKey(c.address) })),
    responsible: idToHex(path[path.length - 1].id),
    hops: path.length - 1,
    ping,
  };
}
