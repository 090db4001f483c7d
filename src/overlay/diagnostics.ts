import { type Destination } from '../wire/message.js';
import { MessageCode } from '../wire/message-codes.js';
import type { Contact } from '../wire/messages/contact.js';
import { pingAns } from '../wire/messages/ping.js';
import { probeAns, probeReq, ProbeType } from '../wire/messages/probe.js';
import { routeQueryAns, routeQueryReq } from '../wire/messages/route-query.js';
import type { OverlayRouter } from './router.js';

/*
 * Ping, Probe and RouteQuery (RFC 6940 s6.4.2): the messages people and tools use to see
 * whether the overlay works and which path a message takes.
 */
export interface DiagnosticsSource {
  numResources(): number;
  /** Share of the ring this node is responsible for, in units of 2^-32. */
  responsibleShare(): number;
  successorIds(): bigint[];
}

export function serveDiagnostics(router: OverlayRouter, source: DiagnosticsSource): void {
  router.handle(MessageCode.PingReq, (req) => {
    const responseId = BigInt(`0x${Buffer.from(router.random.bytes(8)).toString('hex')}`);
    req.respond(pingAns.encode({ responseId, time: BigInt(Math.floor(router.clock.wallTime())) }));
  });
  router.handle(MessageCode.ProbeReq, (req) => {
    const { requested } = probeReq.decode(req.body);
    req.respond(
      probeAns.encode({
        responsibleSet: requested.includes(ProbeType.ResponsibleSet) ? source.responsibleShare() : undefined,
        numResources: requested.includes(ProbeType.NumResources) ? source.numResources() : undefined,
        uptimeSeconds: requested.includes(ProbeType.Uptime) ? router.uptimeSeconds() : undefined,
        successors: requested.includes(ProbeType.Successors) ? source.successorIds() : undefined,
      }),
    );
  });
  router.handle(MessageCode.RouteQueryReq, (req) => {
    const { destination } = routeQueryReq.decode(req.body);
    req.respond(routeQueryAns.encode({ nextPeer: nextPeerFor(router, destination) }));
  });
}

/** Where this node would send a message for `destination`; null when it is responsible. */
export function nextPeerFor(router: OverlayRouter, destination: Destination): Contact | null {
  if (destination.id === router.nodeId || router.topology.isResponsible(destination.id)) return null;
  return router.topology.nextHops(destination.id)[0] ?? null;
}
