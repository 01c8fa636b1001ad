/**
 * Status colour: the colour field's value through Grafana thresholds (the panel's or the field's own), with a
 * status field able to override (a faulted or offline asset is never painted green because its health lags).
 */
import { type Threshold, type ThresholdsConfig, ThresholdsMode, getActiveThreshold } from '@grafana/data';

export type Level = 'ok' | 'warn' | 'alarm' | 'offline' | 'unknown';

/** Health is 0..100 (evtwin-score): red below 50, orange below 80, green above. */
export const DEFAULT_THRESHOLDS: ThresholdsConfig = {
  mode: ThresholdsMode.Absolute,
  steps: [
    { value: -Infinity, color: 'red' },
    { value: 50, color: 'orange' },
    { value: 80, color: 'green' },
  ],
};

/** Colours for states that thresholds do not express. Named Grafana colours, resolved by the theme. */
export const STATE_COLORS = { alarm: 'red', offline: 'gray', unknown: 'gray' } as const;

const STATUS_WORDS: Record<string, Level> = {
  ok: 'ok',
  normal: 'ok',
  running: 'ok',
  online: 'ok',
  available: 'ok',
  charging: 'ok',
  preparing: 'ok',
  finishing: 'ok',
  idle: 'ok',
  healthy: 'ok',
  warning: 'warn',
  warn: 'warn',
  degraded: 'warn',
  maintenance: 'warn',
  suspendedev: 'warn',
  suspendedevse: 'warn',
  reserved: 'ok',
  fault: 'alarm',
  faulted: 'alarm',
  alarm: 'alarm',
  critical: 'alarm',
  error: 'alarm',
  unavailable: 'alarm',
  offline: 'offline',
  disconnected: 'offline',
  off: 'offline',
};

/**
 * A status cell as a level, or undefined when it says nothing about colour. Numbers follow the machine
 * `state` metric of the kind catalogue: 0 off, 1 idle, 2 running, 3 fault.
 */
export function statusLevel(status: string | number | null | undefined): Level | undefined {
  if (status === null || status === undefined) return undefined;
  if (typeof status === 'number') {
    if (status === 3) return 'alarm';
    if (status === 0) return 'offline';
    return status === 1 || status === 2 ? 'ok' : undefined;
  }
  const word = status
    .trim()
    .toLowerCase()
    .replace(/[\s_-]/g, '');
  if (/^\d+$/.test(word)) return statusLevel(Number(word));
  return STATUS_WORDS[word];
}

/** Percentage thresholds need the field's range; without one, treat steps as absolute. */
export function activeStep(value: number, t: ThresholdsConfig, min?: number, max?: number): Threshold {
  if (t.mode === ThresholdsMode.Percentage && min !== undefined && max !== undefined && max > min) {
    return getActiveThreshold(((value - min) / (max - min)) * 100, t.steps);
  }
  return getActiveThreshold(value, t.steps);
}

/** Level of a threshold colour: green-ish fine, yellow/orange a warning, red an alarm. */
export function levelOfColor(colorName: string): Level {
  const c = colorName.toLowerCase();
  if (c.includes('red')) return 'alarm';
  if (c.includes('orange') || c.includes('yellow')) return 'warn';
  if (c.includes('gray') || c.includes('grey')) return 'unknown';
  return 'ok';
}

export interface Colouring {
  /** Named or hex colour (resolve with the theme). */
  color: string;
  level: Level;
}

export function colourOf(
  value: number | null,
  statusLvl: Level | undefined,
  thresholds: ThresholdsConfig,
  range?: { min?: number; max?: number },
): Colouring {
  if (statusLvl === 'alarm' || statusLvl === 'offline')
    return { color: STATE_COLORS[statusLvl], level: statusLvl };
  if (value === null) {
    if (statusLvl === 'warn') return { color: 'orange', level: 'warn' };
    return { color: STATE_COLORS.unknown, level: statusLvl ?? 'unknown' };
  }
  const step = activeStep(value, thresholds, range?.min, range?.max);
  return { color: step.color, level: levelOfColor(step.color) };
}

export interface LegendItem {
  label: string;
  color: string;
}

/** One legend row per threshold step ("< 50", "50 – 80", "≥ 80"), then the states thresholds cannot show. */
export function legendItems(thresholds: ThresholdsConfig, what: string, unit = ''): LegendItem[] {
  const steps = [...thresholds.steps].sort((a, b) => a.value - b.value);
  const pct = thresholds.mode === ThresholdsMode.Percentage ? '%' : unit;
  const items: LegendItem[] = steps.map((s, i) => {
    const next = steps[i + 1];
    const fmt = (v: number): string => `${Number.isInteger(v) ? v : v.toPrecision(3)}${pct}`;
    let label: string;
    if (!Number.isFinite(s.value)) label = next ? `${what} < ${fmt(next.value)}` : what;
    else if (next) label = `${fmt(s.value)} – ${fmt(next.value)}`;
    else label = `≥ ${fmt(s.value)}`;
    return { label, color: s.color };
  });
  items.push(
    { label: 'fault', color: STATE_COLORS.alarm },
    { label: 'offline / no data', color: STATE_COLORS.offline },
  );
  return items;
}
