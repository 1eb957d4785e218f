/** Small statistics for the benchmarks: medians and a log-bucket latency histogram. */

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export function max(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length === 0 ? NaN : Math.max(...v);
}

export function min(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length === 0 ? NaN : Math.min(...v);
}

/**
 * Latencies in microseconds, in buckets 1% wide (so any percentile is within 1%), from 1 µs to
 * about 100 s. Constant memory whatever the number of samples; histograms merge by adding counts.
 */
const GROWTH = Math.log(1.01);
const BUCKETS = 2600;

export class Histogram {
  readonly counts: number[];
  total = 0;
  maxUs = 0;

  constructor(counts?: readonly number[]) {
    this.counts = counts ? [...counts] : new Array<number>(BUCKETS).fill(0);
    for (const c of this.counts) this.total += c;
  }

  record(us: number): void {
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / GROWTH));
    this.counts[i]!++;
    this.total++;
    if (us > this.maxUs) this.maxUs = us;
  }

  merge(other: { counts: readonly number[]; maxUs?: number }): void {
    for (let i = 0; i < BUCKETS; i++) {
      const c = other.counts[i] ?? 0;
      this.counts[i]! += c;
      this.total += c;
    }
    this.maxUs = Math.max(this.maxUs, other.maxUs ?? 0);
  }

  /** The value (µs) below which `p` (0..1) of the samples fall; NaN when empty. */
  percentile(p: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(p * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return i === 0 ? 1 : Math.exp(i * GROWTH);
    }
    return this.maxUs;
  }
}
