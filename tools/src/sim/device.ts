/**
 * One simulated device: its signal model, its faults and its clock. Pure and deterministic: the
 * readings depend only on the seed, the asset, the start time, the rate and the faults, never on the
 * wall clock, so a test can replay exactly what went over MQTT.
 */
import { METRICS_BY_KIND, telemetryTopic, type Asset, type Reading } from 'node-red-contrib-evtwin';
import {
  DEFAULT_RANDOM_FAULT_DURATION_S,
  DeviceFaults,
  assetKey,
  specNames,
  type ActiveFault,
  type FaultLabel,
  type FaultSpec,
} from './faults';
import { createModel, type SignalModel } from './models';
import { Rng } from './prng';

/** One reading in the telemetry contract's shape (core telemetry.ts): `{ts, seq, values}`. */
export interface SimReading {
  ts: number;
  seq: number;
  values: Record<string, number>;
}

/** The canonical reading (core reading.ts) of a simulated one: what evtwin-ingest would make of it. */
export function simReading(a: Asset, r: SimReading): Reading {
  const reading: Reading = {
    site: a.site,
    asset: a.id,
    kind: a.kind,
    ts: r.ts,
    seq: r.seq,
    metrics: r.values,
  };
  if (a.line) reading.line = a.line;
  return reading;
}

export interface DeviceOptions {
  seed: number;
  /** Readings per simulated second (at most 1000: timestamps are whole ms and must strictly increase). */
  rate: number;
  /** Simulated epoch ms of the simulation start. */
  startTs: number;
  /** Scheduled faults; only those whose ASSET names this device apply (see resolveFaults, specNames). */
  faults?: readonly FaultSpec[];
  /** Probability per simulated minute that a random fault begins. */
  faultRate?: number;
  faultDurationS?: [number, number];
  onLabel?: (label: FaultLabel) => void;
}

export const MAX_RATE = 1000;

export class DeviceSim {
  readonly key: string;
  readonly topic: string;
  private readonly model: SignalModel;
  private readonly faults: DeviceFaults;
  private readonly metrics: string[];
  private readonly phaseMs: number;
  private readonly startTs: number;
  private readonly rate: number;
  private index = 0;
  private lastTs: number | undefined;

  constructor(
    readonly asset: Asset,
    opts: DeviceOptions,
  ) {
    if (!(opts.rate > 0 && opts.rate <= MAX_RATE))
      throw new RangeError(`rate must be in (0, ${MAX_RATE}], got ${opts.rate}`);
    this.key = assetKey(asset);
    this.topic = telemetryTopic(asset.site, asset.id);
    this.metrics = Object.keys(METRICS_BY_KIND[asset.kind]);
    this.startTs = Math.round(opts.startTs);
    this.rate = opts.rate;
    // Separate streams: turning faults on or off leaves the base signal before the first fault unchanged.
    const clockRng = new Rng(opts.seed, this.key, 'clock');
    this.phaseMs = Math.floor(clockRng.next() * Math.min(1000 / opts.rate, 1000));
    this.model = createModel(asset, new Rng(opts.seed, this.key, 'signal'), this.startTs);
    const random =
      opts.faultRate && opts.faultRate > 0
        ? { ratePerMinute: opts.faultRate, durationS: opts.faultDurationS ?? DEFAULT_RANDOM_FAULT_DURATION_S }
        : undefined;
    // A fleet-wide list is easy to pass to every device: a fault must still hit only the asset it names.
    this.faults = new DeviceFaults(
      asset,
      (opts.faults ?? []).filter((s) => specNames(s, asset)),
      this.startTs,
      new Rng(opts.seed, this.key, 'faults'),
      random,
      opts.onLabel ?? (() => undefined),
    );
  }

  /** Timestamp of reading k: an even grid offset by a per-device phase, so devices do not all fire at once. */
  private tsAt(k: number): number {
    return this.startTs + this.phaseMs + Math.round((k * 1000) / this.rate);
  }

  /** Simulated epoch ms of the next reading. */
  get nextTs(): number {
    return this.tsAt(this.index);
  }

  /** Readings produced so far. */
  get produced(): number {
    return this.index;
  }

  get activeFaults(): readonly ActiveFault[] {
    return this.faults.current;
  }

  next(): SimReading {
    const ts = this.tsAt(this.index);
    const dtS = this.lastTs === undefined ? 1 / this.rate : (ts - this.lastTs) / 1000;
    const faults = this.faults.at(ts, dtS);
    const raw = this.model.step({ ts, dtS, faults });
    // Metric names are the core catalogue's, in its order; a model can omit one (cycle_time between cycles).
    const values: Record<string, number> = {};
    for (const m of this.metrics) {
      const v = raw[m];
      if (v !== undefined) values[m] = v;
    }
    this.lastTs = ts;
    this.index++;
    return { ts, seq: this.index, values };
  }
}
