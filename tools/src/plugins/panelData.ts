/**
 * Real data for the panel's browser tests, benchmark and preview: simulator readings scored by the core
 * Scorer, written to a real influxd, read back with InfluxQL and shaped the way Grafana's InfluxQL
 * datasource shapes a table (tag columns, one column per selected field), plus an asset frame as the
 * evtwin datasource's Assets query delivers it (site, asset, kind, name, x, y, z, lat, lon).
 */
import {
  type Asset,
  type Point,
  Scorer,
  encodeBatch,
  readingToPoint,
  scorePoint,
} from 'node-red-contrib-evtwin';
import { DeviceSim, type FaultSpec, Rng, resolveFaults, simReading } from '../sim';

/** The subset of Grafana's DataFrameDTO that toDataFrame() takes. */
export interface FrameDTO {
  name?: string;
  refId?: string;
  fields: {
    name: string;
    type: 'string' | 'number' | 'time' | 'boolean';
    values: unknown[];
    config?: object;
  }[];
}

export const DATABASE = 'evtwin';

export async function influxQuery(
  url: string,
  q: string,
): Promise<{ name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }[]> {
  const res = await fetch(`${url}/query?db=${DATABASE}&epoch=ms&q=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { results?: { series?: never[]; error?: string }[]; error?: string };
  const first = body.results?.[0];
  if (!res.ok || !first || first.error)
    throw new Error(`InfluxQL failed (${q}): ${first?.error ?? body.error ?? res.status}`);
  return first.series ?? [];
}

async function write(url: string, points: Point[]): Promise<void> {
  const { lines, refused } = encodeBatch(points);
  if (refused.length) throw new Error(`points refused: ${JSON.stringify(refused.slice(0, 3))}`);
  for (let i = 0; i < lines.length; i += 5000) {
    const res = await fetch(`${url}/write?db=${DATABASE}&precision=ms`, {
      method: 'POST',
      body: lines.slice(i, i + 5000).join('\n'),
    });
    if (res.status !== 204) throw new Error(`write failed: ${res.status} ${await res.text()}`);
  }
}

/**
 * Simulate every asset for `seconds` (1 reading/s, ending now), score each reading with the core Scorer
 * and store telemetry and scores. Returns the number of readings.
 */
export async function simulateIntoInflux(
  url: string,
  assets: readonly Asset[],
  opts: { seconds: number; seed?: number; faults?: FaultSpec[] },
): Promise<number> {
  await fetch(`${url}/query?q=${encodeURIComponent(`CREATE DATABASE ${DATABASE}`)}`, { method: 'POST' });
  const start = Date.now() - opts.seconds * 1000;
  const scorer = new Scorer();
  const points: Point[] = [];
  resolveFaults(opts.faults ?? [], assets); // a misspelt asset is an error, not a fault that never happens
  for (const a of assets) {
    const sim = new DeviceSim(a, {
      rate: 1,
      seed: opts.seed ?? 7,
      startTs: start,
      faults: opts.faults ?? [],
    });
    for (let i = 0; i < opts.seconds; i++) {
      const r = sim.next();
      const reading = simReading(a, r);
      points.push(readingToPoint(reading));
      const scored = scorer.score(reading);
      if (scored.ok) points.push(scorePoint(reading, scored.result));
    }
  }
  await write(url, points);
  return assets.length * opts.seconds;
}

const fieldType = (values: unknown[]): 'string' | 'number' | 'boolean' => {
  const v = values.find((x) => x !== null && x !== undefined);
  return typeof v === 'number' ? 'number' : typeof v === 'boolean' ? 'boolean' : 'string';
};

/**
 * An InfluxQL answer as Grafana's InfluxQL datasource returns it in table format: Time, the GROUP BY tags
 * as string columns, then the selected columns (last_power, health, …); one row per series row.
 */
export function influxTable(
  series: { tags?: Record<string, string>; columns: string[]; values: unknown[][] }[],
  refId: string,
): FrameDTO {
  const tagNames = [...new Set(series.flatMap((s) => Object.keys(s.tags ?? {})))];
  const columns = [...new Set(series.flatMap((s) => s.columns.filter((c) => c !== 'time')))];
  const cols = new Map<string, unknown[]>([
    ['Time', []],
    ...tagNames.map((t) => [t, []] as [string, unknown[]]),
    ...columns.map((c) => [c, []] as [string, unknown[]]),
  ]);
  for (const s of series) {
    for (const row of s.values) {
      cols.get('Time')?.push(row[s.columns.indexOf('time')]);
      for (const t of tagNames) cols.get(t)?.push(s.tags?.[t] ?? null);
      for (const c of columns) {
        const i = s.columns.indexOf(c);
        cols.get(c)?.push(i >= 0 ? row[i] : null);
      }
    }
  }
  return {
    refId,
    fields: [...cols].map(([name, values]) => ({
      name,
      type: name === 'Time' ? 'time' : tagNames.includes(name) ? 'string' : fieldType(values),
      values,
    })),
  };
}

/** The asset model as the evtwin datasource's Assets frame. */
export function assetFrame(assets: readonly Asset[], refId = 'assets'): FrameDTO {
  const col = (name: string, type: 'string' | 'number', f: (a: Asset) => unknown) => ({
    name,
    type,
    values: assets.map((a) => f(a) ?? null),
  });
  return {
    refId,
    fields: [
      col('site', 'string', (a) => a.site),
      col('asset', 'string', (a) => a.id),
      col('kind', 'string', (a) => a.kind),
      col('name', 'string', (a) => a.name),
      col('x', 'number', (a) => a.position?.x),
      col('y', 'number', (a) => a.position?.y),
      col('z', 'number', (a) => a.position?.z),
      col('lat', 'number', (a) => a.location?.lat),
      col('lon', 'number', (a) => a.location?.lon),
    ],
  };
}

/** What a dashboard would query from InfluxDB for the panel: latest scores and telemetry per asset. */
export async function latestFrames(url: string, where = ''): Promise<FrameDTO[]> {
  const w = where ? ` WHERE ${where}` : '';
  const scores = await influxQuery(
    url,
    `SELECT last(health) AS health, last(score) AS score, last(anomaly) AS anomaly FROM scores${w} GROUP BY site, asset`,
  );
  const telemetry = await influxQuery(url, `SELECT last(*) FROM telemetry${w} GROUP BY site, asset`);
  return [influxTable(scores, 'scores'), influxTable(telemetry, 'telemetry')];
}

/** Synthetic frames for load: n assets with positions or locations and changing health (benchmark only). */
export function syntheticStateFrame(assets: readonly Asset[], tick: number, seed = 1): FrameDTO {
  const rng = new Rng(seed, 'bench', String(tick));
  const health = assets.map(() => Math.round(rng.uniform(20, 100)));
  return {
    ...assetFrame(assets, 'state'),
    fields: [
      ...assetFrame(assets).fields,
      { name: 'health', type: 'number', values: health },
      { name: 'score', type: 'number', values: health.map((h) => (h < 30 ? 0.9 : 0.1)) },
      {
        name: 'temperature',
        type: 'number',
        values: assets.map(() => Math.round(rng.uniform(30, 90) * 10) / 10),
      },
    ],
  };
}
