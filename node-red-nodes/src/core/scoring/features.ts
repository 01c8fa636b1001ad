/**
 * Rolling-window features per metric, O(W) memory and O(1) amortised work per row and metric
 * (ring buffer with running sums, re-summed exactly once per lap so float error cannot build up).
 * Window statistics describe the W readings BEFORE the current one, so a spike stands out against them.
 */

/** Per metric, in this order. */
export const METRIC_FEATURES = ['value', 'mean', 'std', 'min', 'max', 'rate', 'zscore'] as const;
/** Shared, after all metrics: time of day and of week as points on circles. */
export const TIME_FEATURES = ['daySin', 'dayCos', 'weekSin', 'weekCos'] as const;

const DAY = 86_400_000;
const WEEK = 7 * DAY;

export interface FeatureExtractorJSON {
  window: number;
  metrics: string[];
  /** Per metric: ring buffer contents oldest first. */
  buffers: number[][];
  lastTs: number | null;
  /** Cycles encoded in the time features (absent: both, as before this option). */
  cycles?: TimeCycles;
}

/**
 * Which cycles the time features encode. A cycle the training rows did not cover at least once teaches
 * nothing but extrapolation (a week-of-day never seen looks novel): its features are then held at 0.
 */
export interface TimeCycles {
  day: boolean;
  week: boolean;
}

class MetricWindow {
  readonly buf: Float64Array;
  pos = 0;
  count = 0;
  sum = 0;
  sumSq = 0;
  anchor = NaN;
  /** Min and max of the buffer, kept as rows arrive (re-scanned only when one of them leaves). */
  lo = Infinity;
  hi = -Infinity;
  constructor(size: number) {
    this.buf = new Float64Array(size);
  }
  push(x: number): void {
    if (Number.isNaN(this.anchor)) this.anchor = x;
    const v = x - this.anchor;
    const size = this.buf.length;
    let evicted = NaN;
    if (this.count === size) {
      const old = this.buf[this.pos] as number;
      evicted = old;
      this.sum -= old;
      this.sumSq -= old * old;
    } else this.count++;
    this.buf[this.pos] = v;
    this.sum += v;
    this.sumSq += v * v;
    if (evicted === this.lo || evicted === this.hi) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < this.count; i++) {
        const b = this.buf[i] as number;
        if (b < lo) lo = b;
        if (b > hi) hi = b;
      }
      this.lo = lo;
      this.hi = hi;
    } else {
      if (v < this.lo) this.lo = v;
      if (v > this.hi) this.hi = v;
    }
    this.pos = (this.pos + 1) % size;
    if (this.pos === 0) {
      let s = 0;
      let q = 0;
      for (let i = 0; i < size; i++) {
        const b = this.buf[i] as number;
        s += b;
        q += b * b;
      }
      this.sum = s;
      this.sumSq = q;
    }
  }
  /** Values oldest first (absolute). */
  values(): number[] {
    const out: number[] = [];
    const size = this.buf.length;
    const start = this.count === size ? this.pos : 0;
    for (let k = 0; k < this.count; k++) out.push((this.buf[(start + k) % size] as number) + this.anchor);
    return out;
  }
}

export class FeatureExtractor {
  readonly dims: number;
  private readonly windows: MetricWindow[];
  lastTs: number | null = null;

  constructor(
    readonly metrics: readonly string[],
    readonly window = 24,
    readonly cycles: TimeCycles = { day: true, week: true },
  ) {
    if (!(Number.isInteger(window) && window >= 2 && window <= 10_000))
      throw new Error(`features: bad window ${window}`);
    this.windows = metrics.map(() => new MetricWindow(window));
    this.dims = metrics.length * METRIC_FEATURES.length + TIME_FEATURES.length;
  }

  featureNames(): string[] {
    const names: string[] = [];
    for (const m of this.metrics) for (const f of METRIC_FEATURES) names.push(`${m}.${f}`);
    return names.concat(TIME_FEATURES);
  }

  /** Features of this row given the history, then add the row to the history. values[i] is metrics[i]. */
  next(ts: number, values: ArrayLike<number>, out: Float64Array = new Float64Array(this.dims)): Float64Array {
    this.peek(ts, values, out);
    this.commit(values);
    return out;
  }

  /** Add a row to the history (after peek), e.g. only once it is known not to be anomalous. */
  commit(values: ArrayLike<number>): void {
    for (let m = 0; m < this.windows.length; m++) (this.windows[m] as MetricWindow).push(values[m] as number);
  }

  /** Features of this row given the history, without adding it. */
  peek(ts: number, values: ArrayLike<number>, out: Float64Array = new Float64Array(this.dims)): Float64Array {
    const nf = METRIC_FEATURES.length;
    for (let m = 0; m < this.windows.length; m++) {
      const w = this.windows[m] as MetricWindow;
      const x = values[m] as number;
      const o = m * nf;
      let mean = x;
      let std = 0;
      let min = x;
      let max = x;
      let prev = x;
      if (w.count > 0) {
        mean = w.sum / w.count + w.anchor;
        const v = w.count > 1 ? (w.sumSq - (w.sum * w.sum) / w.count) / (w.count - 1) : 0;
        std = v > 0 ? Math.sqrt(v) : 0;
        min = w.lo + w.anchor;
        max = w.hi + w.anchor;
        prev = (w.buf[(w.pos - 1 + w.buf.length) % w.buf.length] as number) + w.anchor;
      }
      out[o] = x;
      out[o + 1] = mean;
      out[o + 2] = std;
      out[o + 3] = min;
      out[o + 4] = max;
      out[o + 5] = x - prev;
      // Deviation in window std units, floored so a flat window does not give infinities.
      const scale = std > 1e-9 * (Math.abs(mean) + 1) ? std : 1e-9 * (Math.abs(mean) + 1);
      out[o + 6] = w.count > 1 ? Math.max(-1e3, Math.min(1e3, (x - mean) / scale)) : 0;
    }
    const t = this.windows.length * nf;
    const day = ((ts % DAY) + DAY) % DAY;
    const week = (((ts + 4 * DAY) % WEEK) + WEEK) % WEEK; // epoch was a Thursday: 0 = Monday 00:00
    const { day: useDay, week: useWeek } = this.cycles;
    out[t] = useDay ? Math.sin((2 * Math.PI * day) / DAY) : 0;
    out[t + 1] = useDay ? Math.cos((2 * Math.PI * day) / DAY) : 0;
    out[t + 2] = useWeek ? Math.sin((2 * Math.PI * week) / WEEK) : 0;
    out[t + 3] = useWeek ? Math.cos((2 * Math.PI * week) / WEEK) : 0;
    this.lastTs = ts;
    return out;
  }

  toJSON(): FeatureExtractorJSON {
    return {
      window: this.window,
      metrics: [...this.metrics],
      buffers: this.windows.map((w) => w.values()),
      lastTs: this.lastTs,
      cycles: { ...this.cycles },
    };
  }

  static fromJSON(j: FeatureExtractorJSON): FeatureExtractor {
    if (typeof j !== 'object' || j === null || !Array.isArray(j.metrics) || !Array.isArray(j.buffers))
      throw new Error('detector state: features are missing or malformed');
    if (j.buffers.length !== j.metrics.length)
      throw new Error('detector state: feature buffers do not match metrics');
    const c = j.cycles;
    if (
      c !== undefined &&
      (typeof c !== 'object' || c === null || typeof c.day !== 'boolean' || typeof c.week !== 'boolean')
    )
      throw new Error('detector state: feature cycles are malformed');
    const fx = new FeatureExtractor(j.metrics.map(String), j.window, c ?? { day: true, week: true });
    j.buffers.forEach((values, m) => {
      if (
        !Array.isArray(values) ||
        values.length > j.window ||
        values.some((v) => typeof v !== 'number' || !Number.isFinite(v))
      )
        throw new Error('detector state: a feature buffer is corrupt');
      for (const v of values) (fx.windows[m] as MetricWindow).push(v);
    });
    fx.lastTs = typeof j.lastTs === 'number' ? j.lastTs : null;
    return fx;
  }
}
