/**
 * InfluxQL for the twin API, pure. Statements are assembled ONLY from fixed text, validated identifiers
 * (metric names matching METRIC_PATTERN, quoted; measurements and retention policies from our own enums)
 * and `$name` placeholders whose values travel separately in InfluxDB's `params` query parameter
 * (InfluxDB 1.x binds them as literals; verified on 1.6.7: a value like `a' OR 'x'='x` matches nothing).
 * Never a user's text inside the statement.
 *
 * Scoping is part of every WHERE: the caller's role and scope (core/access.ts) become tag predicates, so
 * InfluxDB never returns a series the caller may not see; the API filters the answer again by canSee.
 */
import type { Principal } from './access';
import { canSee } from './access';
import type { Aggregation, Fill, ParsedFilter, ResolvedRange, Rollup } from './api';
import type { Asset, AssetModel } from './assetModel';
import { METRIC_PATTERN } from './reading';

/** A statement and the values of its placeholders. */
export interface BoundQuery {
  text: string;
  params: Record<string, string | number>;
}

/** Measurements the API reads (SCHEMA names plus those the OCPP side writes). */
export type ApiMeasurement =
  'telemetry' | 'scores' | 'events' | 'audit' | 'recommendations' | 'charger' | 'sessions';

/** Which tags a measurement carries (what a scope predicate may use). */
const TAGS: Record<ApiMeasurement, { line: boolean; kind: boolean; asset: boolean }> = {
  telemetry: { line: true, kind: true, asset: true },
  scores: { line: true, kind: true, asset: true },
  events: { line: true, kind: true, asset: true },
  audit: { line: false, kind: false, asset: false },
  recommendations: { line: false, kind: false, asset: true },
  charger: { line: false, kind: false, asset: true },
  sessions: { line: false, kind: false, asset: true },
};

export class InfluxQLError extends Error {
  override name = 'InfluxQLError';
}

/** Quote an identifier that was validated by a pattern that excludes quotes, backslashes and line breaks. */
export function quoteIdent(name: string): string {
  if (!METRIC_PATTERN.test(name) || /["\\\n\r]/.test(name))
    throw new InfluxQLError(`refusing identifier ${JSON.stringify(name.slice(0, 40))}`);
  return `"${name}"`;
}

/** Collects placeholder values; each value gets a fresh `$pN`. */
export class Binder {
  readonly params: Record<string, string | number> = {};
  private n = 0;
  bind(value: string | number): string {
    const name = `p${this.n++}`;
    this.params[name] = value;
    return `$${name}`;
  }
}

const from = (rp: Rollup | undefined, m: ApiMeasurement): string =>
  rp === undefined || rp === 'raw' ? `"${m}"` : `"${rp}"."${m}"`;

const or = (parts: string[]): string => (parts.length === 1 ? (parts[0] ?? '') : `(${parts.join(' OR ')})`);

const pairs = (b: Binder, assets: readonly Pick<Asset, 'site' | 'id'>[]): string[] =>
  assets.map((a) => `("site" = ${b.bind(a.site)} AND "asset" = ${b.bind(a.id)})`);

/**
 * The WHERE predicate for what `p` may see, narrowed by `filter`, on measurement `m`. Returns null when
 * nothing can match (a citizen; a filter outside the scope), so the caller skips the query.
 */
export function scopePredicate(
  p: Principal,
  filter: ParsedFilter,
  model: AssetModel,
  m: ApiMeasurement,
  b: Binder,
): string | null {
  const tags = TAGS[m];
  const clauses: string[] = [];
  if (!tags.asset) return p.role === 'admin' ? '' : null;
  // What the role allows.
  if (p.role === 'lead') {
    const parts = p.scope.sites.map((s) => `"site" = ${b.bind(s)}`);
    for (const ref of p.scope.lines) {
      const [site = '', line = ''] = ref.split('/');
      if (tags.line) parts.push(`("site" = ${b.bind(site)} AND "line" = ${b.bind(line)})`);
      else
        parts.push(
          ...pairs(
            b,
            model.assets.filter((a) => a.site === site && a.line === line),
          ),
        );
    }
    if (parts.length === 0) return null;
    clauses.push(or(parts));
  } else if (p.role === 'worker') {
    const parts = p.scope.assets.map((ref) => {
      const [site = '', id = ''] = ref.split('/');
      return `("site" = ${b.bind(site)} AND "asset" = ${b.bind(id)})`;
    });
    if (parts.length === 0) return null;
    clauses.push(or(parts));
  } else if (p.role !== 'admin' && p.role !== 'head') return null;
  // What the request narrows to.
  if (filter.site !== undefined) clauses.push(`"site" = ${b.bind(filter.site)}`);
  if (filter.line !== undefined) {
    if (tags.line) clauses.push(`"line" = ${b.bind(filter.line)}`);
    else {
      const on = model.assets.filter(
        (a) => a.line === filter.line && (filter.site === undefined || a.site === filter.site),
      );
      if (on.length === 0) return null;
      clauses.push(or(pairs(b, on)));
    }
  }
  if (filter.kind !== undefined) {
    if (tags.kind) clauses.push(`"kind" = ${b.bind(filter.kind)}`);
    else {
      const ofKind = model.assets.filter((a) => a.kind === filter.kind);
      if (ofKind.length === 0) return null;
      clauses.push(or(pairs(b, ofKind)));
    }
  }
  if (filter.assets !== undefined) {
    const visible = filter.assets.filter((a) => {
      const known = model.assets.find((x) => x.site === a.site && x.id === a.id);
      return canSee(p, { site: a.site, line: known?.line, id: a.id });
    });
    if (visible.length === 0) return null;
    clauses.push(or(pairs(b, visible)));
  }
  return clauses.join(' AND ');
}

const timeClause = (range: ResolvedRange, b: Binder): string =>
  `time >= ${b.bind(new Date(range.from).toISOString())} AND time < ${b.bind(new Date(range.to).toISOString())}`;

const where = (scope: string, range: ResolvedRange, b: Binder, extra: string[] = []): string =>
  ['WHERE', [scope, ...extra, timeClause(range, b)].filter((s) => s !== '').join(' AND ')].join(' ');

const FILL_SQL: Record<Fill, string> = {
  none: 'fill(none)',
  null: 'fill(null)',
  previous: 'fill(previous)',
  linear: 'fill(linear)',
  zero: 'fill(0)',
};

/** The field of a rollup that holds what an aggregation needs (the CQs write mean_, min_, max_). */
function selectExpr(agg: Aggregation, metric: string, rollup: Rollup): string {
  const alias = quoteIdent(metric);
  if (rollup === 'raw') return `${agg}(${alias}) AS ${alias}`;
  const source = agg === 'min' ? `min_${metric}` : agg === 'max' ? `max_${metric}` : `mean_${metric}`;
  return `${agg}(${quoteIdent(source)}) AS ${alias}`;
}

export interface TimeSeriesSpec {
  metrics: readonly string[];
  aggregation: Aggregation;
  fill: Fill;
  rollup: Rollup;
  intervalMs: number;
  range: ResolvedRange;
  /** Most series returned (SLIMIT). */
  maxSeries: number;
}

/** Aggregated metrics per interval, one series per asset. */
export function timeSeriesQuery(
  spec: TimeSeriesSpec,
  p: Principal,
  filter: ParsedFilter,
  model: AssetModel,
): BoundQuery | null {
  const b = new Binder();
  const scope = scopePredicate(p, filter, model, 'telemetry', b);
  if (scope === null) return null;
  const fields = spec.metrics.map((m) => selectExpr(spec.aggregation, m, spec.rollup)).join(', ');
  const text =
    `SELECT ${fields} FROM ${from(spec.rollup, 'telemetry')} ${where(scope, spec.range, b)} ` +
    `GROUP BY time(${Math.round(spec.intervalMs)}ms), "site", "line", "asset", "kind" ${FILL_SQL[spec.fill]} ` +
    `SLIMIT ${Math.round(spec.maxSeries)}`;
  return { text, params: b.params };
}

/** The newest row of each series of `m` (telemetry, scores, charger) within the range. */
export function latestQuery(
  m: 'telemetry' | 'scores' | 'charger',
  metrics: readonly string[] | undefined,
  range: ResolvedRange,
  p: Principal,
  filter: ParsedFilter,
  model: AssetModel,
): BoundQuery | null {
  const b = new Binder();
  const scope = scopePredicate(p, filter, model, m, b);
  if (scope === null) return null;
  const fields = metrics && metrics.length > 0 ? metrics.map(quoteIdent).join(', ') : '*';
  const group = TAGS[m].line ? '"site", "line", "asset", "kind"' : '"site", "asset"';
  return {
    text: `SELECT ${fields} FROM ${from(undefined, m)} ${where(scope, range, b)} GROUP BY ${group} ORDER BY time DESC LIMIT 1`,
    params: b.params,
  };
}

/** Rows of an event-like measurement, newest first, with optional tag filters. */
export function rowsQuery(
  m: 'events' | 'audit' | 'recommendations' | 'sessions',
  range: ResolvedRange,
  limit: number,
  p: Principal,
  filter: ParsedFilter,
  model: AssetModel,
  tagFilters: { tag: 'type' | 'severity'; values: readonly string[] }[] = [],
): BoundQuery | null {
  const b = new Binder();
  const scope = scopePredicate(p, filter, model, m, b);
  if (scope === null) return null;
  const extra = tagFilters
    .filter((f) => f.values.length > 0)
    .map((f) => or(f.values.map((v) => `"${f.tag}" = ${b.bind(v)}`)));
  return {
    text: `SELECT * FROM ${from(undefined, m)} ${where(scope, range, b, extra)} ORDER BY time DESC LIMIT ${Math.round(limit)}`,
    params: b.params,
  };
}

/**
 * Every telemetry row in the range, one series per asset, for the CSV export (run chunked). Rollups
 * give their means (`/^mean_/`, renamed by the caller).
 */
export function exportQuery(
  rollup: Rollup,
  metrics: readonly string[] | undefined,
  range: ResolvedRange,
  p: Principal,
  filter: ParsedFilter,
  model: AssetModel,
): BoundQuery | null {
  const b = new Binder();
  const scope = scopePredicate(p, filter, model, 'telemetry', b);
  if (scope === null) return null;
  let fields: string;
  if (metrics && metrics.length > 0)
    fields = metrics
      .map((m) => (rollup === 'raw' ? quoteIdent(m) : `${quoteIdent(`mean_${m}`)} AS ${quoteIdent(m)}`))
      .join(', ');
  else fields = rollup === 'raw' ? '*' : '/^mean_/';
  return {
    text: `SELECT ${fields} FROM ${from(rollup, 'telemetry')} ${where(scope, range, b)} GROUP BY "site", "line", "asset", "kind"`,
    params: b.params,
  };
}
