/*
 * Duplicate suppression for one link: the highest sequence number seen and a bitmask of the
 * 32 before it. A jump far backwards or forwards means the sender restarted; start afresh.
 */
const RESTART_GAP = 1 << 20;

export class ReceiveWindow {
  highest = -1;
  /** Bit i set: frame (highest - 1 - i) was received. */
  mask = 0;

  /** True if `seq` is new (and records it), false if it is a duplicate. */
  accept(seq: number): boolean {
    if (this.highest < 0) return this.restart(seq);
    const ahead = seq - this.highest;
    if (ahead > RESTART_GAP || ahead < -RESTART_GAP) return this.restart(seq);
    if (ahead > 0) {
      this.mask = ahead > 32 ? 0 : ahead === 32 ? (1 << 31) >>> 0 : ((this.mask << ahead) | (1 << (ahead - 1))) >>> 0;
      this.highest = seq;
      return true;
    }
    if (ahead === 0) return false;
    const bit = -ahead - 1;
    if (bit >= 32) return false; // too old to tell: it was almost certainly delivered already
    if (this.mask & (1 << bit)) return false;
    this.mask = (this.mask | (1 << bit)) >>> 0;
    return true;
  }

  private restart(seq: number): boolean {
    this.highest = seq;
    this.mask = 0;
    return true;
  }
}
