/**
 * evtwin-score: canonical readings → anomaly score, flags, health and failure risk per asset.
 * Output 1: the reading, payload unchanged, with msg.evtwin.score. Output 2: points for evtwin-influx-out
 * (`scores`, `events`). Output 3: alerts for MQTT `evtwin/v1/{site}/alerts`, one message per event.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { Reading, ScoreResult } from '../../core';
import { receiptsOf } from '../../core/receipts';
import {
  RateMeter,
  Scorer,
  alertOf,
  alertsTopic,
  assetKeyOf,
  eventPoint,
  indexAssets,
  isReading,
  learnedOptionsFor,
  parseAssetModel,
  scorePoint,
  scorerOptionsFor,
  shortCount,
  type Point,
  type ScorerOptions,
} from '../../core';
import {
  FirstSeenGate,
  ModelStore,
  TrainPool,
  createInfluxQuery,
  readAssetHistory,
  receipts,
} from '../../runtime';
import type { InfluxConfigNode } from '../evtwin-influx/config';
import { StatusReporter, asError } from '../shared/status';

interface ScoreNodeDef extends NodeDef {
  assetsFile: string;
  rules: string;
  learned: boolean;
  trainRows: string;
  /** 'first': the first trainRows readings of each asset; 'influx': its last trainRows readings in InfluxDB. */
  trainFrom?: 'first' | 'influx';
  /** The evtwin-influx connection the history is read from. */
  influx?: string;
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

/** The node's settings → Scorer options (core/scoring/settings.ts); reads the asset model file. */
function scorerOptionsFrom(def: ScoreNodeDef, trainRows: number): ScorerOptions {
  const file = def.assetsFile?.trim();
  return scorerOptionsFor({
    rules: def.rules?.trim() ? (JSON.parse(def.rules) as unknown) : {},
    repeatMin: num(def.repeatMin, 10),
    learned: Boolean(def.learned),
    retrain: def.retrain !== false,
    trainRows,
    ...(file ? { assets: indexAssets(parseAssetModel(readFileSync(file, 'utf8'), file)) } : {}),
  });
}

interface ScoreNode extends Node {
  /** For tests and flows that flush before a planned restart. */
  evtwinFlush?: () => Promise<void>;
}

export = function register(RED: NodeAPI): void {
  function EvtwinScoreNode(this: ScoreNode, def: ScoreNodeDef): void {
    RED.nodes.createNode(this, def);
    setup(this, def);
  }

  interface Held {
    msg: NodeMessageInFlow;
    send: (msgs: (NodeMessage | NodeMessage[] | null)[]) => void;
    done: (err?: Error) => void;
  }

  function setup(node: ScoreNode, def: ScoreNodeDef): void {
    const trainRows = Math.round(num(def.trainRows, 2000, 20));
    const scoreEveryMs = num(def.scoreEveryS, 0) * 1000;
    const events = new RateMeter(60);
    let skipped = 0;
    let configError: string | undefined;
    let scorer: Scorer | undefined;
    let store: ModelStore | undefined;
    const fromHistory = def.learned && def.trainFrom === 'influx';
    const pool = def.learned && (def.retrain !== false || fromHistory) ? new TrainPool() : undefined;
    const history = { trained: 0, fallback: 0 };
    let gate: FirstSeenGate<Held> | undefined;
    const lastScorePoint = new Map<string, number>();
    try {
      scorer = new Scorer(scorerOptionsFrom(def, trainRows));
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
      if (fromHistory) {
        const influx = def.influx ? (RED.nodes.getNode(def.influx) as InfluxConfigNode | null) : null;
        if (!influx?.connection)
          throw new Error(
            `training from InfluxDB history needs an evtwin-influx connection (${influx?.configError ?? 'none chosen'})`,
          );
        const query = createInfluxQuery(influx.connection);
        gate = new FirstSeenGate<Held>(
          (key, first) => trainFromHistory(key, first.msg.payload as Reading, query),
          (h) => handle(h),
        );
      }
    } catch (err) {
      configError = asError(err).message;
      node.error(`configuration: ${configError}`);
    }
    node.evtwinFlush = async () => store?.flush();

    const status = new StatusReporter(node, () => {
      if (configError) return { fill: 'red', shape: 'ring', text: configError.slice(0, 60) };
      const perMin = events.perSecond(Date.now()) * 60;
      let text = `${shortCount(scorer?.size ?? 0)} assets · ${perMin.toFixed(1)} anomalies/min · ${shortCount(skipped)} skipped`;
      if (fromHistory)
        text += ` · history: ${history.trained} trained${history.fallback ? `, ${history.fallback} from first ${trainRows}` : ''}`;
      return { fill: perMin > 0 ? 'yellow' : 'green', shape: 'dot', text };
    });
    status.refresh();

    const retrain = (key: string): void => {
      if (!pool || !scorer) return;
      const s = scorer;
      const rows = s.trainingRows(key);
      const info = s.exportAsset(key);
      pool
        .train(rows, learnedOptionsFor(info?.kind ?? '', trainRows))
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

    /** Train a new asset's detector from its last readings in InfluxDB before its first reading is scored. */
    const trainFromHistory = async (
      key: string,
      first: Reading,
      query: ReturnType<typeof createInfluxQuery>,
    ): Promise<void> => {
      const fallback = (why: string): void => {
        history.fallback++;
        node.warn(`${key}: ${why}: training from its first ${trainRows} readings instead`);
        status.set({ fill: 'yellow', shape: 'ring', text: `${key}: ${why}; training from first readings` });
      };
      try {
        const t0 = Date.now();
        const rows = await readAssetHistory(query, first.site, first.asset, first.ts, trainRows);
        if (rows.length < 20) return fallback(`${rows.length} readings of history in InfluxDB`);
        const r = await (pool as TrainPool).train(rows, learnedOptionsFor(first.kind, trainRows));
        const s = scorer as Scorer;
        if (s.has(key)) s.replaceDetector(key, r.state);
        else {
          const info = { site: first.site, asset: first.asset, kind: first.kind };
          s.installTrained(first.line !== undefined ? { ...info, line: first.line } : info, r.state);
        }
        store?.touch(key);
        history.trained++;
        node.log(
          `trained the detector of ${key} on ${rows.length} readings of history (read and trained in ${Date.now() - t0} ms)`,
        );
      } catch (err) {
        fallback(`history not usable (${asError(err).message})`);
      }
    };

    node.on('input', (msg: NodeMessageInFlow, send, done) => {
      const reading = msg.payload;
      if (Array.isArray(reading)) return handleArray({ msg, send, done }, reading);
      if (gate && scorer && isReading(reading)) {
        const key = assetKeyOf(reading);
        if (!scorer.has(key) && !gate.admit(key, { msg, send, done })) return;
      }
      handle({ msg, send, done });
    });

    type Scored =
      | { ok: true; result: ScoreResult; points: Point[]; alerts: NodeMessage[] }
      | { ok: false; skipped: string };

    /** Score one reading: its score point (when due), event points and alert messages. */
    function scoreOne(reading: unknown): Scored {
      if (!scorer || !isReading(reading))
        return {
          ok: false,
          skipped: scorer ? 'payload is not a canonical reading' : `node not configured: ${configError}`,
        };
      const out = scorer.score(reading);
      if (!out.ok) return { ok: false, skipped: out.skipped };
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
      return { ok: true, result: out.result, points, alerts };
    }

    function handle({ msg, send, done }: Held): void {
      try {
        const origin = (msg as { evtwin?: Record<string, unknown> }).evtwin ?? {};
        const { _msgid: _ignored, ...rest } = msg;
        const s = scoreOne(msg.payload);
        if (!s.ok) {
          skipped++;
          send([{ ...rest, evtwin: { ...origin, scoreSkipped: s.skipped } }, null, null]);
          return done();
        }
        send([
          { ...rest, evtwin: { ...origin, score: s.result } },
          s.points.length > 0 ? { topic: 'evtwin/points', payload: s.points } : null,
          s.alerts,
        ]);
        done();
      } catch (err) {
        done(asError(err));
      }
    }

    /**
     * An array of readings (a batch from evtwin-ingest): one message out per output. While new assets
     * wait for their history, each reading goes its own way (the gate holds single messages), and each
     * receipt the message carries is forked so that it is settled once every part is.
     */
    function handleArray(held: Held, list: unknown[]): void {
      const { msg, send, done } = held;
      try {
        if (gate && scorer && list.some((r) => isReading(r) && !scorer.has(assetKeyOf(r)))) {
          for (const id of receiptsOf(msg)) receipts.fork(id, list.length);
          const { _msgid: _ignored, ...rest } = msg;
          for (const r of list) node.receive({ ...rest, payload: r });
          return done();
        }
        const origin = (msg as { evtwin?: Record<string, unknown> }).evtwin ?? {};
        const { _msgid: _ignored, ...rest } = msg;
        const scores: (ScoreResult | null)[] = [];
        const points: Point[] = [];
        const alerts: NodeMessage[] = [];
        for (const r of list) {
          const s = scoreOne(r);
          if (!s.ok) {
            skipped++;
            scores.push(null);
            continue;
          }
          scores.push(s.result);
          for (const p of s.points) points.push(p);
          for (const a of s.alerts) alerts.push(a);
        }
        send([
          { ...rest, evtwin: { ...origin, scores } },
          points.length > 0 ? { topic: 'evtwin/points', payload: points } : null,
          alerts,
        ]);
        done();
      } catch (err) {
        done(asError(err));
      }
    }

    node.on('close', (done: () => void) => {
      gate?.flushAll();
      status.close();
      Promise.all([store?.close(), pool?.close()])
        .catch((err: unknown) => node.warn(`closing: ${asError(err).message}`))
        .finally(done);
    });
  }
  RED.nodes.registerType('evtwin-score', EvtwinScoreNode);
};
