/**
 * evtwin-recommend: readings (optionally scored by evtwin-score) → energy recommendations with the
 * estimated kWh and money saved. Output 1: one message per recommendation. Output 2: its point for
 * evtwin-influx-out (measurement `recommendations`).
 */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import {
  Recommender,
  isReading,
  recommendationPoint,
  shortCount,
  type Flag,
  type RecommendConfig,
  type Shift,
  type Tariff,
} from '../../core';
import { StatusReporter, asError } from '../shared/status';

interface RecommendNodeDef extends NodeDef {
  currency: string;
  price: string;
  bands: string;
  utcOffsetH: string;
  peakLimits: string;
  shifts: string;
  periodMin: string;
  minKwh: string;
}

const num = (v: string | undefined, fallback: number): number => {
  const n = Number(v);
  return v !== undefined && v !== '' && Number.isFinite(n) ? n : fallback;
};
const json = <T>(text: string | undefined, fallback: T, what: string): T => {
  if (!text?.trim()) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${what}: not valid JSON (${asError(err).message})`);
  }
};

function configFrom(def: RecommendNodeDef): Partial<RecommendConfig> {
  const tariff: Tariff = {
    currency: def.currency || 'EUR',
    price: num(def.price, 0.3),
    bands: json(def.bands, [], 'tariff bands'),
  };
  if (!Array.isArray(tariff.bands)) throw new Error('tariff bands: expected a JSON array');
  const shifts = json<Shift[]>(def.shifts, [], 'shifts');
  if (!Array.isArray(shifts)) throw new Error('shifts: expected a JSON array');
  const peakLimitKw = json<Record<string, number>>(def.peakLimits, {}, 'peak limits');
  return {
    tariff,
    shifts,
    peakLimitKw,
    utcOffsetH: num(def.utcOffsetH, 0),
    periodMs: Math.max(0, num(def.periodMin, 60)) * 60_000,
    minKwh: Math.max(0, num(def.minKwh, 0.5)),
  };
}

export = function register(RED: NodeAPI): void {
  function EvtwinRecommendNode(this: Node, def: RecommendNodeDef): void {
    RED.nodes.createNode(this, def);
    let rec: Recommender | undefined;
    let configError: string | undefined;
    try {
      rec = new Recommender(configFrom(def));
    } catch (err) {
      configError = asError(err).message;
      this.error(`configuration: ${configError}`);
    }
    let count = 0;
    let kWh = 0;
    let currency = def.currency || 'EUR';
    let cost = 0;
    const status = new StatusReporter(this, () =>
      configError
        ? { fill: 'red', shape: 'ring', text: configError.slice(0, 60) }
        : {
            fill: 'green',
            shape: 'dot',
            text: `${shortCount(count)} recommendations · ${kWh.toFixed(1)} kWh · ${cost.toFixed(2)} ${currency}`,
          },
    );
    status.refresh();

    this.on('input', (msg: NodeMessageInFlow, send, done) => {
      try {
        if (!rec) throw new Error(`node not configured: ${configError}`);
        const r0 = rec;
        const ev = (
          msg as { evtwin?: { score?: { flags?: Flag[] }; scores?: ({ flags?: Flag[] } | null)[] } }
        ).evtwin;
        // One reading (its score on evtwin.score) or an array from a batch (scores on evtwin.scores).
        const out = Array.isArray(msg.payload)
          ? msg.payload.flatMap((reading: unknown, i) =>
              isReading(reading) ? r0.update(reading, ev?.scores?.[i]?.flags ?? []) : [],
            )
          : isReading(msg.payload)
            ? r0.update(msg.payload, ev?.score?.flags ?? [])
            : [];
        if (out.length === 0) return done();
        for (const r of out) {
          count++;
          kWh += r.kWh;
          cost += r.cost;
          currency = r.currency;
        }
        send([
          out.map((r) => ({ topic: `evtwin/recommendations/${r.site}`, payload: r })),
          { topic: 'evtwin/points', payload: out.map(recommendationPoint) },
        ]);
        done();
      } catch (err) {
        done(asError(err));
      }
    });
    this.on('close', () => status.close());
  }
  RED.nodes.registerType('evtwin-recommend', EvtwinRecommendNode);
};
