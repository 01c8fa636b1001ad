import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createLearnedDetector,
  cyclesFor,
  restoreLearnedDetector,
  trainModel,
  type TrainingRow,
} from '../src/core/scoring/learned';

const T0 = Date.UTC(2024, 0, 1);
function rows(n: number, seed = 1): TrainingRow[] {
  let s = seed;
  const r = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5;
  return Array.from({ length: n }, (_, i) => {
    const x = 10 * Math.sin(i / 20) + r();
    return { ts: T0 + i * 60_000, metrics: { flow: x, pressure: 50 - 0.5 * x + r() * 0.2, valve: 1 } };
  });
}

test('trains on the first rows, then flags a broken relation and explains it', () => {
  const det = createLearnedDetector({ trainRows: 300 });
  const data = rows(600);
  for (const [i, r] of data.entries()) {
    const o = det.update(r.ts, r.metrics);
    assert.equal(o.ready, i >= 299);
  }
  // More normal rows (other noise, the signal's phase continuing: a restart would be a real step).
  const quiet = rows(800, 7)
    .slice(600)
    .map((r) => det.update(r.ts, r.metrics));
  assert.ok(quiet.filter((o) => o.anomaly).length < 10, String(quiet.filter((o) => o.anomaly).length));
  const o = det.update(T0 + 2000 * 60_000, { flow: 5, pressure: 60, valve: 1 });
  assert.equal(o.anomaly, true);
  assert.ok(o.score >= 0.5 && o.score <= 1);
  assert.equal(o.contributions[0]?.metric, 'pressure');
  // A signal constant in training that moves is flagged and named.
  const c = det.update(T0 + 2001 * 60_000, { flow: 0, pressure: 50, valve: 0 });
  assert.equal(c.anomaly, true);
  assert.equal(c.contributions[0]?.metric, 'valve');
});

test('bad rows are skipped with a reason and do not poison the model', () => {
  const det = createLearnedDetector({ trainRows: 200 });
  const data = rows(400);
  const reasons: string[] = [];
  for (const [i, r] of data.entries()) {
    det.update(r.ts, r.metrics);
    if (i % 50 === 10) {
      for (const o of [
        det.update(r.ts, r.metrics),
        det.update(r.ts - 1000, r.metrics),
        det.update(r.ts + 1, { flow: NaN, pressure: 1, valve: 1 }),
        det.update(r.ts + 2, { flow: 1e12, valve: 1 }),
      ])
        reasons.push(o.skipped ?? 'scored');
    }
  }
  assert.ok(reasons.includes('duplicate timestamp'));
  assert.ok(reasons.includes('out-of-order timestamp'));
  assert.ok(reasons.includes('not a finite number: flow'));
  assert.ok(reasons.includes('missing metrics: pressure'));
  assert.ok(!reasons.includes('scored'));
  // Same model as a detector that never saw the bad rows.
  const clean = createLearnedDetector({ trainRows: 200 });
  for (const r of data) clean.update(r.ts, r.metrics);
  assert.deepEqual(det.toJSON().model, clean.toJSON().model);
});

test('causal: a future row cannot change a past score', () => {
  const data = rows(500);
  const a = createLearnedDetector({ trainRows: 200 });
  const b = createLearnedDetector({ trainRows: 200 });
  const sa = data.map((r) => a.update(r.ts, r.metrics));
  const changed = data.map((r, i) => (i === 450 ? { ...r, metrics: { ...r.metrics, flow: 999 } } : r));
  const sb = changed.map((r) => b.update(r.ts, r.metrics));
  assert.deepEqual(sb.slice(0, 450), sa.slice(0, 450));
  assert.notDeepEqual(sb[450], sa[450]);
});

test('state round trip continues identically; size stays bounded', () => {
  const data = rows(900);
  const det = createLearnedDetector({ trainRows: 400 });
  for (const r of data.slice(0, 600)) det.update(r.ts, r.metrics);
  const json = JSON.stringify(det.toJSON());
  assert.ok(json.length < 200_000, `state ${json.length} bytes`);
  const back = restoreLearnedDetector(JSON.parse(json));
  // Same decisions; levels agree up to float rounding (running sums restart from the saved window).
  for (const r of data.slice(600)) {
    const x = back.update(r.ts, r.metrics);
    const y = det.update(r.ts, r.metrics);
    assert.equal(x.anomaly, y.anomaly);
    assert.ok(Math.abs(x.score - y.score) < 1e-9);
  }
});

test('trainModel is a pure function whose state restores into a ready detector', () => {
  const data = rows(700);
  const st = trainModel(data.slice(0, 400));
  assert.deepEqual(
    JSON.parse(JSON.stringify(st)),
    JSON.parse(JSON.stringify(trainModel(data.slice(0, 400)))),
  );
  const det = restoreLearnedDetector(st);
  assert.equal(det.ready, true);
  const o = det.update(data[400]!.ts, data[400]!.metrics);
  assert.equal(o.ready, true);
  assert.equal(o.skipped, undefined);
});

test('corrupt or foreign states throw clear errors', () => {
  const st = trainModel(rows(300));
  assert.throws(() => restoreLearnedDetector(null), /not an object/);
  assert.throws(() => restoreLearnedDetector({ ...st, format: 'other' }), /unknown format/);
  assert.throws(() => restoreLearnedDetector({ ...st, version: 99 }), /version 99 is not supported/);
  assert.throws(() => restoreLearnedDetector({ ...st, kind: 'rules' }), /kind/);
  const broken = JSON.parse(JSON.stringify(st)) as typeof st;
  broken.model!.residual.chol = 'AAAA';
  assert.throws(() => restoreLearnedDetector(broken), /detector state: residual/);
  const broken2 = JSON.parse(JSON.stringify(st)) as typeof st;
  broken2.model!.calForest.grid = [1];
  assert.throws(() => restoreLearnedDetector(broken2), /threshold calibration is corrupt/);
  // A detector still collecting its training rows: a short or non-numeric pending row is refused.
  const collecting = createLearnedDetector({ trainRows: 300 });
  for (const r of rows(50)) collecting.update(r.ts, r.metrics);
  const pending = JSON.parse(JSON.stringify(collecting.toJSON())) as typeof st;
  assert.equal(pending.pending.values.length, 50);
  restoreLearnedDetector(pending);
  pending.pending.values[3] = [1, 2];
  assert.throws(() => restoreLearnedDetector(pending), /pending rows malformed/);
  pending.pending.values[3] = [1, 2, Number.NaN];
  assert.throws(() => restoreLearnedDetector(JSON.parse(JSON.stringify(pending))), /pending rows malformed/);
});

test('trainModel with the metrics given, and skipping bad rows, trains on the valid ones', () => {
  const data: TrainingRow[] = rows(300);
  data[10] = { ts: data[10]!.ts, metrics: { flow: Number.NaN, pressure: 1, valve: 1 } };
  const st = trainModel(data, { metrics: ['pressure', 'flow'] });
  assert.deepEqual(st.metrics, ['pressure', 'flow']);
  assert.equal(st.rows, 299);
  assert.deepEqual(st.features?.metrics, ['pressure', 'flow']);
  const same = trainModel(
    data.filter((_, i) => i !== 10),
    { metrics: ['pressure', 'flow'] },
  );
  assert.deepEqual(JSON.stringify(same.model), JSON.stringify(st.model));
});

test('week features dropped only when the training spans a day but not a week; day features always', () => {
  const short = trainModel(rows(400)); // 400 minutes: neither cycle covered, both kept (as before)
  assert.deepEqual(short.features?.cycles, { day: true, week: true });
  const days = rows(400).map((r, i) => ({ ...r, ts: T0 + i * 600_000 })); // 400 x 10 min = 2.8 days
  assert.deepEqual(trainModel(days).features?.cycles, { day: true, week: false });
  const hourly = rows(400).map((r, i) => ({ ...r, ts: T0 + i * 3_600_000 })); // 400 hours
  assert.deepEqual(trainModel(hourly).features?.cycles, { day: true, week: true });
  assert.deepEqual(cyclesFor(86_400_000 - 1), { day: true, week: true });
  assert.deepEqual(cyclesFor(86_400_000), { day: true, week: false });
  assert.deepEqual(cyclesFor(7 * 86_400_000), { day: true, week: true });
  // States saved before this option restore with both cycles.
  const old = JSON.parse(JSON.stringify(trainModel(days))) as typeof short;
  delete old.features?.cycles;
  assert.deepEqual(restoreLearnedDetector(old).toJSON().features?.cycles, { day: true, week: true });
  const bad = JSON.parse(JSON.stringify(short)) as typeof short;
  (bad.features as unknown as { cycles: unknown }).cycles = { day: 'yes' };
  assert.throws(() => restoreLearnedDetector(bad), /feature cycles are malformed/);
});

test('likelihood gate (one metric): a spike that keeps coming stops being flagged, a new kind is', () => {
  let s = 11;
  const r = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5;
  const series = (n: number, spikeEvery: number, from = 0): TrainingRow[] =>
    Array.from({ length: n }, (_, k) => {
      const i = from + k;
      const spike = spikeEvery > 0 && i % spikeEvery === 0 ? 8 : 0;
      return { ts: T0 + i * 300_000, metrics: { cpu: 20 + 2 * Math.sin(i / 30) + r() + spike } };
    });
  const run = (likelihoodZ: number): boolean[] => {
    const det = createLearnedDetector({ trainRows: 300, likelihoodZ });
    for (const x of series(300, 0)) det.update(x.ts, x.metrics);
    return series(3000, 40, 300).map((x) => det.update(x.ts, x.metrics).anomaly);
  };
  const gated = run(3);
  const plain = run(0);
  const late = (f: boolean[]): number => f.slice(2000).filter(Boolean).length;
  const early = (f: boolean[]): number => f.slice(0, 200).filter(Boolean).length;
  // Without the gate the recurring spike is flagged to the end; with it, it soon is ordinary.
  assert.ok(late(plain) > 10, `plain: ${late(plain)} late flags`);
  assert.ok(late(gated) < late(plain) / 3, `gated: ${late(gated)} vs plain ${late(plain)} late flags`);
  assert.ok(early(gated) >= 1, 'the first spikes are still flagged');
});
