/**
 * Scale-out, all real: two Node-RED runtimes in two processes on one Mosquitto (MQTT v5 shared
 * subscription) and one InfluxDB. Stage 1 (shared, stateless) splits the load; evtwin-shard routes
 * each reading to the instance that owns its device; stage 2 scores there. Checked: both instances
 * took a substantial share, every reading stored once (InfluxDB) and ingested once (the instances'
 * own counters), every device scored by exactly one instance (the one core/shard.ts names) with its
 * model file only there, and a device revoked on one instance refused by both.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { register, shardOf } from 'node-red-contrib-evtwin';
import { updateRegistry } from 'node-red-contrib-evtwin/runtime';
import { freePort, startInfluxd, startMosquitto, type Service } from '../src/services';
import { spawnNodeRedChild, stopChildren } from '../src/nodeRedChild';
import { statsTopic, type InstanceConfig, type InstanceStats } from '../src/scaleout/instance';

const ADMIN = 'scaleout-admin-token';
const DEVICES = 40;
const PER_DEVICE = 50;
const TOTAL = DEVICES * PER_DEVICE;
const INSTANCE = join(__dirname, '..', 'src', 'scaleout', 'instance.ts');

async function influxCount(url: string, db: string, q: string): Promise<number> {
  const res = await fetch(`${url}/query?db=${db}&q=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { results?: { series?: { values: unknown[][] }[]; error?: string }[] };
  return Number(body.results?.[0]?.series?.[0]?.values[0]?.[1] ?? 0);
}

async function until(
  what: string,
  ok: () => boolean | Promise<boolean>,
  timeoutMs: number,
  detail: () => string | Promise<string> = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${await detail()}`);
    await sleep(100);
  }
}

describe('scale-out: two Node-RED instances, shared subscription, sharded scoring', () => {
  let broker: Service;
  let influx: Service;
  const children: ChildProcess[] = [];
  const configs: InstanceConfig[] = [];
  const stats = new Map<string, InstanceStats>();
  let client: mqtt.MqttClient;
  const dir = mkdtempSync(join(tmpdir(), 'evtwin-scaleout-'));
  const registryFile = join(dir, 'registry.json');
  const tokens: Record<string, string> = {};
  const database = 'evtwin';
  const assets = Array.from({ length: DEVICES }, (_, i) => `d${String(i).padStart(2, '0')}`);

  before(async () => {
    const ctx = { now: Date.now(), actor: 'test' };
    for (const asset of [...assets, 'rev'])
      tokens[asset] = updateRegistry(registryFile, (s) =>
        register(s, { site: 's1', asset, owner: 'o' }, ctx),
      ).token;
    [broker, influx] = await Promise.all([startMosquitto(), startInfluxd()]);
    for (const [i, name] of ['A', 'B'].entries())
      configs.push({
        name,
        shard: i,
        shards: 2,
        port: await freePort(),
        broker: broker.url,
        influxUrl: influx.url,
        database,
        registryFile,
        adminToken: ADMIN,
        modelDir: join(dir, `models-${name}`),
      });
    await Promise.all(
      configs.map((c) => spawnNodeRedChild(INSTANCE, 'EVTWIN_SCALEOUT_CHILD', c, 60_000, children)),
    );
    client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    client.on('message', (topic, payload) => {
      const s = JSON.parse(payload.toString()) as InstanceStats;
      stats.set(s.name, s);
    });
    await client.subscribeAsync(statsTopic('+'));
    await until('both instances report', () => stats.size === 2, 10_000);
    await sleep(500); // both shared subscriptions are in place
  });

  after(async () => {
    await client?.endAsync();
    await stopChildren(children);
    await Promise.all([broker?.stop(), influx?.stop()]);
  });

  const publish = (asset: string, seq: number, ts: number): Promise<unknown> =>
    client.publishAsync(
      `evtwin/v1/s1/${asset}/telemetry`,
      JSON.stringify({ ts, seq, values: { temp: 20 + (seq % 7), power: 100 + seq } }),
      { qos: 1, properties: { userProperties: { authorization: `Bearer ${tokens[asset]}` } } },
    );
  const of = (name: string): InstanceStats => stats.get(name) as InstanceStats;
  const sum = (rec: Record<string, number>): number => Object.values(rec).reduce((a, b) => a + b, 0);

  it(`${TOTAL} readings of ${DEVICES} devices: load split, none lost or duplicated, each device scored by one instance`, async () => {
    const t0 = Date.now() - 60_000;
    const started = Date.now();
    for (let seq = 0; seq < PER_DEVICE; seq++)
      await Promise.all(assets.map((asset) => publish(asset, seq, t0 + seq * 1000)));
    const published = Date.now() - started;
    await until(
      'every reading ingested, scored and stored',
      async () =>
        of('A').ingested + of('B').ingested >= TOTAL &&
        sum(of('A').scored) + sum(of('B').scored) >= TOTAL &&
        (await influxCount(influx.url, database, 'SELECT count(seq) FROM telemetry')) >= TOTAL &&
        (await influxCount(influx.url, database, 'SELECT count(score) FROM scores')) >= TOTAL,
      60_000,
      async () =>
        `(telemetry ${await influxCount(influx.url, database, 'SELECT count(seq) FROM telemetry')}, ` +
        `scores ${await influxCount(influx.url, database, 'SELECT count(score) FROM scores')}, ` +
        `A ${JSON.stringify({ ...of('A'), scored: sum(of('A').scored) })}, B ${JSON.stringify({ ...of('B'), scored: sum(of('B').scored) })})`,
    );
    await sleep(1500); // anything late (a duplicate) would show now; model files are saved
    const a = of('A');
    const b = of('B');
    console.log(
      `published ${TOTAL} readings (QoS 1) in ${published} ms; stage 1: A ${a.ingested}, B ${b.ingested}; ` +
        `stage 2: A scored ${sum(a.scored)} (${Object.keys(a.scored).length} devices), B ${sum(b.scored)} (${Object.keys(b.scored).length} devices)`,
    );
    // Stage 1: exactly once in total, and both instances did a substantial share.
    assert.equal(a.ingested + b.ingested, TOTAL);
    assert.equal(a.deadLetters + b.deadLetters, 0);
    assert.ok(Math.min(a.ingested, b.ingested) >= TOTAL * 0.3, `unbalanced: ${a.ingested} / ${b.ingested}`);
    // InfluxDB: every reading once, every device's seqs complete.
    assert.equal(await influxCount(influx.url, database, 'SELECT count(seq) FROM telemetry'), TOTAL);
    assert.equal(await influxCount(influx.url, database, 'SELECT count(score) FROM scores'), TOTAL);
    for (const asset of ['d00', 'd17', 'd39'])
      assert.equal(
        await influxCount(influx.url, database, `SELECT count(seq) FROM telemetry WHERE asset='${asset}'`),
        PER_DEVICE,
      );
    // Stage 2: each device scored by exactly one instance, the one its shard names, every reading once.
    for (const asset of assets) {
      const key = `s1/${asset}`;
      const owner = shardOf('s1', asset, 2) === 0 ? a : b;
      const other = owner === a ? b : a;
      assert.equal(owner.scored[key], PER_DEVICE, `${key} in ${owner.name}`);
      assert.equal(other.scored[key], undefined, `${key} also scored by ${other.name}`);
    }
    assert.ok(
      Math.min(Object.keys(a.scored).length, Object.keys(b.scored).length) >= DEVICES * 0.25,
      'the shards are badly unbalanced',
    );
    // The per-device model files: each device's model in exactly one instance's directory.
    const files = configs.map((c) => new Set(readdirSync(c.modelDir).filter((f) => f.endsWith('.json'))));
    const [fa, fb] = files as [Set<string>, Set<string>];
    assert.equal(fa.size + fb.size, DEVICES, `model files: A ${fa.size}, B ${fb.size}`);
    for (const asset of assets) {
      const f = `s1~${asset}.json`;
      assert.equal(fa.has(f), shardOf('s1', asset, 2) === 0, `${f} in A`);
      assert.equal(fb.has(f), shardOf('s1', asset, 2) === 1, `${f} in B`);
    }
  });

  it('a device revoked through instance A is refused by both instances', async () => {
    const ts = Date.now() - 10_000;
    for (let seq = 0; seq < 10; seq++) await publish('rev', seq, ts + seq);
    await until(
      'rev accepted before the revocation',
      async () =>
        (await influxCount(influx.url, database, "SELECT count(seq) FROM telemetry WHERE asset='rev'")) ===
        10,
      10_000,
    );
    const port = (configs[0] as InstanceConfig).port;
    const res = await fetch(`http://127.0.0.1:${port}/evtwin/api/v1/registry/devices/s1/rev/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(res.status, 200, await res.text());
    await sleep(2000); // registry-sync.test.ts measures the propagation (< 1 s); margin for a loaded machine
    const before = { A: of('A').rejected.revoked ?? 0, B: of('B').rejected.revoked ?? 0 };
    for (let seq = 10; seq < 50; seq++) await publish('rev', seq, ts + seq);
    await until(
      'all 40 refused',
      () => (of('A').rejected.revoked ?? 0) + (of('B').rejected.revoked ?? 0) - before.A - before.B >= 40,
      10_000,
    );
    const refusedA = (of('A').rejected.revoked ?? 0) - before.A;
    const refusedB = (of('B').rejected.revoked ?? 0) - before.B;
    console.log(`after the revocation on A: A refused ${refusedA}, B refused ${refusedB} of 40`);
    assert.equal(refusedA + refusedB, 40);
    assert.ok(refusedA > 0 && refusedB > 0, 'both instances got (and refused) some of the revoked device');
    await sleep(500);
    assert.equal(
      await influxCount(influx.url, database, "SELECT count(seq) FROM telemetry WHERE asset='rev'"),
      10,
    );
  });
});
