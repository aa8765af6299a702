// A latency histogram with logarithmic buckets (2% wide, 1 us to about 10 min), so slices from
// many workers merge by adding counts and percentiles stay within 2% whatever the sample count.
import type { HistogramData } from './task';

const BASE_MS = 0.001;
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 1100;

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private n = 0;
  private sum = 0;
  private max = 0;
  private min = Infinity;

  record(ms: number): void {
    const v = ms > BASE_MS ? ms : BASE_MS;
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(v / BASE_MS) / LOG_GROWTH));
    this.counts[i]! += 1;
    this.n++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
    if (ms < this.min) this.min = ms;
  }

  get count(): number {
    return this.n;
  }

  get maximum(): number | null {
    return this.n === 0 ? null : this.max;
  }

  get mean(): number | null {
    return this.n === 0 ? null : this.sum / this.n;
  }

  /** The value at quantile q (0..1): the middle of its bucket, clamped to the observed range. */
  percentile(q: number): number | null {
    if (this.n === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) {
        const mid = BASE_MS * Math.pow(GROWTH, i + 0.5);
        return Math.min(this.max, Math.max(this.min, mid));
      }
    }
    return this.max;
  }

  merge(data: HistogramData): void {
    if (data.n === 0) return;
    for (let i = 0; i < data.counts.length && i < BUCKETS; i++) this.counts[i]! += data.counts[i]!;
    this.n += data.n;
    this.sum += data.sum;
    if (data.max > this.max) this.max = data.max;
    if (data.min < this.min) this.min = data.min;
  }

  toJSON(): HistogramData {
    return { counts: Array.from(this.counts), max: this.max, min: this.min, sum: this.sum, n: this.n };
  }
}
