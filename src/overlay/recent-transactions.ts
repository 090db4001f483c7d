import type { Clock } from '../runtime/clock.js';
import { bytesToLatin1, latin1ToBytes } from '../runtime/latin1.js';
import { decodeCbor, encodeCbor } from '../wire/cbor.js';
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES, type OverlayMessage } from '../wire/message.js';

/*
 * Requests handled lately, by originator and transaction ID: a replayed or re-routed copy is
 * answered from here (or dropped) instead of running its handler twice. Bounded in count and age.
 *
 * Answers are kept encoded, as latin1 strings (runtime/latin1.ts): a busy peer remembers
 * thousands, and a decoded message is a dozen objects and buffers. Replays are rare, so decoding
 * one again costs less than keeping them all decoded.
 */
const CAPACITY = 4096;
const LIFETIME_MS = 60_000;

interface Entry {
  readonly at: number;
  readonly response: string | null;
}

export class RecentTransactions {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly clock: Clock) {}

  /** undefined: never seen; null: seen, no answer yet; else the answer sent. */
  lookup(key: string): OverlayMessage | null | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.clock.now() - entry.at > LIFETIME_MS) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.response === null ? null : decodeMessage(decodeCbor(latin1ToBytes(entry.response), MAX_MESSAGE_BYTES));
  }

  remember(key: string, response: OverlayMessage | null): void {
    const now = this.clock.now();
    const at = this.entries.get(key)?.at ?? now;
    this.entries.delete(key);
    this.entries.set(key, { at, response: response && bytesToLatin1(encodeCbor(encodeMessage(response))) });
    // Oldest first (near enough: an answer keeps its request's time): after a burst, what
    // nobody can replay any more goes with the next request, not when 4,096 newer ones push it.
    for (const [oldKey, entry] of this.entries) {
      if (this.entries.size <= CAPACITY && now - entry.at <= LIFETIME_MS) break;
      this.entries.delete(oldKey);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
