import type { Clock } from './clock.js';

/**
 * A token bucket on the injected clock: `ratePerSecond` tokens flow in, up to `burst`. Used to
 * hold one source's traffic to a share of a node's work without a global limit that a single
 * flooder could use up for everyone.
 */
export interface RateLimit {
  readonly ratePerSecond: number;
  readonly burst: number;
}

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly limit: RateLimit,
    private readonly clock: Clock,
  ) {
    this.tokens = limit.burst;
    this.updatedAt = clock.now();
  }

  /** Takes one token if there is one. */
  take(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.updatedAt) * this.limit.ratePerSecond) / 1000);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Full again: nothing taken for long enough, so the bucket can be forgotten. */
  isIdle(): boolean {
    return this.tokens + ((this.clock.now() - this.updatedAt) * this.limit.ratePerSecond) / 1000 >= this.limit.burst;
  }
}

/** One bucket per key (an address, a Node-ID), forgetting idle ones so the map stays bounded. */
export class KeyedRateLimiter<K> {
  private readonly buckets = new Map<K, TokenBucket>();
  private sweptAt = -Infinity;
  dropped = 0;

  constructor(
    private readonly limit: RateLimit,
    private readonly clock: Clock,
    private readonly maxKeys = 4096,
  ) {}

  allow(key: K): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      // A sweep walks every key: at most one a second, or a flood of new sources would pay for one each.
      if (this.buckets.size >= this.maxKeys && this.clock.now() - this.sweptAt >= 1000) this.sweep();
      // Still full of busy sources: refuse newcomers rather than grow without bound.
      if (this.buckets.size >= this.maxKeys) {
        this.dropped++;
        return false;
      }
      bucket = new TokenBucket(this.limit, this.clock);
      this.buckets.set(key, bucket);
    }
    if (bucket.take()) return true;
    this.dropped++;
    return false;
  }

  /** Forgets sources whose buckets have refilled. */
  sweep(): void {
    this.sweptAt = this.clock.now();
    for (const [key, bucket] of this.buckets) if (bucket.isIdle()) this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }
}
