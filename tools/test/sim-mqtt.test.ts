/**
 * The simulator through a real Mosquitto: a subscriber (mqtt.js) must receive exactly devices × count
 * readings, every one accepted by the core's decodeTelemetry, on the core's topics, with the same
 * values the pure device model produces for the seed — over one shared connection, one connection per
 * device, batches, QoS 0 and 1. Also measures publish throughput for 50 devices.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync, type MqttClient } from 'mqtt';
import { decodeTelemetry, telemetryTopic, type Asset, type Rejection } from 'node-red-contrib-evtwin';
import { freePort, startMosquitto, type Service } from '../src/services';
import {
  DeviceSim,
  loadAssets,
  startSimulator,
  syntheticAssets,
  type FaultLabel,
  type SimReading,
  type SimStats,
  type SimulatorOptions,
} from '../src/sim';

let broker: Service;
let sub: MqttClient;
const received: { topic: string; payload: Buffer; at: number; auth?: string | string[] }[] = [];
let tmp: string;

before(async () => {
  broker = await startMosquitto();
  sub = await connectAsync(broker.url, { protocolVersion: 5, clientId: `sim-test-sub-${process.pid}` });
  sub.on('message', (topic, payload, packet) => {
    const auth = packet.properties?.userProperties?.authorization;
    received.push({ topic, payload, at: Date.now(), ...(auth !== undefined ? { auth } : {}) });
  });
  await sub.subscribeAsync('evtwin/v1/+/+/telemetry', { qos: 1 });
  tmp = mkdtempSync(join(tmpdir(), 'evtwin-sim-test-'));
});

after(async () => {
  await sub?.endAsync();
  await broker?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const base = (assets: Asset[], extra: Partial<SimulatorOptions>): SimulatorOptions => ({
  url: broker.url,
  assets,
  rate: 10,
  seed: 1,
  qos: 1,
  batch: 1,
  connectionPerDevice: false,
  faults: [],
  speed: Infinity,
  ...extra,
});

interface Delivery {
  messages: number;
  items: number;
  rejections: Rejection[];
  byTopic: Map<string, SimReading[]>;
}

/** Wait until `expected` readings arrived (or the time is up), then decode them with the core's codec. */
async function collect(expected: number, timeoutMs = 20_000): Promise<Delivery> {
  const count = (): number =>
    received.reduce((n, m) => {
      const body: unknown = JSON.parse(m.payload.toString());
      return n + (Array.isArray(body) ? body.length : 1);
    }, 0);
  const deadline = Date.now() + timeoutMs;
  while (count() < expected && Date.now() < deadline) await sleep(25);
  await sleep(200); // anything beyond the expected count would show up now
  const out: Delivery = { messages: received.length, items: 0, rejections: [], byTopic: new Map() };
  for (const m of received.splice(0)) {
    const r = decodeTelemetry(m.payload, m.at);
    out.items += r.items.length;
    out.rejections.push(...r.rejections);
    const list = out.byTopic.get(m.topic) ?? [];
    // Compare with the model's output as sent: the raw items, not the decoded copies.
    const body = JSON.parse(m.payload.toString()) as SimReading | SimReading[];
    list.push(...(Array.isArray(body) ? body : [body]));
    out.byTopic.set(m.topic, list);
  }
  return out;
}

/** Every device got exactly seq 1..count once, in increasing ts, on its core topic. */
function assertComplete(d: Delivery, assets: Asset[], count: number): void {
  assert.deepEqual(d.rejections, [], 'decodeTelemetry rejects nothing');
  assert.equal(d.items, assets.length * count);
  assert.deepEqual([...d.byTopic.keys()].sort(), assets.map((a) => telemetryTopic(a.site, a.id)).sort());
  for (const [topic, rs] of d.byTopic) {
    const sorted = [...rs].sort((a, b) => a.seq - b.seq);
    assert.deepEqual(
      sorted.map((r) => r.seq),
      Array.from({ length: count }, (_, i) => i + 1),
      `${topic}: each seq exactly once`,
    );
    for (let i = 1; i < sorted.length; i++)
      assert.ok((sorted[i] as SimReading).ts > (sorted[i - 1] as SimReading).ts);
  }
}

function assertStats(s: SimStats, assets: Asset[], count: number): void {
  assert.equal(s.acked, assets.length * count);
  assert.equal(s.sent, assets.length * count);
  assert.equal(s.errors, 0, s.lastError);
  assert.equal(s.complete, true);
  assert.deepEqual(
    Object.values(s.perDevice),
    assets.map(() => count),
  );
}

describe('simulator over Mosquitto', () => {
  it('delivers exactly devices × count readings in real time, the values the seeded model gives', async () => {
    const assets = loadAssets();
    const startTs = Date.now() - 1000;
    const t0 = Date.now();
    const sim = startSimulator(base(assets, { rate: 50, count: 25, speed: 1, startTs, seed: 9 }));
    const stats = await sim.done;
    // Real time: 25 readings at 50/s take about 0.5 s (plus the per-device phase, under 20 ms).
    assert.ok(Date.now() - t0 >= 450, `took ${Date.now() - t0} ms`);
    assertStats(stats, assets, 25);
    const d = await collect(assets.length * 25);
    assert.equal(d.messages, assets.length * 25);
    assertComplete(d, assets, 25);
    for (const a of assets) {
      const replay = new DeviceSim(a, { seed: 9, rate: 50, startTs });
      const expected = Array.from({ length: 25 }, () => replay.next());
      const got = [...(d.byTopic.get(telemetryTopic(a.site, a.id)) ?? [])].sort((x, y) => x.seq - y.seq);
      assert.deepEqual(got, expected, `${a.id}: what arrived is what the model produced`);
    }
  });

  it('with one connection per device', async () => {
    const assets = syntheticAssets(40);
    const sim = startSimulator(base(assets, { count: 30, connectionPerDevice: true }));
    let peak = 0;
    const probe = setInterval(() => (peak = Math.max(peak, sim.stats().connections)), 5);
    const stats = await sim.done;
    clearInterval(probe);
    assertStats(stats, assets, 30);
    assert.equal(peak, 40, 'one connection per device');
    const d = await collect(40 * 30);
    assert.equal(d.messages, 40 * 30);
    assertComplete(d, assets, 30);
  });

  it('with batches: K readings per message as an array, the last one shorter', async () => {
    const assets = syntheticAssets(20, ['cnc', 'flow', 'charger']);
    const stats = await startSimulator(base(assets, { count: 30, batch: 7 })).done;
    assertStats(stats, assets, 30);
    assert.equal(stats.messagesAcked, 20 * 5);
    const d = await collect(20 * 30);
    assert.equal(d.messages, 20 * 5, '7 + 7 + 7 + 7 + 2 per device');
    assertComplete(d, assets, 30);
  });

  it('at QoS 0, for a simulated duration, with faults labelled', async () => {
    const assets = syntheticAssets(16);
    const labelsFile = join(tmp, 'labels.jsonl');
    const labels: FaultLabel[] = [];
    const stats = await startSimulator(
      base(assets, {
        qos: 0,
        rate: 2,
        durationS: 60, // 120 readings per device
        faults: [{ type: 'leak', asset: 'flow-0001', startS: 10, durationS: 20 }],
        faultRate: 0.5,
        faultDurationS: [5, 20],
        labelsFile,
        onLabel: (l) => labels.push(l),
      }),
    ).done;
    assertStats(stats, assets, 120);
    assertComplete(await collect(16 * 120), assets, 120);
    const lines = readFileSync(labelsFile, 'utf8').trim().split('\n');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l) as FaultLabel),
      labels,
    );
    assert.equal(stats.faults, labels.length);
    assert.ok(labels.some((l) => l.asset === 'flow-0001' && l.type === 'leak' && l.source === 'scheduled'));
    assert.ok(labels.filter((l) => l.source === 'random').length > 5, `${labels.length} random faults`);
  });

  it('carries device tokens as the MQTT v5 user property "authorization"', async () => {
    const assets = syntheticAssets(3, ['cnc']);
    const tokens = { 'sim/cnc-0001': 'tok-1', 'sim/cnc-0002': 'tok-2' };
    await startSimulator(base(assets, { count: 2, tokens })).done;
    const deadline = Date.now() + 5000;
    while (received.length < 6 && Date.now() < deadline) await sleep(20);
    const seen = received.splice(0).map((m) => `${m.topic} ${String(m.auth)}`);
    assert.deepEqual(seen.sort(), [
      'evtwin/v1/sim/cnc-0001/telemetry tok-1',
      'evtwin/v1/sim/cnc-0001/telemetry tok-1',
      'evtwin/v1/sim/cnc-0002/telemetry tok-2',
      'evtwin/v1/sim/cnc-0002/telemetry tok-2',
      'evtwin/v1/sim/cnc-0003/telemetry undefined',
      'evtwin/v1/sim/cnc-0003/telemetry undefined',
    ]);
  });

  it('stops cleanly mid-run: everything it counted as acknowledged arrived', async () => {
    const assets = syntheticAssets(10);
    const progress: number[] = [];
    const sim = startSimulator(
      base(assets, {
        rate: 100,
        speed: 1,
        onProgress: (p) => progress.push(p.acked),
        progressIntervalMs: 100,
      }),
    );
    await sleep(700);
    const stats = await sim.stop();
    assert.equal(stats.complete, false);
    assert.ok(stats.acked > 200, `acked ${stats.acked}`);
    assert.ok(progress.length >= 4, 'progress reported');
    const d = await collect(stats.acked);
    assert.deepEqual(d.rejections, []);
    assert.equal(d.items, stats.acked);
    assert.deepEqual(await sim.done, stats, 'done resolves with the same stats');
  });

  it('rejects done when the broker is unreachable', async () => {
    const port = await freePort();
    const sim = startSimulator(base(syntheticAssets(2), { url: `mqtt://127.0.0.1:${port}`, count: 1 }));
    await assert.rejects(sim.done, /cannot connect to mqtt:\/\/127\.0\.0\.1:\d+/);
  });

  it('measures throughput for 50 devices at QoS 1 and QoS 0', async (t) => {
    const assets = syntheticAssets(50);
    const count = 600;
    for (const [qos, connectionPerDevice] of [
      [1, false],
      [0, false],
      [1, true],
    ] as const) {
      const t0 = performance.now();
      const stats = await startSimulator(base(assets, { qos, connectionPerDevice, count })).done;
      const published = performance.now();
      const d = await collect(50 * count);
      assertComplete(d, assets, count);
      assertStats(stats, assets, count);
      t.diagnostic(
        `QoS ${qos}, ${connectionPerDevice ? '50 connections' : 'one connection'}: ${50 * count} messages ` +
          `published and acknowledged at ${Math.round((50 * count) / ((published - t0) / 1000))} msg/s, all received`,
      );
    }
  });
});
