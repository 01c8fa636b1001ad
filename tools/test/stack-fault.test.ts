/**
 * `npm start -- --fault=SPEC`: the simulator's fault syntax and parser (sim/faults.ts) on the stack's
 * command line, a bad spec refused with exit code 2 before anything starts, and a real stack whose
 * faulted asset (cnc-02, overheating) reads differently from its healthy neighbours within seconds.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { loadAssets, parseFaultSpec } from '../src/sim';
import { checkStackFaults, parseStackArgs, StackUsageError, USAGE } from '../src/stack';
import { influxQuery } from '../src/stack/influxStats';
import { startStack, stopStack } from './helpers/stack';

const REPO = resolve(__dirname, '../..');

test('--fault=SPEC is repeatable and parsed by the simulator parser', () => {
  const specs = ['high_temperature:cnc-02:0:600', 'power_spike:plant-a/cnc-01:5:10:0.5'];
  const args = parseStackArgs(specs.map((s) => `--fault=${s}`));
  assert.deepEqual(args.faults, specs.map(parseFaultSpec));
  assert.equal(args.sim, true);
  assert.deepEqual(parseStackArgs([]).faults, []);
  assert.match(USAGE, /--fault=SPEC .*repeatable/);
  assert.match(USAGE, /high_temperature +cnc, robot, charger/);
});

test('a bad --fault is a usage error naming the problem', () => {
  const refused = (argv: string[], message: RegExp): void =>
    assert.throws(
      () => parseStackArgs(argv),
      (err: unknown) => {
        assert.ok(err instanceof StackUsageError, String(err));
        assert.match(err.message, message);
        return true;
      },
    );
  refused(
    ['--fault=overheat:cnc-02:0:60'],
    /^--fault: fault "overheat:cnc-02:0:60": unknown type "overheat"/,
  );
  refused(['--fault=high_temperature:cnc-02:0'], /expected TYPE:ASSET:START_S:DURATION_S\[:SEVERITY\]/);
  refused(['--fault=high_temperature:cnc-02:0:60:2'], /SEVERITY must be a number in \(0, 1\]/);
  refused(['--fault'], /--fault needs a spec/);
  refused(['--no-sim', '--fault=high_temperature:cnc-02:0:60'], /does not go with --no-sim/);

  const assets = loadAssets();
  checkStackFaults([parseFaultSpec('high_temperature:cnc-02:0:60')], assets);
  assert.throws(
    () => checkStackFaults([parseFaultSpec('high_temperature:cnc-99:0:60')], assets),
    /^StackUsageError: --fault: fault high_temperature:cnc-99: no such asset$/,
  );
  assert.throws(
    () => checkStackFaults([parseFaultSpec('leak:cnc-02:0:60')], assets),
    /a cnc asset cannot have it/,
  );
});

test('npm start with a bad --fault exits 2 with the reason, before starting anything', () => {
  const unused = join(tmpdir(), `evtwin-stack-fault-${process.pid}`);
  for (const [spec, reason] of [
    ['high_temperature:cnc-02:soon:60', /START_S must be a number of seconds >= 0/],
    ['leak:cnc-02:0:60', /a cnc asset cannot have it/],
  ] as const) {
    const r = spawnSync(process.execPath, [join(REPO, 'tools/bin/evtwin-stack.js'), `--fault=${spec}`], {
      encoding: 'utf8',
      env: { ...process.env, EVTWIN_DATA_DIR: unused },
      timeout: 10_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^evtwin: --fault: /);
    assert.match(r.stderr, reason);
    assert.equal(r.stdout, '');
    assert.equal(existsSync(unused), false, 'no data folder made');
  }
});

test('npm start --fault=high_temperature:cnc-02:0:600: cnc-02 heats up, its neighbours do not', async () => {
  const stack = await startStack(['--stats-every=1', '--fault=high_temperature:cnc-02:0:600'], {
    EVTWIN_GRAFANA: 'off',
  });
  try {
    assert.match(stack.output(), /faults: high_temperature on cnc-02 from 0 s for 600 s/);
    // First and last temperature of each CNC machine once each has 12 s of readings in InfluxDB.
    const deadline = Date.now() + 25_000;
    let rise: Record<string, number> = {};
    for (;;) {
      const r = await influxQuery(
        stack.influxUrl,
        'evtwin',
        "SELECT first(temperature), last(temperature), count(temperature) FROM telemetry WHERE kind = 'cnc' GROUP BY asset",
      );
      const series = r.results?.[0]?.series ?? [];
      const rows = series.map((s) => ({ asset: s.tags?.asset ?? '', v: (s.values[0] ?? []).slice(1) }));
      if (rows.length === 3 && rows.every((x) => Number(x.v[2]) >= 12)) {
        rise = Object.fromEntries(
          rows.map((x) => [x.asset, Math.round((Number(x.v[1]) - Number(x.v[0])) * 100) / 100]),
        );
        break;
      }
      if (Date.now() > deadline) assert.fail(`12 readings of each CNC machine: ${JSON.stringify(rows)}`);
      await sleep(500);
    }
    console.log(`# temperature change over the first 12+ readings, °C: ${JSON.stringify(rise)}`);
    // Without cooling the drive heats on a 60 s constant (several °C in 12 s); a healthy one on 900 s.
    assert.ok((rise['cnc-02'] ?? 0) > 3, `cnc-02 rose ${rise['cnc-02']} °C`);
    for (const a of ['cnc-01', 'cnc-03'])
      assert.ok(Math.abs(rise[a] ?? Infinity) < 1.5, `${a} changed ${rise[a]} °C: ${JSON.stringify(rise)}`);
    assert.match(stack.output(), /faults active on 1 of 13 devices/);
  } finally {
    assert.equal(await stopStack(stack), 0, stack.output());
  }
});
