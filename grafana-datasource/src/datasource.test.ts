import { dateTime, LoadingState, type DataQueryRequest, type DataQueryResponse } from '@grafana/data';
import { firstValueFrom, isObservable, take, toArray, type Observable } from 'rxjs';
import { DataSource } from './datasource';
import { ASSETS, SETTINGS, fakeFetch, type FetchCall } from './test/fixtures';
import type { EvtwinQuery } from './types';

const fetchImpl = jest.fn();
const vars: Record<string, string | string[]> = { site: 'plant-a', asset: ['cnc-01', 'cnc-02'] };
jest.mock('@grafana/runtime', () => ({
  getBackendSrv: () => ({ fetch: (c: unknown) => fetchImpl(c) }),
  getTemplateSrv: () => ({
    getVariables: () => [],
    replace: (text: string, _s: unknown, format?: string) =>
      text.replace(/\$(\w+)/g, (m, n: string) => {
        const v = vars[n];
        return v === undefined
          ? m
          : Array.isArray(v)
            ? format === 'csv'
              ? v.join(',')
              : `{${v.join(',')}}`
            : v;
      }),
  }),
}));

function request(targets: EvtwinQuery[], rawTo = 'now'): DataQueryRequest<EvtwinQuery> {
  return {
    requestId: 'r1',
    interval: '10s',
    intervalMs: 10_000,
    maxDataPoints: 800,
    range: { from: dateTime(1_000_000), to: dateTime(4_600_000), raw: { from: 'now-1h', to: rawTo } },
    scopedVars: {},
    targets,
    timezone: 'utc',
    app: 'dashboard',
    startTime: 0,
  };
}
const once = (o: Observable<DataQueryResponse> | Promise<DataQueryResponse>) =>
  isObservable(o) ? firstValueFrom(o) : o;

describe('DataSource', () => {
  let calls: FetchCall[];
  beforeEach(() => {
    calls = [];
  });

  it('posts one interpolated request through the data-proxy route and builds frames', async () => {
    fetchImpl.mockImplementation(
      fakeFetch(
        {
          '/query': {
            status: 200,
            data: {
              range: { from: 1_000_000, to: 4_600_000 },
              results: [
                {
                  refId: 'A',
                  queryType: 'timeseries',
                  rollup: 'raw',
                  intervalMs: 10_000,
                  aggregation: 'mean',
                  series: [
                    { site: 'plant-a', asset: 'cnc-01', metric: 'power', unit: 'kW', points: [[1, 2]] },
                  ],
                },
              ],
            },
          },
        },
        calls,
      ),
    );
    const ds = new DataSource(SETTINGS);
    const res = await once(
      ds.query(
        request([
          { refId: 'A', queryType: 'timeseries', site: '$site', assets: ['$asset'], metrics: ['power'] },
        ]),
      ),
    );
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe('/api/datasources/proxy/uid/evtwin/api/query');
    expect(calls[0].method).toBe('POST');
    expect(calls[0].data).toEqual({
      range: { from: 1_000_000, to: 4_600_000 },
      maxDataPoints: 800,
      queries: [
        {
          refId: 'A',
          queryType: 'timeseries',
          filter: { site: 'plant-a', assets: ['cnc-01', 'cnc-02'] },
          metrics: ['power'],
          aggregation: 'mean',
          fill: 'null',
          intervalMs: 10_000,
        },
      ],
    });
    expect(res.state).toBe(LoadingState.Done);
    expect(res.data).toHaveLength(1);
    expect(res.data[0].fields[1].config.unit).toBe('kwatt');
  });

  it("maps a FetchError to the API's message on every query of the request", async () => {
    fetchImpl.mockImplementation(
      fakeFetch({
        '/query': { status: 400, data: { error: 'range.from must be before range.to', field: 'range' } },
      }),
    );
    const res = await once(
      new DataSource(SETTINGS).query(
        request([
          { refId: 'A', queryType: 'latest' },
          { refId: 'B', queryType: 'assets' },
        ]),
      ),
    );
    expect(res.state).toBe(LoadingState.Error);
    expect(res.errors).toEqual([
      { refId: 'A', status: 400, message: 'EVTwin API 400: range.from must be before range.to (range)' },
      { refId: 'B', status: 400, message: 'EVTwin API 400: range.from must be before range.to (range)' },
    ]);
  });

  it('reports a per-query refusal inside a 200 answer', async () => {
    fetchImpl.mockImplementation(
      fakeFetch({
        '/query': {
          status: 200,
          data: {
            range: { from: 0, to: 1 },
            results: [
              { refId: 'A', queryType: 'events', error: 'audit events are for admins only', status: 403 },
            ],
          },
        },
      }),
    );
    const res = await once(new DataSource(SETTINGS).query(request([{ refId: 'A', queryType: 'events' }])));
    expect(res.errors).toEqual([
      { refId: 'A', status: 403, message: 'EVTwin API 403: audit events are for admins only' },
    ]);
  });

  it('live: re-queries every second with the range sliding, as one stream', async () => {
    fetchImpl.mockImplementation(
      fakeFetch(
        { '/query': () => ({ status: 200, data: { range: { from: 0, to: 1 }, results: [] } }) },
        calls,
      ),
    );
    const ds = new DataSource(SETTINGS);
    const t0 = Date.now();
    const out = ds.query(request([{ refId: 'A', queryType: 'events', live: true }]));
    expect(isObservable(out)).toBe(true);
    const seen = await firstValueFrom((out as Observable<DataQueryResponse>).pipe(take(3), toArray()));
    expect(calls.filter((c) => c.url.endsWith('/query'))).toHaveLength(3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(seen.every((r) => r.state === LoadingState.Streaming && r.key === 'evtwin-live-r1')).toBe(true);
    const ranges = calls.map((c) => (c.data as { range: { to: number } }).range.to);
    expect(ranges[2] - ranges[0]).toBeGreaterThanOrEqual(1900);
  });

  it('template variables: sites, lines and assets from GET /assets, narrowed by variables', async () => {
    fetchImpl.mockImplementation(fakeFetch({ '/assets': { status: 200, data: ASSETS } }, calls));
    const ds = new DataSource(SETTINGS);
    const sites = await ds.findVariableValues({ refId: 'V', target: 'site' });
    expect(sites).toEqual([
      { text: 'Plant A', value: 'plant-a' },
      { text: 'Water North', value: 'water-north' },
    ]);
    const assets = await ds.findVariableValues({
      refId: 'V',
      target: 'asset',
      site: '$site',
      valueAs: 'ref',
    });
    expect(calls[1].url).toBe('/api/datasources/proxy/uid/evtwin/api/assets?site=plant-a');
    expect(assets.map((a) => a.value)).toEqual(['plant-a/cnc-01', 'plant-a/robot-01', 'water-north/flow-01']);
  });

  it('health check: success names the user; a refused token or a missing user header is an error', async () => {
    const health = (user?: object) => ({
      status: 200,
      data: { status: 'ok', version: '0.1.0', time: 0, influx: { ok: true }, ...(user ? { user } : {}) },
    });
    fetchImpl.mockImplementation(
      fakeFetch({ '/health': health({ login: 'ana', name: 'Ana', role: 'lead', via: 'grafana' }) }),
    );
    await expect(new DataSource(SETTINGS).testDatasource()).resolves.toEqual({
      status: 'success',
      message: 'EVTwin API 0.1.0 reachable, InfluxDB OK. Service token accepted; you are "ana" (lead).',
    });
    fetchImpl.mockImplementation(
      fakeFetch({ '/health': health({ login: 'service', role: 'citizen', via: 'service' }) }),
    );
    expect((await new DataSource(SETTINGS).testDatasource()).message).toMatch(/send_user_header = true/);
    fetchImpl.mockImplementation(
      fakeFetch({ '/health': { status: 401, data: { error: 'service token refused' } } }),
    );
    const refused = await new DataSource(SETTINGS).testDatasource();
    expect(refused.status).toBe('error');
    expect(refused.message).toMatch(
      /^The EVTwin API is reachable but refused the service token\. EVTwin API 401/,
    );
    const noUrl = new DataSource({ ...SETTINGS, jsonData: {} });
    expect((await noUrl.testDatasource()).message).toMatch(/Set the URL of Node-RED/);
  });
});
