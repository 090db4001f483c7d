import type { Link } from '../../link/link.js';
import { type Address, addressKey } from '../../wire/address.js';
import { decodeStun, StunClass, StunError, StunMethod } from '../stun/message.js';
import { decodeIndication } from './turn-codec.js';

/*
 * The node's UDP link with its relay allocation folded in: datagrams for peers whose link was
 * set up through the relay leave wrapped in Send indications, and Data indications from the
 * relay arrive unwrapped, as if straight from the peer. Everything above (sealing, transport,
 * overlay) sees only peer addresses. STUN that came through the relay goes to its own handler,
 * so that connectivity checks know which base they arrived on.
 */
export class RelayLink implements Link {
  private handler: (from: Address, datagram: Uint8Array) => void = () => {};
  private relay: { server: Address; wrap: (peer: Address, datagram: Uint8Array) => void } | undefined;
  private readonly routed = new Map<string, Address>();
  /** STUN (connectivity checks) that arrived through the relay. */
  onRelayedStun: (from: Address, datagram: Uint8Array) => void = () => {};
  unwrapped = 0;
  wrapped = 0;

  constructor(private readonly inner: Link) {
    inner.onDatagram((from, datagram) => this.receive(from, datagram));
  }

  get localAddress(): Address {
    return this.inner.localAddress;
  }

  /** Uses this relay server (undefined: none) and its Send-indication wrapper. */
  useRelay(server: Address | undefined, wrap?: (peer: Address, datagram: Uint8Array) => void): void {
    this.relay = server && wrap ? { server, wrap } : undefined;
    if (!server) this.routed.clear();
  }

  /** From now on, reach `peer` through the relay. */
  routeThroughRelay(peer: Address): void {
    if (this.routed.size >= 256) this.routed.delete(this.routed.keys().next().value as string);
    this.routed.set(addressKey(peer), peer);
  }

  /** The peers reached through the relay now. */
  routedPeers(): Address[] {
    return [...this.routed.values()];
  }

  isRouted(peer: Address): boolean {
    return this.routed.has(addressKey(peer));
  }

  send(to: Address, datagram: Uint8Array): void {
    if (this.relay && this.routed.has(addressKey(to))) {
      this.wrapped++;
      this.relay.wrap(to, datagram);
    } else this.inner.send(to, datagram);
  }

  onDatagram(handler: (from: Address, datagram: Uint8Array) => void): void {
    this.handler = handler;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private receive(from: Address, datagram: Uint8Array): void {
    // Only a Data indication from our own relay server is unwrapped; anyone else's is just STUN.
    if (this.relay && datagram.length > 0 && datagram[0] <= 0x03 && addressKey(from) === addressKey(this.relay.server)) {
      const carried = this.dataIndication(datagram);
      if (carried) {
        this.unwrapped++;
        if (carried.data.length > 0 && carried.data[0] <= 0x03) this.onRelayedStun(carried.peer, carried.data);
        else this.handler(carried.peer, carried.data);
        return;
      }
    }
    this.handler(from, datagram);
  }

  private dataIndication(datagram: Uint8Array): { peer: Address; data: Uint8Array } | undefined {
    try {
      const message = decodeStun(datagram);
      if (message.klass !== StunClass.Indication || message.method !== StunMethod.Data) return undefined;
      return decodeIndication(message);
    } catch (error) {
      if (error instanceof StunError) return undefined;
      throw error;
    }
  }
}
