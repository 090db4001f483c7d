/**
 * The highest nonce-count seen for each nonce and cnonce (RFC 7616 s3.4.5): a request whose
 * count is not higher than the last one accepted is a replay. Entries live as long as a nonce
 * can be fresh; the table is bounded, and when it is full of live entries a new one is refused
 * (the client is challenged again) rather than an old one forgotten, which would reopen a replay.
 */
export class NonceCounts {
  private readonly entries = new Map<string, { count: number; until: number }>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly maxEntries: number,
  ) {}

  /** True, and remembered, when `count` is higher than any seen for `key`. */
  advance(key: string, count: number, now: number): boolean {
    if (!Number.isInteger(count) || count < 1) return false;
    const entry = this.entries.get(key);
    if (entry && entry.until >= now) {
      if (count <= entry.count) return false;
      entry.count = count;
      return true;
    }
    if (this.entries.size >= this.maxEntries) this.forgetExpired(now);
    if (this.entries.size >= this.maxEntries) return false;
    this.entries.set(key, { count, until: now + this.lifetimeMs });
    return true;
  }

  private forgetExpired(now: number): void {
    for (const [key, entry] of this.entries) if (entry.until < now) this.entries.delete(key);
  }
}
