/*
 * The hellos a responder has answered, remembered for as long as the hello itself could be
 * believed (its signed time plus the allowed clock skew), keyed by session id and source address:
 * a retransmission from the same address gets the same reply, a replay after the reply is gone is
 * ignored, and a copy from another address is a handshake of its own that cannot block the real
 * one. The reply bytes are kept only while the initiator may still retransmit. Entries are capped;
 * past the cap the oldest go first (a forgotten hello replayed yields a session that is never
 * confirmed, so forgetting costs work, not safety).
 */
interface Entry {
  /** Wall-clock milliseconds after which the hello is stale anyway. */
  readonly believableUntil: number;
  readonly answeredAt: number;
  replyBytes: Uint8Array | undefined;
  /** Times the reply went out again: a few retransmissions, never a stream for whoever can spoof the initiator. */
  resent: number;
}

export class AnsweredHellos {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries: number) {}

  get(session: string, address: string): Entry | undefined {
    return this.entries.get(`${session}|${address}`);
  }

  remember(session: string, address: string, replyBytes: Uint8Array, answeredAt: number, believableUntil: number): void {
    while (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(`${session}|${address}`, { believableUntil, answeredAt, replyBytes, resent: 0 });
  }

  /** Drops reply bytes older than `replyKeepMs` and entries whose hello can no longer be believed. */
  sweep(now: number, wallNow: number, replyKeepMs: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.believableUntil < wallNow) this.entries.delete(key);
      else if (now - entry.answeredAt > replyKeepMs) entry.replyBytes = undefined;
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
