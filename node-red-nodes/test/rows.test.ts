/** Flat row buffers of the scorer: same rows back, in order, as the object arrays they replace. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FlatRing, FlatRows, MetricRing } from '../src/core/scoring/rows';

describe('row buffers', () => {
  it('FlatRows keeps every row in order and round-trips through JSON', () => {
    const rows = new FlatRows(3);
    for (let i = 0; i < 200; i++) rows.push(1000 + i, [i, i * 2, -i]);
    assert.equal(rows.length, 200);
    assert.deepEqual(rows.times().slice(0, 3), [1000, 1001, 1002]);
    assert.deepEqual(Array.from(rows.flat().subarray(3 * 199)), [199, 398, -199]);
    const json = rows.toJSON();
    assert.deepEqual(json.values[5], [5, 10, -5]);
    assert.deepEqual(FlatRows.from(json, 3).toJSON(), json);
  });

  it('FlatRing keeps the last `capacity` rows, oldest first', () => {
    const ring = new FlatRing(2, 100);
    for (let i = 0; i < 250; i++) ring.push(Float64Array.of(i, -i));
    const rows = ring.rows();
    assert.equal(rows.length, 100);
    assert.deepEqual(Array.from(rows[0] as Float64Array), [150, -150]);
    assert.deepEqual(Array.from(rows[99] as Float64Array), [249, -249]);
    const small = new FlatRing(1, 10);
    small.push([7]);
    assert.deepEqual(
      small.rows().map((r) => r[0]),
      [7],
    );
  });

  it('MetricRing keeps readings by metric name, widens for new names and omits missing values', () => {
    const ring = new MetricRing(3);
    ring.push(1, { a: 1 });
    ring.push(2, { a: 2, b: 20 });
    ring.push(3, { b: 30 });
    assert.deepEqual(ring.rows(), [
      { ts: 1, metrics: { a: 1 } },
      { ts: 2, metrics: { a: 2, b: 20 } },
      { ts: 3, metrics: { b: 30 } },
    ]);
    ring.push(4, { a: 4, c: 400 });
    assert.deepEqual(ring.rows(), [
      { ts: 2, metrics: { a: 2, b: 20 } },
      { ts: 3, metrics: { b: 30 } },
      { ts: 4, metrics: { a: 4, c: 400 } },
    ]);
    const many = new MetricRing(2000);
    for (let i = 0; i < 5000; i++) many.push(i, { x: i, y: i / 2 });
    const got = many.rows();
    assert.equal(got.length, 2000);
    assert.deepEqual(got[0], { ts: 3000, metrics: { x: 3000, y: 1500 } });
    assert.deepEqual(got[1999], { ts: 4999, metrics: { x: 4999, y: 2499.5 } });
    assert.equal(new MetricRing(0).length, 0);
  });
});
