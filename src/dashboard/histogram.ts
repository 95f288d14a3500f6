// Percentiles from Prometheus histogram buckets, computed exactly as PromQL's histogram_quantile
// does (linear interpolation inside the bucket holding the rank), so the dashboard's p50/p99 agree
// with what a Prometheus user sees for `histogram_quantile(0.99, rate(..._bucket[1m]))`.
// https://github.com/prometheus/prometheus/blob/main/promql/quantile.go

/**
 * Cumulative bucket counts by upper bound (`le`), as scraped or as a delta between two scrapes.
 * Deltas of cumulative counts are still cumulative, which is why rate() over buckets works.
 */
export type BucketCounts = Map<number, number>;

/**
 * The q-quantile (0..1) of the observations in `buckets`, or undefined when there are none.
 * Needs a +Inf bucket (Prometheus returns NaN without one); a rank in the +Inf bucket answers the
 * largest finite bound, as Prometheus does.
 */
export function histogramQuantile(q: number, buckets: BucketCounts): number | undefined {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  if (bounds.length < 2 || bounds[bounds.length - 1] !== Infinity) return undefined;
  // Counts scraped at slightly different moments can dip; Prometheus forces monotonicity.
  const counts: number[] = [];
  let max = 0;
  for (const le of bounds) {
    max = Math.max(max, buckets.get(le) ?? 0);
    counts.push(max);
  }
  const total = counts[counts.length - 1];
  if (!(total > 0)) return undefined;
  let rank = Math.min(1, Math.max(0, q)) * total;
  const b = counts.findIndex((c) => c >= rank);
  if (b === bounds.length - 1) return bounds[bounds.length - 2];
  if (b === 0 && bounds[0] <= 0) return bounds[0];
  const start = b === 0 ? 0 : bounds[b - 1];
  const below = b === 0 ? 0 : counts[b - 1];
  const inBucket = counts[b] - below;
  rank -= below;
  return start + (bounds[b] - start) * (rank / inBucket);
}

/** later - earlier, bound by bound; a bound missing from `earlier` counts from zero. */
export function bucketDelta(later: BucketCounts, earlier: BucketCounts | undefined): BucketCounts {
  const out: BucketCounts = new Map();
  for (const [le, count] of later) out.set(le, count - (earlier?.get(le) ?? 0));
  return out;
}

/** Adds `more` into `into` (same bounds in the usual case: Istio's buckets are fixed). */
export function addBuckets(into: BucketCounts, more: BucketCounts): void {
  for (const [le, count] of more) into.set(le, (into.get(le) ?? 0) + count);
}
