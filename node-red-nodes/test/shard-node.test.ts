/** evtwin-shard in a real Node-RED runtime: one reading or an array of them (a batch from ingest). */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import type { NodeMessage } from 'node-red';
import { routeReading } from '../src/core/shard';
import type { Reading } from '../src/core/reading';

const shardNode = require(join(__dirname, '..', 'dist', 'nodes', 'evtwin-shard', 'evtwin-shard.js'));

helper.init(require.resolve('node-red'));

const reading = (asset: string): Reading => ({
  site: 'plant-a',
  asset,
  kind: 'cnc',
  ts: Date.parse('2026-03-02T08:00:00Z'),
  metrics: { power: 4.2 },
});

function nodeById(id: string): NonNullable<ReturnType<typeof helper.getNode>> {
  const node = helper.getNode(id);
  if (!node) throw new Error(`node ${id} is not in the loaded flow`);
  return node;
}

describe('evtwin-shard node', () => {
  before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
  after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));
  afterEach(() => helper.unload());

  it('routes each reading of an array to its own shard topic and sends the bad item to output 2', async () => {
    await helper.load(shardNode, [
      { id: 's', type: 'evtwin-shard', shards: '4', qos: '1', wires: [['good'], ['bad']] },
      { id: 'good', type: 'helper' },
      { id: 'bad', type: 'helper' },
    ]);
    const good: NodeMessage[] = [];
    const bad: NodeMessage[] = [];
    nodeById('good').on('input', (m: NodeMessage) => good.push(m));
    nodeById('bad').on('input', (m: NodeMessage) => bad.push(m));
    const list = ['cnc-01', 'cnc-02', 'robot-01'].map(reading);
    nodeById('s').receive({ payload: [...list, { not: 'a reading' }], evtwin: { receipts: [7] } });
    nodeById('s').receive({ payload: reading('cnc-03') });
    const deadline = Date.now() + 2000;
    while (good.length + bad.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(
      good.map((m) => m.topic),
      [...list, reading('cnc-03')].map((r) => {
        const route = routeReading(r, 4);
        assert.ok(route.ok);
        return route.topic;
      }),
    );
    assert.deepEqual(good[0]?.payload, list[0], 'each message carries one reading');
    assert.equal(bad.length, 1);
    assert.deepEqual(bad[0]?.payload, { not: 'a reading' });
    assert.equal((bad[0]?.error as { code: string }).code, 'not-routable');
  });
});
