import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IsolationForest } from '../src/core/scoring/iforest';
import { averagePathLength, harmonic } from '../src/core/scoring/stats';

function cloud(n: number, seed = 3): number[][] {
  let s = seed;
  const r = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5;
  return Array.from({ length: n }, () => [r(), r(), r()]);
}

test('c(n) is the average unsuccessful BST search path: 2H(n-1) - 2(n-1)/n', () => {
  assert.equal(averagePathLength(1), 0);
  assert.equal(averagePathLength(2), 1);
  assert.ok(Math.abs(averagePathLength(3) - (2 * 1.5 - 4 / 3)) < 1e-12);
  // psi = 256: 2 H(255) - 255/128 = 10.2487 (10.24 with the log approximation of H).
  assert.ok(Math.abs(averagePathLength(256) - 10.2487) < 1e-3, String(averagePathLength(256)));
  assert.ok(Math.abs(harmonic(100) - 5.187377517639621) < 1e-9);
});

test('an outlier has a shorter path and a higher score than the bulk', () => {
  const f = IsolationForest.fit(cloud(2000), { seed: 5 });
  assert.equal(f.trees, 100);
  assert.equal(f.sampleSize, 256);
  const inlier = f.pathLength([0, 0, 0]);
  const outlier = f.pathLength([5, 5, 5]);
  assert.ok(outlier < inlier - 2, `${outlier} vs ${inlier}`);
  assert.ok(f.score([5, 5, 5]) > 0.6 && f.score([0, 0, 0]) < 0.5);
  // Height limit ceil(log2 256) = 8 plus c(size) at the leaf: nothing deeper than 8 + c(256).
  assert.ok(inlier <= 8 + averagePathLength(256));
});

test('same seed, same forest; another seed, another forest', () => {
  const rows = cloud(1000);
  const a = JSON.stringify(IsolationForest.fit(rows, { seed: 9 }).toJSON());
  assert.equal(JSON.stringify(IsolationForest.fit(rows, { seed: 9 }).toJSON()), a);
  assert.notEqual(JSON.stringify(IsolationForest.fit(rows, { seed: 10 }).toJSON()), a);
});

test('serialisation round trip scores identically; corrupt arrays are refused', () => {
  const f = IsolationForest.fit(cloud(1000), { seed: 2 });
  const j = JSON.parse(JSON.stringify(f.toJSON())) as ReturnType<typeof f.toJSON>;
  const g = IsolationForest.fromJSON(j);
  for (const x of cloud(50, 77)) assert.equal(g.score(x), f.score(x));
  const right = Buffer.from(j.right, 'base64');
  right.writeUInt16LE(60000, 0);
  assert.throws(() => IsolationForest.fromJSON({ ...j, right: right.toString('base64') }), /corrupt/);
  assert.throws(
    () => IsolationForest.fromJSON({ ...j, value: j.value.slice(0, 12) }),
    /do not match|truncated/,
  );
});
