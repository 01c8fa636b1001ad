/**
 * evtwin-score: canonical readings → anomaly score, flags, health and failure risk per asset.
 * Output 1: the reading, payload unchanged, with msg.evtwin.score. Output 2: points for evtwin-influx-out
 * (`scores`, `events`). Output 3: alerts for MQTT `evtwin/v1/{site}/alerts`, one message per event.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import {
  RateMeter,
  Scorer,
  alertOf,
  alertsTopic,
  assetKeyOf,
  eventPoint,
  indexAssets,
  isReading,
  learnedMetricsFor,
  parseAssetModel,
  scorePoint,
  shortCount,
  validateRuleOverrides,
  type DetectorFactory,
  type Point,
  type ScorerOptions,
} from '../../core';
import {
  createLearnedDetector,
  restoreLearnedDetector,
  type LearnedDetectorOptions,
} from '../../core/scoring/learned';
import { ModelStore, TrainPool } from '../../runtime';
import { StatusReporter, asError } from '../shared/status';

interface ScoreNodeDef extends NodeDef {
  assetsFile: string;
  rules: string;
  learned: boolean;
  trainRows: string;
  persist: boolean;
  modelDir: string;
  saveEveryS: string;
  retrain: boolean;
  scoreEveryS: string;
  repeatMin: string;
}

const num = (v: string | undefined, fallback: number, min = 0): number => {
  const n = Number(v);
  return v !== undefined && v !== '' && Number.isFinite(n) && n >= min ? n : fallback;
};

function scorerOptionsFrom(def: ScoreNodeDef, learned: LearnedDetectorOptions): ScorerOptions {
  const opts: ScorerOptions = {
    rules: validateRuleOverrides(def.rules?.trim() ? (JSON.parse(def.rules) as unknown) : {}),
    events: { repeatMs: num(def.repeatMin, 10) * 60_000, clearMs: 2 * 60_000 },
    history: def.learned && def.retrain !== false ? 2000 : 0,
  };
  const file = def.assetsFile?.trim();
  if (file) opts.assets = indexAssets(parseAssetModel(readFileSync(file, 'utf8'), file));
  if (def.learned) {
    const factory: DetectorFactory = {
      create: (info) => createLearnedDetector({ ...learned, ...metricsOption(info.kind) }),
      restore: (state) => restoreLearnedDetector(state),
    };
    opts.detector = factory;
  }
  return opts;
}

const metricsOption = (kind: string): LearnedDetectorOptions => {
  const metrics = learnedMetricsFor(kind);
  return metrics ? { metrics } : {};
};

interface ScoreNode extends Node {
  /** For tests and flows that flush before a planned restart. */
  evtwinFlush?: () => Promise<void>;
}

export = function register(RED: NodeAPI): void {
  function EvtwinScoreNode(this: ScoreNode, def: ScoreNodeDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  function setup(node: ScoreNode, def: ScoreNodeDef): void {
    const learnedOpts: LearnedDetectorOptions = { trainRows: Math.round(num(def.trainRows, 2000, 20)) };
    const scoreEveryMs = num(def.scoreEveryS, 0) * 1000;
    const events = new RateMeter(60);
    let skipped = 0;
    let configError: string | undefined;
    let scorer: Scorer | undefined;
    let store: ModelStore | undefined;
    const pool = def.learned && def.retrain !== false ? new TrainPool() : undefined;
    const lastScorePoint = new Map<string, number>();
    try {
      scorer = new Scorer(scorerOptionsFrom(def, learnedOpts));
      if (def.persist !== false) {
        const userDir = (RED.settings as unknown as { userDir?: string }).userDir ?? process.cwd();
        const dir = def.modelDir?.trim() || join(userDir, 'evtwin-models', node.id);
        const s = scorer;
        store = new ModelStore(dir, (key) => s.exportAsset(key), {
          debounceMs: num(def.saveEveryS, 30) * 1000,
          onError: (err) => node.warn(`saving a model: ${err.message}`),
        });
        const loaded = store.load();
        for (const w of loaded.warnings) node.warn(`model store: ${w}`);
        for (const [key, value] of loaded.states) {
          try {
            for (const w of s.importAsset(value)) node.warn(w);
          } catch (err) {
            node.warn(`model of ${key} not restored (${asError(err).message}): retraining it`);
          }
        }
        if (loaded.states.size > 0)
          node.log(`restored ${s.size} of ${loaded.states.size} asset models from ${dir}`);
      }
    } catch (err) {
      configError = asError(err).message;
      node.error(`configuration: ${configError}`);
    }
    node.evtwinFlush = async () => store?.flush();

    const status = new StatusReporter(node, () => {
      if (configError) return { fill: 'red', shape: 'ring', text: configError.slice(0, 60) };
      const perMin = events.perSecond(Date.now()) * 60;
      const text = `${shortCount(scorer?.size ?? 0)} assets · ${perMin.toFixed(1)} anomalies/min · ${shortCount(skipped)} skipped`;
      return { fill: perMin > 0 ? 'yellow' : 'green', shape: 'dot', text };
    });
    status.refresh();

    const retrain = (key: string): void => {
      if (!pool || !scorer) return;
      const s = scorer;
      const rows = s.trainingRows(key);
      const info = s.exportAsset(key);
      pool
        .train(rows, { ...learnedOpts, ...metricsOption(info?.kind ?? '') })
        .then((r) => {
          s.replaceDetector(key, r.state);
          store?.touch(key);
          node.log(`retrained the detector of ${key} on ${rows.length} readings in ${r.ms.toFixed(0)} ms`);
        })
        .catch((err: unknown) => {
          s.retrainFailed(key);
          node.warn(`retraining ${key}: ${asError(err).message}`);
        });
    };

    node.on('input', (msg: NodeMessageInFlow, send, done) => {
      try {
        const reading = msg.payload;
        const origin = (msg as { evtwin?: Record<string, unknown> }).evtwin ?? {};
        const { _msgid: _ignored, ...rest } = msg;
        if (!scorer || !isReading(reading)) {
          skipped++;
          const why = scorer ? 'payload is not a canonical reading' : `node not configured: ${configError}`;
          send([{ ...rest, evtwin: { ...origin, scoreSkipped: why } }, null, null]);
          return done();
        }
        const out = scorer.score(reading);
        if (!out.ok) {
          skipped++;
          send([{ ...rest, evtwin: { ...origin, scoreSkipped: out.skipped } }, null, null]);
          return done();
        }
        const key = assetKeyOf(reading);
        store?.touch(key);
        if (out.retrain) retrain(key);
        const points: Point[] = [];
        const last = lastScorePoint.get(key);
        if (
          scoreEveryMs === 0 ||
          last === undefined ||
          reading.ts - last >= scoreEveryMs ||
          out.result.anomaly
        ) {
          points.push(scorePoint(reading, out.result));
          lastScorePoint.set(key, reading.ts);
        }
        for (const f of out.events) points.push(eventPoint(reading, f));
        if (out.events.length > 0) events.add(out.events.length, Date.now());
        const alerts: NodeMessage[] = out.events.map((f) => ({
          topic: alertsTopic(reading.site),
          payload: alertOf(reading, f),
        }));
        send([
          { ...rest, evtwin: { ...origin, score: out.result } },
          points.length > 0 ? { topic: 'evtwin/points', payload: points } : null,
          alerts,
        ]);
        done();
      } catch (err) {
        done(asError(err));
      }
    });

    node.on('close', (done: () => void) => {
      status.close();
      Promise.all([store?.close(), pool?.close()])
        .catch((err: unknown) => node.warn(`closing: ${asError(err).message}`))
        .finally(done);
    });
  }
  RED.nodes.registerType('evtwin-score', EvtwinScoreNode);
};
