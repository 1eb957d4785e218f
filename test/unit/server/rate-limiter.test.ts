/** RateLimiter (src/server/rate-limiter.ts): token buckets on a fake clock. */
import { expect } from 'chai';
import { RateLimiter } from '../../../src/server/rate-limiter.js';

describe('RateLimiter', () => {
  it('allows a burst of perSecond, then refills at perSecond', () => {
    let now = 0;
    const limiter = new RateLimiter(5, () => now);
    const burst = Array.from({ length: 8 }, () => limiter.take('a'));
    expect(burst).to.deep.equal([true, true, true, true, true, false, false, false]);
    expect(limiter.take('b'), 'buckets are per name').to.equal(true);
    now += 200; // one token back
    expect([limiter.take('a'), limiter.take('a')]).to.deep.equal([true, false]);
    now += 10_000; // never more than the burst
    expect(Array.from({ length: 6 }, () => limiter.take('a')).filter(Boolean)).to.have.length(5);
  });

  it('stays bounded under a stream of new names', () => {
    let now = 0;
    const limiter = new RateLimiter(1, () => now);
    for (let i = 0; i < 50_000; i++) {
      limiter.take(`n${i}`);
      now += 1;
    }
    const size = (limiter as unknown as { buckets: Map<string, unknown> }).buckets.size;
    expect(size).to.be.at.most(10_000);
  });
});
