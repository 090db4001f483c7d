import type { Clock } from '../runtime/clock.js';
import type { OverlayMessage } from '../wire/message.js';

/*
 * Requests handled lately, by originator and transaction ID: a replayed or re-routed copy is
 * answered from here (or dropped) instead of running its handler twice. Bounded in count and age.
 */
const CAPACITY = 4096;
const LIFETIME_MS = 60_000;

interface Entry {
  readonly at: number;
  readonly response: OverlayMessage | null;
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
    return entry.response;
  }

  remember(key: string, response: OverlayMessage | null): void {
    const at = this.entries.get(key)?.at ?? this.clock.now();
    this.entries.delete(key);
    this.entries.set(key, { at, response });
    while (this.entries.size > CAPACITY) this.entries.delete(this.entries.keys().next().value as string);
  }
}
