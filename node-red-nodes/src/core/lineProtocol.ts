/**
 * InfluxDB 1.x line protocol with field types fixed by a schema, so a metric is a float forever
 * (no int/float conflicts) and precision is always milliseconds.
 */
import type { Reading } from './reading';

export type FieldType = 'float' | 'integer' | 'string' | 'boolean';
export type FieldValue = number | string | boolean;

export interface Point {
  measurement: string;
  tags: Record<string, string | undefined>;
  fields: Record<string, FieldValue>;
  /** Epoch milliseconds. */
  ts: number;
}

export interface MeasurementSchema {
  tags: readonly string[];
  fields: Readonly<Record<string, FieldType>>;
  /** Type of fields not listed (telemetry metrics are open-ended and always floats). */
  otherFields?: FieldType;
}

/** The one schema of database `evtwin`; other measurements join it as their issues land. */
export const SCHEMA = {
  telemetry: { tags: ['site', 'line', 'asset', 'kind'], fields: { seq: 'integer' }, otherFields: 'float' },
  // Audit mirror: tags stay low-cardinality (actors and targets are unbounded, so they are fields);
  // detail is canonical JSON; hash and seq tie a point to its line in the hash-chained file.
  audit: {
    tags: ['action', 'outcome'],
    fields: { actor: 'string', target: 'string', detail: 'string', hash: 'string', seq: 'integer' },
  },
  // One point per scored reading (evtwin-score).
  scores: {
    tags: ['site', 'line', 'asset', 'kind'],
    fields: { score: 'float', health: 'float', failure_risk: 'float', anomaly: 'boolean' },
  },
  // Anomalies and alerts: low-cardinality tags, the explanation in fields.
  events: {
    tags: ['site', 'line', 'asset', 'kind', 'type', 'severity'],
    fields: { message: 'string', metric: 'string', observed: 'float', expected: 'float' },
  },
  // Energy recommendations (evtwin-recommend): estimated savings over the window [window_start, ts].
  recommendations: {
    tags: ['site', 'asset', 'type'],
    fields: { message: 'string', kwh: 'float', cost: 'float', currency: 'string', window_start: 'integer' },
  },
  // Charge point state (evtwin-charger): one point per state change; cp is `<site>/<asset>`'s asset.
  charger: {
    tags: ['site', 'cp', 'status'],
    fields: {
      online: 'boolean',
      event: 'string',
      connector: 'integer',
      connector_status: 'string',
      error_code: 'string',
      power_w: 'float',
      meter_wh: 'float',
    },
  },
  // Charging sessions: a point at start, on meter values and at the end (energy_wh final then).
  sessions: {
    tags: ['site', 'cp', 'state'],
    fields: {
      transaction_id: 'string',
      connector: 'integer',
      id_tag: 'string',
      meter_start_wh: 'float',
      meter_wh: 'float',
      energy_wh: 'float',
      power_w: 'float',
      duration_s: 'float',
      reason: 'string',
    },
  },
} as const satisfies Record<string, MeasurementSchema>;

export type Measurement = keyof typeof SCHEMA;
export const PRECISION = 'ms';

export class SchemaError extends Error {
  override name = 'SchemaError';
}

// InfluxDB 1.x has no escape for a line break or tab in names and tag values, and it keeps a backslash there
// verbatim (`a\\b` is stored as `a\\b`, measured on 1.6.7): such points are refused one by one, since
// one bad line would fail the whole batch with a 400 or store a different name.
const BAD_NAME = /[\r\n\t\\]/;
function checkName(what: string, s: string, measurement: string): void {
  if (s === '') throw new SchemaError(`${measurement}: empty ${what}`);
  if (BAD_NAME.test(s))
    throw new SchemaError(`${measurement}: ${what} ${JSON.stringify(s)} has a line break, tab or backslash`);
}

const escapeMeasurement = (s: string): string => s.replace(/[, ]/g, (c) => '\\' + c);
const escapeKey = (s: string): string => (/[,= ]/.test(s) ? s.replace(/[,= ]/g, (c) => '\\' + c) : s);

/**
 * Names and tag values repeat point after point (a fleet has few metrics and a bounded set of assets):
 * each is checked and escaped once. Bounded: the memo starts over when it grows past its limit.
 */
const NAME_MEMO_LIMIT = 50_000;
const nameMemo = new Map<string, string>();
function checkedKey(what: string, s: string, measurement: string): string {
  const known = nameMemo.get(s);
  if (known !== undefined) return known;
  checkName(what, s, measurement);
  const escaped = escapeKey(s);
  if (nameMemo.size >= NAME_MEMO_LIMIT) nameMemo.clear();
  nameMemo.set(s, escaped);
  return escaped;
}

/** A schema's tags in the order InfluxDB wants them (sorted), computed once per schema. */
const sortedTagsMemo = new WeakMap<MeasurementSchema, readonly string[]>();
function sortedTags(schema: MeasurementSchema): readonly string[] {
  let tags = sortedTagsMemo.get(schema);
  if (!tags) {
    tags = [...schema.tags].sort();
    sortedTagsMemo.set(schema, tags);
  }
  return tags;
}
const escapeString = (s: string): string => '"' + s.replace(/["\\]/g, (c) => '\\' + c) + '"';

function encodeField(name: string, value: FieldValue, type: FieldType, measurement: string): string {
  switch (type) {
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new SchemaError(`${measurement}.${name}: expected a finite float, got ${String(value)}`);
      }
      return String(value);
    case 'integer':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        throw new SchemaError(`${measurement}.${name}: expected an integer, got ${String(value)}`);
      }
      return `${value}i`;
    case 'boolean':
      if (typeof value !== 'boolean')
        throw new SchemaError(`${measurement}.${name}: expected a boolean, got ${String(value)}`);
      return value ? 'true' : 'false';
    case 'string':
      if (typeof value !== 'string')
        throw new SchemaError(`${measurement}.${name}: expected a string, got ${String(value)}`);
      return escapeString(value);
  }
}

/** One line of line protocol, timestamp in ms. Throws SchemaError for a point the schema refuses. */
export function encodePoint(
  point: Point,
  schemas: Readonly<Record<string, MeasurementSchema>> = SCHEMA,
): string {
  const schema = schemas[point.measurement];
  if (!schema) throw new SchemaError(`measurement "${point.measurement}" is not in the schema`);
  checkName('measurement', point.measurement, point.measurement);
  let line = escapeMeasurement(point.measurement);
  for (const tag of sortedTags(schema)) {
    const v = point.tags[tag];
    if (v === undefined || v === '') continue;
    if (typeof v !== 'string') throw new SchemaError(`${point.measurement}: tag "${tag}" must be a string`);
    line += `,${escapeKey(tag)}=${checkedKey(`tag ${tag} value`, v, point.measurement)}`;
  }
  for (const tag of Object.keys(point.tags)) {
    if (!schema.tags.includes(tag))
      throw new SchemaError(`${point.measurement}: tag "${tag}" is not in the schema`);
  }
  const parts: string[] = [];
  for (const [name, value] of Object.entries(point.fields)) {
    const type = schema.fields[name] ?? schema.otherFields;
    if (!type) throw new SchemaError(`${point.measurement}: field "${name}" is not in the schema`);
    parts.push(
      `${checkedKey('field key', name, point.measurement)}=${encodeField(name, value, type, point.measurement)}`,
    );
  }
  if (parts.length === 0) throw new SchemaError(`${point.measurement}: a point needs at least one field`);
  if (!Number.isSafeInteger(point.ts))
    throw new SchemaError(`${point.measurement}: timestamp must be integer ms`);
  return `${line} ${parts.join(',')} ${point.ts}`;
}

export function readingToPoint(r: Reading): Point {
  const fields: Record<string, FieldValue> = { ...r.metrics };
  if (r.seq !== undefined) fields.seq = r.seq;
  return {
    measurement: 'telemetry',
    tags: { site: r.site, line: r.line, asset: r.asset, kind: r.kind },
    fields,
    ts: r.ts,
  };
}

/** A point the schema refused, by its position in the batch. */
export interface RefusedPoint {
  index: number;
  reason: string;
}

/**
 * Encode a batch, keeping the good points and naming each refused one, so one bad point never costs
 * its neighbours (and never reaches InfluxDB, where it would fail the whole request).
 */
export function encodeBatch(
  points: readonly unknown[],
  schemas: Readonly<Record<string, MeasurementSchema>> = SCHEMA,
): { lines: string[]; refused: RefusedPoint[] } {
  const lines: string[] = [];
  const refused: RefusedPoint[] = [];
  points.forEach((p, index) => {
    if (!isPoint(p)) {
      refused.push({ index, reason: 'not a point: expected {measurement, tags, fields, ts}' });
      return;
    }
    try {
      lines.push(encodePoint(p, schemas));
    } catch (err) {
      refused.push({ index, reason: err instanceof Error ? err.message : String(err) });
    }
  });
  return { lines, refused };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The shape of a Point (values are checked by encodePoint against the schema). */
export function isPoint(value: unknown): value is Point {
  return (
    isRecord(value) &&
    typeof value.measurement === 'string' &&
    isRecord(value.tags) &&
    isRecord(value.fields) &&
    typeof value.ts === 'number'
  );
}
