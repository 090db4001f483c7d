import type { Address } from '../wire/address.js';
import type { Id } from '../wire/id.js';

/*
 * Where to reach the Node-IDs this peer has recently heard from or learned of: the next hop of
 * a symmetric response and of a direct request. Bounded and least-recently-used, so a busy
 * forwarding peer's memory stays flat.
 */
export class ConnectionTable {
  private readonly entries = new Map<Id, Address>();

  constructor(private readonly capacity = 2048) {}

  learn(id: Id, address: Address): void {
    const known = this.entries.get(id);
    if (known === address || (known && known.host === address.host && known.port === address.port)) return;
    this.entries.delete(id);
    this.entries.set(id, address);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as Id);
  }

  lookup(id: Id): Address | undefined {
    return this.entries.get(id);
  }

  forget(id: Id): void {
    this.entries.delete(id);
  }

  /** Node-IDs last seen at this address (usually one). */
  idsAt(address: Address): Id[] {
    const out: Id[] = [];
    for (const [id, a] of this.entries) if (a.host === address.host && a.port === address.port) out.push(id);
    return out;
  }

  get size(): number {
    return this.entries.size;
  }
}
