/** Energy recommendations: known streams give the expected kWh and cost, in the core and in Node-RED. */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import type { NodeMessage } from 'node-red';
import {
  RecommendConfigError,
  Recommender,
  encodePoint,
  priceAt,
  recommendationPoint,
  type Reading,
  type Recommendation,
} from '../src/core';

const T0 = Date.parse('2026-03-02T08:00:00Z'); // a Monday
const cnc = (ts: number, power: number, state: number): Reading => ({
  site: 'plant-a',
  line: 'machining',
  asset: 'cnc-01',
  kind: 'cnc',
  ts,
  metrics: { power, state },
});

/** 10 min idle at 1.0 kW, 1 h idle at 3.0 kW (2 kW waste), 10 min idle at 1.0 kW; 1 Hz. */
function idleWasteStream(): Reading[] {
  const out: Reading[] = [];
  let ts = T0;
  for (let i = 0; i < 600; i++) out.push(cnc((ts += 1000), 1.0, 1));
  for (let i = 0; i < 3600; i++) out.push(cnc((ts += 1000), 3.0, 1));
  for (let i = 0; i < 600; i++) out.push(cnc((ts += 1000), 1.0, 1));
  return out;
}

describe('recommendations (core)', () => {
  it('estimates idle power waste: 2 kW above idle for 1 h is 2 kWh', () => {
    const rec = new Recommender({ tariff: { currency: 'EUR', price: 0.25, bands: [] } });
    const out = idleWasteStream().flatMap((r) => rec.update(r));
    assert.equal(out.length, 1, JSON.stringify(out));
    const r = out[0] as Recommendation;
    assert.equal(r.type, 'idle_power_waste');
    assert.equal(r.asset, 'cnc-01');
    assert.ok(Math.abs(r.kWh - 2) < 1e-9, `kWh ${r.kWh}`);
    assert.ok(Math.abs(r.cost - 0.5) < 1e-9, `cost ${r.cost}`);
    assert.equal(r.currency, 'EUR');
    assert.equal(r.window.start, T0 + 601_000);
    assert.equal(r.window.end, T0 + 4200_000);
    assert.match(r.message, /cnc-01 drew 2\.00 kWh above its idle level of 1\.00 kW/);
    assert.match(
      encodePoint(recommendationPoint(r)),
      /^recommendations,asset=cnc-01,site=plant-a,type=idle_power_waste .*kwh=2/,
    );
  });

  it('gives at most one recommendation per asset and type per period, and loses nothing in between', () => {
    const rec = new Recommender({ periodMs: 3_600_000, minKwh: 0.1 });
    // Three 20-minute waste episodes, 10 minutes apart: 3 × (2 kW × 1/3 h) = 2 kWh.
    const out: Recommendation[] = [];
    let ts = T0;
    for (let i = 0; i < 600; i++) out.push(...rec.update(cnc((ts += 1000), 1, 1)));
    for (let e = 0; e < 3; e++) {
      for (let i = 0; i < 1200; i++) out.push(...rec.update(cnc((ts += 1000), 3, 1)));
      for (let i = 0; i < 600; i++) out.push(...rec.update(cnc((ts += 1000), 1, 1)));
    }
    for (let i = 0; i < 3600; i++) out.push(...rec.update(cnc((ts += 1000), 1, 1)));
    // The first episode at once, the other two together once the period has passed.
    assert.equal(out.length, 2, out.map((r) => r.kWh).join(', '));
    const total = out.reduce((s, r) => s + r.kWh, 0);
    assert.ok(Math.abs(total - 2) < 1e-9, `total ${total}`);
    assert.ok((out[1]?.window.end ?? 0) - (out[0]?.window.end ?? 0) >= 3_600_000);
  });

  it('estimates peak shaving, off-peak charging and running outside shifts', () => {
    const rec = new Recommender({
      tariff: {
        currency: 'EUR',
        price: 0.3,
        bands: [
          { name: 'off-peak', from: '22:00', to: '06:00', price: 0.1 },
          { name: 'peak', from: '17:00', to: '20:00', price: 0.5 },
        ],
      },
      peakLimitKw: { hub: 100 },
      shifts: [{ days: [1, 2, 3, 4, 5], from: '06:00', to: '14:00' }],
      periodMs: 0,
      minKwh: 0.1,
    });
    assert.equal(
      priceAt(
        { currency: 'EUR', price: 0.3, bands: [{ name: 'n', from: '22:00', to: '06:00', price: 0.1 }] },
        Date.parse('2026-03-03T02:00:00Z'),
        0,
      ).band,
      'n',
    );
    const out: Recommendation[] = [];
    // Two chargers at 75 kW each from 18:00 for 30 min: 150 kW on a 100 kW limit, at peak price.
    let ts = Date.parse('2026-03-02T18:00:00Z');
    for (let i = 0; i < 1800; i++) {
      ts += 1000;
      for (const asset of ['cp-01', 'cp-02'])
        out.push(...rec.update({ site: 'hub', asset, kind: 'charger', ts, metrics: { power: 75 } }));
    }
    ts += 1000;
    for (const asset of ['cp-01', 'cp-02'])
      out.push(...rec.update({ site: 'hub', asset, kind: 'charger', ts, metrics: { power: 0 } }));
    const peak = out.filter((r) => r.type === 'peak_shaving');
    const peakKwh = peak.reduce((s, r) => s + r.kWh, 0);
    assert.ok(Math.abs(peakKwh - 25) < 0.1, `peak ${peakKwh} kWh (50 kW over for 30 min)`);
    assert.equal(peak[0]?.asset, undefined);
    const shift = out.filter((r) => r.type === 'off_peak_charging' && r.asset === 'cp-01');
    const kwh = shift.reduce((s, r) => s + r.kWh, 0);
    const saved = shift.reduce((s, r) => s + r.cost, 0);
    // Reported every 0.1 kWh (period 0): all but the last unreported tenth.
    assert.ok(kwh > 37.35 && kwh <= 37.5, `off-peak kWh ${kwh}`);
    assert.ok(Math.abs(saved - kwh * 0.4) < 1e-9, `saved ${saved}`);
    assert.match(shift[0]?.message ?? '', /off-peak band \(22:00–06:00\)/);

    // A machine running at 8 kW from 15:00 for 1 h on a Monday, after the 06:00–14:00 shift.
    ts = Date.parse('2026-03-02T15:00:00Z');
    const runOut: Recommendation[] = [];
    for (let i = 0; i < 3600; i++)
      runOut.push(...rec.update({ ...cnc((ts += 1000), 8, 2), asset: 'cnc-02' }));
    const outside = runOut.filter((r) => r.type === 'outside_shifts');
    const outsideKwh = outside.reduce((s, r) => s + r.kWh, 0);
    assert.ok(outsideKwh > 7.85 && outsideKwh <= 8, `outside shifts ${outsideKwh} kWh`);
  });

  it('refuses a bad configuration with the field named', () => {
    assert.throws(
      () =>
        new Recommender({
          tariff: {
            currency: 'EUR',
            price: 0.3,
            bands: [{ name: 'x', from: '25:00', to: '06:00', price: 1 }],
          },
        }),
      (e: unknown) =>
        e instanceof RecommendConfigError && /tariff\.bands\[0\]\.from: expected HH:MM/.test(e.message),
    );
  });
});

const recommendNode = require(
  join(__dirname, '..', 'dist', 'nodes', 'evtwin-recommend', 'evtwin-recommend.js'),
);
helper.init(require.resolve('node-red'));

describe('evtwin-recommend node', () => {
  before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
  after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));
  afterEach(() => helper.unload());

  it('turns a known idle-waste stream into one recommendation of 2 kWh and its point', async () => {
    await helper.load(recommendNode, [
      {
        id: 'r',
        type: 'evtwin-recommend',
        price: '0.25',
        currency: 'EUR',
        bands: '',
        periodMin: '60',
        minKwh: '0.5',
        wires: [['recs'], ['points']],
      },
      { id: 'recs', type: 'helper' },
      { id: 'points', type: 'helper' },
    ]);
    const recs: NodeMessage[] = [];
    const points: NodeMessage[] = [];
    helper.getNode('recs')?.on('input', (m: NodeMessage) => recs.push(m));
    helper.getNode('points')?.on('input', (m: NodeMessage) => points.push(m));
    const node = helper.getNode('r');
    assert.ok(node);
    for (const r of idleWasteStream()) node.receive({ payload: r });
    const deadline = Date.now() + 5000;
    while (points.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(recs.length, 1);
    const rec = recs[0]?.payload as Recommendation;
    assert.equal(rec.type, 'idle_power_waste');
    assert.ok(Math.abs(rec.kWh - 2) < 1e-9 && Math.abs(rec.cost - 0.5) < 1e-9, JSON.stringify(rec));
    const pts = points[0]?.payload as { measurement: string; fields: { kwh: number } }[];
    assert.equal(pts[0]?.measurement, 'recommendations');
    assert.ok(Math.abs((pts[0]?.fields.kwh ?? 0) - 2) < 1e-9);
  });
});
