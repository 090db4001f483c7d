import type { AttachService } from '../overlay/attach-service.js';
import { addressKey } from '../wire/address.js';
import { idFromHex, idToHex } from '../wire/id.js';
import { nodeDestination } from '../wire/message.js';

/*
 * `p2psip attach NODE-ID`: an Attach routed to that node, with connectivity checks, and what
 * came of it: a direct link (which address pair) or one through a relay, and how long it took.
 */
export interface AttachReport {
  nodeId: string;
  path: 'direct' | 'relayed';
  address: string;
  remoteType: string;
  setupMs: number;
  candidates: { type: string; address: string }[];
}

const TYPE_NAMES = ['', 'host', 'srflx', 'relay'];

export function attachCommand(service: AttachService, nodeIdHex: string): Promise<AttachReport> {
  const target = idFromHex(nodeIdHex);
  return new Promise((resolve, reject) => {
    // A second try leaves through another first hop (the router's retry), so one swallowed
    // request does not fail the command; both fit in the control call's 20 s.
    service.attach(nodeDestination(target), { timeoutMs: 6_000, attempts: 2 }, (error, outcome) => {
      if (error || !outcome) return reject(error ?? new Error('no outcome'));
      resolve({
        nodeId: idToHex(outcome.id),
        path: outcome.relayed ? 'relayed' : 'direct',
        address: addressKey(outcome.address),
        remoteType: outcome.remoteType,
        setupMs: Math.round(outcome.setupMs * 10) / 10,
        candidates: outcome.candidates.map((c) => ({ type: TYPE_NAMES[c.type], address: addressKey(c.address) })),
      });
    });
  });
}
