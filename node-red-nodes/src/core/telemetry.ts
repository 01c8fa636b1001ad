/**
 * Telemetry payload codec: one of
 *   {"ts", "seq"?, "values": {"metric": number, ...}}
 *   {"ts", "seq"?, "metric": "name", "value": number}
 *   or an array of those (a batch).
 * `ts` is epoch milliseconds or an ISO 8601 string. Every problem becomes a rejection with a precise
 * reason; good items and good metrics beside a bad one are kept.
 */
import { METRIC_PATTERN, RESERVED_METRICS, type Metrics } from './reading';

export interface TelemetryItem {
  ts: number;
  seq?: number;
  metrics: Metrics;
}

export type RejectCode =
  | 'too-large'
  | 'not-json'
  | 'bad-shape'
  | 'bad-timestamp'
  | 'bad-seq'
  | 'bad-metric'
  | 'bad-value'
  | 'topic-mismatch'
  | 'unknown-asset'
  | 'config-error';

export interface Rejection {
  code: RejectCode;
  /** Human-readable and precise: which item, which field, what was wrong. */
  reason: string;
  /** Index in the batch, when the payload was an array. */
  index?: number;
}

export interface DecodeLimits {
  /** Largest raw payload accepted, in bytes. */
  maxBytes: number;
  /** Most items accepted in one batch. */
  maxItems: number;
  /** Readings further ahead of the receive time than this are refused (device clock wrong). */
  maxFutureMs: number;
  /** Readings older than this are refused (would fall outside retention or be a stale replay). */
  maxPastMs: number;
  /** Use the receive time when an item has no `ts`. */
  defaultTsToReceiveTime: boolean;
}

export const DEFAULT_LIMITS: DecodeLimits = {
  maxBytes: 256 * 1024,
  maxItems: 10_000,
  maxFutureMs: 5 * 60_000,
  maxPastMs: 30 * 24 * 3_600_000,
  defaultTsToReceiveTime: true,
};

export interface DecodeResult {
  items: TelemetryItem[];
  rejections: Rejection[];
}

/** The earliest epoch-ms value taken as milliseconds; smaller numbers are almost surely seconds. */
const EPOCH_MS_FLOOR = 100_000_000_000; // 1973-03-03 in ms, or year 5138 in seconds
const MAX_DATE_MS = 8.64e15;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

/** Parse a raw MQTT payload (Buffer, string or already-parsed JSON) and decode it. */
export function decodeTelemetry(
  payload: unknown,
  receivedAt: number,
  limits: DecodeLimits = DEFAULT_LIMITS,
): DecodeResult {
  let body: unknown = payload;
  if (Buffer.isBuffer(payload) || typeof payload === 'string') {
    const size = Buffer.isBuffer(payload) ? payload.length : Buffer.byteLength(payload);
    if (size > limits.maxBytes) {
      return reject({
        code: 'too-large',
        reason: `payload is ${size} bytes, over the limit of ${limits.maxBytes}`,
      });
    }
    const text = payload.toString();
    if (text.trim() === '') return reject({ code: 'bad-shape', reason: 'payload is empty' });
    try {
      body = JSON.parse(text);
    } catch (err) {
      return reject({ code: 'not-json', reason: `payload is not valid JSON: ${(err as Error).message}` });
    }
  }
  return decodeBody(body, receivedAt, limits);
}

function reject(r: Rejection): DecodeResult {
  return { items: [], rejections: [r] };
}

function decodeBody(body: unknown, receivedAt: number, limits: DecodeLimits): DecodeResult {
  const out: DecodeResult = { items: [], rejections: [] };
  if (Array.isArray(body)) {
    if (body.length === 0) return reject({ code: 'bad-shape', reason: 'batch is an empty array' });
    if (body.length > limits.maxItems) {
      return reject({
        code: 'too-large',
        reason: `batch has ${body.length} items, over the limit of ${limits.maxItems}`,
      });
    }
    body.forEach((element, index) => decodeItem(element, index, receivedAt, limits, out));
  } else {
    decodeItem(body, undefined, receivedAt, limits, out);
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string')
    return `a string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function decodeItem(
  element: unknown,
  index: number | undefined,
  receivedAt: number,
  limits: DecodeLimits,
  out: DecodeResult,
): void {
  const where = index === undefined ? '' : `item ${index}: `;
  const fail = (code: RejectCode, reason: string): void => {
    out.rejections.push(
      index === undefined ? { code, reason: where + reason } : { code, reason: where + reason, index },
    );
  };
  if (typeof element !== 'object' || element === null || Array.isArray(element)) {
    fail('bad-shape', `expected an object, got ${describe(element)}`);
    return;
  }
  const item = element as Record<string, unknown>;

  const ts = decodeTimestamp(item.ts, receivedAt, limits);
  if (typeof ts === 'string') {
    fail('bad-timestamp', ts);
    return;
  }

  let seq: number | undefined;
  if (item.seq !== undefined) {
    if (typeof item.seq !== 'number' || !Number.isSafeInteger(item.seq) || item.seq < 0) {
      fail('bad-seq', `seq must be a non-negative integer, got ${describe(item.seq)}`);
      return;
    }
    seq = item.seq;
  }

  const hasValues = 'values' in item;
  const hasMetric = 'metric' in item || 'value' in item;
  if (hasValues === hasMetric) {
    fail(
      'bad-shape',
      hasValues
        ? 'give either "values" or "metric"/"value", not both'
        : 'missing "values" (or "metric" and "value")',
    );
    return;
  }

  const metrics: Metrics = {};
  let good = 0;
  const addMetric = (name: unknown, value: unknown, path: string): void => {
    // "__proto__" fits the pattern, but assigning it to an object sets the prototype: the value vanished.
    const reserved = typeof name === 'string' && (RESERVED_METRICS.has(name) || name === '__proto__');
    if (typeof name !== 'string' || !METRIC_PATTERN.test(name) || reserved) {
      const why = reserved ? 'is reserved' : 'is not a valid metric name';
      fail(
        'bad-metric',
        `${path}: ${typeof name === 'string' ? JSON.stringify(name) : describe(name)} ${why}`,
      );
      return;
    }
    const v = decodeValue(value);
    if (typeof v === 'string') {
      fail('bad-value', `${path}: ${v}`);
      return;
    }
    metrics[name] = v;
    good++;
  };

  if (hasValues) {
    const values = item.values;
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      fail('bad-shape', `"values" must be an object of metric: number, got ${describe(values)}`);
      return;
    }
    const entries = Object.entries(values as Record<string, unknown>);
    if (entries.length === 0) {
      fail('bad-shape', '"values" is empty');
      return;
    }
    for (const [name, value] of entries) addMetric(name, value, `values.${name}`);
  } else {
    addMetric(
      item.metric,
      item.value,
      typeof item.metric === 'string' ? `value of ${item.metric}` : 'metric',
    );
  }
  if (good > 0) out.items.push(seq === undefined ? { ts, metrics } : { ts, seq, metrics });
}

/** A number, or a reason why the value is not one. Booleans count as 1 and 0. */
function decodeValue(value: unknown): number | string {
  if (typeof value === 'number') {
    return Number.isFinite(value) ? value : `expected a finite number, got ${describe(value)}`;
  }
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value === undefined) return 'value is missing';
  return `expected a number, got ${describe(value)}`;
}

/** Epoch ms, or a reason why the timestamp is refused. */
export function decodeTimestamp(raw: unknown, receivedAt: number, limits: DecodeLimits): number | string {
  let ts: number;
  if (raw === undefined || raw === null) {
    if (!limits.defaultTsToReceiveTime) return 'ts is missing';
    return receivedAt;
  } else if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return `ts must be a finite number, got ${describe(raw)}`;
    if (raw < EPOCH_MS_FLOOR && raw > 0) {
      return `ts ${raw} looks like epoch seconds; send epoch milliseconds or ISO 8601`;
    }
    // Past ±8.64e15 ms a Date is invalid (toISOString throws): refuse before formatting it.
    if (Math.abs(raw) > MAX_DATE_MS) return `ts ${raw} is out of the range of dates`;
    ts = Math.round(raw);
  } else if (typeof raw === 'string') {
    if (!ISO_8601.test(raw))
      return `ts ${JSON.stringify(raw)} is not ISO 8601 with a time zone (e.g. 2026-01-31T12:00:00Z)`;
    ts = Date.parse(raw);
    if (Number.isNaN(ts)) return `ts ${JSON.stringify(raw)} is not a valid date`;
  } else {
    return `ts must be epoch milliseconds or an ISO 8601 string, got ${describe(raw)}`;
  }
  if (ts > receivedAt + limits.maxFutureMs) {
    return `ts ${new Date(ts).toISOString()} is ${Math.round((ts - receivedAt) / 1000)} s in the future (limit ${limits.maxFutureMs / 1000} s)`;
  }
  if (ts < receivedAt - limits.maxPastMs) {
    return `ts ${new Date(ts).toISOString()} is older than the limit of ${Math.round(limits.maxPastMs / 3_600_000)} h`;
  }
  return ts;
}
