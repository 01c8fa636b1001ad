/** Small numeric helpers shared by the learned detectors (pure). */

const EULER_GAMMA = 0.5772156649015329;

/** Harmonic number H(i), exact for small i, asymptotic beyond. */
export function harmonic(i: number): number {
  if (i <= 0) return 0;
  if (i < 50) {
    let h = 0;
    for (let k = 1; k <= i; k++) h += 1 / k;
    return h;
  }
  return Math.log(i) + EULER_GAMMA + 1 / (2 * i) - 1 / (12 * i * i);
}

/**
 * Average path length of an unsuccessful BST search among n points (Liu et al. 2008):
 * c(n) = 2 H(n-1) - 2 (n-1)/n, with c(1) = 0 and c(2) = 1.
 */
export function averagePathLength(n: number): number {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2 * harmonic(n - 1) - (2 * (n - 1)) / n;
}

/** Quantile (linear interpolation) of an already sorted array. */
export function sortedQuantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = Math.min(Math.max(q, 0), 1) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

export function median(values: ArrayLike<number>): number {
  const s = Float64Array.from(values).sort();
  return sortedQuantile(s, 0.5);
}

/** Typed array <-> base64 (little-endian, as the platforms we run on). */
export function toBase64(a: Float32Array | Float64Array | Uint16Array | Uint8Array | Int16Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

function bytes(b64: unknown, what: string, unit: number): Buffer {
  if (typeof b64 !== 'string') throw new Error(`detector state: ${what} is not a base64 string`);
  const buf = Buffer.from(b64, 'base64');
  if (buf.length % unit !== 0) throw new Error(`detector state: ${what} has a truncated length`);
  // Copy into an aligned buffer: typed arrays need offsets that are multiples of their element size.
  const out = Buffer.alloc(buf.length);
  buf.copy(out);
  return out;
}

export function f32FromBase64(b64: unknown, what: string): Float32Array {
  const b = bytes(b64, what, 4);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}
export function f64FromBase64(b64: unknown, what: string): Float64Array {
  const b = bytes(b64, what, 8);
  return new Float64Array(b.buffer, b.byteOffset, b.length / 8);
}
export function u16FromBase64(b64: unknown, what: string): Uint16Array {
  const b = bytes(b64, what, 2);
  return new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
}
export function u8FromBase64(b64: unknown, what: string): Uint8Array {
  const b = bytes(b64, what, 1);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}
