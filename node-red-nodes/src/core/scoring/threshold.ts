/**
 * Adaptive threshold: turns a raw detector score into a tail level L = -log10 P(S >= s), from the
 * empirical distribution of held-out training scores below a high quantile u, and an exponential
 * (peaks-over-threshold) tail above u whose rate and scale keep learning from rows that are not
 * flagged (streaming POT with slow forgetting). One level then means the same rarity for every
 * detector, asset and file.
 */
import { sortedQuantile } from './stats';

export interface TailJSON {
  grid: number[];
  u: number;
  /** Exponentially forgotten counts: rows seen, exceedances over u, and their summed excess. */
  n: number;
  nt: number;
  excess: number;
}

const GRID = 20;
const TAIL = 0.1;

export class TailCalibrator {
  private constructor(
    private readonly grid: Float64Array,
    private readonly u: number,
    private n: number,
    private nt: number,
    private excess: number,
    private readonly forget: number,
  ) {}

  /** From held-out scores. horizon: rows after which an old observation weighs 1/e. */
  static fit(scores: ArrayLike<number>, horizon = 5000): TailCalibrator {
    const s = Float64Array.from(scores).sort();
    if (s.length < 5) throw new Error('threshold: need at least 5 calibration scores');
    const grid = new Float64Array(GRID + 1);
    for (let i = 0; i <= GRID; i++) grid[i] = sortedQuantile(s, (i / GRID) * (1 - TAIL));
    const u = grid[GRID] as number;
    let nt = 0;
    let excess = 0;
    for (const v of s)
      if (v > u) {
        nt++;
        excess += v - u;
      }
    // Never a zero-width tail: at least one pseudo exceedance with a scale of the body's spread.
    const spread = Math.max(u - (grid[0] as number), 1e-12);
    if (nt === 0 || excess <= 0) {
      nt = Math.max(nt, 1);
      excess = Math.max(excess, 0.1 * spread);
    }
    return new TailCalibrator(grid, u, s.length, nt, excess, 1 / horizon);
  }

  /** -log10 of the tail probability of s. */
  level(s: number): number {
    const { grid, u } = this;
    if (s > u) {
      const pu = Math.max(this.nt / this.n, 1e-9);
      const beta = Math.max(this.excess / this.nt, 1e-12);
      return -Math.log10(pu) + (s - u) / (beta * Math.LN10);
    }
    if (s <= (grid[0] as number)) return 0;
    let i = 1;
    while (i < GRID && (grid[i] as number) < s) i++;
    const a = grid[i - 1] as number;
    const b = grid[i] as number;
    const f = ((i - 1 + (b > a ? (s - a) / (b - a) : 1)) / GRID) * (1 - TAIL);
    return -Math.log10(1 - f);
  }

  /** Learn from a row that was not flagged (flagged rows would teach the threshold to accept attacks). */
  observe(s: number): void {
    const keep = 1 - this.forget;
    this.n = this.n * keep + 1;
    this.nt *= keep;
    this.excess *= keep;
    if (s > this.u) {
      this.nt += 1;
      this.excess += s - this.u;
    }
  }

  toJSON(): TailJSON {
    return { grid: Array.from(this.grid), u: this.u, n: this.n, nt: this.nt, excess: this.excess };
  }

  static fromJSON(j: TailJSON, horizon = 5000): TailCalibrator {
    if (
      typeof j !== 'object' ||
      j === null ||
      !Array.isArray(j.grid) ||
      j.grid.length !== GRID + 1 ||
      ![j.u, j.n, j.nt, j.excess, ...j.grid].every((v) => typeof v === 'number' && Number.isFinite(v)) ||
      !(j.n > 0 && j.nt > 0 && j.excess > 0)
    )
      throw new Error('detector state: threshold calibration is corrupt');
    return new TailCalibrator(Float64Array.from(j.grid), j.u, j.n, j.nt, j.excess, 1 / horizon);
  }
}
