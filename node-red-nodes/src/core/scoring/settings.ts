/**
 * The Scorer options evtwin-score runs with, from its settings once parsed: one definition for the node
 * and for the tools that must score exactly as it does (bench:fleet-memory).
 */
import type { AssetIndex } from '../assetModel';
import { createLearnedDetector, restoreLearnedDetector, type LearnedDetectorOptions } from './learned';
import { validateRuleOverrides } from './rules';
import { learnedMetricsFor, type ScorerOptions } from './scorer';

export interface ScoreSettings {
  /** Rule overrides as parsed JSON ({} for none); validated here. */
  rules: unknown;
  /** Minutes before an open event is reported again. */
  repeatMin: number;
  /** Rules plus the learned detector (false: rules only). */
  learned: boolean;
  /** Keep each asset's recent readings to retrain from on drift (only with learned). */
  retrain: boolean;
  /** Readings an asset's detector trains on. */
  trainRows: number;
  assets?: AssetIndex;
}

/** Readings kept per asset to retrain from. */
export const RETRAIN_HISTORY = 2000;

/** What the learned detector of an asset of `kind` trains with (its metrics by kind, when known). */
export function learnedOptionsFor(kind: string, trainRows: number): LearnedDetectorOptions {
  const metrics = learnedMetricsFor(kind);
  return metrics ? { trainRows, metrics } : { trainRows };
}

export function scorerOptionsFor(s: ScoreSettings): ScorerOptions {
  const opts: ScorerOptions = {
    rules: validateRuleOverrides(s.rules),
    events: { repeatMs: s.repeatMin * 60_000, clearMs: 2 * 60_000 },
    history: s.learned && s.retrain ? RETRAIN_HISTORY : 0,
  };
  if (s.assets) opts.assets = s.assets;
  if (s.learned)
    opts.detector = {
      create: (info) => createLearnedDetector(learnedOptionsFor(info.kind, s.trainRows)),
      restore: (state) => restoreLearnedDetector(state),
    };
  return opts;
}
