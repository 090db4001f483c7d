import type { Certificate } from '../identity/certificate.js';
import type { Address } from '../wire/address.js';
import type { Id } from '../wire/id.js';

/**
 * A datagram link: the one interface between the protocol code and the network.
 * UdpLink implements it over real sockets, SimLink over the simulator's network, and
 * SealedLink wraps either with authenticated encryption.
 */
export interface Link {
  readonly localAddress: Address;
  /** Fire-and-forget, like UDP: a lost datagram is the transport's problem. */
  send(to: Address, datagram: Uint8Array): void;
  /** `peer` is who the datagram provably came from, when the link authenticates its ends. */
  onDatagram(handler: (from: Address, datagram: Uint8Array, peer?: LinkPeer) => void): void;
  close(): Promise<void>;
}

/** The authenticated far end of a sealed link. */
export interface LinkPeer {
  readonly nodeIds: readonly Id[];
  readonly subject: string;
  readonly certificate: Certificate;
}
