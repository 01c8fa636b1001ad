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
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Asset } from 'node-red-contrib-evtwin';
import { startInfluxd, type Service } from '../src/services';
import { loadAssets } from '../src/sim';
import { type Harness, startHarness } from '../src/plugins/harness';
import { sampleBeacons } from '../src/plugins/pixels';
import { type FrameDTO, assetFrame, latestFrames, simulateIntoInflux } from '../src/plugins/panelData';

const REPO = join(__dirname, '..', '..');
const ARTIFACTS = join(REPO, 'test-artifacts');
const MODULE = join(REPO, 'grafana-panel', 'dist', 'module.js');
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

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
    assert.ok(existsSync('/usr/bin/chromium'), 'Chromium missing: apt-get install -y chromium');
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
    harness = await startHarness();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
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
