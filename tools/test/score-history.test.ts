/**
 * evtwin-score trained from an asset's history in a real influxd: the model trained in the worker from
 * the last N `telemetry` readings scores the asset's first live reading (no warm-up); an asset without
 * history, or a database that cannot answer, falls back to its first N readings with a warning and a
 * status message. The history statement binds site, asset and time as params (checked against influxd).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import helper from 'node-red-node-test-helper';
import type { NodeMessage } from 'node-red';
import { encodePoint, readingToPoint, type Reading, type ScoreResult } from 'node-red-contrib-evtwin';
import { createInfluxQuery, readAssetHistory } from 'node-red-contrib-evtwin/runtime';
import { DeviceSim, loadAssets, simReading } from '../src/sim';
import { evtwinNode, useNodeRedInflux } from './helpers/nodeRedInflux';

const NODES = [evtwinNode('evtwin-influx'), evtwinNode('evtwin-score')];
const START = Date.parse('2026-03-02T08:00:00Z');
const TRAIN = 600;

const rig = useNodeRedInflux('evtwin-hist-');

function stream(id: string, n: number): Reading[] {
  const a = loadAssets().find((x) => x.id === id);
  assert.ok(a, id);
  const sim = new DeviceSim(a, { seed: 5, rate: 1, startTs: START, faults: [] });
  return Array.from({ length: n }, () => {
    const r = sim.next();
    const reading = simReading(a, r);
    return reading;
  });
}

async function post(path: string, body: string): Promise<void> {
  const res = await fetch(`${rig.influx.url}${path}`, {
    method: 'POST',
    body,
    headers: {
      'Content-Type': path.startsWith('/query') ? 'application/x-www-form-urlencoded' : 'text/plain',
    },
  });
  assert.ok(res.status === 204 || res.status === 200, `${path}: HTTP ${res.status} ${await res.text()}`);
}

type ScoredMsg = NodeMessage & { evtwin?: { score?: ScoreResult; scoreSkipped?: string } };

interface Run {
  scored: ScoredMsg[];
  warnings: string[];
  statuses: string[];
  logs: string[];
}

async function loadFlow(db: string): Promise<Run> {
  const dir = rig.tempDir();
  const flow = [
    { id: 'f1', type: 'tab' },
    rig.influxConfig({ database: db, spoolDir: join(dir, 'spool'), createDatabase: false }),
    {
      id: 'score',
      type: 'evtwin-score',
      z: 'f1',
      learned: true,
      trainRows: String(TRAIN),
      trainFrom: 'influx',
      influx: 'cfg',
      retrain: false,
      persist: false,
      scoreEveryS: '0',
      repeatMin: '10',
      rules: '',
      wires: [['readings'], [], []],
    },
    { id: 'readings', type: 'helper', z: 'f1' },
  ];
  await helper.load(NODES, flow);
  const run: Run = { scored: [], warnings: [], statuses: [], logs: [] };
  const score = helper.getNode('score');
  assert.ok(score);
  helper.getNode('readings')?.on('input', (m: ScoredMsg) => run.scored.push(m));
  score.on('call:warn', (c: { args: unknown[] }) => run.warnings.push(String(c.args[0])));
  score.on('call:log', (c: { args: unknown[] }) => run.logs.push(String(c.args[0])));
  score.on('call:status', (c: { args: { text?: string }[] }) => run.statuses.push(c.args[0]?.text ?? ''));
  return run;
}

async function feed(run: Run, readings: Reading[]): Promise<void> {
  const score = helper.getNode('score');
  assert.ok(score);
  const before = run.scored.length;
  for (const r of readings) score.receive({ payload: r });
  const deadline = Date.now() + 30_000;
  while (run.scored.length < before + readings.length) {
    if (Date.now() > deadline)
      throw new Error(`only ${run.scored.length - before} of ${readings.length} scored`);
    await sleep(10);
  }
}

describe('evtwin-score trained from InfluxDB history', () => {
  it('a model trained from history scores the first live reading; no history falls back to first N', async () => {
    await post('/query', 'q=CREATE DATABASE h1');
    const cnc = stream('cnc-01', 2 * TRAIN + 50);
    const past = cnc.slice(0, 2 * TRAIN); // more than N: the last N are used
    const live = cnc.slice(2 * TRAIN);
    await post('/write?db=h1&precision=ms', past.map((r) => encodePoint(readingToPoint(r))).join('\n'));
    // A reading AFTER the first live one is already stored (another writer was quicker): not history.
    await post('/write?db=h1&precision=ms', encodePoint(readingToPoint(live[3] as Reading)));

    // The bound statement, straight against influxd: last N before a time, oldest first; params only.
    const q = createInfluxQuery({ url: rig.influx.url, database: 'h1' });
    const rows = await readAssetHistory(q, 'plant-a', 'cnc-01', (live[0] as Reading).ts, TRAIN);
    assert.equal(rows.length, TRAIN);
    assert.equal(rows[0]?.ts, past[TRAIN]?.ts);
    assert.equal(rows.at(-1)?.ts, past.at(-1)?.ts);
    assert.deepEqual(rows.at(-1)?.metrics, past.at(-1)?.metrics, 'metrics only: no tags, no seq');
    assert.equal((await readAssetHistory(q, "plant-a' OR '1'='1", 'cnc-01', live[0]!.ts, 10)).length, 0);
    assert.equal((await readAssetHistory(q, 'plant-a', 'cnc-01" OR "a"="a', live[0]!.ts, 10)).length, 0);

    const run = await loadFlow('h1');
    const robot = stream('robot-01', 30); // nothing stored for it
    const mixed: Reading[] = [];
    for (let i = 0; i < live.length; i++) {
      mixed.push(live[i] as Reading);
      if (i < robot.length) mixed.push(robot[i] as Reading);
    }
    await feed(run, mixed);

    const cncOut = run.scored.filter((m) => (m.payload as Reading).asset === 'cnc-01');
    assert.equal(cncOut.length, live.length, 'every live reading came out, none dropped');
    assert.deepEqual(
      cncOut.map((m) => (m.payload as Reading).ts),
      live.map((r) => r.ts),
      'in order',
    );
    const first = cncOut[0]?.evtwin?.score;
    assert.ok(first, JSON.stringify(cncOut[0]?.evtwin));
    assert.equal(first.learned?.ready, true, 'the first live reading is scored by the trained model');
    assert.equal(first.learned?.skipped, undefined);
    assert.ok(
      cncOut.every((m) => m.evtwin?.score?.learned?.ready),
      'no warm-up for cnc-01',
    );
    assert.ok(
      run.logs.some((l) => new RegExp(`plant-a/cnc-01 on ${TRAIN} readings of history`).test(l)),
      run.logs.join('\n'),
    );

    const robotOut = run.scored.filter((m) => (m.payload as Reading).asset === 'robot-01');
    assert.equal(robotOut.length, robot.length);
    assert.equal(
      robotOut[0]?.evtwin?.score?.learned?.ready,
      false,
      'robot-01 trains from its first readings',
    );
    assert.ok(
      run.warnings.some((w) =>
        /plant-a\/robot-01: 0 readings of history in InfluxDB: training from its first 600 readings instead/.test(
          w,
        ),
      ),
      run.warnings.join('\n'),
    );
    assert.ok(
      run.statuses.some((s) =>
        /robot-01: 0 readings of history in InfluxDB; training from first readings/.test(s),
      ),
      run.statuses.join('\n'),
    );
    // The periodic status counts both outcomes.
    const deadline = Date.now() + 3000;
    while (!run.statuses.some((s) => /history: 1 trained, 1 from first 600/.test(s)) && Date.now() < deadline)
      await sleep(50);
    assert.ok(
      run.statuses.some((s) => /history: 1 trained, 1 from first 600/.test(s)),
      run.statuses.join('\n'),
    );
  });

  it('a database that cannot answer falls back to the first readings, with the reason', async () => {
    const run = await loadFlow('no_such_db');
    const cnc = stream('cnc-02', 5);
    await feed(run, cnc);
    assert.equal(run.scored.length, 5);
    assert.equal(run.scored[0]?.evtwin?.score?.learned?.ready, false);
    assert.ok(
      run.warnings.some((w) =>
        /plant-a\/cnc-02: history not usable \(.*database not found.*\): training from its first/.test(w),
      ),
      run.warnings.join('\n'),
    );
  });
});
