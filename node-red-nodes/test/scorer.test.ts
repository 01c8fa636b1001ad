/**
 * The per-asset scorer (core/scoring/scorer.ts) with the learned detector: bad input is skipped with a
 * reason before it touches any state (the model is not poisoned: the good readings around it score
 * exactly as if it had never come), and corrupt or foreign model states give clear errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Reading } from '../src/core/reading';
import {
  createLearnedDetector,
  restoreLearnedDetector,
  type LearnedDetectorState,
} from '../src/core/scoring/learned';
import { Scorer, SnapshotError, type DetectorFactory, type ScoreOutcome } from '../src/core/scoring/scorer';

const T0 = Date.UTC(2026, 2, 2);
const KEY = 'plant-a/p1';
const factory: DetectorFactory = {
  create: () => createLearnedDetector({ trainRows: 150 }),
  restore: (state) => restoreLearnedDetector(state),
};

const STEP = 300_000;
function reading(i: number, metrics: Record<string, number>): Reading {
  return { site: 'plant-a', asset: 'p1', kind: 'pump', ts: T0 + i * STEP, metrics };
}

/** Deterministic noise in [-0.5, 0.5) by index, so any reading can be rebuilt. */
const u = (i: number, k: number): number => {
  let h = Math.imul(i * 2 + k + 1, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  return ((h ^ (h >>> 13)) >>> 0) / 4294967296 - 0.5;
};

/** A pump every 5 min: flow varies, pressure follows it, speed is constant (a set point). */
function normal(i: number): Reading {
  const x = 4 * u(i, 0);
  return reading(i, { flow: 50 + x, pressure: 4 - 0.05 * x + 0.01 * u(i, 1), speed: 1450 });
}

const ok = (o: ScoreOutcome): Extract<ScoreOutcome, { ok: true }> => {
  assert.equal(o.ok, true, o.ok ? '' : o.skipped);
  return o as Extract<ScoreOutcome, { ok: true }>;
};

test('not ready while training, then ready; normal readings stay quiet and bounded', () => {
  const s = new Scorer({ detector: factory });
  const outs = Array.from({ length: 400 }, (_, i) => ok(s.score(normal(i))));
  assert.equal(outs[100]?.result.learned?.ready, false);
  assert.equal(outs[399]?.result.ready, true);
  const after = outs.slice(160);
  const alarms = after.filter((o) => o.result.anomaly).length;
  assert.ok(alarms <= 3, `${alarms} false alarms on normal data`);
  for (const o of outs) {
    assert.ok(o.result.score >= 0 && o.result.score <= 1);
    assert.ok(o.result.health >= 0 && o.result.health <= 100);
    assert.ok(o.result.failureRisk > 0 && o.result.failureRisk < 1);
  }
});

test('NaN, Infinity, non-numbers, out-of-order and duplicate timestamps: skipped with a reason, state untouched', () => {
  const s = new Scorer({ detector: factory });
  for (let i = 0; i < 300; i++) ok(s.score(normal(i)));
  const before = JSON.stringify(s.exportAsset(KEY));
  const bad: [Reading, RegExp][] = [
    [reading(300, { flow: NaN, pressure: 4, speed: 1450 }), /metric flow is not a finite number \(NaN\)/],
    [reading(300, { flow: 50, pressure: Infinity, speed: 1450 }), /pressure is not a finite number/],
    [
      reading(300, { flow: '5' as unknown as number, pressure: 4, speed: 1450 }),
      /flow is not a finite number/,
    ],
    [normal(299), /duplicate timestamp/],
    [normal(250), /out of order: ts \d+ is 14700000 ms before/],
    [{ ...normal(300), ts: 1.5 }, /bad timestamp 1\.5/],
    [reading(300, {}), /no metrics/],
    [{ ...normal(300), kind: 'valve' }, /kind valve differs from pump/],
  ];
  for (const [r, why] of bad) {
    const o = s.score(r);
    assert.equal(o.ok, false, `${why} accepted`);
    assert.match(o.ok ? '' : o.skipped, why);
  }
  assert.equal(JSON.stringify(s.exportAsset(KEY)), before, 'no state changed');
});

test('a missing metric skips the learned detector with a reason, the rules still run, the model is unchanged', () => {
  const s = new Scorer({ detector: factory });
  for (let i = 0; i < 300; i++) ok(s.score(normal(i)));
  const det = JSON.stringify(s.exportAsset(KEY)?.detector);
  const o = ok(s.score(reading(300, { flow: 50, speed: 1450 })));
  assert.match(o.result.learned?.skipped ?? '', /missing metrics: pressure/);
  assert.equal(o.result.learned?.anomaly, false);
  assert.equal(JSON.stringify(s.exportAsset(KEY)?.detector), det);
});

test('unpoisoned: good readings score the same with or without bad ones among them', () => {
  const clean = new Scorer({ detector: factory });
  const dirty = new Scorer({ detector: factory });
  let found = 0;
  for (let i = 0; i < 500; i++) {
    const r = normal(i);
    // A fault at 400..404 so the comparison covers anomalous rows too.
    if (i >= 400 && i < 405) r.metrics.pressure = (r.metrics.pressure as number) + 2;
    if (i % 7 === 3) {
      dirty.score({ ...r, metrics: { ...r.metrics, flow: NaN } });
      dirty.score({ ...r, ts: r.ts - 2 * STEP });
    }
    // Missing metrics and an absurd value: the rules see it, the detector skips it.
    if (i % 11 === 5) ok(dirty.score({ ...r, ts: r.ts - STEP / 2, metrics: { flow: 1e6 } }));
    const a = ok(clean.score(r));
    const b = ok(dirty.score(r));
    assert.equal(b.result.learned?.score, a.result.learned?.score, `reading ${i}`);
    assert.equal(b.result.learned?.anomaly, a.result.learned?.anomaly, `reading ${i}`);
    if (i >= 400 && i < 405 && a.result.learned?.anomaly) found++;
  }
  assert.deepEqual(dirty.exportAsset(KEY)?.detector, clean.exportAsset(KEY)?.detector);
  assert.ok(found >= 3, `the fault was found on ${found} of 5 readings`);
});

test('constant signals: modelled around, a change of one is flagged and named; all-constant assets work', () => {
  const s = new Scorer({ detector: factory });
  for (let i = 0; i < 300; i++) ok(s.score(normal(i)));
  const st = s.exportAsset(KEY)?.detector as LearnedDetectorState;
  assert.deepEqual(st.constants, { speed: 1450 });
  const o = ok(s.score(reading(300, { ...normal(300).metrics, speed: 1200 })));
  assert.equal(o.result.anomaly, true);
  assert.equal(o.result.flags[0]?.type, 'learned');
  assert.equal(o.result.flags[0]?.metric, 'speed');

  const flat = new Scorer({ detector: factory });
  for (let i = 0; i < 300; i++) {
    const r = ok(flat.score(reading(i, { a: 1, b: 2 })));
    assert.ok(Number.isFinite(r.result.score));
    if (i >= 150) assert.equal(r.result.anomaly, false, `constant reading ${i}`);
  }
  assert.equal((flat.exportAsset(KEY)?.detector as LearnedDetectorState).model, null);
  assert.equal(ok(flat.score(reading(300, { a: 1, b: 3 }))).result.anomaly, true);
});

test('snapshots: round trip continues identically; corrupt or other-version states give clear errors', () => {
  const s = new Scorer({ detector: factory });
  for (let i = 0; i < 300; i++) ok(s.score(normal(i)));
  const snap = JSON.parse(JSON.stringify(s.exportAsset(KEY))) as Record<string, unknown>;
  const copy = new Scorer({ detector: factory });
  assert.deepEqual(copy.importAsset(structuredClone(snap)), []);
  // The same scores (the restored rolling sums may differ in the last bits, hence the tolerance).
  for (let i = 300; i < 320; i++) {
    const a = ok(copy.score(normal(i))).result;
    const b = ok(s.score(normal(i))).result;
    assert.ok(Math.abs(a.score - b.score) < 1e-9 && a.anomaly === b.anomaly, `reading ${i}`);
    assert.ok(Math.abs(a.health - b.health) < 1e-9, `reading ${i}`);
  }

  const fresh = (): Scorer => new Scorer({ detector: factory });
  assert.throws(() => fresh().importAsset('{'), SnapshotError);
  assert.throws(() => fresh().importAsset({ ...snap, version: 2 }), /version 2, this scorer reads 1/);
  assert.throws(() => fresh().importAsset({ ...snap, format: 'x' }), /format is not evtwin-asset-state/);
  assert.throws(() => fresh().importAsset({ ...snap, rules: [] }), /rule state malformed/);

  const det = snap.detector as Record<string, unknown>;
  const model = det.model as { forest: Record<string, unknown>; residual: Record<string, unknown> };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...det, version: 99 }, /version 99 is not supported \(this build reads version 1\)/],
    [{ ...det, kind: 'other' }, /kind "other"/],
    [{ ...det, model: { ...model, forest: { ...model.forest, feature: 'AAA' } } }, /truncated|do not match/],
    [
      {
        ...det,
        model: { ...model, residual: { ...model.residual, scale: Buffer.alloc(8 * 25).toString('base64') } },
      },
      /residual/,
    ],
  ];
  for (const [bad, why] of cases) {
    assert.throws(() => restoreLearnedDetector(bad), why);
    const sc = fresh();
    const warnings = sc.importAsset({ ...snap, detector: bad });
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0] as string,
      /learned detector of plant-a\/p1 not restored \(detector state: .*\): training a new one/,
    );
    // The asset keeps scoring (rules now, a new detector trains from the coming readings).
    const o = ok(sc.score(normal(300)));
    assert.equal(o.result.learned?.ready, false);
  }
  assert.throws(() => s.replaceDetector(KEY, { format: 'evtwin-detector', version: 7 }), SnapshotError);
  // The failed replacement left the working detector in place.
  assert.equal(ok(s.score(normal(330))).result.learned?.ready, true);
});
