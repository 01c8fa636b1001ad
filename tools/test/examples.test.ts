/**
 * The example flows of node-red-contrib-evtwin (Import > Examples) in a real Node-RED runtime
 * (node-red-node-test-helper) with our nodes and Node-RED's own core nodes: every node of every
 * example must exist once loaded (no unknown types), the inject-driven example must produce readings
 * and dead letters, and the MQTT-to-InfluxDB example must carry a device message into a real InfluxDB
 * through a real Mosquitto.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import helper from 'node-red-node-test-helper';
import mqtt from 'mqtt';
import { isReading, type Reading } from 'node-red-contrib-evtwin';
import {
  coreNodeFiles,
  danglingConfigRefs,
  flowProblems,
  influxRowAt,
  onTab,
  readExamples,
  withEndpoints,
  type Example,
} from '../src/packaging/examples';
import type { FlowNode } from '../src/packaging/nodered';
import { nodeSets, readPackageJson } from '../src/packaging/tarball';
import { startInfluxd, startMosquitto, type Service } from '../src/services';

const PKG_DIR = join(__dirname, '..', '..', 'node-red-nodes');
const NODE_RED = require.resolve('node-red');
helper.init(NODE_RED);

// Node files are CommonJS loaded by path, as Node-RED loads them.
const loadFile = createRequire(__filename);
const pkg = readPackageJson(PKG_DIR);
const ourModules: unknown[] = Object.values(nodeSets(pkg)).map((file) => loadFile(join(PKG_DIR, file)));
const core = coreNodeFiles(NODE_RED);
const examples = readExamples(join(PKG_DIR, 'examples'));
// The runtime's node registry, the same module instance the helper drives.
const registry = loadFile(require.resolve('@node-red/runtime/lib/nodes', { paths: [dirname(NODE_RED)] })) as {
  getType(type: string): unknown;
};

interface Message {
  payload: unknown;
  topic?: string;
  error?: { code: string; message: string; index?: number };
}

/** Load an example as the editor would import it (onto one tab), with the core nodes it uses. */
async function loadExample(flow: FlowNode[]): Promise<void> {
  const coreFiles = new Set(flow.flatMap((n) => (core.has(n.type) ? [core.get(n.type) as string] : [])));
  const coreModules: unknown[] = [...coreFiles].map((f) => loadFile(f));
  await helper.load([...coreModules, ...ourModules], onTab(flow, 'evtwin-example-tab', 'example'));
}

/** Types of the flow no loaded module registered. */
function unknownTypes(flow: FlowNode[]): string[] {
  return [...new Set(flow.map((n) => n.type))].filter((t) => !registry.getType(t));
}

/** Nodes of the flow the runtime did not create (a flow with an unknown type does not start at all). */
function missingNodes(flow: FlowNode[]): string[] {
  return flow.filter((n) => !helper.getNode(n.id)).map((n) => `${n.type} (${n.id})`);
}

function collect(id: string): Message[] {
  const seen: Message[] = [];
  const node = helper.getNode(id);
  assert.ok(node, `node ${id} exists`);
  node.on('input', (m: Message) => seen.push(m));
  return seen;
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const byName = (ex: Example, type: string, name: string): FlowNode => {
  const n = ex.flow.find((x) => x.type === type && x.name === name);
  assert.ok(n, `${ex.name}: a ${type} node named "${name}"`);
  return n;
};

describe('example flows', () => {
  let userDir: string;
  before(() => {
    // The influx writer keeps its spool in the user directory: a temporary one, not ~/.node-red.
    userDir = mkdtempSync(join(tmpdir(), 'evtwin-examples-'));
    helper.settings({ userDir });
    return new Promise<void>((resolve) => helper.startServer(() => resolve()));
  });
  after(async () => {
    await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
    rmSync(userDir, { recursive: true, force: true });
  });
  afterEach(() => helper.unload());

  it('there are examples and each is a valid flow export with a comment that explains it', () => {
    assert.ok(examples.length >= 2, `examples found: ${examples.map((e) => e.name).join(', ')}`);
    for (const ex of examples) {
      assert.deepEqual(flowProblems(ex.flow), [], ex.name);
      assert.deepEqual(
        danglingConfigRefs(ex.flow, {
          'mqtt in': ['broker'],
          'evtwin-mqtt-in': ['broker'],
          'mqtt out': ['broker'],
          'evtwin-influx-out': ['influx'],
        }),
        [],
        ex.name,
      );
      const comment = ex.flow.find((n) => n.type === 'comment');
      assert.ok(
        comment && typeof comment.info === 'string' && comment.info.length > 100,
        `${ex.name} explains itself`,
      );
    }
    const ids = examples.flatMap((ex) => ex.flow.map((n) => n.id));
    assert.equal(new Set(ids).size, ids.length, 'ids are unique across examples');
  });

  for (const ex of examples) {
    it(`"${ex.name}" loads with no unknown types`, async () => {
      // Keep the network-facing config nodes off real endpoints: nothing listens on port 1 here.
      const offline = ex.flow.map((n) =>
        n.type === 'mqtt-broker'
          ? { ...n, port: '1', autoConnect: false }
          : n.type === 'evtwin-influx'
            ? { ...n, url: 'http://127.0.0.1:1' }
            : n,
      );
      await loadExample(offline);
      assert.deepEqual(
        unknownTypes(offline),
        [],
        `${ex.name}: types neither Node-RED nor our package registers`,
      );
      assert.deepEqual(missingNodes(offline), [], `${ex.name}: nodes the runtime did not create`);
    });
  }

  it('"02 Other topic scheme": the inject buttons produce readings and dead letters', async () => {
    const ex = examples.find((e) => e.name.startsWith('02 '));
    assert.ok(ex, 'example 02 exists');
    await loadExample(ex.flow);
    const readings = collect(byName(ex, 'debug', 'readings').id);
    const dead = collect(byName(ex, 'debug', 'dead letters').id);
    for (const n of ex.flow.filter((x) => x.type === 'inject')) helper.getNode(n.id)?.receive({});
    await until(() => readings.length >= 2 && dead.length >= 3, 'two readings and three dead letters');
    await sleep(100); // nothing more may come
    assert.equal(readings.length, 2);
    assert.equal(dead.length, 3);
    for (const r of readings)
      assert.ok(isReading(r.payload), `a canonical reading: ${JSON.stringify(r.payload)}`);
    const first = readings.map((r) => r.payload as Reading).find((r) => r.seq === 1);
    assert.deepEqual(
      { ...first, ts: 0 },
      { site: 'water-north', asset: 'pres-01', kind: 'pressure', ts: 0, seq: 1, metrics: { pressure: 3.2 } },
    );
    assert.deepEqual(dead.map((m) => m.error?.code).sort(), ['bad-value', 'not-json', 'topic-mismatch']);
    const badValue = dead.find((m) => m.error?.code === 'bad-value');
    assert.equal(badValue?.error?.index, 1, 'the bad item of the batch is named by its index');
    assert.equal(typeof badValue?.payload, 'string', 'a dead letter carries the original payload');
  });

  describe('"01 MQTT to InfluxDB" against real Mosquitto and InfluxDB', () => {
    let broker: Service;
    let influx: Service;
    before(async () => {
      [broker, influx] = await Promise.all([startMosquitto(), startInfluxd()]);
    });
    after(async () => {
      await Promise.all([broker?.stop(), influx?.stop()]);
    });

    it('a device message becomes a point in database evtwin; a bad one a dead letter', async () => {
      const ex = examples.find((e) => e.name.startsWith('01 '));
      assert.ok(ex, 'example 01 exists');
      // Only the endpoints change, as a user would edit the two config nodes.
      const flow = withEndpoints(ex.flow, { mqttPort: broker.port, influxUrl: influx.url });
      await loadExample(flow);
      assert.deepEqual(unknownTypes(flow), [], 'types neither Node-RED nor our package registers');
      const readings = collect(byName(ex, 'debug', 'readings').id);
      const dead = collect(byName(ex, 'debug', 'dead letters').id);
      const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
      try {
        // The flow subscribes after it connects: repeat until the first reading shows it is listening.
        const ts = Date.now() - 60_000;
        let seq = 0;
        while (readings.length === 0) {
          seq += 1;
          if (seq > 50) throw new Error('no reading after 50 publishes');
          await client.publishAsync(
            'evtwin/v1/plant-a/cnc-01/telemetry',
            JSON.stringify({ ts: ts + seq, seq, values: { power: 4.2 } }),
            { qos: 1 },
          );
          await sleep(100);
        }
        await client.publishAsync('evtwin/v1/plant-a/cnc-01/telemetry', '{"values":', { qos: 1 });
        await until(() => dead.length === 1, 'the dead letter');
        assert.equal(dead[0]?.error?.code, 'not-json');
      } finally {
        await client.endAsync();
      }
      const first = readings[0]?.payload as Reading;
      const row = await influxRowAt(influx.url, 'evtwin', 'telemetry', first.ts);
      assert.ok(row, 'the reading reached InfluxDB');
      assert.equal(row.time, first.ts);
      assert.equal(row.site, 'plant-a');
      assert.equal(row.asset, 'cnc-01');
      assert.equal(row.power, 4.2);
    });
  });
});
