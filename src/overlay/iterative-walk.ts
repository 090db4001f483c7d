import type { Id } from '../wire/id.js';
import { nodeDestination, resourceDestination } from '../wire/message.js';
import { MessageCode } from '../wire/message-codes.js';
import type { Contact } from '../wire/messages/contact.js';
import { routeQueryAns, routeQueryReq } from '../wire/messages/route-query.js';
import type { OverlayRouter } from './router.js';

/*
 * Iterative routing as the last resort (RFC 6940 s13.5: peers that drop what they should
 * forward). When recursive tries have timed out, this node asks each hop itself with a
 * RouteQuery where it would send the message, and talks to every hop directly, so a hop that
 * answers for itself but forwards nothing cannot swallow the request. It ends at the
 * responsible peer, which the caller then sends the request to directly.
 */
const MAX_STEPS = 32;
const STEP_POLICY = { attempts: 2, timeoutMs: 2_000 };

/**
 * Calls `done` with the responsible peer (undefined when the walk could not reach one, after a
 * loop or when every candidate hop was silent) and the hops that answered, in order.
 */
export function walkToResponsible(router: OverlayRouter, target: Id, done: (responsible: Contact | undefined, path: Contact[]) => void): void {
  const visited = new Set<Id>([router.nodeId]);
  const path: Contact[] = [];
  const step = (candidates: Contact[], steps: number): void => {
    const next = candidates.find((c) => !visited.has(c.id));
    if (!next || steps >= MAX_STEPS) return done(undefined, path);
    visited.add(next.id);
    const body = routeQueryReq.encode({ sendUpdate: false, destination: resourceDestination(target) });
    router.request([nodeDestination(next.id)], MessageCode.RouteQueryReq, body, (error, response) => {
      if (error || !response) return step(candidates.filter((c) => c !== next), steps + 1); // this hop is silent: try the next best
      path.push(next);
      const nextPeer = routeQueryAns.decode(response.body).nextPeer;
      if (!nextPeer) return done(next, path); // it is responsible
      step([nextPeer], steps + 1);
    }, { ...STEP_POLICY, firstHop: router.connections.proven(next.id) ?? next.address }); // a held link's address is fresher
  };
  // Our own next hops, or none when we are responsible ourselves.
  step(router.topology.isResponsible(target) ? [] : router.topology.nextHops(target), 0);
}
