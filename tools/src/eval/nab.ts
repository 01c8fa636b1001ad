/**
 * NAB scoring, written from the logic of numenta/NAB's sweeper: rows in a labelled window earn a
 * scaled sigmoid of their position (only the best, i.e. earliest, detection per window counts), windows
 * with no detection cost fnWeight, detections outside windows cost fpWeight times a sigmoid of their
 * distance after the previous window (-1 before any window), rows in the probation period are not
 * scored, and corpus scores are normalised so the null detector is 0 and the perfect one 100.
 */
import { readFileSync } from 'node:fs';

export interface NabProfile {
  tpWeight: number;
  fpWeight: number;
  fnWeight: number;
}

/** NAB's config/profiles.json. */
export const NAB_PROFILES: Record<'standard' | 'reward_low_FP_rate' | 'reward_low_FN_rate', NabProfile> = {
  standard: { tpWeight: 1, fpWeight: 0.11, fnWeight: 1 },
  reward_low_FP_rate: { tpWeight: 1, fpWeight: 0.22, fnWeight: 1 },
  reward_low_FN_rate: { tpWeight: 1, fpWeight: 0.11, fnWeight: 2 },
};
export type NabProfileName = keyof typeof NAB_PROFILES;

export function scaledSigmoid(x: number): number {
  if (x >= 3) return -1;
  return 2 / (1 + Math.exp(5 * x)) - 1;
}

/** NAB: min(floor(0.15 n), 0.15 * 5000). */
export function probationLength(n: number): number {
  return Math.min(Math.floor(0.15 * n), 750);
}

/** Windows as inclusive row-index ranges, from timestamp limits (rows whose ts lies in [start, end]). */
export function windowsToIndices(ts: ArrayLike<number>, limits: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [a, b] of limits) {
    let first = -1;
    let last = -1;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i] as number;
      if (t >= a && t <= b) {
        if (first < 0) first = i;
        last = i;
      }
    }
    if (first >= 0) out.push([first, last]);
  }
  return out;
}

export interface NabFileScore {
  score: number;
  tp: number;
  fp: number;
  fn: number;
  windows: number;
}

/** Raw NAB score of binary detections for one file. */
export function nabScoreFile(
  n: number,
  windows: [number, number][],
  detections: ArrayLike<boolean>,
  profile: NabProfile,
  probation = probationLength(n),
): NabFileScore {
  const maxTp = scaledSigmoid(-1);
  const best = new Map<number, number>(); // window -> best weighted score
  let fpScore = 0;
  let fp = 0;
  let w = 0; // next window
  let cur = -1;
  let prevRight = -1;
  let prevWidth = 0;
  const scorable = new Set<number>();
  for (let i = 0; i < n; i++) {
    if (cur < 0 && w < windows.length && i === (windows[w] as [number, number])[0]) cur = w++;
    let weighted: number;
    if (cur >= 0) {
      const [a, b] = windows[cur] as [number, number];
      const width = b - a + 1;
      weighted = (scaledSigmoid(-(b - i + 1) / width) * profile.tpWeight) / maxTp;
    } else {
      const pos = prevRight < 0 ? 3 : Math.abs(prevRight - i) / (prevWidth - 1);
      weighted = scaledSigmoid(pos) * profile.fpWeight;
    }
    if (i >= probation) {
      if (cur >= 0) scorable.add(cur);
      if (detections[i]) {
        if (cur >= 0) best.set(cur, Math.max(best.get(cur) ?? -Infinity, weighted));
        else {
          fpScore += weighted;
          fp++;
        }
      }
    }
    if (cur >= 0 && i === (windows[cur] as [number, number])[1]) {
      prevRight = i;
      prevWidth = i - (windows[cur] as [number, number])[0] + 1;
      cur = -1;
    }
  }
  let score = fpScore;
  let tp = 0;
  let fn = 0;
  for (const k of scorable) {
    const b = best.get(k);
    if (b === undefined) {
      score -= profile.fnWeight;
      fn++;
    } else {
      // NAB starts each window at -fnWeight and keeps the max, so a (never negative) TP replaces it.
      score += Math.max(-profile.fnWeight, b);
      tp++;
    }
  }
  return { score, tp, fp, fn, windows: scorable.size };
}

/** Detections of NAB's reference detectors: null never fires, perfect fires on each window's first scorable row. */
export function perfectDetections(
  n: number,
  windows: [number, number][],
  probation = probationLength(n),
): boolean[] {
  const d = new Array<boolean>(n).fill(false);
  for (const [a, b] of windows) if (b >= probation) d[Math.max(a, probation)] = true;
  return d;
}

/** 100 * (raw - null) / (perfect - null), summed over the files. */
export function normalise(raw: number, nullScore: number, perfect: number): number {
  return perfect === nullScore ? 0 : (100 * (raw - nullScore)) / (perfect - nullScore);
}

/** NAB's labels/combined_windows.json: relative path -> [[start, end], ...] as 'YYYY-MM-DD HH:MM:SS.ffffff'. */
export function loadWindows(path: string): Record<string, [number, number][]> {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, [string, string][]>;
  const out: Record<string, [number, number][]> = {};
  for (const [k, v] of Object.entries(raw))
    out[k] = v.map(([a, b]) => [
      Date.parse(a.slice(0, 19).replace(' ', 'T') + 'Z'),
      Date.parse(b.slice(0, 19).replace(' ', 'T') + 'Z'),
    ]);
  return out;
}
