/**
 * The twin API's handlers (contract: core/api.ts), over an injected InfluxDB query function, the asset
 * model, the users and the grievance store; no Node-RED import (the evtwin-api node wires it).
 *
 * Who is calling: a user's access JWT (`Authorization: Bearer`), or the service token (constant-time
 * compare) with `X-Grafana-User` naming a user. `X-Grafana-User` without a valid service token is a 401,
 * whatever else the request carries. The service token alone is the Grafana alert webhook.
 * What they get: every answer scoped by core/access.ts, twice: the InfluxQL WHERE holds the scope
 * (core/influxql.ts), and every returned series or row is checked again with canSee before it leaves.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import {
  canSee,
  canSeeGrievance,
  hasRole,
  lineVisibility,
  principalOf,
  scopeFilter,
  siteVisibility,
  type Principal,
} from '../core/access';
import {
  ApiRequestError,
  GRAFANA_USER_HEADER,
  LIMITS,
  SERVICE_TOKEN_HEADER,
  TWIN_API_BASE,
  checkId,
  checkMetric,
  chooseInterval,
  chooseRollup,
  parseFilter,
  parseGrafanaWebhook,
  parseGrievanceResolve,
  parseGrievanceSubmit,
  parseQueryRequest,
  parseRange,
  type Annotation,
  type ChargerCommandAccepted,
  type ChargerCommandMessage,
  type ChargerRow,
  type EventRow,
  type Grievance,
  type HealthResponse,
  type IntakeAlert,
  type LatestRow,
  type MetricInfo,
  type ParsedFilter,
  type ParsedQuery,
  type QueryResult,
  type RecommendationRow,
  type RecordRow,
  type ResolvedRange,
  type Rollup,
  type SeriesPoints,
  type SiteInfo,
  type TwinAsset,
} from '../core/api';
import type { Asset, AssetModel, User } from '../core/assetModel';
import type { AuditSink } from '../core/auditEvent';
import { exportQuery, latestQuery, rowsQuery, timeSeriesQuery, type BoundQuery } from '../core/influxql';
import { METRICS_BY_KIND, isAssetKind } from '../core/kinds';
import { CommandError, parseCommand, type ChargerCommand } from '../core/ocpp';
import { commandTopic } from '../core/topics';
import { HttpError, readJsonBody, sendJson, type AuthContext, type HttpRequest } from './authRoutes';
import type { GrievanceStore } from './grievances';
import { InfluxQueryError, type InfluxSeries, type TwinQueryFn } from './influxQuery';

/** A charger command for the flow (output 1 of evtwin-api). */
export interface CommandOut {
  topic: string;
  payload: ChargerCommand;
  command: ChargerCommandMessage;
}

export interface TwinApiDeps {
  query: TwinQueryFn;
  /** The asset model now. */
  model(): AssetModel;
  /** The user as users.yaml says now. */
  findUser(login: string): User | undefined;
  /** Verifies a user's access JWT (runtime/authRoutes createAuthenticator); absent: JWTs are refused. */
  authenticate?: (req: HttpRequest) => Promise<AuthContext>;
  /** The service token the Grafana datasource injects; absent: Grafana cannot call. */
  serviceToken?: string;
  grievances: GrievanceStore;
  audit?: AuditSink;
  emitCommand(out: CommandOut): void;
  emitAlerts(alerts: IntakeAlert[]): void;
  now?: () => number;
  version?: string;
  log?: (level: 'warn' | 'error', text: string) => void;
  basePath?: string;
}

/** Who is calling: a user (via a JWT or Grafana), or the bare service (alert webhooks). */
type Caller =
  { kind: 'user'; principal: Principal; name: string; via: 'jwt' | 'grafana' } | { kind: 'service' };

type Next = (err?: unknown) => void;
export type TwinApiHandler = (req: HttpRequest, res: ServerResponse, next: Next) => void;

const sha = (s: string): Buffer => createHash('sha256').update(s).digest();
const header = (req: HttpRequest, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};
const BEARER = /^Bearer (\S+)$/;

/**
 * readJsonBody, plus what it cannot see behind Node-RED's admin body parser (httpAdminRoot "/"): a body
 * that parser failed on is left as {} although bytes were sent; none of our bodies is a bare {}.
 */
async function readBody(req: HttpRequest, limit: number): Promise<Record<string, unknown>> {
  const body = await readJsonBody(req, limit);
  const parsedElsewhere = (req as { _body?: unknown })._body === true;
  if (parsedElsewhere && Object.keys(body).length === 0 && Number(req.headers['content-length'] ?? 0) > 2)
    throw new HttpError(400, 'body is not valid JSON');
  return body;
}

export function createTwinApi(deps: TwinApiDeps): TwinApiHandler {
  const base = (deps.basePath ?? TWIN_API_BASE).replace(/\/$/, '');
  const now = deps.now ?? Date.now;
  const audit = (
    action: string,
    actor: string,
    target: string,
    outcome: 'ok' | 'denied',
    detail?: Record<string, string | number | boolean>,
  ): void => deps.audit?.record({ ts: now(), actor, action, target, outcome, ...(detail ? { detail } : {}) });

  const serviceTokenOk = (candidate: string | undefined): boolean =>
    deps.serviceToken !== undefined &&
    deps.serviceToken !== '' &&
    candidate !== undefined &&
    timingSafeEqual(sha(candidate), sha(deps.serviceToken));

  /** The caller, or undefined without any credentials. Throws HttpError 401/403. */
  async function identify(req: HttpRequest): Promise<Caller | undefined> {
    const grafanaUser = header(req, GRAFANA_USER_HEADER);
    const svcHeader = header(req, SERVICE_TOKEN_HEADER);
    const bearer = BEARER.exec(header(req, 'authorization') ?? '')?.[1];
    const service = serviceTokenOk(svcHeader) || (svcHeader === undefined && serviceTokenOk(bearer));
    if (grafanaUser !== undefined) {
      if (!service) {
        audit('api.auth', grafanaUser.slice(0, 128), 'X-Grafana-User', 'denied', {
          reason: 'no-service-token',
        });
        throw new HttpError(401, 'X-Grafana-User is trusted only with a valid service token');
      }
      const user = deps.findUser(grafanaUser);
      if (!user) throw new HttpError(403, 'the Grafana user is not an EVTwin user (users.yaml)');
      return { kind: 'user', principal: principalOf(user), name: user.name, via: 'grafana' };
    }
    if (svcHeader !== undefined && !service) throw new HttpError(401, 'service token refused');
    if (service) return { kind: 'service' };
    if (header(req, 'authorization') === undefined) return undefined;
    if (!deps.authenticate) throw new HttpError(401, 'user access tokens are not configured on this API');
    const ctx = await deps.authenticate(req);
    return {
      kind: 'user',
      principal: { login: ctx.login, role: ctx.role, scope: ctx.scope },
      name: ctx.name,
      via: 'jwt',
    };
  }

  async function requireUser(req: HttpRequest): Promise<{ principal: Principal; name: string }> {
    const caller = await identify(req);
    if (!caller)
      throw new HttpError(
        401,
        'missing credentials: Authorization: Bearer <access token>, or the service token with X-Grafana-User',
        {
          'WWW-Authenticate': 'Bearer realm="evtwin"',
        },
      );
    if (caller.kind === 'service')
      throw new HttpError(401, 'the service token needs X-Grafana-User naming a user');
    return caller;
  }

  // ---- scoping helpers ----
  const lineOf = (m: AssetModel, site: string, asset: string): string | undefined =>
    m.assets.find((a) => a.site === site && a.id === asset)?.line;

  /** May p see a row tagged site/line/asset (any may be missing)? */
  const visibleRow = (p: Principal, m: AssetModel, site?: string, line?: string, asset?: string): boolean => {
    if (p.role === 'admin' || p.role === 'head') return true;
    if (!site) return false;
    if (asset) return canSee(p, { site, line: line || lineOf(m, site, asset), id: asset });
    if (line) return lineVisibility(p, site, line, m.assets) === 'all';
    return siteVisibility(p, site) === 'all';
  };

  const matches = (a: Asset, f: ParsedFilter): boolean =>
    (f.site === undefined || a.site === f.site) &&
    (f.line === undefined || a.line === f.line) &&
    (f.kind === undefined || a.kind === f.kind) &&
    (f.assets === undefined || f.assets.some((x) => x.site === a.site && x.id === a.id));

  const visibleAssets = (p: Principal, f: ParsedFilter): Asset[] =>
    scopeFilter(p, deps.model().assets).filter((a) => matches(a, f));

  const twinAsset = (a: Asset): TwinAsset => {
    const metrics: Record<string, string> = {};
    if (isAssetKind(a.kind))
      for (const [k, s] of Object.entries(METRICS_BY_KIND[a.kind])) metrics[k] = s.unit;
    return {
      ref: `${a.site}/${a.id}`,
      id: a.id,
      site: a.site,
      ...(a.line ? { line: a.line } : {}),
      kind: a.kind,
      name: a.name,
      ...(a.location ? { location: a.location } : {}),
      ...(a.position ? { position: a.position } : {}),
      metrics,
      bounds: a.bounds,
    };
  };

  // ---- InfluxDB ----
  async function run(q: BoundQuery | null): Promise<InfluxSeries[]> {
    if (q === null) return [];
    try {
      return await deps.query.query(q);
    } catch (err) {
      throw influxFailure(err);
    }
  }
  /** A rollup query, falling back to raw when the rollup's retention policy does not exist here. */
  async function runRollup(
    build: (r: Rollup) => BoundQuery | null,
    rollup: Rollup,
  ): Promise<{ series: InfluxSeries[]; rollup: Rollup }> {
    try {
      return { series: await deps.query.query(build(rollup) ?? skip()), rollup };
    } catch (err) {
      if (err instanceof Skip) return { series: [], rollup };
      if (
        rollup !== 'raw' &&
        err instanceof InfluxQueryError &&
        /retention policy not found/.test(err.message)
      )
        return { series: await run(build('raw')), rollup: 'raw' };
      throw influxFailure(err);
    }
  }
  function influxFailure(err: unknown): HttpError {
    if (err instanceof HttpError) return err;
    const refused = err instanceof InfluxQueryError && err.refused;
    deps.log?.('warn', `InfluxDB ${refused ? 'refused a query' : 'unavailable'}: ${(err as Error).message}`);
    return refused
      ? new HttpError(502, 'InfluxDB refused the query')
      : new HttpError(503, 'InfluxDB is unavailable');
  }

  const rowsOf = (s: InfluxSeries): Record<string, unknown>[] =>
    s.values.map((v) => Object.fromEntries(s.columns.map((c, i) => [c, v[i]])));
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const TAG_COLUMNS = new Set(['time', 'site', 'line', 'asset', 'kind', 'seq']);

  // ---- query types ----
  async function latestRows(
    p: Principal,
    f: ParsedFilter,
    metrics: string[] | undefined,
    range: ResolvedRange,
  ): Promise<LatestRow[]> {
    const m = deps.model();
    const [tel, scores] = await Promise.all([
      run(latestQuery('telemetry', metrics, range, p, f, m)),
      run(latestQuery('scores', ['health', 'failure_risk'], range, p, f, m)),
    ]);
    const byKey = new Map<string, LatestRow>();
    for (const s of tel) {
      const t = s.tags ?? {};
      if (!t.site || !t.asset || !visibleRow(p, m, t.site, t.line, t.asset)) continue;
      const row = rowsOf(s)[0];
      if (!row) continue;
      const values: Record<string, number | null> = {};
      for (const [k, v] of Object.entries(row)) if (!TAG_COLUMNS.has(k)) values[k] = num(v);
      byKey.set(`${t.site}/${t.asset}`, {
        site: t.site,
        ...(t.line ? { line: t.line } : {}),
        asset: t.asset,
        ...(t.kind ? { kind: t.kind } : {}),
        ts: num(row.time) ?? 0,
        values,
        health: null,
        failureRisk: null,
      });
    }
    for (const s of scores) {
      const t = s.tags ?? {};
      const r = byKey.get(`${t.site}/${t.asset}`);
      const row = rowsOf(s)[0];
      if (!r || !row) continue;
      r.health = num(row.health);
      r.failureRisk = num(row.failure_risk);
    }
    return [...byKey.values()];
  }

  async function assetList(
    p: Principal,
    f: ParsedFilter,
    withState: boolean,
    limit = Infinity,
  ): Promise<TwinAsset[]> {
    const assets = visibleAssets(p, f).slice(0, limit).map(twinAsset);
    if (!withState || assets.length === 0) return assets;
    const t = now();
    const rows = await latestRows(p, f, undefined, { from: t - 86_400_000, to: t + 60_000 });
    const byRef = new Map(rows.map((r) => [`${r.site}/${r.asset}`, r]));
    for (const a of assets) {
      const r = byRef.get(a.ref);
      a.state = {
        lastSeen: r ? r.ts : null,
        health: r?.health ?? null,
        failureRisk: r?.failureRisk ?? null,
        state: r?.values.state ?? null,
      };
    }
    return assets;
  }

  function sitesOf(p: Principal, f: ParsedFilter): SiteInfo[] {
    const m = deps.model();
    return m.sites
      .filter((s) => siteVisibility(p, s.id) !== 'none' && (f.site === undefined || f.site === s.id))
      .map((s) => ({
        id: s.id,
        name: s.name,
        ...(s.location ? { location: s.location } : {}),
        lines: s.lines
          .filter((l) => lineVisibility(p, s.id, l.id, m.assets) !== 'none')
          .map((l) => ({ id: l.id, name: l.name })),
      }));
  }

  async function eventRows(
    p: Principal,
    q: Extract<ParsedQuery, { queryType: 'events' | 'annotations' }>,
    range: ResolvedRange,
  ): Promise<EventRow[]> {
    const m = deps.model();
    if (q.includeAudit && p.role !== 'admin') throw new HttpError(403, 'audit events are for admins only');
    const tagFilters: { tag: 'type' | 'severity'; values: string[] }[] = [];
    if (q.types) tagFilters.push({ tag: 'type', values: q.types });
    if (q.severities) tagFilters.push({ tag: 'severity', values: q.severities });
    const out: EventRow[] = [];
    for (const s of await run(rowsQuery('events', range, q.limit, p, q.filter, m, tagFilters)))
      for (const r of rowsOf(s)) {
        const site = str(r.site);
        const asset = str(r.asset);
        const line = str(r.line);
        if (!visibleRow(p, m, site, line, asset)) continue;
        const e: EventRow = {
          ts: num(r.time) ?? 0,
          source: 'events',
          type: str(r.type) ?? 'event',
          message: str(r.message) ?? '',
        };
        if (site) e.site = site;
        if (line) e.line = line;
        if (asset) e.asset = asset;
        if (str(r.severity)) e.severity = str(r.severity);
        if (str(r.metric)) e.metric = str(r.metric);
        if (num(r.observed) !== null) e.observed = num(r.observed) as number;
        if (num(r.expected) !== null) e.expected = num(r.expected) as number;
        out.push(e);
      }
    if (q.includeAudit && p.role === 'admin')
      for (const s of await run(rowsQuery('audit', range, q.limit, p, {}, m)))
        for (const r of rowsOf(s))
          out.push({
            ts: num(r.time) ?? 0,
            source: 'audit',
            type: str(r.action) ?? 'audit',
            message: `${str(r.actor) ?? '?'} ${str(r.action) ?? ''} ${str(r.target) ?? ''}`.trim(),
            ...(str(r.actor) ? { actor: str(r.actor) } : {}),
            ...(str(r.outcome) ? { outcome: str(r.outcome) } : {}),
            ...(str(r.target) ? { target: str(r.target) } : {}),
          });
    return out.sort((a, b) => b.ts - a.ts).slice(0, q.limit);
  }

  async function runQuery(
    p: Principal,
    q: ParsedQuery,
    range: ResolvedRange,
    maxDataPoints: number,
  ): Promise<QueryResult> {
    const m = deps.model();
    switch (q.queryType) {
      case 'timeseries': {
        const rollup0 = chooseRollup(range);
        const intervalMs = chooseInterval(range, rollup0, q.intervalMs, maxDataPoints);
        const { series, rollup } = await runRollup(
          (rollup) =>
            timeSeriesQuery(
              {
                metrics: q.metrics,
                aggregation: q.aggregation,
                fill: q.fill,
                rollup,
                intervalMs,
                range,
                maxSeries: LIMITS.assetsPerQuery,
              },
              p,
              q.filter,
              m,
            ),
          rollup0,
        );
        const out: SeriesPoints[] = [];
        for (const s of series) {
          const t = s.tags ?? {};
          if (!t.site || !t.asset || !visibleRow(p, m, t.site, t.line, t.asset)) continue;
          const timeCol = s.columns.indexOf('time');
          for (const metric of q.metrics) {
            const col = s.columns.indexOf(metric);
            if (col < 0) continue;
            const points: [number, number | null][] = s.values.map((v) => [
              num(v[timeCol]) ?? 0,
              num(v[col]),
            ]);
            if (points.every(([, v]) => v === null)) continue;
            const unit = t.kind && isAssetKind(t.kind) ? METRICS_BY_KIND[t.kind][metric]?.unit : undefined;
            out.push({
              site: t.site,
              ...(t.line ? { line: t.line } : {}),
              asset: t.asset,
              ...(t.kind ? { kind: t.kind } : {}),
              metric,
              ...(unit !== undefined ? { unit } : {}),
              points,
            });
          }
        }
        return {
          refId: q.refId,
          queryType: 'timeseries',
          rollup,
          intervalMs,
          aggregation: q.aggregation,
          series: out,
        };
      }
      case 'latest':
        return { refId: q.refId, queryType: 'latest', rows: await latestRows(p, q.filter, q.metrics, range) };
      case 'events':
        return { refId: q.refId, queryType: 'events', events: await eventRows(p, q, range) };
      case 'annotations': {
        const annotations: Annotation[] = (await eventRows(p, q, range)).map((e) => ({
          time: e.ts,
          title: e.type,
          text: e.message,
          tags: [e.type, e.severity, e.site, e.asset].filter((x): x is string => x !== undefined),
          ...(e.site ? { site: e.site } : {}),
          ...(e.asset ? { asset: e.asset } : {}),
        }));
        return { refId: q.refId, queryType: 'annotations', annotations };
      }
      case 'assets':
        return {
          refId: q.refId,
          queryType: 'assets',
          assets: await assetList(p, q.filter, q.state, q.limit),
        };
      case 'chargers': {
        const f: ParsedFilter = { ...q.filter, kind: 'charger' };
        const chargers = visibleAssets(p, f).slice(0, q.limit);
        if (chargers.length === 0) return { refId: q.refId, queryType: 'chargers', chargers: [] };
        const [tel, status] = await Promise.all([
          run(latestQuery('telemetry', undefined, range, p, f, m)),
          run(latestQuery('charger', undefined, range, p, f, m)),
        ]);
        const latestOf = (
          series: InfluxSeries[],
          site: string,
          asset: string,
        ): Record<string, unknown> | undefined => {
          const s = series.find((x) => x.tags?.site === site && x.tags.asset === asset);
          return s ? rowsOf(s)[0] : undefined;
        };
        const rows: ChargerRow[] = chargers.map((a) => {
          const t = latestOf(tel, a.site, a.id);
          const st = latestOf(status, a.site, a.id);
          const values: Record<string, number | null> = {};
          for (const [k, v] of Object.entries(t ?? {})) if (!TAG_COLUMNS.has(k)) values[k] = num(v);
          const statusOut: Record<string, string | number | boolean | null> = {};
          for (const [k, v] of Object.entries(st ?? {}))
            if (!TAG_COLUMNS.has(k))
              statusOut[k] =
                typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : null;
          return {
            site: a.site,
            asset: a.id,
            name: a.name,
            ...(a.location ? { location: a.location } : {}),
            lastSeen: t ? num(t.time) : null,
            values,
            status: statusOut,
          };
        });
        return { refId: q.refId, queryType: 'chargers', chargers: rows };
      }
      case 'sessions': {
        const sessions: RecordRow[] = [];
        for (const s of await run(rowsQuery('sessions', range, q.limit, p, q.filter, m)))
          for (const r of rowsOf(s)) {
            const site = str(r.site);
            const asset = str(r.asset);
            if (!site || !asset || !visibleRow(p, m, site, undefined, asset)) continue;
            const tags: Record<string, string> = {};
            const fields: Record<string, string | number | boolean | null> = {};
            for (const [k, v] of Object.entries(r)) {
              if (k === 'time' || k === 'site' || k === 'asset') continue;
              if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') fields[k] = v;
              else fields[k] = null;
            }
            sessions.push({ ts: num(r.time) ?? 0, site, asset, tags, fields });
          }
        return { refId: q.refId, queryType: 'sessions', sessions };
      }
      case 'recommendations': {
        const recommendations: RecommendationRow[] = [];
        for (const s of await run(rowsQuery('recommendations', range, q.limit, p, q.filter, m)))
          for (const r of rowsOf(s)) {
            const site = str(r.site);
            const asset = str(r.asset);
            if (!site || !asset || !visibleRow(p, m, site, undefined, asset)) continue;
            recommendations.push({
              ts: num(r.time) ?? 0,
              site,
              asset,
              type: str(r.type) ?? 'recommendation',
              message: str(r.message) ?? '',
              kwh: num(r.kwh),
              cost: num(r.cost),
              currency: str(r.currency) ?? null,
              windowStart: num(r.window_start),
            });
          }
        return { refId: q.refId, queryType: 'recommendations', recommendations };
      }
      case 'grievances':
        return {
          refId: q.refId,
          queryType: 'grievances',
          grievances: grievancesFor(p, q.filter, q.status).slice(0, q.limit),
        };
    }
  }

  function grievancesFor(p: Principal, f: ParsedFilter, status?: string): Grievance[] {
    return (
      deps.grievances
        .all()
        .filter(
          (g) =>
            canSeeGrievance(p, g) &&
            (status === undefined || g.status === status) &&
            (f.site === undefined || g.site === f.site) &&
            (f.line === undefined || g.line === f.line) &&
            (f.assets === undefined || f.assets.some((a) => a.site === g.site && a.id === g.asset)),
        )
        .sort((a, b) => b.createdAt - a.createdAt)
        // A citizen learns nothing of the asset model, not even where their report was placed.
        .map((g) => (p.role === 'citizen' ? withoutPlacement(g) : g))
    );
  }

  /** GET query parameters → a filter (assets as a comma-separated list of site/asset). */
  const filterFromParams = (sp: URLSearchParams): ParsedFilter =>
    parseFilter({
      site: sp.get('site') ?? undefined,
      line: sp.get('line') ?? undefined,
      kind: sp.get('kind') ?? undefined,
      assets:
        (sp.get('assets') ?? sp.get('asset'))
          ? (sp.get('assets') ?? sp.get('asset') ?? '').split(',')
          : undefined,
    });

  // ---- CSV export ----
  const csvCell = (v: unknown): string => {
    if (v === null || v === undefined) return '';
    const s = String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };

  async function exportCsv(req: HttpRequest, res: ServerResponse, sp: URLSearchParams): Promise<void> {
    const { principal: p } = await requireUser(req);
    if (p.role === 'citizen') throw new HttpError(403, 'citizens have no device data to export');
    const resolution = sp.get('resolution') ?? 'auto';
    if (resolution !== 'auto' && resolution !== 'raw')
      throw new ApiRequestError(400, 'resolution must be auto or raw', 'resolution');
    const range = parseRange(
      sp.get('from') ?? 'now-24h',
      sp.get('to') ?? 'now',
      now(),
      resolution === 'raw' ? LIMITS.maxRawExportMs : LIMITS.maxRangeMs,
    );
    const f = filterFromParams(sp);
    const metricsParam = sp.get('metrics');
    const requested = metricsParam
      ? [...new Set(metricsParam.split(',').map((x, i) => checkMetric(x, `metrics[${i}]`)))].slice(0, 100)
      : undefined;
    const m = deps.model();
    const seen = visibleAssets(p, f);
    const columns =
      requested ??
      [
        ...new Set(seen.flatMap((a) => (isAssetKind(a.kind) ? Object.keys(METRICS_BY_KIND[a.kind]) : []))),
      ].sort();
    const rollup = resolution === 'raw' ? 'raw' : chooseRollup(range);
    const q = exportQuery(rollup, requested, range, p, f, m);
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader(
      'Content-Disposition',
      `attachment; filename="evtwin-${new Date(range.from).toISOString().slice(0, 10)}.csv"`,
    );
    res.setHeader('X-Evtwin-Rollup', rollup);
    res.write(['time', 'site', 'line', 'asset', 'kind', ...columns].join(',') + '\n');
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    let rows = 0;
    if (q !== null) {
      try {
        await deps.query.stream(
          q,
          async (s) => {
            const t = s.tags ?? {};
            if (!t.site || !t.asset || !visibleRow(p, m, t.site, t.line, t.asset)) return;
            const prefix = rollup === 'raw' || requested ? '' : 'mean_';
            const idx = columns.map((c) => s.columns.indexOf(prefix + c));
            const timeCol = s.columns.indexOf('time');
            const lead = [t.site, t.line ?? '', t.asset, t.kind ?? ''].map(csvCell).join(',');
            let block = '';
            for (const v of s.values) {
              if (idx.every((i) => i < 0 || v[i] === null)) continue;
              block += `${new Date(Number(v[timeCol])).toISOString()},${lead},${idx.map((i) => (i < 0 ? '' : csvCell(v[i]))).join(',')}\n`;
              rows++;
            }
            // Backpressure: wait for the client before asking InfluxDB for more.
            if (block !== '' && !res.write(block))
              await new Promise<void>((r) => res.once('drain', () => r()).once('close', () => r()));
          },
          abort.signal,
        );
      } catch (err) {
        if (abort.signal.aborted) return;
        deps.log?.('warn', `CSV export failed after ${rows} rows: ${(err as Error).message}`);
        // The status is sent already: say so in the body and cut the response short (no final chunk).
        res.write(`# export failed after ${rows} rows: InfluxDB error\n`);
        res.destroy();
        return;
      }
    }
    audit('data.export', p.login, `${range.from}..${range.to}`, 'ok', { rows, rollup });
    res.end();
  }

  // ---- routes ----
  type Route = (req: HttpRequest, res: ServerResponse, sp: URLSearchParams, parts: string[]) => Promise<void>;
  const routes: { method: string; path: RegExp; run: Route }[] = [
    {
      method: 'GET',
      path: /^\/health$/,
      run: async (req, res) => {
        let influx: HealthResponse['influx'] = { ok: true };
        try {
          await deps.query.ping();
        } catch (err) {
          influx = { ok: false, error: (err as Error).message.slice(0, 200) };
        }
        const caller = await identify(req);
        const body: HealthResponse = {
          status: influx.ok ? 'ok' : 'degraded',
          version: deps.version ?? '0',
          time: now(),
          influx,
        };
        if (caller?.kind === 'user')
          body.user = {
            login: caller.principal.login,
            name: caller.name,
            role: caller.principal.role,
            via: caller.via,
          };
        else if (caller?.kind === 'service')
          body.user = { login: 'service', name: 'service token', role: 'citizen', via: 'service' };
        sendJson(res, 200, body);
      },
    },
    {
      method: 'GET',
      path: /^\/assets$/,
      run: async (req, res, sp) => {
        const { principal: p } = await requireUser(req);
        const f = filterFromParams(sp);
        const assets = await assetList(p, f, sp.get('state') === '1' || sp.get('state') === 'true');
        sendJson(res, 200, { sites: sitesOf(p, f), assets, total: assets.length });
      },
    },
    {
      method: 'GET',
      path: /^\/metrics$/,
      run: async (req, res, sp) => {
        const { principal: p } = await requireUser(req);
        const byName = new Map<string, MetricInfo>();
        for (const a of visibleAssets(p, filterFromParams(sp))) {
          if (!isAssetKind(a.kind)) continue;
          for (const [name, spec] of Object.entries(METRICS_BY_KIND[a.kind])) {
            const mi = byName.get(name) ?? {
              name,
              unit: spec.unit,
              description: spec.description,
              kinds: [],
            };
            if (!mi.kinds.includes(a.kind)) mi.kinds.push(a.kind);
            byName.set(name, mi);
          }
        }
        sendJson(res, 200, { metrics: [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)) });
      },
    },
    {
      method: 'POST',
      path: /^\/query$/,
      run: async (req, res) => {
        const { principal: p } = await requireUser(req);
        const parsed = parseQueryRequest(await readBody(req, LIMITS.bodyBytes), now());
        const results = await Promise.all(
          parsed.queries.map(async (q): Promise<QueryResult> => {
            try {
              return await runQuery(p, q, parsed.range, parsed.maxDataPoints);
            } catch (err) {
              if (err instanceof HttpError || err instanceof ApiRequestError)
                return { refId: q.refId, queryType: q.queryType, error: err.message, status: err.status };
              throw err;
            }
          }),
        );
        sendJson(res, 200, { range: parsed.range, results });
      },
    },
    {
      method: 'GET',
      path: /^\/grievances$/,
      run: async (req, res, sp) => {
        const { principal: p } = await requireUser(req);
        const status = sp.get('status') ?? undefined;
        if (status !== undefined && status !== 'open' && status !== 'resolved')
          throw new ApiRequestError(400, 'status must be open or resolved', 'status');
        sendJson(res, 200, { grievances: grievancesFor(p, filterFromParams(sp), status) });
      },
    },
    {
      method: 'POST',
      path: /^\/grievances$/,
      run: async (req, res) => {
        const { principal: p } = await requireUser(req);
        const body = parseGrievanceSubmit(await readBody(req, LIMITS.bodyBytes));
        const g = await deps.grievances.submit(p.login, body, deps.model(), now());
        audit('grievance.submit', p.login, `grievance:${g.id}`, 'ok', g.site ? { site: g.site } : undefined);
        sendJson(res, 201, p.role === 'citizen' ? withoutPlacement(g) : g);
      },
    },
    {
      method: 'POST',
      path: /^\/grievances\/([A-Za-z0-9-]{1,64})\/resolve$/,
      run: async (req, res, _sp, parts) => {
        const { principal: p } = await requireUser(req);
        const id = parts[0] ?? '';
        const body = parseGrievanceResolve(
          await readBody(req, LIMITS.bodyBytes).catch((err: unknown) => {
            // An empty body is a resolution without a note.
            if (err instanceof HttpError && err.status === 400 && /empty/.test(err.message)) return undefined;
            throw err;
          }),
        );
        const g = deps.grievances.get(id);
        if (!g || !canSeeGrievance(p, g)) throw new HttpError(404, 'no such grievance in your scope');
        if (!hasRole(p, 'lead')) {
          audit('access.denied', p.login, `grievance:${id}`, 'denied', { needs: 'lead' });
          throw new HttpError(403, 'resolving a grievance needs role lead or above');
        }
        const out = await deps.grievances.resolve(id, p.login, body.resolution, now());
        audit('grievance.resolve', p.login, `grievance:${id}`, 'ok');
        sendJson(res, 200, out);
      },
    },
    { method: 'GET', path: /^\/export\.csv$/, run: (req, res, sp) => exportCsv(req, res, sp) },
    {
      method: 'POST',
      path: /^\/chargers\/([^/]{1,64})\/([^/]{1,64})\/commands$/,
      run: async (req, res, _sp, parts) => {
        const { principal: p } = await requireUser(req);
        const site = checkId(decodeURIComponent(parts[0] ?? ''), 'site');
        const asset = checkId(decodeURIComponent(parts[1] ?? ''), 'asset');
        const target = `${site}/${asset}`;
        if (p.role !== 'lead' && p.role !== 'head') {
          audit('access.denied', p.login, target, 'denied', { action: 'charger.command', role: p.role });
          throw new HttpError(403, 'charger commands need role lead or head');
        }
        const a = deps.model().assets.find((x) => x.site === site && x.id === asset);
        if (!a || a.kind !== 'charger' || !canSee(p, a)) {
          audit('access.denied', p.login, target, 'denied', {
            action: 'charger.command',
            reason: 'not-in-scope',
          });
          throw new HttpError(404, 'no charge point with this id in your scope');
        }
        const body = await readBody(req, LIMITS.bodyBytes);
        if (body.cp !== undefined && body.cp !== target)
          throw new ApiRequestError(400, 'cp in the body differs from the path', 'cp');
        let cmd: ChargerCommand;
        try {
          cmd = parseCommand(body, target);
        } catch (err) {
          if (err instanceof CommandError) throw new ApiRequestError(400, err.message);
          throw err;
        }
        const ts = now();
        const accepted: ChargerCommandAccepted = {
          commandId: randomUUID(),
          site,
          asset,
          command: cmd.command,
          status: 'accepted',
        };
        deps.emitCommand({
          topic: commandTopic(site, asset),
          payload: cmd,
          command: { ...accepted, requestedBy: p.login, ts },
        });
        audit('charger.command', p.login, target, 'ok', {
          command: cmd.command,
          commandId: accepted.commandId,
        });
        sendJson(res, 202, accepted);
      },
    },
    {
      method: 'POST',
      path: /^\/alerts$/,
      run: async (req, res) => {
        const caller = await identify(req);
        if (!caller)
          throw new HttpError(401, 'the alert webhook needs the service token', {
            'WWW-Authenticate': 'Bearer realm="evtwin"',
          });
        if (caller.kind === 'user' && caller.principal.role !== 'admin')
          throw new HttpError(403, 'alert intake takes the service token or an admin');
        const alerts = parseGrafanaWebhook(await readBody(req, LIMITS.alertBodyBytes), now());
        if (alerts.length > 0) deps.emitAlerts(alerts);
        audit('alert.intake', caller.kind === 'user' ? caller.principal.login : 'grafana', 'alerts', 'ok', {
          count: alerts.length,
        });
        sendJson(res, 202, { accepted: alerts.length });
      },
    },
  ];

  return (req, res, next) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    if (!path.startsWith(`${base}/`)) return next();
    const sub = path.slice(base.length);
    const candidates = routes.map((r) => ({ r, m: r.path.exec(sub) })).filter((x) => x.m !== null);
    // Not ours (the registry's /auth routes share the base): let the next handler answer.
    if (candidates.length === 0) return next();
    const hit = candidates.find((x) => x.r.method === req.method);
    if (!hit) {
      sendJson(
        res,
        405,
        { error: `use ${candidates.map((x) => x.r.method).join(' or ')}` },
        { Allow: candidates.map((x) => x.r.method).join(', ') },
      );
      return;
    }
    const sp = new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');
    hit.r.run(req, res, sp, (hit.m ?? []).slice(1)).catch((err: unknown) => {
      if (err instanceof ApiRequestError)
        sendJson(res, err.status, {
          error: err.message,
          ...(err.field ? { field: err.field } : {}),
          ...(err.refId ? { refId: err.refId } : {}),
        });
      else if (err instanceof HttpError) sendJson(res, err.status, { error: err.message }, err.headers);
      else {
        deps.log?.(
          'error',
          `twin API ${req.method ?? ''} ${sub}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        );
        sendJson(res, 500, { error: 'internal error' });
      }
      if (res.headersSent && !res.writableEnded) res.destroy();
    });
  };
}

const withoutPlacement = (g: Grievance): Grievance => {
  const { site: _s, line: _l, asset: _a, ...rest } = g;
  return rest;
};

/** A query that cannot match (a scope with nothing in it): skip InfluxDB. */
class Skip extends Error {}
const skip = (): never => {
  throw new Skip();
};
