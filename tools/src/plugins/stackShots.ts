/**
 * Issue 7's done-when: the 3D floor and the map with live colours FROM THE LOCAL STACK. Starts the `npm
 * start` code path (tools/src/stack runStack, in a child process: it owns signals and one Node-RED per
 * process) on free ports (EVTWIN_*_PORT=0) with a temporary data folder, waits until the simulator's
 * readings are scored and stored, queries the twin API through the BUILT datasource (datasourceHost.ts)
 * and renders the BUILT panel in headless Chromium (harness.ts). Screenshots go to test-artifacts/ and,
 * with --plugin-images, to the plugin's screenshots (grafana-panel/src/img, listed in plugin.json).
 *
 * The service token is ours (EVTWIN_SERVICE_TOKEN, which the stack gives its evtwin-api node). Should the
 * stack's flow have no evtwin-api node, the flow run is the stack's flow plus one (same InfluxDB config
 * node), its token in the flow's encrypted credentials. Run: `npm run screenshots:stack [-- --plugin-images]`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HarnessFrame } from '../../../grafana-panel/harness/api';
import { writeFlowCredentials } from '../stack/security';
import {
  type Observable,
  createDataSource,
  firstAnswer,
  grafanaRuntime,
  queryRequest,
} from './datasourceHost';
import { launchChromium } from './browser';
import { startHarness } from './harness';
import { sampleBeacons, type Sample } from './pixels';

const REPO = resolve(__dirname, '..', '..', '..');
export const ARTIFACTS = join(REPO, 'test-artifacts');
export const PLUGIN_IMG = join(REPO, 'grafana-panel', 'src', 'img');
const STACK_FLOW = join(REPO, 'flows', 'evtwin-stack.json');
const API_NODE = 'evtwin-panel-shots-api';
interface FlowNode {
  id: string;
  type: string;
  z?: string;
  [k: string]: unknown;
}
interface Frame {
  refId?: string;
  fields: { name: string; values: unknown[] }[];
}
interface DataSourceLike {
  query(request: unknown):
    | Observable<{ data: Frame[]; errors?: { message?: string }[] }>
    | Promise<{
        data: Frame[];
        errors?: { message?: string }[];
      }>;
}

export interface RunningStack {
  child: ChildProcess;
  redUrl: string;
  token: string;
  output(): string;
  stop(): Promise<void>;
}

/** The stack's flow, with an evtwin-api node when it has none. Returns the flow file and the API node id. */
function flowWithApi(dir: string): { file: string; apiId: string } {
  const nodes = JSON.parse(readFileSync(STACK_FLOW, 'utf8')) as FlowNode[];
  const have = nodes.find((n) => n.type === 'evtwin-api');
  if (have) return { file: STACK_FLOW, apiId: have.id };
  const influx = nodes.find((n) => n.type === 'evtwin-influx');
  const tab = nodes.find((n) => n.type === 'tab');
  if (!influx || !tab) throw new Error(`${STACK_FLOW}: no evtwin-influx config node or tab`);
  nodes.push({
    id: API_NODE,
    type: 'evtwin-api',
    z: tab.id,
    name: 'twin API (panel screenshots)',
    influx: influx.id,
    registry: '',
    assetsFile: '${EVTWIN_ASSETS}',
    usersFile: '${EVTWIN_USERS}',
    grievancesFile: '',
    x: 160,
    y: 400,
    wires: [[], []],
  });
  const file = join(dir, 'evtwin-stack-api.json');
  writeFileSync(file, JSON.stringify(nodes, null, 2));
  return { file, apiId: API_NODE };
}

/** `npm start`'s runStack in a child process on free ports; resolves when it printed "ready". */
export async function startLocalStack(log: (line: string) => void = () => undefined): Promise<RunningStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'evtwin-panel-stack-'));
  const { file: flow, apiId } = flowWithApi(dataDir);
  const token = randomBytes(24).toString('hex');
  const secret = randomBytes(32).toString('hex');
  // The API node's token in the flow's encrypted credentials (the stack keeps other nodes' entries).
  writeFlowCredentials(join(dataDir, 'node-red'), flow, secret, { [apiId]: { serviceToken: token } });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EVTWIN_DATA_DIR: dataDir,
    EVTWIN_INFLUX_PORT: '0',
    EVTWIN_MQTT_PORT: '0',
    EVTWIN_NODE_RED_PORT: '0',
    EVTWIN_GRAFANA_PORT: '0',
    EVTWIN_CREDENTIAL_SECRET: secret,
    EVTWIN_SERVICE_TOKEN: token,
  };
  const code =
    `require(${JSON.stringify(join(REPO, 'tools', 'src', 'stack', 'index.ts'))})` +
    `.runStack(${JSON.stringify(['--stats-every=0', ...(flow === STACK_FLOW ? [] : [`--flow=${flow}`])])}, ${JSON.stringify(REPO)})` +
    `.then((c) => process.exit(c), (e) => { console.error(e); process.exit(1); });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: join(REPO, 'tools'),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const take = (c: Buffer): void => {
    out += c.toString();
    for (const line of c.toString().split('\n')) if (line.trim()) log(`  stack| ${line}`);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // the stack's own orderly stop
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 90_000;
  while (!/^ready in [\d.]+ s/m.test(out)) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`stack exited with ${child.exitCode} before ready:\n${out}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`stack not ready within 90 s:\n${out}`);
    }
    await sleep(100);
  }
  const red = /Node-RED\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
  if (!red) {
    await stop();
    throw new Error(`no Node-RED URL in the stack's output:\n${out}`);
  }
  return { child, redUrl: red, token, output: () => out, stop };
}

const col = (f: Frame | HarnessFrame | undefined, n: string): unknown[] =>
  f?.fields.find((x) => x.name === n)?.values ?? [];

export interface StackShots {
  /** Screenshot files written. */
  files: string[];
  /** Seconds from start until every plant-a asset had fresh, scored data. */
  liveAfterS: number;
  /** site/asset → [health, state, age in s of lastSeen when queried] from the API, as rendered. */
  state: Record<string, [unknown, unknown, number]>;
  /** The expected colour per plant-a asset and what the canvas showed at its beacon. */
  samples: (Sample & { wanted: string })[];
  drawn: number;
  /** Map of water-north: markers shown, and the number of located assets in the API answer. */
  map: { shown: number; located: number };
  palette: Record<string, string>;
}

/** The panel's default status colours from the API answer (thresholds 50/80, state 3 fault, 0 off). */
export function expectedColour(health: unknown, state: unknown, palette: Record<string, string>): string {
  if (typeof health !== 'number') return palette.gray ?? '';
  const name =
    state === 3 ? 'red' : state === 0 ? 'gray' : health < 50 ? 'red' : health < 80 ? 'orange' : 'green';
  return palette[name] ?? '';
}

/** Start the stack, wait for live scored data, render both modes, save screenshots; always stop the stack. */
export async function stackScreenshots(
  o: { pluginImages?: boolean; log?: (line: string) => void } = {},
): Promise<StackShots> {
  const log = o.log ?? (() => undefined);
  const t0 = Date.now();
  const stack = await startLocalStack(log);
  try {
    const { grafanaData } = grafanaRuntime();
    const ds = createDataSource<DataSourceLike>({
      uid: 'evtwin-stack',
      url: stack.redUrl,
      token: stack.token,
      user: () => 'head',
    });
    const ask = async (site: string): Promise<HarnessFrame[]> => {
      const now = Date.now();
      const res = await firstAnswer(
        ds.query(
          queryRequest(
            [
              { refId: 'assets', queryType: 'assets', state: true, ...(site ? { site } : {}) },
              { refId: 'latest', queryType: 'latest', ...(site ? { site } : {}) },
            ],
            now - 3_600_000,
            now,
            'now',
          ),
        ),
      );
      if (res.errors?.length) throw new Error(`query errors: ${JSON.stringify(res.errors)}`);
      return JSON.parse(JSON.stringify(res.data.map((f) => grafanaData.toDataFrameDTO(f)))) as HarnessFrame[];
    };
    // Live: every plant-a machine seen in the last 15 s and scored.
    let plant: HarnessFrame[] = [];
    let queriedAt = 0;
    const deadline = Date.now() + 120_000;
    for (;;) {
      plant = await ask('plant-a');
      const a = plant.find((f) => f.refId === 'assets');
      const now = (queriedAt = Date.now());
      const live = col(a, 'asset').map(
        (_, i) =>
          typeof col(a, 'health')[i] === 'number' &&
          typeof col(a, 'lastSeen')[i] === 'number' &&
          now - (col(a, 'lastSeen')[i] as number) < 15_000,
      );
      if (live.length === 5 && live.every(Boolean)) break;
      if (Date.now() > deadline) throw new Error(`no live scored data after 120 s: ${JSON.stringify(a)}`);
      await sleep(1000);
    }
    const liveAfterS = (Date.now() - t0) / 1000;
    const water = await ask('water-north');

    mkdirSync(ARTIFACTS, { recursive: true });
    const harness = await startHarness();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
      await page.addInitScript('window.__name = (f) => f');
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      // Nothing leaves the machine: only the harness answers.
      await page.route('**/*', (r) => (r.request().url().startsWith(harness.url) ? r.continue() : r.abort()));
      await page.goto(harness.url);
      await page.evaluate(() => window.evtwin.load('evtwin-twin-panel'));
      const palette = await page.evaluate(() => window.evtwin.colors('dark'));
      const render = async (frames: HarnessFrame[], options: Record<string, unknown>): Promise<void> => {
        await page.evaluate(() => window.evtwin.unmount());
        await page.evaluate(
          ({ frames, options }) =>
            window.evtwin.render({ frames, options, theme: 'dark', width: 960, height: 560 }),
          { frames, options },
        );
        await page.waitForSelector('#panel [data-rendered="1"]');
        await page.waitForTimeout(400);
      };
      const a = plant.find((f) => f.refId === 'assets');
      const state: StackShots['state'] = {};
      const wanted: Record<string, string> = {};
      col(a, 'asset').forEach((id, i) => {
        const key = `${String(col(a, 'site')[i])}/${String(id)}`;
        const h = col(a, 'health')[i];
        const s = col(a, 'state')[i];
        state[key] = [h, s, Math.round((queriedAt - Number(col(a, 'lastSeen')[i])) / 100) / 10];
        wanted[key] = expectedColour(h, s, palette);
      });
      const files: string[] = [];
      await render(plant, { mode: '3d', labelFields: 'temperature,power' });
      const floor = join(ARTIFACTS, 'panel-3d-stack.png');
      await page.locator('#panel').screenshot({ path: floor });
      files.push(floor);
      const { samples, drawn } = await sampleBeacons(page, wanted);

      // The water network's sensors, about a kilometre apart: one marker each at the fitted zoom.
      await render(water, {
        mode: 'map',
        tileUrl: `${harness.url}/tiles/{z}/{x}/{y}.svg`,
        tileAttribution: 'harness tiles (offline)',
        clusterRadius: 0,
      });
      const mapFile = join(ARTIFACTS, 'panel-map-stack.png');
      await page.locator('#panel').screenshot({ path: mapFile });
      files.push(mapFile);
      const shown = await page.evaluate(
        () => document.querySelectorAll('#panel .leaflet-marker-icon [data-asset]').length,
      );
      const waterAssets = water.find((f) => f.refId === 'assets');
      const located = col(waterAssets, 'lat').filter((v) => typeof v === 'number').length;
      if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
      if (o.pluginImages) {
        copyFileSync(floor, join(PLUGIN_IMG, 'screenshot-floor.png'));
        copyFileSync(mapFile, join(PLUGIN_IMG, 'screenshot-map.png'));
        files.push(join(PLUGIN_IMG, 'screenshot-floor.png'), join(PLUGIN_IMG, 'screenshot-map.png'));
      }
      return {
        files,
        liveAfterS,
        state,
        samples: samples.map((s) => ({ ...s, wanted: wanted[s.key] ?? '' })),
        drawn,
        map: { shown, located },
        palette,
      };
    } finally {
      await browser.close();
      await harness.close();
    }
  } finally {
    await stack.stop();
  }
}

if (require.main === module) {
  stackScreenshots({ pluginImages: process.argv.includes('--plugin-images'), log: (l) => console.log(l) })
    .then((r) => {
      console.log(
        JSON.stringify(
          { ...r, samples: r.samples.map((s) => [s.key, s.wanted, s.best, s.distance]) },
          null,
          1,
        ),
      );
      process.exit(0);
    })
    .catch((e: unknown) => {
      console.error(e);
      process.exit(1);
    });
}
