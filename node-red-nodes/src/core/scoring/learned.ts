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
import { FeatureExtractor, METRIC_FEATURES, type FeatureExtractorJSON, type TimeCycles } from './features';
import { IsolationForest, type IForestJSON } from './iforest';
import { SeededRandom } from './prng';
import { MahalanobisModel, type ResidualJSON } from './residual';
import { FlatRing, FlatRows } from './rows';
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
  /**
   * Anomaly likelihood gate (as HTM's, on our levels): a row is flagged only when its level also stands
   * this many standard deviations above the levels of the last ~likelihoodHorizon rows, so a detector
   * that keeps firing on a spiky signal learns that its spikes are ordinary. 0 disables.
   */
  likelihoodZ?: number;
  likelihoodHorizon?: number;
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
  likelihoodZ: 0,
  likelihoodHorizon: 1000,
};

/**
 * Defaults by data shape (never by file): a single metric has no cross-metric structure, so it needs
 * longer evidence and fewer, rarer alerts to keep its false alarms down.
 */
export const UNIVARIATE_DEFAULTS: Partial<ResolvedLearnedOptions> = {
  smoothing: 24,
  level: 4,
  cooldown: 100,
  // One signal's spikes are often its normal: flag only levels that stand out from its recent levels.
  // (Not for many metrics: a long attack on a network would soon look ordinary; BATADAL F1 fell to 0.43.)
  likelihoodZ: 3,
  likelihoodHorizon: 3000,
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
  /** EW mean and variance of recent row levels (the likelihood gate). */
  levelStats?: { mean: number; variance: number; n: number };
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
  // The error lists only when there is an error (this runs for every row of a training).
  let missing: string[] | null = null;
  let bad: string[] | null = null;
  for (const m of metrics) {
    const v = row[m];
    if (v === undefined || v === null) (missing ??= []).push(m);
    else if (typeof v !== 'number' || !Number.isFinite(v)) (bad ??= []).push(m);
    else values.push(v);
  }
  if (missing) return `missing metrics: ${missing.join(', ')}`;
  if (bad) return `not a finite number: ${bad.join(', ')}`;
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

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/**
 * Time features by the span the training rows cover. A week cycle seen for a day or more but less than
 * a week puts its held-out rows at phases the fit never saw, which inflates the thresholds: dropped
 * (NAB realKnownCause standard 59 -> 67). Below a day, both cycles stay, as before: measured on the
 * simulator's clean day (1 reading/s, 2000 training rows = 33 min), dropping the day cycle or both made
 * it much noisier (learned events cnc-01 7 -> 116, robot-01 12 -> 93, cp-01 2 -> 42), dropping only the
 * week cycle gave cp-01 19. Why: the drifting phases push residual distances up and the streaming tail
 * learns them, so the residual threshold widens over the day (cnc-01: its 2-hourly max residual level
 * falls from 8.8 to 0.2): a known weakness of sub-day training, not a fix for it.
 */
export function cyclesFor(spanMs: number): TimeCycles {
  return { day: true, week: spanMs < DAY_MS || spanMs >= WEEK_MS };
}

/** Levels are capped so one absurd row cannot dominate the sustained mean forever. */
const LEVEL_CAP = 20;
/** Rows (in windows) a run of flagged rows is kept out of the feature windows. */
const HOLD_WINDOWS = 0;
const SUSTAIN_GATE = 2.5;

/**
 * Rows the residual model is fitted on, at most: FIT_ROWS, or more for wide feature rows (a covariance
 * needs many more rows than dimensions: FIT_ROWS_PER_DIM per dimension).
 */
export const FIT_ROWS = 2048;
const FIT_ROWS_PER_DIM = 32;
/** Held-out rows the thresholds are calibrated on, at most (the latest ones). */
export const CAL_ROWS = 1024;

/** k of n indices without replacement (seeded partial Fisher-Yates), ascending; all when k >= n. */
function sampleIndices(n: number, k: number, seed: number): number[] {
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  const rng = new SeededRandom(seed);
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    const t = idx[j] as number;
    idx[j] = idx[i] as number;
    idx[i] = t;
  }
  return Array.from(idx.subarray(0, k)).sort((a, b) => a - b);
}

/**
 * Fit the models on feature rows (pure; safe in a worker_thread): the first 70% fit, the last 30%
 * calibrate the thresholds out of sample, then the models are refit on all rows. The moments of the
 * residual model come from a seeded sample of at most max(FIT_ROWS, 32 d) rows (its d^2 cost per row
 * dominated training), and calibration uses the latest CAL_ROWS held-out rows (contiguous, for the
 * sustained level; scoring them through the forest was the next largest cost).
 */
export function fitModel(
  rows: readonly ArrayLike<number>[],
  options: LearnedDetectorOptions = {},
): LearnedModelJSON {
  const o = resolveLearnedOptions(options);
  if (rows.length < 20) throw new Error(`learned detector: ${rows.length} usable rows, need at least 20`);
  const split = Math.floor(rows.length * 0.7);
  const head = rows.slice(0, split);
  const dims = (rows[0] as ArrayLike<number>).length;
  const cap = Math.max(FIT_ROWS, FIT_ROWS_PER_DIM * dims);
  const tail = rows.slice(Math.max(split, rows.length - CAL_ROWS));
  const picked = sampleIndices(rows.length, cap, o.seed);
  const sample = picked.map((i) => rows[i] as ArrayLike<number>);
  let headCount = 0;
  while (headCount < picked.length && (picked[headCount] as number) < split) headCount++;
  const fOpts = { trees: o.trees, sampleSize: o.sampleSize, seed: o.seed };
  const f1 = IsolationForest.fit(head, fOpts);
  const [r1, rAll] = MahalanobisModel.fitPrefix(sample, Math.max(2, headCount), o.shrinkage);
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
  // Row-major, one block: 10k small arrays that live through the fit cost more in GC than they hold.
  let values = new Float64Array(0);
  for (const r of rows) {
    if (!metrics) {
      const keys = chooseMetrics(r.metrics, o);
      if (!keys.length || keys.some((k) => !Number.isFinite(r.metrics[k]))) continue;
      metrics = keys;
    }
    if (!values.length) values = new Float64Array(rows.length * metrics.length);
    const v = readRow(r.ts, r.metrics, metrics, lastTs);
    if (typeof v === 'string') continue;
    lastTs = r.ts;
    values.set(v, ts.length * metrics.length);
    ts.push(r.ts);
  }
  if (!metrics || ts.length < 20)
    throw new Error(`learned detector: ${ts.length} valid training rows, need at least 20`);
  return buildTrained(resolveLearnedOptions(options, metrics.length), metrics, ts, values);
}

function buildTrained(
  o: ResolvedLearnedOptions,
  metrics: string[],
  ts: number[],
  /** Row-major: row r, metric i at r * metrics.length + i (rows beyond ts.length are ignored). */
  values: Float64Array,
): LearnedDetectorState {
  const constants: Record<string, number> = {};
  const modelled: number[] = [];
  const nm = metrics.length;
  const n = ts.length;
  metrics.forEach((m, i) => {
    const first = values[i] as number;
    let constant = true;
    for (let r = 1; r < n && constant; r++) constant = values[r * nm + i] === first;
    if (constant) constants[m] = first;
    else modelled.push(i);
  });
  const span = ts.length ? (ts[ts.length - 1] as number) - (ts[0] as number) : 0;
  const fx = new FeatureExtractor(
    modelled.map((i) => metrics[i] as string),
    o.window,
    cyclesFor(span),
  );
  // Rows whose window is still filling have odd features: keep them out of the fit.
  const warm = Math.min(o.window, Math.floor(n / 4));
  // One block for all feature rows (views into it): 10k small arrays cost more in GC than the fit.
  const dims = fx.dims;
  const block = new Float64Array(Math.max(0, n - warm) * dims);
  const scratch = new Float64Array(dims);
  const x = new Float64Array(modelled.length);
  // Features go through one scratch row into the block (writing through views was 3x slower).
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < modelled.length; k++) x[k] = values[r * nm + (modelled[k] as number)] as number;
    fx.next(ts[r] as number, x, scratch);
    if (r >= warm) block.set(scratch, (r - warm) * dims);
  }
  const feats: Float64Array[] = [];
  for (let r = 0; r < n - warm; r++) feats.push(block.subarray(r * dims, (r + 1) * dims));
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
    rows: n,
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
  /** Rows before the first training (width: the metrics, once chosen). */
  private pending: FlatRows | null;
  private rows: number;
  private lastTs: number | null;
  private lastAnomaly: number;
  private sinceTrain: number;
  private recent: Ring;
  private levelStats: { mean: number; variance: number; n: number };
  /** Recent unflagged feature rows for a retrain (width: the features, once trained). */
  private clean: FlatRing | null = null;
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
    this.pending = this.metrics
      ? state?.pending
        ? FlatRows.from(state.pending, this.metrics.length)
        : new FlatRows(this.metrics.length)
      : null;
    this.rows = state?.rows ?? 0;
    this.lastTs = state?.lastTs ?? null;
    this.lastAnomaly = state?.lastAnomaly ?? -Infinity;
    this.sinceTrain = state?.sinceTrain ?? 0;
    this.recent = new Ring(Math.max(1, this.options.smoothing));
    for (const l of state?.recentLevels ?? []) this.recent.push(l);
    const ls = state?.levelStats;
    this.levelStats =
      ls && [ls.mean, ls.variance, ls.n].every((v) => typeof v === 'number' && Number.isFinite(v))
        ? { ...ls }
        : { mean: 0, variance: 0, n: 0 };
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
      this.pending = new FlatRows(keys.length);
      this.options = resolveLearnedOptions(this.user, keys.length);
      this.recent = new Ring(Math.max(1, this.options.smoothing));
    }
    const v = readRow(ts, row, this.metrics, this.lastTs);
    if (typeof v === 'string') return this.skip(v);
    this.lastTs = ts;
    this.rows++;
    if (!this.trained) {
      const pending = (this.pending ??= new FlatRows(this.metrics.length));
      pending.push(ts, v);
      if (pending.length >= this.options.trainRows) {
        const st = buildTrained(this.options, this.metrics, pending.times(), pending.flat());
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
    this.pending = null;
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
    return this.clean?.rows() ?? [];
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
    let anomaly = level >= o.level;
    if (model && o.likelihoodZ > 0) {
      const st = this.levelStats;
      const row = Math.max(lf, lr, ls);
      if (anomaly && constLevel < o.level && st.n >= 50) {
        const sd = Math.sqrt(st.variance);
        if (row - st.mean < o.likelihoodZ * Math.max(sd, 0.1)) anomaly = false;
      }
      const a = Math.max(1 / (st.n + 1), 1 / o.likelihoodHorizon);
      const d = row - st.mean;
      st.mean += a * d;
      st.variance = (1 - a) * (st.variance + a * d * d);
      st.n++;
    }
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
        if (this.clean?.width !== this.feat.length) this.clean = new FlatRing(this.feat.length, o.trainRows);
        this.clean.push(this.feat);
      }
    }
    this.sinceTrain++;
    if (
      o.retrainEvery > 0 &&
      this.sinceTrain >= o.retrainEvery &&
      (this.clean?.length ?? 0) >= Math.min(o.trainRows, 100)
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
      pending: this.pending ? this.pending.toJSON() : { ts: [], values: [] },
      rows: this.rows,
      lastTs: this.lastTs,
      lastAnomaly: Number.isFinite(this.lastAnomaly) ? this.lastAnomaly : -1e15,
      sinceTrain: this.sinceTrain,
      recentLevels: this.recent.ordered(),
      levelStats: { ...this.levelStats },
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
  // Pending rows are flattened by metric count at training time: one short row would shift all after it.
  const width = s.metrics?.length ?? 0;
  if (
    p.values.some(
      (v) =>
        !Array.isArray(v) ||
        v.length !== width ||
        v.some((x) => typeof x !== 'number' || !Number.isFinite(x)),
    ) ||
    p.ts.some((t) => typeof t !== 'number' || !Number.isFinite(t))
  )
    throw new Error('detector state: pending rows malformed');
  if (typeof s.rows !== 'number' || typeof s.sinceTrain !== 'number' || !Array.isArray(s.recentLevels))
    throw new Error('detector state: counters malformed');
  return new LearnedDetector(s.options, s as LearnedDetectorState);
}
