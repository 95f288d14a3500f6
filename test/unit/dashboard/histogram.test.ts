// Percentiles from histogram buckets, the way PromQL's histogram_quantile computes them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketDelta, histogramQuantile, type BucketCounts } from '../../../src/dashboard/histogram';

const buckets = (pairs: [number, number][]): BucketCounts => new Map(pairs);

describe('histogramQuantile', () => {
  // 10 observations <= 10 ms, 80 more <= 50 ms, 10 more <= 100 ms.
  const b = buckets([
    [10, 10],
    [50, 90],
    [100, 100],
    [Infinity, 100],
  ]);

  it('interpolates linearly inside the bucket holding the rank', () => {
    // rank 50 is the 40th of 80 observations in (10, 50]: 10 + 40 * 40/80 = 30
    assert.equal(histogramQuantile(0.5, b), 30);
    // rank 99 is the 9th of 10 in (50, 100]: 50 + 50 * 9/10 = 95
    assert.equal(histogramQuantile(0.99, b), 95);
    // rank 5 in the first bucket, which starts at 0: 10 * 5/10 = 5
    assert.equal(histogramQuantile(0.05, b), 5);
  });

  it('answers the largest finite bound when the rank falls in +Inf', () => {
    const slow = buckets([
      [10, 1],
      [50, 2],
      [Infinity, 10],
    ]);
    assert.equal(histogramQuantile(0.99, slow), 50);
  });

  it('has no answer without observations or without a +Inf bucket', () => {
    assert.equal(histogramQuantile(0.5, buckets([[10, 0], [Infinity, 0]])), undefined);
    assert.equal(histogramQuantile(0.5, buckets([[10, 4], [50, 5]])), undefined);
    assert.equal(histogramQuantile(0.5, new Map()), undefined);
  });

  it('treats counts that dip (scraped a moment apart) as flat, like Prometheus', () => {
    const dipping = buckets([
      [10, 10],
      [50, 8],
      [100, 20],
      [Infinity, 20],
    ]);
    assert.equal(histogramQuantile(0.5, dipping), 10);
  });

  it('computes percentiles of a window from the difference of two cumulative scrapes', () => {
    const before = buckets([
      [10, 1000],
      [50, 1000],
      [100, 1000],
      [Infinity, 1000],
    ]);
    // Since then: 10 requests all between 50 and 100 ms.
    const after = buckets([
      [10, 1000],
      [50, 1000],
      [100, 1010],
      [Infinity, 1010],
    ]);
    const delta = bucketDelta(after, before);
    assert.deepEqual([...delta], [
      [10, 0],
      [50, 0],
      [100, 10],
      [Infinity, 10],
    ]);
    assert.equal(histogramQuantile(0.5, delta), 75);
    // The cumulative counts alone would say p50 = 5 ms: the old fast requests dominate.
    assert.equal(histogramQuantile(0.5, after), 5.05);
  });
});
