/** Point-wise detection metrics, NAB scoring and the BATADAL S score (pure). */

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export const emptyConfusion = (): Confusion => ({ tp: 0, fp: 0, tn: 0, fn: 0 });

export function addConfusion(a: Confusion, b: Confusion): Confusion {
  return { tp: a.tp + b.tp, fp: a.fp + b.fp, tn: a.tn + b.tn, fn: a.fn + b.fn };
}

export function confusion(labels: ArrayLike<number>, flags: ArrayLike<boolean>, from = 0): Confusion {
  const c = emptyConfusion();
  for (let i = from; i < labels.length; i++) {
    const y = labels[i] === 1;
    const p = flags[i] === true;
    if (y && p) c.tp++;
    else if (y) c.fn++;
    else if (p) c.fp++;
    else c.tn++;
  }
  return c;
}

export interface PointMetrics {
  f1: number;
  precision: number;
  recall: number;
  /** False alarm rate FP / (FP + TN). */
  far: number;
  /** Missed alarm rate FN / (FN + TP). */
  mar: number;
}

const ratio = (a: number, b: number): number => (b > 0 ? a / b : 0);

export function pointMetrics(c: Confusion): PointMetrics {
  const precision = ratio(c.tp, c.tp + c.fp);
  const recall = ratio(c.tp, c.tp + c.fn);
  return {
    f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0,
    precision,
    recall,
    far: ratio(c.fp, c.fp + c.tn),
    mar: ratio(c.fn, c.fn + c.tp),
  };
}

/** Contiguous runs of label 1: [start, end] inclusive row indices. */
export function labelRuns(labels: ArrayLike<number>): [number, number][] {
  const runs: [number, number][] = [];
  let start = -1;
  for (let i = 0; i <= labels.length; i++) {
    const on = i < labels.length && labels[i] === 1;
    if (on && start < 0) start = i;
    if (!on && start >= 0) {
      runs.push([start, i - 1]);
      start = -1;
    }
  }
  return runs;
}

export interface BatadalScore {
  s: number;
  sTtd: number;
  sClf: number;
  tpr: number;
  tnr: number;
  attacks: number;
  detected: number;
}

/**
 * BATADAL (Taormina et al. 2018): S = 0.5 S_TTD + 0.5 S_CLF with S_TTD = 1 - mean(TTD / duration) over
 * attacks (an undetected attack has TTD = its duration) and S_CLF = (TPR + TNR) / 2.
 */
export function batadalScore(labels: ArrayLike<number>, flags: ArrayLike<boolean>): BatadalScore {
  const runs = labelRuns(labels);
  let sum = 0;
  let detected = 0;
  for (const [a, b] of runs) {
    const duration = b - a + 1;
    let ttd = duration;
    for (let i = a; i <= b; i++)
      if (flags[i]) {
        ttd = i - a;
        detected++;
        break;
      }
    sum += ttd / duration;
  }
  const c = confusion(labels, flags);
  const tpr = ratio(c.tp, c.tp + c.fn);
  const tnr = ratio(c.tn, c.tn + c.fp);
  const sTtd = runs.length ? 1 - sum / runs.length : 0;
  const sClf = (tpr + tnr) / 2;
  return { s: 0.5 * sTtd + 0.5 * sClf, sTtd, sClf, tpr, tnr, attacks: runs.length, detected };
}
