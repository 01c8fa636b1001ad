/**
 * Rule detectors (pure, streaming): each rule compares a metric with what this asset normally shows
 * (its own baselines, learned on line and frozen while the rule's condition holds, so a fault never
 * teaches itself as normal) or with fixed limits, and explains every flag with metric, observed,
 * expected and severity. State is plain JSON so it persists with the asset's model.
 */
import type { MetricBounds } from '../assetModel';
import { ANOMALY_TYPES, isAssetKind, type AssetKind } from '../kinds';

export const FLAG_TYPES = [...ANOMALY_TYPES, 'threshold', 'bounds', 'learned'] as const;
export type FlagType = (typeof FLAG_TYPES)[number];
export type SeverityLevel = 'info' | 'warning' | 'critical';

export interface Flag {
  type: FlagType;
  metric: string;
  observed: number;
  expected: number;
  /** 0.5 at the limit, 1 at twice the distance from normal to the limit (or beyond). */
  severity: number;
  level: SeverityLevel;
  message: string;
}

// ---- configuration ----

export interface RuleConfig {
  /** Readings a baseline needs before the rules that use it are armed. */
  warmup: number;
  /** Power above the state's high quantile × factor + minKw. */
  powerSpike: { factor: number; minKw: number } | false;
  /** Voltage below the state's usual level by more than this fraction (only while drawing power). */
  voltageDrop: { fraction: number; minActiveKw: number } | false;
  /** Temperature above max, or above the asset's slow baseline (tau ~1 h) by riseC. */
  highTemperature: { max: number; riseC: number } | false;
  /** Machines: power while idle/off above idle level × factor + minKw, for minDurationS. */
  idlePowerWaste: { factor: number; minKw: number; minDurationS: number } | false;
  /** Vibration above the state's high quantile × factor + minDelta, or above max (ISO 10816 zone). */
  vibration: { factor: number; minDelta: number; max: number; warmup: number } | false;
  /** Cycle time off the median of the last `window` normal cycles by more than fraction. */
  cycleTime: { fraction: number; window: number; adaptAfter: number } | false;
  /** Flow above its trend by fraction of typical flow; night floor above the median of past nights. */
  leak:
    | {
        fraction: number;
        nightFraction: number;
        nightFromH: number;
        nightToH: number;
        /** Pressure sensors: a drop of this fraction while flow on the same line rises. */
        pressureFraction: number;
      }
    | false;
  /** Pressure below its trend by more than fraction. */
  pressureDrop: { fraction: number } | false;
  /** Fixed min/max per metric (kind defaults, node configuration). */
  thresholds: Record<string, MetricBounds>;
}

const NONE = {
  powerSpike: false,
  voltageDrop: false,
  highTemperature: false,
  idlePowerWaste: false,
  vibration: false,
  cycleTime: false,
  leak: false,
  pressureDrop: false,
} as const;

const machine = (kind: 'cnc' | 'robot'): RuleConfig => ({
  ...NONE,
  warmup: 60,
  powerSpike: { factor: 1.3, minKw: kind === 'cnc' ? 0.5 : 0.2 },
  voltageDrop: { fraction: 0.07, minActiveKw: 0 },
  highTemperature: { max: kind === 'cnc' ? 70 : 55, riseC: 15 },
  idlePowerWaste: { factor: 1.5, minKw: kind === 'cnc' ? 0.3 : 0.1, minDurationS: 60 },
  // ISO 10816-3 group 2 machines: 4.5 mm/s is the limit of long-term operation, 7.1 of short-term.
  // Vibration depends on the job (spindle speed squared): its baseline needs more jobs to settle.
  vibration: { factor: 1.5, minDelta: 0.3, max: 7.1, warmup: 600 },
  cycleTime: { fraction: 0.08, window: 15, adaptAfter: 60 },
  thresholds: { voltage: { min: 340, max: 440 }, temperature: { max: 85 } },
});

const water = (over: Partial<RuleConfig>): RuleConfig => ({ ...NONE, warmup: 60, thresholds: {}, ...over });
const LEAK = { fraction: 0.12, nightFraction: 0.15, nightFromH: 1, nightToH: 4, pressureFraction: 0.06 };

/** Sensible defaults per asset kind (core/kinds.ts); the node's rule configuration overrides them. */
export const DEFAULT_RULES: Record<AssetKind, RuleConfig> = {
  cnc: machine('cnc'),
  robot: machine('robot'),
  charger: {
    ...NONE,
    warmup: 60,
    powerSpike: { factor: 1.3, minKw: 2 },
    // DC output voltage follows the battery (about 350..410 V): a drop must be larger to be a sag.
    voltageDrop: { fraction: 0.06, minActiveKw: 0.5 },
    highTemperature: { max: 60, riseC: 20 },
    thresholds: { temperature: { min: -25, max: 70 } },
  },
  // On a flow meter, a sudden fall of flow is what a loss of supply pressure looks like.
  flow: water({ leak: LEAK, pressureDrop: { fraction: 0.2 }, thresholds: { flow: { min: 0 } } }),
  pressure: water({
    leak: LEAK,
    pressureDrop: { fraction: 0.15 },
    thresholds: { pressure: { min: 0.5, max: 10 } },
  }),
  level: water({ thresholds: { level: { min: 0.3 } } }),
  chlorine: water({ thresholds: { chlorine: { min: 0.1, max: 4 } } }),
  turbidity: water({ thresholds: { turbidity: { max: 10 } } }),
};

/** Rules for kinds the catalogue does not know: fixed thresholds only. */
const GENERIC: RuleConfig = water({});

export type RuleOverrides = Partial<Record<AssetKind | '*', Partial<Record<keyof RuleConfig, unknown>>>>;

export class RuleConfigError extends Error {
  override name = 'RuleConfigError';
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Merge an override into a rule's config: `false` disables, an object changes listed numbers only. */
function mergeRule<T extends object | false>(base: T, over: unknown, path: string): T {
  if (over === undefined) return base;
  if (over === false) return false as T;
  if (!isRecord(over)) throw new RuleConfigError(`${path}: expected an object or false`);
  const from = (base === false ? {} : base) as Record<string, unknown>;
  const out: Record<string, unknown> = { ...from };
  for (const [k, v] of Object.entries(over)) {
    if (base !== false && !(k in from))
      throw new RuleConfigError(`${path}.${k}: unknown setting (known: ${Object.keys(from).join(', ')})`);
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new RuleConfigError(`${path}.${k}: expected a number`);
    out[k] = v;
  }
  return out as T;
}

function mergeThresholds(
  base: Record<string, MetricBounds>,
  over: unknown,
  path: string,
): Record<string, MetricBounds> {
  if (over === undefined) return base;
  if (!isRecord(over)) throw new RuleConfigError(`${path}: expected {metric: {min?, max?}}`);
  const out: Record<string, MetricBounds> = { ...base };
  for (const [metric, b] of Object.entries(over)) {
    if (!isRecord(b)) throw new RuleConfigError(`${path}.${metric}: expected {min?, max?}`);
    const mb: MetricBounds = {};
    for (const [k, v] of Object.entries(b)) {
      if (k !== 'min' && k !== 'max') throw new RuleConfigError(`${path}.${metric}.${k}: only min and max`);
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new RuleConfigError(`${path}.${metric}.${k}: expected a number`);
      mb[k] = v;
    }
    out[metric] = mb;
  }
  return out;
}

/** The rules of one kind with the overrides for `*` and for that kind applied; throws RuleConfigError. */
export function rulesFor(kind: string, overrides: RuleOverrides = {}): RuleConfig {
  let cfg: RuleConfig = isAssetKind(kind) ? DEFAULT_RULES[kind] : GENERIC;
  for (const key of ['*', kind] as const) {
    const over = (overrides as Record<string, unknown>)[key];
    if (over === undefined) continue;
    if (!isRecord(over)) throw new RuleConfigError(`rules.${key}: expected an object`);
    const next: RuleConfig = { ...cfg };
    for (const [name, v] of Object.entries(over)) {
      const path = `rules.${key}.${name}`;
      if (name === 'thresholds') next.thresholds = mergeThresholds(cfg.thresholds, v, path);
      else if (name === 'warmup') {
        if (typeof v !== 'number' || !(v >= 0)) throw new RuleConfigError(`${path}: expected a number >= 0`);
        next.warmup = v;
      } else if (name in NONE) {
        const rule = name as keyof typeof NONE;
        (next as unknown as Record<string, unknown>)[rule] = mergeRule(cfg[rule] as object | false, v, path);
      } else throw new RuleConfigError(`${path}: unknown rule`);
    }
    cfg = next;
  }
  return cfg;
}

/** Check an overrides object once (for the editor and the node's start), naming the first problem. */
export function validateRuleOverrides(value: unknown): RuleOverrides {
  if (value === undefined || value === null || value === '') return {};
  if (!isRecord(value)) throw new RuleConfigError('rules: expected an object keyed by asset kind or "*"');
  for (const key of Object.keys(value)) {
    if (key !== '*' && !isAssetKind(key)) throw new RuleConfigError(`rules.${key}: not an asset kind`);
    rulesFor(key === '*' ? 'generic' : key, value as RuleOverrides);
  }
  return value as RuleOverrides;
}

// ---- streaming statistics (plain JSON state) ----

/** Running distribution of one metric in one state: EW mean and mean absolute deviation, tracked quantiles. */
export interface Dist {
  n: number;
  mean: number;
  dev: number;
  /** ~98th percentile (stochastic approximation, step scaled by dev). */
  hi: number;
}

const DIST_WINDOW = 600;
const SESSION_RAMP_MS = 60_000;
const HI_P = 0.98;

export function newDist(x: number): Dist {
  return { n: 1, mean: x, dev: 0, hi: x };
}

export function updateDist(d: Dist, x: number): void {
  d.n++;
  const a = Math.max(1 / d.n, 1 / DIST_WINDOW);
  d.dev += a * (Math.abs(x - d.mean) - d.dev);
  d.mean += a * (x - d.mean);
  const step = Math.max(d.dev, Math.abs(d.mean) * 0.01, 1e-6) * (d.n < 100 ? 0.2 : 0.05);
  d.hi += x > d.hi ? step * HI_P : -step * (1 - HI_P);
  // The quantile of a sample cannot sit below its mean.
  if (d.hi < d.mean) d.hi = d.mean;
}

/** Local level and trend (Holt), time-based: follows a diurnal curve with little lag, not a step. */
export interface Trend {
  level: number;
  /** Change per second. */
  slope: number;
  ts: number;
  n: number;
}

export function predictTrend(t: Trend, ts: number): number {
  return t.level + t.slope * Math.min((ts - t.ts) / 1000, 600);
}

export function updateTrend(t: Trend, x: number, ts: number, tauS: number): void {
  const dtS = Math.max(0, (ts - t.ts) / 1000);
  const a = 1 - Math.exp(-dtS / tauS);
  const b = 1 - Math.exp(-dtS / (tauS * 2));
  const predicted = predictTrend(t, ts);
  const level = predicted + a * (x - predicted);
  if (dtS > 0) t.slope += b * ((level - t.level) / dtS - t.slope);
  t.level = level;
  t.ts = ts;
  t.n++;
}

/** EW mean with a time constant in seconds. */
export interface Ew {
  value: number;
  ts: number;
  n: number;
}
export function updateEw(e: Ew, x: number, ts: number, tauS: number): void {
  const dtS = Math.max(0, (ts - e.ts) / 1000);
  const a = e.n === 0 ? 1 : Math.max(1 - Math.exp(-dtS / tauS), 1 / (e.n + 1));
  e.value += a * (x - e.value);
  e.ts = ts;
  e.n++;
}
const newEw = (x: number, ts: number): Ew => ({ value: x, ts, n: 1 });

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

// ---- per-asset rule state ----

export interface RuleState {
  /** `${metric}@${state}` → distribution. */
  dists: Record<string, Dist>;
  tempBase?: Ew;
  idleSinceTs?: number;
  /** Assets without a state metric (chargers): the current session's normal power and voltage. */
  session?: { maxKw: number; startTs: number; volts?: Ew };
  /** Highest normal power seen: the scale of a jump. */
  ratedKw?: number;
  cycles: number[];
  cycleOffCount: number;
  /** Water rules, by metric (a station may report flow and pressure in one reading). */
  water: Record<string, WaterState>;
  nights: number[];
  night?: { key: number; min: number; startTs: number };
}

export interface WaterState {
  trend: Trend;
  /** Since when the trend is frozen by a flag. */
  holdSince?: number;
  /** Smoothed value (tau ~20 s) the water rules compare, so one noisy sample is not a leak. */
  fast: Ew;
  /** Typical level (tau 1 day): the scale of a leak's rise. */
  typical: Ew;
}

export const newRuleState = (): RuleState => ({
  dists: {},
  cycles: [],
  cycleOffCount: 0,
  water: {},
  nights: [],
});

export function isRuleState(v: unknown): v is RuleState {
  return (
    isRecord(v) &&
    isRecord(v.dists) &&
    isRecord(v.water) &&
    Array.isArray(v.cycles) &&
    Array.isArray(v.nights)
  );
}

/** What the rules of one line share for one reading: the leak rule pairs flow up with pressure down. */
export interface LineSignals {
  flowUpTs?: number;
  flowUpAsset?: string;
  pressureDownTs?: number;
  pressureDownAsset?: string;
}

export interface RuleContext {
  asset: string;
  kind: string;
  ts: number;
  /** Local solar hour offset (longitude / 15) for the night-flow window. */
  lonHours: number;
  bounds: Record<string, MetricBounds>;
  line: LineSignals;
}

const LINE_WINDOW_MS = 5 * 60_000;

export function severityOf(observed: number, limit: number, expected: number): number {
  const margin = Math.abs(limit - expected);
  const over = Math.abs(observed - limit);
  if (!(margin > 0)) return 1;
  return Math.min(1, 0.5 + (0.5 * over) / margin);
}

export const levelOf = (severity: number): SeverityLevel => (severity >= 0.8 ? 'critical' : 'warning');

const fmt = (x: number): string => {
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toPrecision(2);
};

function flag(
  out: Flag[],
  type: FlagType,
  metric: string,
  observed: number,
  expected: number,
  limit: number,
  message: string,
): void {
  const severity = severityOf(observed, limit, expected);
  out.push({ type, metric, observed, expected, severity, level: levelOf(severity), message });
}

/** The operating state the distributions are conditioned on: the machine's state, else drawing power or not. */
function stateOf(m: Readonly<Record<string, number>>): string {
  const s = m.state;
  if (s !== undefined) return String(Math.round(s));
  const p = m.power;
  if (p !== undefined) return p > 0.5 ? 'on' : 'off';
  return '-';
}

function dist(st: RuleState, key: string, x: number): Dist | undefined {
  const d = st.dists[key];
  if (!d) st.dists[key] = newDist(x);
  return d;
}

/**
 * Evaluate every rule of `cfg` on one reading and learn from it. Assumes finite metrics and
 * increasing timestamps (the scorer checks both). Returns the flags, most severe first.
 */
export function evaluateRules(
  st: RuleState,
  cfg: RuleConfig,
  metrics: Readonly<Record<string, number>>,
  ctx: RuleContext,
): Flag[] {
  const out: Flag[] = [];
  const state = stateOf(metrics);
  const ts = ctx.ts;
  const power = metrics.power;

  // Power spike: per state, so an idle machine at running power is a spike but a running one is not.
  // Without a state (chargers: every session draws what its car asks), a jump above the session's level.
  if (power !== undefined) {
    const d = dist(st, `power@${state}`, power);
    const r = cfg.powerSpike;
    let candidate = false;
    const armed = d !== undefined && d.n >= cfg.warmup;
    if (d && r && metrics.state === undefined) {
      if (state === 'on') {
        // The ramp of a session (its first minute) teaches its level; jumps count after it.
        const ses = (st.session ??= { maxKw: power, startTs: ts });
        const jump = Math.max(r.minKw, 0.1 * (st.ratedKw ?? 0));
        const limit = Math.max(ses.maxKw * r.factor, ses.maxKw + jump);
        if (armed && ts - ses.startTs > SESSION_RAMP_MS && power > limit) {
          candidate = true;
          flag(
            out,
            'power_spike',
            'power',
            power,
            ses.maxKw,
            limit,
            `power ${fmt(power)} kW jumped above ${fmt(limit)} kW (this session ran at up to ${fmt(ses.maxKw)} kW)`,
          );
        } else if (ts - ses.startTs <= SESSION_RAMP_MS || power <= ses.maxKw * 1.1) {
          ses.maxKw = Math.max(ses.maxKw, power);
          st.ratedKw = Math.max(st.ratedKw ?? 0, power);
        }
      } else st.session = undefined;
    } else if (d && r) {
      const limit = d.hi * r.factor + r.minKw;
      if (armed && power > limit) {
        candidate = true;
        flag(
          out,
          'power_spike',
          'power',
          power,
          d.hi,
          limit,
          `power ${fmt(power)} kW above ${fmt(limit)} kW (usual high ${fmt(d.hi)} kW in state ${state})`,
        );
      }
    }
    // Idle waste freezes the idle baseline too: learning the waste would hide it.
    const w = cfg.idlePowerWaste;
    const idle = state === '0' || state === '1';
    if (d && w && idle) {
      const base = d.mean;
      const limit = base * w.factor + w.minKw;
      if (armed && power > limit) {
        candidate = true;
        st.idleSinceTs ??= ts;
        const forS = (ts - st.idleSinceTs) / 1000;
        if (forS >= w.minDurationS) {
          // A lasting draw at rest is waste, not a spike: one explanation, not two.
          if (out[0]?.type === 'power_spike') out.pop();
          flag(
            out,
            'idle_power_waste',
            'power',
            power,
            base,
            limit,
            `${state === '0' ? 'off' : 'idle'} for ${fmt(forS)} s drawing ${fmt(power)} kW (idle level ${fmt(base)} kW)`,
          );
        }
      } else st.idleSinceTs = undefined;
    } else st.idleSinceTs = undefined;
    if (d && !candidate) updateDist(d, power);
  }

  const voltage = metrics.voltage;
  const vd = cfg.voltageDrop;
  if (voltage !== undefined && vd && (power === undefined || power >= vd.minActiveKw)) {
    const d = dist(st, `voltage@${state}`, voltage);
    if (d) {
      // Against the usual level of this state; within a session (no state metric) also against the
      // session's own level, since a DC charger's voltage follows the battery.
      const ses = metrics.state === undefined ? st.session : undefined;
      const sesRef = ses?.volts && ses.volts.n >= 5 ? ses.volts.value : undefined;
      const longLimit = d.mean * (1 - (ses ? vd.fraction * 2 : vd.fraction));
      const sesLimit = sesRef !== undefined ? sesRef * (1 - vd.fraction) : Number.NEGATIVE_INFINITY;
      const armed = d.n >= cfg.warmup;
      if (armed && (voltage < longLimit || voltage < sesLimit)) {
        const ref = voltage < sesLimit && sesRef !== undefined ? sesRef : d.mean;
        flag(
          out,
          'voltage_drop',
          'voltage',
          voltage,
          ref,
          voltage < sesLimit ? sesLimit : longLimit,
          `voltage ${fmt(voltage)} V, ${fmt((1 - voltage / ref) * 100)} % below its usual ${fmt(ref)} V`,
        );
      } else {
        updateDist(d, voltage);
        if (ses) {
          if (!ses.volts) ses.volts = newEw(voltage, ts);
          else updateEw(ses.volts, voltage, ts, 30);
        }
      }
    }
  }

  const temp = metrics.temperature;
  const ht = cfg.highTemperature;
  if (temp !== undefined && ht) {
    const base = st.tempBase;
    if (!base) st.tempBase = newEw(temp, ts);
    else {
      const rise = base.value + ht.riseC;
      const limit = Math.min(ht.max, rise);
      const armed = base.n >= cfg.warmup;
      if (armed && temp > limit) {
        const why =
          limit === ht.max
            ? `above the limit ${fmt(ht.max)} °C`
            : `${fmt(temp - base.value)} °C above its usual ${fmt(base.value)} °C`;
        flag(
          out,
          'high_temperature',
          'temperature',
          temp,
          base.value,
          limit,
          `temperature ${fmt(temp)} °C, ${why}`,
        );
      } else updateEw(base, temp, ts, 3600);
    }
  }

  const vib = metrics.vibration;
  const vr = cfg.vibration;
  if (vib !== undefined && vr) {
    const d = dist(st, `vibration@${state}`, vib);
    let candidate = false;
    if (d) {
      const relLimit = d.hi * vr.factor + vr.minDelta;
      const limit = Math.min(vr.max, relLimit);
      if ((d.n >= Math.max(cfg.warmup, vr.warmup) && vib > relLimit) || vib > vr.max) {
        candidate = true;
        flag(
          out,
          'vibration',
          'vibration',
          vib,
          d.hi,
          limit,
          vib > vr.max
            ? `vibration ${fmt(vib)} mm/s above the limit ${fmt(vr.max)} mm/s`
            : `vibration ${fmt(vib)} mm/s, usual high ${fmt(d.hi)} mm/s in state ${state}`,
        );
      }
      if (!candidate) updateDist(d, vib);
    }
  }

  const cycle = metrics.cycle_time;
  const ct = cfg.cycleTime;
  if (cycle !== undefined && ct && cycle > 0) {
    let accept = true;
    if (st.cycles.length >= Math.min(5, ct.window)) {
      const med = median(st.cycles);
      const dev = (cycle - med) / med;
      if (Math.abs(dev) > ct.fraction) {
        st.cycleOffCount++;
        // A lasting change (a new job) becomes the new normal after adaptAfter cycles.
        accept = st.cycleOffCount > ct.adaptAfter;
        const limit = med * (1 + Math.sign(dev) * ct.fraction);
        if (!accept)
          flag(
            out,
            'cycle_time_drift',
            'cycle_time',
            cycle,
            med,
            limit,
            `cycle ${fmt(cycle)} s, ${fmt(dev * 100)} % off the median ${fmt(med)} s of the last ${st.cycles.length} cycles`,
          );
      } else st.cycleOffCount = 0;
    }
    if (accept) {
      st.cycles.push(cycle);
      if (st.cycles.length > ct.window) st.cycles.shift();
    }
  }

  const lk = cfg.leak;
  const flow = metrics.flow;
  if (flow !== undefined && lk) waterFlow(st, cfg, lk, flow, ctx, out);
  const pressure = metrics.pressure;
  if (pressure !== undefined && (cfg.pressureDrop || lk)) waterPressure(st, cfg, pressure, ctx, out);

  // Fixed limits: kind defaults / node configuration, then the asset model's own bounds.
  for (const [metric, value] of Object.entries(metrics)) {
    limits(out, 'threshold', metric, value, cfg.thresholds[metric], 'limit');
    limits(out, 'bounds', metric, value, ctx.bounds[metric], 'bound of the asset model');
  }
  if (out.length > 1) out.sort((a, b) => b.severity - a.severity);
  return out;
}

function limits(
  out: Flag[],
  type: 'threshold' | 'bounds',
  metric: string,
  value: number,
  b: MetricBounds | undefined,
  what: string,
): void {
  if (!b) return;
  const span = b.min !== undefined && b.max !== undefined ? b.max - b.min : undefined;
  if (b.max !== undefined && value > b.max) {
    const margin = span ?? Math.max(Math.abs(b.max) * 0.2, 1e-9);
    flag(out, type, metric, value, b.max, b.max, `${metric} ${fmt(value)} above the ${what} ${fmt(b.max)}`);
    const f = out[out.length - 1] as Flag;
    f.severity = Math.min(1, 0.5 + (0.5 * (value - b.max)) / margin);
    f.level = levelOf(f.severity);
  } else if (b.min !== undefined && value < b.min) {
    const margin = span ?? Math.max(Math.abs(b.min) * 0.2, 1e-9);
    flag(out, type, metric, value, b.min, b.min, `${metric} ${fmt(value)} below the ${what} ${fmt(b.min)}`);
    const f = out[out.length - 1] as Flag;
    f.severity = Math.min(1, 0.5 + (0.5 * (b.min - value)) / margin);
    f.level = levelOf(f.severity);
  }
}

const TREND_TAU_S = 600;
const FAST_TAU_S = 20;
/** A change that lasts longer than this is the new normal for the trend (the night floor still sees a leak). */
const MAX_HOLD_MS = 15 * 60_000;

/** Shared by flow and pressure: a smoothed value against a Holt trend that is frozen while a rule holds. */
function waterBase(
  st: RuleState,
  metric: string,
  x: number,
  ts: number,
): { w: WaterState; fast: number; expected: number; armed: boolean } {
  let w = st.water[metric];
  if (!w) {
    w = { trend: { level: x, slope: 0, ts, n: 0 }, fast: newEw(x, ts), typical: newEw(x, ts) };
    st.water[metric] = w;
  } else updateEw(w.fast, x, ts, FAST_TAU_S);
  return { w, fast: w.fast.value, expected: predictTrend(w.trend, ts), armed: w.trend.n >= 60 };
}

function learnWater(w: WaterState, x: number, ts: number, hold: boolean): void {
  if (hold) {
    w.holdSince ??= ts;
    if (ts - w.holdSince < MAX_HOLD_MS) return;
  } else w.holdSince = undefined;
  updateTrend(w.trend, x, ts, TREND_TAU_S);
  updateEw(w.typical, x, ts, 86_400);
}

type LeakConfig = Exclude<RuleConfig['leak'], false>;

function waterFlow(
  st: RuleState,
  cfg: RuleConfig,
  lk: LeakConfig,
  flow: number,
  ctx: RuleContext,
  out: Flag[],
): void {
  const ts = ctx.ts;
  const { w, fast, expected, armed } = waterBase(st, 'flow', flow, ts);
  const typical = Math.max(w.typical.value, 1e-6);
  const limit = expected + lk.fraction * typical;
  let hold = false;
  const pd = cfg.pressureDrop;
  if (armed && pd) {
    const low = expected - pd.fraction * typical;
    if (fast < low) {
      hold = true;
      flag(
        out,
        'pressure_drop',
        'flow',
        fast,
        expected,
        low,
        `flow ${fmt(fast)} fell ${fmt(((expected - fast) / typical) * 100)} % of typical flow below its trend ${fmt(expected)}: supply pressure lost?`,
      );
    }
  }
  if (armed && fast > limit) {
    hold = true;
    ctx.line.flowUpTs = ts;
    ctx.line.flowUpAsset = ctx.asset;
    const p = ctx.line.pressureDownTs !== undefined && ts - ctx.line.pressureDownTs < LINE_WINDOW_MS;
    flag(
      out,
      'leak',
      'flow',
      fast,
      expected,
      limit,
      `flow ${fmt(fast)} above its trend ${fmt(expected)} by ${fmt(((fast - expected) / typical) * 100)} % of typical flow` +
        (p ? ` while pressure falls at ${ctx.line.pressureDownAsset}` : ''),
    );
  }
  // Minimum night flow: a floor that rises night after night is the classic sign of a leak.
  const hour = (((ts / 3_600_000 + ctx.lonHours) % 24) + 24) % 24;
  const inNight = hour >= lk.nightFromH && hour < lk.nightToH;
  const nightKey = Math.floor((ts / 3_600_000 + ctx.lonHours) / 24);
  if (st.night && (!inNight || st.night.key !== nightKey)) {
    if (ts - st.night.startTs > 0.5 * 3_600_000) {
      st.nights.push(st.night.min);
      if (st.nights.length > 7) st.nights.shift();
    }
    st.night = undefined;
  }
  if (inNight) {
    st.night ??= { key: nightKey, min: fast, startTs: ts };
    st.night.min = Math.min(st.night.min, fast);
    if (st.nights.length >= 2 && ts - st.night.startTs > 0.5 * 3_600_000) {
      const base = median(st.nights);
      const nightLimit = base * (1 + lk.nightFraction);
      if (st.night.min > nightLimit)
        flag(
          out,
          'leak',
          'flow',
          st.night.min,
          base,
          nightLimit,
          `night flow floor ${fmt(st.night.min)} above the median ${fmt(base)} of the last ${st.nights.length} nights`,
        );
    }
  }
  learnWater(w, flow, ts, hold);
}

function waterPressure(st: RuleState, cfg: RuleConfig, p: number, ctx: RuleContext, out: Flag[]): void {
  const ts = ctx.ts;
  const { w, fast, expected, armed } = waterBase(st, 'pressure', p, ts);
  let hold = false;
  const pd = cfg.pressureDrop;
  if (armed && pd) {
    const limit = expected * (1 - pd.fraction);
    if (fast < limit) {
      hold = true;
      flag(
        out,
        'pressure_drop',
        'pressure',
        fast,
        expected,
        limit,
        `pressure ${fmt(fast)} bar, ${fmt((1 - fast / expected) * 100)} % below its trend ${fmt(expected)} bar`,
      );
    }
  }
  const lk = cfg.leak;
  if (armed && lk) {
    const limit = expected * (1 - lk.pressureFraction);
    if (fast < limit) {
      hold = true;
      ctx.line.pressureDownTs = ts;
      ctx.line.pressureDownAsset = ctx.asset;
      const f = ctx.line.flowUpTs !== undefined && ts - ctx.line.flowUpTs < LINE_WINDOW_MS;
      if (f)
        flag(
          out,
          'leak',
          'pressure',
          fast,
          expected,
          limit,
          `pressure ${fmt(fast)} bar below its trend ${fmt(expected)} bar while flow rises at ${ctx.line.flowUpAsset}`,
        );
    }
  }
  learnWater(w, p, ts, hold);
}
