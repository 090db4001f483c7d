import type { Link } from '../link/link.js';
import type { Random } from '../runtime/random.js';
import { type Address, addressKey } from '../wire/address.js';
import { LatencyModel } from './latency-model.js';
import type { VirtualClock } from './virtual-clock.js';

/**
 * A simulated IP network: hosts on addresses inside 198.18.0.0/15 (never routed anywhere; the
 * packets never leave this process), one-way latency from a latency model, and random loss.
 */
export class SimNetwork {
  private readonly hosts = new Map<string, SimLink>();
  private readonly latency: LatencyModel;
  private nextHost = 1;
  datagrams = 0;
  lost = 0;

  constructor(
    private readonly clock: VirtualClock,
    private readonly random: Random,
    private readonly lossRate = 0,
  ) {
    this.latency = new LatencyModel(random);
  }

  /** A new host with a fresh address. */
  addHost(port = 6084): SimLink {
    const n = this.nextHost++;
    const address = { host: `198.${18 + (n >> 16)}.${(n >> 8) & 0xff}.${n & 0xff}`, port };
    const link = new SimLink(this, address);
    this.hosts.set(addressKey(address), link);
    this.latency.place(addressKey(address));
    return link;
  }

  /** Sockets open in the simulated network (hosts that have not closed their link). */
  get hostCount(): number {
    return this.hosts.size;
  }

  remove(link: SimLink): void {
    this.hosts.delete(addressKey(link.localAddress));
  }

  deliver(from: Address, to: Address, datagram: Uint8Array): void {
    this.datagrams++;
    if (this.lossRate > 0 && this.random.float() < this.lossRate) {
      this.lost++;
      return;
    }
    const target = this.hosts.get(addressKey(to));
    const delay = this.latency.oneWay(addressKey(from), addressKey(to));
    this.clock.schedule(delay, () => {
      if (target && this.hosts.get(addressKey(to)) === target) target.receive(from, datagram);
    });
  }
}

export class SimLink implements Link {
  private handler: (from: Address, datagram: Uint8Array) => void = () => {};
  private closed = false;

  constructor(
    private readonly network: SimNetwork,
    readonly localAddress: Address,
  ) {}

  send(to: Address, datagram: Uint8Array): void {
    if (!this.closed) this.network.deliver(this.localAddress, to, datagram);
  }

  onDatagram(handler: (from: Address, datagram: Uint8Array) => void): void {
    this.handler = handler;
  }

  receive(from: Address, datagram: Uint8Array): void {
    if (!this.closed) this.handler(from, datagram);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.network.remove(this);
  }
}
