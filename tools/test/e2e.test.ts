/**
 * End to end, all real: simulated devices → Mosquitto → Node-RED (mqtt in → evtwin-ingest →
 * evtwin-influx-out) → influxd. Exactly N readings published must be exactly N points, in order,
 * with no duplicates, also when influxd is killed mid-run and restarted.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import helper from 'node-red-node-test-helper';
import type { Asset } from 'node-red-contrib-evtwin';
import { mqttBrokerNode, mqttInNode } from '../src/flowNodes';
import { startInfluxd, startMosquitto, type Service } from '../src/services';
import { loadAssets, startSimulator } from '../src/sim';

const NODES = join(__dirname, '..', '..', 'node-red-nodes', 'dist', 'nodes');
const nodeModules = [
  require('@node-red/nodes/core/network/10-mqtt.js'),
  require(join(NODES, 'evtwin-ingest', 'evtwin-ingest.js')),
  require(join(NODES, 'evtwin-influx', 'evtwin-influx.js')),
  require(join(NODES, 'evtwin-influx-out', 'evtwin-influx-out.js')),
];
const ASSETS_FILE = join(__dirname, '..', '..', 'provisioning', 'evtwin', 'assets.yaml');

helper.init(require.resolve('node-red'));

interface SeriesRow {
  asset: string;
  seqs: number[];
}

async function influxQuery(
  url: string,
  db: string,
  q: string,
): Promise<{
  series?: { name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }[];
}> {
  const res = await fetch(`${url}/query?db=${encodeURIComponent(db)}&epoch=ms&q=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { results: { series?: never[]; error?: string }[] };
  const first = body.results[0];
  if (!first || first.error) throw new Error(`query failed: ${first?.error ?? res.status}`);
  return first;
}

async function countPoints(url: string, db: string): Promise<number> {
  try {
    const r = await influxQuery(url, db, 'SELECT count(seq) FROM telemetry');
    return Number(r.series?.[0]?.values[0]?.[1] ?? 0);
  } catch {
    return -1; // influxd down or database not created yet
  }
}

/** Every asset's seq values in time order. */
async function seqsByAsset(url: string, db: string): Promise<SeriesRow[]> {
  const r = await influxQuery(url, db, 'SELECT seq FROM telemetry GROUP BY asset ORDER BY time ASC');
  return (r.series ?? []).map((s) => ({
    asset: s.tags?.asset ?? '?',
    seqs: s.values.map((v) => Number(v[1])),
  }));
}

function nodeById(id: string): NonNullable<ReturnType<typeof helper.getNode>> {
  const node = helper.getNode(id);
  if (!node) throw new Error(`node ${id} is not in the loaded flow`);
  return node;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (!ok(last)) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(last)}`);
    await sleep(200);
    last = await probe();
  }
  return last;
}

function assertExactlyInOrder(rows: SeriesRow[], assets: Asset[], perDevice: number): void {
  assert.deepEqual(
    rows.map((r) => r.asset).sort(),
    assets.map((a) => a.id).sort(),
    'every asset has its series',
  );
  for (const row of rows) {
    assert.equal(
      row.seqs.length,
      perDevice,
      `${row.asset}: ${row.seqs.length} points, expected ${perDevice}`,
    );
    assert.equal(new Set(row.seqs).size, perDevice, `${row.asset}: duplicate seq values`);
    for (let i = 1; i < row.seqs.length; i++) {
      assert.equal(
        row.seqs[i],
        (row.seqs[i - 1] as number) + 1,
        `${row.asset}: seq out of order or missing at ${i}`,
      );
    }
  }
}

describe('end to end: devices → Mosquitto → Node-RED → InfluxDB', () => {
  let influx: Service;
  let broker: Service;
  let userDir: string;
  const assets = loadAssets(ASSETS_FILE);

  before(async () => {
    [influx, broker] = await Promise.all([startInfluxd(), startMosquitto()]);
    userDir = mkdtempSync(join(tmpdir(), 'evtwin-e2e-'));
    helper.settings({ userDir });
    await new Promise<void>((resolve) => helper.startServer(() => resolve()));
  });
  after(async () => {
    await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
    await Promise.all([influx?.stop(), broker?.stop()]);
    rmSync(userDir, { recursive: true, force: true });
  });
  afterEach(() => helper.unload());

  /** Load the flow and wait until its MQTT subscription is live (a probe comes out as a dead letter). */
  async function loadFlow(
    database: string,
  ): Promise<{ deadLetters: { error: { code: string; message: string } }[]; statuses: string[] }> {
    const flow = [
      mqttBrokerNode(broker.url),
      mqttInNode({ id: 'in', topic: 'evtwin/v1/+/+/telemetry', wires: ['ingest'] }),
      {
        id: 'ingest',
        type: 'evtwin-ingest',
        assetsFile: ASSETS_FILE,
        topicTemplate: 'evtwin/v1/{site}/{asset}/telemetry',
        wires: [['out'], ['dead']],
      },
      {
        id: 'db',
        type: 'evtwin-influx',
        url: influx.url,
        database,
        retentionPolicy: '',
        batchSize: '1000',
        flushMs: '200',
        spoolMaxMB: '50',
        spoolDir: join(userDir, `spool-${database}`),
        gzip: true,
        createDatabase: true,
      },
      { id: 'out', type: 'evtwin-influx-out', influx: 'db', wires: [] },
      { id: 'dead', type: 'helper' },
    ];
    await helper.load(nodeModules, flow);
    const deadLetters: { error: { code: string; message: string } }[] = [];
    const statuses: string[] = [];
    nodeById('dead').on('input', (m: { error: { code: string; message: string } }) => deadLetters.push(m));
    nodeById('out').on('call:status', (call: { args: [{ text?: string }] }) =>
      statuses.push(call.args[0]?.text ?? ''),
    );
    const probe = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    try {
      await waitFor(
        'the flow to subscribe',
        async () => {
          await probe.publishAsync('evtwin/v1/plant-a/probe/telemetry', '{"values":{"x":1}}', { qos: 1 });
          await sleep(100);
          return deadLetters.length;
        },
        (n) => n > 0,
        15_000,
      );
    } finally {
      await probe.endAsync();
    }
    deadLetters.length = 0;
    return { deadLetters, statuses };
  }

  it('stores exactly N readings from 13 simulated devices', async () => {
    const db = 'e2e_plain';
    await loadFlow(db);
    const perDevice = 200;
    const sim = startSimulator({
      url: broker.url,
      assets,
      rate: 10,
      count: perDevice,
      seed: 7,
      qos: 1,
      batch: 1,
      connectionPerDevice: false,
      faults: [],
      speed: Infinity,
    });
    const stats = await sim.done;
    assert.equal(stats.acked, assets.length * perDevice);
    const n = await waitFor(
      'all points in InfluxDB',
      () => countPoints(influx.url, db),
      (c) => c >= assets.length * perDevice,
      30_000,
    );
    assert.equal(n, assets.length * perDevice);
    assertExactlyInOrder(await seqsByAsset(influx.url, db), assets, perDevice);
  });

  it('loses nothing when InfluxDB is killed for several seconds mid-run', async () => {
    const db = 'e2e_outage';
    const { statuses } = await loadFlow(db);
    const perDevice = 300;
    // 30 readings/s per device for 10 s of wall time: the outage falls in the middle of the stream.
    const sim = startSimulator({
      url: broker.url,
      assets,
      rate: 30,
      count: perDevice,
      seed: 11,
      qos: 1,
      batch: 1,
      connectionPerDevice: true,
      faults: [],
      speed: 1,
    });
    await waitFor(
      'points before the outage',
      () => countPoints(influx.url, db),
      (c) => c > 0,
      15_000,
    );
    await influx.kill();
    const killedAt = Date.now();
    await sleep(5000);
    const during = sim.stats().acked;
    await influx.restart();
    const downMs = Date.now() - killedAt;
    const stats = await sim.done;
    assert.equal(stats.acked, assets.length * perDevice);
    assert.ok(during > 0, 'readings were published while InfluxDB was down');
    const n = await waitFor(
      'all points after the outage',
      () => countPoints(influx.url, db),
      (c) => c >= assets.length * perDevice,
      60_000,
    );
    assert.equal(n, assets.length * perDevice, `exactly N after a ${downMs} ms outage`);
    assertExactlyInOrder(await seqsByAsset(influx.url, db), assets, perDevice);
    assert.ok(
      statuses.some((s) => /spool/i.test(s)),
      `the node status showed the spool: ${JSON.stringify([...new Set(statuses)].slice(0, 10))}`,
    );
  });

  it('stores the good readings of a batch with bad elements and dead-letters the bad ones', async () => {
    const db = 'e2e_bad';
    const { deadLetters } = await loadFlow(db);
    const now = Date.now();
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const batch = [
      { ts: now - 3, seq: 1, values: { power: 4.2 } },
      { ts: now - 2, seq: 2, values: { power: 'NaN' } },
      { ts: now + 86_400_000, seq: 3, values: { power: 4.3 } },
      { ts: now - 1, seq: 4, values: { power: 4.4 } },
    ];
    await client.publishAsync('evtwin/v1/plant-a/cnc-02/telemetry', JSON.stringify(batch), { qos: 1 });
    await client.publishAsync('evtwin/v1/plant-a/cnc-02/telemetry', '{not json', { qos: 1 });
    await client.publishAsync('evtwin/v1/plant-a/cnc-02/telemetry', Buffer.alloc(300 * 1024, 0x20), {
      qos: 1,
    });
    await client.endAsync();
    await waitFor(
      'dead letters',
      async () => deadLetters.length,
      (n) => n >= 4,
      10_000,
    );
    assert.deepEqual(deadLetters.map((d) => d.error.code).sort(), [
      'bad-timestamp',
      'bad-value',
      'not-json',
      'too-large',
    ]);
    const n = await waitFor(
      'good points',
      () => countPoints(influx.url, db),
      (c) => c >= 2,
      10_000,
    );
    assert.equal(n, 2);
  });
});
