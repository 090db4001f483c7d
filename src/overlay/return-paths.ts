import type { Clock } from '../runtime/clock.js';
import type { Address } from '../wire/address.js';
import { bytesToHex } from '../runtime/hex.js';
import type { Id } from '../wire/id.js';

/*
 * Where each forwarded request came from, by transaction and previous hop, so the response can
 * retrace the path (RFC 6940 s6.3.2.2) without this peer believing an unverified claim about
 * who lives at which address. Bounded in count and age.
 */
const CAPACITY = 8192;
const LIFETIME_MS = 60_000;

export class ReturnPaths {
  private readonly entries = new Map<string, { readonly address: Address; readonly at: number }>();

  constructor(private readonly clock: Clock) {}

  remember(transactionId: Uint8Array, previousHop: Id, address: Address): void {
    const key = keyOf(transactionId, previousHop);
    this.entries.delete(key);
    this.entries.set(key, { address, at: this.clock.now() });
    if (this.entries.size > CAPACITY) this.entries.delete(this.entries.keys().next().value as string);
  }

  lookup(transactionId: Uint8Array, nextHop: Id): Address | undefined {
    const entry = this.entries.get(keyOf(transactionId, nextHop));
    if (!entry || this.clock.now() - entry.at > LIFETIME_MS) return undefined;
    return entry.address;
  }
}

function keyOf(transactionId: Uint8Array, id: Id): string {
  return `${bytesToHex(transactionId)}/${id}`;
}
