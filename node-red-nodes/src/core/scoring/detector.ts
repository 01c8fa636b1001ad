/**
 * The contract between the learned anomaly detector (features, isolation forest, residual model,
 * adaptive threshold) and what uses it: the per-asset scorer of evtwin-score and the eval command.
 * One implementation lives beside this file; both callers go through this interface.
 */
export interface DetectorContribution {
  metric: string;
  /** Share of the anomaly attributed to this metric, 0..1. */
  weight: number;
}

export interface DetectorOutput {
  /** Anomaly score in [0, 1]; comparable across assets. */
  score: number;
  /** score crossed the adaptive threshold. */
  anomaly: boolean;
  threshold: number;
  /** false while the detector is still collecting its training window (score is 0 then). */
  ready: boolean;
  /** Metrics that explain the score most, largest first. */
  contributions: DetectorContribution[];
  /** Why a row was not scored (missing metrics, NaN, out-of-order ts), if it was not. */
  skipped?: string;
}

/** Serialisable state: a versioned plain JSON object (models persist across restarts). */
export interface DetectorState {
  format: 'evtwin-detector';
  version: number;
  [key: string]: unknown;
}

export interface AnomalyDetector {
  /** Score one row causally (uses only this and earlier rows) and learn from it. */
  update(ts: number, metrics: Readonly<Record<string, number>>): DetectorOutput;
  readonly ready: boolean;
  toJSON(): DetectorState;
}
