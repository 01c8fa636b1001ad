/**
 * The datasource's request side, free of Grafana's runtime: turn panel queries into the API's
 * QueryRequest (template variables expanded through an injected function) and call the API through an
 * injected fetch (Grafana's data proxy in the plugin, plain HTTP in the integration test).
 */
import type {
  ApiError,
  AssetFilter,
  AssetsResponse,
  HealthResponse,
  MetricsResponse,
  QueryRequest,
  QueryResponse,
  TwinQuery,
} from './contract';
import type { EvtwinQuery } from '../types';

export interface ApiRequest {
  method: 'GET' | 'POST';
  /** Below the API base, e.g. `/health`. */
  path: string;
  params?: Record<string, string | undefined>;
  body?: unknown;
}
/** Resolves with the parsed JSON body of a 2xx answer; rejects with a FetchError-like object otherwise. */
export type ApiFetch = <T>(req: ApiRequest) => Promise<T>;

/** Expands the template variables in one text: every value of a multi-value variable, in order. */
export type Interpolate = (text: string) => string[];

/** Values a variable's "All" may expand to that mean "do not narrow". */
const ALL_VALUES = new Set(['$__all', '*', '.*', 'All', '']);

export const noInterpolation: Interpolate = (text) => [text];

/** The single value of a field, or undefined when unset, "All" or several values (no narrowing). */
export function singleValue(text: string | undefined, interpolate: Interpolate): string | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const values = interpolate(text)
    .map((v) => v.trim())
    .filter((v) => v !== '');
  return values.length === 1 && !ALL_VALUES.has(values[0]) ? values[0] : undefined;
}

/** Every value of a list field, variables expanded, duplicates and "All" markers dropped. */
export function listValues(items: string[] | undefined, interpolate: Interpolate): string[] {
  const out = new Set<string>();
  for (const item of items ?? [])
    for (const v of interpolate(item)) {
      const t = v.trim();
      if (!ALL_VALUES.has(t)) out.add(t);
    }
  return [...out];
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 };

/** `500ms`, `10s`, `1m`, `1.5h`, `1d`, `1w` → ms. */
export function parseIntervalMs(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(text);
  if (!m) throw new TwinQueryError(`interval "${text.slice(0, 40)}" is not like 10s, 1m, 1h`);
  return Math.round(Number(m[1]) * UNIT_MS[m[2]]);
}

export class TwinQueryError extends Error {
  override name = 'TwinQueryError';
  constructor(
    message: string,
    readonly refId?: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface RequestContext {
  range: { from: number; to: number };
  /** Grafana's interval for the panel, ms. */
  intervalMs?: number;
  maxDataPoints?: number;
  interpolate: Interpolate;
}

function filterOf(q: EvtwinQuery, interpolate: Interpolate): AssetFilter {
  const f: AssetFilter = {};
  const site = singleValue(q.site, interpolate);
  const line = singleValue(q.line, interpolate);
  const kind = singleValue(q.kind, interpolate);
  const assets = listValues(q.assets, interpolate);
  if (site !== undefined) f.site = site;
  if (line !== undefined) f.line = line;
  if (kind !== undefined) f.kind = kind;
  if (assets.length > 0) f.assets = assets;
  return f;
}

/** One panel query as the API takes it; throws TwinQueryError (with the refId) when it cannot be sent. */
export function toTwinQuery(q: EvtwinQuery, ctx: RequestContext): TwinQuery {
  const { interpolate } = ctx;
  const base = { refId: q.refId, filter: filterOf(q, interpolate) };
  const limit = q.limit !== undefined && q.limit > 0 ? { limit: Math.floor(q.limit) } : {};
  const queryType = q.queryType ?? 'timeseries';
  switch (queryType) {
    case 'timeseries': {
      const metrics = listValues(q.metrics, interpolate);
      if (metrics.length === 0) throw new TwinQueryError('choose at least one metric', q.refId);
      const interval = q.interval ? interpolate(q.interval)[0] : '';
      const intervalMs = interval ? parseIntervalMs(interval) : ctx.intervalMs;
      return {
        ...base,
        queryType,
        metrics,
        aggregation: q.aggregation ?? 'mean',
        fill: q.fill ?? 'null',
        ...(intervalMs !== undefined ? { intervalMs } : {}),
      };
    }
    case 'latest': {
      const metrics = listValues(q.metrics, interpolate);
      return { ...base, queryType, ...(metrics.length > 0 ? { metrics } : {}) };
    }
    case 'events':
    case 'annotations': {
      const types = listValues(q.types, interpolate);
      const severities = listValues(q.severities, interpolate);
      return {
        ...base,
        queryType,
        ...(types.length > 0 ? { types } : {}),
        ...(severities.length > 0 ? { severities } : {}),
        ...limit,
      };
    }
    case 'assets':
      return { ...base, queryType, ...(q.state ? { state: true } : {}), ...limit };
    case 'grievances':
      return { ...base, queryType, ...(q.status ? { status: q.status } : {}), ...limit };
    case 'chargers':
    case 'sessions':
    case 'recommendations':
      return { ...base, queryType, ...limit };
    default:
      throw new TwinQueryError(`unknown query type "${String(queryType).slice(0, 40)}"`, q.refId);
  }
}

/**
 * The POST /query body for the visible queries. A query that cannot be sent is returned in `failed`
 * rather than sent: the API refuses a whole request for one bad query, and the others should still draw.
 */
export function buildQueryRequest(
  targets: EvtwinQuery[],
  ctx: RequestContext,
): { request: QueryRequest | undefined; failed: TwinQueryError[] } {
  const queries: TwinQuery[] = [];
  const failed: TwinQueryError[] = [];
  for (const t of targets) {
    if (t.hide) continue;
    try {
      queries.push(toTwinQuery(t, ctx));
    } catch (err) {
      failed.push(err instanceof TwinQueryError ? err : new TwinQueryError(String(err), t.refId));
    }
  }
  if (queries.length === 0) return { request: undefined, failed };
  const request: QueryRequest = {
    range: { from: Math.floor(ctx.range.from), to: Math.ceil(ctx.range.to) },
    queries,
  };
  if (ctx.maxDataPoints !== undefined && ctx.maxDataPoints > 0)
    request.maxDataPoints = Math.floor(ctx.maxDataPoints);
  return { request, failed };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

const HINTS: Record<number, string> = {
  401: 'check the service token in the data source settings',
  403: 'your Grafana login must be an EVTwin user with access to this',
  413: 'the request is too large',
};

/**
 * A clear message for a failed call: the API's own `{error}` text when it answered (FetchError.data),
 * else what Grafana's proxy said (`{message}`), with a hint for the usual causes.
 */
export function describeApiError(err: unknown): { message: string; status?: number } {
  if (err instanceof TwinQueryError) return { message: err.message, status: err.status };
  if (isRecord(err) && typeof err.status === 'number') {
    const status = err.status;
    const data = err.data;
    const api = isRecord(data) && typeof data.error === 'string' ? (data as unknown as ApiError) : undefined;
    if (api) {
      const where = api.field ? ` (${api.field})` : '';
      const hint = HINTS[status] ? `: ${HINTS[status]}` : '';
      return { message: `EVTwin API ${status}: ${api.error}${where}${hint}`, status };
    }
    const proxyText =
      isRecord(data) && typeof data.message === 'string'
        ? data.message
        : typeof err.statusText === 'string' && err.statusText !== ''
          ? err.statusText
          : typeof err.message === 'string'
            ? err.message
            : 'request failed';
    if (status === 502 || status === 503 || status === 504 || status === 0)
      return {
        message: `cannot reach the EVTwin API (${status} ${proxyText}): check the URL in the data source settings; Grafana's server must reach Node-RED`,
        status,
      };
    return { message: `EVTwin API ${status}: ${proxyText}`, status };
  }
  if (isRecord(err) && err.cancelled === true) return { message: 'request cancelled' };
  return { message: err instanceof Error ? err.message : String(err) };
}

const filterParams = (f: AssetFilter | undefined): Record<string, string | undefined> => ({
  site: f?.site,
  line: f?.line,
  kind: f?.kind,
  assets: f?.assets && f.assets.length > 0 ? f.assets.join(',') : undefined,
});

/** The API's endpoints, over any fetch. */
export class TwinApiClient {
  constructor(private readonly fetch: ApiFetch) {}

  health(): Promise<HealthResponse> {
    return this.fetch<HealthResponse>({ method: 'GET', path: '/health' });
  }

  assets(filter?: AssetFilter, withState = false): Promise<AssetsResponse> {
    return this.fetch<AssetsResponse>({
      method: 'GET',
      path: '/assets',
      params: { ...filterParams(filter), ...(withState ? { state: '1' } : {}) },
    });
  }

  metrics(filter?: AssetFilter): Promise<MetricsResponse> {
    return this.fetch<MetricsResponse>({ method: 'GET', path: '/metrics', params: filterParams(filter) });
  }

  query(request: QueryRequest): Promise<QueryResponse> {
    return this.fetch<QueryResponse>({ method: 'POST', path: '/query', body: request });
  }
}

/** `?a=1&b=2` for the defined params ('' when none). */
export function queryString(params: Record<string, string | undefined> | undefined): string {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== '') sp.set(k, v);
  const s = sp.toString();
  return s ? `?${s}` : '';
}
