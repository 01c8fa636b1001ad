/**
 * InfluxQL of the twin API (pure): only placeholders carry values, identifiers are validated and quoted,
 * scope predicates follow the role; request validation answers 400 with the field named.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiRequestError,
  chooseInterval,
  chooseRollup,
  parseAssetModel,
  parseQueryRequest,
  quoteIdent,
  scopePredicate,
  Binder,
  timeSeriesQuery,
  type Principal,
} from '../src/core';

const model = parseAssetModel(
  [
    'sites:',
    '  - id: s1',
    '    lines: [{ id: l1, assets: [{ id: a1, kind: cnc }, { id: a2, kind: robot }] }]',
    '  - id: s2',
    '    assets: [{ id: b1, kind: charger }]',
  ].join('\n'),
);
const who = (role: Principal['role'], scope: Partial<Principal['scope']> = {}): Principal => ({
  login: 'u',
  role,
  scope: { sites: [], lines: [], assets: [], ...scope },
});
const range = { from: Date.UTC(2026, 0, 1), to: Date.UTC(2026, 0, 2) };

describe('influxql', () => {
  it('binds every value and quotes validated metric names', () => {
    const q = timeSeriesQuery(
      {
        metrics: ['power'],
        aggregation: 'max',
        fill: 'none',
        rollup: 'rollup_1m',
        intervalMs: 60_000,
        range,
        maxSeries: 10,
      },
      who('worker', { assets: ['s1/a1'] }),
      { site: "s1' OR '1'='1" },
      model,
    );
    assert.ok(q);
    assert.equal(
      q.text,
      'SELECT max("max_power") AS "power" FROM "rollup_1m"."telemetry" WHERE ("site" = $p0 AND "asset" = $p1) AND "site" = $p2 AND time >= $p3 AND time < $p4 GROUP BY time(60000ms), "site", "line", "asset", "kind" fill(none) SLIMIT 10',
    );
    assert.equal(q.params.p2, "s1' OR '1'='1");
    assert.equal(q.params.p3, '2026-01-01T00:00:00.000Z');
    assert.throws(() => quoteIdent('power" FROM x'), /refusing identifier/);
  });

  it('scopes by role: citizen nothing, lead sites and lines, worker assets, head everything', () => {
    const b = new Binder();
    assert.equal(scopePredicate(who('citizen'), {}, model, 'telemetry', b), null);
    assert.equal(scopePredicate(who('head'), {}, model, 'telemetry', b), '');
    assert.equal(scopePredicate(who('head'), {}, model, 'audit', b), null);
    assert.equal(scopePredicate(who('admin'), {}, model, 'audit', b), '');
    const lead = new Binder();
    assert.equal(
      scopePredicate(who('lead', { lines: ['s1/l1'] }), {}, model, 'recommendations', lead),
      '(("site" = $p0 AND "asset" = $p1) OR ("site" = $p2 AND "asset" = $p3))',
    );
    // A filter naming only assets outside the scope matches nothing: the query is skipped.
    assert.equal(
      scopePredicate(
        who('worker', { assets: ['s1/a1'] }),
        { assets: [{ site: 's2', id: 'b1' }] },
        model,
        'telemetry',
        new Binder(),
      ),
      null,
    );
  });

  it('chooses rollups and intervals by range', () => {
    const h = 3_600_000;
    assert.equal(chooseRollup({ from: 0, to: 5 * h }), 'raw');
    assert.equal(chooseRollup({ from: 0, to: 24 * h }), 'rollup_1m');
    assert.equal(chooseRollup({ from: 0, to: 8 * 24 * h }), 'rollup_1h');
    assert.equal(chooseInterval({ from: 0, to: 24 * h }, 'rollup_1m', 1000, 11_000), 60_000);
    assert.equal(chooseInterval({ from: 0, to: 24 * h }, 'rollup_1m', undefined, 100), 900_000);
  });

  it('refuses bad requests with 400 naming the field', () => {
    const bad = (body: unknown, field: RegExp): void =>
      assert.throws(
        () => parseQueryRequest(body, Date.UTC(2026, 0, 1)),
        (e: unknown) => e instanceof ApiRequestError && e.status === 400 && field.test(e.message),
      );
    bad({ queries: [{ refId: 'A', queryType: 'nope' }] }, /queryType/);
    bad({ queries: [{ refId: 'A', queryType: 'timeseries', metrics: ['a;DROP'] }] }, /metric name/);
    bad({ range: { from: 0, to: 'now' }, queries: [{ refId: 'A', queryType: 'assets' }] }, /exceeds/);
    bad(
      {
        queries: [
          { refId: 'A', queryType: 'assets' },
          { refId: 'A', queryType: 'assets' },
        ],
      },
      /twice/,
    );
    const ok = parseQueryRequest(
      { range: { from: 'now-6h', to: 'now' }, queries: [{ refId: 'A', queryType: 'assets' }] },
      Date.UTC(2026, 0, 1),
    );
    assert.equal(ok.range.to - ok.range.from, 6 * 3_600_000);
  });
});
