/**
 * The nonce-counts seen for each nonce and cnonce (RFC 7616 s3.4.5): a count used before is a
 * replay. The highest count and the 64 below it are remembered, so requests a phone sends in
 * parallel may arrive in any order; one older than that window is refused. Entries live as long
 * as a nonce can be fresh; the table is bounded, and when it is full of live entries a new one is
 * refused (the client is challenged again) rather than an old one forgotten, which would reopen
 * a replay.
 */
const WINDOW = 64n;

export class NonceCounts {
  private readonly entries = new Map<string, { highest: number; seen: bigint; until: number }>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly maxEntries: number,
  ) {}

  /** True, and remembered, when `count` has not been used with `key` before (and is not too old to tell). */
  advance(key: string, count: number, now: number): boolean {
    if (!Number.isInteger(count) || count < 1) return false;
    const entry = this.entries.get(key);
    if (entry && entry.until >= now) {
      const behind = BigInt(entry.highest - count);
      if (behind >= WINDOW) return false;
      if (behind >= 0n) {
        const bit = 1n << behind;
        if (entry.seen & bit) return false;
        entry.seen |= bit;
        return true;
      }
      // A jump past the window leaves nothing older in it: no shift by the jump, which may be 2^32 bits (fuzz review F5).
      entry.seen = -behind >= WINDOW ? 1n : ((entry.seen << -behind) | 1n) & ((1n << WINDOW) - 1n);
      entry.highest = count;
      return true;
    }
    if (this.entries.size >= this.maxEntries) this.forgetExpired(now);
    if (this.entries.size >= this.maxEntries) return false;
    this.entries.set(key, { highest: count, seen: 1n, until: now + this.lifetimeMs });
    return true;
  }

  private forgetExpired(now: number): void {
    for (const [key, entry] of this.entries) if (entry.until < now) this.entries.delete(key);
  }
}
