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

/**
 * One bucket per key (an address, a Node-ID), at most `maxKeys` of them. The map is kept in order
 * of last use; a newcomer when it is full pushes out the least recently used bucket, in O(1).
 * A newcomer is never refused for want of room: a flood of spoofed sources then costs honest
 * senders at most a fresh (full) bucket, never their traffic.
 */
export class KeyedRateLimiter<K> {
  private readonly buckets = new Map<K, TokenBucket>();
  dropped = 0;

  constructor(
    private readonly limit: RateLimit,
    private readonly clock: Clock,
    private readonly maxKeys = 4096,
  ) {}

  allow(key: K): boolean {
    let bucket = this.buckets.get(key);
    if (bucket) this.buckets.delete(key); // re-inserted below: most recently used last
    else {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as K);
      bucket = new TokenBucket(this.limit, this.clock);
    }
    this.buckets.set(key, bucket);
    if (bucket.take()) return true;
    this.dropped++;
    return false;
  }

  /** Forgets sources whose buckets have refilled. */
  sweep(): void {
    for (const [key, bucket] of this.buckets) if (bucket.isIdle()) this.buckets.delete(key);
  }
}
