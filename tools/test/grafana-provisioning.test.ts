/**
 * provisioning/grafana/ checked without a Grafana server (none can run here): every file loads; the
 * generated files are what tools/src/grafana/generate.ts makes; every datasource uid, panel type and
 * dashboard link resolves; every evtwin target goes through the datasource's own toTwinQuery and the
 * API's parseQuery; every InfluxQL query of the dashboards and alert rules runs against a real influxd
 * with points written by the core's line protocol and returns data; each alert rule fires for the
 * series with the fault written and not for the healthy one.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  QUERY_TYPES,
  SCHEMA,
  TWIN_API_BASE,
  encodePoint,
  parseAssetModel,
  parseCommand,
  parseQuery,
  type Point,
} from 'node-red-contrib-evtwin';
import { parse as parseYaml } from 'yaml';
import { startInfluxd, type Service } from '../src/services';
import { provisionInfluxDB } from '../src/stack/influxProvision';
import { ALERT_RULES, type AlertRuleSpec } from '../src/grafana/alerts';
import { generatedFiles } from '../src/grafana/generate';
import {
  DASHBOARD_UIDS,
  EVTWIN_DS,
  FOLDERS,
  INFLUX_DS,
  PANEL_PLUGIN_ID,
  TEAM_ROLES,
  ACTIONS_ALLOW_POST_URL,
} from '../src/grafana/model';

const REPO = resolve(__dirname, '..', '..');
const DIR = join(REPO, 'provisioning', 'grafana');
type Json = Record<string, unknown>;
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}
const ALL = filesUnder(DIR);
const load = (file: string): unknown =>
  file.endsWith('.json') ? JSON.parse(readFileSync(file, 'utf8')) : parseYaml(readFileSync(file, 'utf8'));
const yamlOf = (rel: string): Json => load(join(DIR, rel)) as Json;

const dashboards = ALL.filter((f) => f.endsWith('.json')).map((f) => ({
  file: relative(DIR, f),
  json: load(f) as Json & { uid: string; panels: Json[]; templating: { list: Json[] } },
}));

/** Grafana's core panel plugins (public/app/plugins/panel) that we use or might. */
const CORE_PANELS = new Set([
  'timeseries',
  'stat',
  'table',
  'text',
  'gauge',
  'bargauge',
  'barchart',
  'piechart',
  'state-timeline',
  'status-history',
  'heatmap',
  'histogram',
  'geomap',
  'logs',
  'alertlist',
  'annolist',
  'dashlist',
  'nodeGraph',
  'canvas',
  'xychart',
  'trend',
  'row',
]);

/** Walk a JSON value, calling fn on every object. */
function walk(v: unknown, fn: (o: Json) => void): void {
  if (Array.isArray(v)) v.forEach((x) => walk(x, fn));
  else if (isObj(v)) {
    fn(v);
    Object.values(v).forEach((x) => walk(x, fn));
  }
}

interface Target extends Json {
  refId: string;
  datasource: { type: string; uid: string };
}
const targetsOf = (d: Json): Target[] => {
  const out: Target[] = [];
  for (const p of (d.panels as Json[]) ?? []) for (const t of (p.targets as Target[]) ?? []) out.push(t);
  return out;
};
const influxTargets = dashboards.flatMap((d) =>
  targetsOf(d.json)
    .filter((t) => t.datasource.uid === INFLUX_DS.uid)
    .map((t) => ({ dashboard: d.json.uid, refId: t.refId, query: String(t.query) })),
);

describe('Grafana provisioning files', () => {
  test('every file parses; YAML files are apiVersion 1; alerting/ holds only .yaml/.yml/.json', () => {
    assert.ok(ALL.length >= 11, `${ALL.length} files`);
    for (const f of ALL) {
      const v = load(f);
      assert.ok(isObj(v), `${relative(REPO, f)} is not an object`);
      if (!f.endsWith('.json')) assert.equal((v as Json).apiVersion, 1, relative(REPO, f));
    }
    // Grafana refuses to start alerting provisioning with any other file in that directory.
    for (const f of readdirSync(join(DIR, 'alerting'))) assert.match(f, /\.(ya?ml|json)$/);
  });

  test('the generated files are exactly what generate.ts makes (run it after editing dashboards.ts)', async () => {
    const want = await generatedFiles(
      readFileSync(join(REPO, 'provisioning/evtwin/assets.yaml'), 'utf8'),
      REPO,
    );
    for (const [rel, content] of want) assert.equal(readFileSync(join(DIR, rel), 'utf8'), content, rel);
    const generatedDashboards = [...want.keys()].filter((k) => k.endsWith('.json')).sort();
    assert.deepEqual(dashboards.map((d) => d.file).sort(), generatedDashboards, 'no stray dashboard files');
  });

  test('datasources: evtwin and evtwin-influxdb with fixed uids, secrets only from env', () => {
    const ds = (yamlOf('datasources/evtwin.yaml').datasources as Json[]) ?? [];
    const byUid = new Map(ds.map((d) => [d.uid, d]));
    const evtwin = byUid.get(EVTWIN_DS.uid) as Json;
    assert.equal(evtwin.type, EVTWIN_DS.type);
    assert.deepEqual(evtwin.secureJsonData, { serviceToken: '${EVTWIN_SERVICE_TOKEN}' });
    const influx = byUid.get(INFLUX_DS.uid) as Json;
    assert.equal(influx.type, INFLUX_DS.type);
    assert.equal((influx.jsonData as Json).dbName, 'evtwin');
    assert.equal((influx.jsonData as Json).version, 'InfluxQL');
    assert.match(String((influx.secureJsonData as Json).password), /^\$\{[A-Z_]+\}$/);
    // The datasource's plugin.json route sends the token under the header name the API reads.
    const plugin = JSON.parse(readFileSync(join(REPO, 'grafana-datasource/src/plugin.json'), 'utf8')) as Json;
    const route = (plugin.routes as Json[])[0] as { headers: Json[] };
    assert.deepEqual(route.headers[0], {
      name: 'X-Evtwin-Service-Token',
      content: '{{ .SecureJsonData.serviceToken }}',
    });
  });

  test('dashboard providers: one per role folder, each path a directory of dashboards', () => {
    const providers = yamlOf('dashboards/providers.yaml').providers as Json[];
    assert.deepEqual(
      providers.map((p) => p.folderUid),
      FOLDERS.map((f) => f.uid),
    );
    for (const p of providers) {
      const path = String((p.options as Json).path);
      const dir = path.replace('${EVTWIN_GRAFANA_DASHBOARDS}', join(DIR, 'dashboards'));
      assert.ok(
        readdirSync(dir).some((f) => f.endsWith('.json')),
        `${path}: no dashboard`,
      );
    }
    assert.deepEqual(dashboards.map((d) => d.json.uid).sort(), Object.values(DASHBOARD_UIDS).sort());
  });

  test('every datasource uid referenced exists; every panel type is core or ours', () => {
    const uids = new Set(((yamlOf('datasources/evtwin.yaml').datasources as Json[]) ?? []).map((d) => d.uid));
    const refs: string[] = [];
    const collect = (o: Json): void => {
      if (isObj(o.datasource) && typeof o.datasource.uid === 'string') refs.push(o.datasource.uid);
      if (typeof o.datasourceUid === 'string') refs.push(o.datasourceUid);
    };
    for (const d of dashboards) walk(d.json, collect);
    walk(yamlOf('alerting/rules.yaml'), collect);
    assert.ok(refs.length > 40, `${refs.length} references`);
    for (const uid of refs) assert.ok(uids.has(uid) || uid === '__expr__', `unknown datasource uid ${uid}`);
    for (const d of dashboards)
      for (const p of d.json.panels)
        assert.ok(
          CORE_PANELS.has(String(p.type)) || p.type === PANEL_PLUGIN_ID,
          `${d.file}: panel type ${String(p.type)}`,
        );
    assert.ok(dashboards.some((d) => d.json.panels.some((p) => p.type === PANEL_PLUGIN_ID)));
  });

  test('every link to a dashboard names one that exists; asset tables link to the Device dashboard', () => {
    const uids = new Set(dashboards.map((d) => d.json.uid));
    let links = 0;
    for (const d of dashboards)
      walk(d.json, (o) => {
        for (const v of Object.values(o))
          if (typeof v === 'string')
            for (const m of v.matchAll(/\/d\/([A-Za-z0-9_-]+)/g)) {
              links++;
              assert.ok(uids.has(m[1] as string), `${d.file}: link to missing dashboard ${m[1]}`);
            }
      });
    assert.ok(links >= 8, `${links} links`);
    const device = dashboards.find((d) => d.json.uid === DASHBOARD_UIDS.device)?.json;
    const vars = (device?.templating.list ?? []).map((v) => v.name);
    assert.ok(
      vars.includes('asset') && vars.includes('site'),
      'the Device dashboard takes var-site and var-asset',
    );
  });

  test('evtwin targets and variables go through the datasource’s toTwinQuery and the API’s parseQuery', async () => {
    // The datasource's request code (pure, type-only imports), loaded at run time: the tools package
    // cannot compile the plugin's sources (they import @grafana/data).
    const client = (await import(join(REPO, 'grafana-datasource/src/api/client.ts'))) as {
      toTwinQuery(
        q: Json,
        ctx: {
          range: { from: number; to: number };
          intervalMs?: number;
          interpolate: (t: string) => string[];
        },
      ): unknown;
    };
    const values: Record<string, string[]> = {
      site: ['plant-a'],
      line: ['machining'],
      asset: ['cnc-01', 'cnc-02'],
      metric: ['power', 'temperature'],
    };
    const interpolate = (text: string): string[] => {
      const m = /^\$\{?([a-z]+)\}?$/.exec(text);
      if (m) return values[m[1] as string] ?? assert.fail(`unknown variable ${text}`);
      assert.ok(!text.includes('$'), `variable inside text: ${text}`);
      return [text];
    };
    let n = 0;
    for (const d of dashboards) {
      const targets = targetsOf(d.json).filter((t) => t.datasource.uid === EVTWIN_DS.uid);
      for (const a of (d.json.annotations as { list: Json[] }).list) targets.push(a.target as Target);
      for (const t of targets) {
        assert.ok((QUERY_TYPES as readonly string[]).includes(String(t.queryType)), `${d.file} ${t.refId}`);
        const q = client.toTwinQuery(t, { range: { from: 0, to: 3_600_000 }, intervalMs: 1000, interpolate });
        assert.doesNotThrow(() => parseQuery(q, 0), `${d.file} ${t.refId}: ${JSON.stringify(q)}`);
        n++;
      }
      for (const v of d.json.templating.list) {
        assert.equal((v.datasource as Json).uid, EVTWIN_DS.uid);
        assert.ok(
          ['site', 'line', 'asset', 'metric'].includes(String((v.query as Json).target)),
          `${d.file} var ${String(v.name)}`,
        );
      }
    }
    assert.ok(n >= 20, `${n} targets`);
    // And the check fails for a target the API would refuse.
    const bad = client.toTwinQuery(
      { refId: 'X', queryType: 'timeseries', metrics: ['no such metric!'] },
      { range: { from: 0, to: 1 }, interpolate },
    );
    assert.throws(() => parseQuery(bad, 0));
  });

  test('visualization actions: POST through the evtwin route, fields the panel’s frame has, bodies parseCommand accepts', () => {
    // Fields of the datasource's frames (grafana-datasource/src/api/frames.ts): chargers rows carry site and
    // asset; sessions rows also the fields of measurement `sessions`.
    const frameFields: Record<string, string[]> = {
      chargers: ['site', 'asset', 'name'],
      sessions: ['site', 'asset', ...SCHEMA.sessions.tags, ...Object.keys(SCHEMA.sessions.fields)],
    };
    const plugin = JSON.parse(readFileSync(join(REPO, 'grafana-datasource/src/plugin.json'), 'utf8')) as {
      routes: { path: string; method?: string }[];
    };
    let n = 0;
    for (const d of dashboards)
      for (const p of d.json.panels) {
        const overrides = ((p.fieldConfig as Json | undefined)?.overrides as Json[] | undefined) ?? [];
        const actions = overrides.flatMap((o) =>
          (o.properties as { id: string; value: unknown }[])
            .filter((x) => x.id === 'actions')
            .flatMap((x) => x.value as Json[]),
        );
        const queryType = String(((p.targets as Json[] | undefined) ?? [])[0]?.queryType);
        for (const a of actions) {
          const where = `${d.file} "${String(p.title)}" "${String(a.title)}"`;
          const f = a.fetch as { method: string; url: string; body: string };
          assert.equal(a.type, 'fetch', where);
          assert.equal(f.method, 'POST', where);
          assert.ok(String(a.confirmation).length > 10, `${where}: confirmation`);
          const m = /^\/api\/datasources\/proxy\/uid\/([^/]+)\/([^/]+)\/(.*)$/.exec(f.url);
          assert.ok(m && m[1] === EVTWIN_DS.uid, `${where}: ${f.url}`);
          assert.ok(
            plugin.routes.some((r) => r.path === m[2] && (r.method ?? 'POST') === 'POST'),
            `${where}: route`,
          );
          const row: Record<string, string> = {};
          for (const name of frameFields[queryType] ?? assert.fail(`${where}: actions on ${queryType}`))
            row[name] = name === 'site' ? 'charging-hub' : name === 'asset' ? 'cp-01' : `v-${name}`;
          const fill = (s: string) =>
            s.replace(
              /\$\{__data\.fields\.([a-z_]+)\}/g,
              (_, x: string) => row[x] ?? assert.fail(`${where}: ${x}`),
            );
          assert.match(fill(m[3] as string), /^chargers\/charging-hub\/cp-01\/commands$/, where);
          // Grafana lets an action POST to its own API only when the path matches actions_allow_post_url.
          const glob = new RegExp(`^${ACTIONS_ALLOW_POST_URL.split('*').map(escapeRe).join('.*')}$`);
          assert.match(fill(f.url), glob, `${where}: allowed by actions_allow_post_url`);
          fill(String(a.confirmation));
          assert.doesNotThrow(() => parseCommand(JSON.parse(fill(f.body)), 'charging-hub/cp-01'), where);
          n++;
        }
      }
    assert.equal(n, 5, 'five actions (four on chargers, stop on sessions)');
    assert.throws(() => parseCommand({ command: 'stop' }, 'charging-hub/cp-01'), 'the check can fail');
  });

  test('alerting: rules labelled by role and grouped by site; contact point posts to the alert intake; policies route to it', () => {
    const rules = ((yamlOf('alerting/rules.yaml').groups as Json[])[0] as Json).rules as Json[];
    assert.deepEqual(
      rules.map((r) => r.title),
      ['Failure risk high', 'Charger faulted', 'Sensor offline', 'Bounds breached', 'Anomaly burst'],
    );
    for (const r of rules) {
      assert.ok((TEAM_ROLES as readonly string[]).includes(String((r.labels as Json).role)), String(r.title));
      const a = ((r.data as Json[])[0] as Json).model as Json;
      assert.match(String(a.query), /GROUP BY .*"site"/, `${String(r.title)}: site label from the series`);
      assert.equal(r.condition, 'C');
    }
    const cp = (yamlOf('alerting/contact-points.yaml').contactPoints as Json[])[0] as Json;
    const recv = (cp.receivers as Json[])[0] as Json;
    const settings = recv.settings as Json;
    assert.equal(recv.type, 'webhook');
    assert.equal(settings.url, `\${EVTWIN_NODE_RED_URL}${TWIN_API_BASE}/alerts`);
    assert.equal(settings.authorization_scheme, 'Bearer');
    assert.equal(settings.authorization_credentials, '${EVTWIN_SERVICE_TOKEN}');
    const sites = new Set(
      parseAssetModel(readFileSync(join(REPO, 'provisioning/evtwin/assets.yaml'), 'utf8')).sites.map(
        (s) => s.id,
      ),
    );
    let routes = 0;
    walk(yamlOf('alerting/policies.yaml'), (o) => {
      if (typeof o.receiver !== 'string') return;
      routes++;
      assert.equal(o.receiver, cp.name);
      for (const m of (o.object_matchers as string[][]) ?? [])
        if (m[0] === 'site') assert.ok(sites.has(m[2] as string), `policy for unknown site ${m[2]}`);
    });
    assert.equal(routes, 3 + 2 * sites.size);
  });
});

// ---- against a real influxd ----

const MIN = 60_000;
const esc = (s: string): string => s.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');
/** What Grafana sends for our variables (regex-escaped values) and macros. */
function substitute(q: string, rangeS = 6 * 3600): string {
  return q
    .replace(/\$timeFilter/g, `time > now() - ${rangeS}s`)
    .replace(/\$__interval/g, '1m')
    .replace(/\$site\b/g, esc('plant-a'))
    .replace(/\$line\b/g, esc('machining'))
    .replace(/\$asset\b/g, esc('cnc-01'));
}

interface Series {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}
async function run(url: string, q: string): Promise<Series[]> {
  const u = new URL('/query', url);
  u.searchParams.set('db', 'evtwin');
  u.searchParams.set('q', q);
  u.searchParams.set('epoch', 'ms');
  const body = (await (await fetch(u)).json()) as {
    error?: string;
    results?: { error?: string; series?: Series[] }[];
  };
  const err = body.error ?? body.results?.find((r) => r.error)?.error;
  if (err) throw new Error(`${err}\n  in: ${q}`);
  return body.results?.[0]?.series ?? [];
}

/** Grafana's B (reduce, dropping nulls) and C (threshold) over A's series: the label sets that fire. */
function firing(rule: AlertRuleSpec, series: Series[]): string[] {
  const out: string[] = [];
  for (const s of series) {
    const vals = s.values.map((v) => v[1]).filter((v): v is number => typeof v === 'number');
    if (vals.length === 0) continue;
    const reduced =
      rule.reducer === 'last'
        ? (vals[vals.length - 1] as number)
        : rule.reducer === 'max'
          ? Math.max(...vals)
          : rule.reducer === 'min'
            ? Math.min(...vals)
            : vals.reduce((a, b) => a + b, 0);
    const fires =
      rule.threshold.type === 'gt' ? reduced > rule.threshold.value : reduced < rule.threshold.value;
    if (fires) out.push(Object.values(s.tags ?? {}).join('/'));
  }
  return out.sort();
}

describe('InfluxQL of dashboards and alert rules against a real influxd', () => {
  let influxd: Service;
  const now = Date.now();
  before(async () => {
    influxd = await startInfluxd();
    await provisionInfluxDB(influxd.url, join(REPO, 'provisioning/influxdb/evtwin.yaml'));
    const points: Point[] = [];
    const t = (minutesAgo: number, i = 0): number => now - minutesAgo * MIN - i * 1000;
    // Telemetry: cnc-01 reports all along (every 20 s for 40 minutes); cnc-02 stopped 10 minutes ago.
    for (let m = 40; m >= 0; m--)
      for (let i = 0; i < 3; i++) {
        const base = { site: 'plant-a', line: 'machining', kind: 'cnc' };
        points.push({
          measurement: 'telemetry',
          tags: { ...base, asset: 'cnc-01' },
          fields: { power: 5 + i, temperature: 60, state: 2, seq: m * 3 + i },
          ts: t(m, i * 20),
        });
        if (m >= 10)
          points.push({
            measurement: 'telemetry',
            tags: { ...base, asset: 'cnc-02' },
            fields: { power: 4, temperature: 55, state: 2, seq: m * 3 + i },
            ts: t(m, i * 20),
          });
      }
    points.push({
      measurement: 'telemetry',
      tags: { site: 'water-north', line: 'zone-1', asset: 'flow-01', kind: 'flow' },
      fields: { flow: 12.5, seq: 1 },
      ts: t(1),
    });
    points.push({
      measurement: 'telemetry',
      tags: { site: 'water-north', line: 'zone-1', asset: 'pres-01', kind: 'pressure' },
      fields: { pressure: 3, seq: 1 },
      ts: t(2),
    });
    // Scores: cnc-03 at high failure risk; robot-01 with a burst of 6 anomalous readings, robot-02 with 2.
    for (let i = 0; i < 4; i++) {
      const sc = (asset: string, line: string, kind: string, risk: number, anomaly: boolean): Point => ({
        measurement: 'scores',
        tags: { site: 'plant-a', line, asset, kind },
        fields: { score: anomaly ? 0.95 : 0.1, health: 100 - risk * 100, failure_risk: risk, anomaly },
        ts: t(i + 1),
      });
      points.push(sc('cnc-01', 'machining', 'cnc', 0.1, false), sc('cnc-03', 'machining', 'cnc', 0.9, false));
    }
    // Anomalous readings in one minute: six from robot-01, two from robot-02.
    const robots: [string, number, Point['fields']][] = [
      ['robot-01', 6, { score: 0.97, health: 60, failure_risk: 0.3, anomaly: true }],
      ['robot-02', 2, { score: 0.9, health: 80, failure_risk: 0.1, anomaly: true }],
    ];
    for (const [asset, n, fields] of robots)
      for (let i = 0; i < n; i++)
        points.push({
          measurement: 'scores',
          tags: { site: 'plant-a', line: 'assembly', asset, kind: 'robot' },
          fields,
          ts: t(1, i),
        });
    // Events: a bounds breach at pres-01, a power spike at cnc-01.
    points.push({
      measurement: 'events',
      tags: {
        site: 'water-north',
        line: 'zone-1',
        asset: 'pres-01',
        kind: 'pressure',
        type: 'bounds',
        severity: 'warning',
      },
      fields: { message: 'pressure 7 above 6', metric: 'pressure', observed: 7, expected: 6 },
      ts: t(1),
    });
    points.push({
      measurement: 'events',
      tags: {
        site: 'plant-a',
        line: 'machining',
        asset: 'cnc-01',
        kind: 'cnc',
        type: 'power_spike',
        severity: 'critical',
      },
      fields: { message: 'spike', metric: 'power', observed: 30, expected: 5 },
      ts: t(2),
    });
    points.push({
      measurement: 'recommendations',
      tags: { site: 'plant-a', asset: 'cnc-01', type: 'idle_power_waste' },
      fields: { message: 'switch off when idle', kwh: 3.5, cost: 1.2, currency: 'EUR', window_start: t(60) },
      ts: t(1),
    });
    // Chargers: cp-02 faulted, cp-01 charging; one ended session.
    points.push({
      measurement: 'charger',
      tags: { site: 'charging-hub', cp: 'cp-01', status: 'charging' },
      fields: { online: true, event: 'status', connector: 1, power_w: 11000 },
      ts: t(1),
    });
    points.push({
      measurement: 'charger',
      tags: { site: 'charging-hub', cp: 'cp-02', status: 'faulted' },
      fields: { online: true, event: 'status', connector: 1, error_code: 'GroundFailure' },
      ts: t(2),
    });
    points.push({
      measurement: 'sessions',
      tags: { site: 'charging-hub', cp: 'cp-01', state: 'ended' },
      fields: { transaction_id: '7', connector: 1, energy_wh: 12000, duration_s: 3600 },
      ts: t(3),
    });
    const res = await fetch(`${influxd.url}/write?db=evtwin&precision=ms`, {
      method: 'POST',
      body: points.map((p) => encodePoint(p)).join('\n'),
    });
    assert.equal(res.status, 204, await res.text());
  });
  after(async () => {
    await influxd?.stop();
  });

  test('every InfluxQL query of the dashboards runs and returns data', async () => {
    assert.ok(influxTargets.length >= 15, `${influxTargets.length} queries`);
    // Site-specific panels run with their own site.
    const siteFor: Record<string, string> = {
      [DASHBOARD_UIDS.water]: 'water-north',
      [DASHBOARD_UIDS.charging]: 'charging-hub',
    };
    for (const t of influxTargets) {
      let q = substitute(t.query);
      const site = siteFor[t.dashboard];
      if (site) q = q.replace(/\^plant-a\$/g, `^${esc(site)}$`);
      const series = await run(influxd.url, q);
      const values = series.flatMap((s) => s.values).filter((v) => v.slice(1).some((x) => x !== null));
      assert.ok(values.length > 0, `${t.dashboard} ${t.refId}: no data from ${q}`);
    }
  });

  test('a misspelt measurement, field or tag returns no data, and bad syntax throws (the checks can fail)', async () => {
    for (const q of [
      'SELECT mean("failure_risk") FROM "score" WHERE $timeFilter',
      'SELECT mean("failure-risk") FROM "scores" WHERE $timeFilter',
      'SELECT mean("failure_risk") FROM "scores" WHERE $timeFilter AND "sites" =~ /^$site$/',
    ])
      assert.equal((await run(influxd.url, substitute(q))).length, 0, q);
    await assert.rejects(
      run(
        influxd.url,
        substitute('SELECT mean("health") FROM "scores" WHERE $timeFilter GROUP BY time($__interval) fil(0)'),
      ),
    );
  });

  test('each alert rule fires for the fault written and only for it', async () => {
    const want: Record<string, string[]> = {
      'evtwin-failure-risk-high': ['cnc-03/plant-a'],
      'evtwin-charger-faulted': ['cp-02/charging-hub'],
      'evtwin-sensor-offline': ['cnc-02/plant-a'],
      'evtwin-bounds-breached': ['pres-01/water-north'],
      'evtwin-anomaly-burst': ['robot-01/plant-a'],
    };
    for (const rule of ALERT_RULES) {
      const series = await run(influxd.url, substitute(rule.query, rule.rangeS));
      assert.ok(series.length > 0, `${rule.uid}: no series`);
      for (const s of series) assert.ok(s.tags?.site, `${rule.uid}: series without a site label`);
      assert.deepEqual(firing(rule, series), want[rule.uid], rule.uid);
    }
  });
});
