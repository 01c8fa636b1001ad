/** Small read-only probes the stack prints every few seconds: recent points in InfluxDB, spool on disk. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface QueryResponse {
  results?: {
    series?: { tags?: Record<string, string>; columns: string[]; values: unknown[][] }[];
    error?: string;
  }[];
  error?: string;
}

/** Run one InfluxQL query over HTTP (GET /query); throws on an InfluxDB error. */
export async function influxQuery(url: string, database: string, q: string): Promise<QueryResponse> {
  const u = new URL('/query', url);
  u.searchParams.set('db', database);
  u.searchParams.set('q', q);
  const res = await fetch(u, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as QueryResponse;
  const err = body.error ?? body.results?.find((r) => r.error)?.error;
  if (err) throw new Error(`InfluxDB: ${err}`);
  return body;
}

/**
 * Points in `telemetry` newer than `sinceMs` ago. count(*) counts per field, and assets of one kind
 * share their metrics, so the largest field count of each kind is that kind's point count.
 */
export async function recentTelemetryPoints(url: string, database: string, sinceMs: number): Promise<number> {
  const body = await influxQuery(
    url,
    database,
    `SELECT count(*) FROM telemetry WHERE time > now() - ${Math.round(sinceMs)}ms GROUP BY kind`,
  );
  let total = 0;
  for (const s of body.results?.[0]?.series ?? []) {
    const row = s.values[0] ?? [];
    total += Math.max(0, ...row.slice(1).map((v) => (typeof v === 'number' ? v : 0)));
  }
  return total;
}

/** Bytes under a directory (the writer's spool); 0 when it does not exist. */
export function directoryBytes(dir: string): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += directoryBytes(p);
    else if (e.isFile()) total += statSync(p, { throwIfNoEntry: false })?.size ?? 0;
  }
  return total;
}
