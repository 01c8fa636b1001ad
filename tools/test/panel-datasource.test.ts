/**
 * Issue 7's end-to-end path: simulator readings scored by the core Scorer in the real API stack
 * (startApiStack: Node-RED + evtwin-api + influxd), queried through the BUILT datasource
 * (grafana-datasource/dist/module.js, loaded by tools/src/plugins/datasourceHost.ts with its stand-in for
 * Grafana's data proxy, as in datasource-api.test.ts), its frames serialised with @grafana/data's
 * toDataFrameDTO and rendered by the BUILT panel in headless Chromium (the harness of
 * panel-render.test.ts). One simulated fault (cnc-02 overheating) makes the expected colours differ.
 * Screenshots go to test-artifacts/.
 *
 * Needs `npm run build -w node-red-nodes`, `-w grafana-datasource` and `-w grafana-panel` first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type {} from '../../grafana-panel/harness/api';
import type { HarnessFrame } from '../../grafana-panel/harness/api';
import type { Browser, Page } from 'playwright-core';
import type { Asset } from 'node-red-contrib-evtwin';
import { DEMO_ASSETS, startApiStack, type ApiStack } from '../src/bench/api';
import { loadAssets } from '../src/sim';
import {
  DS_DIST,
  type Observable,
  createDataSource,
  firstAnswer,
  grafanaRuntime,
  queryRequest,
} from '../src/plugins/datasourceHost';
import { launchChromium } from '../src/plugins/browser';
import { type Harness, startHarness } from '../src/plugins/harness';
import { simulateIntoInflux } from '../src/plugins/panelData';
import { sampleBeacons } from '../src/plugins/pixels';
import { withField } from './helpers/frames';

const REPO = resolve(__dirname, '..', '..');
const ARTIFACTS = join(REPO, 'test-artifacts');
const PANEL_MODULE = join(REPO, 'grafana-panel', 'dist', 'module.js');
const SERVICE = 'panel-ds-service-token-'.padEnd(40, 'x');
const UID = 'evtwin-panel-test';
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

type RGB = [number, number, number];

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
    const { grafanaData: gd } = grafanaRuntime();

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

    const ds = createDataSource<DataSourceLike>({
      uid: UID,
      url: stack.red.url,
      token: SERVICE,
      user: () => 'head',
    });
    const now = Date.now();
    const request = (targets: unknown[]) => queryRequest(targets, now - 3_600_000, now, 'now');
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
      const res = await firstAnswer(out);
      assert.deepEqual(res.errors ?? [], []);
      // What crosses into the page: plain DTOs, as a dashboard's JSON would hold them.
      frames[key] = JSON.parse(JSON.stringify(res.data.map((f) => gd.toDataFrameDTO(f)))) as HarnessFrame[];
    }

    harness = await startHarness();
    browser = await launchChromium();
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

  it('draws the 3D floor: cnc-02 (overheating) red, the others in their API colour, not red', async () => {
    const plant = frames.plant ?? [];
    const assetFrame = plant.find((f) => f.refId === 'assets');
    assert.ok(assetFrame);
    const palette = await page.evaluate(() => window.evtwin.colors('dark'));
    const wanted = expected(assetFrame, palette);
    const state = Object.fromEntries(
      col(assetFrame, 'asset').map((a, i) => [
        String(a),
        [col(assetFrame, 'health')[i], col(assetFrame, 'state')[i]],
      ]),
    );
    console.log('api health/state', JSON.stringify(state));
    assert.equal(Object.keys(wanted).length, 5, `scored plant-a assets: ${Object.keys(wanted).join()}`);
    // The fault hits only the asset it names: cnc-02 tripped (state 3), every other machine runs or idles.
    assert.equal(state['cnc-02']?.[1], 3, JSON.stringify(state));
    for (const id of ['cnc-01', 'cnc-03', 'robot-01', 'robot-02'])
      assert.ok([1, 2].includes(state[id]?.[1] as number), `${id}: ${JSON.stringify(state[id])}`);
    assert.equal(wanted['plant-a/cnc-02'], palette.red);
    const others = Object.entries(wanted).filter(([k]) => k !== 'plant-a/cnc-02');
    assert.ok(
      others.every(([, c]) => c !== palette.red),
      JSON.stringify(wanted),
    );
    assert.ok(new Set(Object.values(wanted)).size >= 2, 'the expected colours differ across assets');

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
    // A green beacon is far from red: the check tells the colours apart.
    const red = samples.find((s) => s.key === 'plant-a/cnc-02');
    const green = samples.find((s) => s.key !== 'plant-a/cnc-02');
    assert.ok(red && green);
    const rgb = (h: string): number[] => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
    const dist = (p: number[], q: number[]): number => Math.hypot(...p.map((v, i) => v - (q[i] ?? 0)));
    assert.ok(dist(red.best, rgb(wanted[green.key] ?? '')) > 80, 'cnc-02 is not drawn in a healthy colour');
  });

  it('places each asset at its asset-model position (x, y from the API frame)', async () => {
    const plant = frames.plant ?? [];
    const assetFrame = plant.find((f) => f.refId === 'assets');
    assert.ok(assetFrame);
    const pos = (id: string): [unknown, unknown] => {
      const i = col(assetFrame, 'asset').indexOf(id);
      return [col(assetFrame, 'x')[i], col(assetFrame, 'y')[i]];
    };
    // The datasource's frame carries the model's positions (provisioning/evtwin/assets.yaml).
    for (const a of assets.filter((x) => x.site === 'plant-a'))
      assert.deepEqual(pos(a.id), [a.position?.x, a.position?.y], a.id);
    const screen = async (f: HarnessFrame[]): Promise<Record<string, { x: number; y: number }>> => {
      await render(f, { mode: '3d' });
      return page.evaluate(() => {
        const out: Record<string, { x: number; y: number }> = {};
        for (const el of Array.from(document.querySelectorAll<HTMLElement>('#panel [data-asset]'))) {
          const r = el.getBoundingClientRect();
          out[el.dataset.asset ?? ''] = { x: r.left, y: r.top };
        }
        return out;
      });
    };
    const hints = async (): Promise<string> =>
      page.evaluate(() => document.querySelector('[data-testid="evtwin-hints"]')?.textContent ?? '');
    const at = await screen(plant);
    assert.equal(await hints(), '', 'positions came from the data: no grid layout');
    const p = (id: string): { x: number; y: number } => {
      const v = at[`plant-a/${id}`];
      assert.ok(v, id);
      return v;
    };
    // The machining row (y = 0, x = 0, 4, 8): left to right, on one line, cnc-02 about half way.
    const [c1, c2, c3] = [p('cnc-01'), p('cnc-02'), p('cnc-03')];
    assert.ok(c1.x < c2.x && c2.x < c3.x, JSON.stringify(at));
    const span = Math.hypot(c3.x - c1.x, c3.y - c1.y);
    const off = Math.abs((c3.x - c1.x) * (c2.y - c1.y) - (c3.y - c1.y) * (c2.x - c1.x)) / span;
    assert.ok(off < 3, `cnc-02 is ${off.toFixed(1)} px off the row`);
    const t = Math.hypot(c2.x - c1.x, c2.y - c1.y) / span;
    assert.ok(t > 0.4 && t < 0.6, `cnc-02 at ${t.toFixed(2)} of the row`);
    // The assembly row (y = 6) is nearer the camera: lower on screen, robot-01 left of robot-02.
    const [r1, r2] = [p('robot-01'), p('robot-02')];
    assert.ok(r1.y > c1.y + 20 && r2.y > c2.y + 20 && r1.x < r2.x, JSON.stringify(at));
    // Swap the x of cnc-01 and cnc-03 in the frame: the floor's extent is unchanged, so they swap places.
    const swapped = withField(plant, 'assets', 'x', (fl, f) => ({
      ...fl,
      values: fl.values.map((v, i) => {
        const id = col(f, 'asset')[i];
        return id === 'cnc-01' ? pos('cnc-03')[0] : id === 'cnc-03' ? pos('cnc-01')[0] : v;
      }),
    }));
    const moved = await screen(swapped);
    const near = (a?: { x: number; y: number }, b?: { x: number; y: number }): boolean =>
      !!a && !!b && Math.abs(a.x - b.x) < 2 && Math.abs(a.y - b.y) < 2;
    assert.ok(near(moved['plant-a/cnc-01'], c3) && near(moved['plant-a/cnc-03'], c1), JSON.stringify(moved));
    assert.ok(near(moved['plant-a/robot-01'], r1), 'the other assets stay');
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
