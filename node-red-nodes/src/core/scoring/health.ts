/**
 * Health index 0..100 of one asset (pure, streaming): 100 is a healthy asset behaving as usual. It
 * falls with the anomaly score smoothed over ~15 minutes (a blip costs little, a lasting fault a lot)
 * and with how close temperature and vibration sit to their limits (stress that shortens life even
 * before anything is flagged).
 */
import type { Ew, RuleConfig, RuleState, Trend } from './rules';
import { updateEw, updateTrend } from './rules';

export interface HealthState {
  score: Ew;
  /** Trend of the health index itself (slope per second), for the failure risk. */
  trend: Trend;
}

export interface HealthIndicators {
  /** Smoothed anomaly score, 0..1. */
  anomaly: number;
  /** Temperature between its usual level (0) and its limit (1), clamped. */
  temperature: number;
  /** Vibration between 0 and its limit (1), clamped. */
  vibration: number;
}

export interface Health {
  health: number;
  /** Change of the health index per hour (negative: getting worse). */
  slopePerHour: number;
  indicators: HealthIndicators;
}

const SCORE_TAU_S = 900;
const TREND_TAU_S = 1800;
/** Weights of the indicators in the 100 points. */
const W_ANOMALY = 60;
const W_TEMPERATURE = 20;
const W_VIBRATION = 20;

export const newHealthState = (ts: number): HealthState => ({
  score: { value: 0, ts, n: 0 },
  trend: { level: 100, slope: 0, ts, n: 0 },
});

const clamp01 = (x: number): number => (x > 1 ? 1 : x > 0 ? x : 0);

/** Excursions of temperature and vibration toward their limits, from the rules' own baselines. */
export function excursions(
  rules: RuleState,
  cfg: RuleConfig,
  metrics: Readonly<Record<string, number>>,
): { temperature: number; vibration: number } {
  let temperature = 0;
  let vibration = 0;
  const t = metrics.temperature;
  if (t !== undefined && cfg.highTemperature && rules.tempBase) {
    const base = rules.tempBase.value;
    const limit = Math.min(cfg.highTemperature.max, base + cfg.highTemperature.riseC);
    temperature = limit > base ? clamp01((t - base) / (limit - base)) : 0;
  }
  const v = metrics.vibration;
  if (v !== undefined && cfg.vibration) vibration = clamp01(v / cfg.vibration.max);
  return { temperature, vibration };
}

export function updateHealth(
  st: HealthState,
  ts: number,
  score: number,
  ex: { temperature: number; vibration: number },
): Health {
  updateEw(st.score, score, ts, SCORE_TAU_S);
  const anomaly = clamp01(st.score.value);
  // Vibration energy grows with the square of velocity: penalise it that way.
  const penalty = W_ANOMALY * anomaly + W_TEMPERATURE * ex.temperature + W_VIBRATION * ex.vibration ** 2;
  const health = Math.max(0, Math.min(100, 100 - penalty));
  updateTrend(st.trend, health, ts, TREND_TAU_S);
  // The trend needs some history before its slope means anything.
  const slopePerHour = st.trend.n >= 30 ? st.trend.slope * 3600 : 0;
  return { health, slopePerHour, indicators: { anomaly, ...ex } };
}

export function isHealthState(v: unknown): v is HealthState {
  if (typeof v !== 'object' || v === null) return false;
  const h = v as Partial<HealthState>;
  return (
    typeof h.score?.value === 'number' &&
    Number.isFinite(h.score.value) &&
    typeof h.trend?.level === 'number' &&
    Number.isFinite(h.trend.level) &&
    Number.isFinite(h.trend.slope)
  );
}
