/**
 * Issue 7's done-when, on the `npm start` code path: the local stack (tools/src/stack, free ports, temporary
 * data folder) with its simulator, scoring and InfluxDB; the twin API queried through the BUILT datasource;
 * the BUILT panel rendered in headless Chromium (tools/src/plugins/stackShots.ts). Screenshots:
 * test-artifacts/panel-3d-stack.png and panel-map-stack.png (`npm run screenshots:stack -- --plugin-images`
 * also refreshes the plugin's own screenshots).
 *
 * Needs `npm run build -w node-red-nodes`, `-w grafana-datasource` and `-w grafana-panel` first.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stackScreenshots } from '../src/plugins/stackShots';

const REPO = resolve(__dirname, '..', '..');

describe('panel screenshots from the local stack', { timeout: 240_000 }, () => {
  it('renders live, scored stack data through the built datasource and panel', async () => {
    for (const f of ['grafana-datasource/dist/module.js', 'grafana-panel/dist/module.js'])
      assert.ok(existsSync(join(REPO, f)), `${f} missing: build the plugins first`);
    const r = await stackScreenshots();
    console.log(
      `live after ${r.liveAfterS.toFixed(1)} s; api ${JSON.stringify(r.state)}; map ${JSON.stringify(r.map)}`,
    );
    for (const f of r.files) assert.ok(existsSync(f), f);
    // Live: every plant-a asset reported within the last 15 s and carries a health (0..100).
    assert.equal(Object.keys(r.state).length, 5);
    for (const [key, [health, , age]] of Object.entries(r.state)) {
      assert.ok(
        typeof health === 'number' && health >= 0 && health <= 100,
        `${key}: health ${String(health)}`,
      );
      assert.ok(age < 15, `${key}: last seen ${age} s ago`);
    }
    // The floor shows each asset in the colour its live API state says.
    assert.ok(r.drawn > 0.15, `canvas drawn: ${(r.drawn * 100).toFixed(0)}%`);
    assert.deepEqual(r.samples.map((s) => s.key).sort(), Object.keys(r.state).sort());
    for (const s of r.samples)
      assert.ok(s.distance < 40, `${s.key}: wanted ${s.wanted}, nearest rgb(${s.best.join(',')})`);
    // One marker per located water-north sensor.
    assert.ok(r.map.located >= 5);
    assert.equal(r.map.shown, r.map.located);
  });
});
