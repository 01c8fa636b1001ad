/**
 * The built panel (grafana-panel/dist/module.js, loaded as Grafana loads it: an AMD module given the host's
 * React and @grafana packages) rendered in headless Chromium with real data: simulator readings scored by
 * the core Scorer, stored in a real influxd and read back with the InfluxQL a dashboard would use, plus the
 * asset model as the evtwin datasource's Assets frame. Checks pixels of the 3D floor at each asset's
 * projected beacon, markers and clusters of the map, messages for bad data, and click → variable.
 * Screenshots go to test-artifacts/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
// The page's window.evtwin (declared there, global).
import type {} from '../../grafana-panel/harness/api';
import type { Browser, Page } from 'playwright-core';
import type { Asset } from 'node-red-contrib-evtwin';
import { startInfluxd, type Service } from '../src/services';
import { loadAssets } from '../src/sim';
import { CHROMIUM_PATH, launchChromium } from '../src/plugins/browser';
import { type Harness, startHarness } from '../src/plugins/harness';
import { type ColourBox, countPixels, sampleBeacons } from '../src/plugins/pixels';
import { type FrameDTO, assetFrame, latestFrames, simulateIntoInflux } from '../src/plugins/panelData';
import { withField } from './helpers/frames';

const REPO = join(__dirname, '..', '..');
const ARTIFACTS = join(REPO, 'test-artifacts');
const MODULE = join(REPO, 'grafana-panel', 'dist', 'module.js');
type RGB = [number, number, number];
const hex = (h: string): RGB => {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(h);
  if (!m) throw new Error(`not a hex colour: ${h}`);
  return [parseInt(m[1] ?? '0', 16), parseInt(m[2] ?? '0', 16), parseInt(m[3] ?? '0', 16)];
};
const dist = (a: RGB, b: RGB): number => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

/** The oracle: what colour the data says each asset must have (thresholds 50/80 on health, state 3 fault, 0 off). */
function expectedColours(frames: FrameDTO[], palette: Record<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  const col = (f: FrameDTO, n: string): unknown[] => f.fields.find((x) => x.name === n)?.values ?? [];
  const [scores, telemetry] = frames;
  if (!scores || !telemetry) throw new Error('frames missing');
  const state = new Map<string, unknown>();
  col(telemetry, 'asset').forEach((a, i) =>
    state.set(`${col(telemetry, 'site')[i]}/${a}`, col(telemetry, 'last_state')[i]),
  );
  col(scores, 'asset').forEach((a, i) => {
    const key = `${col(scores, 'site')[i]}/${a}`;
    const h = Number(col(scores, 'health')[i]);
    const s = state.get(key);
    const name = s === 3 ? 'red' : s === 0 ? 'gray' : h < 50 ? 'red' : h < 80 ? 'orange' : 'green';
    out.set(key, palette[name] ?? '');
  });
  return out;
}

/**
 * A tiny valid glTF 2.0: a 1 x 2 x 1 box in unlit magenta (KHR_materials_unlit), its buffer embedded as
 * base64. No procedural model has that colour, so its pixels show that the file was loaded and drawn.
 */
export function magentaBoxGltf(): string {
  const positions = new Float32Array([
    0, 0, 0, 1, 0, 0, 1, 2, 0, 0, 2, 0, 0, 0, 1, 1, 0, 1, 1, 2, 1, 0, 2, 1,
  ]);
  // prettier-ignore
  const indices = new Uint16Array([0,2,1, 0,3,2, 4,5,6, 4,6,7, 0,1,5, 0,5,4, 3,7,6, 3,6,2, 0,4,7, 0,7,3, 1,2,6, 1,6,5]);
  const bin = Buffer.concat([Buffer.from(positions.buffer), Buffer.from(indices.buffer)]);
  return JSON.stringify({
    asset: { version: '2.0', generator: 'evtwin panel-render.test.ts' },
    extensionsUsed: ['KHR_materials_unlit'],
    scene: 0,
    scenes: [{ nodes: [0] }],
    nodes: [{ mesh: 0, name: 'test-box' }],
    meshes: [{ primitives: [{ attributes: { POSITION: 0 }, indices: 1, material: 0 }] }],
    materials: [
      {
        pbrMetallicRoughness: { baseColorFactor: [1, 0, 1, 1], metallicFactor: 0, roughnessFactor: 1 },
        extensions: { KHR_materials_unlit: {} },
        doubleSided: true,
      },
    ],
    buffers: [
      { byteLength: bin.length, uri: `data:application/octet-stream;base64,${bin.toString('base64')}` },
    ],
    bufferViews: [
      { buffer: 0, byteOffset: 0, byteLength: positions.byteLength, target: 34962 },
      { buffer: 0, byteOffset: positions.byteLength, byteLength: indices.byteLength, target: 34963 },
    ],
    accessors: [
      { bufferView: 0, componentType: 5126, count: 8, type: 'VEC3', min: [0, 0, 0], max: [1, 2, 1] },
      { bufferView: 1, componentType: 5123, count: indices.length, type: 'SCALAR' },
    ],
  });
}
const GLTF_PATH = '/public/plugins/evtwin-twin-panel/models/test-box.gltf';

/** Clearly magenta (the test glTF's colour): red and blue above 150, green below 90. */
const MAGENTA: ColourBox = { min: [151, 0, 151], max: [255, 89, 255] };

async function renderPanel(
  page: Page,
  frames: FrameDTO[],
  options: Record<string, unknown>,
  theme: 'dark' | 'light' = 'dark',
): Promise<void> {
  await page.evaluate(() => window.evtwin.unmount());
  await page.evaluate(
    ({ frames, options, theme }) => window.evtwin.render({ frames, options, theme, width: 960, height: 560 }),
    { frames, options, theme },
  );
}

describe('panel rendering in headless Chromium (built dist/module.js)', { timeout: 120_000 }, () => {
  let influx: Service;
  let harness: Harness;
  let browser: Browser;
  let page: Page;
  let assets: Asset[];
  let plantFrames: FrameDTO[];
  let allFrames: FrameDTO[];
  let dark: Record<string, string>;

  before(async () => {
    assert.ok(
      existsSync(MODULE),
      `build the panel first: npm run build -w grafana-panel (${MODULE} missing)`,
    );
    assert.ok(existsSync(CHROMIUM_PATH), 'Chromium missing: apt-get install -y chromium');
    mkdirSync(ARTIFACTS, { recursive: true });
    influx = await startInfluxd();
    assets = loadAssets(join(REPO, 'provisioning', 'evtwin', 'assets.yaml'));
    // Ten simulated minutes ending now, with a fault on cnc-02 and a pressure drop on the water network.
    await simulateIntoInflux(influx.url, assets, {
      seconds: 600,
      faults: [
        { type: 'high_temperature', asset: 'cnc-02', startS: 200, durationS: 1000 },
        { type: 'pressure_drop', asset: 'pres-01', startS: 300, durationS: 1000 },
      ],
    });
    const plant = assets.filter((a) => a.site === 'plant-a');
    plantFrames = [...(await latestFrames(influx.url, `site = 'plant-a'`)), assetFrame(plant)];
    allFrames = [...(await latestFrames(influx.url)), assetFrame(assets)];
    harness = await startHarness({ files: { [GLTF_PATH]: magentaBoxGltf() } });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
    // tsx compiles the page functions below with esbuild's keepNames helper; give the page one.
    await page.addInitScript('window.__name = (f) => f');
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Nothing leaves the machine: only the harness answers.
    await page.route('**/*', (route) =>
      route.request().url().startsWith(harness.url) ? route.continue() : route.abort(),
    );
    await page.goto(harness.url);
    await page.evaluate(() => window.evtwin.load('evtwin-twin-panel'));
    assert.deepEqual(errors, []);
    dark = await page.evaluate(() => window.evtwin.colors('dark'));
  });

  after(async () => {
    await browser?.close();
    await harness?.close();
    await influx?.stop();
  });

  it('draws the 3D floor with each asset in its status colour (dark and light theme)', async () => {
    assert.equal(expectedColours(plantFrames, dark).size, 5, 'five plant-a assets scored');
    for (const theme of ['dark', 'light'] as const) {
      const palette = await page.evaluate((t) => window.evtwin.colors(t), theme);
      const wanted = Object.fromEntries(expectedColours(plantFrames, palette));
      await renderPanel(page, plantFrames, { mode: '3d', labelFields: 'temperature' }, theme);
      await page.waitForSelector('#panel [data-rendered="1"]');
      await page.waitForTimeout(300);
      await page.locator('#panel').screenshot({ path: join(ARTIFACTS, `panel-3d-${theme}.png`) });
      const { samples, drawn } = await sampleBeacons(page, wanted);
      assert.ok(
        drawn > 0.15,
        `canvas drawn: ${(drawn * 100).toFixed(0)}% of pixels differ from the background`,
      );
      assert.equal(samples.length, 5);
      for (const s of samples) {
        assert.ok(
          s.distance < 40,
          `${s.key}: wanted ${wanted[s.key]}, nearest pixel rgb(${s.best.join(',')}) at ${s.x.toFixed(0)},${s.y.toFixed(0)}`,
        );
      }
    }
    const legend = await page.locator('[data-testid="evtwin-legend"]').innerText();
    assert.match(legend, /< 50/);
  });

  it('shows a tooltip on hover and sets the asset variable on click (3D)', async () => {
    await renderPanel(page, plantFrames, { mode: '3d' });
    await page.waitForSelector('#panel [data-rendered="1"]');
    await page.waitForTimeout(200);
    const box = await page.locator('#panel [data-asset="plant-a/cnc-02"]').boundingBox();
    assert.ok(box);
    await page.mouse.move(box.x, box.y + 2);
    await page.waitForSelector('[data-testid="evtwin-tooltip"]');
    assert.match(await page.locator('[data-testid="evtwin-tooltip"]').innerText(), /CNC mill 2/);
    await page.mouse.down();
    await page.mouse.up();
    assert.equal((await page.evaluate(() => window.evtwin.search()))['var-asset'], 'cnc-02');
  });

  it('puts every located asset on the map, clustered, in its status colour', async () => {
    const wanted = expectedColours(allFrames, dark);
    const located = assets.filter((a) => a.location).map((a) => `${a.site}/${a.id}`);
    const opts = {
      mode: 'map',
      tileUrl: `${harness.url}/tiles/{z}/{x}/{y}.svg`,
      tileAttribution: 'test tiles',
    };
    await renderPanel(page, allFrames, opts);
    await page.waitForSelector('#panel [data-rendered="1"]');
    await page.waitForTimeout(300);
    const counted = await page.evaluate(() => {
      const singles = Array.from(
        document.querySelectorAll<HTMLElement>('#panel .leaflet-marker-icon [data-asset]'),
      );
      const clusters = Array.from(
        document.querySelectorAll<HTMLElement>('#panel .leaflet-marker-icon [data-count]'),
      );
      return {
        singles: singles.length,
        inClusters: clusters.reduce((n, c) => n + Number(c.dataset.count), 0),
        clusters: clusters.length,
      };
    });
    assert.equal(counted.singles + counted.inClusters, located.length, JSON.stringify(counted));
    assert.match(
      await page.locator('[data-testid="evtwin-hints"]').innerText(),
      /5 of 13 assets have no lat\/lon/,
    );
    await page.locator('#panel').screenshot({ path: join(ARTIFACTS, 'panel-map-dark.png') });

    // Without clustering: one marker per asset, each in the colour its data says, and a click selects it.
    await renderPanel(page, allFrames, { ...opts, clusterRadius: 0 });
    await page.waitForSelector('#panel [data-rendered="1"]');
    const markers = await page.$$eval('#panel .leaflet-marker-icon [data-asset]', (els) =>
      els.map((e) => ({
        key: (e as HTMLElement).dataset.asset ?? '',
        bg: getComputedStyle(e).backgroundColor,
      })),
    );
    assert.deepEqual(markers.map((m) => m.key).sort(), [...located].sort());
    for (const m of markers) {
      const rgb = (m.bg.match(/\d+/g) ?? []).slice(0, 3).map(Number) as RGB;
      assert.ok(dist(rgb, hex(wanted.get(m.key) ?? '')) < 3, `${m.key}: ${m.bg} vs ${wanted.get(m.key)}`);
    }
    // The three charge points stand metres apart and overlap at this zoom: click the one meant.
    await page.locator('#panel [data-asset="charging-hub/cp-02"]').dispatchEvent('click');
    await page.waitForSelector('[data-popup="charging-hub/cp-02"]');
    assert.match(
      await page.locator('.leaflet-popup-content').innerText(),
      /Charge point 2[\s\S]*temperature/,
    );
    assert.equal((await page.evaluate(() => window.evtwin.search()))['var-asset'], 'cp-02');
    await page.locator('#panel').screenshot({ path: join(ARTIFACTS, 'panel-map-popup.png') });
  });

  it('draws a glTF model per kind from the plugin folder, and says when one does not load', async () => {
    const none = { cnc: '', robot: '', sensor: '', charger: '', generic: '' };
    await renderPanel(page, plantFrames, { mode: '3d', models: none });
    await page.waitForSelector('#panel [data-rendered="1"]');
    await page.waitForTimeout(300);
    const before = await countPixels(page, MAGENTA);
    // Relative: resolved against the plugin's public folder, as in Grafana.
    await renderPanel(page, plantFrames, {
      mode: '3d',
      models: { ...none, cnc: 'models/test-box.gltf', robot: 'models/missing.gltf' },
    });
    await page.waitForSelector('#panel [data-rendered="1"]');
    await page.waitForFunction(() =>
      (document.querySelector('[data-testid="evtwin-hints"]')?.textContent ?? '').includes('missing.gltf'),
    );
    await page.waitForTimeout(500);
    const after = await countPixels(page, MAGENTA);
    await page.locator('#panel').screenshot({ path: join(ARTIFACTS, 'panel-3d-gltf.png') });
    assert.equal(before, 0, 'no magenta without the model');
    // Three CNC machines drawn as the magenta box: thousands of pixels at 960 x 560.
    assert.ok(after > 1500, `magenta pixels with the glTF: ${after}`);
    const hints = await page.locator('[data-testid="evtwin-hints"]').innerText();
    assert.match(hints, /Model for robot \(models\/missing\.gltf\) did not load/);
    assert.doesNotMatch(hints, /test-box/);
    // The beacons still carry the status colours over the loaded model.
    const wanted = Object.fromEntries(expectedColours(plantFrames, dark));
    const { samples } = await sampleBeacons(page, wanted);
    for (const x of samples) assert.ok(x.distance < 40, `${x.key}: rgb(${x.best.join(',')})`);
  });

  it('follows the data link of the asset clicked on the floor', async () => {
    // The asset field's link, as a dashboard's field config or the evtwin datasource gives it.
    const linked = withField(plantFrames, 'assets', 'asset', (fl) => ({
      ...fl,
      config: {
        links: [{ title: 'Asset detail', url: '/d/evtwin-device?var-site=${site}&var-asset=${asset}' }],
      },
    }));
    await renderPanel(page, linked, { mode: '3d', clickAction: 'link' });
    await page.waitForSelector('#panel [data-rendered="1"]');
    await page.waitForTimeout(200);
    const box = await page.locator('#panel [data-asset="plant-a/robot-01"]').boundingBox();
    assert.ok(box);
    await page.mouse.move(box.x, box.y + 2);
    await page.mouse.down();
    await page.mouse.up();
    await page.waitForFunction(() => location.pathname === '/d/evtwin-device');
    const where = await page.evaluate(() => ({ path: location.pathname, search: window.evtwin.search() }));
    assert.deepEqual(where, {
      path: '/d/evtwin-device',
      search: { 'var-site': 'plant-a', 'var-asset': 'robot-01' },
    });
    // A drag (orbit) is not a click: nothing is followed.
    await page.evaluate(() => history.replaceState(null, '', '/'));
    await page.mouse.move(box.x, box.y + 2);
    await page.mouse.down();
    await page.mouse.move(box.x + 40, box.y + 30, { steps: 4 });
    await page.mouse.up();
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => location.pathname), '/');
  });

  it('explains empty, wrong-shaped and partial data instead of a blank panel', async () => {
    await renderPanel(page, [], { mode: '3d' });
    assert.match(await page.locator('[data-testid="evtwin-message"]').innerText(), /No data/);
    const wrong: FrameDTO = {
      fields: [
        { name: 'Time', type: 'time', values: [1, 2] },
        { name: 'Value', type: 'number', values: [3, 4] },
      ],
    };
    await renderPanel(page, [wrong], { mode: 'map' });
    const text = await page.locator('[data-testid="evtwin-message"]').innerText();
    assert.match(text, /Missing field: asset/);
    assert.match(text, /Time, Value/);
    await page.locator('#panel').screenshot({ path: join(ARTIFACTS, 'panel-message.png') });
    // Values without positions: the floor still draws, on a grid, and says so.
    await renderPanel(page, plantFrames.slice(0, 2), { mode: '3d' });
    await page.waitForSelector('#panel [data-rendered="1"]');
    assert.match(await page.locator('[data-testid="evtwin-hints"]').innerText(), /No x\/y fields/);
  });
});
