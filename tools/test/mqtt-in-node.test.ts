/**
 * evtwin-mqtt-in in a real Node-RED, against a real Mosquitto and influxd: evtwin-mqtt-in → evtwin-ingest
 * → evtwin-influx-out. A message becomes a stored point and is acknowledged; a dead letter is
 * acknowledged too; a message whose path never settles stays unacknowledged (the broker redelivers it
 * to the session) unless the node acknowledges on receipt; msg looks like `mqtt in`'s; a node without
 * a topic shows a red status and does not crash the runtime.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import helper from 'node-red-node-test-helper';
import type { NodeMessage } from 'node-red';
import { startMosquitto, type Service } from '../src/services';
import { mqttBrokerNode, mqttInNode } from '../src/flowNodes';
import { evtwinNode, nodeById, useNodeRedInflux } from './helpers/nodeRedInflux';
import { until } from './helpers/until';

const loadFile = createRequire(__filename);
const modules = [
  loadFile('@node-red/nodes/core/network/10-mqtt.js'),
  ...['evtwin-mqtt-in', 'evtwin-ingest', 'evtwin-influx', 'evtwin-influx-out'].map(evtwinNode),
];

const rig = useNodeRedInflux('evtwin-mqtt-in-');

interface Msg extends NodeMessage {
  qos?: number;
  retain?: boolean;
  userProperties?: Record<string, string>;
  evtwin?: { receipt?: number };
  error?: { code?: string };
}

let broker: Service;
let publisher: mqtt.MqttClient;
let unique = 0;

before(async () => {
  broker = await startMosquitto();
  publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'node-test-publisher' });
});
after(async () => {
  await publisher?.endAsync();
  await broker?.stop();
});

/** Messages a helper node receives. */
function tap(id: string): Msg[] {
  const got: Msg[] = [];
  nodeById(id).on('input', (m: Msg) => got.push(m));
  return got;
}

/**
 * After the flow is gone: connect with the node's client id to its session and return what the broker
 * still holds for it (messages never acknowledged), then end that session.
 */
async function leftInSession(clientId: string): Promise<string[]> {
  const got: string[] = [];
  const c = mqtt.connect(broker.url, {
    protocolVersion: 5,
    clientId,
    clean: false,
    properties: { sessionExpiryInterval: 0 },
  });
  c.on('message', (_t, payload) => got.push(payload.toString()));
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  await sleep(600);
  await c.endAsync();
  return got;
}

/** The statuses a node has shown so far (test helper spies on Node.prototype.status). */
function statusesOf(id: string): { fill?: string; shape?: string; text?: string }[] {
  const node = nodeById(id);
  const spy = (node as unknown as { status: { getCalls(): { thisValue: unknown; args: unknown[] }[] } })
    .status;
  return spy
    .getCalls()
    .filter((c) => c.thisValue === node)
    .map((c) => c.args[0] as { fill?: string; shape?: string; text?: string });
}

function inNode(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    id: 'in',
    type: 'evtwin-mqtt-in',
    z: 'f1',
    broker: 'broker',
    qos: '1',
    datatype: 'buffer',
    ack: 'stored',
    sessionExpiryS: '600',
    receiveMaximum: '100',
    ackTimeoutS: '60',
    ...fields,
  };
}

const names = (): { clientId: string; site: string } => {
  unique++;
  return { clientId: `nr-in-${unique}-${process.pid}`, site: `site${unique}` };
};

describe('evtwin-mqtt-in in Node-RED with Mosquitto and influxd', () => {
  it('stores a reading and acknowledges it, acknowledges a dead letter, and shapes msg like mqtt in', async () => {
    const { clientId, site } = names();
    const topic = `evtwin/v1/${site}/cnc-01/telemetry`;
    const flow = [
      { id: 'f1', type: 'tab' },
      mqttBrokerNode(broker.url),
      rig.influxConfig({ database: 'mi1', spoolDir: rig.tempDir(), createDatabase: true }),
      inNode({ topic: `evtwin/v1/${site}/+/telemetry`, clientId, wires: [['ingest', 'tapIn']] }),
      mqttInNode({ id: 'core', z: 'f1', topic: `evtwin/v1/${site}/+/telemetry`, wires: ['tapCore'] }),
      { id: 'ingest', type: 'evtwin-ingest', z: 'f1', wires: [['out'], ['dead']] },
      { id: 'out', type: 'evtwin-influx-out', z: 'f1', influx: 'cfg', wires: [] },
      { id: 'tapIn', type: 'helper', z: 'f1' },
      { id: 'tapCore', type: 'helper', z: 'f1' },
      { id: 'dead', type: 'helper', z: 'f1' },
    ];
    await helper.load(modules, flow);
    const fromIn = tap('tapIn');
    const fromCore = tap('tapCore');
    const dead = tap('dead');
    await until('connected', () => statusesOf('in').some((s) => s.fill === 'green'), 10_000);
    await sleep(300); // the core node's subscription too

    const ts = Date.now();
    const good = JSON.stringify({ ts, seq: 1, values: { power: 4.2 } });
    await publisher.publishAsync(topic, good, {
      qos: 1,
      properties: {
        userProperties: { source: 'test', n: '1' },
        contentType: 'application/json',
        responseTopic: 'reply/here',
        correlationData: Buffer.from('corr'),
      },
    });
    await until('both nodes got it', () => fromIn.length === 1 && fromCore.length === 1);
    const ours = fromIn[0] as Msg;
    const theirs = fromCore[0] as Msg;
    assert.ok(Buffer.isBuffer(ours.payload));
    assert.equal((ours.payload as Buffer).toString(), good);
    assert.equal(ours.topic, topic);
    assert.equal(ours.qos, 1);
    assert.equal(ours.retain, false);
    assert.deepEqual(ours.userProperties, { source: 'test', n: '1' });
    assert.ok(Number.isSafeInteger(ours.evtwin?.receipt), 'carries a receipt');
    // mqtt in adds msg._topic only when the broker is on localhost (10-mqtt.js): not part of the shape.
    const shape = (m: Msg): Record<string, unknown> => {
      const { _msgid: _a, _topic: _c, evtwin: _b, ...rest } = m as Msg & { _msgid?: string; _topic?: string };
      return rest;
    };
    assert.deepEqual(shape(ours), shape(theirs), 'the same msg as mqtt in, but for msg.evtwin');
    assert.deepEqual(Object.keys(shape(ours)).sort(), [
      'contentType',
      'correlationData',
      'payload',
      'qos',
      'responseTopic',
      'retain',
      'topic',
      'userProperties',
    ]);

    const deadline = Date.now() + 10_000;
    let stored: unknown;
    while (Date.now() < deadline) {
      stored = (await rig.query('mi1', 'SELECT power FROM telemetry').catch(() => []))[0]?.values[0]?.[1];
      if (stored !== undefined) break;
      await sleep(50);
    }
    assert.equal(stored, 4.2);

    // Not a reading: ingest dead-letters it, which settles its receipt.
    await publisher.publishAsync(topic, '{"this is": not json', { qos: 1 });
    await until('the dead letter', () => dead.length === 1);
    assert.equal(dead[0]?.error?.code !== undefined, true);
    await sleep(300); // the PUBACKs leave
    await helper.unload();
    assert.deepEqual(await leftInSession(clientId), [], 'both were acknowledged');
  });

  it('leaves a message whose path never settles to the session; acknowledges at once with ack "received"', async () => {
    for (const ack of ['stored', 'received'] as const) {
      const { clientId, site } = names();
      const topic = `evtwin/v1/${site}/cnc-01/telemetry`;
      await helper.load(modules, [
        { id: 'f1', type: 'tab' },
        mqttBrokerNode(broker.url),
        inNode({ topic, clientId, ack, wires: [['tapIn']] }),
        { id: 'tapIn', type: 'helper', z: 'f1' },
      ]);
      const fromIn = tap('tapIn');
      await until('connected', () => statusesOf('in').some((s) => s.fill === 'green'), 10_000);
      await publisher.publishAsync(topic, `held-${ack}`, { qos: 1 });
      await until('the message', () => fromIn.length === 1);
      if (ack === 'received') assert.equal(fromIn[0]?.evtwin, undefined, 'no receipt on msg');
      else assert.ok(Number.isSafeInteger(fromIn[0]?.evtwin?.receipt));
      await sleep(300);
      await helper.unload(); // with "stored": waits out the drain (3 s) for a settle that never comes
      assert.deepEqual(await leftInSession(clientId), ack === 'stored' ? [`held-${ack}`] : [], `ack ${ack}`);
    }
  });

  it('shows a red status for a node without a topic and keeps the runtime up', async () => {
    await helper.load(modules, [
      { id: 'f1', type: 'tab' },
      mqttBrokerNode(broker.url),
      inNode({ topic: '  ', clientId: 'never', wires: [['tapIn']] }),
      { id: 'tapIn', type: 'helper', z: 'f1' },
    ]);
    await until('a status', () => statusesOf('in').length > 0);
    const s = statusesOf('in').at(-1);
    assert.equal(s?.fill, 'red');
    assert.match(s?.text ?? '', /no topic/);
    // The test helper spies on the runtime's log (not in our helper type): the node logged the error.
    const log = (helper as unknown as { log(): { args: unknown[][]; ERROR: number } }).log();
    const errors = log.args
      .map((a) => a[0] as { level: number; id?: string; msg?: unknown })
      .filter((e) => e.id === 'in' && e.level === log.ERROR);
    assert.ok(
      errors.some((e) => /configuration: no topic/.test(String(e.msg))),
      JSON.stringify(errors),
    );
    await helper.unload(); // closes without a subscriber
  });
});
