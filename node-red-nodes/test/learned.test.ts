import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createLearnedDetector,
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
  const quiet = rows(200, 7).map((r) => det.update(r.ts + 600 * 60_000, r.metrics));
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
});
