/**
 * Multivariate residual detector: Mahalanobis distance of standardised features under a shrunk
 * covariance, (1 - lambda) R + lambda I, so collinear or short training sets still give a positive
 * definite matrix. Scoring is one forward substitution with the packed Cholesky factor (d^2/2).
 */
import { f32FromBase64, f64FromBase64, toBase64 } from './stats';

const SCALE_FLOOR = 2e-3;

export interface ResidualJSON {
  dims: number;
  shrinkage: number;
  mean: string;
  scale: string;
  /** Packed lower-triangular Cholesky factor of the shrunk correlation matrix, row by row. */
  chol: string;
}

export class MahalanobisModel {
  private readonly w: Float64Array;
  private constructor(
    readonly dims: number,
    readonly shrinkage: number,
    private readonly mean: Float64Array,
    private readonly scale: Float64Array,
    private readonly chol: Float32Array,
  ) {
    this.w = new Float64Array(dims);
  }

  static fit(rows: readonly ArrayLike<number>[], shrinkage = 0.1): MahalanobisModel {
    return MahalanobisModel.fitPrefix(rows, rows.length, shrinkage)[1];
  }

  /**
   * Models of rows[0..prefix) and of all rows from one pass of moment sums (taken about the first row,
   * which keeps the sums free of cancellation when levels are large against their spread).
   */
  static fitPrefix(
    rows: readonly ArrayLike<number>[],
    prefix: number,
    shrinkage = 0.1,
  ): [MahalanobisModel, MahalanobisModel] {
    const n = rows.length;
    if (n < 2 || prefix < 2) throw new Error('residual model: need at least 2 rows');
    const d = (rows[0] as ArrayLike<number>).length;
    const pilot = Float64Array.from(rows[0] as ArrayLike<number>);
    const s1 = new Float64Array(d);
    const s2 = new Float64Array((d * (d + 1)) / 2);
    const z = new Float64Array(d);
    let head: MahalanobisModel | null = null;
    for (let i = 0; i < n; i++) {
      const r = rows[i] as ArrayLike<number>;
      for (let j = 0; j < d; j++) {
        const v = (r[j] as number) - (pilot[j] as number);
        z[j] = v;
        s1[j] = (s1[j] as number) + v;
      }
      let p = 0;
      for (let j = 0; j < d; j++) {
        const zj = z[j] as number;
        if (zj === 0) {
          p += j + 1;
          continue;
        }
        for (let k = 0; k <= j; k++) s2[p + k] = (s2[p + k] as number) + zj * (z[k] as number);
        p += j + 1;
      }
      if (i + 1 === prefix) head = MahalanobisModel.fromMoments(i + 1, pilot, s1, s2, shrinkage);
    }
    const all = MahalanobisModel.fromMoments(n, pilot, s1, s2, shrinkage);
    return [head ?? all, all];
  }

  private static fromMoments(
    n: number,
    pilot: Float64Array,
    s1: Float64Array,
    s2: Float64Array,
    shrinkage: number,
  ): MahalanobisModel {
    const d = pilot.length;
    const mean = new Float64Array(d);
    const scale = new Float64Array(d);
    const cov = (j: number, k: number): number =>
      ((s2[(j * (j + 1)) / 2 + k] as number) - ((s1[j] as number) * (s1[k] as number)) / n) / (n - 1);
    for (let j = 0; j < d; j++) {
      mean[j] = (pilot[j] as number) + (s1[j] as number) / n;
      const sd = Math.sqrt(Math.max(cov(j, j), 0));
      // Floor at a small share of the level: sensors report with finite resolution (the same network
      // logged with 8 decimals one year and 2 the next), and rounding must not look like an attack.
      scale[j] = Math.max(sd, SCALE_FLOOR * Math.abs(mean[j] as number), 1e-6);
    }
    // Shrunk correlation matrix, then in-place Cholesky (packed lower triangle).
    const a = new Float64Array((d * (d + 1)) / 2);
    for (let j = 0; j < d; j++)
      for (let k = 0; k <= j; k++) {
        const c = cov(j, k) / ((scale[j] as number) * (scale[k] as number));
        a[(j * (j + 1)) / 2 + k] = (1 - shrinkage) * c + (j === k ? shrinkage : 0);
      }
    for (let j = 0; j < d; j++) {
      const rj = (j * (j + 1)) / 2;
      let s = a[rj + j] as number;
      for (let k = 0; k < j; k++) s -= (a[rj + k] as number) ** 2;
      const ljj = Math.sqrt(Math.max(s, 1e-9));
      a[rj + j] = ljj;
      for (let i = j + 1; i < d; i++) {
        const ri = (i * (i + 1)) / 2;
        let t = a[ri + j] as number;
        for (let k = 0; k < j; k++) t -= (a[ri + k] as number) * (a[rj + k] as number);
        a[ri + j] = t / ljj;
      }
    }
    return new MahalanobisModel(d, shrinkage, mean, scale, Float32Array.from(a));
  }

  /** Squared Mahalanobis distance of x. */
  distance2(x: ArrayLike<number>): number {
    const { dims: d, mean, scale, chol, w } = this;
    let p = 0;
    let sum = 0;
    for (let i = 0; i < d; i++) {
      let t = ((x[i] as number) - (mean[i] as number)) / (scale[i] as number);
      for (let k = 0; k < i; k++) t -= (chol[p++] as number) * (w[k] as number);
      const v = t / (chol[p++] as number);
      w[i] = v;
      sum += v * v;
    }
    return sum;
  }

  /**
   * Share of distance2 per feature: z_j (R^-1 z)_j (sums to distance2), computed only when asked.
   * Negative shares (a feature that makes x look more normal) are clipped to 0.
   */
  featureShares(x: ArrayLike<number>): Float64Array {
    const { dims: d, mean, scale, chol } = this;
    this.distance2(x);
    const v = Float64Array.from(this.w);
    // Back substitution: L^T u = w, so u = R^-1 z.
    for (let i = d - 1; i >= 0; i--) {
      let t = v[i] as number;
      for (let k = i + 1; k < d; k++) t -= (chol[(k * (k + 1)) / 2 + i] as number) * (v[k] as number);
      v[i] = t / (chol[(i * (i + 1)) / 2 + i] as number);
    }
    for (let i = 0; i < d; i++) {
      const z = ((x[i] as number) - (mean[i] as number)) / (scale[i] as number);
      v[i] = Math.max(0, z * (v[i] as number));
    }
    return v;
  }

  toJSON(): ResidualJSON {
    return {
      dims: this.dims,
      shrinkage: this.shrinkage,
      mean: toBase64(this.mean),
      scale: toBase64(this.scale),
      chol: toBase64(this.chol),
    };
  }

  static fromJSON(j: ResidualJSON): MahalanobisModel {
    if (typeof j !== 'object' || j === null || !Number.isInteger(j.dims) || j.dims < 1)
      throw new Error('detector state: residual model missing');
    const d = j.dims;
    const mean = f64FromBase64(j.mean, 'residual.mean');
    const scale = f64FromBase64(j.scale, 'residual.scale');
    const chol = f32FromBase64(j.chol, 'residual.chol');
    if (mean.length !== d || scale.length !== d || chol.length !== (d * (d + 1)) / 2)
      throw new Error('detector state: residual arrays do not match');
    for (let i = 0; i < d; i++)
      if (
        !((scale[i] as number) > 0) ||
        !((chol[(i * (i + 3)) / 2] as number) > 0) ||
        !Number.isFinite(mean[i] as number)
      )
        throw new Error('detector state: residual model is corrupt');
    return new MahalanobisModel(d, j.shrinkage, mean, scale, chol);
  }
}
