/** Asset kinds the twin knows and the metrics each one reports, with units: one catalogue for all. */
export interface MetricSpec {
  unit: string;
  description: string;
}

export const ASSET_KINDS = [
  'cnc',
  'robot',
  'flow',
  'pressure',
  'level',
  'chlorine',
  'turbidity',
  'charger',
] as const;
export type AssetKind = (typeof ASSET_KINDS)[number];

const machine = {
  power: { unit: 'kW', description: 'active power' },
  voltage: { unit: 'V', description: 'supply voltage' },
  current: { unit: 'A', description: 'phase current' },
  temperature: { unit: '°C', description: 'drive or spindle temperature' },
  vibration: { unit: 'mm/s', description: 'vibration velocity (RMS)' },
  cycle_time: { unit: 's', description: 'duration of the last completed cycle' },
  state: { unit: '', description: '0 off, 1 idle, 2 running, 3 fault' },
} satisfies Record<string, MetricSpec>;

export const METRICS_BY_KIND: Record<AssetKind, Record<string, MetricSpec>> = {
  cnc: { ...machine, spindle_speed: { unit: 'rpm', description: 'spindle speed' } },
  robot: machine,
  flow: { flow: { unit: 'L/s', description: 'volumetric flow' } },
  pressure: { pressure: { unit: 'bar', description: 'line pressure' } },
  level: { level: { unit: 'm', description: 'tank or reservoir level' } },
  chlorine: { chlorine: { unit: 'mg/L', description: 'free residual chlorine' } },
  turbidity: { turbidity: { unit: 'NTU', description: 'turbidity' } },
  charger: {
    power: { unit: 'kW', description: 'charging power' },
    voltage: { unit: 'V', description: 'output voltage' },
    current: { unit: 'A', description: 'output current' },
    energy: { unit: 'kWh', description: 'energy register' },
    temperature: { unit: '°C', description: 'enclosure temperature' },
  },
};

export function isAssetKind(value: unknown): value is AssetKind {
  return typeof value === 'string' && (ASSET_KINDS as readonly string[]).includes(value);
}

/**
 * The anomaly types of the twin: what the simulator injects (labelled) and what the rule detectors
 * flag, by the same names.
 */
export const ANOMALY_TYPES = [
  'power_spike',
  'voltage_drop',
  'high_temperature',
  'idle_power_waste',
  'vibration',
  'cycle_time_drift',
  'leak',
  'pressure_drop',
] as const;
export type AnomalyType = (typeof ANOMALY_TYPES)[number];
