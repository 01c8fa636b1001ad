/** The canonical reading: what every node after ingest passes on (DESIGN.md, "Contracts"). */
export type Metrics = Record<string, number>;

export interface Reading {
  site: string;
  line?: string;
  asset: string;
  kind: string;
  /** Epoch milliseconds, UTC. */
  ts: number;
  /** Device sequence number, when the device sends one. */
  seq?: number;
  metrics: Metrics;
}

/** Where a reading came from, kept beside it on the Node-RED message (`msg.evtwin`). */
export interface ReadingOrigin {
  topic: string;
  receivedAt: number;
}

/** Identifiers used in topics, tags and file names. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Metric names become InfluxDB field keys. */
export const METRIC_PATTERN = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;
/** Field keys the telemetry measurement uses itself, or InfluxDB refuses. */
export const RESERVED_METRICS: ReadonlySet<string> = new Set(['time', 'seq']);

export function isReading(value: unknown): value is Reading {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<Reading>;
  return (
    typeof r.site === 'string' &&
    typeof r.asset === 'string' &&
    typeof r.kind === 'string' &&
    typeof r.ts === 'number' &&
    typeof r.metrics === 'object' &&
    r.metrics !== null
  );
}
