/**
 * The BUILT Grafana datasource (grafana-datasource/dist/module.js, AMD, as Grafana loads it) runs its
 * query path against the real twin API: evtwin-api in a real Node-RED over a real, provisioned influxd
 * (tools/src/bench/api.ts startApiStack, the API tests' own fixture).
 *
 * The plugin gets what Grafana gives it (tools/src/plugins/datasourceHost.ts): the real @grafana/data and
 * rxjs, and a @grafana/runtime whose backendSrv behaves as Grafana's data proxy. @grafana/ui is a
 * placeholder: nothing here renders (the editors are covered by jest + React Testing Library in
 * grafana-datasource/src).
 *
 * Needs `npm run build -w node-red-nodes` and `npm run build -w grafana-datasource` first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Point } from 'node-red-contrib-evtwin';
import { API, DEMO_ASSETS, startApiStack, type ApiStack } from '../src/bench/api';
import {
  DS_DIST as DIST,
  type GrafanaData,
  type Observable,
  type PluginJson,
  type Rxjs,
  createDataSource,
  firstAnswer,
  grafanaRuntime,
  queryRequest,
  readPluginJson,
} from '../src/plugins/datasourceHost';
import { freePort } from '../src/services';

const SERVICE = 'ds-test-service-token-'.padEnd(40, 'x');
const UID = 'evtwin-test';
const dir = mkdtempSync(join(tmpdir(), 'evtwin-ds-test-'));
let stack: ApiStack;

// ---- the slice of @grafana/data and rxjs the test itself uses (the plugin gets the same instances) ----
interface Field {
  name: string;
  type: string;
  values: unknown[];
  labels?: Record<string, string>;
  config: { unit?: string; links?: { url: string; title: string }[]; displayNameFromDS?: string };
}
interface Frame {
  refId?: string;
  name?: string;
  fields: Field[];
  length: number;
  meta?: { custom?: Record<string, unknown> };
}
interface QueryError {
  refId?: string;
  message?: string;
  status?: number;
}
interface Response {
  data: Frame[];
  errors?: QueryError[];
  state?: string;
  key?: string;
}
interface Query {
  refId: string;
  queryType?: string;
  site?: string;
  line?: string;
  assets?: string[];
  kind?: string;
  metrics?: string[];
  aggregation?: string;
  interval?: string;
  fill?: string;
  types?: string[];
  status?: string;
  state?: boolean;
  limit?: number;
  live?: boolean;
  hide?: boolean;
}
interface DataSourceLike {
  query(request: unknown): Observable<Response> | Promise<Response>;
  testDatasource(): Promise<{ status: string; message: string }>;
  variables: { query(request: unknown): Observable<{ data: { text: string; value: string }[] }> };
  annotations?: unknown;
}
let grafanaData: GrafanaData;
let rxjs: Rxjs;
let pluginJson: PluginJson;

// ---- Grafana's side ----
/** Dashboard variables for templateSrv; a list is a multi-value variable. */
const dashboardVars: Record<string, string | string[]> = {};
/** Who Grafana says is logged in (X-Grafana-User); undefined: send_user_header is off. */
let grafanaUser: string | undefined = 'head';

const templateSrv = {
  getVariables: () => Object.keys(dashboardVars).map((name) => ({ name })),
  replace(text: string | undefined, _scoped?: unknown, format?: string): string {
    return (text ?? '').replace(/\$(\w+)|\$\{(\w+)\}/g, (m: string, a?: string, b?: string) => {
      const v = dashboardVars[a ?? b ?? ''];
      if (v === undefined) return m;
      if (!Array.isArray(v)) return v;
      return format === 'csv' ? v.join(',') : `{${v.join(',')}}`;
    });
  },
};

/** A datasource instance as Grafana creates it from the saved settings. */
function dataSource(o: { token?: string; url?: string } = {}): DataSourceLike {
  return createDataSource<DataSourceLike>({
    uid: UID,
    url: o.url ?? stack.red.url,
    token: o.token ?? SERVICE,
    user: () => grafanaUser,
    templateSrv,
  });
}

const request = queryRequest;

async function run(ds: DataSourceLike, targets: Query[], from = T0, to = T1): Promise<Response> {
  return firstAnswer(ds.query(queryRequest(targets, from, to)));
}

const field = (f: Frame, name: string): Field => {
  const x = f.fields.find((y) => y.name === name);
  assert.ok(x, `frame ${f.name ?? ''} has no field ${name}: ${f.fields.map((y) => y.name).join(', ')}`);
  return x;
};
const assetsOf = (frames: Frame[]): string[] =>
  [
    ...new Set(
      frames.flatMap((f) => {
        const labels = f.fields.find((x) => x.labels)?.labels;
        if (labels?.asset) return [`${labels.site}/${labels.asset}`];
        const site = f.fields.find((x) => x.name === 'site');
        const asset = f.fields.find((x) => x.name === 'asset');
        return asset ? asset.values.map((a, i) => `${String(site?.values[i])}/${String(a)}`) : [];
      }),
    ),
  ].sort();

// ---- data: 30 whole minutes of 1 s telemetry, each minute's values constant (exact means per minute) ----
const MIN = 60_000;
const T1 = Math.floor(Date.now() / MIN) * MIN;
const T0 = T1 - 30 * MIN;
const BASE: Record<string, number> = {
  'plant-a/cnc-01': 100,
  'plant-a/cnc-02': 200,
  'plant-a/cnc-03': 300,
  'plant-a/robot-01': 400,
  'water-north/flow-01': 500,
  'charging-hub/cp-01': 600,
};

before(async () => {
  for (const f of ['module.js', 'plugin.json'])
    assert.ok(existsSync(join(DIST, f)), `${f} missing: run npm run build -w grafana-datasource`);
  pluginJson = readPluginJson();
  ({ grafanaData, rxjs } = grafanaRuntime());

  const usersFile = join(dir, 'users.yaml');
  writeFileSync(
    usersFile,
    [
      'users:',
      '  - { login: head, role: head }',
      '  - { login: lead-plant-a, role: lead, scope: { sites: [plant-a] } }',
      '  - { login: worker-machining, role: worker, scope: { assets: [plant-a/cnc-01, plant-a/cnc-02] } }',
      '  - { login: citizen-1, role: citizen }',
      '',
    ].join('\n'),
  );
  stack = await startApiStack({
    assetsFile: DEMO_ASSETS,
    usersFile,
    serviceToken: SERVICE,
    jwtSecret: 'ds-test-jwt-secret-'.padEnd(48, 'j'),
  });
  const points: Point[] = [];
  const kinds: Record<string, [string, string, string]> = {
    'plant-a/cnc-01': ['machining', 'cnc', 'power'],
    'plant-a/cnc-02': ['machining', 'cnc', 'power'],
    'plant-a/cnc-03': ['machining', 'cnc', 'power'],
    'plant-a/robot-01': ['assembly', 'robot', 'power'],
    'water-north/flow-01': ['zone-1', 'flow', 'flow'],
    'charging-hub/cp-01': ['', 'charger', 'power'],
  };
  for (const [ref, base] of Object.entries(BASE)) {
    const [site, asset] = ref.split('/') as [string, string];
    const [line, kind, metric] = kinds[ref] as [string, string, string];
    const tags = { site, ...(line ? { line } : {}), asset, kind };
    for (let t = T0; t < T1; t += 1000) {
      const fields: Record<string, number> = { [metric]: base + Math.floor((t - T0) / MIN) };
      if (kind === 'cnc') fields.temperature = 40;
      points.push({ measurement: 'telemetry', tags, fields, ts: t });
    }
    points.push(
      {
        measurement: 'scores',
        tags,
        fields: { score: 0.2, health: 80, failure_risk: 0.1, anomaly: false }, // 0..100 as evtwin-score writes it
        ts: T1 - 5000,
      },
      {
        measurement: 'events',
        tags: { ...tags, type: 'power_spike', severity: 'warning' },
        fields: { message: `spike on ${asset}`, metric, observed: 9, expected: 5 },
        ts: T1 - 2 * MIN,
      },
      {
        measurement: 'recommendations',
        tags: { site, asset, type: 'idle_power' },
        fields: { message: `idle ${asset}`, kwh: 1.5, cost: 0.4, currency: 'EUR', window_start: T0 },
        ts: T1 - MIN,
      },
    );
    if (kind === 'charger')
      points.push(
        {
          measurement: 'sessions',
          tags: { site, asset },
          fields: { energy_kwh: 12.5, id_tag: 'TAG1', transaction_id: 'tx-1' },
          ts: T1 - 3 * MIN,
        },
        {
          measurement: 'charger',
          tags: { site, asset },
          fields: { status: 'Available', connector: 1 },
          ts: T1 - MIN,
        },
      );
  }
  await stack.write(points);
  // A citizen's grievance next to cp-01 (placed in charging-hub's scope).
  const posted = await fetch(`${stack.base}/grievances`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-Evtwin-Service-Token': SERVICE,
      'X-Grafana-User': 'citizen-1',
    },
    body: JSON.stringify({ location: { lat: 52.5201, lon: 13.4049 }, text: 'charger cable damaged' }),
  });
  assert.equal(posted.status, 201, await posted.text());
});

after(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('built datasource: health check through the data-proxy route', () => {
  it('reports API, InfluxDB, token and the Grafana user', async () => {
    grafanaUser = 'lead-plant-a';
    const r = await dataSource().testDatasource();
    assert.equal(r.status, 'success', r.message);
    assert.match(r.message, /EVTwin API \S+ reachable, InfluxDB OK/);
    assert.match(r.message, /you are "lead-plant-a" \(lead\)/);
  });
  it('says when the token is wrong, the user unknown, the user header off or the URL wrong', async () => {
    grafanaUser = 'head';
    const wrong = await dataSource({ token: 'not-the-token' }).testDatasource();
    assert.equal(wrong.status, 'error');
    assert.match(wrong.message, /refused the service token.*401.*service token/);
    grafanaUser = 'nobody';
    const unknown = await dataSource().testDatasource();
    assert.equal(unknown.status, 'error');
    assert.match(unknown.message, /not an EVTwin user.*403/);
    grafanaUser = undefined;
    const noUser = await dataSource().testDatasource();
    assert.equal(noUser.status, 'error');
    assert.match(noUser.message, /send_user_header = true/);
    grafanaUser = 'head';
    const closed = await freePort();
    const down = await dataSource({ url: `http://127.0.0.1:${closed}` }).testDatasource();
    assert.equal(down.status, 'error');
    assert.match(down.message, /cannot reach the EVTwin API \(502/);
  });
});

describe('built datasource: queries against the real API', () => {
  it('time series: exact per-minute means, units, labels, data links, variables', async () => {
    grafanaUser = 'head';
    dashboardVars.site = 'plant-a';
    dashboardVars.asset = ['cnc-01', 'cnc-02'];
    dashboardVars.metric = 'power';
    const res = await run(dataSource(), [
      {
        refId: 'A',
        queryType: 'timeseries',
        site: '$site',
        assets: ['$asset'],
        metrics: ['$metric', 'temperature'],
        aggregation: 'mean',
        interval: '1m',
      },
    ]);
    assert.deepEqual(res.errors ?? [], []);
    assert.deepEqual(assetsOf(res.data), ['plant-a/cnc-01', 'plant-a/cnc-02']);
    const power = res.data.filter((f) => f.fields[1]?.name === 'power');
    assert.equal(power.length, 2);
    for (const f of power) {
      const [t, v] = f.fields as [Field, Field];
      assert.equal(t.type, grafanaData.FieldType.time);
      assert.equal(v.type, grafanaData.FieldType.number);
      assert.equal(v.config.unit, 'kwatt');
      const base = BASE[`${v.labels?.site}/${v.labels?.asset}`] as number;
      assert.equal(t.values.length, 30);
      t.values.forEach((ts, k) => {
        assert.equal(ts, T0 + k * MIN);
        assert.equal(v.values[k], base + k);
      });
      assert.equal(v.labels?.line, 'machining');
      assert.match(
        v.config.links?.[0]?.url ?? '',
        new RegExp(`^/d/evtwin-device\\?var-site=plant-a&var-asset=${v.labels?.asset}&`),
      );
      assert.equal(f.meta?.custom?.rollup, 'raw');
    }
    const temp = res.data.find((f) => f.fields[1]?.name === 'temperature');
    assert.equal(temp?.fields[1]?.config.unit, 'celsius');
  });

  it('scopes by the Grafana user: a worker never gets an asset outside their scope', async () => {
    grafanaUser = 'worker-machining';
    const ds = dataSource();
    const res = await run(ds, [
      { refId: 'A', queryType: 'timeseries', metrics: ['power'], interval: '5m' },
      { refId: 'B', queryType: 'latest' },
      { refId: 'C', queryType: 'events' },
      { refId: 'D', queryType: 'assets' },
      { refId: 'E', queryType: 'timeseries', assets: ['plant-a/robot-01'], metrics: ['power'] },
    ]);
    assert.deepEqual(res.errors ?? [], []);
    for (const ref of ['A', 'B', 'C', 'D'])
      assert.deepEqual(
        assetsOf(res.data.filter((f) => f.refId === ref)),
        ['plant-a/cnc-01', 'plant-a/cnc-02'],
        `query ${ref}`,
      );
    assert.equal(res.data.filter((f) => f.refId === 'E').length, 0);
  });

  it('latest, events, annotations, assets, chargers, sessions, recommendations, grievances', async () => {
    grafanaUser = 'head';
    const res = await run(dataSource(), [
      { refId: 'latest', queryType: 'latest', assets: ['plant-a/cnc-01'] },
      { refId: 'events', queryType: 'events', site: 'water-north' },
      { refId: 'anno', queryType: 'annotations', assets: ['charging-hub/cp-01'] },
      { refId: 'assets', queryType: 'assets', site: 'plant-a', line: 'assembly', state: true },
      { refId: 'chargers', queryType: 'chargers' },
      { refId: 'sessions', queryType: 'sessions' },
      { refId: 'recs', queryType: 'recommendations', assets: ['water-north/flow-01'] },
      { refId: 'griev', queryType: 'grievances', status: 'open' },
    ]);
    assert.deepEqual(res.errors ?? [], []);
    const one = (refId: string): Frame => {
      const f = res.data.filter((x) => x.refId === refId);
      assert.equal(f.length, 1, refId);
      return f[0] as Frame;
    };
    const latest = one('latest');
    assert.deepEqual(field(latest, 'asset').values, ['cnc-01']);
    assert.equal(field(latest, 'power').values[0], (BASE['plant-a/cnc-01'] ?? NaN) + 29);
    assert.equal(field(latest, 'power').config.unit, 'kwatt');
    assert.equal(field(latest, 'health').values[0], 80);
    assert.equal(field(latest, 'time').type, 'time');
    assert.match(field(latest, 'asset').config.links?.[0]?.url ?? '', /\/d\/evtwin-device\?var-site=/);

    const events = one('events');
    assert.deepEqual(field(events, 'message').values, ['spike on flow-01']);
    assert.equal(field(events, 'observed').values[0], 9);

    const anno = one('anno');
    assert.deepEqual(anno.fields.map((f) => f.name).slice(0, 5), [
      'time',
      'timeEnd',
      'title',
      'text',
      'tags',
    ]);
    assert.equal(field(anno, 'time').values[0], T1 - 2 * MIN);
    assert.deepEqual(field(anno, 'tags').values[0], ['power_spike', 'warning', 'charging-hub', 'cp-01']);

    const assets = one('assets');
    assert.deepEqual(field(assets, 'asset').values, ['robot-01', 'robot-02']);
    assert.equal(field(assets, 'health').values[0], 80);
    // Floor positions of the asset model (provisioning/evtwin/assets.yaml: robots at y = 6).
    assert.deepEqual(
      ['x', 'y', 'z'].map((n) => field(assets, n).values),
      [
        [0, 4],
        [6, 6],
        [0, 0],
      ],
    );
    assert.equal(field(assets, 'health').config.unit, 'percent');

    const chargers = one('chargers');
    assert.deepEqual(field(chargers, 'asset').values, ['cp-01', 'cp-02', 'cp-03']);
    assert.equal(field(chargers, 'status.status').values[0], 'Available');
    assert.equal(field(chargers, 'power').values[0], (BASE['charging-hub/cp-01'] ?? NaN) + 29);

    const sessions = one('sessions');
    assert.equal(field(sessions, 'energy_kwh').values[0], 12.5);
    assert.equal(field(sessions, 'transaction_id').type, 'string');

    const recs = one('recs');
    assert.deepEqual(field(recs, 'message').values, ['idle flow-01']);
    assert.equal(field(recs, 'kwh').config.unit, 'kwatth');

    const griev = one('griev');
    assert.deepEqual(field(griev, 'text').values, ['charger cable damaged']);
    assert.deepEqual(field(griev, 'asset').values, ['cp-01']);
  });

  it('template variables: sites, lines, assets and metrics the user may see', async () => {
    grafanaUser = 'lead-plant-a';
    const ds = dataSource();
    const values = async (q: Record<string, unknown>): Promise<string[]> =>
      (
        await rxjs.firstValueFrom(
          ds.variables.query({ ...request([], T0, T1), targets: [{ refId: 'V', ...q }] }),
        )
      ).data.map((v) => v.value);
    dashboardVars.site = 'plant-a';
    dashboardVars.line = 'machining';
    assert.deepEqual(await values({ target: 'site' }), ['plant-a']);
    assert.deepEqual((await values({ target: 'line', site: '$site' })).sort(), ['assembly', 'machining']);
    assert.deepEqual(await values({ target: 'asset', site: '$site', line: '$line' }), [
      'cnc-01',
      'cnc-02',
      'cnc-03',
    ]);
    assert.deepEqual(await values({ target: 'asset', line: 'assembly', valueAs: 'ref' }), [
      'plant-a/robot-01',
      'plant-a/robot-02',
    ]);
    const metrics = await values({ target: 'metric', kind: 'cnc' });
    assert.ok(metrics.includes('power') && metrics.includes('temperature'), metrics.join());
  });

  it("clear errors: the API's 400 message per query, the other queries still answer", async () => {
    grafanaUser = 'head';
    const res = await run(dataSource(), [
      { refId: 'A', queryType: 'timeseries', metrics: ['power"; DROP MEASUREMENT telemetry; --'] },
      { refId: 'B', queryType: 'timeseries', metrics: [] },
    ]);
    assert.equal(res.state, 'Error');
    const a = res.errors?.find((e) => e.refId === 'A');
    assert.equal(a?.status, 400);
    assert.match(a?.message ?? '', /^EVTwin API 400: metrics\[0\]: .* is not a metric name/);
    assert.match(res.errors?.find((e) => e.refId === 'B')?.message ?? '', /choose at least one metric/);
    // A bad query is kept out of the request: a good one next to it still draws.
    const mixed = await run(dataSource(), [
      { refId: 'A', queryType: 'timeseries', metrics: [] },
      { refId: 'B', queryType: 'latest', assets: ['plant-a/cnc-03'] },
    ]);
    assert.equal(mixed.errors?.length, 1);
    assert.equal(mixed.data.length, 1);
    assert.equal(mixed.data[0]?.refId, 'B');
  });

  it('live mode: a new reading shows in the panel within 2 s', async () => {
    grafanaUser = 'head';
    const ds = dataSource();
    const now = Date.now();
    const out = ds.query(
      request(
        [
          {
            refId: 'A',
            queryType: 'timeseries',
            assets: ['plant-a/cnc-03'],
            metrics: ['power'],
            aggregation: 'last',
            interval: '1s',
            fill: 'none',
            live: true,
          },
        ],
        now - 5 * MIN,
        now,
        'now',
      ),
    );
    assert.ok('subscribe' in out, 'a live query returns an Observable');
    const marker = 4242.5;
    const seen: Response[] = [];
    let writeStarted = 0;
    let sub: { unsubscribe(): void } | undefined;
    // The interval never ends on its own: unsubscribe whatever happens, or the test process lives on.
    const latency = await new Promise<number>((done, fail) => {
      const timeout = setTimeout(() => fail(new Error('the new reading never showed')), 8000);
      sub = out.subscribe({
        next: (r) => {
          seen.push(r);
          if (seen.length === 1) {
            writeStarted = Date.now();
            stack
              .write([
                {
                  measurement: 'telemetry',
                  tags: { site: 'plant-a', line: 'machining', asset: 'cnc-03', kind: 'cnc' },
                  fields: { power: marker },
                  ts: writeStarted,
                },
              ])
              .catch(fail);
          } else if (r.data.some((f) => f.fields[1]?.values.includes(marker))) {
            clearTimeout(timeout);
            done(Date.now() - writeStarted);
          }
        },
        error: fail,
      });
    }).finally(() => sub?.unsubscribe());
    console.log(`live: new reading in the panel ${latency} ms after its write began`);
    assert.ok(latency < 2000, `${latency} ms`);
    assert.ok(seen.every((r) => r.state === 'Streaming' && r.key === seen[0]?.key));
  });

  it('the route sends the token only to the API base', () => {
    const route = pluginJson.routes.find((r) => r.path === 'api');
    assert.equal(route?.url, `{{ .JsonData.url }}/${API}`);
    assert.deepEqual(route?.headers, [
      { name: 'X-Evtwin-Service-Token', content: '{{ .SecureJsonData.serviceToken }}' },
    ]);
  });
});
