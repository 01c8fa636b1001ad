/**
 * Reads an asset's last N telemetry readings from InfluxDB (a bound statement from
 * core/scoring/history.ts, sent through runtime/influxQuery.ts with the `influx` package) so its
 * learned detector can be trained from history in the worker instead of from its first live readings.
 */
import { historyQuery, historyRows } from '../core/scoring/history';
import type { TrainingRow } from '../core/scoring/learned';
import type { TwinQueryFn } from './influxQuery';

/** The asset's last `limit` readings strictly before `beforeTs`, oldest first (possibly none). */
export async function readAssetHistory(
  query: Pick<TwinQueryFn, 'query'>,
  site: string,
  asset: string,
  beforeTs: number,
  limit: number,
): Promise<TrainingRow[]> {
  return historyRows(await query.query(historyQuery(site, asset, beforeTs, limit)));
}

/**
 * Holds the messages of an asset seen for the first time while its model is prepared (history read and
 * trained), then releases them in arrival order, so the first reading is scored by the trained model
 * and none is dropped or reordered. Past maxHeld messages it stops waiting and releases them at once
 * (the model is then swapped in when it is ready).
 */
export class FirstSeenGate<T> {
  private readonly seen = new Set<string>();
  private readonly held = new Map<string, T[]>();

  constructor(
    private readonly prepare: (key: string, first: T) => Promise<void>,
    private readonly release: (item: T) => void,
    private readonly maxHeld = 10_000,
  ) {}

  /** True: process the item now. False: it is held and will be released to `release` later. */
  admit(key: string, item: T): boolean {
    const h = this.held.get(key);
    if (h) {
      if (h.length < this.maxHeld) {
        h.push(item);
        return false;
      }
      this.flush(key);
      return true;
    }
    if (this.seen.has(key)) return true;
    this.seen.add(key);
    this.held.set(key, [item]);
    this.prepare(key, item)
      .catch(() => undefined) // prepare reports its own errors; the items go on regardless
      .finally(() => this.flush(key));
    return false;
  }

  get holding(): number {
    let n = 0;
    for (const h of this.held.values()) n += h.length;
    return n;
  }

  private flush(key: string): void {
    const items = this.held.get(key);
    this.held.delete(key);
    for (const it of items ?? []) this.release(it);
  }

  /** Release everything held (on close). */
  flushAll(): void {
    for (const key of [...this.held.keys()]) this.flush(key);
  }
}
