import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { batadalScore, confusion, pointMetrics } from '../src/eval/metrics';
import {
  nabScoreFile,
  normalise,
  NAB_PROFILES,
  perfectDetections,
  probationLength,
  scaledSigmoid,
} from '../src/eval/nab';
import { evaluateFile } from '../src/eval/run';

test('NAB arithmetic: sigmoid, probation, null 0 and perfect 100, FP before any window costs fpWeight', () => {
  assert.ok(Math.abs(scaledSigmoid(-1) - 0.98661) < 1e-5);
  assert.equal(scaledSigmoid(0), 0);
  assert.equal(scaledSigmoid(3), -1);
  assert.equal(probationLength(1000), 150);
  assert.equal(probationLength(100_000), 750);
  const n = 1000;
  const windows: [number, number][] = [
    [300, 339],
    [700, 739],
  ];
  const std = NAB_PROFILES.standard;
  const none = new Array<boolean>(n).fill(false);
  const nul = nabScoreFile(n, windows, none, std).score;
  const perfect = nabScoreFile(n, windows, perfectDetections(n, windows), std).score;
  assert.equal(nul, -2);
  assert.ok(Math.abs(perfect - 2) < 1e-12);
  assert.equal(normalise(nul, nul, perfect), 0);
  assert.equal(normalise(perfect, nul, perfect), 100);
  const fp = [...none];
  fp[200] = true; // before any window
  assert.ok(Math.abs(nabScoreFile(n, windows, fp, std).score - (-2 - 0.11)) < 1e-12);
  fp[100] = true; // in probation: not scored
  assert.ok(Math.abs(nabScoreFile(n, windows, fp, std).score - (-2 - 0.11)) < 1e-12);
  // Only the earliest detection in a window counts; a late one earns less.
  const late = [...none];
  late[330] = true;
  late[335] = true;
  const s = nabScoreFile(n, windows, late, std);
  assert.equal(s.tp, 1);
  assert.ok(Math.abs(s.score - (scaledSigmoid(-(339 - 330 + 1) / 40) / scaledSigmoid(-1) - 1)) < 1e-12);
});

test('point metrics and the BATADAL S score', () => {
  const labels = [0, 0, 1, 1, 1, 1, 0, 0, 1, 1];
  const flags = [false, true, false, true, true, true, false, false, false, false];
  const c = confusion(labels, flags);
  assert.deepEqual(c, { tp: 3, fp: 1, tn: 3, fn: 3 });
  const m = pointMetrics(c);
  assert.equal(m.precision, 0.75);
  assert.equal(m.recall, 0.5);
  assert.equal(m.far, 0.25);
  const b = batadalScore(labels, flags);
  // Attack 1 detected after 1 of 4 rows, attack 2 missed: S_TTD = 1 - (0.25 + 1) / 2.
  assert.ok(Math.abs(b.sTtd - 0.375) < 1e-12);
  assert.ok(Math.abs(b.s - (0.5 * 0.375 + 0.5 * ((0.5 + 0.75) / 2))) < 1e-12);
});

test('eval streams a synthetic labelled CSV: ours finds the injected fault, always-anomaly has recall 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'evtwin-eval-'));
  try {
    const lines = ['time;a;b;changepoint;anomaly'];
    for (let i = 0; i < 1500; i++) {
      const x = Math.sin(i / 10) * 5;
      const fault = i >= 1200 && i < 1230;
      lines.push(
        `${1_700_000_000 + i * 60};${x.toFixed(4)};${(fault ? 60 : 2 * x + 0.01 * Math.cos(i * 7)).toFixed(4)};0;${fault ? 1 : 0}`,
      );
    }
    const file = join(dir, 'synthetic.csv');
    writeFileSync(file, lines.join('\n'));
    const res = await evaluateFile(file, {
      delimiter: ';',
      timeCol: 'time',
      labelCol: 'anomaly',
      ignoreCols: ['changepoint'],
      trainRows: 600,
      format: 'points',
    });
    const ours = res.find((r) => r.detector === 'evtwin');
    const always = res.find((r) => r.detector === 'always-anomaly');
    assert.ok(ours && always);
    assert.equal(ours.rows - ours.scoredFrom, 900);
    assert.equal(pointMetrics(always.confusion).recall, 1);
    const m = pointMetrics(ours.confusion);
    assert.ok(m.recall > 0.8 && m.precision > 0.5, JSON.stringify(m));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('eval on a real NAB file scores within the null..perfect range', async () => {
  const file = join(
    __dirname,
    '..',
    '..',
    '..',
    'shared',
    'data',
    'NAB',
    'data',
    'realKnownCause',
    'rogue_agent_key_hold.csv',
  );
  const res = await evaluateFile(file, { baselines: false });
  const r = res[0];
  assert.ok(r?.nab);
  assert.equal(r.format, 'nab');
  assert.equal(r.nab.nullScore.standard, -2);
  assert.ok(Math.abs(r.nab.perfect.standard - 2) < 0.05);
  assert.ok(r.nab.raw.standard >= -2 - 0.11 * 50 && r.nab.raw.standard <= 2);
});
