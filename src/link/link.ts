import type { Address } from '../wire/address.js';

/**
 * A datagram link: the one interface between the protocol code and the network.
 * UdpLink implements it over real sockets, SimLink over the simulator's network.
 */
export interface Link {
  readonly localAddress: Address;
  /** Fire-and-forget, like UDP: a lost datagram is the transport's problem. */
  send(to: Address, datagram: Uint8Array): void;
  onDatagram(handler: (from: Address, datagram: Uint8Array) => void): void;
  close(): Promise<void>;
}
