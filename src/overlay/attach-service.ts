import { MessageCode } from '../wire/message-codes.js';
import { type AttachReq, attachAns, attachReq, type Candidate, CandidateType } from '../wire/messages/attach.js';
import type { Address } from '../wire/address.js';
import type { OverlayRouter } from './router.js';

/*
 * Answers Attach (RFC 6940 s6.5.1) with this node's candidates and remembers the requester's,
 * so that either side can then reach the other directly. Host candidates only for now; the
 * NAT layer will add server-reflexive and relayed ones and run connectivity checks.
 */
export function hostCandidates(address: Address): Candidate[] {
  // RFC 8445 s5.1.2.1 type preference 126 for host candidates.
  return [{ type: CandidateType.Host, address, priority: (126 << 24) >>> 0 }];
}

export function serveAttach(router: OverlayRouter, advertisedAddress: () => Address): void {
  router.handle(MessageCode.AttachReq, (req) => {
    const request: AttachReq = attachReq.decode(req.body);
    const reachable = request.candidates[0]?.address;
    if (reachable) router.connections.learn(req.origin, reachable);
    req.respond(attachAns.encode({ candidates: hostCandidates(advertisedAddress()) }));
  });
}
