import type { Link } from '../../src/link/link.js';
import { NatTraversal } from '../../src/nat/nat-traversal.js';
import { RelayLink } from '../../src/nat/relay/relay-link.js';
import type { Clock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/log.js';
import type { Random } from '../../src/runtime/random.js';
import type { Address } from '../../src/wire/address.js';

/** A node's NAT traversal at `host`, on virtual time: every datagram it sends goes to `sendRaw`. */
export function natNode(host: Address, clock: Clock, random: Random, sendRaw: (to: Address, datagram: Uint8Array) => void): NatTraversal {
  const link: Link = { localAddress: host, send: () => {}, onDatagram: () => {}, close: async () => {} };
  return new NatTraversal({ clock, random, log: silentLogger, host: () => host, relayLink: new RelayLink(link), sendRaw, linkSecret: () => undefined });
}
