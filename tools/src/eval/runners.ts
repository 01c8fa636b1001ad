/**
 * The detectors compared by the eval, all fed the same rows causally: ours (the core the node runs),
 * ml-isolation-forest 0.1.0 on the same features, a rolling z-score threshold, and "always anomaly".
 */
import { createRequire } from 'node:module';
import {
  createLearnedDetector,
  FeatureExtractor,
  METRIC_FEATURES,
  type LearnedAnomalyDetector,
  type LearnedDetectorOptions,
} from 'node-red-contrib-evtwin';

export interface Verdict {
  score: number;
  anomaly: boolean;
  /** Alert onset, when the detector says itself. */
  event?: boolean;
}

export interface Runner {
  readonly name: string;
  /** Called for every row in order; training rows come first (isTraining true). */
  update(ts: number, metrics: Readonly<Record<string, number>>, isTraining: boolean): Verdict;
  /** Called once after the last training row. */
  endTraining?(): void;
}

export class LearnedRunner implements Runner {
  readonly name = 'evtwin';
  readonly detector: LearnedAnomalyDetector;
  skipped = 0;
  constructor(options: LearnedDetectorOptions) {
    this.detector = createLearnedDetector(options);
  }
  update(ts: number, metrics: Readonly<Record<string, number>>): Verdict {
    const out = this.detector.update(ts, metrics);
    if (out.skipped) this.skipped++;
    return { score: out.score, anomaly: out.anomaly, event: out.event };
  }
}

/** Shared by the baselines: the same rolling features as ours, over every metric with a finite value. */
class FeatureRunner {
  protected fx: FeatureExtractor | null = null;
  protected metrics: string[] = [];
  protected feat = new Float64Array(0);
  constructor(protected readonly window: number) {}
  protected features(ts: number, m: Readonly<Record<string, number>>): Float64Array | null {
    if (!this.fx) {
      this.metrics = Object.keys(m).sort();
      this.fx = new FeatureExtractor(this.metrics, this.window);
      this.feat = new Float64Array(this.fx.dims);
    }
    const v = this.metrics.map((k) => m[k]);
    if (v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) return null;
    return this.fx.next(ts, v as number[], this.feat);
  }
}

interface MlForest {
  train(rows: number[][]): void;
  predict(rows: number[][]): number[];
}

export class MlIsolationForestRunner extends FeatureRunner implements Runner {
  readonly name = 'ml-isolation-forest';
  private readonly train: number[][] = [];
  private forest: MlForest | null = null;
  private threshold = Infinity;
  constructor(
    window: number,
    private readonly maxTrain = 4096,
  ) {
    super(window);
  }
  update(ts: number, m: Readonly<Record<string, number>>, isTraining: boolean): Verdict {
    const f = this.features(ts, m);
    if (!f) return { score: 0, anomaly: false };
    if (isTraining) {
      if (this.fx && this.train.length < this.maxTrain) this.train.push(Array.from(f));
      return { score: 0, anomaly: false };
    }
    if (!this.forest) return { score: 0, anomaly: false };
    const s = this.forest.predict([Array.from(f)])[0] ?? 0;
    return { score: s, anomaly: s > this.threshold };
  }
  endTraining(): void {
    const rows = this.train.slice(Math.min(this.window, Math.floor(this.train.length / 4)));
    if (rows.length < 2) return;
    const req = createRequire(__filename);
    const { IsolationForest } = req('ml-isolation-forest') as {
      IsolationForest: new (o: { nEstimators: number }) => MlForest;
    };
    this.forest = new IsolationForest({ nEstimators: 100 });
    this.forest.train(rows);
    // Its own threshold: the highest score it gave a training row.
    this.threshold = Math.max(...this.forest.predict(rows));
    this.train.length = 0;
  }
}

export class ZScoreRunner extends FeatureRunner implements Runner {
  readonly name: string;
  constructor(
    window: number,
    private readonly k = 4,
  ) {
    super(window);
    this.name = `rolling-z>${k}`;
  }
  update(ts: number, m: Readonly<Record<string, number>>, isTraining: boolean): Verdict {
    const f = this.features(ts, m);
    if (!f || isTraining) return { score: 0, anomaly: false };
    const nf = METRIC_FEATURES.length;
    let z = 0;
    for (let i = 0; i < this.metrics.length; i++) z = Math.max(z, Math.abs(f[i * nf + 6] as number));
    return { score: Math.min(1, z / (2 * this.k)), anomaly: z > this.k };
  }
}

export class AlwaysRunner implements Runner {
  readonly name = 'always-anomaly';
  update(_ts: number, _m: Readonly<Record<string, number>>, isTraining: boolean): Verdict {
    return { score: isTraining ? 0 : 1, anomaly: !isTraining };
  }
}
