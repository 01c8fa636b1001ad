/**
 * Injectable, labelled faults. A fault is a window of simulated time on one device; the signal models
 * read the active faults and change their physics accordingly (models.ts), and every fault that
 * touched at least one reading becomes a ground-truth label so detectors can be scored later.
 */
import { ANOMALY_TYPES, type AnomalyType, type Asset, type AssetKind } from 'node-red-contrib-evtwin';
import { Rng } from './prng';

/** The simulator injects exactly the anomaly types the scoring knows (one list, in the core). */
export const FAULT_TYPES = ANOMALY_TYPES;
export type FaultType = AnomalyType;

/** Where each fault makes physical sense; random faults are drawn only from these. */
export const FAULT_KINDS: Record<FaultType, readonly AssetKind[]> = {
  power_spike: ['cnc', 'robot', 'charger'],
  voltage_drop: ['cnc', 'robot', 'charger'],
  high_temperature: ['cnc', 'robot', 'charger'],
  idle_power_waste: ['cnc', 'robot'],
  vibration: ['cnc', 'robot'],
  cycle_time_drift: ['cnc', 'robot'],
  // A leak raises flow, lowers pressure and tank level, and lets dirty water in (chlorine down, turbidity up).
  leak: ['flow', 'pressure', 'level', 'chlorine', 'turbidity'],
  // Loss of upstream pressure: pressure falls, flow falls, the tank's feed weakens.
  pressure_drop: ['pressure', 'flow', 'level'],
};

export const faultAppliesTo = (type: FaultType, kind: AssetKind): boolean => FAULT_KINDS[type].includes(kind);
export const faultTypesFor = (kind: AssetKind): FaultType[] =>
  FAULT_TYPES.filter((t) => faultAppliesTo(t, kind));
export const isFaultType = (v: unknown): v is FaultType =>
  typeof v === 'string' && (FAULT_TYPES as readonly string[]).includes(v);

/** A scheduled fault: `TYPE:ASSET:START_S:DURATION_S[:SEVERITY]`; start is seconds after the simulation start. */
export interface FaultSpec {
  type: FaultType;
  /** Asset id, `site/asset`, or `*` for every asset the type applies to. */
  asset: string;
  startS: number;
  durationS: number;
  /** 0 < severity ≤ 1; 1 when omitted. */
  severity?: number;
}

export class FaultSpecError extends Error {
  override name = 'FaultSpecError';
}

export function parseFaultSpec(text: string): FaultSpec {
  const parts = text.split(':');
  const usage = `fault "${text}": expected TYPE:ASSET:START_S:DURATION_S[:SEVERITY]`;
  if (parts.length < 4 || parts.length > 5) throw new FaultSpecError(usage);
  const [type, asset, start, duration, severity] = parts as [
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  if (!isFaultType(type))
    throw new FaultSpecError(`fault "${text}": unknown type "${type}" (one of ${FAULT_TYPES.join(', ')})`);
  if (asset === '') throw new FaultSpecError(`${usage}; ASSET is empty`);
  const startS = Number(start);
  const durationS = Number(duration);
  if (start.trim() === '' || !Number.isFinite(startS) || startS < 0) {
    throw new FaultSpecError(`fault "${text}": START_S must be a number of seconds >= 0`);
  }
  if (duration.trim() === '' || !Number.isFinite(durationS) || durationS <= 0) {
    throw new FaultSpecError(`fault "${text}": DURATION_S must be a number of seconds > 0`);
  }
  const spec: FaultSpec = { type, asset, startS, durationS };
  if (severity !== undefined) {
    const s = Number(severity);
    if (severity.trim() === '' || !Number.isFinite(s) || s <= 0 || s > 1) {
      throw new FaultSpecError(`fault "${text}": SEVERITY must be a number in (0, 1]`);
    }
    spec.severity = s;
  }
  return spec;
}

export const assetKey = (a: Pick<Asset, 'site' | 'id'>): string => `${a.site}/${a.id}`;

/** Whether a spec's ASSET names this asset (`*` names every asset of a kind the fault fits). */
export const specNames = (spec: FaultSpec, a: Asset): boolean =>
  spec.asset === '*'
    ? faultAppliesTo(spec.type, a.kind)
    : spec.asset.includes('/')
      ? assetKey(a) === spec.asset
      : a.id === spec.asset;

/**
 * Which scheduled faults each asset gets. Throws when a spec names no asset, an ambiguous id, or an asset
 * of a kind the fault does not fit (a leak on a CNC machine is a mistake, not a no-op).
 */
export function resolveFaults(
  specs: readonly FaultSpec[],
  assets: readonly Asset[],
): Map<string, FaultSpec[]> {
  const out = new Map<string, FaultSpec[]>();
  const add = (a: Asset, s: FaultSpec): void => {
    const key = assetKey(a);
    out.set(key, [...(out.get(key) ?? []), s]);
  };
  for (const spec of specs) {
    if (spec.asset === '*') {
      const fits = assets.filter((a) => faultAppliesTo(spec.type, a.kind));
      if (fits.length === 0) {
        throw new FaultSpecError(
          `fault ${spec.type}:*: no asset of a kind it applies to (${FAULT_KINDS[spec.type].join(', ')})`,
        );
      }
      fits.forEach((a) => add(a, spec));
      continue;
    }
    const matches = assets.filter((a) => specNames(spec, a));
    if (matches.length === 0) throw new FaultSpecError(`fault ${spec.type}:${spec.asset}: no such asset`);
    if (matches.length > 1) {
      throw new FaultSpecError(
        `fault ${spec.type}:${spec.asset}: the id is in several sites; write SITE/ASSET (${matches.map(assetKey).join(', ')})`,
      );
    }
    const asset = matches[0] as Asset;
    if (!faultAppliesTo(spec.type, asset.kind)) {
      throw new FaultSpecError(
        `fault ${spec.type}:${spec.asset}: a ${asset.kind} asset cannot have it (applies to ${FAULT_KINDS[spec.type].join(', ')})`,
      );
    }
    add(asset, spec);
  }
  return out;
}

/** A fault window on one device, in simulated epoch ms: [start, end). */
export interface ActiveFault {
  type: FaultType;
  start: number;
  end: number;
  severity: number;
  source: 'scheduled' | 'random';
}

/** 0 at the start of the window, 1 at its end. */
export const faultProgress = (f: ActiveFault, ts: number): number =>
  Math.min(1, Math.max(0, (ts - f.start) / Math.max(1, f.end - f.start)));

/** The ground truth written to the labels file, one JSON object a line. */
export interface FaultLabel {
  site: string;
  asset: string;
  kind: AssetKind;
  type: FaultType;
  /** Epoch ms (simulated time), inclusive. */
  start: number;
  /** Epoch ms, exclusive. */
  end: number;
  severity: number;
  source: 'scheduled' | 'random';
}

export interface RandomFaultOptions {
  /** Probability per simulated minute that a random fault begins on a device without one (0..1). */
  ratePerMinute: number;
  /** Range of random fault durations, simulated seconds. */
  durationS: [number, number];
}

export const DEFAULT_RANDOM_FAULT_DURATION_S: [number, number] = [30, 300];

/** The faults of one device over time: scheduled windows plus seeded random ones. */
export class DeviceFaults {
  private readonly scheduled: ActiveFault[];
  private random: ActiveFault | undefined;
  /** Scheduled faults already labelled (random ones are labelled when drawn). */
  private readonly labelled = new Set<ActiveFault>();
  private active: ActiveFault[] = [];

  constructor(
    private readonly asset: Asset,
    specs: readonly FaultSpec[],
    startTs: number,
    private readonly rng: Rng,
    private readonly randomOpts: RandomFaultOptions | undefined,
    private readonly onLabel: (label: FaultLabel) => void,
  ) {
    this.scheduled = specs.map((s) => ({
      type: s.type,
      start: startTs + Math.round(s.startS * 1000),
      end: startTs + Math.round((s.startS + s.durationS) * 1000),
      severity: s.severity ?? 1,
      source: 'scheduled' as const,
    }));
  }

  /** The faults active at `ts` (called once per reading, in time order; dtS since the previous one). */
  at(ts: number, dtS: number): readonly ActiveFault[] {
    if (this.random && ts >= this.random.end) this.random = undefined;
    const active = this.scheduled.filter((f) => ts >= f.start && ts < f.end);
    const r = this.randomOpts;
    // Draw on every reading, whether or not a fault starts, so the stream stays aligned across runs.
    const draw = r && r.ratePerMinute > 0 ? this.rng.next() : 1;
    if (r && !this.random && active.length === 0 && draw < 1 - Math.pow(1 - r.ratePerMinute, dtS / 60)) {
      const types = faultTypesFor(this.asset.kind);
      if (types.length > 0) {
        const [lo, hi] = r.durationS;
        const durationS = lo * Math.pow(hi / lo, this.rng.next()); // log-uniform: many short faults, some long
        this.random = {
          type: this.rng.pick(types),
          start: ts,
          end: ts + Math.max(1, Math.round(durationS * 1000)),
          severity: Math.round(this.rng.uniform(0.4, 1) * 100) / 100,
          source: 'random',
        };
        this.label(this.random);
      }
    }
    for (const f of active) {
      if (this.labelled.has(f)) continue;
      this.labelled.add(f);
      this.label(f);
    }
    if (this.random) active.push(this.random);
    this.active = active;
    return active;
  }

  private label(f: ActiveFault): void {
    this.onLabel({
      site: this.asset.site,
      asset: this.asset.id,
      kind: this.asset.kind,
      type: f.type,
      start: f.start,
      end: f.end,
      severity: f.severity,
      source: f.source,
    });
  }

  /** Faults active at the last reading. */
  get current(): readonly ActiveFault[] {
    return this.active;
  }
}
