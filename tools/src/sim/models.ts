/**
 * Signal models of the simulated devices: pure state machines driven by simulated time and a seeded
 * PRNG, no I/O. Each step advances the physics by dtS seconds and returns the device's reading; active
 * faults change the physics (a coolant failure heats with a time constant, a leak drains the tank),
 * so faults look like what a detector would meet in the field rather than pasted-on offsets.
 */
import type { Asset, AssetKind } from 'node-red-contrib-evtwin';
import { faultProgress, type ActiveFault, type FaultType } from './faults';
import type { Rng } from './prng';

export interface StepContext {
  /** Simulated epoch ms of this reading. */
  ts: number;
  /** Simulated seconds since the previous reading. */
  dtS: number;
  faults: readonly ActiveFault[];
}

export interface SignalModel {
  readonly kind: AssetKind;
  /** Advance to ctx.ts and return the metric values (names from the core's METRICS_BY_KIND). */
  step(ctx: StepContext): Record<string, number>;
}

const SQRT3 = Math.sqrt(3);
const HOUR_MS = 3_600_000;

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
/** Fraction of the way a first-order lag moves toward its target in dt (time constant tau). */
const lag = (dtS: number, tauS: number): number => 1 - Math.exp(-dtS / tauS);
const round = (v: number, decimals: number): number => {
  const f = 10 ** decimals;
  const r = Math.round(v * f) / f;
  return r === 0 ? 0 : r; // no -0 in JSON
};

const find = (faults: readonly ActiveFault[], type: FaultType): ActiveFault | undefined =>
  faults.find((f) => f.type === type);

/** Local solar hour (0..24) at a longitude: water demand and ambient temperature follow the sun, not UTC. */
export function localHour(ts: number, lon = 0): number {
  const h = (ts / HOUR_MS + lon / 15) % 24;
  return h < 0 ? h + 24 : h;
}

const bump = (h: number, centre: number, width: number): number => {
  let d = Math.abs(h - centre);
  if (d > 12) d = 24 - d;
  return Math.exp(-(d * d) / (2 * width * width));
};

/** Typical municipal demand relative to the daily mean: night minimum ~0.35, morning peak ~1.3, evening ~1.0. */
export function diurnalDemand(hour: number): number {
  return 0.32 + 0.95 * bump(hour, 7.5, 1.4) + 0.3 * bump(hour, 13, 2.5) + 0.7 * bump(hour, 19.5, 2);
}

/** Slowly wandering noise (Ornstein–Uhlenbeck): realistic drift that stays around zero. */
class Wander {
  value = 0;
  constructor(
    private readonly rng: Rng,
    private readonly sd: number,
    private readonly tauS: number,
  ) {
    this.value = rng.normal(0, sd);
  }
  step(dtS: number): number {
    const a = Math.exp(-dtS / this.tauS);
    this.value = this.value * a + this.rng.normal(0, this.sd * Math.sqrt(1 - a * a));
    return this.value;
  }
}

/** Split a long step into sub-steps so integrations stay accurate at low sampling rates. */
function substeps(dtS: number, maxS: number, fn: (h: number) => void): void {
  const n = Math.max(1, Math.ceil(dtS / maxS));
  for (let i = 0; i < n; i++) fn(dtS / n);
}

// ---------------------------------------------------------------------------------------------------
// Machines: CNC mills/lathes and assembly robots

const OFF = 0;
const IDLE = 1;
const RUNNING = 2;
const FAULT = 3;

interface MachineSpec {
  idleKw: [number, number];
  runKw: [number, number];
  cycleS: [number, number];
  idleMeanS: number;
  spindleRpm?: [number, number];
  tempPerKw: number;
  tauS: number;
  tripC: number;
  vibBase: number;
  vibRun: number;
}

const MACHINES: Record<'cnc' | 'robot', MachineSpec> = {
  cnc: {
    idleKw: [1.0, 1.6],
    runKw: [6, 11],
    cycleS: [40, 90],
    idleMeanS: 20,
    spindleRpm: [6000, 12000],
    tempPerKw: 2.6,
    tauS: 900,
    tripC: 80,
    vibBase: 0.35,
    vibRun: 2.2,
  },
  robot: {
    idleKw: [0.3, 0.5],
    runKw: [1.5, 3],
    cycleS: [10, 25],
    idleMeanS: 6,
    tempPerKw: 5,
    tauS: 600,
    tripC: 62,
    vibBase: 0.15,
    vibRun: 1.1,
  },
};

class MachineModel implements SignalModel {
  private readonly idleKw: number;
  private readonly runKw: number;
  private readonly cycleS: number;
  private readonly ambient: number;
  private mode: number = IDLE;
  private modeLeftS: number;
  private cycleElapsedS = 0;
  private cycleTargetS = 0;
  private spindleSet = 0;
  private phase = 0;
  private tempBase: number;
  private tempFault = 0;
  private readonly voltageWander: Wander;

  constructor(
    readonly kind: 'cnc' | 'robot',
    private readonly rng: Rng,
    private readonly spec: MachineSpec = MACHINES[kind],
  ) {
    this.idleKw = rng.uniform(...spec.idleKw);
    this.runKw = rng.uniform(...spec.runKw);
    this.cycleS = rng.uniform(...spec.cycleS);
    this.ambient = rng.uniform(20, 24);
    this.modeLeftS = rng.exponential(spec.idleMeanS);
    // Start near thermal equilibrium at the average load, not cold: no warm-up artefact in every run.
    this.tempBase = this.ambient + spec.tempPerKw * (this.idleKw + this.runKw * 0.45) + rng.normal(0, 1);
    this.voltageWander = new Wander(rng, 1.5, 600);
  }

  step({ ts, dtS, faults }: StepContext): Record<string, number> {
    const spec = this.spec;
    const rng = this.rng;
    const waste = find(faults, 'idle_power_waste');
    const drift = find(faults, 'cycle_time_drift');
    let cycleDone: number | undefined;

    // Advance the job state machine; a long step may finish a cycle and start the next.
    let left = dtS;
    while (left > 0) {
      if (this.mode === RUNNING) {
        const rest = this.cycleTargetS - this.cycleElapsedS;
        if (rest > left) {
          this.cycleElapsedS += left;
          left = 0;
        } else {
          left -= rest;
          cycleDone = this.cycleTargetS * (1 + rng.normal(0, 0.003));
          // Operator break or set-up about every 3 h of production: a machine is not busy around the clock.
          if (faults.length === 0 && rng.chance(this.cycleTargetS / (3 * 3600))) {
            this.mode = OFF;
            this.modeLeftS = rng.exponential(600);
          } else {
            this.mode = IDLE;
            this.modeLeftS = rng.exponential(spec.idleMeanS);
          }
        }
      } else if (this.mode === IDLE || this.mode === OFF) {
        if (waste && this.mode === IDLE) {
          left = 0; // waiting, but drawing power: no job starts while the fault lasts
        } else if (this.modeLeftS > left) {
          this.modeLeftS -= left;
          left = 0;
        } else {
          left -= this.modeLeftS;
          if (this.mode === OFF) {
            this.mode = IDLE;
            this.modeLeftS = rng.exponential(spec.idleMeanS);
          } else {
            const slow = drift ? 1 + drift.severity * (0.15 + 0.35 * faultProgress(drift, ts)) : 1;
            this.mode = RUNNING;
            this.cycleElapsedS = 0;
            this.cycleTargetS = this.cycleS * (1 + rng.normal(0, 0.015)) * slow;
            this.spindleSet = spec.spindleRpm ? Math.round(rng.uniform(...spec.spindleRpm) / 100) * 100 : 0;
            this.phase = rng.uniform(0, 2 * Math.PI);
          }
        }
      } else {
        left = 0; // FAULT: tripped on temperature, waits until it has cooled
      }
    }
    if (this.mode === IDLE && waste) this.modeLeftS = Math.max(this.modeLeftS, 1);

    // Load (0..1) and what follows from it.
    let load = 0;
    let spindle = 0;
    let motion = 0;
    if (this.mode === RUNNING) {
      const x = this.cycleElapsedS / this.cycleTargetS;
      if (this.kind === 'cnc') {
        const segment = x < 0.6 ? 0.8 : x < 0.9 ? 0.42 : 0.25; // roughing, finishing, deburr/tool change
        const ramp = Math.min(1, this.cycleElapsedS / 3);
        load = clamp(
          ramp * (segment + 0.08 * Math.sin(this.cycleElapsedS / 1.3 + this.phase)) + rng.normal(0, 0.03),
          0.05,
          1,
        );
        spindle = this.spindleSet * ramp * (1 - 0.02 * load) + rng.normal(0, 6);
      } else {
        motion = Math.abs(Math.sin((Math.PI * this.cycleElapsedS) / 2.7 + this.phase));
        load = clamp(0.3 + 0.7 * motion + rng.normal(0, 0.04), 0.05, 1);
      }
    }
    if (waste && this.mode === IDLE && this.kind === 'cnc')
      spindle = 1500 * waste.severity + rng.normal(0, 8);

    let power: number;
    if (this.mode === OFF) power = 0.02 + Math.abs(rng.normal(0, 0.005));
    else if (this.mode === FAULT) power = this.idleKw * 0.6 * (1 + rng.normal(0, 0.03));
    else if (this.mode === RUNNING)
      power = this.idleKw + this.runKw * load + rng.normal(0, 0.04 * this.runKw);
    else power = this.idleKw * (1 + rng.normal(0, 0.03));
    if (waste && this.mode === IDLE)
      power += this.runKw * (0.3 + 0.2 * waste.severity) * (1 + rng.normal(0, 0.04));
    power = Math.max(0, power);

    // Thermal: slow equilibrium with the drive's own heat; a coolant or fan failure heats on a shorter constant.
    this.tempBase += (this.ambient + spec.tempPerKw * power - this.tempBase) * lag(dtS, spec.tauS);
    const hot = find(faults, 'high_temperature');
    // Without cooling, the drive's own heat no longer leaves: the more load, the hotter.
    const hotTarget = hot ? (30 + 3 * power) * hot.severity : 0;
    this.tempFault += (hotTarget - this.tempFault) * lag(dtS, hot ? 60 : 180);
    const temperature = this.tempBase + this.tempFault + rng.normal(0, 0.12);
    if (temperature > spec.tripC && this.mode !== OFF) {
      this.mode = FAULT;
    } else if (this.mode === FAULT && temperature < spec.tripC - 12) {
      this.mode = IDLE;
      this.modeLeftS = rng.exponential(spec.idleMeanS);
    }

    const spike = find(faults, 'power_spike');
    if (spike && this.mode !== OFF) power *= 1 + spike.severity * (0.8 + 1.2 * rng.next());

    let voltage = 400 * (1 - 0.004 * power) + this.voltageWander.step(dtS) + rng.normal(0, 0.6);
    const sag = find(faults, 'voltage_drop');
    if (sag) voltage *= 1 - sag.severity * (0.1 + 0.04 * rng.next());
    const pf = 0.8 + 0.12 * load;
    const current =
      this.mode === OFF ? Math.abs(rng.normal(0.03, 0.01)) : (power * 1000) / (SQRT3 * voltage * pf);

    let vibration =
      this.kind === 'cnc'
        ? spec.vibBase + spec.vibRun * (spindle / 10000) ** 2 * (0.6 + 0.4 * load)
        : spec.vibBase + spec.vibRun * motion * (this.mode === RUNNING ? 1 : 0);
    if (this.mode === OFF) vibration = 0.02;
    vibration += Math.abs(rng.normal(0, 0.04));
    const shake = find(faults, 'vibration');
    if (shake && this.mode !== OFF) {
      // Bearing wear or imbalance: grows through the window.
      vibration =
        vibration * (1.8 + 1.5 * shake.severity * (0.5 + faultProgress(shake, ts))) + 1.2 * shake.severity;
    }

    const out: Record<string, number> = {
      power: round(power, 3),
      voltage: round(voltage, 1),
      current: round(current, 2),
      temperature: round(temperature, 2),
      vibration: round(vibration, 3),
      state: this.mode,
    };
    if (this.kind === 'cnc') out.spindle_speed = round(Math.max(0, spindle), 0);
    if (cycleDone !== undefined) out.cycle_time = round(cycleDone, 2);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------
// Charge points: sessions with ramp-up, constant power and taper; a monotonic energy register

class ChargerModel implements SignalModel {
  readonly kind = 'charger' as const;
  private readonly maxKw: number;
  private readonly dc: boolean;
  private readonly lon: number;
  private energy: number;
  private idleLeftS: number;
  private session:
    { kw: number; capacityKwh: number; soc: number; targetSoc: number; elapsedS: number } | undefined;
  private tempBase: number;
  private tempFault = 0;

  constructor(
    private readonly rng: Rng,
    asset: Asset,
    startTs: number,
  ) {
    this.maxKw = rng.pick([22, 22, 50, 150]);
    this.dc = this.maxKw >= 50;
    this.lon = asset.location?.lon ?? 0;
    this.energy = round(rng.uniform(1000, 50_000), 3);
    this.idleLeftS = rng.exponential(this.meanIdleS(startTs));
    this.tempBase = this.ambient(startTs) + rng.normal(0, 1);
  }

  /** Fewer sessions at night. */
  private meanIdleS(ts: number): number {
    const h = localHour(ts, this.lon);
    return h >= 7 && h < 22 ? 15 * 60 : 90 * 60;
  }

  private ambient(ts: number): number {
    return 12 + 7 * Math.sin(((localHour(ts, this.lon) - 9) / 24) * 2 * Math.PI);
  }

  private startSession(): void {
    const rng = this.rng;
    const car = this.dc ? rng.pick([50, 100, 150, 200]) : rng.pick([7.4, 11, 11, 22]);
    this.session = {
      kw: Math.min(this.maxKw, car),
      capacityKwh: rng.uniform(40, 100),
      soc: rng.uniform(0.1, 0.6),
      targetSoc: rng.uniform(0.8, 1),
      elapsedS: 0,
    };
  }

  step({ ts, dtS, faults }: StepContext): Record<string, number> {
    const rng = this.rng;
    const spike = find(faults, 'power_spike');
    const sag = find(faults, 'voltage_drop');
    // An electrical fault shows only under load: a car is plugged in while it lasts.
    if (!this.session && (spike || sag)) this.startSession();

    let power = 0;
    substeps(dtS, 5, (h) => {
      if (!this.session) {
        this.idleLeftS -= h;
        if (this.idleLeftS <= 0) this.startSession();
        return;
      }
      const s = this.session;
      s.elapsedS += h;
      const ramp = Math.min(1, s.elapsedS / 30);
      const taper = s.soc > 0.8 ? Math.max(0.08, 1 - ((s.soc - 0.8) / 0.2) * 0.92) : 1;
      power = s.kw * ramp * taper * (1 + rng.normal(0, 0.008));
      if (spike) power *= 1 + spike.severity * (0.5 + rng.next());
      this.energy += (power * h) / 3600;
      s.soc += (power * h) / 3600 / s.capacityKwh;
      if (s.soc >= s.targetSoc && !spike && !sag) {
        this.session = undefined;
        this.idleLeftS = rng.exponential(this.meanIdleS(ts));
      }
    });
    if (!this.session) power = 0;

    let voltage = 0;
    let current = 0;
    if (this.session) {
      voltage = this.dc ? 350 + 60 * this.session.soc + rng.normal(0, 0.5) : 400 + rng.normal(0, 1.5);
      if (sag) voltage *= 1 - sag.severity * (0.12 + 0.04 * rng.next());
      current = (power * 1000) / (this.dc ? voltage : SQRT3 * voltage);
    }

    this.tempBase += (this.ambient(ts) + 0.12 * power - this.tempBase) * lag(dtS, 900);
    const hot = find(faults, 'high_temperature');
    this.tempFault += ((hot ? 35 * hot.severity : 0) - this.tempFault) * lag(dtS, hot ? 90 : 240);

    return {
      power: round(power, 3),
      voltage: round(voltage, 1),
      current: round(current, 2),
      energy: round(this.energy, 3),
      temperature: round(this.tempBase + this.tempFault + rng.normal(0, 0.1), 2),
    };
  }
}

// ---------------------------------------------------------------------------------------------------
// Water network sensors

/** How far a fault has ramped in (leaks open over a couple of minutes, not in one sample). */
const rampIn = (f: ActiveFault, ts: number, seconds: number): number =>
  Math.min(1, (ts - f.start) / 1000 / seconds);

class WaterModel implements SignalModel {
  private readonly lon: number;
  private readonly demandWander: Wander;
  private readonly qNom: number;
  private readonly p0: number;
  // level
  private level: number;
  private readonly areaM2: number;
  private pumpOn: boolean;
  // chlorine
  private chlorine: number;
  private readonly doseWander: Wander;
  // turbidity
  private readonly turbWander: Wander;
  private readonly turbBase: number;
  private nextRainTs: number;
  private rains: { start: number; peak: number }[] = [];
  // A pressure drop sets in over seconds, not in one sample.
  private pressureLoss = 0;

  constructor(
    readonly kind: 'flow' | 'pressure' | 'level' | 'chlorine' | 'turbidity',
    private readonly rng: Rng,
    asset: Asset,
    startTs: number,
  ) {
    this.lon = asset.location?.lon ?? 0;
    this.demandWander = new Wander(rng, 0.05, 1800);
    this.qNom = rng.uniform(20, 60);
    this.p0 = rng.uniform(4.3, 5);
    this.level = rng.uniform(3, 4.5);
    this.areaM2 = rng.uniform(120, 200);
    this.pumpOn = rng.chance(0.5);
    this.doseWander = new Wander(rng, 0.04, 3600);
    this.chlorine = this.chlorineTarget(startTs, 0);
    this.turbWander = new Wander(rng, 0.12, 900);
    this.turbBase = rng.uniform(0.3, 0.7);
    this.nextRainTs = startTs + rng.exponential(30 * HOUR_MS);
  }

  private demand(ts: number): number {
    return diurnalDemand(localHour(ts, this.lon)) * (1 + this.demandWander.value);
  }

  /** Residual chlorine decays with water age, and water sits longer in the pipes when demand is low. */
  private chlorineTarget(ts: number, dose: number): number {
    const ageH = 3.5 / Math.max(0.15, this.demand(ts));
    return (0.95 + dose) * Math.exp(-0.09 * ageH);
  }

  step({ ts, dtS, faults }: StepContext): Record<string, number> {
    const rng = this.rng;
    this.demandWander.step(dtS);
    const d = this.demand(ts);
    const leak = find(faults, 'leak');
    const drop = find(faults, 'pressure_drop');
    const leakK = leak ? leak.severity * rampIn(leak, ts, 120) : 0;
    this.pressureLoss += ((drop ? drop.severity : 0) - this.pressureLoss) * lag(dtS, 15);

    switch (this.kind) {
      case 'flow': {
        let q = this.qNom * d * (1 - 0.3 * this.pressureLoss) + this.qNom * 0.25 * leakK;
        q += rng.normal(0, 0.012 * this.qNom);
        return { flow: round(Math.max(0, q), 2) };
      }
      case 'pressure': {
        let p = this.p0 - 1.4 * d * d - 0.6 * leakK;
        p *= 1 - 0.5 * this.pressureLoss;
        p += rng.normal(0, 0.015);
        return { pressure: round(Math.max(0, p), 3) };
      }
      case 'level': {
        substeps(dtS, 10, (h) => {
          if (this.level < 2.2) this.pumpOn = true;
          if (this.level > 5) this.pumpOn = false;
          const inflow = this.pumpOn ? (this.qNom * 1.8 * (1 - 0.8 * this.pressureLoss)) / 1000 : 0;
          const outflow = (this.qNom * d + this.qNom * 0.4 * leakK) / 1000;
          this.level = clamp(this.level + ((inflow - outflow) * h) / this.areaM2, 0, 6.5);
        });
        return { level: round(this.level + rng.normal(0, 0.004), 3) };
      }
      case 'chlorine': {
        const target = this.chlorineTarget(ts, this.doseWander.step(dtS)) - 0.3 * leakK;
        this.chlorine += (target - this.chlorine) * lag(dtS, leak ? 90 : 1200);
        return { chlorine: round(Math.max(0, this.chlorine + rng.normal(0, 0.008)), 3) };
      }
      case 'turbidity': {
        // Rain events: a fast rise over ~30 min, then hours of decay. Natural, so not labelled as faults.
        while (ts >= this.nextRainTs) {
          this.rains.push({ start: this.nextRainTs, peak: rng.uniform(1.5, 6) });
          this.nextRainTs += rng.exponential(30 * HOUR_MS);
        }
        let rain = 0;
        this.rains = this.rains.filter((r) => ts - r.start < 24 * HOUR_MS);
        for (const r of this.rains) {
          const tH = (ts - r.start) / HOUR_MS;
          rain += tH < 0.5 ? r.peak * (tH / 0.5) : r.peak * Math.exp(-(tH - 0.5) / 3);
        }
        const base = this.turbBase * Math.exp(this.turbWander.step(dtS) + rng.normal(0, 0.06));
        return { turbidity: round(base + rain + 2.5 * leakK, 3) };
      }
    }
  }
}

/** The model for an asset; `rng` is the asset's own signal stream. */
export function createModel(asset: Asset, rng: Rng, startTs: number): SignalModel {
  switch (asset.kind) {
    case 'cnc':
    case 'robot':
      return new MachineModel(asset.kind, rng);
    case 'charger':
      return new ChargerModel(rng, asset, startTs);
    case 'flow':
    case 'pressure':
    case 'level':
    case 'chlorine':
    case 'turbidity':
      return new WaterModel(asset.kind, rng, asset, startTs);
  }
}
