/**
 * Energy recommendations (pure, streaming): from readings, estimate the energy and money that idle
 * waste, peaks above a site limit, charging at peak tariff and machines running outside shifts cost,
 * and say what to do about it. Energy is integrated reading by reading (power × time since the
 * previous reading of the asset, gaps capped), so the estimate is the area the telemetry shows.
 */
import type { Point } from './lineProtocol';
import type { Reading } from './reading';
import { newDist, updateDist, type Dist, type Flag } from './scoring/rules';

export const RECOMMENDATION_TYPES = [
  'idle_power_waste',
  'peak_shaving',
  'off_peak_charging',
  'outside_shifts',
] as const;
export type RecommendationType = (typeof RECOMMENDATION_TYPES)[number];

export interface Recommendation {
  type: RecommendationType;
  site: string;
  /** Absent for site-wide recommendations (peak shaving). */
  asset?: string;
  /** Estimated energy that can be saved or shifted. */
  kWh: number;
  /** Estimated money saved. */
  cost: number;
  currency: string;
  message: string;
  /** Epoch ms: the time the estimate covers. */
  window: { start: number; end: number };
}

/** A time-of-use band in local time; `from` > `to` wraps midnight. Days 0 (Sunday) .. 6; all when absent. */
export interface TariffBand {
  name: string;
  from: string;
  to: string;
  price: number;
  days?: number[];
}

export interface Tariff {
  currency: string;
  /** Price per kWh outside every band. */
  price: number;
  bands: TariffBand[];
}

export interface Shift {
  days: number[];
  from: string;
  to: string;
}

export interface RecommendConfig {
  tariff: Tariff;
  /** Local time = UTC + this many hours (tariffs and shifts are in local time). */
  utcOffsetH: number;
  /** Site power limit in kW, by site id. */
  peakLimitKw: Record<string, number>;
  /** When machines are meant to run; empty: no outside-shift recommendations. */
  shifts: Shift[];
  /** At most one recommendation per asset and type per this period. */
  periodMs: number;
  /** Do not recommend savings below this. */
  minKwh: number;
  /** Idle waste: power while idle/off above idle level × factor + minKw, for at least minDurationS. */
  idle: { factor: number; minKw: number; minDurationS: number };
  /** Longest gap between two readings still integrated (a device offline draws nothing we know of). */
  maxGapMs: number;
}

export const DEFAULT_RECOMMEND: RecommendConfig = {
  tariff: { currency: 'EUR', price: 0.3, bands: [] },
  utcOffsetH: 0,
  peakLimitKw: {},
  shifts: [],
  periodMs: 3_600_000,
  minKwh: 0.5,
  idle: { factor: 1.5, minKw: 0.2, minDurationS: 60 },
  maxGapMs: 5 * 60_000,
};

export class RecommendConfigError extends Error {
  override name = 'RecommendConfigError';
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;
function minutes(s: string, what: string): number {
  const m = HHMM.exec(s);
  if (!m) throw new RecommendConfigError(`${what}: expected HH:MM, got ${JSON.stringify(s)}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Check a configuration (times, prices, days), naming the first problem. */
export function validateRecommendConfig(c: RecommendConfig): RecommendConfig {
  if (!(c.tariff.price >= 0)) throw new RecommendConfigError('tariff.price must be >= 0');
  c.tariff.bands.forEach((b, i) => {
    minutes(b.from, `tariff.bands[${i}].from`);
    minutes(b.to, `tariff.bands[${i}].to`);
    if (!(b.price >= 0)) throw new RecommendConfigError(`tariff.bands[${i}].price must be >= 0`);
    if (b.days && !b.days.every((d) => Number.isInteger(d) && d >= 0 && d <= 6))
      throw new RecommendConfigError(`tariff.bands[${i}].days: 0 (Sunday) .. 6`);
  });
  c.shifts.forEach((s, i) => {
    minutes(s.from, `shifts[${i}].from`);
    minutes(s.to, `shifts[${i}].to`);
    if (!s.days.every((d) => Number.isInteger(d) && d >= 0 && d <= 6))
      throw new RecommendConfigError(`shifts[${i}].days: 0 (Sunday) .. 6`);
  });
  for (const [site, kw] of Object.entries(c.peakLimitKw))
    if (!(kw > 0)) throw new RecommendConfigError(`peakLimitKw.${site} must be > 0`);
  return c;
}

/** Local minute of day and weekday of an epoch-ms time. */
function localTime(ts: number, offsetH: number): { minute: number; day: number } {
  const localMin = Math.floor(ts / 60_000 + offsetH * 60);
  const dayIndex = Math.floor(localMin / 1440);
  return { minute: ((localMin % 1440) + 1440) % 1440, day: (((dayIndex + 4) % 7) + 7) % 7 }; // 1970-01-01 was a Thursday
}

function inWindow(t: { minute: number; day: number }, from: string, to: string, days?: number[]): boolean {
  const f = minutes(from, 'from');
  const e = minutes(to, 'to');
  if (f <= e) return (!days || days.includes(t.day)) && t.minute >= f && t.minute < e;
  // Wraps midnight: the part after midnight belongs to the previous day's window.
  if (t.minute >= f) return !days || days.includes(t.day);
  return t.minute < e && (!days || days.includes((t.day + 6) % 7));
}

export function priceAt(tariff: Tariff, ts: number, offsetH: number): { price: number; band: string } {
  const t = localTime(ts, offsetH);
  for (const b of tariff.bands)
    if (inWindow(t, b.from, b.to, b.days)) return { price: b.price, band: b.name };
  return { price: tariff.price, band: 'standard' };
}

const cheapest = (tariff: Tariff): { price: number; band: string } =>
  tariff.bands.reduce((best, b) => (b.price < best.price ? { price: b.price, band: b.name } : best), {
    price: tariff.price,
    band: 'standard',
  });

function bandHours(tariff: Tariff, name: string): string {
  const b = tariff.bands.find((x) => x.name === name);
  return b ? ` (${b.from}–${b.to})` : '';
}

interface Acc {
  kWh: number;
  cost: number;
  start: number;
  end: number;
  lastEmit: number;
}

interface AssetRec {
  lastTs: number;
  idle?: Dist;
  pendingWaste?: { kWh: number; cost: number; since: number };
  base?: number;
}

interface SiteRec {
  power: Map<string, { kw: number; ts: number }>;
  lastTs: number;
  peakKw: number;
}

const fmt = (x: number, d = 2): string => x.toFixed(d);

export class Recommender {
  private readonly cfg: RecommendConfig;
  private readonly assets = new Map<string, AssetRec>();
  private readonly sites = new Map<string, SiteRec>();
  private readonly acc = new Map<string, Acc>();
  private readonly low: { price: number; band: string };

  constructor(cfg: Partial<RecommendConfig> = {}) {
    this.cfg = validateRecommendConfig({ ...DEFAULT_RECOMMEND, ...cfg });
    this.low = cheapest(this.cfg.tariff);
  }

  private add(key: string, ts: number, kWh: number, cost: number, since = ts): Acc {
    let a = this.acc.get(key);
    if (!a)
      this.acc.set(key, (a = { kWh: 0, cost: 0, start: since, end: ts, lastEmit: Number.NEGATIVE_INFINITY }));
    if (a.kWh === 0) a.start = since;
    a.kWh += kWh;
    a.cost += cost;
    a.end = ts;
    return a;
  }

  /** Emit the accumulated saving if it is worth it and the period since the last one has passed. */
  private maybeEmit(
    key: string,
    ts: number,
    make: (a: Acc) => Omit<Recommendation, 'kWh' | 'cost' | 'currency' | 'window'>,
    out: Recommendation[],
    force = false,
  ): void {
    const a = this.acc.get(key);
    if (!a || a.kWh < this.cfg.minKwh) return;
    if (ts - a.lastEmit < this.cfg.periodMs) return;
    if (!force && ts - a.start < this.cfg.periodMs) return;
    out.push({
      ...make(a),
      kWh: a.kWh,
      cost: a.cost,
      currency: this.cfg.tariff.currency,
      window: { start: a.start, end: a.end },
    });
    a.lastEmit = ts;
    a.kWh = 0;
    a.cost = 0;
  }

  /** One reading (with the flags evtwin-score gave it, if any) → the recommendations due now. */
  update(r: Reading, flags: readonly Flag[] = []): Recommendation[] {
    const out: Recommendation[] = [];
    const key = `${r.site}/${r.asset}`;
    let st = this.assets.get(key);
    if (st && !(r.ts > st.lastTs)) return out; // duplicates and out-of-order readings add no energy
    if (!st) this.assets.set(key, (st = { lastTs: r.ts }));
    const dtH = Math.min(Math.max(0, r.ts - st.lastTs), this.cfg.maxGapMs) / 3_600_000;
    st.lastTs = r.ts;
    const power = r.metrics.power;
    if (power === undefined || !Number.isFinite(power)) return out;
    const { price, band } = priceAt(this.cfg.tariff, r.ts, this.cfg.utcOffsetH);
    const state = r.metrics.state;
    const machine = state !== undefined;

    // Idle waste: power above the idle level while idle or off (the scorer's flag supplies the level when wired).
    if (machine) {
      const idle = state === 0 || state === 1;
      const flagged = flags.find((f) => f.type === 'idle_power_waste');
      if (idle) {
        st.idle ??= newDist(power);
        const base = flagged?.expected ?? st.idle.mean;
        const limit = base * this.cfg.idle.factor + this.cfg.idle.minKw;
        const armed = st.idle.n >= 60 || flagged !== undefined;
        if (armed && power > limit) {
          const excess = power - base;
          const p = (st.pendingWaste ??= { kWh: 0, cost: 0, since: r.ts });
          p.kWh += excess * dtH;
          p.cost += excess * dtH * price;
          st.base = base;
        } else {
          updateDist(st.idle, power);
          this.endWaste(st, key, r, out);
        }
      } else this.endWaste(st, key, r, out);
      // Commit a waste episode once it has lasted long enough to count.
      const p = st.pendingWaste;
      if (p && (r.ts - p.since) / 1000 >= this.cfg.idle.minDurationS) {
        this.add(`${key}|idle_power_waste`, r.ts, p.kWh, p.cost, p.since);
        p.kWh = 0;
        p.cost = 0;
      }
      this.maybeEmit(`${key}|idle_power_waste`, r.ts, () => this.idleMessage(r, st), out);

      // Running outside shifts.
      if (this.cfg.shifts.length > 0 && state === 2) {
        const t = localTime(r.ts, this.cfg.utcOffsetH);
        if (!this.cfg.shifts.some((s) => inWindow(t, s.from, s.to, s.days)))
          this.add(`${key}|outside_shifts`, r.ts, power * dtH, power * dtH * price);
      }
      this.maybeEmit(
        `${key}|outside_shifts`,
        r.ts,
        (a) => ({
          type: 'outside_shifts',
          site: r.site,
          asset: r.asset,
          message: `${r.asset} ran outside the shift calendar and used ${fmt(a.kWh)} kWh (${fmt(a.cost)} ${this.cfg.tariff.currency}): check unattended jobs and switch it off after the last shift`,
        }),
        out,
      );
    }

    // Chargers: energy drawn at a price above the cheapest band could move there.
    if (r.kind === 'charger' && power > 0 && price > this.low.price)
      this.add(`${key}|off_peak_charging`, r.ts, power * dtH, power * dtH * (price - this.low.price));
    this.maybeEmit(
      `${key}|off_peak_charging`,
      r.ts,
      (a) => ({
        type: 'off_peak_charging',
        site: r.site,
        asset: r.asset,
        message: `${r.asset} charged ${fmt(a.kWh)} kWh at ${band} prices; scheduling it in the ${this.low.band} band${bandHours(this.cfg.tariff, this.low.band)} would save ${fmt(a.cost)} ${this.cfg.tariff.currency}`,
      }),
      out,
    );

    this.peak(r, power, price, out);
    return out;
  }

  private endWaste(st: AssetRec, key: string, r: Reading, out: Recommendation[]): void {
    if (!st.pendingWaste) return;
    st.pendingWaste = undefined;
    // The episode is over: report it now if the period allows.
    this.maybeEmit(`${key}|idle_power_waste`, r.ts, () => this.idleMessage(r, st), out, true);
  }

  private idleMessage(
    r: Reading,
    st: AssetRec,
  ): Omit<Recommendation, 'kWh' | 'cost' | 'currency' | 'window'> {
    const a = this.acc.get(`${r.site}/${r.asset}|idle_power_waste`);
    return {
      type: 'idle_power_waste',
      site: r.site,
      asset: r.asset,
      message: `${r.asset} drew ${fmt(a?.kWh ?? 0)} kWh above its idle level of ${fmt(st.base ?? 0)} kW while idle: switch it to standby or off when idle for more than ${Math.round(this.cfg.idle.minDurationS / 60)} min`,
    };
  }

  private peak(r: Reading, power: number, price: number, out: Recommendation[]): void {
    const limit = this.cfg.peakLimitKw[r.site];
    if (limit === undefined) return;
    let s = this.sites.get(r.site);
    if (!s) this.sites.set(r.site, (s = { power: new Map(), lastTs: r.ts, peakKw: 0 }));
    // Site power between the previous update and now is the sum of each asset's latest power.
    let sum = 0;
    for (const [asset, p] of s.power) {
      if (r.ts - p.ts > this.cfg.maxGapMs) s.power.delete(asset);
      else sum += p.kw;
    }
    const dtH = Math.min(Math.max(0, r.ts - s.lastTs), this.cfg.maxGapMs) / 3_600_000;
    if (sum > limit && dtH > 0) {
      const excess = sum - limit;
      this.add(`${r.site}|peak_shaving`, r.ts, excess * dtH, excess * dtH * price, s.lastTs);
      s.peakKw = Math.max(s.peakKw, sum);
    }
    s.lastTs = Math.max(s.lastTs, r.ts);
    s.power.set(r.asset, { kw: power, ts: r.ts });
    const site = s;
    this.maybeEmit(
      `${r.site}|peak_shaving`,
      r.ts,
      (a) => {
        const msg = `site ${r.site} drew ${fmt(a.kWh)} kWh above its ${fmt(limit, 0)} kW limit (peak ${fmt(site.peakKw, 1)} kW): stagger machine starts and cap charger power at peaks`;
        site.peakKw = 0;
        return { type: 'peak_shaving', site: r.site, message: msg };
      },
      out,
      sum <= limit,
    );
  }
}

/** The `recommendations` point of one recommendation (schema in core/lineProtocol.ts). */
export function recommendationPoint(rec: Recommendation): Point {
  return {
    measurement: 'recommendations',
    tags: { site: rec.site, asset: rec.asset, type: rec.type },
    fields: {
      message: rec.message,
      kwh: rec.kWh,
      cost: rec.cost,
      currency: rec.currency,
      window_start: rec.window.start,
    },
    ts: rec.window.end,
  };
}
