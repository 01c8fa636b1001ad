import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FeatureExtractor, METRIC_FEATURES } from '../src/core/scoring/features';
import { MahalanobisModel } from '../src/core/scoring/residual';

test('rolling features describe the previous window; z-score flags a spike', () => {
  const fx = new FeatureExtractor(['a'], 4);
  const t0 = Date.UTC(2024, 0, 1);
  for (const [i, v] of [1, 2, 3, 4].entries()) fx.next(t0 + i * 60_000, [v]);
  const f = fx.next(t0 + 4 * 60_000, [10]);
  assert.equal(f.length, METRIC_FEATURES.length + 4);
  assert.deepEqual(Array.from(f.slice(0, 6)), [10, 2.5, Math.sqrt(5 / 3), 1, 4, 6]);
  assert.ok(Math.abs((f[6] as number) - 7.5 / Math.sqrt(5 / 3)) < 1e-12);
  // Next row: the window is now [2, 3, 4, 10].
  const g = fx.next(t0 + 5 * 60_000, [0]);
  assert.equal(g[1], 4.75);
  assert.equal(g[4], 10);
});

test('a constant window gives finite features, and the state round-trips', () => {
  const fx = new FeatureExtractor(['a', 'b'], 3);
  for (let i = 0; i < 10; i++) {
    const f = fx.next(i * 1000, [5, i]);
    assert.ok(f.every(Number.isFinite));
  }
  const back = FeatureExtractor.fromJSON(JSON.parse(JSON.stringify(fx.toJSON())));
  assert.deepEqual(Array.from(back.next(11_000, [5, 11])), Array.from(fx.next(11_000, [5, 11])));
});

test('rolling min and max (kept incrementally) equal a scan of the previous window, also after a restore', () => {
  const W = 5;
  const fx = new FeatureExtractor(['a'], W);
  let s = 3;
  // Small integers so equal values (ties at the min or max leaving the window) are common.
  const r = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % 7) - 3;
  const seen: number[] = [];
  let f = fx;
  for (let i = 0; i < 400; i++) {
    if (i === 200) f = FeatureExtractor.fromJSON(JSON.parse(JSON.stringify(f.toJSON())));
    const x = i % 50 === 0 ? 1e6 : r();
    const out = f.next(i * 1000, [x]);
    const win = seen.slice(-W);
    if (win.length) {
      assert.equal(out[3], Math.min(...win), `min at row ${i}`);
      assert.equal(out[4], Math.max(...win), `max at row ${i}`);
    }
    seen.push(x);
  }
});

test('Mahalanobis residual sees a broken correlation that per-metric ranges miss', () => {
  const rows: number[][] = [];
  for (let i = 0; i < 500; i++) {
    const x = Math.sin(i / 7) * 10;
    rows.push([x, 2 * x + Math.cos(i) * 0.1]);
  }
  const m = MahalanobisModel.fit(rows, 0.01);
  const normal = m.distance2([5, 10]);
  const broken = m.distance2([5, -10]); // both within range, relation broken
  assert.ok(broken > 100 * normal, `${broken} vs ${normal}`);
  const back = MahalanobisModel.fromJSON(JSON.parse(JSON.stringify(m.toJSON())));
  assert.ok(Math.abs(back.distance2([5, -10]) - broken) / broken < 1e-5);
});
