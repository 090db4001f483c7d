import { type Address, sameAddress } from '../wire/address.js';
import type { Id } from '../wire/id.js';

/*
 * Where to reach the Node-IDs this peer has recently heard from or learned of: the next hop of
 * a symmetric response and of a direct request. Bounded and least-recently-used (a full table
 * drops a suggestion before anything proven), and entries nobody used or refreshed for half an
 * hour go (peers leave; NAT bindings move), so a peer that runs for months keeps only what it uses.
 * An address is *proven* when the node itself showed it holds the Node-ID there (a message it
 * signed and sent us over that link, or an Attach's connectivity checks); one only *suggested* by
 * a neighbour's view never replaces a proven one. Forwarding trusts proven addresses over the
 * topology's; a suggestion serves only a request for a Node-ID we hold nothing better for (the
 * first Update to a new neighbour).
 */
const MAX_AGE_MS = 30 * 60_000;
const SWEEP_EVERY = 256;
/** A use moves an entry to the recent end at most this often (forwarding uses them per message). */
const REORDER_AFTER_MS = 1_000;
/** When full, this many least recently used entries are looked at for a suggestion to drop first. */
const EVICTION_SCAN = 64;

interface Entry {
  readonly address: Address;
  /** Last use or refresh. */
  at: number;
  /** Last moved to the recent end of the map. */
  movedAt: number;
  proven: boolean;
  /** When the node last proved itself at this address (-Infinity: never, a suggestion). */
  provedAt: number;
}

export class ConnectionTable {
  private readonly entries = new Map<Id, Entry>();
  private operations = 0;

  constructor(
    private readonly now: () => number = () => 0,
    private readonly capacity = 2048,
  ) {}

  /** The node showed it holds `id` at `address` (see above). */
  learn(id: Id, address: Address): void {
    this.put(id, address, true);
  }

  /** Someone else says `id` is at `address`: kept only while nothing better is known. */
  suggest(id: Id, address: Address): void {
    if (!this.entries.has(id)) this.put(id, address, false);
  }

  private put(id: Id, address: Address, proven: boolean): void {
    if (++this.operations % SWEEP_EVERY === 0) this.sweep();
    const known = this.entries.get(id);
    const now = this.now();
    if (known && (known.address === address || sameAddress(known.address, address))) {
      this.used(id, known);
      if (proven) {
        known.proven = true;
        known.provedAt = now;
      }
      return;
    }
    if (!known && this.entries.size >= this.capacity && !this.evictFor(proven)) return;
    this.entries.delete(id);
    this.entries.set(id, { address, at: now, movedAt: now, proven, provedAt: proven ? now : -Infinity });
  }

  lookup(id: Id): Address | undefined {
    const entry = this.entries.get(id);
    if (entry) this.used(id, entry);
    return entry?.address;
  }

  /** Where the node itself showed it is (a use, as lookup is); nothing when only others said where. */
  proven(id: Id): Address | undefined {
    const entry = this.entries.get(id);
    if (!entry?.proven) return undefined;
    this.used(id, entry);
    return entry.address;
  }

  /** Map order is least recently used first, so that a full table drops what nobody uses. */
  private used(id: Id, entry: Entry): void {
    const now = this.now();
    if (now - entry.movedAt >= REORDER_AFTER_MS) {
      this.entries.delete(id);
      this.entries.set(id, entry);
      entry.movedAt = now;
    }
    entry.at = now;
  }

  /**
   * Full: makes room for a new entry. The least recently used suggestion goes; failing one among
   * the least recently used, a proof takes the least recently used entry's place, and a new
   * suggestion is not kept (a neighbour's made-up views cannot flush what nodes proved).
   */
  private evictFor(proven: boolean): boolean {
    let scanned = 0;
    for (const [id, entry] of this.entries) {
      if (!entry.proven) return this.entries.delete(id);
      if (++scanned >= EVICTION_SCAN) break;
    }
    if (!proven) return false;
    return this.entries.delete(this.entries.keys().next().value as Id);
  }

  /** Where the node last proved it is, and when, without counting as a use; nothing unless proven. */
  proof(id: Id): { address: Address; provedAt: number } | undefined {
    const entry = this.entries.get(id);
    return entry?.proven ? { address: entry.address, provedAt: entry.provedAt } : undefined;
  }

  forget(id: Id): void {
    this.entries.delete(id);
  }

  /** Node-IDs last seen at this address (usually one). */
  idsAt(address: Address): Id[] {
    const out: Id[] = [];
    for (const [id, e] of this.entries) if (sameAddress(e.address, address)) out.push(id);
    return out;
  }

  get size(): number {
    return this.entries.size;
  }

  private sweep(): void {
    const cutoff = this.now() - MAX_AGE_MS;
    for (const [id, e] of this.entries) if (e.at < cutoff) this.entries.delete(id);
  }
}
