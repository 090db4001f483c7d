/*
 * Duplicate suppression for one link: the highest sequence number seen and a bitmap of the
 * 1024 before it, wide enough for a burst of fragments whose first ones are retransmitted
 * last. A jump far backwards or forwards means the sender restarted; start afresh. A strict
 * window (the sealed link's replay window, keyed per session) never restarts: there a jump
 * backwards is a replay and a new sender is a new session.
 */
const WINDOW = 1024;
const RESTART_GAP = 1 << 20;

export class ReceiveWindow {
  highest = -1;
  private readonly seen = new Uint8Array(WINDOW / 8);

  constructor(private readonly strict = false) {}

  /** True if `seq` is new (and records it), false if it is a duplicate. */
  accept(seq: number): boolean {
    if (this.highest < 0) return this.restart(seq);
    const ahead = seq - this.highest;
    if (!this.strict && (ahead > RESTART_GAP || ahead < -RESTART_GAP)) return this.restart(seq);
    if (ahead > 0) {
      if (ahead >= WINDOW) this.seen.fill(0);
      else for (let s = this.highest + 1; s < seq; s++) this.clear(s);
      this.set(seq);
      this.highest = seq;
      return true;
    }
    if (ahead <= -WINDOW) return false; // too old to tell: it was almost certainly delivered already
    if (this.has(seq)) return false;
    this.set(seq);
    return true;
  }

  /** Whether `accept` would take `seq`, without recording it (check before authenticating, record after). */
  isFresh(seq: number): boolean {
    if (this.highest < 0 || seq > this.highest) return true;
    if (!this.strict && this.highest - seq > RESTART_GAP) return true;
    return this.highest - seq < WINDOW && !this.has(seq);
  }

  /** Bit i set: frame (highest - 1 - i) was received; carried in acks (RFC 6940 s5.6.3.1). */
  get mask(): number {
    let mask = 0;
    for (let i = 0; i < 32; i++) if (this.highest - 1 - i >= 0 && this.has(this.highest - 1 - i)) mask |= 1 << i;
    return mask >>> 0;
  }

  private restart(seq: number): boolean {
    this.seen.fill(0);
    this.highest = seq;
    this.set(seq);
    return true;
  }

  private has(seq: number): boolean {
    const i = seq % WINDOW;
    return (this.seen[i >> 3] & (1 << (i & 7))) !== 0;
  }

  private set(seq: number): void {
    const i = seq % WINDOW;
    this.seen[i >> 3] |= 1 << (i & 7);
  }

  private clear(seq: number): void {
    const i = seq % WINDOW;
    this.seen[i >> 3] &= ~(1 << (i & 7));
  }
}
