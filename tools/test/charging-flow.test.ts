/**
 * flows/evtwin-charging.json as shipped, in an embedded Node-RED: only environment variables change
 * (registry, OCPP port, MQTT broker, InfluxDB, weather URL). The weather source is a local HTTP
 * server standing in for Open-Meteo (same response shape), the MQTT temperature comes through a real
 * Mosquitto, and the chargers are real OCPP clients plus an MQTT charger: freeze halt and resume.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import helper from 'node-red-node-test-helper';
import { register } from 'node-red-contrib-evtwin';
import { updateRegistry, type OcppCentralSystem } from 'node-red-contrib-evtwin/runtime';
import { startMosquitto, type Service } from '../src/services';
import { SimChargePoint } from '../src/sim/chargers';
import { connectMqtt, SimMqttCharger } from '../src/sim/mqttChargers';
import { coreNodeFiles } from '../src/packaging/examples';
import type { FlowNode } from '../src/packaging/nodered';
import { until } from './helpers/until';

const ROOT = join(__dirname, '..', '..');
const DIST = join(ROOT, 'node-red-nodes', 'dist', 'nodes');
const loadFile = createRequire(__filename);
helper.init(require.resolve('node-red'));

describe('flows/evtwin-charging.json in Node-RED: freeze halt and resume', () => {
  let broker: Service;
  let weather: Server;
  let weatherC = 10;
  let weatherCalls = 0;
  const env: Record<string, string | undefined> = {};
  const setEnv = (k: string, v: string): void => {
    if (!(k in env)) env[k] = process.env[k];
    process.env[k] = v;
  };
  before(async () => {
    broker = await startMosquitto();
    weather = createServer((req, res) => {
      weatherCalls++;
      res.setHeader('content-type', 'application/json');
      // Open-Meteo's shape for `current=temperature_2m`.
      res.end(JSON.stringify({ latitude: 52.52, longitude: 13.41, current: { temperature_2m: weatherC } }));
    }).listen(0, '127.0.0.1');
    await new Promise((r) => weather.once('listening', r));
    helper.settings({ userDir: mkdtempSync(join(tmpdir(), 'evtwin-chflow-userdir-')) });
    await new Promise<void>((resolve) => helper.startServer(() => resolve()));
  });
  after(async () => {
    await helper.unload();
    await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
    await new Promise((r) => weather.close(r));
    await broker?.stop();
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('cold weather over HTTP halts OCPP and MQTT chargers; MQTT temperature resumes them past the hysteresis', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'evtwin-chflow-'));
    const file = join(dir, 'registry.json');
    const tokens: Record<string, string> = {};
    for (const asset of ['cp1', 'cp2', 'm1']) {
      const r = updateRegistry(file, (s) =>
        register(
          s,
          { site: 's1', asset, owner: 'op', kind: 'charge-point' },
          { now: Date.now(), actor: 't' },
        ),
      );
      tokens[`s1/${asset}`] = r.token;
    }
    setEnv('EVTWIN_REGISTRY', file);
    setEnv('EVTWIN_OCPP_PORT', '0');
    setEnv('EVTWIN_MQTT_URL', broker.url);
    setEnv('EVTWIN_INFLUX_URL', 'http://127.0.0.1:1');
    setEnv('EVTWIN_WEATHER_URL', `http://127.0.0.1:${(weather.address() as AddressInfo).port}/v1/forecast`);

    const flow = JSON.parse(readFileSync(join(ROOT, 'flows', 'evtwin-charging.json'), 'utf8')) as FlowNode[];
    const files = coreNodeFiles(require.resolve('node-red'));
    const core = [...new Set(flow.flatMap((n) => (files.has(n.type) ? [files.get(n.type) as string] : [])))];
    const ours = [...new Set(flow.map((n) => n.type).filter((t) => t.startsWith('evtwin-')))];
    await helper.load(
      [
        ...core.map((f) => loadFile(f) as unknown),
        ...ours.map((t) => loadFile(join(DIST, t, `${t}.js`)) as unknown),
      ],
      flow,
    );
    const cfg = helper.getNode('evtwin-charging-ocpp') as unknown as {
      central?: OcppCentralSystem;
      ready?: Promise<void>;
      configError?: string;
    };
    await cfg.ready;
    const central = cfg.central;
    assert.ok(central, `central system: ${cfg.configError}`);
    const freezes: string[] = [];
    helper.getNode('evtwin-charging-chargers')?.on('call:send', (c: { args: unknown[] }) => {
      const first = (c.args[0] as ({ topic?: string; payload?: { state?: string } } | null)[])[0];
      if (first?.topic === 'charger/freeze') freezes.push(String(first.payload?.state));
    });

    const sims = [
      new SimChargePoint({
        endpoint: `ws://127.0.0.1:${central.port}/ocpp/s1`,
        identity: 'cp1',
        password: tokens['s1/cp1'] as string,
      }),
      new SimChargePoint({
        endpoint: `ws://127.0.0.1:${central.port}/ocpp/s1`,
        identity: 'cp2',
        password: tokens['s1/cp2'] as string,
        protocol: 'ocpp2.0.1',
      }),
    ];
    const clients: MqttClient[] = [];
    try {
      for (const s of sims) await s.connect();
      const [cp1, cp2] = sims as [SimChargePoint, SimChargePoint];
      const client = await connectMqtt(broker.url);
      clients.push(client);
      const m1 = new SimMqttCharger(client, {
        site: 's1',
        asset: 'm1',
        credential: { token: tokens['s1/m1'] },
      });
      // The flow's MQTT subscriptions are live once the MQTT charger's boot reaches the state.
      for (let i = 0; i < 100 && !central.state().chargePoints['s1/m1']; i++) {
        await m1.sendStatus({ online: true });
        await sleep(100);
      }
      assert.ok(central.state().chargePoints['s1/m1'], 'MQTT charger seen through the flow');
      await m1.start();
      const tx = await cp1.startSession(1, 'DRIVER');
      const mtx = await m1.startSession('DRIVER-M');
      await until('MQTT session', () => central.state().transactions[mtx] !== undefined);

      // Warm: the weather poll changes nothing.
      const tick = helper.getNode('evtwin-charging-weather-tick');
      assert.ok(tick);
      tick.receive({});
      await until('weather polled', () => weatherCalls === 1);
      await sleep(200);
      assert.deepEqual(freezes, []);

      // -3 °C from the weather source: sessions stop, chargers go Inoperative.
      weatherC = -3;
      tick.receive({});
      await until('frozen', () => freezes.length === 1);
      assert.equal(freezes[0], 'frozen');
      await until('sessions stopped', () =>
        [tx, mtx].every((t) => central.state().transactions[t]?.stoppedAt !== undefined),
      );
      await until(
        'inoperative',
        () => !cp1.connectors.get(1)?.operative && !cp2.connectors.get(1)?.operative,
      );
      assert.equal(m1.operative, false);
      assert.equal(central.freezeOf('*')?.state, 'frozen');

      // MQTT temperature: inside the band nothing happens; past it, everything resumes.
      await client.publishAsync('evtwin/v1/s1/weather/temperature', '1.5', { qos: 1 });
      await sleep(300);
      assert.deepEqual(freezes, ['frozen']);
      assert.equal(cp1.connectors.get(1)?.operative, false);
      await client.publishAsync('evtwin/v1/s1/weather/temperature', '2.5', { qos: 1 });
      await until('resumed', () => freezes.length === 2);
      assert.equal(freezes[1], 'normal');
      await until(
        'operative again',
        () =>
          cp1.connectors.get(1)?.operative === true &&
          cp2.connectors.get(1)?.operative === true &&
          m1.operative,
      );
    } finally {
      await Promise.all(sims.map((s) => s.close(true)));
      await Promise.all(clients.map((c) => c.endAsync(true)));
    }
  });
});
