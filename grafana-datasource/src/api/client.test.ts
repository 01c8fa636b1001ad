import {
  TwinApiClient,
  buildQueryRequest,
  describeApiError,
  parseIntervalMs,
  queryString,
  toTwinQuery,
  type ApiRequest,
  type Interpolate,
} from './client';
import type { EvtwinQuery } from '../types';

/** Grafana's templateSrv with format 'csv', over fixed variables (a list is a multi-value variable). */
const vars: Record<string, string | string[]> = {
  site: 'plant-a',
  sites: ['plant-a', 'water-north'],
  asset: ['cnc-01', 'cnc-02'],
  metric: 'power',
  all: '$__all',
  iv: '30s',
};
const interpolate: Interpolate = (text) =>
  text
    .replace(/\$(\w+)/g, (m, name: string) => {
      const v = vars[name];
      return v === undefined ? m : Array.isArray(v) ? v.join(',') : v;
    })
    .split(',');
const ctx = { range: { from: 1000, to: 61_000 }, intervalMs: 2000, maxDataPoints: 500, interpolate };
const q = (patch: Partial<EvtwinQuery>): EvtwinQuery => ({ refId: 'A', ...patch });

describe('template variable interpolation into the API request', () => {
  it('expands single and multi-value variables in every field', () => {
    const t = toTwinQuery(
      q({ queryType: 'timeseries', site: '$site', assets: ['$asset'], metrics: ['$metric', 'temperature'] }),
      ctx,
    );
    expect(t).toEqual({
      refId: 'A',
      queryType: 'timeseries',
      filter: { site: 'plant-a', assets: ['cnc-01', 'cnc-02'] },
      metrics: ['power', 'temperature'],
      aggregation: 'mean',
      fill: 'null',
      intervalMs: 2000,
    });
  });

  it('treats "All" and several sites as no narrowing', () => {
    expect(toTwinQuery(q({ queryType: 'assets', site: '$all' }), ctx).filter).toEqual({});
    expect(toTwinQuery(q({ queryType: 'assets', site: '$sites', line: '' }), ctx).filter).toEqual({});
  });

  it('takes the query interval (variables too) over the panel interval', () => {
    const t = toTwinQuery(q({ queryType: 'timeseries', metrics: ['power'], interval: '$iv' }), ctx);
    expect(t).toMatchObject({ intervalMs: 30_000 });
    expect(() =>
      toTwinQuery(q({ queryType: 'timeseries', metrics: ['power'], interval: 'soon' }), ctx),
    ).toThrow(/interval "soon" is not like 10s/);
  });

  it('builds each query type with only the fields the API knows', () => {
    expect(toTwinQuery(q({ queryType: 'events', types: ['alert'], limit: 5, metrics: ['x'] }), ctx)).toEqual({
      refId: 'A',
      queryType: 'events',
      filter: {},
      types: ['alert'],
      limit: 5,
    });
    expect(toTwinQuery(q({ queryType: 'grievances', status: 'open' }), ctx)).toEqual({
      refId: 'A',
      queryType: 'grievances',
      filter: {},
      status: 'open',
    });
    expect(toTwinQuery(q({ queryType: 'assets', state: true }), ctx)).toMatchObject({ state: true });
    expect(toTwinQuery(q({ queryType: 'latest' }), ctx)).toEqual({
      refId: 'A',
      queryType: 'latest',
      filter: {},
    });
  });

  it('keeps a query that cannot be sent out of the request, and the range and limits in', () => {
    const { request, failed } = buildQueryRequest(
      [
        q({ refId: 'A', queryType: 'timeseries', metrics: [] }),
        q({ refId: 'B', queryType: 'latest' }),
        q({ refId: 'C', queryType: 'latest', hide: true }),
      ],
      { ...ctx, range: { from: 1000.4, to: 60_999.2 } },
    );
    expect(failed.map((f) => [f.refId, f.message])).toEqual([['A', 'choose at least one metric']]);
    expect(request).toEqual({
      range: { from: 1000, to: 61_000 },
      maxDataPoints: 500,
      queries: [{ refId: 'B', queryType: 'latest', filter: {} }],
    });
    expect(buildQueryRequest([q({ queryType: 'timeseries' })], ctx).request).toBeUndefined();
  });

  it('parses intervals', () => {
    expect([
      parseIntervalMs('500ms'),
      parseIntervalMs('10s'),
      parseIntervalMs('1.5h'),
      parseIntervalMs('1w'),
    ]).toEqual([500, 10_000, 5_400_000, 604_800_000]);
  });
});

describe('error mapping', () => {
  it("uses the API's JSON error body of a FetchError", () => {
    const err = {
      status: 400,
      statusText: 'Bad Request',
      data: { error: 'metrics[0]: "x;" is not a metric name', field: 'metrics[0]' },
    };
    expect(describeApiError(err)).toEqual({
      message: 'EVTwin API 400: metrics[0]: "x;" is not a metric name (metrics[0])',
      status: 400,
    });
  });
  it('adds a hint for a refused token', () => {
    expect(describeApiError({ status: 401, data: { error: 'service token refused' } }).message).toBe(
      'EVTwin API 401: service token refused: check the service token in the data source settings',
    );
  });
  it("says when Grafana's proxy cannot reach the API", () => {
    expect(
      describeApiError({ status: 502, statusText: 'Bad Gateway', data: { message: 'Bad Gateway' } }).message,
    ).toMatch(/^cannot reach the EVTwin API \(502 Bad Gateway\): check the URL/);
  });
  it('handles cancelled requests and plain errors', () => {
    expect(describeApiError({ cancelled: true }).message).toBe('request cancelled');
    expect(describeApiError(new Error('boom')).message).toBe('boom');
  });
});

describe('TwinApiClient', () => {
  it('calls the endpoints with filters as query parameters', async () => {
    const calls: ApiRequest[] = [];
    const client = new TwinApiClient(<T>(req: ApiRequest) => {
      calls.push(req);
      return Promise.resolve({} as T);
    });
    await client.assets({ site: 'plant-a', assets: ['plant-a/cnc-01', 'plant-a/cnc-02'] }, true);
    await client.metrics({ kind: 'cnc' });
    await client.health();
    expect(calls.map((c) => `${c.method} ${c.path}${queryString(c.params)}`)).toEqual([
      'GET /assets?site=plant-a&assets=plant-a%2Fcnc-01%2Cplant-a%2Fcnc-02&state=1',
      'GET /metrics?kind=cnc',
      'GET /health',
    ]);
  });
});
