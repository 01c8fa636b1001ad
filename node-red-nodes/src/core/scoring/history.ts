/**
 * Training a learned detector from an asset's history in InfluxDB (pure part): the bound statement for
 * its last N telemetry readings before a time, and the answer turned into training rows. The statement
 * holds only fixed text and the validated integer limit; site, asset and time travel as `params`.
 */
import type { BoundQuery } from '../influxql';
import { SCHEMA } from '../lineProtocol';
import type { TrainingRow } from './learned';

/** More history than this is never read for one asset (memory of the node, time of the worker). */
export const HISTORY_MAX_ROWS = 50_000;

export class HistoryError extends Error {
  override name = 'HistoryError';
}

/** Columns of `telemetry` that are not metrics: time, the tags, the device sequence number. */
const NOT_METRICS: ReadonlySet<string> = new Set(['time', ...SCHEMA.telemetry.tags, 'seq']);

export function historyQuery(site: string, asset: string, beforeTs: number, limit: number): BoundQuery {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > HISTORY_MAX_ROWS)
    throw new HistoryError(`history: limit must be an integer in 1..${HISTORY_MAX_ROWS}, got ${limit}`);
  if (!Number.isSafeInteger(beforeTs)) throw new HistoryError(`history: bad time ${String(beforeTs)}`);
  if (typeof site !== 'string' || typeof asset !== 'string' || !site || !asset)
    throw new HistoryError('history: site and asset are required');
  return {
    // Newest first so LIMIT keeps the latest readings; historyRows() puts them back in time order.
    text: `SELECT * FROM "telemetry" WHERE "site" = $site AND "asset" = $asset AND time < $before ORDER BY time DESC LIMIT ${limit}`,
    params: { site, asset, before: new Date(beforeTs).toISOString() },
  };
}

interface Series {
  columns: string[];
  values: unknown[][];
}

/**
 * Rows of a `telemetry` answer (epoch ms times) in time order, each with its numeric metrics; null
 * fields (a metric the device did not send in that reading) are left out, the detector skips such rows.
 */
export function historyRows(series: readonly Series[]): TrainingRow[] {
  const rows: TrainingRow[] = [];
  for (const s of series) {
    const ti = s.columns.indexOf('time');
    if (ti < 0) throw new HistoryError('history: answer has no time column');
    const metricCols = s.columns.map((c, i) => [c, i] as const).filter(([c]) => !NOT_METRICS.has(c));
    for (const v of s.values) {
      const ts = v[ti];
      if (typeof ts !== 'number' || !Number.isSafeInteger(ts)) continue;
      const metrics: Record<string, number> = {};
      for (const [c, i] of metricCols) {
        const x = v[i];
        if (typeof x === 'number' && Number.isFinite(x)) metrics[c] = x;
      }
      if (Object.keys(metrics).length > 0) rows.push({ ts, metrics });
    }
  }
  rows.sort((a, b) => a.ts - b.ts);
  return rows;
}
