/**
 * Issue 7's end-to-end path: simulator readings scored by the core Scorer in the real API stack
 * (startApiStack: Node-RED + evtwin-api + influxd), queried through the BUILT datasource
 * (grafana-datasource/dist/module.js, loaded as in datasource-api.test.ts with a stand-in for Grafana's
 * data proxy), its frames serialised with @grafana/data's toDataFrameDTO and rendered by the BUILT panel
 * in headless Chromium (the harness of panel-render.test.ts). Screenshots go to test-artifacts/.
 *
 * Needs `npm run build -w node-red-nodes`, `-w grafana-datasource` and `-w grafana-panel` first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runInThisContext } from 'node:vm';
import type {} from '../../grafana-panel/harness/api';
import type { HarnessFrame } from '../../grafana-panel/harness/api';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Asset } from 'node-red-contrib-evtwin';
import { DEMO_ASSETS, startApiStack, type ApiStack } from '../src/bench/api';
import { loadAssets } from '../src/sim';
import { type Harness, startHarness } from '../src/plugins/harness';
import { simulateIntoInflux } from '../src/plugins/panelData';
import { sampleBeacons } from '../src/plugins/pixels';

const REPO = resolve(__dirname, '..', '..');
const ARTIFACTS = join(REPO, 'test-artifacts');
const DS_DIR = join(REPO, 'grafana-datasource');
const DS_DIST = join(DS_DIR, 'dist');
const PANEL_MODULE = join(REPO, 'grafana-panel', 'dist', 'module.js');
const dsRequire = createRequire(join(DS_DIR, 'package.json'));
const SERVICE = 'panel-ds-service-token-'.padEnd(40, 'x');
const UID = 'evtwin-panel-test';
// As panel-render.test.ts (NOTES.md: Chromium flags on this machine).
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

interface Observable<T> {
  subscribe(o: { next?: (v: T) => void; error?: (e: unknown) => void; complete?: () => void }): {
    unsubscribe(): void;
  };
}
interface Frame {
  refId?: string;
  fields: { name: string; values: unknown[] }[];
}
interface Response {
  data: Frame[];
  errors?: { message?: string }[];
}
interface DataSourceLike {
  query(request: unknown): Observable<Response> | Promise<Response>;
}
interface GrafanaData {
  dateTime(ms: number): unknown;
  toDataFrameDTO(frame: unknown): HarnessFrame;
}
interface Rxjs {
  firstValueFrom<T>(o: Observable<T>): Promise<T>;
  Observable: new <T>(f: unknown) => Observable<T>;
}
interface ProxyOptions {
  url: string;
  method?: string;
  data?: unknown;
  headers?: Record<string, string>;
}
interface Route {
  path: string;
  url: string;
  headers?: { name: string; content: string }[];
}

type RGB = [number, number, number];

/** Grafana's data proxy for the plugin's `api` route (see datasource-api.test.ts for the full stand-in). */
function dataSource(gd: GrafanaData, rx: Rxjs, stack: ApiStack): DataSourceLike {
  const pluginJson = JSON.parse(readFileSync(join(DS_DIST, 'plugin.json'), 'utf8')) as {
    id: string;
    routes: Route[];
  };
  const jsonData: Record<string, string> = { url: stack.red.url.replace(/\/$/, '') };
  const secure: Record<string, string> = { serviceToken: SERVICE };
  const render = (t: string): string =>
    t.replace(/\{\{\s*\.(JsonData|SecureJsonData)\.(\w+)\s*\}\}/g, (_m, w: string, k: string) =>
      w === 'JsonData' ? (jsonData[k] ?? '') : (secure[k] ?? ''),
    );
  const backendSrv = {
    fetch: (o: ProxyOptions): Observable<unknown> =>
      new rx.Observable<unknown>(
        (sub: { next(v: unknown): void; error(e: unknown): void; complete(): void }) => {
          const proxyPath = o.url.slice(`/api/datasources/proxy/uid/${UID}/`.length);
          const route = pluginJson.routes.find((r) => proxyPath.startsWith(r.path));
          if (!route) {
            sub.error({ status: 404, data: { message: 'no route' } });
            return;
          }
          const headers: Record<string, string> = { ...o.headers, 'X-Grafana-User': 'head' };
          for (const h of route.headers ?? []) headers[h.name] = render(h.content);
          if (o.data !== undefined) headers['Content-Type'] = 'application/json';
          fetch(render(route.url) + proxyPath.slice(route.path.length), {
            method: o.method ?? 'GET',
            headers,
            ...(o.data !== undefined ? { body: JSON.stringify(o.data) } : {}),
          })
            .then(async (res) => {
              const data: unknown = JSON.parse(await res.text());
              if (res.ok) {
                sub.next({ status: res.status, statusText: res.statusText, ok: true, data, config: o });
                sub.complete();
              } else sub.error({ status: res.status, statusText: res.statusText, data, config: o });
            })
            .catch((e: unknown) => sub.error(e));
        },
      ),
  };
  const externals: Record<string, unknown> = {
    '@grafana/data': gd,
    '@grafana/runtime': {
      getBackendSrv: () => backendSrv,
      getTemplateSrv: () => ({ getVariables: () => [], replace: (s?: string) => s ?? '' }),
    },
    '@grafana/ui': new Proxy({}, { get: () => () => null }),
    react: dsRequire('react'),
    rxjs: rx,
    module: { uri: `/public/plugins/${pluginJson.id}/module.js` },
  };
  let Cls: (new (settings: unknown) => DataSourceLike) | undefined;
  const define = (
    deps: string[],
    factory: (...m: unknown[]) => { plugin: { DataSourceClass: typeof Cls } },
  ) => {
    Cls = factory(...deps.map((d) => externals[d])).plugin.DataSourceClass;
  };
  const code = readFileSync(join(DS_DIST, 'module.js'), 'utf8');
  (runInThisContext(`(function (define) {${code}\n})`) as (d: typeof define) => void)(define);
  assert.ok(Cls, 'module.js defined no DataSourceClass');
  return new Cls({
    id: 1,
    uid: UID,
    type: pluginJson.id,
    name: 'EVTwin',
    access: 'proxy',
    url: `/api/datasources/proxy/uid/${UID}`,
    jsonData,
    meta: pluginJson,
    readOnly: false,
  });
}

const col = (f: HarnessFrame, n: string): unknown[] => f.fields.find((x) => x.name === n)?.values ?? [];

/** The oracle, from the datasource's own frame: health thresholds 50/80, state 3 fault, 0 off. */
function expected(frame: HarnessFrame, palette: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  col(frame, 'asset').forEach((a, i) => {
    const h = col(frame, 'health')[i];
    const s = col(frame, 'state')[i];
    if (typeof h !== 'number') return;
    const name = s === 3 ? 'red' : s === 0 ? 'gray' : h < 50 ? 'red' : h < 80 ? 'orange' : 'green';
    out[`${String(col(frame, 'site')[i])}/${String(a)}`] = palette[name] ?? '';
  });
  return out;
}

describe('panel rendered from the built datasource against the real API', { timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'evtwin-panel-ds-'));
  let stack: ApiStack;
  let harness: Harness;
  let browser: Browser;
  let page: Page;
  let assets: Asset[];
  const frames: Record<string, HarnessFrame[]> = {};

  before(async () => {
    for (const f of [join(DS_DIST, 'module.js'), PANEL_MODULE])
      assert.ok(existsSync(f), `${f} missing: build the plugins first`);
    mkdirSync(ARTIFACTS, { recursive: true });
    // @grafana/data expects a browser: jsdom's window, as in datasource-api.test.ts.
    const { JSDOM } = dsRequire('jsdom') as {
      JSDOM: new (html: string, o: { url: string }) => { window: Record<string, unknown> };
    };
    const { window: dom } = new JSDOM('<!doctype html><html><body></body></html>', {
      url: 'http://grafana.local/',
    });
    const g = globalThis as Record<string, unknown>;
    for (const k of [
      'window',
      'document',
      'localStorage',
      'HTMLElement',
      'Element',
      'Node',
      'getComputedStyle',
    ])
      if (g[k] === undefined) g[k] = dom[k];
    const gd = dsRequire('@grafana/data') as GrafanaData;
    const rx = dsRequire('rxjs') as Rxjs;

    const usersFile = join(dir, 'users.yaml');
    writeFileSync(usersFile, 'users:\n  - { login: head, role: head }\n');
    stack = await startApiStack({
      assetsFile: DEMO_ASSETS,
      usersFile,
      serviceToken: SERVICE,
      jwtSecret: 'panel-ds-jwt-secret-'.padEnd(48, 'j'),
    });
    assets = loadAssets(DEMO_ASSETS);
    // Five simulated minutes ending now, cnc-02 overheating: a mix of status colours.
    await simulateIntoInflux(stack.influx.url, assets, {
      seconds: 300,
      faults: [{ type: 'high_temperature', asset: 'cnc-02', startS: 60, durationS: 1000 }],
    });

    const ds = dataSource(gd, rx, stack);
    const now = Date.now();
    const request = (targets: unknown[]) => ({
      requestId: 'panel',
      app: 'dashboard',
      timezone: 'utc',
      interval: '1s',
      intervalMs: 1000,
      maxDataPoints: 1000,
      range: { from: gd.dateTime(now - 3_600_000), to: gd.dateTime(now), raw: { from: 'now-1h', to: 'now' } },
      scopedVars: {},
      targets,
      startTime: now,
    });
    for (const [key, site] of [
      ['plant', 'plant-a'],
      ['all', ''],
    ] as const) {
      const out = ds.query(
        request([
          { refId: 'assets', queryType: 'assets', state: true, ...(site ? { site } : {}) },
          { refId: 'latest', queryType: 'latest', ...(site ? { site } : {}) },
        ]),
      );
      const res = 'subscribe' in out ? await rx.firstValueFrom(out) : await out;
      assert.deepEqual(res.errors ?? [], []);
      // What crosses into the page: plain DTOs, as a dashboard's JSON would hold them.
      frames[key] = JSON.parse(JSON.stringify(res.data.map((f) => gd.toDataFrameDTO(f)))) as HarnessFrame[];
    }

    harness = await startHarness();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
    await page.addInitScript('window.__name = (f) => f');
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.route('**/*', (route) =>
      route.request().url().startsWith(harness.url) ? route.continue() : route.abort(),
    );
    await page.goto(harness.url);
    await page.evaluate(() => window.evtwin.load('evtwin-twin-panel'));
    assert.deepEqual(errors, []);
  });

  after(async () => {
    await browser?.close();
    await harness?.close();
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const render = async (f: HarnessFrame[], options: Record<string, unknown>): Promise<void> => {
    await page.evaluate(() => window.evtwin.unmount());
    await page.evaluate(
      ({ f, options }) =>
        window.evtwin.render({ frames: f, options, theme: 'dark', width: 960, height: 560 }),
      { f, options },
    );
    await page.waitForSelector('#panel [data-rendered="1"]');
    await page.waitForTimeout(300);
  };

  it('draws the 3D floor with each plant-a asset in the colour its API state says', async () => {
    const plant = frames.plant ?? [];
    const assetFrame = plant.find((f) => f.refId === 'assets');
    assert.ok(assetFrame);
    const palette = await page.evaluate(() => window.evtwin.colors('dark'));
    const wanted = expected(assetFrame, palette);
    console.log('api state', JSON.stringify(['asset', 'health', 'state'].map((n) => col(assetFrame, n))));
    assert.equal(Object.keys(wanted).length, 5, `scored plant-a assets: ${Object.keys(wanted).join()}`);
    await render(plant, { mode: '3d' });
    await page.locator('#panel').screenshot({ path: join(ARTIFACTS, 'panel-3d-from-api.png') });
    const { samples, drawn } = await sampleBeacons(page, wanted);
    assert.ok(drawn > 0.15, `canvas drawn: ${(drawn * 100).toFixed(0)}% differ from the background`);
    assert.deepEqual(samples.map((s) => s.key).sort(), Object.keys(wanted).sort());
    for (const s of samples)
      assert.ok(
        s.distance < 40,
        `${s.key}: wanted ${wanted[s.key]}, nearest rgb(${(s.best as RGB).join(',')})`,
      );
  });

  it('puts a marker or a cluster on the map for every located asset', async () => {
    const located = assets.filter((a) => a.location).map((a) => `${a.site}/${a.id}`);
    await render(frames.all ?? [], {
      mode: 'map',
      tileUrl: `${harness.url}/tiles/{z}/{x}/{y}.svg`,
      tileAttribution: 'test tiles',
    });
    await page.locator('#panel').screenshot({ path: join(ARTIFACTS, 'panel-map-from-api.png') });
    const counted = await page.evaluate(() => {
      const singles = document.querySelectorAll('#panel .leaflet-marker-icon [data-asset]').length;
      const clusters = Array.from(
        document.querySelectorAll<HTMLElement>('#panel .leaflet-marker-icon [data-count]'),
      );
      return { singles, inClusters: clusters.reduce((n, c) => n + Number(c.dataset.count), 0) };
    });
    assert.ok(located.length > 0);
    assert.equal(counted.singles + counted.inClusters, located.length, JSON.stringify(counted));
  });
});
