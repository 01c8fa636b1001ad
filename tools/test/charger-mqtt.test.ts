/**
 * Chargers that are not OCPP, all real: simulated MQTT chargers (tools/src/sim/mqttChargers.ts) →
 * Mosquitto → Node-RED (mqtt in → evtwin-auth → evtwin-ingest → evtwin-charger, status straight
 * from evtwin-auth) → the same central state machine as OCPP; commands out on `.../cmd` through
 * `mqtt out` and acknowledged on `.../status`. One flow drives an OCPP and MQTT chargers alike.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import helper from 'node-red-node-test-helper';
import { register, type ChargerEvent, type Point, type Reading } from 'node-red-contrib-evtwin';
import {
  hashPassword,
  updateRegistry,
  type CommandResult,
  type OcppCentralSystem,
} from 'node-red-contrib-evtwin/runtime';
import { startMosquitto, type Service } from '../src/services';
import { SimChargePoint } from '../src/sim/chargers';
import { connectMqtt, fernetKeysFromRegistry, SimMqttCharger, withCredential } from '../src/sim/mqttChargers';
import { driverLogin, parseChargeRequests, replayChargeRequests } from '../src/sim/drivers';
import { mqttBrokerNode, mqttInNode } from '../src/flowNodes';
import { runSim } from './helpers/simCli';
import { until } from './helpers/until';

const DIST = join(__dirname, '..', '..', 'node-red-nodes', 'dist', 'nodes');
const loadFile = createRequire(__filename);
const nodeModules: unknown[] = [
  loadFile('@node-red/nodes/core/network/10-mqtt.js'),
  ...[
    'evtwin-registry',
    'evtwin-ocpp',
    'evtwin-charger',
    'evtwin-auth',
    'evtwin-ingest',
    'evtwin-influx',
    'evtwin-api',
  ].map((t) => loadFile(join(DIST, t, `${t}.js`))),
];
helper.init(require.resolve('node-red'));

interface Msg {
  topic?: string;
  payload: unknown;
  error?: { message: string; code?: string };
}

describe('MQTT chargers through evtwin-charger (real Mosquitto + Node-RED)', () => {
  let broker: Service;
  const clients: MqttClient[] = [];
  const sims: SimChargePoint[] = [];
  const servers: ReturnType<typeof createServer>[] = [];
  before(async () => {
    broker = await startMosquitto();
    helper.settings({ userDir: mkdtempSync(join(tmpdir(), 'evtwin-chmqtt-userdir-')) });
    await new Promise<void>((resolve) => helper.startServer(() => resolve()));
  });
  after(async () => {
    await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
    await broker?.stop();
  });
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close(true)));
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await helper.unload();
  });

  /** Registry s1/{cp1,cp2,m1,m2,m3} (charge points) and the flow: MQTT in → auth → ingest → charger → mqtt out. */
  async function loadFlow(
    extra: (file: string, dir: string) => Record<string, unknown>[] = () => [],
    regProps: (dir: string) => Record<string, unknown> = () => ({}),
  ) {
    const dir = mkdtempSync(join(tmpdir(), 'evtwin-chmqtt-'));
    const file = join(dir, 'registry.json');
    const tokens: Record<string, string> = {};
    const ctx = { now: Date.now(), actor: 'test' };
    for (const asset of ['cp1', 'cp2', 'm1', 'm2', 'm3']) {
      const r = updateRegistry(file, (s) =>
        register(s, { site: 's1', asset, owner: 'op', kind: 'charge-point' }, ctx),
      );
      tokens[`s1/${asset}`] = r.token;
    }
    const flow = [
      { id: 'tab', type: 'tab' },
      { id: 'reg', type: 'evtwin-registry', file, graceS: '3600', ...regProps(dir) },
      { id: 'ocpp', type: 'evtwin-ocpp', registry: 'reg', port: '0', stateFile: join(dir, 'state.json') },
      mqttBrokerNode(broker.url),
      ...['telemetry', 'status'].map((kind) =>
        mqttInNode({ id: `in-${kind}`, z: 'tab', topic: `evtwin/v1/+/+/${kind}`, wires: [`auth-${kind}`] }),
      ),
      {
        id: 'auth-telemetry',
        type: 'evtwin-auth',
        z: 'tab',
        registry: 'reg',
        topicTemplate: 'evtwin/v1/{site}/{asset}/telemetry',
        wires: [['ingest'], ['dead']],
      },
      {
        id: 'auth-status',
        type: 'evtwin-auth',
        z: 'tab',
        registry: 'reg',
        topicTemplate: 'evtwin/v1/{site}/{asset}/status',
        wires: [['ch'], ['dead']],
      },
      {
        id: 'ingest',
        type: 'evtwin-ingest',
        z: 'tab',
        topicTemplate: 'evtwin/v1/{site}/{asset}/telemetry',
        defaultKind: 'charger',
        wires: [['ch', 'readings'], ['dead']],
      },
      {
        id: 'ch',
        type: 'evtwin-charger',
        z: 'tab',
        ocpp: 'ocpp',
        timeoutS: '2',
        wires: [['events'], ['results'], ['points'], ['out']],
      },
      { id: 'out', type: 'mqtt out', z: 'tab', broker: 'broker', topic: '', qos: '1', retain: 'false' },
      { id: 'events', type: 'helper', z: 'tab' },
      { id: 'results', type: 'helper', z: 'tab' },
      { id: 'points', type: 'helper', z: 'tab' },
      { id: 'dead', type: 'helper', z: 'tab' },
      { id: 'readings', type: 'helper', z: 'tab' },
      // The helper creates a catch node only when it has a position.
      {
        id: 'catch',
        type: 'catch',
        x: 10,
        y: 10,
        z: 'tab',
        scope: ['ch'],
        uncaught: false,
        wires: [['errors']],
      },
      { id: 'errors', type: 'helper', z: 'tab' },
    ];
    let httpNode: Parameters<typeof createServer>[1] | undefined;
    const capture = (RED: { httpNode: Parameters<typeof createServer>[1] }): void => {
      httpNode = RED.httpNode;
    };
    await helper.load([capture, ...nodeModules], [...flow, ...extra(file, dir)]);
    const cfg = helper.getNode('ocpp') as unknown as { central?: OcppCentralSystem; ready?: Promise<void> };
    await cfg.ready;
    const central = cfg.central;
    assert.ok(central);
    const ch = helper.getNode('ch');
    assert.ok(ch);
    const bucket = (id: string): Msg[] => {
      const seen: Msg[] = [];
      helper.getNode(id)?.on('input', (m: Msg) => seen.push(m));
      return seen;
    };
    const events = bucket('events');
    const results = bucket('results');
    const points = bucket('points');
    const dead = bucket('dead');
    const errors = bucket('errors');
    const readings = bucket('readings');
    const evs = (type: ChargerEvent['type'], cp: string): ChargerEvent[] =>
      events.map((m) => m.payload as ChargerEvent).filter((e) => e?.type === type && e.cp === cp);
    const command = async (payload: Record<string, unknown>): Promise<CommandResult> => {
      const before = results.length;
      const errs = errors.length;
      ch.receive({ payload });
      await until(
        `result of ${String(payload.command)}`,
        () => results.length > before || errors.length > errs,
      );
      if (errors.length > errs) throw new Error(errors[errors.length - 1]?.error?.message);
      return results[results.length - 1]?.payload as CommandResult;
    };

    const client = await connectMqtt(broker.url);
    clients.push(client);
    // Wait until the flow subscribes: an unauthenticated probe comes back as a dead letter.
    for (let i = 0; i < 100 && dead.length === 0; i++) {
      await client.publishAsync('evtwin/v1/s1/probe/status', '{"status":"available"}', { qos: 1 });
      await sleep(100);
    }
    assert.ok(dead.length > 0, 'flow subscribed');
    const world = {
      dir,
      file,
      tokens,
      central,
      ch,
      events,
      results,
      points,
      dead,
      errors,
      readings,
      evs,
      command,
      client,
    };
    return { ...world, httpNode };
  }

  it('status and readings drive the shared state machine; commands go out on cmd and come back acked; freeze covers both transports', async () => {
    const { file, tokens, central, ch, events, points, dead, errors, evs, command, client } =
      await loadFlow();
    ch.receive({ payload: { command: 'explode', cp: 's1/m1' } });
    await until('bad command error', () => errors.length === 1);
    assert.match(errors[0]?.error?.message ?? '', /"command" must be one of/);

    const keys = fernetKeysFromRegistry(file);
    const m1 = new SimMqttCharger(client, {
      site: 's1',
      asset: 'm1',
      credential: { token: tokens['s1/m1'] },
    });
    const m2 = new SimMqttCharger(client, { site: 's1', asset: 'm2', credential: { key: keys['s1/m2'] } });
    await m1.start();
    await m2.start();
    await until('boots', () => evs('boot', 's1/m1').length === 1 && evs('boot', 's1/m2').length === 1);
    assert.equal(central.state().chargePoints['s1/m2']?.transport, 'mqtt');
    assert.equal(central.state().chargePoints['s1/m2']?.vendor, 'EVTwin');

    // A session from status + meter values from (token and Fernet) telemetry readings.
    const tx1 = await m1.startSession('TAG-M1');
    await until('m1 session', () => central.state().transactions[tx1]?.idTag === 'TAG-M1');
    await sleep(150);
    await m1.sendTelemetry();
    await until('m1 metered', () => (central.state().transactions[tx1]?.meterWh ?? 0) > 0);
    const tx2 = await m2.startSession('TAG-M2');
    await sleep(100);
    await m2.sendTelemetry();
    await until('m2 metered (Fernet)', () => (central.state().transactions[tx2]?.meterWh ?? 0) > 0);
    assert.equal(central.state().chargePoints['s1/m1']?.connectors['1']?.status, 'charging');

    // Remote stop through the flow: published on cmd, obeyed, acked; the session closes.
    const stop = await command({ command: 'stop', cp: 's1/m1', transactionId: tx1 });
    assert.deepEqual([stop.action, stop.accepted, stop.request.connectorId], ['mqtt', true, 1]);
    assert.equal(m1.received[0]?.command, 'stop');
    await until('m1 session ended', () => central.state().transactions[tx1]?.stoppedAt !== undefined);
    const t1 = central.state().transactions[tx1];
    assert.ok(t1 && t1.meterStopWh === m1.meterWh, 'meter stop = charger register');
    await until('sessions point', () =>
      points.some((m) =>
        (m.payload as Point[]).some(
          (p) => p.measurement === 'sessions' && p.tags.cp === 'm1' && p.tags.state === 'ended',
        ),
      ),
    );
    assert.ok(
      points.some((m) =>
        (m.payload as Point[]).some((p) => p.measurement === 'charger' && p.tags.cp === 'm2'),
      ),
    );

    // A remote start reaches the charger; it starts with its own transaction id.
    const start = await command({ command: 'start', cp: 's1/m1', idTag: 'DRIVER' });
    assert.equal(start.accepted, true);
    await until('remote session', () => m1.transactionId !== undefined);
    const tx3 = m1.transactionId as string;
    await until('central knows it', () => central.state().transactions[tx3]?.idTag === 'DRIVER');

    // An OCPP charger in the same flow; freeze protection halts and resumes both kinds alike.
    const cp1 = new SimChargePoint({
      endpoint: `ws://127.0.0.1:${central.port}/ocpp/s1`,
      identity: 'cp1',
      password: tokens['s1/cp1'] as string,
    });
    sims.push(cp1);
    await cp1.connect();
    const ocppTx = await cp1.startSession(1, 'TAG-CP1');
    ch.receive({ topic: 'temperature', payload: -4 });
    await until('frozen', () => events.some((m) => m.topic === 'charger/freeze'));
    const freeze = events.find((m) => m.topic === 'charger/freeze')?.payload as {
      chargePoints: string[];
      failed: string[];
    };
    assert.deepEqual(freeze.failed, []);
    assert.deepEqual([...freeze.chargePoints].sort(), ['s1/cp1', 's1/m1', 's1/m2']);
    await until('all stopped', () =>
      [tx2, tx3, ocppTx].every((t) => central.state().transactions[t]?.stoppedAt !== undefined),
    );
    assert.equal(m1.operative, false);
    assert.equal(m2.operative, false);
    assert.equal(cp1.connectors.get(1)?.operative, false);
    ch.receive({ topic: 'temperature', payload: 5 });
    await until('resumed', () => m1.operative && m2.operative && cp1.connectors.get(1)?.operative === true);

    // Load management shares the site limit over MQTT and OCPP sessions alike (profiles on cmd).
    await until(
      'm1 reported available again',
      () => central.state().chargePoints['s1/m1']?.connectors['1']?.status === 'available',
    );
    const mtx = await m1.startSession('DRIVER-2');
    const otx = await cp1.startSession(1, 'TAG-CP1b');
    await until('both open', () => [mtx, otx].every((t) => central.state().transactions[t] !== undefined));
    ch.receive({ topic: 'site-limit', payload: 7400 });
    await until('MQTT charger got its share', () => m1.limitW === 3700);
    await until('OCPP charger got its share', () => cp1.connectors.get(1)?.limitW === 3700);
    assert.ok(m1.powerW() + 3700 <= 7400);

    // Bad input: a status that breaks the contract is a catchable error naming the field; the
    // next good message still works. A charger that never acks times out.
    await m2.sendStatus({ status: 'Sleeping', connector: 1 });
    await until('bad status reported', () =>
      errors.some((e) => /"status" must be one of .*got "Sleeping"/.test(e.error?.message ?? '')),
    );
    await m2.sendStatus({ status: 'faulted', connector: 1, errorCode: 'GroundFailure' });
    await until('fault', () => central.state().chargePoints['s1/m2']?.connectors['1']?.status === 'faulted');
    const m3 = new SimMqttCharger(client, {
      site: 's1',
      asset: 'm3',
      credential: { token: tokens['s1/m3'] },
      mute: true,
    });
    await m3.start();
    await until('m3 online', () => central.state().chargePoints['s1/m3']?.online === true);
    await assert.rejects(command({ command: 'reset', cp: 's1/m3' }), /no ack within 2000 ms/);
    assert.equal(m3.received.length, 1, 'the command was published');
    // An unregistered charger on the status topic never reaches the state (evtwin-auth refuses it).
    const deadBefore = dead.length;
    await client.publishAsync(
      'evtwin/v1/s1/ghost/status',
      JSON.stringify({ status: 'charging', token: 'x' }),
      {
        qos: 1,
      },
    );
    await until('ghost refused', () => dead.length > deadBefore);
    assert.equal(central.state().chargePoints['s1/ghost'], undefined);
  });

  it('`evtwin-sim chargers --mqtt --registry`: Fernet-sealed telemetry that evtwin-auth opens into readings', async () => {
    const w = await loadFlow();
    const tokensFile = join(w.dir, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify(w.tokens));
    const { code, out } = await runSim([
      'chargers',
      ...['--url', `ws://127.0.0.1:${w.central.port}/ocpp`, '--site', 's1', '--ids', 'cp1,cp2'],
      ...['--tokens', tokensFile, '--meter', '0.3', '--heartbeat', '1', '--sessions', '1'],
      ...['--duration', '2', '--mqtt', broker.url, '--registry', w.file],
    ]);
    assert.equal(code, 0, out);
    assert.match(out, /2 of 2 Fernet-sealed/);
    const sent = Number(/(\d+) MQTT telemetry messages sent/.exec(out)?.[1]);
    assert.ok(sent >= 4, out);
    await until('every telemetry message read', () => w.readings.length === sent);
    const msgs = w.readings as (Msg & { evtwin?: { identity?: { via?: string } } })[];
    assert.ok(msgs.every((m) => m.evtwin?.identity?.via === 'fernet'));
    const rs = msgs.map((m) => m.payload as Reading);
    for (const cp of ['cp1', 'cp2']) {
      const mine = rs.filter((r) => r.asset === cp);
      assert.ok(mine.length >= 2 && mine.every((r) => r.kind === 'charger'), `${cp} readings`);
      assert.ok((mine[mine.length - 1]?.metrics.energy ?? 0) > 0, `${cp} energy`);
      // Telemetry beside OCPP leaves it an OCPP charger.
      assert.equal(w.central.state().chargePoints[`s1/${cp}`]?.transport, 'ocpp');
    }
    // Sealed with another charge point's key: refused, not read.
    const keys = fernetKeysFromRegistry(w.file);
    const deadBefore = w.dead.length;
    await w.client.publishAsync(
      'evtwin/v1/s1/cp1/telemetry',
      JSON.stringify(withCredential({ ts: Date.now(), values: { energy: 99 } }, { key: keys['s1/m1'] })),
      { qos: 1 },
    );
    await until('foreign key refused', () => w.dead.length > deadBefore);
    assert.equal(w.readings.length, sent);

    // `--transport mqtt`: chargers that speak MQTT only, Fernet-sealed, through the same flow.
    const viaMqtt = await runSim([
      'chargers',
      ...['--transport', 'mqtt', '--mqtt', broker.url, '--registry', w.file, '--site', 's1'],
      ...['--ids', 'm1,m2', '--meter', '0.3', '--sessions', '1', '--duration', '1.5'],
    ]);
    assert.equal(viaMqtt.code, 0, viaMqtt.out);
    assert.match(viaMqtt.out, /2 MQTT chargers started/);
    for (const cp of ['s1/m1', 's1/m2']) {
      await until(`${cp} went offline (last will)`, () => w.evs('disconnected', cp).length === 1);
      assert.equal(w.evs('boot', cp).length, 1);
      const tx = Object.values(w.central.state().transactions).find((t) => t.cp === cp);
      assert.ok(tx && tx.meterWh > 0, `${cp} metered over MQTT`);
      assert.equal(w.central.state().chargePoints[cp]?.transport, 'mqtt');
    }
  });

  it('`evtwin-sim drivers` replays charge requests through the API; sessions stop at the kWh or time asked', async () => {
    process.env.EVTWIN_JWT_SECRET = 'charger-mqtt-test-jwt-secret-'.padEnd(48, 'x');
    const hash = await hashPassword('driver-pass', { N: 1024, r: 8, p: 1 });
    const w = await loadFlow(
      (_file, dir) => {
        writeFileSync(
          join(dir, 'assets.yaml'),
          [
            'sites:',
            '  - id: s1',
            '    name: S1',
            '    assets:',
            '      - { id: cp1, kind: charger, name: CP1 }',
            '      - { id: cp2, kind: charger, name: CP2 }',
            '',
          ].join('\n'),
        );
        return [
          {
            id: 'influx',
            type: 'evtwin-influx',
            url: 'http://127.0.0.1:1',
            database: 'evtwin',
            spoolDir: join(dir, 'spool'),
          },
          {
            id: 'api',
            type: 'evtwin-api',
            x: 10,
            y: 10,
            z: 'tab',
            influx: 'influx',
            registry: 'reg',
            assetsFile: join(dir, 'assets.yaml'),
            usersFile: join(dir, 'users.yaml'),
            grievancesFile: join(dir, 'grievances.json'),
            wires: [['ch'], []],
          },
        ];
      },
      (dir) => {
        writeFileSync(
          join(dir, 'users.yaml'),
          [
            'users:',
            `  - { login: driver-app, role: lead, scope: { sites: [s1] }, password: "${hash}" }`,
            `  - { login: viewer, role: worker, scope: { assets: [s1/cp1] }, password: "${hash}" }`,
            '',
          ].join('\n'),
        );
        return { usersFile: join(dir, 'users.yaml') };
      },
    );
    assert.ok(w.httpNode);
    const server = createServer(w.httpNode).listen(0, '127.0.0.1');
    servers.push(server);
    await new Promise((r) => server.once('listening', r));
    const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}/evtwin/api/v1`;
    const cps = ['cp1', 'cp2'].map(
      (id) =>
        new SimChargePoint({
          endpoint: `ws://127.0.0.1:${w.central.port}/ocpp/s1`,
          identity: id,
          password: w.tokens[`s1/${id}`] as string,
        }),
    );
    sims.push(...cps);
    for (const cp of cps) {
      await cp.connect();
      cp.run(0, 150);
    }

    // A bad file: every error named by line, nothing sent.
    const bad = join(w.dir, 'bad.csv');
    writeFileSync(
      bad,
      [
        'at,cp,connector,idTag,kWh,duration',
        '0,s1/cp1,1,DRV1,0.002,',
        'soon,s1/cp1,,DRV1,1,',
        '1,cp1,,DRV1,1,',
        '2,s1/cp2,0,DRV2,,5',
        '3,s1/cp2,,,1,',
        '4,s1/cp2,,DRV2,,',
        '5,s1/cp2,,DRV2,-1,',
      ].join('\n'),
    );
    process.env.EVTWIN_DRIVER_PASSWORD = 'driver-pass';
    const login = ['--api', api, '--login', 'driver-app'];
    const badRun = await runSim(['drivers', '--requests', bad, ...login]);
    assert.equal(badRun.code, 2, badRun.out);
    for (const [line, what] of [
      [3, /"at" must be/],
      [4, /"cp" must be/],
      [5, /"connector" must be an integer >= 1/],
      [6, /"idTag"/],
      [7, /give "kWh" or "duration"/],
      [8, /"kWh" and "duration" must be positive/],
    ] as const)
      assert.match(badRun.out, new RegExp(`bad\\.csv:${line}: ${what.source}`));
    assert.match(badRun.out, /6 error\(s\); nothing sent/);
    assert.equal(w.results.length, 0, 'nothing reached the chargers');
    const jsonl = parseChargeRequests(
      '{"at": 0, "cp": "s1/cp1", "idTag": "A", "kWh": 1}\n{"at": 1, "cp": "s1/cp1"}\nnot json\n',
    );
    assert.deepEqual(
      jsonl.errors.map((e) => e.line),
      [2, 3],
    );

    // A good file: two requests accepted, one for a charge point outside the scope refused.
    const good = join(w.dir, 'requests.csv');
    writeFileSync(
      good,
      [
        'at,cp,connector,idTag,kWh,duration',
        '0,s1/cp1,1,DRV1,0.002,',
        '0.2,s1/cp2,,DRV2,,1',
        '0.3,s1/cp9,,DRV3,,1',
      ].join('\n'),
    );
    const { code, out } = await runSim(['drivers', '--requests', good, '--speed', '2', ...login]);
    assert.equal(code, 1, out);
    assert.match(out, /line 2 s1\/cp1: 202 /);
    assert.match(out, /line 3 s1\/cp2: 202 /);
    assert.match(out, /line 4 s1\/cp9: 404 /);
    assert.match(out, /done: 2 accepted, 1 refused or failed/);
    const txOf = (cp: string, tag: string) =>
      Object.values(w.central.state().transactions).find((t) => t.cp === cp && t.idTag === tag);
    await until('both sessions stopped at their limit', () =>
      ['s1/cp1#DRV1', 's1/cp2#DRV2'].every((k) => {
        const [cp, tag] = k.split('#') as [string, string];
        return txOf(cp, tag)?.stoppedAt !== undefined;
      }),
    );
    const t1 = txOf('s1/cp1', 'DRV1');
    const t2 = txOf('s1/cp2', 'DRV2');
    assert.ok(t1 && (t1.meterStopWh ?? 0) - t1.meterStartWh >= 2, 'cp1 delivered the 2 Wh asked');
    assert.deepEqual(t1.until, { energyWh: 2 });
    assert.ok(t2 && t2.stoppedAt !== undefined);
    const lasted = (t2.stoppedAt as number) - t2.startedAt;
    assert.ok(lasted >= 1000 && lasted < 4000, `cp2 charged ~1 s: ${lasted} ms`);
    assert.equal(cps[0]?.received.filter((r) => r.action === 'RemoteStopTransaction').length, 1);
    // The worker role may not command chargers.
    const hers = await driverLogin(api, 'viewer', 'driver-pass');
    const refused = await replayChargeRequests(
      api,
      hers,
      parseChargeRequests('at,cp,idTag,kWh\n0,s1/cp1,DRV9,1\n').requests,
    );
    assert.equal(refused[0]?.status, 403);
  });
});
