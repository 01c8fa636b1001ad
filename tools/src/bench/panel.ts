/**
 * `npm run bench:panel`: performance of the built panel in headless Chromium (SwiftShader, no GPU).
 *  - 3D: 500 assets, new data every second for 10 s: frame intervals (rAF) and the cost of an update;
 *  - map: 10,000 markers: first render, then pans and zooms (time until markers are redrawn, frame intervals);
 *  - bundle: size of dist/module.js (raw and gzip).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
// The page's window.evtwin (declared there, global).
import type {} from '../../../grafana-panel/harness/api';
import type { Page } from 'playwright-core';
import { launchChromium } from '../plugins/browser';
import { startHarness } from '../plugins/harness';
import { syntheticStateFrame } from '../plugins/panelData';
import { syntheticAssets } from '../sim';

const REPO = join(__dirname, '..', '..', '..');
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const ms = (x: number): string => `${x.toFixed(1)} ms`;

/** Collect requestAnimationFrame intervals in the page until stopFrames() is called. */
async function startFrames(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __frames: number[]; __stop: boolean };
    w.__frames = [];
    w.__stop = false;
    let last = performance.now();
    const tick = (t: number): void => {
      w.__frames.push(t - last);
      last = t;
      if (!w.__stop) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}
async function stopFrames(page: Page): Promise<number[]> {
  return page.evaluate(() => {
    const w = window as unknown as { __frames: number[]; __stop: boolean };
    w.__stop = true;
    return w.__frames.slice(1);
  });
}

async function main(): Promise<void> {
  const module = join(REPO, 'grafana-panel', 'dist', 'module.js');
  const bytes = statSync(module).size;
  const gz = gzipSync(readFileSync(module)).length;
  console.log(`bundle: dist/module.js ${(bytes / 1024).toFixed(0)} KiB (${(gz / 1024).toFixed(0)} KiB gzip)`);

  const harness = await startHarness();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.addInitScript('window.__name = (f) => f');
    await page.route('**/*', (r) => (r.request().url().startsWith(harness.url) ? r.continue() : r.abort()));
    await page.goto(harness.url);
    await page.evaluate(() => window.evtwin.load('evtwin-twin-panel'));

    // ---- 3D: 500 machines, 1 s updates ----
    const machines = syntheticAssets(500, ['cnc', 'robot'], 3);
    const t0 = Date.now();
    await page.evaluate(
      (frames) => window.evtwin.render({ frames, options: { mode: '3d' }, width: 1200, height: 720 }),
      [syntheticStateFrame(machines, 0)],
    );
    await page.waitForSelector('#panel [data-rendered="1"]');
    console.log(`3d: 500 assets, first frame after ${Date.now() - t0} ms`);
    await startFrames(page);
    const updates: number[] = [];
    for (let tick = 1; tick <= 10; tick++) {
      const frame = syntheticStateFrame(machines, tick);
      const u = await page.evaluate(
        async (frames) => {
          const s = performance.now();
          window.evtwin.update(frames);
          await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
          return performance.now() - s;
        },
        [frame],
      );
      updates.push(u);
      await page.waitForTimeout(1000);
    }
    const f3 = await stopFrames(page);
    const gl = await page.locator('#panel [data-render-ms]').getAttribute('data-render-ms');
    console.log(
      `3d: renderer.render() of the last sampled frame took ${gl} ms (the rest of a frame is the browser's compositing)`,
    );
    console.log(
      `3d: ${f3.length} frames in ~11 s: frame interval median ${ms(pct(f3, 50))}, p95 ${ms(pct(f3, 95))}, max ${ms(Math.max(...f3))}` +
        ` (${(1000 / pct(f3, 50)).toFixed(0)} fps); data update to painted median ${ms(pct(updates, 50))}, max ${ms(Math.max(...updates))}`,
    );
    await page.screenshot({ path: join(REPO, 'test-artifacts', 'bench-3d-500.png'), timeout: 60_000 });

    // ---- map: 10,000 markers ----
    await page.evaluate(() => window.evtwin.unmount());
    const sensors = syntheticAssets(
      10_000,
      ['flow', 'pressure', 'level', 'chlorine', 'turbidity', 'charger'],
      5,
    );
    const frames = [syntheticStateFrame(sensors, 0)];
    const first = await page.evaluate(
      async ({ frames, tiles }) => {
        const s = performance.now();
        window.evtwin.render({ frames, options: { mode: 'map', tileUrl: tiles }, width: 1200, height: 720 });
        while (!document.querySelector('#panel [data-rendered="1"]'))
          await new Promise((r) => setTimeout(r, 5));
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        return {
          ms: performance.now() - s,
          markers: document.querySelectorAll('#panel .leaflet-marker-icon').length,
        };
      },
      { frames, tiles: `${harness.url}/tiles/{z}/{x}/{y}.svg` },
    );
    console.log(
      `map: 10,000 assets, first render ${ms(first.ms)} (${first.markers} marker elements after clustering)`,
    );
    const box = await page.locator('#panel').boundingBox();
    if (!box) throw new Error('no panel');
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    // Into the densest cluster, three times, so that pans cross many clusters and single markers.
    const zooms: number[] = [];
    for (let i = 0; i < 3; i++) {
      const s = Date.now();
      await page.evaluate(() => {
        const cs = Array.from(document.querySelectorAll<HTMLElement>('#panel [data-count]'));
        cs.sort((a, b) => Number(b.dataset.count) - Number(a.dataset.count));
        cs[0]?.closest('.leaflet-marker-icon')?.dispatchEvent(new MouseEvent('click', { bubbles: true }));
      });
      await page.waitForTimeout(600);
      zooms.push(Date.now() - s - 600);
    }
    const zoomed = await page.$$eval('#panel .leaflet-marker-icon', (e) => e.length);
    console.log(`map: zoomed into the densest cluster 3 times; ${zoomed} marker elements in view`);
    await startFrames(page);
    const pans: number[] = [];
    for (let i = 0; i < 10; i++) {
      const dx = (i % 2 ? -1 : 1) * 300;
      const s = Date.now();
      await page.mouse.move(cx, cy);
      await page.mouse.down();
      for (let k = 1; k <= 10; k++) await page.mouse.move(cx + (dx * k) / 10, cy + k * 8 * (i % 2 ? -1 : 1));
      await page.mouse.up();
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      pans.push(Date.now() - s);
    }
    const fm = await stopFrames(page);
    const visible = await page.$$eval('#panel .leaflet-marker-icon', (e) => e.length);
    console.log(
      `map: 10 pans (10 moves each): whole pan incl. redraw median ${ms(pct(pans, 50))}, max ${ms(Math.max(...pans))};` +
        ` frame interval while panning median ${ms(pct(fm, 50))}, p95 ${ms(pct(fm, 95))}; ${visible} marker elements in view`,
    );
    await page.screenshot({ path: join(REPO, 'test-artifacts', 'bench-map-10k.png'), timeout: 60_000 });
  } finally {
    await browser.close();
    await harness.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
