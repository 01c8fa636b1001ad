/**
 * One Node-RED instance of a scale-out deployment, in its own process (one runtime per process).
 * Stage 1 (MQTT v5 shared subscription, stateless): auth → ingest → InfluxDB, and evtwin-shard →
 * the reading's shard topic. Stage 2 (this instance's shard only): score → InfluxDB, models on disk.
 * Counters (what this instance ingested, rejected and scored, per asset) are published every 250 ms
 * on `test/scaleout/{name}/stats` so a test can check the split without trusting the instance.
 * Run as a child: EVTWIN_SCALEOUT_CHILD='{"name":…}' node --import tsx tools/src/scaleout/instance.ts
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shardSubscription } from 'node-red-contrib-evtwin';
import { mqttBrokerNode, mqttInNode } from '../flowNodes';
import { serveNodeRed } from '../nodeRedChild';

export interface InstanceConfig {
  name: string;
  /** This instance's shard, 0-based, and the number of shards (= stage-2 instances). */
  shard: number;
  shards: number;
  /** Admin HTTP port (registry API), 127.0.0.1. */
  port: number;
  broker: string;
  influxUrl: string;
  database: string;
  registryFile: string;
  adminToken: string;
  /** Where the per-device model files go (one directory per instance). */
  modelDir: string;
}

export const statsTopic = (name: string): string => `test/scaleout/${name}/stats`;

export interface InstanceStats {
  name: string;
  ingested: number;
  deadLetters: number;
  rejected: Record<string, number>;
  /** Readings scored, per asset (`site/asset`). */
  scored: Record<string, number>;
  unroutable: number;
}

/** The flow: the same for every instance; the shard comes from the environment (EVTWIN_SHARD_TOPIC). */
export function scaleOutFlow(c: InstanceConfig, userDir: string): unknown[] {
  const count = (id: string, body: string, wires: string[][] = []): unknown => ({
    id,
    z: 'tab',
    type: 'function',
    func: `const s = flow.get('stats') || { ingested: 0, deadLetters: 0, rejected: {}, scored: {}, unroutable: 0 };\n${body}\nflow.set('stats', s);\nreturn null;`,
    outputs: 1,
    wires,
  });
  return [
    { id: 'tab', type: 'tab', label: 'scale-out' },
    mqttBrokerNode(c.broker),
    { id: 'reg', type: 'evtwin-registry', file: c.registryFile, brokerUrl: c.broker, graceS: '0' },
    {
      id: 'db',
      type: 'evtwin-influx',
      url: c.influxUrl,
      database: c.database,
      retentionPolicy: '',
      batchSize: '1000',
      flushMs: '100',
      spoolMaxMB: '50',
      spoolDir: join(userDir, 'spool'),
      gzip: false,
      createDatabase: true,
    },
    // ---- stage 1: any reading, shared with the other instances
    mqttInNode({
      id: 'in',
      z: 'tab',
      topic: '$share/evtwin/evtwin/v1/+/+/telemetry',
      rap: false,
      wires: ['auth'],
    }),
    {
      id: 'auth',
      z: 'tab',
      type: 'evtwin-auth',
      registry: 'reg',
      failBurst: '1000000',
      wires: [['ingest'], ['countRejected']],
    },
    {
      id: 'ingest',
      z: 'tab',
      type: 'evtwin-ingest',
      wires: [['out', 'shard', 'countIngested'], ['countDead']],
    },
    {
      id: 'shard',
      z: 'tab',
      type: 'evtwin-shard',
      shards: '${EVTWIN_SHARDS}',
      qos: '1',
      wires: [['mqttOut'], ['countUnroutable']],
    },
    {
      id: 'mqttOut',
      z: 'tab',
      type: 'mqtt out',
      broker: 'broker',
      topic: '',
      qos: '',
      retain: '',
      wires: [],
    },
    // ---- stage 2: only this instance's shard
    {
      id: 'inShard',
      z: 'tab',
      type: 'mqtt in',
      // Node-RED substitutes ${VAR} only for a whole property: the topic is one variable.
      topic: '${EVTWIN_SHARD_TOPIC}',
      qos: '1',
      datatype: 'json',
      broker: 'broker',
      nl: false,
      rap: false,
      inputs: 0,
      wires: [['score']],
    },
    {
      id: 'score',
      z: 'tab',
      type: 'evtwin-score',
      learned: false,
      persist: true,
      modelDir: c.modelDir,
      saveEveryS: '0.5',
      scoreEveryS: '0',
      repeatMin: '10',
      wires: [['countScored'], ['out'], []],
    },
    { id: 'out', z: 'tab', type: 'evtwin-influx-out', influx: 'db', wires: [] },
    count('countIngested', 's.ingested++;'),
    count('countDead', 's.deadLetters++;'),
    count('countUnroutable', 's.unroutable++;'),
    count(
      'countRejected',
      "const k = msg.error ? msg.error.code : '?';\ns.rejected[k] = (s.rejected[k] || 0) + 1;",
    ),
    count(
      'countScored',
      "if (msg.evtwin && msg.evtwin.score) { const k = msg.payload.site + '/' + msg.payload.asset; s.scored[k] = (s.scored[k] || 0) + 1; }",
    ),
    {
      id: 'tick',
      z: 'tab',
      type: 'inject',
      repeat: '0.25',
      once: true,
      onceDelay: 0.1,
      topic: '',
      payload: '',
      payloadType: 'date',
      wires: [['report']],
    },
    {
      id: 'report',
      z: 'tab',
      type: 'function',
      func: `const s = flow.get('stats') || { ingested: 0, deadLetters: 0, rejected: {}, scored: {}, unroutable: 0 };\nreturn { topic: '${statsTopic(c.name)}', payload: JSON.stringify({ name: '${c.name}', ...s }), qos: 0, retain: false };`,
      outputs: 1,
      wires: [['mqttOut']],
    },
  ];
}

export async function runInstance(c: InstanceConfig): Promise<void> {
  const userDir = mkdtempSync(join(tmpdir(), `evtwin-scaleout-${c.name}-`));
  mkdirSync(c.modelDir, { recursive: true });
  // Node-RED substitutes these for ${EVTWIN_SHARDS} / ${EVTWIN_SHARD_TOPIC} in the flow as it loads it.
  process.env.EVTWIN_SHARDS = String(c.shards);
  process.env.EVTWIN_SHARD_TOPIC = shardSubscription(c.shard);
  await serveNodeRed({
    userDir,
    port: c.port,
    flow: scaleOutFlow(c, userDir),
    creds: { reg: { adminToken: c.adminToken } },
  });
}

if (process.env.EVTWIN_SCALEOUT_CHILD) {
  runInstance(JSON.parse(process.env.EVTWIN_SCALEOUT_CHILD) as InstanceConfig).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
