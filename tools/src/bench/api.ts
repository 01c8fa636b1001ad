/**
 * The twin API on a real stack: influxd (provisioned: retention policies and rollup CQs), an embedded
 * Node-RED running evtwin-influx + evtwin-registry + evtwin-api, data written with the core's line
 * protocol encoder, rollups back-filled with the CQs' own statements. The API tests use startApiStack;
 * `npm run bench:api` measures latency:
 *   - POST /query timeseries for 24 h of 1 s data of one asset (86,400 points; the range picks rollup_1m)
 *   - GET /assets with 10,000 assets in the model (and with state=1)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SCHEMA, encodeBatch, type MeasurementSchema, type Point } from 'node-red-contrib-evtwin';
import { freePort, startInfluxd, type Service } from '../services';
import { provisionInfluxDB } from '../stack/influxProvision';
import { startNodeRed, type NodeRedHandle } from '../stack/nodeRed';

export const PROVISIONING = resolve(__dirname, '../../../provisioning/influxdb/evtwin.yaml');
export const DEMO_ASSETS = resolve(__dirname, '../../../provisioning/evtwin/assets.yaml');
export const API = 'evtwin/api/v1';

/** Measurements the OCPP side writes, not in SCHEMA yet: the test data declares them here. */
export const TEST_SCHEMAS: Record<string, MeasurementSchema> = {
  ...SCHEMA,
  sessions: {
    tags: ['site', 'asset'],
    fields: { energy_kwh: 'float', id_tag: 'string', transaction_id: 'string' },
  },
  charger: { tags: ['site', 'asset'], fields: { status: 'string', connector: 'integer' } },
};

export interface ApiStackOptions {
  assetsFile: string;
  usersFile: string;
  serviceToken: string;
  jwtSecret: string;
  /** Capture outputs 1 and 2 of evtwin-api, readable at GET /test/api-outputs. */
  capture?: boolean;
  log?: (line: string) => void;
}

export interface ApiStack {
  influx: Service;
  red: NodeRedHandle;
  dir: string;
  /** Base of the API, e.g. http://127.0.0.1:PORT/evtwin/api/v1 */
  base: string;
  write(points: readonly Point[]): Promise<void>;
  influxQuery(q: string): Promise<unknown[][]>;
  /** Run the rollup CQs' statements over [from, to) (CQs only cover recent time on their own). */
  backfillRollups(fromMs: number, toMs: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startApiStack(o: ApiStackOptions): Promise<ApiStack> {
  const dir = mkdtempSync(join(tmpdir(), 'evtwin-api-'));
  const influx = await startInfluxd();
  let red: NodeRedHandle | undefined;
  try {
    await provisionInfluxDB(influx.url, PROVISIONING);
    process.env.EVTWIN_JWT_SECRET = o.jwtSecret;
    writeFileSync(
      join(dir, 'settings.js'),
      "module.exports = { logging: { console: { level: 'warn' } } };\n",
    );
    writeFileSync(join(dir, 'flows.json'), '[]');
    red = await startNodeRed({
      userDir: join(dir, 'user'),
      flowFile: join(dir, 'flows.json'),
      port: await freePort(),
      settingsFile: join(dir, 'settings.js'),
      nodePackageDir: dirname(require.resolve('node-red-contrib-evtwin/package.json')),
      ...(o.log ? { log: o.log } : {}),
    });
    const flow: Record<string, unknown>[] = [
      { id: 'tab', type: 'tab', label: 'api' },
      {
        id: 'influx',
        type: 'evtwin-influx',
        url: influx.url,
        database: 'evtwin',
        retentionPolicy: '',
        batchSize: '5000',
        flushMs: '200',
        spoolMaxMB: '10',
        spoolDir: join(dir, 'spool'),
        gzip: false,
        createDatabase: false,
      },
      {
        id: 'reg',
        type: 'evtwin-registry',
        file: join(dir, 'registry.json'),
        usersFile: o.usersFile,
        brokerUrl: '',
        graceS: '60',
      },
      {
        id: 'api',
        type: 'evtwin-api',
        z: 'tab',
        influx: 'influx',
        registry: 'reg',
        assetsFile: o.assetsFile,
        usersFile: o.usersFile,
        grievancesFile: join(dir, 'grievances.json'),
        // Credentials deployed through the admin API, as the editor does: never in the flow file.
        credentials: { serviceToken: o.serviceToken },
        wires: o.capture ? [['cap1'], ['cap2']] : [[], []],
      },
    ];
    if (o.capture) {
      const capture = (port: number): string =>
        `const all = global.get('apiOut') || []; all.push({ port: ${port}, topic: msg.topic, payload: msg.payload, commandId: msg.commandId }); global.set('apiOut', all); return null;`;
      flow.push(
        { id: 'cap1', type: 'function', z: 'tab', func: capture(1), wires: [] },
        { id: 'cap2', type: 'function', z: 'tab', func: capture(2), wires: [] },
        {
          id: 'outIn',
          type: 'http in',
          z: 'tab',
          url: '/test/api-outputs',
          method: 'get',
          wires: [['outFn']],
        },
        {
          id: 'outFn',
          type: 'function',
          z: 'tab',
          func: "msg.payload = global.get('apiOut') || []; return msg;",
          wires: [['outRes']],
        },
        { id: 'outRes', type: 'http response', z: 'tab', wires: [] },
      );
    }
    const deployed = await fetch(`${red.url}flows`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
      body: JSON.stringify(flow),
    });
    if (!deployed.ok) throw new Error(`deploy: HTTP ${deployed.status} ${await deployed.text()}`);
    const base = `${red.url}${API}`;
    for (let i = 0; ; i++) {
      // The deploy restarts the HTTP routes: a refused or reset connection just means "not yet".
      const status = await fetch(`${base}/health`).then(
        (h) => h.status,
        () => 0,
      );
      if (status === 200) break;
      if (i > 200) throw new Error(`twin API never answered: HTTP ${status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const influxUrl = influx.url;
    const influxQuery = async (q: string): Promise<unknown[][]> => {
      const res = await fetch(`${influxUrl}/query?db=evtwin&epoch=ms&q=${encodeURIComponent(q)}`, {
        method: 'POST',
      });
      const body = (await res.json()) as {
        results: { series?: { values: unknown[][] }[]; error?: string }[];
      };
      if (body.results[0]?.error) throw new Error(body.results[0].error);
      return (body.results[0]?.series ?? []).flatMap((s) => s.values);
    };
    const handle: ApiStack = {
      influx,
      red,
      dir,
      base,
      influxQuery,
      async write(points) {
        const { lines, refused } = encodeBatch(points, TEST_SCHEMAS);
        if (refused.length > 0) throw new Error(`refused: ${JSON.stringify(refused.slice(0, 3))}`);
        for (let i = 0; i < lines.length; i += 50_000) {
          const res = await fetch(`${influxUrl}/write?db=evtwin&precision=ms`, {
            method: 'POST',
            body: lines.slice(i, i + 50_000).join('\n'),
          });
          if (res.status !== 204) throw new Error(`write: HTTP ${res.status} ${await res.text()}`);
        }
      },
      async backfillRollups(fromMs, toMs) {
        const range = `WHERE time >= ${fromMs}ms AND time < ${toMs}ms`;
        for (const [rp, step] of [
          ['rollup_1m', '1m'],
          ['rollup_1h', '1h'],
        ])
          await influxQuery(
            `SELECT mean(*), min(*), max(*) INTO "evtwin"."${rp}".:MEASUREMENT FROM "evtwin"."raw"./^telemetry$/ ${range} GROUP BY time(${step}), *`,
          );
      },
      async stop() {
        await red?.stop().catch(() => undefined);
        await influx.stop().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return handle;
  } catch (err) {
    await red?.stop().catch(() => undefined);
    await influx.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A synthetic model of `count` CNC assets over 10 sites × 10 lines. */
export function syntheticModelText(count: number): string {
  const out = ['sites:'];
  const perSite = Math.ceil(count / 10);
  let n = 0;
  for (let s = 0; s < 10 && n < count; s++) {
    out.push(`  - id: site-${s}`, `    location: { lat: ${10 + s}, lon: ${20 + s} }`, '    lines:');
    for (let l = 0; l < 10 && n < count; l++) {
      out.push(`      - id: line-${l}`, '        assets:');
      for (let a = 0; a < perSite / 10 && n < count; a++, n++)
        out.push(
          `          - { id: a-${n}, kind: ${n % 2 ? 'cnc' : 'flow'}, location: { lat: ${10 + s + a / 1000}, lon: ${20 + s} }, position: { x: ${a}, y: ${l} } }`,
        );
    }
  }
  return out.join('\n') + '\n';
}

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

async function timeIt(
  n: number,
  fn: () => Promise<void>,
): Promise<{ p50: number; p95: number; max: number }> {
  await fn(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { p50: pct(ms, 50), p95: pct(ms, 95), max: ms[ms.length - 1] ?? NaN };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '50' }, assets: { type: 'string', default: '10000' } },
  });
  const runs = Number(values.runs);
  const assetCount = Number(values.assets);
  const work = mkdtempSync(join(tmpdir(), 'evtwin-bench-api-'));
  const assetsFile = join(work, 'assets.yaml');
  writeFileSync(assetsFile, syntheticModelText(assetCount));
  const usersFile = join(work, 'users.yaml');
  writeFileSync(usersFile, 'users:\n  - { login: head, role: head }\n');
  const serviceToken = randomBytes(24).toString('base64url');
  const stack = await startApiStack({
    assetsFile,
    usersFile,
    serviceToken,
    jwtSecret: randomBytes(32).toString('hex'),
  });
  try {
    const headers = {
      'Content-Type': 'application/json',
      'X-Evtwin-Service-Token': serviceToken,
      'X-Grafana-User': 'head',
    };
    // 24 h of 1 s data of one asset, ending now.
    const end = Math.floor(Date.now() / 1000) * 1000;
    const start = end - 86_400_000;
    const points: Point[] = [];
    for (let t = start; t < end; t += 1000) {
      const i = (t - start) / 1000;
      points.push({
        measurement: 'telemetry',
        tags: { site: 'site-0', line: 'line-0', asset: 'a-1', kind: 'cnc' },
        fields: { power: 5 + Math.sin(i / 600) * 2, temperature: 40 + (i % 300) / 30 },
        ts: t,
      });
    }
    let t0 = performance.now();
    await stack.write(points);
    const writeMs = performance.now() - t0;
    t0 = performance.now();
    await stack.backfillRollups(start - 3_600_000, end + 60_000);
    const rollupMs = performance.now() - t0;
    const raw = await stack.influxQuery('SELECT count(power) FROM "raw"."telemetry" WHERE asset = \'a-1\'');
    console.log(
      `wrote ${points.length} points in ${writeMs.toFixed(0)} ms (raw count ${String(raw[0]?.[1])}); rollups back-filled in ${rollupMs.toFixed(0)} ms`,
    );

    const seriesBody = (metrics: string[]) =>
      JSON.stringify({
        range: { from: start, to: end },
        maxDataPoints: 1500,
        queries: [{ refId: 'A', queryType: 'timeseries', metrics, filter: { assets: ['site-0/a-1'] } }],
      });
    let info = '';
    const ts = await timeIt(runs, async () => {
      const res = await fetch(`${stack.base}/query`, {
        method: 'POST',
        headers,
        body: seriesBody(['power']),
      });
      const body = (await res.json()) as { results: { rollup?: string; series?: { points: unknown[] }[] }[] };
      if (res.status !== 200) throw new Error(`query: HTTP ${res.status}`);
      const r = body.results[0];
      info = `rollup ${r?.rollup}, ${r?.series?.[0]?.points.length ?? 0} points returned`;
    });
    console.log(
      `timeseries 24 h of 1 s data (86,400 raw points), 1 metric: p50 ${ts.p50.toFixed(1)} ms, p95 ${ts.p95.toFixed(1)} ms, max ${ts.max.toFixed(1)} ms (${info}; target p95 < 200 ms)`,
    );
    const ts2 = await timeIt(runs, async () => {
      const res = await fetch(`${stack.base}/query`, {
        method: 'POST',
        headers,
        body: seriesBody(['power', 'temperature']),
      });
      await res.arrayBuffer();
    });
    console.log(`timeseries 24 h, 2 metrics: p50 ${ts2.p50.toFixed(1)} ms, p95 ${ts2.p95.toFixed(1)} ms`);
    // The same range forced onto raw data (what it would cost without rollups): a 5 h 59 min window is raw.
    const rawBody = JSON.stringify({
      range: { from: end - 6 * 3_600_000 + 60_000, to: end },
      queries: [
        { refId: 'A', queryType: 'timeseries', metrics: ['power'], filter: { assets: ['site-0/a-1'] } },
      ],
    });
    const tr = await timeIt(runs, async () => {
      const res = await fetch(`${stack.base}/query`, { method: 'POST', headers, body: rawBody });
      await res.arrayBuffer();
    });
    console.log(
      `timeseries ~6 h raw (21,540 points scanned): p50 ${tr.p50.toFixed(1)} ms, p95 ${tr.p95.toFixed(1)} ms`,
    );

    let count = 0;
    const al = await timeIt(runs, async () => {
      const res = await fetch(`${stack.base}/assets`, { headers });
      count = ((await res.json()) as { total: number }).total;
    });
    console.log(
      `GET /assets with ${count} assets: p50 ${al.p50.toFixed(1)} ms, p95 ${al.p95.toFixed(1)} ms, max ${al.max.toFixed(1)} ms`,
    );
    const als = await timeIt(Math.min(runs, 20), async () => {
      const res = await fetch(`${stack.base}/assets?state=1`, { headers });
      await res.arrayBuffer();
    });
    console.log(
      `GET /assets?state=1 with ${count} assets: p50 ${als.p50.toFixed(1)} ms, p95 ${als.p95.toFixed(1)} ms`,
    );
  } finally {
    await stack.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module)
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
