/**
 * The per-asset streaming scorer (pure): one reading in, an explained score out. Each asset has its
 * own rule state, health state and (when a factory is given) its own learned detector, trained from
 * its first readings and replaceable by a retrained one. Bad input is skipped with a reason before it
 * touches any state, so it can never poison a model.
 */
import type { AssetIndex, MetricBounds } from '../assetModel';
import { METRICS_BY_KIND, isAssetKind } from '../kinds';
import type { Reading } from '../reading';
import type { AnomalyDetector, DetectorContribution, DetectorOutput, DetectorState } from './detector';
import { DEFAULT_EVENT_GATE, EventGate, type EventGateOptions } from './events';
import { excursions, isHealthState, newHealthState, updateHealth, type HealthState } from './health';
import { failureRisk } from './risk';
import { MetricRing } from './rows';
import {
  evaluateRules,
  isRuleState,
  levelOf,
  newRuleState,
  rulesFor,
  type Flag,
  type LineSignals,
  type RuleConfig,
  type RuleOverrides,
  type RuleState,
} from './rules';

export interface AssetInfo {
  site: string;
  line?: string;
  asset: string;
  kind: string;
}

/** How the scorer makes and restores learned detectors (core/scoring/learned.ts, or none: rules only). */
export interface DetectorFactory {
  create(info: AssetInfo): AnomalyDetector;
  /** Throws when the state is corrupt or of another version. */
  restore(state: DetectorState, info: AssetInfo): AnomalyDetector;
}

export interface DriftOptions {
  /** Share of readings the learned detector calls anomalous (EW over ~500 readings) that means drift. */
  rate: number;
  /** Readings after (re)training before drift is judged. */
  minReadings: number;
}

export interface ScorerOptions {
  rules?: RuleOverrides;
  assets?: AssetIndex;
  detector?: DetectorFactory;
  events?: EventGateOptions;
  /** Readings kept per asset to retrain from (0: no retraining). */
  history?: number;
  drift?: DriftOptions;
}

export const DEFAULT_DRIFT: DriftOptions = { rate: 0.15, minReadings: 2000 };
export const DEFAULT_HISTORY = 2000;

export interface LearnedResult {
  score: number;
  threshold: number;
  anomaly: boolean;
  ready: boolean;
  contributions: DetectorContribution[];
  skipped?: string;
}

export interface ScoreResult {
  /** max(learned score, most severe rule flag), 0..1. */
  score: number;
  anomaly: boolean;
  /** Most severe first. */
  flags: Flag[];
  /** 0..100. */
  health: number;
  /** 0..1, probability-like. */
  failureRisk: number;
  /** Rules armed and the learned detector (if any) trained. */
  ready: boolean;
  learned?: LearnedResult;
}

export type ScoreOutcome =
  | {
      ok: true;
      result: ScoreResult;
      /** Flags that are events now (onset, repeat, escalation). */
      events: Flag[];
      /** The learned detector drifted: retrain it from trainingRows() (then replaceDetector). */
      retrain: boolean;
    }
  | { ok: false; skipped: string };

export interface Row {
  ts: number;
  metrics: Record<string, number>;
}

interface AssetState {
  info: AssetInfo;
  cfg: RuleConfig;
  bounds: Record<string, MetricBounds>;
  lonHours: number;
  lastTs: number;
  count: number;
  rules: RuleState;
  health: HealthState;
  detector?: AnomalyDetector;
  anomalyRate: number;
  sinceTrain: number;
  retraining: boolean;
  history: MetricRing;
}

export const SNAPSHOT_FORMAT = 'evtwin-asset-state';
export const SNAPSHOT_VERSION = 1;

/** What persists of one asset (runtime/modelStore.ts writes it as JSON). */
export interface AssetSnapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  site: string;
  line?: string;
  asset: string;
  kind: string;
  lastTs: number;
  count: number;
  rules: RuleState;
  health: HealthState;
  detector?: DetectorState;
}

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

/**
 * Metrics the learned detector models for a kind: the catalogue's, without those that are not a
 * continuous signal on every reading (cycle_time comes once a cycle, energy is a counter). Undefined
 * for kinds the catalogue does not know (the detector takes the first reading's metrics).
 */
export function learnedMetricsFor(kind: string): string[] | undefined {
  if (!isAssetKind(kind)) return undefined;
  return Object.keys(METRICS_BY_KIND[kind]).filter((m) => m !== 'cycle_time' && m !== 'energy');
}

export const assetKeyOf = (r: { site: string; asset: string }): string => `${r.site}/${r.asset}`;

/** Why a reading cannot be scored, or undefined when it can (checked before any state changes). */
export function checkReading(r: Reading, lastTs: number | undefined): string | undefined {
  if (!Number.isSafeInteger(r.ts)) return `bad timestamp ${String(r.ts)}`;
  const names = Object.keys(r.metrics);
  if (names.length === 0) return 'no metrics';
  for (const m of names) {
    const v = r.metrics[m];
    if (typeof v !== 'number' || !Number.isFinite(v))
      return `metric ${m} is not a finite number (${String(v)})`;
  }
  if (lastTs !== undefined) {
    if (r.ts === lastTs) return `duplicate timestamp ${r.ts}`;
    if (r.ts < lastTs)
      return `out of order: ts ${r.ts} is ${lastTs - r.ts} ms before the last scored reading`;
  }
  return undefined;
}

export class Scorer {
  private readonly assets = new Map<string, AssetState>();
  private readonly lines = new Map<string, LineSignals>();
  private readonly gate: EventGate;
  private readonly history: number;
  private readonly drift: DriftOptions;
  private readonly cfgByKind = new Map<string, RuleConfig>();

  constructor(private readonly opts: ScorerOptions = {}) {
    this.gate = new EventGate(opts.events ?? DEFAULT_EVENT_GATE);
    this.history = opts.history ?? DEFAULT_HISTORY;
    this.drift = opts.drift ?? DEFAULT_DRIFT;
    // Validate the overrides now: a bad configuration is an error at start, not at the first reading.
    rulesFor('generic', opts.rules);
  }

  get size(): number {
    return this.assets.size;
  }

  keys(): string[] {
    return [...this.assets.keys()];
  }

  private configFor(kind: string): RuleConfig {
    let c = this.cfgByKind.get(kind);
    if (!c) {
      c = rulesFor(kind, this.opts.rules);
      this.cfgByKind.set(kind, c);
    }
    return c;
  }

  private newAsset(info: AssetInfo, ts: number): AssetState {
    const modelled = this.opts.assets?.get(info.site, info.asset);
    return {
      info,
      cfg: this.configFor(info.kind),
      bounds: modelled?.bounds ?? {},
      lonHours: (modelled?.location?.lon ?? 0) / 15,
      lastTs: Number.NEGATIVE_INFINITY,
      count: 0,
      rules: newRuleState(),
      health: newHealthState(ts),
      ...(this.opts.detector ? { detector: this.opts.detector.create(info) } : {}),
      anomalyRate: 0,
      sinceTrain: 0,
      retraining: false,
      history: new MetricRing(this.history),
    };
  }

  score(r: Reading): ScoreOutcome {
    const key = assetKeyOf(r);
    let a = this.assets.get(key);
    const problem = checkReading(r, a?.lastTs);
    if (problem) return { ok: false, skipped: problem };
    if (!a) {
      const info: AssetInfo = { site: r.site, asset: r.asset, kind: r.kind };
      if (r.line !== undefined) info.line = r.line;
      a = this.newAsset(info, r.ts);
      this.assets.set(key, a);
    } else if (a.info.kind !== r.kind) {
      return { ok: false, skipped: `kind ${r.kind} differs from ${a.info.kind} seen before for ${key}` };
    }
    a.lastTs = r.ts;
    a.count++;
    const lineKey = `${r.site}/${r.line ?? ''}`;
    let line = this.lines.get(lineKey);
    if (!line) this.lines.set(lineKey, (line = {}));

    const flags = evaluateRules(a.rules, a.cfg, r.metrics, {
      asset: r.asset,
      kind: r.kind,
      ts: r.ts,
      lonHours: a.lonHours,
      bounds: a.bounds,
      line,
    });

    let learned: LearnedResult | undefined;
    let retrain = false;
    if (a.detector) {
      let out: DetectorOutput;
      try {
        out = a.detector.update(r.ts, r.metrics);
      } catch (err) {
        // A detector bug must not stop the rules: report it on this reading, keep going.
        out = {
          score: 0,
          anomaly: false,
          threshold: 1,
          ready: false,
          contributions: [],
          skipped: `detector error: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
      learned = {
        score: Number.isFinite(out.score) ? Math.min(1, Math.max(0, out.score)) : 0,
        threshold: out.threshold,
        anomaly: out.anomaly,
        ready: out.ready,
        contributions: out.contributions,
      };
      if (out.skipped !== undefined) learned.skipped = out.skipped;
      if (out.ready && out.skipped === undefined) {
        a.sinceTrain++;
        a.anomalyRate += ((out.anomaly ? 1 : 0) - a.anomalyRate) / 500;
        if (
          this.history > 0 &&
          !a.retraining &&
          a.sinceTrain >= this.drift.minReadings &&
          a.anomalyRate > this.drift.rate
        ) {
          a.retraining = true;
          retrain = true;
        }
      }
      if (out.anomaly && flags.length === 0) {
        const top = out.contributions[0];
        const metric = top?.metric ?? Object.keys(r.metrics)[0] ?? '';
        const severity = learned.score;
        flags.push({
          type: 'learned',
          metric,
          observed: learned.score,
          expected: out.threshold,
          severity,
          level: levelOf(severity),
          message:
            `learned detector: score ${learned.score.toFixed(2)} over threshold ${out.threshold.toFixed(2)}` +
            (top ? `, mostly ${top.metric} (${Math.round(top.weight * 100)} %)` : ''),
        });
      }
    }
    a.history.push(r.ts, r.metrics);

    const ruleScore = flags.length > 0 ? (flags[0] as Flag).severity : 0;
    const score = Math.max(learned?.score ?? 0, ruleScore);
    const health = updateHealth(a.health, r.ts, score, excursions(a.rules, a.cfg, r.metrics));
    const result: ScoreResult = {
      score,
      anomaly: flags.length > 0 || (learned?.anomaly ?? false),
      flags,
      health: health.health,
      failureRisk: failureRisk(health),
      ready: a.count >= a.cfg.warmup && (learned?.ready ?? true),
    };
    if (learned) result.learned = learned;
    return { ok: true, result, events: this.gate.filter(key, r.ts, flags), retrain };
  }

  /** The rows kept for retraining an asset's detector, oldest first. */
  trainingRows(key: string): Row[] {
    const a = this.assets.get(key);
    if (!a) return [];
    return a.history.rows();
  }

  /** Swap in a retrained detector (from runtime/trainWorker.ts); throws SnapshotError if it is unusable. */
  replaceDetector(key: string, state: DetectorState): void {
    const a = this.assets.get(key);
    if (!a || !this.opts.detector) throw new SnapshotError(`no asset ${key} with a learned detector`);
    a.retraining = false;
    try {
      a.detector = this.opts.detector.restore(state, a.info);
    } catch (err) {
      throw new SnapshotError(
        `retrained detector for ${key}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    a.sinceTrain = 0;
    a.anomalyRate = 0;
  }

  has(key: string): boolean {
    return this.assets.has(key);
  }

  /**
   * Start a new asset with a detector trained elsewhere (from its history in InfluxDB), so its first
   * reading is scored by a ready model. Throws SnapshotError when the asset exists or the state is unusable.
   */
  installTrained(info: AssetInfo, state: DetectorState): void {
    const key = assetKeyOf(info);
    if (this.assets.has(key)) throw new SnapshotError(`asset ${key} is already scored`);
    if (!this.opts.detector) throw new SnapshotError('this scorer has no learned detector');
    let detector: AnomalyDetector;
    try {
      detector = this.opts.detector.restore(state, info);
    } catch (err) {
      throw new SnapshotError(
        `trained detector for ${key}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const a = this.newAsset(info, Number.NEGATIVE_INFINITY);
    a.detector = detector;
    this.assets.set(key, a);
  }

  /** A retraining failed: try again after another minReadings. */
  retrainFailed(key: string): void {
    const a = this.assets.get(key);
    if (!a) return;
    a.retraining = false;
    a.sinceTrain = 0;
  }

  exportAsset(key: string): AssetSnapshot | undefined {
    const a = this.assets.get(key);
    if (!a) return undefined;
    const snap: AssetSnapshot = {
      format: SNAPSHOT_FORMAT,
      version: SNAPSHOT_VERSION,
      site: a.info.site,
      asset: a.info.asset,
      kind: a.info.kind,
      lastTs: a.lastTs,
      count: a.count,
      rules: a.rules,
      health: a.health,
    };
    if (a.info.line !== undefined) snap.line = a.info.line;
    if (a.detector) snap.detector = a.detector.toJSON();
    return snap;
  }

  /**
   * Restore an asset from a snapshot. Throws SnapshotError when it is not a snapshot of this version
   * (the caller starts the asset afresh). A detector that cannot be restored is replaced by a new one
   * (trained again from the coming readings) and named in the returned warnings.
   */
  importAsset(value: unknown): string[] {
    const warnings: string[] = [];
    if (typeof value !== 'object' || value === null) throw new SnapshotError('not an object');
    const s = value as Partial<AssetSnapshot>;
    if (s.format !== SNAPSHOT_FORMAT) throw new SnapshotError(`format is not ${SNAPSHOT_FORMAT}`);
    if (s.version !== SNAPSHOT_VERSION)
      throw new SnapshotError(`version ${String(s.version)}, this scorer reads ${SNAPSHOT_VERSION}`);
    if (typeof s.site !== 'string' || typeof s.asset !== 'string' || typeof s.kind !== 'string')
      throw new SnapshotError('site, asset or kind missing');
    if (typeof s.lastTs !== 'number' || typeof s.count !== 'number')
      throw new SnapshotError('lastTs or count missing');
    if (!isRuleState(s.rules)) throw new SnapshotError('rule state malformed');
    if (!isHealthState(s.health)) throw new SnapshotError('health state malformed');
    const info: AssetInfo = { site: s.site, asset: s.asset, kind: s.kind };
    if (typeof s.line === 'string') info.line = s.line;
    const a = this.newAsset(info, s.lastTs);
    a.lastTs = s.lastTs;
    a.count = s.count;
    a.rules = s.rules;
    a.health = s.health;
    if (this.opts.detector) {
      if (s.detector) {
        try {
          a.detector = this.opts.detector.restore(s.detector, info);
        } catch (err) {
          warnings.push(
            `learned detector of ${assetKeyOf(info)} not restored (${err instanceof Error ? err.message : String(err)}): training a new one`,
          );
        }
      } else warnings.push(`no learned detector saved for ${assetKeyOf(info)}: training a new one`);
    }
    this.assets.set(assetKeyOf(info), a);
    return warnings;
  }
}
