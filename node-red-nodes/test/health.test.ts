/**
 * Health index (core/scoring/health.ts): 100 for a healthy asset, bounded to 0..100, falling with the
 * smoothed anomaly score and with temperature/vibration excursions, recovering when they end.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  excursions,
  isHealthState,
  newHealthState,
  updateHealth,
  type Health,
} from '../src/core/scoring/health';
import { newRuleState, rulesFor } from '../src/core/scoring/rules';

const T0 = Date.UTC(2026, 2, 2);
const MIN = 60_000;
const NONE = { temperature: 0, vibration: 0 };

/** Health after `minutes` of one reading a minute with a constant score and excursions. */
function after(minutes: number, score: number, ex = NONE): Health {
  const st = newHealthState(T0);
  let h: Health | undefined;
  for (let i = 1; i <= minutes; i++) h = updateHealth(st, T0 + i * MIN, score, ex);
  assert.ok(h);
  return h;
}

test('a healthy asset stays at 100 with no trend', () => {
  const h = after(120, 0);
  assert.equal(h.health, 100);
  assert.equal(h.slopePerHour, 0);
  assert.deepEqual(h.indicators, { anomaly: 0, temperature: 0, vibration: 0 });
});

test('health falls monotonically with the anomaly score and with each excursion', () => {
  let prev = Infinity;
  for (const s of [0, 0.1, 0.3, 0.5, 0.8, 1]) {
    const h = after(60, s).health;
    assert.ok(h < prev || (s === 0 && h === 100), `score ${s}: ${h} not below ${prev}`);
    prev = h;
  }
  for (const key of ['temperature', 'vibration'] as const) {
    let p = Infinity;
    for (const x of [0, 0.25, 0.5, 0.75, 1]) {
      const h = after(10, 0, { ...NONE, [key]: x }).health;
      assert.ok(h < p || x === 0, `${key} ${x}: ${h} not below ${p}`);
      p = h;
    }
  }
});

test('bounded to 0..100 even with out-of-range inputs; a blip costs little, a lasting fault a lot', () => {
  const worst = after(600, 5, { temperature: 3, vibration: 3 });
  assert.equal(worst.health, 0);
  for (const h of [after(5, -2), after(5, 0.2), worst]) assert.ok(h.health >= 0 && h.health <= 100);
  const st = newHealthState(T0);
  for (let i = 1; i <= 60; i++) updateHealth(st, T0 + i * MIN, 0, NONE);
  const blip = updateHealth(st, T0 + 61 * MIN, 1, NONE).health;
  assert.ok(blip > 90, `one anomalous reading: ${blip}`);
  const lasting = after(120, 1).health;
  assert.ok(lasting < 50, `two hours of anomaly: ${lasting}`);
});

test('recovers after the fault ends, and the trend shows the direction', () => {
  const st = newHealthState(T0);
  let h: Health | undefined;
  let t = T0;
  for (let i = 0; i < 60; i++) h = updateHealth(st, (t += MIN), 0, NONE);
  for (let i = 0; i < 60; i++) h = updateHealth(st, (t += MIN), 0.8, NONE);
  assert.ok(h && h.slopePerHour < 0, `falling: ${h?.slopePerHour}`);
  const low = h.health;
  for (let i = 0; i < 240; i++) h = updateHealth(st, (t += MIN), 0, NONE);
  assert.ok(h.health > low + 30, `recovered from ${low} to ${h.health}`);
  assert.ok(isHealthState(st));
  assert.equal(isHealthState({ score: { value: NaN }, trend: { level: 1, slope: 0 } }), false);
  assert.equal(isHealthState(null), false);
});

test('excursions: 0 at the usual temperature, 1 at the limit, clamped; vibration against its max', () => {
  const cfg = rulesFor('cnc');
  const rules = newRuleState();
  rules.tempBase = { value: 40, ts: T0, n: 100 };
  // cnc: limit min(70, 40 + 15) = 55.
  assert.equal(excursions(rules, cfg, { temperature: 40 }).temperature, 0);
  assert.equal(excursions(rules, cfg, { temperature: 35 }).temperature, 0);
  assert.ok(Math.abs(excursions(rules, cfg, { temperature: 47.5 }).temperature - 0.5) < 1e-12);
  assert.equal(excursions(rules, cfg, { temperature: 90 }).temperature, 1);
  assert.ok(Math.abs(excursions(rules, cfg, { vibration: 7.1 / 2 }).vibration - 0.5) < 1e-12);
  assert.equal(excursions(rules, cfg, { vibration: 50 }).vibration, 1);
  assert.deepEqual(excursions(newRuleState(), cfg, { temperature: 80 }), { temperature: 0, vibration: 0 });
});
