/** evtwin-ingest in a real Node-RED runtime (node-red-node-test-helper). */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import type { NodeMessage } from 'node-red';

const ingestNode = require(join(__dirname, '..', 'dist', 'nodes', 'evtwin-ingest', 'evtwin-ingest.js'));
const ASSETS = join(__dirname, '..', '..', 'provisioning', 'evtwin', 'assets.yaml');

helper.init(require.resolve('node-red'));

interface Collected {
  readings: NodeMessage[];
  dead: NodeMessage[];
}

function nodeById(id: string): NonNullable<ReturnType<typeof helper.getNode>> {
  const node = helper.getNode(id);
  if (!node) throw new Error(`node ${id} is not in the loaded flow`);
  return node;
}

async function run(
  node: Record<string, unknown>,
  inputs: { topic: string; payload: unknown }[],
  expected: number,
): Promise<Collected> {
  const flow = [
    { id: 'n1', type: 'evtwin-ingest', wires: [['good'], ['bad']], ...node },
    { id: 'good', type: 'helper' },
    { id: 'bad', type: 'helper' },
  ];
  await helper.load(ingestNode, flow);
  const out: Collected = { readings: [], dead: [] };
  const doneAll = new Promise<void>((resolve) => {
    const check = (): void => {
      if (out.readings.length + out.dead.length >= expected) resolve();
    };
    nodeById('good').on('input', (m: NodeMessage) => (out.readings.push(m), check()));
    nodeById('bad').on('input', (m: NodeMessage) => (out.dead.push(m), check()));
  });
  const n1 = nodeById('n1');
  for (const input of inputs) n1.receive(input);
  await Promise.race([
    doneAll,
    new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${JSON.stringify(out)}`)), 3000)),
  ]);
  return out;
}

describe('evtwin-ingest node', () => {
  before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
  after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));
  afterEach(() => helper.unload());

  it('turns a batch into readings and dead-letters the bad item beside good ones', async () => {
    const now = Date.now();
    const payload = Buffer.from(
      JSON.stringify([
        { ts: now, seq: 1, values: { power: 4.2, temperature: 40 } },
        { ts: now + 1, seq: 2, values: { power: 'high' } },
        { ts: new Date(now + 2).toISOString(), metric: 'power', value: 4.4 },
      ]),
    );
    const out = await run(
      { assetsFile: ASSETS },
      [{ topic: 'evtwin/v1/plant-a/cnc-01/telemetry', payload }],
      3,
    );
    assert.equal(out.readings.length, 2);
    assert.deepEqual(out.readings[0]?.payload, {
      site: 'plant-a',
      line: 'machining',
      asset: 'cnc-01',
      kind: 'cnc',
      ts: now,
      seq: 1,
      metrics: { power: 4.2, temperature: 40 },
    });
    assert.equal(out.dead.length, 1);
    const dead = out.dead[0] as NodeMessage & { error: { code: string; message: string; index: number } };
    assert.equal(dead.error.code, 'bad-value');
    assert.equal(dead.error.index, 1);
    assert.match(dead.error.message, /values\.power: expected a number, got a string "high"/);
    assert.deepEqual(dead.payload, payload, 'the dead letter carries the original payload');
    assert.equal(dead.topic, 'evtwin/v1/plant-a/cnc-01/telemetry');
  });

  it('maps another topic scheme in with a template and refuses unknown assets', async () => {
    const out = await run(
      { topicTemplate: 'jjm/sensors/{asset}/data', assetsFile: ASSETS },
      [
        { topic: 'jjm/sensors/pres-01/data', payload: '{"metric":"pressure","value":3.2}' },
        { topic: 'jjm/sensors/ghost-9/data', payload: '{"metric":"pressure","value":3.2}' },
        { topic: 'other/topic', payload: '{}' },
        { topic: 'jjm/sensors/pres-01/data', payload: '{"metric":"pressure",' },
      ],
      4,
    );
    assert.equal(out.readings.length, 1);
    assert.equal((out.readings[0]?.payload as { site: string }).site, 'water-north');
    assert.deepEqual(
      out.dead.map((m) => (m as NodeMessage & { error: { code: string } }).error.code).sort(),
      ['not-json', 'topic-mismatch', 'unknown-asset'],
    );
  });

  it('reports a broken asset model instead of crashing', async () => {
    const out = await run(
      { assetsFile: '/nonexistent/assets.yaml' },
      [{ topic: 'evtwin/v1/a/b/telemetry', payload: '{}' }],
      1,
    );
    assert.equal(out.dead.length, 1);
    assert.equal((out.dead[0] as NodeMessage & { error: { code: string } }).error.code, 'config-error');
  });
});
