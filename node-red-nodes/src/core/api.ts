/**
 * The twin API contract (`/evtwin/api/v1` on Node-RED's HTTP server): every request and response type,
 * the query-type names, the limits, and pure request validation that returns 4xx messages. The
 * evtwin-api node (runtime/twinApi.ts) serves it; the Grafana datasource imports these types TYPE-ONLY.
 *
 * Authentication (runtime/twinApi.ts): `Authorization: Bearer <user access JWT>`, or the service token
 * (header `X-Evtwin-Service-Token`, or `Authorization: Bearer <service token>`) plus `X-Grafana-User:
 * <login>` naming a user of users.yaml. `X-Grafana-User` without a valid service token is a 401.
 * Every answer is scoped by the caller's role and scope (core/access.ts).
 *
 * Endpoints (all JSON unless said; errors are `ApiError` with a 4xx/5xx status):
 *   GET  /health                          → HealthResponse (no credentials needed; `user` only with valid ones)
 *   GET  /assets?site&line&kind&state=1   → AssetsResponse
 *   GET  /metrics?site&line&asset          → MetricsResponse
 *   POST /query           QueryRequest    → QueryResponse (one result per refId)
 *   GET  /grievances?status               → GrievancesResponse
 *   POST /grievances      GrievanceSubmit → 201 Grievance
 *   POST /grievances/{id}/resolve GrievanceResolve → 200 Grievance
 *   GET  /export.csv?from&to&metrics&site&asset&resolution → text/csv, streamed (chunked)
 *   POST /chargers/{site}/{asset}/commands ChargerCommandRequest → 202 ChargerCommandAccepted (lead, head)
 *   POST /alerts          GrafanaWebhook  → 202 AlertIntakeAccepted (service token or admin)
 */
import type { GeoLocation, Position3D, Role } from './assetModel';
import type { ChargerCommand } from './ocpp';
import { ID_PATTERN, METRIC_PATTERN } from './reading';

export const API_VERSION = 'v1';
/** Where the API is mounted on Node-RED's HTTP-in server (the same base as the auth routes). */
export const TWIN_API_BASE = '/evtwin/api/v1';
/** Grafana's data proxy adds this with `[dataproxy] send_user_header = true`. Lower case (Node's headers). */
export const GRAFANA_USER_HEADER = 'x-grafana-user';
/** The datasource route injects the service token from secureJsonData in this header. */
export const SERVICE_TOKEN_HEADER = 'x-evtwin-service-token';

// ---- limits (requests beyond them are refused with a 400 naming the limit) ----
export const LIMITS = {
  /** Bytes of a JSON body (POST /query, grievances, commands). */
  bodyBytes: 64 * 1024,
  /** Bytes of a Grafana alert webhook body. */
  alertBodyBytes: 512 * 1024,
  queriesPerRequest: 20,
  metricsPerQuery: 20,
  assetsPerQuery: 200,
  /** Longest time range of a query: 5 years (rollup_1h keeps 260 weeks). */
  maxRangeMs: 260 * 7 * 86_400_000,
  /** Longest range of a raw CSV export (raw data is kept 30 days). */
  maxRawExportMs: 30 * 86_400_000,
  /** Points per series a time-series query may return (the interval grows to fit). */
  maxPointsPerSeries: 11_000,
  eventsLimit: 10_000,
  grievanceTextChars: 2_000,
} as const;

/** Rollups, by range: raw below 6 h, per-minute below 7 d, per-hour beyond (provisioning/influxdb). */
export const ROLLUPS = ['raw', 'rollup_1m', 'rollup_1h'] as const;
export type Rollup = (typeof ROLLUPS)[number];
export const ROLLUP_STEP_MS: Record<Rollup, number> = { raw: 0, rollup_1m: 60_000, rollup_1h: 3_600_000 };
export const RAW_BELOW_MS = 6 * 3_600_000;
export const ROLLUP_1M_BELOW_MS = 7 * 86_400_000;

// ---- query types ----
export const QUERY_TYPES = [
  /** Metrics of assets over time, aggregated per interval (rollups chosen by range). */
  'timeseries',
  /** The last value of each metric of each asset (plus health and failure risk). */
  'latest',
  /** Anomalies, alerts, grievance events (measurement `events`); admins may add audit events. */
  'events',
  /** Events shaped as Grafana annotations. */
  'annotations',
  /** The asset model the caller may see (with state when asked). */
  'assets',
  /** Charge points and their latest state. */
  'chargers',
  /** Charging sessions (measurement `sessions`). */
  'sessions',
  /** Energy recommendations (measurement `recommendations`). */
  'recommendations',
  /** Citizen grievances the caller may see. */
  'grievances',
] as const;
export type QueryType = (typeof QUERY_TYPES)[number];

export const AGGREGATIONS = ['mean', 'min', 'max', 'last'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];
export const FILLS = ['none', 'null', 'previous', 'linear', 'zero'] as const;
export type Fill = (typeof FILLS)[number];

export const GRIEVANCE_STATUSES = ['open', 'resolved'] as const;
export type GrievanceStatus = (typeof GRIEVANCE_STATUSES)[number];

// ---- common shapes ----
/** Epoch ms, or ISO 8601 text, or Grafana's relative `now`, `now-6h` (units s m h d w). */
export type TimeInput = number | string;
export interface TimeRange {
  from: TimeInput;
  to: TimeInput;
}
/** A resolved range, epoch ms, from < to. */
export interface ResolvedRange {
  from: number;
  to: number;
}

/** Which assets a query covers; every field narrows, none means "all I may see". */
export interface AssetFilter {
  site?: string;
  line?: string;
  /** `site/asset` references (or bare asset ids when `site` is given). */
  assets?: string[];
  kind?: string;
}

/** The error body of every non-2xx answer. */
export interface ApiError {
  error: string;
  /** The query (refId) or field it concerns, when one. */
  refId?: string;
  field?: string;
}

// ---- GET /health ----
export interface HealthResponse {
  status: 'ok' | 'degraded';
  version: string;
  /** Server time, epoch ms. */
  time: number;
  influx: { ok: boolean; error?: string };
  /** Who the credentials say the caller is (absent without credentials). */
  user?: { login: string; name: string; role: Role; via: 'jwt' | 'grafana' | 'service' };
}

// ---- GET /assets ----
export interface SiteInfo {
  id: string;
  name: string;
  location?: GeoLocation;
  lines: { id: string; name: string }[];
}
/** The latest known state of an asset (from telemetry and scores). */
export interface AssetState {
  /** Epoch ms of the newest reading, or null if none in the last day. */
  lastSeen: number | null;
  /** Health index 0..100 from evtwin-score (null: not scored). */
  health: number | null;
  /** Probability-like 0..1 from evtwin-score. */
  failureRisk: number | null;
  /** The `state` metric of machines (0 off, 1 idle, 2 running, 3 fault), when reported. */
  state: number | null;
}
export interface TwinAsset {
  /** `site/asset`: unique across sites; what filters and variables carry. */
  ref: string;
  id: string;
  site: string;
  line?: string;
  kind: string;
  name: string;
  location?: GeoLocation;
  position?: Position3D;
  /** Metric name → unit, from the kind catalogue. */
  metrics: Record<string, string>;
  bounds: Record<string, { min?: number; max?: number }>;
  state?: AssetState;
}
export interface AssetsResponse {
  sites: SiteInfo[];
  assets: TwinAsset[];
  /** Assets in the model the caller may not see are not counted. */
  total: number;
}

// ---- GET /metrics ----
export interface MetricInfo {
  name: string;
  unit: string;
  description: string;
  /** Kinds that report it (among the assets in the filter). */
  kinds: string[];
}
export interface MetricsResponse {
  metrics: MetricInfo[];
}

// ---- POST /query ----
interface QueryBase {
  /** Grafana's refId; results are keyed by it. */
  refId: string;
  queryType: QueryType;
  filter?: AssetFilter;
}
export interface TimeSeriesQuery extends QueryBase {
  queryType: 'timeseries';
  metrics: string[];
  /** Default mean. */
  aggregation?: Aggregation;
  /** Grafana's interval; raised to fit the rollup step and maxDataPoints. */
  intervalMs?: number;
  /** Default null. */
  fill?: Fill;
}
export interface LatestQuery extends QueryBase {
  queryType: 'latest';
  /** Metrics to report (default: all of each asset's kind). */
  metrics?: string[];
}
export interface EventsQuery extends QueryBase {
  queryType: 'events' | 'annotations';
  /** Event types (tag `type`), e.g. power_spike, alert, grievance. */
  types?: string[];
  severities?: string[];
  /** Admins only: add audit events (measurement `audit`). Refused with 403 for others. */
  includeAudit?: boolean;
  limit?: number;
}
export interface ListQuery extends QueryBase {
  queryType: 'assets' | 'chargers' | 'sessions' | 'recommendations' | 'grievances';
  /** grievances: open or resolved. */
  status?: GrievanceStatus;
  /** assets: include AssetState. */
  state?: boolean;
  limit?: number;
}
export type TwinQuery = TimeSeriesQuery | LatestQuery | EventsQuery | ListQuery;

export interface QueryRequest {
  range: TimeRange;
  /** Grafana's maxDataPoints for the panel (default and ceiling LIMITS.maxPointsPerSeries). */
  maxDataPoints?: number;
  queries: TwinQuery[];
}

export interface SeriesPoints {
  site: string;
  line?: string;
  asset: string;
  kind?: string;
  metric: string;
  unit?: string;
  /** [epoch ms, value or null (a fill gap)] in time order. */
  points: [number, number | null][];
}
export interface TimeSeriesResult {
  refId: string;
  queryType: 'timeseries';
  rollup: Rollup;
  intervalMs: number;
  aggregation: Aggregation;
  series: SeriesPoints[];
}
export interface LatestRow {
  site: string;
  line?: string;
  asset: string;
  kind?: string;
  /** Epoch ms of the newest value among the metrics. */
  ts: number;
  values: Record<string, number | null>;
  health: number | null;
  failureRisk: number | null;
}
export interface LatestResult {
  refId: string;
  queryType: 'latest';
  rows: LatestRow[];
}
export interface EventRow {
  ts: number;
  source: 'events' | 'audit';
  site?: string;
  line?: string;
  asset?: string;
  type: string;
  severity?: string;
  message: string;
  metric?: string;
  observed?: number;
  expected?: number;
  /** Audit only. */
  actor?: string;
  outcome?: string;
  target?: string;
}
export interface EventsResult {
  refId: string;
  queryType: 'events';
  events: EventRow[];
}
export interface Annotation {
  time: number;
  timeEnd?: number;
  title: string;
  text: string;
  tags: string[];
  site?: string;
  asset?: string;
}
export interface AnnotationsResult {
  refId: string;
  queryType: 'annotations';
  annotations: Annotation[];
}
export interface AssetsResult {
  refId: string;
  queryType: 'assets';
  assets: TwinAsset[];
}
export interface ChargerRow {
  site: string;
  asset: string;
  name: string;
  location?: GeoLocation;
  /** Epoch ms of the newest telemetry, or null. */
  lastSeen: number | null;
  /** Latest telemetry values (power, energy, …). */
  values: Record<string, number | null>;
  /** Latest fields of measurement `charger` (OCPP status, connector, …), when written. */
  status: Record<string, string | number | boolean | null>;
}
export interface ChargersResult {
  refId: string;
  queryType: 'chargers';
  chargers: ChargerRow[];
}
/** A row of a measurement whose fields the API passes through (sessions). */
export interface RecordRow {
  ts: number;
  site: string;
  asset: string;
  tags: Record<string, string>;
  fields: Record<string, string | number | boolean | null>;
}
export interface SessionsResult {
  refId: string;
  queryType: 'sessions';
  sessions: RecordRow[];
}
export interface RecommendationRow {
  ts: number;
  site: string;
  asset: string;
  type: string;
  message: string;
  kwh: number | null;
  cost: number | null;
  currency: string | null;
  windowStart: number | null;
}
export interface RecommendationsResult {
  refId: string;
  queryType: 'recommendations';
  recommendations: RecommendationRow[];
}
export interface GrievancesResult {
  refId: string;
  queryType: 'grievances';
  grievances: Grievance[];
}
/** One query's failure; the others still answer. */
export interface QueryFailure {
  refId: string;
  queryType: string;
  error: string;
  status: number;
}
export type QueryResult =
  | TimeSeriesResult
  | LatestResult
  | EventsResult
  | AnnotationsResult
  | AssetsResult
  | ChargersResult
  | SessionsResult
  | RecommendationsResult
  | GrievancesResult
  | QueryFailure;
export interface QueryResponse {
  range: ResolvedRange;
  results: QueryResult[];
}

// ---- grievances ----
export interface Grievance {
  id: string;
  reporter: string;
  text: string;
  location: GeoLocation;
  /** The nearest asset with a location (within 5 km), which places it in a lead's scope. */
  site?: string;
  line?: string;
  asset?: string;
  status: GrievanceStatus;
  createdAt: number;
  resolvedAt?: number;
  resolvedBy?: string;
  resolution?: string;
}
export interface GrievanceSubmit {
  location: GeoLocation;
  text: string;
}
export interface GrievanceResolve {
  resolution?: string;
}
export interface GrievancesResponse {
  grievances: Grievance[];
}

// ---- charger commands ----
/**
 * The body of POST /chargers/{site}/{asset}/commands: an OCPP command of core/ocpp (`start`, `stop`,
 * `availability`, `profile`, `reset`, `unlock`, `trigger` and their fields) without `cp`, which the path
 * gives (a `cp` in the body must equal it). Validated by core/ocpp parseCommand: one definition.
 */
export type ChargerCommandRequest = DistributiveOmit<ChargerCommand, 'cp'> & { cp?: string };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export interface ChargerCommandAccepted {
  commandId: string;
  site: string;
  asset: string;
  command: ChargerCommand['command'];
  status: 'accepted';
}
/**
 * What the evtwin-api node sends on output 1: msg.payload is the ChargerCommand (what evtwin-ocpp takes),
 * msg.topic the asset's cmd topic, and msg.evtwinCommand this record.
 */
export interface ChargerCommandMessage extends ChargerCommandAccepted {
  requestedBy: string;
  ts: number;
}

// ---- alert intake (Grafana webhook contact point) ----
/** Grafana's webhook payload (unified alerting, version "1"); only what we read is typed. */
export interface GrafanaWebhook {
  receiver?: string;
  status: 'firing' | 'resolved';
  alerts: GrafanaWebhookAlert[];
  groupKey?: string;
  title?: string;
  message?: string;
  externalURL?: string;
}
export interface GrafanaWebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  fingerprint?: string;
  generatorURL?: string;
  values?: Record<string, number> | null;
}
/** One alert as the evtwin-api node sends it on output 2 (msg.payload; msg.topic `evtwin/v1/{site}/alerts`). */
export interface IntakeAlert {
  status: 'firing' | 'resolved';
  name: string;
  severity: string;
  site?: string;
  asset?: string;
  summary: string;
  labels: Record<string, string>;
  startsAt: number;
  endsAt?: number;
  fingerprint?: string;
  receivedAt: number;
}
export interface AlertIntakeAccepted {
  accepted: number;
}

// ======================= pure validation (each failure is a 4xx with a clear message) =======================

export class ApiRequestError extends Error {
  override name = 'ApiRequestError';
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly refId?: string,
  ) {
    super(message);
  }
}

const bad = (message: string, field?: string, refId?: string): never => {
  throw new ApiRequestError(400, message, field, refId);
};

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const oneOf = <T extends string>(v: unknown, all: readonly T[], field: string, refId?: string): T =>
  typeof v === 'string' && (all as readonly string[]).includes(v)
    ? (v as T)
    : bad(`${field} must be one of ${all.join(', ')}`, field, refId);

/** Quote text for a message without echoing much of a hostile value. */
const shown = (v: unknown): string => {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
};

const RELATIVE = /^now(?:-(\d{1,9})(s|m|h|d|w|y))?$/;
const UNIT_MS: Record<string, number> = {
  s: 1e3,
  m: 60e3,
  h: 3600e3,
  d: 86400e3,
  w: 604800e3,
  y: 365 * 86400e3,
};
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
/** Earliest and latest instants accepted (InfluxDB's own bounds are wider; these are sane ones). */
const MIN_TS = Date.UTC(1970, 0, 1);
const MAX_TS = Date.UTC(2200, 0, 1);

/** An instant: epoch ms (number or digits), ISO 8601, or `now`/`now-6h`. */
export function parseTime(v: unknown, field: string, now: number): number {
  let ms: number | undefined;
  if (typeof v === 'number') ms = v;
  else if (typeof v === 'string') {
    const rel = RELATIVE.exec(v);
    if (rel) ms = now - (rel[1] ? Number(rel[1]) * (UNIT_MS[rel[2] ?? 's'] ?? 0) : 0);
    else if (/^\d{1,16}$/.test(v)) ms = Number(v);
    else if (ISO.test(v)) ms = Date.parse(v);
  }
  if (ms === undefined || !Number.isFinite(ms))
    return bad(`${field} must be epoch ms, ISO 8601 or now[-N(s|m|h|d|w|y)], got ${shown(v)}`, field);
  if (ms < MIN_TS || ms > MAX_TS) return bad(`${field} is outside 1970..2200`, field);
  return Math.floor(ms);
}

/** A range: from < to, at most LIMITS.maxRangeMs (or `maxMs`) long. */
export function parseRange(
  from: unknown,
  to: unknown,
  now: number,
  maxMs: number = LIMITS.maxRangeMs,
): ResolvedRange {
  const f = parseTime(from ?? 'now-6h', 'range.from', now);
  const t = parseTime(to ?? 'now', 'range.to', now);
  if (f >= t) bad('range.from must be before range.to', 'range');
  if (t - f > maxMs)
    bad(
      `time range of ${Math.round((t - f) / 86_400_000)} days exceeds the limit of ${Math.round(maxMs / 86_400_000)} days`,
      'range',
    );
  return { from: f, to: t };
}

export function chooseRollup(range: ResolvedRange): Rollup {
  const span = range.to - range.from;
  return span < RAW_BELOW_MS ? 'raw' : span < ROLLUP_1M_BELOW_MS ? 'rollup_1m' : 'rollup_1h';
}

/** The GROUP BY interval: at least the rollup step, Grafana's interval, and range / maxDataPoints. */
export function chooseInterval(
  range: ResolvedRange,
  rollup: Rollup,
  intervalMs: number | undefined,
  maxDataPoints: number,
): number {
  const span = range.to - range.from;
  const floor = Math.max(ROLLUP_STEP_MS[rollup], 1000, Math.ceil(span / maxDataPoints));
  const wanted = Math.max(intervalMs ?? 0, floor);
  // Whole steps of the rollup (or seconds for raw) keep buckets aligned with what the CQs wrote.
  const step = ROLLUP_STEP_MS[rollup] || 1000;
  return Math.ceil(wanted / step) * step;
}

export function checkMetric(v: unknown, field: string, refId?: string): string {
  if (typeof v !== 'string' || !METRIC_PATTERN.test(v) || v === 'time')
    return bad(`${field}: ${shown(v)} is not a metric name (letters, digits, _ . : -)`, field, refId);
  return v;
}
export function checkId(v: unknown, field: string, refId?: string): string {
  if (typeof v !== 'string' || !ID_PATTERN.test(v))
    return bad(`${field}: ${shown(v)} is not an id (letters, digits, _ . -)`, field, refId);
  return v;
}
const checkTag = (v: unknown, field: string, refId?: string): string => {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(v))
    return bad(`${field}: ${shown(v)} is not a valid value`, field, refId);
  return v;
};

function list<T>(
  v: unknown,
  field: string,
  max: number,
  item: (x: unknown, f: string) => T,
  refId?: string,
): T[] {
  if (!Array.isArray(v)) return bad(`${field} must be a list`, field, refId);
  if (v.length > max) bad(`${field} lists ${v.length} items; at most ${max}`, field, refId);
  return [...new Set(v.map((x, i) => item(x, `${field}[${i}]`)))];
}

/** `site/asset`, or a bare asset id with a site given. */
export function parseAssetRef(
  v: unknown,
  field: string,
  site?: string,
  refId?: string,
): { site: string; id: string } {
  if (typeof v === 'string' && v.includes('/')) {
    const [s, a, ...rest] = v.split('/');
    if (rest.length === 0) return { site: checkId(s, field, refId), id: checkId(a, field, refId) };
  } else if (site !== undefined) return { site, id: checkId(v, field, refId) };
  return bad(`${field}: ${shown(v)} must be "site/asset"`, field, refId);
}

export interface ParsedFilter {
  site?: string;
  line?: string;
  assets?: { site: string; id: string }[];
  kind?: string;
}

export function parseFilter(v: unknown, refId?: string, field = 'filter'): ParsedFilter {
  if (v === undefined || v === null) return {};
  if (!isRecord(v)) return bad(`${field} must be an object`, field, refId);
  const out: ParsedFilter = {};
  for (const k of Object.keys(v))
    if (!['site', 'line', 'assets', 'kind'].includes(k))
      bad(`${field}.${k} is not a filter (site, line, assets, kind)`, `${field}.${k}`, refId);
  // Grafana sends "" or "$__all"-expanded "All" for an unset variable: both mean no narrowing.
  const unset = (x: unknown): boolean => x === undefined || x === '' || x === null;
  if (!unset(v.site)) out.site = checkId(v.site, `${field}.site`, refId);
  if (!unset(v.line)) out.line = checkId(v.line, `${field}.line`, refId);
  if (!unset(v.kind)) out.kind = checkId(v.kind, `${field}.kind`, refId);
  if (!unset(v.assets)) {
    const assets = list(
      v.assets,
      `${field}.assets`,
      LIMITS.assetsPerQuery,
      (x, f) => parseAssetRef(x, f, out.site, refId),
      refId,
    );
    if (assets.length > 0) out.assets = assets;
  }
  return out;
}

/** A validated POST /query body; each query checked (the first bad one names its refId). */
export interface ParsedQueryRequest {
  range: ResolvedRange;
  maxDataPoints: number;
  queries: ParsedQuery[];
}
export type ParsedQuery =
  | {
      refId: string;
      queryType: 'timeseries';
      filter: ParsedFilter;
      metrics: string[];
      aggregation: Aggregation;
      intervalMs?: number;
      fill: Fill;
    }
  | { refId: string; queryType: 'latest'; filter: ParsedFilter; metrics?: string[] }
  | {
      refId: string;
      queryType: 'events' | 'annotations';
      filter: ParsedFilter;
      types?: string[];
      severities?: string[];
      includeAudit: boolean;
      limit: number;
    }
  | {
      refId: string;
      queryType: 'assets' | 'chargers' | 'sessions' | 'recommendations' | 'grievances';
      filter: ParsedFilter;
      status?: GrievanceStatus;
      state: boolean;
      limit: number;
    };

const KNOWN_FIELDS: Record<QueryType, readonly string[]> = {
  timeseries: ['metrics', 'aggregation', 'intervalMs', 'fill'],
  latest: ['metrics'],
  events: ['types', 'severities', 'includeAudit', 'limit'],
  annotations: ['types', 'severities', 'includeAudit', 'limit'],
  assets: ['state', 'limit'],
  chargers: ['limit'],
  sessions: ['limit'],
  recommendations: ['limit'],
  grievances: ['status', 'limit'],
};

function parseLimit(v: unknown, refId: string): number {
  if (v === undefined) return LIMITS.eventsLimit;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > LIMITS.eventsLimit)
    return bad(`limit must be a whole number 1..${LIMITS.eventsLimit}`, 'limit', refId);
  return v;
}

export function parseQuery(v: unknown, index: number): ParsedQuery {
  if (!isRecord(v)) return bad(`queries[${index}] must be an object`, `queries[${index}]`);
  const refId =
    typeof v.refId === 'string' && /^[A-Za-z0-9_ -]{1,32}$/.test(v.refId)
      ? v.refId
      : bad(`queries[${index}].refId must be 1..32 letters, digits, _ - or space`, 'refId');
  const queryType = oneOf(v.queryType, QUERY_TYPES, 'queryType', refId);
  const allowed = ['refId', 'queryType', 'filter', 'hide', 'datasource', 'key', ...KNOWN_FIELDS[queryType]];
  for (const k of Object.keys(v))
    if (!allowed.includes(k)) bad(`"${k.slice(0, 40)}" is not a field of a ${queryType} query`, k, refId);
  const filter = parseFilter(v.filter, refId);
  switch (queryType) {
    case 'timeseries': {
      if (v.metrics === undefined) bad('metrics is required', 'metrics', refId);
      const metrics = list(
        v.metrics,
        'metrics',
        LIMITS.metricsPerQuery,
        (x, f) => checkMetric(x, f, refId),
        refId,
      );
      if (metrics.length === 0) bad('metrics must name at least one metric', 'metrics', refId);
      let intervalMs: number | undefined;
      if (v.intervalMs !== undefined) {
        if (
          typeof v.intervalMs !== 'number' ||
          !Number.isFinite(v.intervalMs) ||
          v.intervalMs < 0 ||
          v.intervalMs > LIMITS.maxRangeMs
        )
          bad('intervalMs must be a non-negative number of ms', 'intervalMs', refId);
        intervalMs = v.intervalMs as number;
      }
      return {
        refId,
        queryType,
        filter,
        metrics,
        aggregation:
          v.aggregation === undefined ? 'mean' : oneOf(v.aggregation, AGGREGATIONS, 'aggregation', refId),
        fill: v.fill === undefined ? 'null' : oneOf(v.fill, FILLS, 'fill', refId),
        ...(intervalMs !== undefined ? { intervalMs } : {}),
      };
    }
    case 'latest': {
      const metrics =
        v.metrics === undefined
          ? undefined
          : list(v.metrics, 'metrics', LIMITS.metricsPerQuery, (x, f) => checkMetric(x, f, refId), refId);
      return { refId, queryType, filter, ...(metrics && metrics.length > 0 ? { metrics } : {}) };
    }
    case 'events':
    case 'annotations': {
      const types =
        v.types === undefined
          ? undefined
          : list(v.types, 'types', 50, (x, f) => checkTag(x, f, refId), refId);
      const severities =
        v.severities === undefined
          ? undefined
          : list(v.severities, 'severities', 10, (x, f) => checkTag(x, f, refId), refId);
      if (v.includeAudit !== undefined && typeof v.includeAudit !== 'boolean')
        bad('includeAudit must be true or false', 'includeAudit', refId);
      return {
        refId,
        queryType,
        filter,
        ...(types && types.length > 0 ? { types } : {}),
        ...(severities && severities.length > 0 ? { severities } : {}),
        includeAudit: v.includeAudit === true,
        limit: parseLimit(v.limit, refId),
      };
    }
    default: {
      if (v.state !== undefined && typeof v.state !== 'boolean')
        bad('state must be true or false', 'state', refId);
      return {
        refId,
        queryType,
        filter,
        state: v.state === true,
        limit: parseLimit(v.limit, refId),
        ...(v.status !== undefined ? { status: oneOf(v.status, GRIEVANCE_STATUSES, 'status', refId) } : {}),
      };
    }
  }
}

export function parseQueryRequest(body: unknown, now: number): ParsedQueryRequest {
  if (!isRecord(body)) return bad('body must be a JSON object {range, queries}');
  for (const k of Object.keys(body))
    if (!['range', 'queries', 'maxDataPoints', 'intervalMs', 'from', 'to'].includes(k))
      bad(`"${k.slice(0, 40)}" is not a field of a query request (range, queries, maxDataPoints)`, k);
  const r: unknown = body.range;
  if (r !== undefined && !isRecord(r)) bad('range must be {from, to}', 'range');
  const rr = (r ?? {}) as Record<string, unknown>;
  const range = parseRange(rr.from ?? body.from, rr.to ?? body.to, now);
  let maxDataPoints: number = LIMITS.maxPointsPerSeries;
  if (body.maxDataPoints !== undefined) {
    const m = body.maxDataPoints;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 1)
      bad('maxDataPoints must be a positive whole number', 'maxDataPoints');
    maxDataPoints = Math.min(m as number, LIMITS.maxPointsPerSeries);
  }
  if (!Array.isArray(body.queries)) return bad('queries must be a list', 'queries');
  if (body.queries.length === 0) bad('queries is empty', 'queries');
  if (body.queries.length > LIMITS.queriesPerRequest)
    bad(`${body.queries.length} queries; at most ${LIMITS.queriesPerRequest} per request`, 'queries');
  const queries = body.queries.map((q, i) => parseQuery(q, i));
  const refIds = new Set<string>();
  for (const q of queries) {
    if (refIds.has(q.refId)) bad(`refId "${q.refId}" appears twice`, 'refId', q.refId);
    refIds.add(q.refId);
  }
  return { range, maxDataPoints, queries };
}

export function parseGrievanceSubmit(body: unknown): GrievanceSubmit {
  if (!isRecord(body)) return bad('body must be a JSON object {location, text}');
  for (const k of Object.keys(body))
    if (!['location', 'text'].includes(k))
      bad(`"${k.slice(0, 40)}" is not a field of a grievance (location, text)`, k);
  const loc = body.location;
  if (!isRecord(loc)) return bad('location must be {lat, lon}', 'location');
  const { lat, lon } = loc;
  if (typeof lat !== 'number' || !Number.isFinite(lat) || lat < -90 || lat > 90)
    bad('location.lat must be a number within -90..90', 'location.lat');
  if (typeof lon !== 'number' || !Number.isFinite(lon) || lon < -180 || lon > 180)
    bad('location.lon must be a number within -180..180', 'location.lon');
  const text = body.text;
  if (typeof text !== 'string' || text.trim() === '') return bad('text is required', 'text');
  if (text.length > LIMITS.grievanceTextChars)
    bad(`text is longer than ${LIMITS.grievanceTextChars} characters`, 'text');
  return { location: { lat: lat as number, lon: lon as number }, text: text.trim() };
}

export function parseGrievanceResolve(body: unknown): GrievanceResolve {
  if (body === undefined) return {};
  if (!isRecord(body)) return bad('body must be a JSON object {resolution?}');
  for (const k of Object.keys(body))
    if (k !== 'resolution') bad(`"${k.slice(0, 40)}" is not a field (resolution)`, k);
  if (body.resolution === undefined) return {};
  if (typeof body.resolution !== 'string' || body.resolution.length > LIMITS.grievanceTextChars)
    bad(`resolution must be text of at most ${LIMITS.grievanceTextChars} characters`, 'resolution');
  return { resolution: body.resolution as string };
}

const LABEL = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
function stringMap(v: unknown, field: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isRecord(v)) return bad(`${field} must be an object of text`, field);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!LABEL.test(k)) bad(`${field}: ${shown(k)} is not a label name`, field);
    if (typeof x !== 'string' || x.length > 4096)
      bad(`${field}.${k} must be text of at most 4096 characters`, field);
    out[k] = x as string;
  }
  return out;
}
const instant = (v: unknown, field: string): number => {
  const ms = typeof v === 'string' ? Date.parse(v) : NaN;
  return Number.isFinite(ms) ? ms : bad(`${field} must be an RFC 3339 time`, field);
};

/** Validate Grafana's webhook JSON and turn each alert into an IntakeAlert. */
export function parseGrafanaWebhook(body: unknown, receivedAt: number): IntakeAlert[] {
  if (!isRecord(body)) return bad('body must be a Grafana webhook JSON object');
  if (!Array.isArray(body.alerts)) return bad('alerts must be a list (a Grafana webhook payload)', 'alerts');
  if (body.alerts.length > 1000) bad('more than 1000 alerts in one webhook', 'alerts');
  return body.alerts.map((a: unknown, i): IntakeAlert => {
    const f = `alerts[${i}]`;
    if (!isRecord(a)) return bad(`${f} must be an object`, f);
    const status = oneOf(a.status, ['firing', 'resolved'] as const, `${f}.status`);
    const labels = stringMap(a.labels, `${f}.labels`);
    const annotations = stringMap(a.annotations, `${f}.annotations`);
    const startsAt = instant(a.startsAt, `${f}.startsAt`);
    // Grafana sends 0001-01-01T00:00:00Z for "not ended".
    const endsAtMs = a.endsAt === undefined ? undefined : instant(a.endsAt, `${f}.endsAt`);
    const site = labels.site !== undefined && ID_PATTERN.test(labels.site) ? labels.site : undefined;
    const asset = labels.asset !== undefined && ID_PATTERN.test(labels.asset) ? labels.asset : undefined;
    const out: IntakeAlert = {
      status,
      name: labels.alertname ?? 'alert',
      severity: labels.severity ?? 'warning',
      summary: annotations.summary ?? annotations.description ?? labels.alertname ?? '',
      labels,
      startsAt,
      receivedAt,
    };
    if (site) out.site = site;
    if (asset) out.asset = asset;
    if (endsAtMs !== undefined && endsAtMs > 0) out.endsAt = endsAtMs;
    if (typeof a.fingerprint === 'string' && /^[A-Za-z0-9]{1,64}$/.test(a.fingerprint))
      out.fingerprint = a.fingerprint;
    return out;
  });
}
