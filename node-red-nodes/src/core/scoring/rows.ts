/**
 * Rows kept per asset (training and retraining sets) in flat typed arrays instead of an object or
 * array per reading. A fleet keeps thousands of assets × thousands of rows: as small objects they cost
 * ~150 bytes each and made the garbage collector stop the flow for hundreds of milliseconds (the
 * benchmark's p99 latency), as typed arrays they cost 8 bytes a value and nothing to the collector.
 */

/**
 * Rows of a new buffer's first allocation: 64 to 127, different from one buffer to the next. The assets
 * of a fleet started together fill their buffers in step; with one first size for all, every asset's
 * buffers doubled in the same second, and allocating and copying them all at once stopped the flow for
 * hundreds of milliseconds (the benchmark's latency spikes at fixed row counts). Staggered first sizes
 * spread the doublings over the whole interval between them.
 */
let created = 0;
function grownRows(current: number, capacity = Infinity): number {
  if (current > 0) return Math.min(capacity, current * 2);
  created = (created + 37) % 64;
  return Math.min(capacity, 64 + created);
}

/** Fixed-width rows, appended; grows by doubling. */
export class FlatRows {
  private t = new Float64Array(0);
  private v = new Float64Array(0);
  private n = 0;

  constructor(readonly width: number) {}

  get length(): number {
    return this.n;
  }

  push(ts: number, values: ArrayLike<number>): void {
    if (this.n === this.t.length) {
      const cap = grownRows(this.t.length);
      const t = new Float64Array(cap);
      t.set(this.t);
      const v = new Float64Array(cap * this.width);
      v.set(this.v);
      this.t = t;
      this.v = v;
    }
    this.t[this.n] = ts;
    for (let i = 0; i < this.width; i++) this.v[this.n * this.width + i] = values[i] as number;
    this.n++;
  }

  times(): number[] {
    return Array.from(this.t.subarray(0, this.n));
  }

  /** All values, row after row (a copy). */
  flat(): Float64Array {
    return this.v.slice(0, this.n * this.width);
  }

  /** As JSON keeps them: one array per row. */
  toJSON(): { ts: number[]; values: number[][] } {
    const values: number[][] = [];
    for (let r = 0; r < this.n; r++)
      values.push(Array.from(this.v.subarray(r * this.width, (r + 1) * this.width)));
    return { ts: this.times(), values };
  }

  static from(json: { ts: number[]; values: number[][] }, width: number): FlatRows {
    const rows = new FlatRows(width);
    json.ts.forEach((t, i) => rows.push(t, json.values[i] ?? []));
    return rows;
  }
}

/** The last `capacity` fixed-width rows (a ring). */
export class FlatRing {
  private v = new Float64Array(0);
  private n = 0;
  private at = 0;

  constructor(
    readonly width: number,
    readonly capacity: number,
  ) {}

  get length(): number {
    return this.n;
  }

  push(values: ArrayLike<number>): void {
    if (this.capacity <= 0) return;
    if (this.n < this.capacity) {
      if ((this.n + 1) * this.width > this.v.length) {
        const v = new Float64Array(grownRows(this.v.length / this.width, this.capacity) * this.width);
        v.set(this.v);
        this.v = v;
      }
      this.write(this.n, values);
      this.n++;
      return;
    }
    this.write(this.at, values);
    this.at = (this.at + 1) % this.capacity;
  }

  private write(row: number, values: ArrayLike<number>): void {
    for (let i = 0; i < this.width; i++) this.v[row * this.width + i] = values[i] as number;
  }

  /** The rows, oldest first (views into one copy). */
  rows(): Float64Array[] {
    const copy = this.v.slice(0, this.n * this.width);
    const out: Float64Array[] = [];
    for (let k = 0; k < this.n; k++) {
      const r = (this.at + k) % this.n;
      out.push(copy.subarray(r * this.width, (r + 1) * this.width));
    }
    return out;
  }
}

/** The last `capacity` readings' metrics, by name (a reading may carry a subset; new names widen it). */
export class MetricRing {
  private names: string[] = [];
  private readonly column = new Map<string, number>();
  private t = new Float64Array(0);
  /** rows × names.length, NaN where a reading had no value for that metric. */
  private v = new Float64Array(0);
  private n = 0;
  private at = 0;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.n;
  }

  push(ts: number, metrics: Readonly<Record<string, number>>): void {
    if (this.capacity <= 0) return;
    for (const name in metrics) if (!this.column.has(name)) this.widen(name);
    let row: number;
    if (this.n < this.capacity) {
      if (this.n === this.t.length) this.grow(grownRows(this.t.length, this.capacity));
      row = this.n++;
    } else {
      row = this.at;
      this.at = (this.at + 1) % this.capacity;
    }
    const w = this.names.length;
    this.t[row] = ts;
    this.v.fill(NaN, row * w, (row + 1) * w);
    for (const name in metrics) this.v[row * w + (this.column.get(name) as number)] = metrics[name] as number;
  }

  /** The readings, oldest first. */
  rows(): { ts: number; metrics: Record<string, number> }[] {
    const w = this.names.length;
    const out: { ts: number; metrics: Record<string, number> }[] = [];
    for (let k = 0; k < this.n; k++) {
      const r = (this.at + k) % this.n;
      const metrics: Record<string, number> = {};
      for (let c = 0; c < w; c++) {
        const x = this.v[r * w + c] as number;
        if (!Number.isNaN(x)) metrics[this.names[c] as string] = x;
      }
      out.push({ ts: this.t[r] as number, metrics });
    }
    return out;
  }

  private grow(rows: number): void {
    const t = new Float64Array(rows);
    t.set(this.t);
    const v = new Float64Array(rows * this.names.length).fill(NaN);
    v.set(this.v);
    this.t = t;
    this.v = v;
  }

  private widen(name: string): void {
    const w = this.names.length;
    const rows = this.t.length;
    const v = new Float64Array(rows * (w + 1)).fill(NaN);
    for (let r = 0; r < rows; r++) v.set(this.v.subarray(r * w, (r + 1) * w), r * (w + 1));
    this.v = v;
    this.column.set(name, w);
    this.names.push(name);
  }
}
