/**
 * evtwin-score in a real Node-RED runtime: simulator faults → score → evtwin-influx-out → a real
 * influxd, where the `scores` and `events` points are queried back; models survive a runtime restart;
 * a corrupt model file retrains that asset with a warning; bad input is skipped with a reason.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import helper from 'node-red-node-test-helper';
import type { NodeMessage } from 'node-red';
import type { Reading, ScoreResult } from 'node-red-contrib-evtwin';
import type { InfluxWriter } from 'node-red-contrib-evtwin/runtime';
import { DeviceSim, loadAssets, simReading, type FaultSpec } from '../src/sim';
import { evtwinNode, nodeById, useNodeRedInflux } from './helpers/nodeRedInflux';

const NODES = [evtwinNode('evtwin-influx'), evtwinNode('evtwin-influx-out'), evtwinNode('evtwin-score')];
const ASSETS = join(__dirname, '..', '..', 'provisioning', 'evtwin', 'assets.yaml');
const START = Date.parse('2026-03-02T08:00:00Z');

const rig = useNodeRedInflux('evtwin-score-');
const { query, tempDir } = rig;

type ScoredMsg = NodeMessage & { evtwin?: { score?: ScoreResult; scoreSkipped?: string } };
interface Run {
  scored: ScoredMsg[];
  alerts: NodeMessage[];
  warnings: string[];
  writer: InfluxWriter;
}

async function loadFlow(db: string, modelDir: string): Promise<Run> {
  const flow = [
    { id: 'f1', type: 'tab' },
    rig.influxConfig({ database: db, spoolDir: join(modelDir, '..', 'spool-' + db), createDatabase: true }),
    {
      id: 'score',
      type: 'evtwin-score',
      z: 'f1',
      assetsFile: ASSETS,
      learned: true,
      trainRows: '2000',
      retrain: true,
      persist: true,
      modelDir,
      saveEveryS: '60',
      scoreEveryS: '0',
      repeatMin: '10',
      rules: '',
      wires: [['readings', 'out'], ['out'], ['alerts']],
    },
    { id: 'out', type: 'evtwin-influx-out', z: 'f1', influx: 'cfg' },
    { id: 'readings', type: 'helper', z: 'f1' },
    { id: 'alerts', type: 'helper', z: 'f1' },
  ];
  await helper.load(NODES, flow);
  const run: Run = {
    scored: [],
    alerts: [],
    warnings: [],
    writer: (nodeById('cfg') as unknown as { writer: InfluxWriter }).writer,
  };
  nodeById('readings').on('input', (m: ScoredMsg) => run.scored.push(m));
  nodeById('alerts').on('input', (m: NodeMessage) => run.alerts.push(m));
  // Warnings from the constructor (model loading) came before any listener: read the helper's spy.
  const spy = (nodeById('score') as unknown as { warn: { args: unknown[][] } }).warn;
  run.warnings.push(...spy.args.map((a) => String(a[0])));
  return run;
}

const demo = loadAssets();
const asset = (id: string) => {
  const a = demo.find((x) => x.id === id);
  assert.ok(a);
  return a;
};

function stream(id: string, n: number, faults: FaultSpec[], from = 0): Reading[] {
  const a = asset(id);
  const sim = new DeviceSim(a, { seed: 3, rate: 1, startTs: START, faults });
  const out: Reading[] = [];
  for (let i = 0; i < from + n; i++) {
    const r = sim.next();
    if (i < from) continue;
    const reading = simReading(a, r);
    out.push(reading);
  }
  return out;
}

async function feed(run: Run, readings: Reading[]): Promise<void> {
  const score = nodeById('score');
  const before = run.scored.length;
  for (let i = 0; i < readings.length; i++) {
    score.receive({ payload: readings[i] });
    if (i % 500 === 499) await sleep(0); // let the writer and timers run, as live traffic would
  }
  const deadline = Date.now() + 20_000;
  while (run.scored.length < before + readings.length) {
    if (Date.now() > deadline)
      throw new Error(`only ${run.scored.length - before} of ${readings.length} scored`);
    await sleep(10);
  }
  await run.writer.whenIdle();
}

describe('evtwin-score in Node-RED', () => {
  it('scores an array of readings (a batch from ingest) exactly as the same readings one by one', async () => {
    const faults: FaultSpec[] = [{ type: 'power_spike', asset: 'cnc-01', startS: 300, durationS: 90 }];
    const readings = stream('cnc-01', 600, faults);
    let run = await loadFlow('single', join(tempDir(), 'models-single'));
    await feed(run, readings);
    const single = run.scored.map((m) => m.evtwin?.score);
    const singleAlerts = run.alerts.map((m) => m.payload);
    assert.ok(singleAlerts.length > 0, 'the spike raised alerts');
    await helper.unload();

    run = await loadFlow('arrays', join(tempDir(), 'models-arrays'));
    const score = nodeById('score');
    for (let i = 0; i < readings.length; i += 50) score.receive({ payload: readings.slice(i, i + 50) });
    const deadline = Date.now() + 20_000;
    while (run.scored.length < 12 && Date.now() < deadline) await sleep(10);
    assert.equal(run.scored.length, 12, 'one message out per array in');
    assert.deepEqual(
      run.scored[0]?.payload,
      readings.slice(0, 50),
      'output 1 passes the readings on unchanged',
    );
    const batched = run.scored.flatMap((m) => (m.evtwin as { scores: (ScoreResult | null)[] }).scores);
    assert.deepEqual(batched, single);
    assert.deepEqual(
      run.alerts.map((m) => m.payload),
      singleAlerts,
    );
    await run.writer.whenIdle();
    const count = async (db: string, q: string): Promise<number> =>
      Number((await query(db, q))[0]?.values[0]?.[1] ?? 0);
    for (const q of ['SELECT count(score) FROM scores', 'SELECT count(message) FROM events'])
      assert.equal(await count('arrays', q), await count('single', q), q);
  });

  it('writes scores and explained events to InfluxDB, and keeps models across a restart', async () => {
    const modelDir = join(tempDir(), 'models');
    const SPIKE_AT = 20 * 60;
    const faults: FaultSpec[] = [
      { type: 'power_spike', asset: 'cnc-01', startS: SPIKE_AT, durationS: 180 },
      { type: 'high_temperature', asset: 'cnc-01', startS: 30 * 60, durationS: 600 },
    ];
    const N = 45 * 60;
    const cnc = stream('cnc-01', N, faults);
    const robot = stream('robot-01', N, []);
    let run = await loadFlow('s1', modelDir);
    // Interleaved as two devices would arrive.
    const both: Reading[] = [];
    for (let i = 0; i < N; i++) both.push(cnc[i] as Reading, robot[i] as Reading);
    await feed(run, both);

    const scoredCnc = run.scored.filter((m) => (m.payload as Reading).asset === 'cnc-01');
    assert.equal(scoredCnc.length, N);
    assert.deepEqual(scoredCnc[5]?.payload, cnc[5], 'output 1 passes the reading on unchanged');
    const last = scoredCnc[N - 1]?.evtwin?.score;
    assert.ok(last?.ready && last.learned?.ready, 'rules and the learned detector are ready');

    const count = async (q: string): Promise<number> =>
      Number((await query('s1', q))[0]?.values[0]?.[1] ?? 0);
    assert.equal(await count(`SELECT count(score) FROM scores WHERE asset = 'cnc-01'`), N);
    assert.equal(await count(`SELECT count(power) FROM telemetry WHERE asset = 'cnc-01'`), N);
    const fields = Object.fromEntries((await query('s1', 'SHOW FIELD KEYS FROM scores'))[0]?.values ?? []);
    assert.deepEqual(fields, { anomaly: 'boolean', failure_risk: 'float', health: 'float', score: 'float' });
    const events = await query(
      's1',
      `SELECT type, severity, metric, observed, expected, message FROM events WHERE asset = 'cnc-01'`,
    );
    const rows = events[0]?.values ?? [];
    const types = new Set(rows.map((r) => r[1]));
    assert.ok(types.has('power_spike'), `power_spike event stored (types: ${[...types].join(', ')})`);
    assert.ok(
      types.has('high_temperature'),
      `high_temperature event stored (types: ${[...types].join(', ')})`,
    );
    const spike = rows.find((r) => r[1] === 'power_spike') as unknown[];
    const spikeStart = START + SPIKE_AT * 1000;
    assert.ok(
      (spike[0] as number) >= spikeStart && (spike[0] as number) < spikeStart + 180_000,
      'in the fault window',
    );
    assert.equal(spike[3], 'power');
    assert.ok((spike[4] as number) > (spike[5] as number), 'observed above expected');
    assert.match(spike[6] as string, /power .* kW above/);
    // Events are gated: a 3-minute spike is a few events, not one per reading.
    assert.ok(rows.length < 20, `${rows.length} events for cnc-01`);
    const cncAlerts = run.alerts.filter((m) => (m.payload as { asset: string }).asset === 'cnc-01');
    assert.equal(cncAlerts.length, rows.length, 'one alert per event');
    assert.equal(cncAlerts[0]?.topic, 'evtwin/v1/plant-a/alerts');
    // Health falls and risk rises through the overheating, and the robot stays healthy.
    const healthAt = (i: number): number => scoredCnc[i]?.evtwin?.score?.health ?? NaN;
    assert.ok(
      healthAt(30 * 60 - 1) > healthAt(40 * 60),
      `health ${healthAt(30 * 60 - 1)} → ${healthAt(40 * 60)}`,
    );
    const robotLast = run.scored.filter((m) => (m.payload as Reading).asset === 'robot-01').at(-1)
      ?.evtwin?.score;
    assert.ok(robotLast && robotLast.health > 90 && robotLast.failureRisk < 0.1, JSON.stringify(robotLast));
    // No rule fires on the clean robot (the learned detector may, rarely: measured in score-rules.test.ts).
    assert.equal(
      await count(`SELECT count(message) FROM events WHERE asset = 'robot-01' AND type != 'learned'`),
      0,
    );

    // Restart the runtime: close flushes the models, the new flow restores them.
    await helper.unload();
    const files = readdirSync(modelDir).sort();
    assert.deepEqual(files, ['plant-a~cnc-01.json', 'plant-a~robot-01.json']);
    writeFileSync(join(modelDir, 'plant-a~robot-01.json'), '{"format":"evtwin-asset-state","version":1,'); // torn file
    run = await loadFlow('s1', modelDir);
    assert.ok(
      run.warnings.some((w) => /plant-a~robot-01\.json: unreadable .*retraining plant-a\/robot-01/.test(w)),
      run.warnings.join('\n'),
    );
    const more = stream('cnc-01', 10, faults, N);
    const moreRobot = stream('robot-01', 1, [], N);
    await feed(run, [cnc[N - 1] as Reading, ...more, ...moreRobot]);
    const after = run.scored;
    assert.match(
      after[0]?.evtwin?.scoreSkipped ?? '',
      /duplicate timestamp/,
      'the last timestamp survived the restart',
    );
    const first = after[1]?.evtwin?.score;
    assert.ok(first?.ready && first.learned?.ready, 'cnc-01 scores at once after the restart: no retraining');
    assert.equal(after.at(-1)?.evtwin?.score?.learned?.ready, false, 'robot-01 (corrupt file) trains again');
  });

  it('skips bad input with a reason and keeps scoring', async () => {
    const run = await loadFlow('s2', join(tempDir(), 'models'));
    const good = stream('cnc-02', 300, []);
    const bad: Record<string, unknown>[] = [
      { payload: 'not a reading' },
      { payload: { ...good[10], metrics: { power: Number.NaN } } },
      { payload: { ...good[10], metrics: {} } },
      { payload: good[5] }, // out of order after good[0..10]
    ];
    const score = nodeById('score');
    for (let i = 0; i <= 10; i++) score.receive({ payload: good[i] });
    for (const m of bad) score.receive(m);
    for (let i = 11; i < good.length; i++) score.receive({ payload: good[i] });
    const deadline = Date.now() + 10_000;
    while (run.scored.length < good.length + bad.length && Date.now() < deadline) await sleep(10);
    const reasons = run.scored.map((m) => m.evtwin?.scoreSkipped).filter((s): s is string => s !== undefined);
    assert.equal(reasons.length, 4, reasons.join('; '));
    assert.match(reasons[0] as string, /not a canonical reading/);
    assert.match(reasons[1] as string, /power is not a finite number/);
    assert.match(reasons[2] as string, /no metrics/);
    assert.match(reasons[3] as string, /out of order/);
    assert.equal(run.scored.filter((m) => m.evtwin?.score).length, good.length);
  });
});
