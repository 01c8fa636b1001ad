/**
 * Rule detectors (core/scoring/rules.ts): each rule fires on its fault with an explanation (metric,
 * observed, expected, severity, message) and stays quiet on normal data of the same asset.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  evaluateRules,
  newRuleState,
  rulesFor,
  RuleConfigError,
  type Flag,
  type FlagType,
  type RuleConfig,
  type RuleState,
} from '../src/core/scoring/rules';
import type { MetricBounds } from '../src/core/assetModel';

const T0 = Date.UTC(2026, 2, 2, 8);
const STEP = 10_000;

function noise(seed: number): () => number {
  let s = seed;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5;
}

class Asset {
  readonly st: RuleState = newRuleState();
  readonly cfg: RuleConfig;
  readonly flags: Flag[][] = [];
  i = 0;
  constructor(
    readonly kind: string,
    private readonly bounds: Record<string, MetricBounds> = {},
  ) {
    this.cfg = rulesFor(kind);
  }
  feed(m: Record<string, number>): Flag[] {
    const f = evaluateRules(this.st, this.cfg, m, {
      asset: 'a1',
      kind: this.kind,
      ts: T0 + this.i++ * STEP,
      lonHours: 0,
      bounds: this.bounds,
      line: {},
    });
    this.flags.push(f);
    return f;
  }
}

/** A CNC running normally: state 2, ~5 kW, ~400 V, ~40 °C, ~2 mm/s, 30 s cycles. */
function cncNormal(r: () => number, running = true): Record<string, number> {
  return running
    ? {
        state: 2,
        power: 5 + 0.3 * r(),
        voltage: 400 + 3 * r(),
        temperature: 40 + r(),
        vibration: 2 + 0.2 * r(),
        cycle_time: 30 + 0.4 * r(),
      }
    : { state: 1, power: 0.4 + 0.04 * r(), voltage: 400 + 3 * r(), temperature: 38 + r(), vibration: 0.3 };
}

function warm(a: Asset, n: number, seed = 1): () => number {
  const r = noise(seed);
  for (let i = 0; i < n; i++) assert.deepEqual(a.feed(cncNormal(r, i % 50 < 40)), [], `normal reading ${i}`);
  return r;
}

function only(flags: Flag[], type: FlagType): Flag {
  const f = flags.find((x) => x.type === type);
  assert.ok(f, `expected a ${type} flag, got ${JSON.stringify(flags.map((x) => x.type))}`);
  assert.ok(Number.isFinite(f.observed) && Number.isFinite(f.expected));
  assert.ok(f.severity >= 0.5 && f.severity <= 1, `severity ${f.severity}`);
  assert.equal(f.level, f.severity >= 0.8 ? 'critical' : 'warning');
  assert.ok(f.message.length > 10);
  return f;
}

test('normal machine data raises no flag over a long run (two states, noise, cycles)', () => {
  const a = new Asset('cnc');
  warm(a, 3000);
  assert.equal(a.flags.flat().length, 0);
});

test('power spike: flagged against the usual high of the state, explained', () => {
  const a = new Asset('cnc');
  const r = warm(a, 800);
  const f = only(a.feed({ ...cncNormal(r), power: 12 }), 'power_spike');
  assert.equal(f.metric, 'power');
  assert.equal(f.observed, 12);
  assert.ok(f.expected > 4.8 && f.expected < 5.5, `usual high ${f.expected}`);
  assert.match(f.message, /power 12\.0 kW above/);
  // The spike did not teach itself as normal: the same value is flagged again.
  only(a.feed({ ...cncNormal(r), power: 12 }), 'power_spike');
  // Running power is normal while running, a spike while idle (per-state distributions).
  assert.deepEqual(a.feed(cncNormal(r)), []);
  const idle = only(a.feed({ ...cncNormal(r, false), power: 5 }), 'power_spike');
  assert.ok(idle.expected < 0.6, `idle high ${idle.expected}`);
  assert.match(idle.message, /in state 1/);
});

test('voltage drop: flagged below the usual level, quiet within tolerance', () => {
  const a = new Asset('cnc');
  const r = warm(a, 300);
  assert.deepEqual(a.feed({ ...cncNormal(r), voltage: 385 }), []);
  const f = only(a.feed({ ...cncNormal(r), voltage: 350 }), 'voltage_drop');
  assert.equal(f.metric, 'voltage');
  assert.equal(f.observed, 350);
  assert.ok(Math.abs(f.expected - 400) < 3, `usual ${f.expected}`);
  assert.match(f.message, /% below its usual/);
});

test('high temperature: rise over the slow baseline, and the fixed limit', () => {
  const a = new Asset('cnc');
  const r = warm(a, 300);
  const f = only(a.feed({ ...cncNormal(r), temperature: 58 }), 'high_temperature');
  assert.equal(f.metric, 'temperature');
  assert.equal(f.observed, 58);
  assert.ok(f.expected > 37 && f.expected < 41, `baseline ${f.expected}`);
  assert.match(f.message, /above its usual/);
  // A fast rise to the cnc limit (70 °C) after a hot baseline: the limit is named.
  const hot = new Asset('cnc');
  const r2 = noise(3);
  for (let i = 0; i < 300; i++) hot.feed({ ...cncNormal(r2), temperature: 62 + r2() });
  const g = only(hot.feed({ ...cncNormal(r2), temperature: 71 }), 'high_temperature');
  assert.match(g.message, /above the limit 70/);
  assert.equal(hot.flags.slice(0, -1).flat().length, 0);
});

test('idle power waste: only after the minimum duration, then explained as waste', () => {
  const a = new Asset('cnc');
  const r = warm(a, 400);
  for (let i = 0; i < 10; i++) a.feed(cncNormal(r, false)); // idle now
  const first = a.feed({ ...cncNormal(r, false), power: 2 });
  assert.equal(
    first.some((f) => f.type === 'idle_power_waste'),
    false,
  );
  let flagged: Flag | undefined;
  for (let i = 0; i < 10 && !flagged; i++)
    flagged = a.feed({ ...cncNormal(r, false), power: 2 }).find((f) => f.type === 'idle_power_waste');
  assert.ok(flagged, 'idle waste after 60 s');
  const f = only([flagged], 'idle_power_waste');
  assert.equal(f.metric, 'power');
  assert.equal(f.observed, 2);
  assert.ok(f.expected < 0.5, `idle level ${f.expected}`);
  assert.match(f.message, /idle for [\d.]+ s drawing 2\.00 kW/);
});

test('vibration: relative to the state after its warm-up, and the absolute ISO limit at any time', () => {
  const early = new Asset('cnc');
  const r0 = warm(early, 100);
  assert.deepEqual(early.feed({ ...cncNormal(r0), vibration: 4 }), [], 'not armed before the warm-up');
  const lim = only(early.feed({ ...cncNormal(r0), vibration: 9 }), 'vibration');
  assert.match(lim.message, /above the limit 7\.1/);

  const a = new Asset('cnc');
  const r = warm(a, 1000);
  const f = only(a.feed({ ...cncNormal(r), vibration: 4 }), 'vibration');
  assert.equal(f.metric, 'vibration');
  assert.equal(f.observed, 4);
  assert.ok(f.expected > 2 && f.expected < 2.3, `usual high ${f.expected}`);
});

test('cycle-time deviation: flagged off the median, a lasting change becomes the new normal', () => {
  const a = new Asset('cnc');
  const r = warm(a, 100);
  const f = only(a.feed({ ...cncNormal(r), cycle_time: 40 }), 'cycle_time_drift');
  assert.equal(f.metric, 'cycle_time');
  assert.ok(Math.abs(f.expected - 30) < 0.5);
  assert.match(f.message, /cycle 40\.0 s, 33\.\d % off the median/);
  const cfg = a.cfg.cycleTime;
  assert.ok(cfg);
  let last: Flag[] = [];
  for (let i = 0; i < cfg.adaptAfter + cfg.window + 5; i++)
    last = a.feed({ ...cncNormal(r), cycle_time: 40 });
  assert.equal(
    last.some((x) => x.type === 'cycle_time_drift'),
    false,
    'a new job is learned',
  );
});

test('leak on a flow meter and pressure drop on a pressure sensor; quiet on steady water data', () => {
  const r = noise(5);
  const flow = new Asset('flow');
  for (let i = 0; i < 200; i++) assert.deepEqual(flow.feed({ flow: 100 + r() }), []);
  let leak: Flag | undefined;
  for (let i = 0; i < 30 && !leak; i++) leak = flow.feed({ flow: 135 + r() }).find((f) => f.type === 'leak');
  assert.ok(leak, 'leak flagged');
  assert.equal(leak.metric, 'flow');
  assert.ok(Math.abs(leak.expected - 100) < 2, `trend ${leak.expected}`);
  assert.ok(leak.observed > 112);

  const p = new Asset('pressure');
  for (let i = 0; i < 200; i++) assert.deepEqual(p.feed({ pressure: 5 + 0.02 * r() }), []);
  let drop: Flag | undefined;
  for (let i = 0; i < 30 && !drop; i++)
    drop = p.feed({ pressure: 3.8 + 0.02 * r() }).find((f) => f.type === 'pressure_drop');
  assert.ok(drop, 'pressure drop flagged');
  assert.equal(drop.metric, 'pressure');
  assert.ok(Math.abs(drop.expected - 5) < 0.1);
  assert.match(drop.message, /% below its trend/);
});

test('thresholds and the asset model bounds: both explained, with the limit as expected', () => {
  const a = new Asset('cnc', { power: { max: 8 } });
  const r = warm(a, 100);
  const flags = a.feed({ ...cncNormal(r), voltage: 450, power: 9 });
  const t = only(flags, 'threshold');
  assert.equal(t.metric, 'voltage');
  assert.equal(t.expected, 440);
  assert.match(t.message, /voltage 450 above the limit 440/);
  const b = only(flags, 'bounds');
  assert.equal(b.metric, 'power');
  assert.equal(b.expected, 8);
  assert.match(b.message, /bound of the asset model/);
  assert.ok(
    flags.every((f, i) => i === 0 || (flags[i - 1] as Flag).severity >= f.severity),
    'sorted',
  );
});

test('overrides: disable a rule, change a number, refuse unknown settings', () => {
  const off = new Asset('cnc');
  Object.assign(off.cfg, rulesFor('cnc', { cnc: { highTemperature: false } }));
  const r = warm(off, 300);
  assert.deepEqual(
    off.feed({ ...cncNormal(r), temperature: 69 }).filter((f) => f.type === 'high_temperature'),
    [],
  );
  assert.equal(rulesFor('cnc', { '*': { warmup: 5 } }).warmup, 5);
  assert.throws(() => rulesFor('cnc', { cnc: { powerSpike: { nope: 1 } } }), RuleConfigError);
  assert.throws(() => rulesFor('cnc', { cnc: { powerSpike: { factor: 'x' } } }), /expected a number/);
});
