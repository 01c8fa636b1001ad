/**
 * Failure risk (core/scoring/risk.ts): probability-like in (0, 1), low for a healthy asset, rising as
 * health falls, as temperature and vibration near their limits, and when health is falling.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newHealthState, updateHealth, type Health } from '../src/core/scoring/health';
import { failureRisk } from '../src/core/scoring/risk';

const h = (health: number, slopePerHour = 0, temperature = 0, vibration = 0): Health => ({
  health,
  slopePerHour,
  indicators: { anomaly: 1 - health / 100, temperature, vibration },
});

test('bounded and low for a healthy asset, high for a failing one', () => {
  const healthy = failureRisk(h(100));
  assert.ok(healthy > 0 && healthy < 0.02, `healthy ${healthy}`);
  const failing = failureRisk(h(0, -30, 1, 1));
  assert.ok(failing > 0.9 && failing < 1, `failing ${failing}`);
  for (const x of [h(-50, -1e6, 10, 10), h(500, 1e6, -3, -3)]) {
    const r = failureRisk(x);
    assert.ok(r >= 0 && r <= 1 && Number.isFinite(r), String(r));
  }
});

test('monotone: lower health, more temperature, more vibration → higher risk', () => {
  for (let v = 100; v > 0; v -= 10) assert.ok(failureRisk(h(v - 10)) > failureRisk(h(v)), `health ${v}`);
  for (let x = 0; x < 1; x += 0.25) {
    assert.ok(failureRisk(h(80, 0, x + 0.25)) > failureRisk(h(80, 0, x)), `temperature ${x}`);
    assert.ok(failureRisk(h(80, 0, 0, x + 0.25)) > failureRisk(h(80, 0, 0, x)), `vibration ${x}`);
  }
});

test('a falling trend raises the risk at the same health; a rising one does not lower it below flat', () => {
  const flat = failureRisk(h(70));
  assert.ok(failureRisk(h(70, -5)) > flat);
  assert.ok(failureRisk(h(70, -15)) > failureRisk(h(70, -5)));
  assert.equal(failureRisk(h(70, +10)), flat);
  // Capped: beyond 20 points/h the decline adds nothing more.
  assert.equal(failureRisk(h(70, -25)), failureRisk(h(70, -100)));
});

test('with the health index: a degrading asset gets riskier than one settled at a mild anomaly', () => {
  const T0 = Date.UTC(2026, 2, 2);
  const run = (scores: number[]): Health => {
    const st = newHealthState(T0);
    let out: Health | undefined;
    scores.forEach(
      (s, i) => (out = updateHealth(st, T0 + (i + 1) * 60_000, s, { temperature: 0, vibration: 0 })),
    );
    assert.ok(out);
    return out;
  };
  // Settled at a constant mild anomaly for 10 hours vs ramping up to it over the last hour.
  const settled = run(new Array<number>(600).fill(0.3));
  const ramp = run([
    ...new Array<number>(540).fill(0),
    ...Array.from({ length: 60 }, (_, i) => (i / 59) * 0.9),
  ]);
  assert.ok(ramp.slopePerHour < -5, `ramp slope ${ramp.slopePerHour}`);
  assert.ok(Math.abs(settled.slopePerHour) < 0.5, `settled slope ${settled.slopePerHour}`);
  assert.ok(failureRisk(ramp) > failureRisk(settled), `${failureRisk(ramp)} vs ${failureRisk(settled)}`);
  // The measured decline itself adds risk, beyond the lower health.
  assert.ok(failureRisk(ramp) > failureRisk({ ...ramp, slopePerHour: 0 }));
  assert.ok(failureRisk(run(new Array<number>(600).fill(0))) < failureRisk(settled));
});
