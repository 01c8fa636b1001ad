import {
  DataSourceApi,
  LoadingState,
  type CoreApp,
  type DataQueryError,
  type DataQueryRequest,
  type DataQueryResponse,
  type DataSourceInstanceSettings,
  type MetricFindValue,
  type ScopedVars,
  type TestDataSourceResponse,
} from '@grafana/data';
import { getBackendSrv, getTemplateSrv } from '@grafana/runtime';
import { exhaustMap, from, lastValueFrom, map, timer, type Observable } from 'rxjs';
import {
  TwinApiClient,
  buildQueryRequest,
  describeApiError,
  listValues,
  queryString,
  singleValue,
  type ApiRequest,
  type Interpolate,
} from './api/client';
import type { AssetFilter, AssetsResponse, HealthResponse } from './api/contract';
import { toFrames, unitsOf, type UnitCatalogue } from './api/frames';
import { DEFAULT_QUERY, type EvtwinOptions, type EvtwinQuery, type EvtwinVariableQuery } from './types';
import { EvtwinVariableSupport } from './variables';

/** Live panels re-query this often: a new reading shows within the 2 s the dashboards promise. */
export const LIVE_INTERVAL_MS = 1000;
/** The pickers' asset catalogue is fetched at most this often. */
const CATALOGUE_TTL_MS = 30_000;

export class DataSource extends DataSourceApi<EvtwinQuery, EvtwinOptions> {
  readonly api: TwinApiClient;
  /** Grafana's data proxy for this datasource, through the `api` route of plugin.json. */
  private readonly apiUrl: string;
  private readonly configuredUrl: string | undefined;
  private catalogue?: { at: number; value: Promise<AssetsResponse> };

  constructor(settings: DataSourceInstanceSettings<EvtwinOptions>) {
    super(settings);
    this.apiUrl = `${settings.url ?? ''}/api`;
    this.configuredUrl = settings.jsonData?.url;
    this.api = new TwinApiClient(<T>(req: ApiRequest) => this.fetchApi<T>(req));
    this.variables = new EvtwinVariableSupport(this);
    this.annotations = { getDefaultQuery: () => ({ queryType: 'annotations' }) };
  }

  private async fetchApi<T>(req: ApiRequest): Promise<T> {
    const res = await lastValueFrom(
      getBackendSrv().fetch<T>({
        method: req.method,
        url: this.apiUrl + req.path + queryString(req.params),
        ...(req.body !== undefined ? { data: req.body } : {}),
        // Errors are shown in the panel (or the health check), not as a toast.
        showErrorAlert: false,
      }),
    );
    return res.data;
  }

  /** Template variables → values; a multi-value variable yields every value (`csv`, ids hold no comma). */
  interpolator(scopedVars?: ScopedVars): Interpolate {
    const srv = getTemplateSrv();
    return (text) => srv.replace(text, scopedVars, 'csv').split(',');
  }

  getDefaultQuery(_app: CoreApp): Partial<EvtwinQuery> {
    return DEFAULT_QUERY;
  }

  filterQuery(query: EvtwinQuery): boolean {
    return !query.hide;
  }

  /** For Explore and mixed panels: the queries with their variables expanded. */
  interpolateVariablesInQueries(queries: EvtwinQuery[], scopedVars: ScopedVars): EvtwinQuery[] {
    const i = this.interpolator(scopedVars);
    const one = (v: string | undefined): string | undefined => (v === undefined ? v : i(v).join(','));
    const many = (v: string[] | undefined): string[] | undefined => (v === undefined ? v : listValues(v, i));
    return queries.map((q) => ({
      ...q,
      site: one(q.site),
      line: one(q.line),
      kind: one(q.kind),
      interval: one(q.interval),
      assets: many(q.assets),
      metrics: many(q.metrics),
      types: many(q.types),
      severities: many(q.severities),
    }));
  }

  query(request: DataQueryRequest<EvtwinQuery>): Observable<DataQueryResponse> {
    if (!request.targets.some((t) => t.live && !t.hide)) return from(this.runOnce(request, 0));
    // Live: re-query every second; a relative range ("last 5 minutes") slides with the clock.
    // exhaustMap skips a tick while a request is still out rather than piling them up.
    const started = Date.now();
    const slides = typeof request.range.raw.to === 'string' && request.range.raw.to.startsWith('now');
    return timer(0, LIVE_INTERVAL_MS).pipe(
      exhaustMap(() => from(this.runOnce(request, slides ? Date.now() - started : 0))),
      map((res) => ({ ...res, key: `evtwin-live-${request.requestId}`, state: LoadingState.Streaming })),
    );
  }

  /** One round trip: every visible query in one POST /query, the range shifted by `shiftMs`. */
  async runOnce(request: DataQueryRequest<EvtwinQuery>, shiftMs: number): Promise<DataQueryResponse> {
    const { request: body, failed } = buildQueryRequest(request.targets, {
      range: { from: request.range.from.valueOf() + shiftMs, to: request.range.to.valueOf() + shiftMs },
      intervalMs: request.intervalMs,
      maxDataPoints: request.maxDataPoints,
      interpolate: this.interpolator(request.scopedVars),
    });
    const errors: DataQueryError[] = failed.map((f) => ({ refId: f.refId, message: f.message }));
    if (!body) return { data: [], errors, state: errors.length > 0 ? LoadingState.Error : LoadingState.Done };
    try {
      const needUnits = body.queries.some((q) => q.queryType === 'latest' || q.queryType === 'chargers');
      const [res, units] = await Promise.all([
        this.api.query(body),
        needUnits ? this.units() : Promise.resolve<UnitCatalogue>({}),
      ]);
      const data = res.results.flatMap((r) => toFrames(r, units));
      for (const r of res.results)
        if ('error' in r)
          errors.push({ refId: r.refId, message: `EVTwin API ${r.status}: ${r.error}`, status: r.status });
      return { data, errors, state: errors.length > 0 ? LoadingState.Error : LoadingState.Done };
    } catch (err) {
      const { message, status } = describeApiError(err);
      for (const q of body.queries) errors.push({ refId: q.refId, message, status });
      return { data: [], errors, error: errors[0], state: LoadingState.Error };
    }
  }

  /** Sites, lines and assets the user may see (the editors' pickers), cached for 30 s. */
  getCatalogue(): Promise<AssetsResponse> {
    const now = Date.now();
    if (!this.catalogue || now - this.catalogue.at > CATALOGUE_TTL_MS) {
      const value = this.api.assets();
      this.catalogue = { at: now, value };
      // A failure is retried after 5 s (not at once: live panels ask every second).
      value.catch(() => {
        if (this.catalogue?.value === value) this.catalogue.at = now - CATALOGUE_TTL_MS + 5000;
      });
    }
    return this.catalogue.value;
  }

  private async units(): Promise<UnitCatalogue> {
    try {
      return unitsOf((await this.getCatalogue()).assets);
    } catch {
      return {};
    }
  }

  /** Values of a site/line/asset/metric template variable. */
  async findVariableValues(q: EvtwinVariableQuery, scopedVars?: ScopedVars): Promise<MetricFindValue[]> {
    const i = this.interpolator(scopedVars);
    const filter: AssetFilter = {};
    const site = singleValue(q.site, i);
    const line = singleValue(q.line, i);
    const kind = singleValue(q.kind, i);
    if (site) filter.site = site;
    if (line) filter.line = line;
    if (kind) filter.kind = kind;
    switch (q.target) {
      case 'site':
        return (await this.api.assets(filter)).sites.map((s) => ({ text: s.name, value: s.id }));
      case 'line': {
        const seen = new Map<string, MetricFindValue>();
        for (const s of (await this.api.assets(filter)).sites)
          for (const l of s.lines) if (!seen.has(l.id)) seen.set(l.id, { text: l.name, value: l.id });
        return [...seen.values()];
      }
      case 'asset':
        return (await this.api.assets(filter)).assets.map((a) => ({
          text: `${a.name} (${a.id})`,
          value: q.valueAs === 'ref' ? a.ref : a.id,
        }));
      case 'metric':
        return (await this.api.metrics(filter)).metrics.map((m) => ({ text: m.name, value: m.name }));
      default:
        return [];
    }
  }

  /** The health check: reaches the API through the route, and says what it thinks of the token and user. */
  async testDatasource(): Promise<TestDataSourceResponse> {
    if (!this.configuredUrl)
      return { status: 'error', message: 'Set the URL of Node-RED, e.g. http://node-red:1880' };
    let h: HealthResponse;
    try {
      h = await this.api.health();
    } catch (err) {
      const { message, status } = describeApiError(err);
      const what =
        status === 401
          ? 'The EVTwin API is reachable but refused the service token.'
          : status === 403
            ? 'The service token is accepted, but your Grafana login is not an EVTwin user (users.yaml).'
            : status === 404
              ? `No EVTwin API at ${this.configuredUrl}/evtwin/api/v1: is an evtwin-api node deployed?`
              : 'The EVTwin API health check failed.';
      return { status: 'error', message: `${what} ${message}` };
    }
    const influx = h.influx.ok ? 'InfluxDB OK' : `InfluxDB unavailable: ${h.influx.error ?? 'no answer'}`;
    const api = `EVTwin API ${h.version} reachable, ${influx}.`;
    if (!h.user)
      return { status: 'error', message: `${api} No service token was accepted: set it in the settings.` };
    if (h.user.via === 'service')
      return {
        status: 'error',
        message: `${api} Service token accepted, but Grafana sent no user: set [dataproxy] send_user_header = true in grafana.ini.`,
      };
    const who = `Service token accepted; you are "${h.user.login}" (${h.user.role}).`;
    return { status: h.influx.ok ? 'success' : 'error', message: `${api} ${who}` };
  }
}
