/**
 * The learned anomaly detector behind AnomalyDetector: rolling-window features per metric, an isolation
 * forest and a Mahalanobis residual model over them, each turned into a tail level by an adaptive
 * (streaming POT) threshold, plus a sustained-evidence level (mean of recent levels) for slow attacks.
 *
 * Training is a pure function (trainModel / fitModel) so a caller can run it in a worker_thread and
 * install the result; by default the detector trains itself on its first trainRows valid rows and
 * retrains inline on recent unflagged rows every retrainEvery rows.
 */
import type { AnomalyDetector, DetectorContribution, DetectorOutput, DetectorState } from './detector';
import { FeatureExtractor, METRIC_FEATURES, type FeatureExtractorJSON } from './features';
import { IsolationForest, type IForestJSON } from './iforest';
import { MahalanobisModel, type ResidualJSON } from './residual';
import { TailCalibrator, type TailJSON } from './threshold';

export const LEARNED_DETECTOR_KIND = 'learned';
export const LEARNED_DETECTOR_VERSION = 1;

export interface LearnedDetectorOptions {
  /** Valid rows to collect before the first model is trained. */
  trainRows?: number;
  /** Metrics to model; default: the numeric keys of the first valid row. */
  metrics?: string[];
  /** Rolling window (rows) of the features. */
  window?: number;
  trees?: number;
  sampleSize?: number;
  seed?: number;
  /** Covariance shrinkage towards identity, 0..1. */
  shrinkage?: number;
  /** Threshold as a tail level: flag when P(score this high) < 10^-level. */
  level?: number;
  /** Rows averaged into the sustained-evidence level (0 disables it). */
  smoothing?: number;
  /** Refit the models on recent unflagged rows every this many rows (0: never). */
  retrainEvery?: number;
  /** Forgetting horizon (rows) of the adaptive threshold. */
  horizon?: number;
  /** An anomaly opens a new event only after this many quiet rows. */
  cooldown?: number;
}

export type ResolvedLearnedOptions = Required<Omit<LearnedDetectorOptions, 'metrics'>> & {
  metrics?: string[];
};

export const LEARNED_DEFAULTS: ResolvedLearnedOptions = {
  trainRows: 400,
  window: 24,
  trees: 100,
  sampleSize: 256,
  seed: 1,
  shrinkage: 0.1,
  level: 3.5,
  smoothing: 12,
  retrainEvery: 0,
  horizon: 5000,
  cooldown: 24,
};

/**
 * Defaults by data shape (never by file): a single metric has no cross-metric structure, so it needs
 * longer evidence and fewer, rarer alerts to keep its false alarms down.
 */
export const UNIVARIATE_DEFAULTS: Partial<ResolvedLearnedOptions> = {
  smoothing: 24,
  level: 4,
  cooldown: 100,
};

export function resolveLearnedOptions(
  o: LearnedDetectorOptions = {},
  metricCount?: number,
): ResolvedLearnedOptions {
  const r: ResolvedLearnedOptions = {
    ...LEARNED_DEFAULTS,
    ...(metricCount === 1 ? UNIVARIATE_DEFAULTS : {}),
  };
  for (const [k, v] of Object.entries(o))
    if (v !== undefined) (r as unknown as Record<string, unknown>)[k] = v;
  if (!(Number.isInteger(r.trainRows) && r.trainRows >= 20))
    throw new Error('learned detector: trainRows must be an integer >= 20');
  if (!(r.level > 0)) throw new Error('learned detector: level must be > 0');
  if (!(r.shrinkage >= 0 && r.shrinkage <= 1))
    throw new Error('learned detector: shrinkage must be in [0, 1]');
  return r;
}

/** Extends DetectorOutput compatibly. */
export interface LearnedOutput extends DetectorOutput {
  /** First flagged row after at least `cooldown` quiet rows: one event per anomalous episode. */
  event: boolean;
  /** Tail levels (-log10 p) of each part, for explanation and tuning. */
  levels: { forest: number; residual: number; sustained: number };
}

export interface TrainingRow {
  ts: number;
  metrics: Readonly<Record<string, number>>;
}

export interface LearnedModelJSON {
  forest: IForestJSON;
  residual: ResidualJSON;
  calForest: TailJSON;
  calResidual: TailJSON;
  calSustained: TailJSON | null;
}

export interface LearnedDetectorState extends DetectorState {
  kind: typeof LEARNED_DETECTOR_KIND;
  options: ResolvedLearnedOptions;
  metrics: string[] | null;
  constants: Record<string, number>;
  features: FeatureExtractorJSON | null;
  model: LearnedModelJSON | null;
  /** Rows collected towards the first training (only before it). */
  pending: { ts: number[]; values: number[][] };
  rows: number;
  lastTs: number | null;
  lastAnomaly: number;
  sinceTrain: number;
  recentLevels: number[];
}

/** Why a row cannot be used, or its values in metric order. */
function readRow(
  ts: number,
  row: Readonly<Record<string, number>>,
  metrics: readonly string[],
  lastTs: number | null,
): string | number[] {
  if (typeof ts !== 'number' || !Number.isFinite(ts)) return 'timestamp is not a finite number';
  if (lastTs !== null && ts === lastTs) return 'duplicate timestamp';
  if (lastTs !== null && ts < lastTs) return 'out-of-order timestamp';
  const values: number[] = [];
  const missing: string[] = [];
  const bad: string[] = [];
  for (const m of metrics) {
    const v = row[m];
    if (v === undefined || v === null) missing.push(m);
    else if (typeof v !== 'number' || !Number.isFinite(v)) bad.push(m);
    else values.push(v);
  }
  if (missing.length) return `missing metrics: ${missing.join(', ')}`;
  if (bad.length) return `not a finite number: ${bad.join(', ')}`;
  return values;
}

function chooseMetrics(row: Readonly<Record<string, number>>, o: ResolvedLearnedOptions): string[] {
  return o.metrics ? [...o.metrics] : Object.keys(row).sort();
}

class Ring {
  readonly buf: number[] = [];
  private pos = 0;
  constructor(readonly size: number) {}
  push(v: number): void {
    if (this.buf.length < this.size) this.buf.push(v);
    else this.buf[this.pos] = v;
    this.pos = (this.pos + 1) % this.size;
  }
  mean(): number {
    let s = 0;
    for (const v of this.buf) s += v;
    return this.buf.length ? s / this.buf.length : 0;
  }
  ordered(): number[] {
    return this.buf.length < this.size
      ? [...this.buf]
      : [...this.buf.slice(this.pos), ...this.buf.slice(0, this.pos)];
  }
}

/** Levels are capped so one absurd row cannot dominate the sustained mean forever. */
const LEVEL_CAP = 20;
/** Rows (in windows) a run of flagged rows is kept out of the feature windows. */
const HOLD_WINDOWS = 0;
const SUSTAIN_GATE = 2.5;

/**
 * Fit the models on feature rows (pure; safe in a worker_thread): the first 70% fit, the last 30%
 * calibrate the thresholds out of sample, then the models are refit on all rows.
 */
export function fitModel(
  rows: readonly ArrayLike<number>[],
  options: LearnedDetectorOptions = {},
): LearnedModelJSON {
  const o = resolveLearnedOptions(options);
  if (rows.length < 20) throw new Error(`learned detector: ${rows.length} usable rows, need at least 20`);
  const split = Math.floor(rows.length * 0.7);
  const head = rows.slice(0, split);
  const tail = rows.slice(split);
  const fOpts = { trees: o.trees, sampleSize: o.sampleSize, seed: o.seed };
  const f1 = IsolationForest.fit(head, fOpts);
  const [r1, rAll] = MahalanobisModel.fitPrefix(rows, split, o.shrinkage);
  const sf = tail.map((x) => f1.score(x));
  const sr = tail.map((x) => r1.distance2(x));
  const calForest = TailCalibrator.fit(sf, o.horizon);
  const calResidual = TailCalibrator.fit(sr, o.horizon);
  let calSustained: TailCalibrator | null = null;
  if (o.smoothing > 1 && tail.length >= 2 * o.smoothing) {
    const ring = new Ring(o.smoothing);
    const sustained: number[] = [];
    for (let i = 0; i < tail.length; i++) {
      ring.push(
        Math.min(LEVEL_CAP, Math.max(calForest.level(sf[i] as number), calResidual.level(sr[i] as number))),
      );
      if (i >= o.smoothing - 1) sustained.push(ring.mean());
    }
    calSustained = TailCalibrator.fit(sustained, o.horizon);
  }
  return {
    forest: IsolationForest.fit(rows, fOpts).toJSON(),
    residual: rAll.toJSON(),
    calForest: calForest.toJSON(),
    calResidual: calResidual.toJSON(),
    calSustained: calSustained ? calSustained.toJSON() : null,
  };
}

/**
 * Train a ready detector from raw rows (pure; run it in a worker_thread to keep the event loop free).
 * Bad rows are skipped by the same rules as update(); metrics constant over the rows are watched for
 * any change instead of being modelled.
 */
export function trainModel(
  rows: readonly TrainingRow[],
  options: LearnedDetectorOptions = {},
): LearnedDetectorState {
  const o = resolveLearnedOptions(options);
  let metrics: string[] | null = o.metrics ? [...o.metrics] : null;
  let lastTs: number | null = null;
  const ts: number[] = [];
  const values: number[][] = [];
  for (const r of rows) {
    if (!metrics) {
      const keys = chooseMetrics(r.metrics, o);
      if (!keys.length || keys.some((k) => !Number.isFinite(r.metrics[k]))) continue;
      metrics = keys;
    }
    const v = readRow(r.ts, r.metrics, metrics, lastTs);
    if (typeof v === 'string') continue;
    lastTs = r.ts;
    ts.push(r.ts);
    values.push(v);
  }
  if (!metrics || values.length < 20)
    throw new Error(`learned detector: ${values.length} valid training rows, need at least 20`);
  return buildTrained(resolveLearnedOptions(options, metrics.length), metrics, ts, values);
}

function buildTrained(
  o: ResolvedLearnedOptions,
  metrics: string[],
  ts: number[],
  values: number[][],
): LearnedDetectorState {
  const constants: Record<string, number> = {};
  const modelled: number[] = [];
  metrics.forEach((m, i) => {
    const first = (values[0] as number[])[i] as number;
    if (values.every((v) => v[i] === first)) constants[m] = first;
    else modelled.push(i);
  });
  const fx = new FeatureExtractor(
    modelled.map((i) => metrics[i] as string),
    o.window,
  );
  // Rows whose window is still filling have odd features: keep them out of the fit.
  const warm = Math.min(o.window, Math.floor(values.length / 4));
  const feats: Float64Array[] = [];
  values.forEach((v, r) => {
    const f = fx.next(
      ts[r] as number,
      modelled.map((i) => v[i] as number),
    );
    if (r >= warm) feats.push(f);
  });
  const model = modelled.length ? fitModel(feats, o) : null;
  return {
    format: 'evtwin-detector',
    version: LEARNED_DETECTOR_VERSION,
    kind: LEARNED_DETECTOR_KIND,
    options: o,
    metrics,
    constants,
    features: fx.toJSON(),
    model,
    pending: { ts: [], values: [] },
    rows: values.length,
    lastTs: ts.length ? (ts[ts.length - 1] as number) : null,
    lastAnomaly: -Infinity,
    sinceTrain: 0,
    recentLevels: [],
  };
}

interface LiveModel {
  forest: IsolationForest;
  residual: MahalanobisModel;
  calForest: TailCalibrator;
  calResidual: TailCalibrator;
  calSustained: TailCalibrator | null;
}

function liveModel(j: LearnedModelJSON, horizon: number): LiveModel {
  if (typeof j !== 'object' || j === null) throw new Error('detector state: model is malformed');
  return {
    forest: IsolationForest.fromJSON(j.forest),
    residual: MahalanobisModel.fromJSON(j.residual),
    calForest: TailCalibrator.fromJSON(j.calForest, horizon),
    calResidual: TailCalibrator.fromJSON(j.calResidual, horizon),
    calSustained: j.calSustained ? TailCalibrator.fromJSON(j.calSustained, horizon) : null,
  };
}

class LearnedDetector implements AnomalyDetector {
  private metrics: string[] | null;
  private constants: Record<string, number>;
  private constantKeys: string[];
  private modelledIdx: number[] = [];
  private fx: FeatureExtractor | null;
  private model: LiveModel | null;
  private pending: { ts: number[]; values: number[][] };
  private rows: number;
  private lastTs: number | null;
  private lastAnomaly: number;
  private sinceTrain: number;
  private recent: Ring;
  private readonly clean: Float64Array[] = [];
  private cleanPos = 0;
  private trained: boolean;
  private held = 0;
  private readonly values: Float64Array = new Float64Array(0);
  private feat: Float64Array = new Float64Array(0);
  private modelledValues: Float64Array = new Float64Array(0);

  options: ResolvedLearnedOptions;

  constructor(
    private readonly user: LearnedDetectorOptions,
    state?: LearnedDetectorState,
  ) {
    this.options = state
      ? resolveLearnedOptions(state.options)
      : resolveLearnedOptions(user, user.metrics?.length);
    this.metrics = state?.metrics ?? (this.options.metrics ? [...this.options.metrics] : null);
    this.constants = state?.constants ?? {};
    this.constantKeys = Object.keys(this.constants);
    this.fx = state?.features ? FeatureExtractor.fromJSON(state.features) : null;
    this.model = state?.model ? liveModel(state.model, this.options.horizon) : null;
    this.pending = state?.pending ?? { ts: [], values: [] };
    this.rows = state?.rows ?? 0;
    this.lastTs = state?.lastTs ?? null;
    this.lastAnomaly = state?.lastAnomaly ?? -Infinity;
    this.sinceTrain = state?.sinceTrain ?? 0;
    this.recent = new Ring(Math.max(1, this.options.smoothing));
    for (const l of state?.recentLevels ?? []) this.recent.push(l);
    this.trained = state?.features !== null && state?.features !== undefined;
    this.bind();
  }

  get ready(): boolean {
    return this.trained;
  }

  /** Metrics the detector watches (null until the first valid row fixes them). */
  get metricNames(): readonly string[] | null {
    return this.metrics;
  }

  private bind(): void {
    if (!this.metrics || !this.fx) return;
    const names = this.fx.metrics;
    this.modelledIdx = names.map((m) => (this.metrics as string[]).indexOf(m));
    if (this.modelledIdx.some((i) => i < 0)) throw new Error('detector state: feature metrics do not match');
    this.feat = new Float64Array(this.fx.dims);
    this.modelledValues = new Float64Array(names.length);
    if (this.model && (this.model.forest.dims !== this.fx.dims || this.model.residual.dims !== this.fx.dims))
      throw new Error('detector state: model dimensions do not match the features');
  }

  private skip(reason: string): LearnedOutput {
    return {
      score: 0,
      anomaly: false,
      threshold: 0.5,
      ready: this.trained,
      contributions: [],
      skipped: reason,
      event: false,
      levels: { forest: 0, residual: 0, sustained: 0 },
    };
  }

  update(ts: number, row: Readonly<Record<string, number>>): LearnedOutput {
    if (typeof row !== 'object' || row === null) return this.skip('row is not an object');
    if (!this.metrics) {
      const keys = chooseMetrics(row, this.options);
      if (!keys.length) return this.skip('no metrics in row');
      const bad = keys.filter((k) => typeof row[k] !== 'number' || !Number.isFinite(row[k]));
      if (bad.length) return this.skip(`not a finite number: ${bad.join(', ')}`);
      this.metrics = keys;
      this.options = resolveLearnedOptions(this.user, keys.length);
      this.recent = new Ring(Math.max(1, this.options.smoothing));
    }
    const v = readRow(ts, row, this.metrics, this.lastTs);
    if (typeof v === 'string') return this.skip(v);
    this.lastTs = ts;
    this.rows++;
    if (!this.trained) {
      this.pending.ts.push(ts);
      this.pending.values.push(v);
      if (this.pending.values.length >= this.options.trainRows) {
        const st = buildTrained(this.options, this.metrics, this.pending.ts, this.pending.values);
        this.install(st);
      }
      return { ...this.skip(''), skipped: undefined, ready: this.trained };
    }
    return this.score(ts, v);
  }

  private install(st: LearnedDetectorState): void {
    this.constants = st.constants;
    this.constantKeys = Object.keys(st.constants);
    this.fx = st.features ? FeatureExtractor.fromJSON(st.features) : null;
    this.model = st.model ? liveModel(st.model, this.options.horizon) : null;
    this.pending = { ts: [], values: [] };
    this.sinceTrain = 0;
    this.trained = true;
    this.bind();
  }

  /** Replace the models (e.g. with fitModel() run in a worker on retrainSet()). */
  installModel(model: LearnedModelJSON): void {
    const live = liveModel(model, this.options.horizon);
    if (this.fx && (live.forest.dims !== this.fx.dims || live.residual.dims !== this.fx.dims))
      throw new Error('learned detector: model dimensions do not match the features');
    this.model = live;
    this.sinceTrain = 0;
  }

  /** Recent unflagged feature rows, oldest first: the input of fitModel() for a retrain. */
  retrainSet(): Float64Array[] {
    return [...this.clean.slice(this.cleanPos), ...this.clean.slice(0, this.cleanPos)];
  }

  private score(ts: number, v: number[]): LearnedOutput {
    const o = this.options;
    const metrics = this.metrics as string[];
    let constLevel = 0;
    const constHits: string[] = [];
    for (const m of this.constantKeys) {
      const c = this.constants[m] as number;
      const x = v[metrics.indexOf(m)] as number;
      if (Math.abs(x - c) > 1e-9 * (1 + Math.abs(c))) constHits.push(m);
    }
    if (constHits.length) constLevel = 2 * o.level;
    let lf = 0;
    let lr = 0;
    let ls = 0;
    const fx = this.fx as FeatureExtractor;
    for (let k = 0; k < this.modelledIdx.length; k++)
      this.modelledValues[k] = v[this.modelledIdx[k] as number] as number;
    if (this.modelledIdx.length) fx.peek(ts, this.modelledValues, this.feat);
    const model = this.model;
    let sf = 0;
    let sr = 0;
    if (model) {
      sf = model.forest.score(this.feat);
      sr = model.residual.distance2(this.feat);
      lf = Math.min(LEVEL_CAP, model.calForest.level(sf));
      lr = Math.min(LEVEL_CAP, model.calResidual.level(sr));
      this.recent.push(Math.max(lf, lr));
      // Sustained evidence only while the row itself is at least unusual (p < 10^-SUSTAIN_GATE), so it
      // does not linger for a whole smoothing span after an anomaly ends.
      if (
        model.calSustained &&
        this.recent.buf.length === this.recent.size &&
        Math.max(lf, lr) >= SUSTAIN_GATE
      )
        ls = model.calSustained.level(this.recent.mean());
    }
    const level = Math.max(lf, lr, ls, constLevel);
    const anomaly = level >= o.level;
    // Flagged rows stay out of the rolling windows (they would echo for a whole window after the
    // anomaly ends), but only for a while: a lasting shift becomes the new normal.
    if (this.modelledIdx.length) {
      if (!anomaly || this.held >= o.window * HOLD_WINDOWS || HOLD_WINDOWS === 0) {
        fx.commit(this.modelledValues);
        if (!anomaly) this.held = 0;
      } else this.held++;
    }
    const rowIndex = this.rows;
    const event = anomaly && rowIndex - this.lastAnomaly > o.cooldown;
    if (anomaly) this.lastAnomaly = rowIndex;
    let contributions: DetectorContribution[] = [];
    if (anomaly) contributions = this.explain(constHits);
    else if (model) {
      // Only unflagged rows teach the threshold and the retrain set.
      model.calForest.observe(sf);
      model.calResidual.observe(sr);
      if (o.retrainEvery > 0) {
        const copy = Float64Array.from(this.feat);
        if (this.clean.length < o.trainRows) this.clean.push(copy);
        else this.clean[this.cleanPos] = copy;
        this.cleanPos = this.clean.length < o.trainRows ? 0 : (this.cleanPos + 1) % o.trainRows;
      }
    }
    this.sinceTrain++;
    if (
      o.retrainEvery > 0 &&
      this.sinceTrain >= o.retrainEvery &&
      this.clean.length >= Math.min(o.trainRows, 100)
    ) {
      this.installModel(fitModel(this.retrainSet(), o));
    }
    return {
      score: Math.min(1, level / (2 * o.level)),
      anomaly,
      threshold: 0.5,
      ready: true,
      contributions,
      event,
      levels: { forest: lf, residual: lr, sustained: ls },
    };
  }

  private explain(constHits: string[]): DetectorContribution[] {
    const weights = new Map<string, number>();
    for (const m of constHits) weights.set(m, 1e6);
    if (this.model && this.fx) {
      const shares = this.model.residual.featureShares(this.feat);
      const nf = METRIC_FEATURES.length;
      this.fx.metrics.forEach((m, i) => {
        let s = 0;
        for (let k = 0; k < nf; k++) s += shares[i * nf + k] as number;
        weights.set(m, (weights.get(m) ?? 0) + s);
      });
    }
    let total = 0;
    for (const w of weights.values()) total += w;
    if (!(total > 0)) return constHits.map((metric) => ({ metric, weight: 1 / constHits.length }));
    return [...weights.entries()]
      .map(([metric, w]) => ({ metric, weight: w / total }))
      .filter((c) => c.weight >= 0.01)
      .sort((a, b) => b.weight - a.weight)
      .slice(0, 5);
  }

  toJSON(): LearnedDetectorState {
    const m = this.model;
    return {
      format: 'evtwin-detector',
      version: LEARNED_DETECTOR_VERSION,
      kind: LEARNED_DETECTOR_KIND,
      options: this.options,
      metrics: this.metrics,
      constants: this.constants,
      features: this.fx ? this.fx.toJSON() : null,
      model: m
        ? {
            forest: m.forest.toJSON(),
            residual: m.residual.toJSON(),
            calForest: m.calForest.toJSON(),
            calResidual: m.calResidual.toJSON(),
            calSustained: m.calSustained ? m.calSustained.toJSON() : null,
          }
        : null,
      pending: this.pending,
      rows: this.rows,
      lastTs: this.lastTs,
      lastAnomaly: Number.isFinite(this.lastAnomaly) ? this.lastAnomaly : -1e15,
      sinceTrain: this.sinceTrain,
      recentLevels: this.recent.ordered(),
    };
  }
}

export type LearnedAnomalyDetector = Omit<AnomalyDetector, 'update' | 'toJSON'> & {
  update(ts: number, metrics: Readonly<Record<string, number>>): LearnedOutput;
  toJSON(): LearnedDetectorState;
  installModel(model: LearnedModelJSON): void;
  retrainSet(): Float64Array[];
  readonly metricNames: readonly string[] | null;
};

export function createLearnedDetector(options: LearnedDetectorOptions = {}): LearnedAnomalyDetector {
  resolveLearnedOptions(options); // validate early
  return new LearnedDetector(options);
}

/** Restore from toJSON()/trainModel() output; throws a clear error on a corrupt or foreign state. */
export function restoreLearnedDetector(state: unknown): LearnedAnomalyDetector {
  if (typeof state !== 'object' || state === null || Array.isArray(state))
    throw new Error('detector state: not an object');
  const s = state as Partial<LearnedDetectorState>;
  if (s.format !== 'evtwin-detector')
    throw new Error(`detector state: unknown format ${JSON.stringify(s.format)}`);
  if (s.kind !== LEARNED_DETECTOR_KIND)
    throw new Error(`detector state: kind ${JSON.stringify(s.kind)} is not "${LEARNED_DETECTOR_KIND}"`);
  if (s.version !== LEARNED_DETECTOR_VERSION)
    throw new Error(
      `detector state: version ${String(s.version)} is not supported (this build reads version ${LEARNED_DETECTOR_VERSION})`,
    );
  if (typeof s.options !== 'object' || s.options === null) throw new Error('detector state: options missing');
  resolveLearnedOptions(s.options);
  if (s.metrics !== null && !(Array.isArray(s.metrics) && s.metrics.every((m) => typeof m === 'string')))
    throw new Error('detector state: metrics malformed');
  if (typeof s.constants !== 'object' || s.constants === null)
    throw new Error('detector state: constants malformed');
  const p = s.pending;
  if (!p || !Array.isArray(p.ts) || !Array.isArray(p.values) || p.ts.length !== p.values.length)
    throw new Error('detector state: pending rows malformed');
  if (typeof s.rows !== 'number' || typeof s.sinceTrain !== 'number' || !Array.isArray(s.recentLevels))
    throw new Error('detector state: counters malformed');
  return new LearnedDetector(s.options, s as LearnedDetectorState);
}
