/**
 * Failure risk 0..1 (pure): a logistic on the health indicators and their trend. Probability-like,
 * not a calibrated probability of failure (no run-to-failure data here): low for a healthy asset,
 * rising as health falls, faster when health is falling quickly and when temperature or vibration
 * run near their limits. Coefficients are documented so they can be refitted on field data.
 */
import type { Health } from './health';

export const RISK_COEFFICIENTS = {
  intercept: -4.5,
  /** Per unit of lost health (0..1). */
  healthLoss: 5,
  /** Per health point lost per hour (only a falling trend counts), capped at 20 points/h. */
  decline: 0.12,
  temperature: 1.5,
  vibration: 2,
} as const;

const logistic = (z: number): number => 1 / (1 + Math.exp(-z));

export function failureRisk(h: Health, c: typeof RISK_COEFFICIENTS = RISK_COEFFICIENTS): number {
  const decline = Math.min(20, Math.max(0, -h.slopePerHour));
  const z =
    c.intercept +
    c.healthLoss * (1 - h.health / 100) +
    c.decline * decline +
    c.temperature * h.indicators.temperature +
    c.vibration * h.indicators.vibration;
  return logistic(z);
}
