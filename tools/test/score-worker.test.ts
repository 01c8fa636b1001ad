/**
 * Retraining off the event loop: the learned detector trains on 10,000 rows in the worker thread
 * (runtime/trainWorker.ts) while the event loop stays responsive; the trained state scores at once;
 * the scorer asks for a retraining on drift and takes the retrained detector.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as learned from 'node-red-contrib-evtwin';
import { Scorer, learnedMetricsFor, type Reading } from 'node-red-contrib-evtwin';
import { TrainPool } from 'node-red-contrib-evtwin/runtime';
import { DeviceSim, loadAssets } from '../src/sim';

const pkg = dirname(require.resolve('node-red-contrib-evtwin/package.json'));
const START = Date.parse('2026-03-02T08:00:00Z');
const cnc = loadAssets().find((a) => a.id === 'cnc-01');
assert.ok(cnc);
const metrics = learnedMetricsFor('cnc');

function rows(n: number, offset = 0): Reading[] {
  const sim = new DeviceSim(cnc!, { seed: 5, rate: 1, startTs: START });
  const out: Reading[] = [];
  for (let i = 0; i < n; i++) {
    const r = sim.next();
    const values = { ...r.values };
    if (offset) values.voltage = (values.voltage ?? 0) + offset;
    out.push({ site: cnc!.site, asset: cnc!.id, kind: 'cnc', ts: r.ts, metrics: values });
  }
  return out;
}

describe('training in a worker thread', () => {
  it('trains on 10,000 rows without blocking the event loop', async () => {
    const data = rows(10_000).map((r) => ({ ts: r.ts, metrics: r.metrics }));
    const t0 = performance.now();
    const inline = learned.trainModel(data, { ...(metrics ? { metrics } : {}) });
    const inlineMs = performance.now() - t0;
    assert.ok(inline);

    const pool = new TrainPool(join(pkg, 'dist', 'runtime', 'trainWorker.js'));
    try {
      await pool.train(data.slice(0, 100), { ...(metrics ? { metrics } : {}) }); // start the thread outside the measurement
      const h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      // Keep the loop busy with timers, as a flow would be, while the worker trains.
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const w0 = performance.now();
      const result = await pool.train(data, { ...(metrics ? { metrics } : {}) });
      const wallMs = performance.now() - w0;
      clearInterval(timer);
      h.disable();
      const maxMs = h.max / 1e6;
      const p99Ms = h.percentile(99) / 1e6;
      console.log(
        `# training 10,000 rows: ${inlineMs.toFixed(0)} ms inline (blocks the loop that long); in the worker ` +
          `${result.ms.toFixed(0)} ms (${wallMs.toFixed(0)} ms wall), event-loop delay p99 ${p99Ms.toFixed(1)} ms, max ${maxMs.toFixed(1)} ms, ${ticks} timer ticks meanwhile; ` +
          `state ${(JSON.stringify(result.state).length / 1024).toFixed(0)} KiB`,
      );
      // Posting 10,000 rows to the worker is a structured clone on this thread: a few ms, not the training.
      assert.ok(maxMs < 60 && maxMs < inlineMs / 4, `event loop blocked up to ${maxMs.toFixed(1)} ms`);
      assert.ok(ticks > wallMs / 10, `${ticks} ticks in ${wallMs.toFixed(0)} ms`);
      const d = learned.restoreLearnedDetector(result.state);
      assert.ok(d.ready, 'the trained state scores at once');
      const next = rows(10_001).at(-1) as Reading;
      const out = d.update(next.ts, next.metrics);
      assert.ok(out.ready && Number.isFinite(out.score));
    } finally {
      await pool.close();
    }
  });

  it('asks for a retraining on drift and takes the retrained detector', async () => {
    const scorer = new Scorer({
      history: 2000,
      drift: { rate: 0.15, minReadings: 1000 },
      detector: {
        create: () => learned.createLearnedDetector({ trainRows: 1000, ...(metrics ? { metrics } : {}) }),
        restore: (s) => learned.restoreLearnedDetector(s),
      },
    });
    // Normal for 1,000 readings (training), then the supply voltage sits 30 V higher for good.
    const normal = rows(1500);
    const shifted = rows(8000, 30).slice(1500);
    let asked = -1;
    let i = 0;
    for (const r of [...normal, ...shifted]) {
      const out = scorer.score(r);
      assert.ok(out.ok);
      if (out.retrain && asked < 0) {
        asked = i;
        break;
      }
      i++;
    }
    assert.ok(asked > 1500, `retraining asked for after the shift (reading ${asked})`);
    const pool = new TrainPool(join(pkg, 'dist', 'runtime', 'trainWorker.js'));
    try {
      const key = 'plant-a/cnc-01';
      const trained = await pool.train(scorer.trainingRows(key), { ...(metrics ? { metrics } : {}) });
      scorer.replaceDetector(key, trained.state);
      let anomalies = 0;
      const after = rows(9000, 30).slice(asked + 1, asked + 1001);
      for (const r of after) {
        const out = scorer.score(r);
        assert.ok(out.ok);
        assert.ok(out.result.learned?.ready, 'the retrained detector is ready at once');
        if (out.result.learned?.anomaly) anomalies++;
      }
      console.log(
        `# drift: retraining asked for at reading ${asked} (shift at 1500); learned anomalies in the 1,000 readings after retraining: ${anomalies}`,
      );
      assert.ok(anomalies < 150, `${anomalies} anomalies after retraining`);
    } finally {
      await pool.close();
    }
  });
});
