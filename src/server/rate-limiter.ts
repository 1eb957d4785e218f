/**
 * Token buckets by name: each name may do `perSecond` things a second, in bursts of as many.
 * Pure (time comes from `now`). Idle buckets are forgotten, so a stream of new names cannot grow
 * it without bound.
 */
const MAX_BUCKETS = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {}

  /** Takes one token for `name`; false when its bucket is empty. */
  take(name: string): boolean {
    const now = this.now();
    let bucket = this.buckets.get(name);
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_BUCKETS) this.forgetFull(now);
      bucket = { tokens: this.perSecond, at: now };
      this.buckets.set(name, bucket);
    } else {
      bucket.tokens = Math.min(this.perSecond, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
      bucket.at = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Buckets that have refilled are the same as no bucket. */
  private forgetFull(now: number): void {
    for (const [name, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond >= this.perSecond)
        this.buckets.delete(name);
    }
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.clear();
  }
}
