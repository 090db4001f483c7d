/**
 * Keys that may each be used once until they expire (nonces, request ids): a replay inside the
 * window is refused, and a key past its expiry could not be believed anyway, so it is forgotten.
 * Bounded: past `maxKeys` live entries a new key is refused rather than an old one forgotten,
 * so a flood can delay honest requests but never reopen a replay.
 */
export class OnceSet {
  private readonly expiries = new Map<string, number>();

  constructor(private readonly maxKeys: number) {}

  /** True the first time `key` is seen while live; `until` and `now` in one unit (seconds, say). */
  firstUse(key: string, until: number, now: number): boolean {
    if (this.expiries.has(key)) return false;
    if (this.expiries.size >= this.maxKeys) this.forgetExpired(now);
    if (this.expiries.size >= this.maxKeys) return false;
    this.expiries.set(key, until);
    return true;
  }

  /** The keys still live at `now`, with their expiries (expired ones are forgotten first). */
  live(now: number): IterableIterator<[string, number]> {
    this.forgetExpired(now);
    return this.expiries.entries();
  }

  private forgetExpired(now: number): void {
    for (const [key, until] of this.expiries) if (until < now) this.expiries.delete(key);
  }

  get size(): number {
    return this.expiries.size;
  }
}
