/**
 * `evtwin-sim` as users run it: argument errors exit 2 with a clear message, --help and --list-kinds
 * come from the core's catalogue, and the committed bin shim (compiled dist/) publishes to a real
 * Mosquitto, writes labels, prints progress and a summary, and stops cleanly on SIGINT.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync, type MqttClient } from 'mqtt';
import { ASSET_KINDS, METRICS_BY_KIND, decodeTelemetry, parseAssetModel } from 'node-red-contrib-evtwin';
import { startMosquitto, type Service } from '../src/services';
import { FAULT_TYPES, type FaultLabel } from '../src/sim';
import { main, parseCli } from '../src/sim/cli';

const BIN = join(__dirname, '..', 'bin', 'evtwin-sim.js');

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), stderrIsTTY: false });
  return { code, out, err };
}

function runBin(
  args: string[],
  /** interruptWhen: send SIGINT once this holds (polled), i.e. once the simulator is publishing. */
  opts: { interruptWhen?: () => boolean } = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const when = opts.interruptWhen;
    const poll =
      when === undefined
        ? undefined
        : setInterval(() => {
            if (!when()) return;
            clearInterval(poll);
            // A little more publishing after the first readings, then Ctrl-C.
            setTimeout(() => child.kill('SIGINT'), 300);
          }, 50);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(kill);
      clearInterval(poll);
      resolve({ code, out, err });
    });
  });
}

describe('evtwin-sim arguments', () => {
  it('refuses bad arguments with exit 2 and says what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['--rate', 'fast'], /--rate fast: expected a number in \(0, 1000\]/],
      [['--rate', '5000'], /--rate 5000/],
      [['--qos', '2'], /--qos 2: expected 0 or 1/],
      [['--count', '0'], /--count 0: expected an integer >= 1/],
      [['--count', '5', '--duration', '10'], /--count or --duration, not both/],
      [['--kinds', 'cnc,toaster'], /unknown kind "toaster"/],
      [['--devices', '3', '--assets', 'x.yaml'], /--assets or --devices, not both/],
      [['--assets', '/nonexistent/assets.yaml'], /cannot read \/nonexistent\/assets.yaml/],
      [['--fault', 'leak:flow-01'], /expected TYPE:ASSET:START_S:DURATION_S/],
      [['--fault', 'leak:cnc-01:0:10'], /a cnc asset cannot have it/],
      [['--fault', 'vibration:cnc-99:0:10'], /no such asset/],
      [['--fault-rate', '2'], /--fault-rate 2: expected a probability/],
      [['--fault-duration', '10'], /expected MIN-MAX/],
      [['--start', 'yesterday'], /--start yesterday: expected an ISO 8601 time/],
      [['--speed', '0'], /--speed 0/],
      [['--batch', '1.5'], /--batch 1.5/],
      [['--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    for (const [argv, why] of cases) {
      const r = await cli(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, why, argv.join(' '));
      assert.match(r.err, /Try evtwin-sim --help/);
    }
    const bad = join(mkdtempSync(join(tmpdir(), 'evtwin-sim-cli-')), 'assets.yaml');
    writeFileSync(bad, 'sites:\n  - id: s\n    assets:\n      - { id: a, kind: toaster }\n');
    const r = await cli(['--assets', bad]);
    assert.equal(r.code, 2);
    assert.match(r.err, /assets\.yaml:4:\d+: sites\[0\]\.assets\[0\]\.kind/);
  });

  it('builds options from the command line with the documented defaults', () => {
    const d = parseCli([], {}).options;
    assert.equal(d.url, 'mqtt://127.0.0.1:1883');
    assert.equal(d.assets.length, 13);
    assert.deepEqual([d.rate, d.seed, d.qos, d.batch, d.connectionPerDevice], [1, 1, 1, 1, false]);
    assert.equal(d.count, undefined);
    assert.equal(
      parseCli([], { EVTWIN_MQTT_URL: 'mqtt://127.0.0.1:1999' }).options.url,
      'mqtt://127.0.0.1:1999',
    );
    const o = parseCli(
      [
        '--devices',
        '9',
        '--kinds',
        'robot,level',
        '--rate',
        '0.5',
        '--speed',
        'max',
        '--start',
        '2026-03-01T00:00:00Z',
      ],
      {},
    ).options;
    assert.deepEqual(
      o.assets.map((a) => a.id),
      [
        'robot-0001',
        'level-0001',
        'robot-0002',
        'level-0002',
        'robot-0003',
        'level-0003',
        'robot-0004',
        'level-0004',
        'robot-0005',
      ],
    );
    assert.deepEqual([o.rate, o.speed, o.startTs], [0.5, Infinity, Date.parse('2026-03-01T00:00:00Z')]);
    const f = parseCli(
      ['--kinds', 'flow', '--fault', 'leak:*:5:10:0.5', '--fault-duration', '5-60'],
      {},
    ).options;
    assert.deepEqual(
      f.assets.map((a) => a.id),
      ['flow-01'],
    );
    assert.deepEqual(f.faults, [{ type: 'leak', asset: '*', startS: 5, durationS: 10, severity: 0.5 }]);
    assert.deepEqual(f.faultDurationS, [5, 60]);
  });

  it('--help names every fault type; --list-kinds prints the core catalogue; --print-assets a loadable model', async () => {
    const help = await cli(['--help']);
    assert.equal(help.code, 0);
    for (const t of FAULT_TYPES) assert.match(help.out, new RegExp(`${t}\\s+on `));
    const kinds = await cli(['--list-kinds']);
    for (const k of ASSET_KINDS) {
      for (const [metric, spec] of Object.entries(METRICS_BY_KIND[k])) {
        assert.match(kinds.out, new RegExp(`  ${metric}\\s+${(spec.unit || '-').replace('/', '\\/')}\\s`));
      }
    }
    const printed = await cli(['--devices', '5', '--print-assets']);
    assert.equal(parseAssetModel(printed.out).assets.length, 5);
  });
});

describe('evtwin-sim command against Mosquitto', () => {
  let broker: Service;
  let sub: MqttClient;
  let tmp: string;
  const got: Buffer[] = [];
  before(async () => {
    broker = await startMosquitto();
    sub = await connectAsync(broker.url, { protocolVersion: 5 });
    sub.on('message', (_t, p) => got.push(p));
    await sub.subscribeAsync('evtwin/v1/+/+/telemetry', { qos: 1 });
    tmp = mkdtempSync(join(tmpdir(), 'evtwin-sim-cli-'));
  });
  after(async () => {
    await sub?.endAsync();
    await broker?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('publishes exactly devices × count, labels its faults, reports progress and a summary', async () => {
    const labels = join(tmp, 'labels.jsonl');
    const r = await runBin([
      ...['--url', broker.url, '--devices', '8', '--count', '50', '--rate', '5', '--speed', 'max'],
      ...['--fault', 'vibration:cnc-0001:2:5', '--labels', labels, '--progress'],
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /evtwin-sim: done: 8 devices, 400 readings acknowledged \(QoS 1, one connection\) in [\d.]+ s, [\d,]+ readings\/s, 0 errors, 1 faults/,
    );
    assert.match(r.err, /evtwin-sim\s+[\d.]+ s {2}sent 400 {2}acked 400 {2}[\d,]+\/s {2}faults active \d/);
    const deadline = Date.now() + 10_000;
    while (got.length < 400 && Date.now() < deadline) await sleep(20);
    await sleep(100);
    assert.equal(got.length, 400);
    assert.ok(got.every((p) => decodeTelemetry(p, Date.now()).rejections.length === 0));
    const l = readFileSync(labels, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as FaultLabel);
    assert.equal(l.length, 1);
    assert.deepEqual(
      [l[0]?.asset, l[0]?.type, (l[0]?.end ?? 0) - (l[0]?.start ?? 0)],
      ['cnc-0001', 'vibration', 5000],
    );
    got.length = 0;
  });

  it('runs until Ctrl-C, then disconnects and prints the summary (exit 0)', async () => {
    // Interrupt once readings arrive: under load the process alone can take seconds to start, and a
    // signal before its handler is installed would kill it (no summary, no exit 0).
    const before = got.length;
    const r = await runBin(['--url', broker.url, '--devices', '4', '--rate', '20', '--quiet'], {
      interruptWhen: () => got.length > before,
    });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, '', '--quiet prints nothing');
    await sleep(200);
    assert.ok(got.length > 0, `${got.length} readings before the interrupt`);
    const before2 = got.length;
    const r2 = await runBin(['--url', broker.url, '--devices', '4', '--rate', '20'], {
      interruptWhen: () => got.length > before2,
    });
    assert.equal(r2.code, 0, r2.err);
    assert.match(r2.out, /evtwin-sim: stopped: 4 devices, \d+ readings acknowledged/);
    assert.equal(r2.err, '', 'no progress line when stderr is not a terminal');
  });

  it('exits 1 with a clear message when the broker is unreachable', async () => {
    const r = await runBin(['--url', 'mqtt://127.0.0.1:1', '--devices', '1', '--count', '1']);
    assert.equal(r.code, 1);
    assert.match(r.err, /evtwin-sim: cannot connect to mqtt:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
    assert.doesNotMatch(r.err, /warning/);
    // Fast-forward without an end runs into the future, which ingest refuses: say so up front.
    const ahead = await runBin(['--url', 'mqtt://127.0.0.1:1', '--devices', '1', '--speed', '10']);
    assert.equal(ahead.code, 1);
    assert.match(ahead.err, /warning: simulated time will run more than 5 min ahead of the clock/);
  });
});
