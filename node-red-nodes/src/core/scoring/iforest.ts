/**
 * Isolation forest (Liu, Ting, Zhou 2008), written for streaming use: seeded, subsampled (psi rows per
 * tree), height-limited to ceil(log2 psi), stored as flat typed arrays so it serialises compactly and
 * scores one row without allocating.
 */
import { SeededRandom } from './prng';
import { averagePathLength, f32FromBase64, toBase64, u16FromBase64 } from './stats';

const LEAF = 0xffff;
/** The leaf mark of a forest whose feature indexes fit in a byte (dims < 255: all but very wide rows). */
const LEAF8 = 0xff;

export interface IForestOptions {
  trees?: number;
  /** Subsample size per tree (psi). */
  sampleSize?: number;
  seed?: number;
}

export interface IForestJSON {
  dims: number;
  trees: number;
  sampleSize: number;
  /** Per node: split feature, or 0xffff for a leaf. */
  feature: string;
  /** Per node: split value, or for a leaf the path length depth + c(size). */
  value: string;
  /** Per node: index of the right child inside its tree (left child is the next node). */
  right: string;
  /** Start of each tree (node index); Uint16 pairs would overflow, so stored as float32 exact ints. */
  offsets: string;
}

export class IsolationForest {
  /**
   * Per node: split feature, or `leaf`. One byte a node when the features fit (a fleet keeps a forest
   * per asset, ~15k nodes each: 15 KB an asset); the saved form keeps 16 bits and 0xffff.
   */
  private readonly feature: Uint8Array | Uint16Array;
  private readonly leaf: number;

  private constructor(
    readonly dims: number,
    readonly sampleSize: number,
    feature: Uint16Array,
    private readonly value: Float32Array,
    private readonly right: Uint16Array,
    private readonly offsets: Float32Array,
    private readonly cn: number,
  ) {
    if (dims < LEAF8) {
      const narrow = new Uint8Array(feature.length);
      for (let i = 0; i < feature.length; i++) {
        const f = feature[i] as number;
        narrow[i] = f === LEAF ? LEAF8 : f;
      }
      this.feature = narrow;
      this.leaf = LEAF8;
    } else {
      this.feature = feature;
      this.leaf = LEAF;
    }
  }

  get trees(): number {
    return this.offsets.length;
  }
  get nodes(): number {
    return this.feature.length;
  }

  /** Fit on rows (each of length dims). Deterministic for a given seed. */
  static fit(rows: readonly ArrayLike<number>[], options: IForestOptions = {}): IsolationForest {
    const n = rows.length;
    if (n < 2) throw new Error('isolation forest: need at least 2 rows');
    const dims = (rows[0] as ArrayLike<number>).length;
    if (dims < 1 || dims >= LEAF) throw new Error(`isolation forest: bad dimension ${dims}`);
    const trees = options.trees ?? 100;
    const psi = Math.min(options.sampleSize ?? 256, n);
    const maxDepth = Math.ceil(Math.log2(Math.max(psi, 2)));
    const rng = new SeededRandom(options.seed ?? 1);
    const feature: number[] = [];
    const value: number[] = [];
    const right: number[] = [];
    const offsets = new Float32Array(trees);
    const idx = new Int32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    const sample = new Int32Array(psi);
    // Values of the split feature beside sample[]: the partition reads them here, not from the rows again.
    const vals = new Float64Array(psi);
    const pushLeaf = (depth: number, size: number): void => {
      feature.push(LEAF);
      value.push(depth + averagePathLength(size));
      right.push(0);
    };
    for (let t = 0; t < trees; t++) {
      // Partial Fisher-Yates: psi rows without replacement.
      for (let i = 0; i < psi; i++) {
        const j = i + rng.int(n - i);
        const pick = idx[j] as number;
        idx[j] = idx[i] as number;
        idx[i] = pick;
        sample[i] = pick;
      }
      const base = feature.length;
      offsets[t] = base;
      const build = (lo: number, hi: number, depth: number): void => {
        const me = feature.length;
        const size = hi - lo;
        // A node of 2 rows is a leaf: splitting it gives each row depth + 1, exactly depth + c(2).
        if (depth >= maxDepth || size <= 2) return pushLeaf(depth, size);
        // Pick a random feature that is not constant in this node.
        let f = -1;
        let min = 0;
        let max = 0;
        for (let attempt = 0; attempt < Math.min(dims, 8) && f < 0; attempt++) {
          const cand = attempt < 4 ? rng.int(dims) : (rng.int(dims) + attempt) % dims;
          min = Infinity;
          max = -Infinity;
          for (let i = lo; i < hi; i++) {
            const v = (rows[sample[i] as number] as ArrayLike<number>)[cand] as number;
            vals[i] = v;
            if (v < min) min = v;
            if (v > max) max = v;
          }
          if (max > min) f = cand;
        }
        if (f < 0) return pushLeaf(depth, size);
        let split = Math.fround(min + rng.next() * (max - min));
        if (split <= min) split = Math.fround(min + (max - min) / 2);
        // Partition sample[lo..hi) in place: < split to the left.
        let i = lo;
        let j = hi - 1;
        while (i <= j) {
          if ((vals[i] as number) < split) i++;
          else {
            const tmp = sample[i] as number;
            sample[i] = sample[j] as number;
            sample[j] = tmp;
            const tv = vals[i] as number;
            vals[i] = vals[j] as number;
            vals[j] = tv;
            j--;
          }
        }
        if (i === lo || i === hi) return pushLeaf(depth, size);
        feature.push(f);
        value.push(split);
        right.push(0);
        build(lo, i, depth + 1);
        right[me] = feature.length - base;
        build(i, hi, depth + 1);
      };
      build(0, psi, 0);
      if (feature.length - base > LEAF) throw new Error('isolation forest: tree too large');
    }
    return new IsolationForest(
      dims,
      psi,
      Uint16Array.from(feature),
      Float32Array.from(value),
      Uint16Array.from(right),
      offsets,
      averagePathLength(psi),
    );
  }

  /** Mean path length of x over the trees. */
  pathLength(x: ArrayLike<number>): number {
    const { feature, value, right, offsets, leaf } = this;
    let sum = 0;
    for (let t = 0; t < offsets.length; t++) {
      const base = offsets[t] as number;
      let i = base;
      let f = feature[i] as number;
      while (f !== leaf) {
        i = (x[f] as number) < (value[i] as number) ? i + 1 : base + (right[i] as number);
        f = feature[i] as number;
      }
      sum += value[i] as number;
    }
    return sum / offsets.length;
  }

  /** Anomaly score s(x, psi) = 2^(-E[h(x)] / c(psi)), in (0, 1]; ~0.5 is ordinary, near 1 isolated. */
  score(x: ArrayLike<number>): number {
    return Math.pow(2, -this.pathLength(x) / this.cn);
  }

  toJSON(): IForestJSON {
    return {
      dims: this.dims,
      trees: this.trees,
      sampleSize: this.sampleSize,
      feature: toBase64(
        this.leaf === LEAF ? this.feature : Uint16Array.from(this.feature, (f) => (f === LEAF8 ? LEAF : f)),
      ),
      value: toBase64(this.value),
      right: toBase64(this.right),
      offsets: toBase64(this.offsets),
    };
  }

  static fromJSON(j: IForestJSON): IsolationForest {
    if (typeof j !== 'object' || j === null) throw new Error('detector state: forest missing');
    const feature = u16FromBase64(j.feature, 'forest.feature');
    const value = f32FromBase64(j.value, 'forest.value');
    const right = u16FromBase64(j.right, 'forest.right');
    const offsets = f32FromBase64(j.offsets, 'forest.offsets');
    const n = feature.length;
    if (value.length !== n || right.length !== n || offsets.length !== j.trees || j.trees < 1)
      throw new Error('detector state: forest arrays do not match');
    if (!Number.isInteger(j.dims) || !Number.isInteger(j.sampleSize) || j.sampleSize < 2)
      throw new Error('detector state: forest header is invalid');
    // Validate every link so a corrupt state cannot send scoring out of bounds or into a loop.
    for (let t = 0; t < offsets.length; t++) {
      const base = offsets[t] as number;
      const end = t + 1 < offsets.length ? (offsets[t + 1] as number) : n;
      if (!(base >= 0 && end <= n && base < end))
        throw new Error('detector state: forest offsets are corrupt');
      for (let i = base; i < end; i++) {
        const f = feature[i] as number;
        if (f === LEAF) {
          if (!Number.isFinite(value[i] as number)) throw new Error('detector state: forest leaf is corrupt');
          continue;
        }
        const r = base + (right[i] as number);
        if (f >= j.dims || r <= i + 1 || r >= end) throw new Error('detector state: forest node is corrupt');
      }
    }
    return new IsolationForest(
      j.dims,
      j.sampleSize,
      feature,
      value,
      right,
      offsets,
      averagePathLength(j.sampleSize),
    );
  }
}
