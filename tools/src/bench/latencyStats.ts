/**
 * What the ingestion benchmark's latency meters (InfluxDB write acknowledgement, query polling) share:
 * the result of a step and how a (publish ts, latency) timeline is summarised.
 */
import { percentile } from './ingestKit';

/** One step's latencies: sorted samples, median of the last quarter, [p50, p99] per second. */
export interface LatencyResult {
  sorted: number[];
  tailP50: number;
  bySecond: [number, number][];
  /**
   * How long influxd took to answer each write of the step (last byte sent → status line back), when
   * the meter sees the requests: whether a latency spike is a storage stall or the pipeline's.
   */
  influxWrite?: { p50: number; p99: number; max: number; n: number; bySecond: [number, number][] };
}

/** A latency meter of the probe devices' points, started and stopped around each step. */
export interface LatencyMeter {
  /** Only points published from `from` (epoch ms) on count (earlier ones belong to another step). */
  start(from: number): void;
  stop(): Promise<LatencyResult>;
}

export const round = (x: number, d = 0): number =>
  Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : NaN;

/** p50 and p99 latency per second of publish time: whether a p99 is a steady state or one stall. */
export function bySecond(timeline: readonly [number, number][]): [number, number][] {
  if (timeline.length === 0) return [];
  const t0 = Math.min(...timeline.map(([t]) => t));
  const buckets: number[][] = [];
  for (const [t, l] of timeline) (buckets[Math.floor((t - t0) / 1000)] ??= []).push(l);
  return buckets.map((b) => {
    const sorted = (b ?? []).sort((x, y) => x - y);
    return [round(percentile(sorted, 50), 1), round(percentile(sorted, 99), 1)];
  });
}

/** Median latency of the samples published in the last quarter of the span. */
export function tailMedian(timeline: readonly [number, number][]): number {
  if (timeline.length === 0) return NaN;
  const ts = timeline.map(([t]) => t);
  const from = Math.min(...ts) + 0.75 * (Math.max(...ts) - Math.min(...ts));
  const tail = timeline
    .filter(([t]) => t >= from)
    .map(([, l]) => l)
    .sort((a, b) => a - b);
  return percentile(tail, 50);
}

/** Summary of a step's (publish ts, latency) pairs. */
export function summarise(timeline: readonly [number, number][]): LatencyResult {
  return {
    sorted: timeline.map(([, l]) => l).sort((a, b) => a - b),
    tailP50: tailMedian(timeline),
    bySecond: bySecond(timeline),
  };
}
