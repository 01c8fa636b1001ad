/** `evtwin-sim`: command-line front of the device simulator (argument parsing, progress line, summary). */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  ASSET_KINDS,
  AssetModelError,
  DEFAULT_LIMITS,
  METRICS_BY_KIND,
  isAssetKind,
  type Asset,
  type AssetKind,
} from 'node-red-contrib-evtwin';
import {
  DEFAULT_ASSETS_FILE,
  FAULT_KINDS,
  FAULT_TYPES,
  FaultSpecError,
  MAX_RATE,
  SimOptionsError,
  assetsToModelText,
  loadAssets,
  parseFaultSpec,
  resolveStartTs,
  startSimulator,
  syntheticAssets,
  validateOptions,
  resolveFaults,
  type FaultSpec,
  type SimProgress,
  type SimStats,
  type SimulatorOptions,
} from './index';

export const USAGE = `Usage: evtwin-sim [options]

Simulates EVTwin devices (CNC machines, assembly robots, water sensors, charge points) and publishes
their telemetry over MQTT v5 to evtwin/v1/{site}/{asset}/telemetry as {"ts", "seq", "values"}.
The same --seed gives the same readings.

Devices:
  --assets FILE          asset model to simulate (default: provisioning/evtwin/assets.yaml)
  --devices N            instead, a synthetic fleet of N devices in site "sim" (cnc-0001, flow-0001, ...)
  --kinds LIST           only these kinds, comma-separated (with --devices: the kinds to spread N over)
                         kinds: ${ASSET_KINDS.join(', ')}
  --list-kinds           print each kind's metrics and units, then exit
  --print-assets         print the chosen devices as an asset model (JSON, which is YAML), then exit

Time:
  --rate R               readings per second per device, in simulated time (default 1; fractional ok; max ${MAX_RATE})
  --count N              exactly N readings per device, then exit
  --duration S           cover S simulated seconds, then exit (neither: run until Ctrl-C)
  --start ISO            simulated time of the first reading (default: now; with --speed > 1 and an end,
                         early enough that the last reading is stamped about now)
  --speed X|max          simulated seconds per wall second (default 1); max: as fast as the broker acknowledges
  --seed N               PRNG seed (default 1)

Faults (each labelled; --labels writes the ground truth as JSON lines):
  --fault TYPE:ASSET:START_S:DURATION_S[:SEVERITY]
                         repeatable; ASSET is an id, SITE/ID or *; START_S counts from the start (simulated);
                         SEVERITY in (0, 1], default 1
  --fault-rate P         probability per device per simulated minute that a random fault begins (0..1)
  --fault-duration A-B   duration range of random faults, seconds (default 30-300)
  --labels FILE          write fault labels: {site, asset, kind, type, start, end, severity, source}
                         (start/end in epoch ms, end exclusive)
${FAULT_TYPES.map((t) => `                         ${t.padEnd(17)} on ${FAULT_KINDS[t].join(', ')}`).join('\n')}

MQTT:
  --url URL              broker (default $EVTWIN_MQTT_URL or mqtt://127.0.0.1:1883)
  --qos 0|1              default 1 (every reading acknowledged by the broker)
  --batch K              readings per message, as a JSON array (default 1)
  --connection-per-device  one MQTT connection per device (default: one shared connection)
  --window W             most unacknowledged publishes per connection (default 64, capped by the
                         broker's Receive Maximum)
  --tokens FILE          JSON {"site/asset": "token"}: sent as MQTT v5 user property "authorization"

Output:
  --progress             progress line on stderr every second (default: only when stderr is a terminal)
  --quiet                neither progress nor summary
  -h, --help             this text

Examples:
  evtwin-sim --count 60 --fault high_temperature:cnc-01:20:30 --labels labels.jsonl
  evtwin-sim --devices 1000 --kinds cnc,flow --rate 2 --duration 60 --connection-per-device
  evtwin-sim --start 2026-03-01T00:00:00Z --speed max --rate 0.2 --duration 86400 --fault-rate 0.01

Exit status: 0 done (also when stopped with Ctrl-C), 1 broker unreachable or publish errors, 2 bad arguments.`;

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CliRequest {
  /** What to do instead of simulating. */
  action: 'run' | 'help' | 'list-kinds' | 'print-assets';
  options: SimulatorOptions;
  progress: boolean | undefined;
  quiet: boolean;
}

const OPTIONS = {
  assets: { type: 'string' },
  devices: { type: 'string' },
  kinds: { type: 'string' },
  'list-kinds': { type: 'boolean' },
  'print-assets': { type: 'boolean' },
  rate: { type: 'string' },
  count: { type: 'string' },
  duration: { type: 'string' },
  start: { type: 'string' },
  speed: { type: 'string' },
  seed: { type: 'string' },
  fault: { type: 'string', multiple: true },
  'fault-rate': { type: 'string' },
  'fault-duration': { type: 'string' },
  labels: { type: 'string' },
  url: { type: 'string' },
  qos: { type: 'string' },
  batch: { type: 'string' },
  'connection-per-device': { type: 'boolean' },
  window: { type: 'string' },
  tokens: { type: 'string' },
  progress: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function num(name: string, raw: string, check: (n: number) => boolean, want: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !check(n))
    throw new UsageError(`--${name} ${raw}: expected ${want}`);
  return n;
}
const int = (name: string, raw: string, min: number): number =>
  num(name, raw, (n) => Number.isSafeInteger(n) && n >= min, `an integer >= ${min}`);

/** Parse the command line into simulator options; throws UsageError with a message for the user. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env): CliRequest {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const action = v.help
    ? 'help'
    : v['list-kinds']
      ? 'list-kinds'
      : v['print-assets']
        ? 'print-assets'
        : 'run';

  let kinds: AssetKind[] | undefined;
  if (v.kinds !== undefined) {
    const names = v.kinds.split(',').map((k) => k.trim());
    const bad = names.filter((k) => !isAssetKind(k));
    if (bad.length > 0) {
      throw new UsageError(
        `--kinds: unknown kind ${bad.map((b) => `"${b}"`).join(', ')} (kinds: ${ASSET_KINDS.join(', ')})`,
      );
    }
    kinds = names.filter(isAssetKind);
  }
  const only = kinds;
  if (v.devices !== undefined && v.assets !== undefined)
    throw new UsageError('give --assets or --devices, not both');
  const seed = v.seed === undefined ? 1 : int('seed', v.seed, 0);
  let assets: Asset[] = [];
  if (action === 'run' || action === 'print-assets') {
    if (v.devices !== undefined) {
      assets = syntheticAssets(int('devices', v.devices, 1), kinds ?? ASSET_KINDS, seed);
    } else {
      try {
        assets = loadAssets(v.assets ?? DEFAULT_ASSETS_FILE);
      } catch (err) {
        if (err instanceof AssetModelError) throw new UsageError(`--assets: ${err.message}`);
        throw new UsageError(
          `--assets: cannot read ${v.assets ?? DEFAULT_ASSETS_FILE}: ${(err as Error).message}`,
        );
      }
      if (only) assets = assets.filter((a) => only.includes(a.kind));
    }
    if (assets.length === 0) throw new UsageError('no devices to simulate (check --assets and --kinds)');
  }

  if (v.count !== undefined && v.duration !== undefined)
    throw new UsageError('give --count or --duration, not both');
  let startTs: number | undefined;
  if (v.start !== undefined) {
    startTs = Date.parse(v.start);
    if (Number.isNaN(startTs))
      throw new UsageError(`--start ${v.start}: expected an ISO 8601 time, e.g. 2026-03-01T00:00:00Z`);
  }
  let speed: number | undefined;
  if (v.speed !== undefined)
    speed = v.speed === 'max' ? Infinity : num('speed', v.speed, (n) => n > 0, 'a number > 0 or "max"');

  const faults: FaultSpec[] = [];
  for (const f of v.fault ?? []) {
    try {
      faults.push(parseFaultSpec(f));
    } catch (err) {
      throw new UsageError(`--fault: ${(err as Error).message}`);
    }
  }
  let faultDurationS: [number, number] | undefined;
  if (v['fault-duration'] !== undefined) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$/.exec(v['fault-duration']);
    const lo = Number(m?.[1]);
    const hi = Number(m?.[2]);
    if (!m || !(lo > 0 && hi >= lo))
      throw new UsageError(
        `--fault-duration ${v['fault-duration']}: expected MIN-MAX seconds, 0 < MIN <= MAX`,
      );
    faultDurationS = [lo, hi];
  }

  let tokens: Record<string, string> | undefined;
  if (v.tokens !== undefined) {
    let parsedTokens: unknown;
    try {
      parsedTokens = JSON.parse(readFileSync(v.tokens, 'utf8'));
    } catch (err) {
      throw new UsageError(`--tokens: cannot read ${v.tokens}: ${(err as Error).message}`);
    }
    if (
      typeof parsedTokens !== 'object' ||
      parsedTokens === null ||
      Array.isArray(parsedTokens) ||
      !Object.values(parsedTokens).every((t) => typeof t === 'string')
    ) {
      throw new UsageError(`--tokens ${v.tokens}: expected a JSON object {"site/asset": "token", ...}`);
    }
    tokens = parsedTokens as Record<string, string>;
  }

  const options: SimulatorOptions = {
    url: v.url ?? env.EVTWIN_MQTT_URL ?? 'mqtt://127.0.0.1:1883',
    assets,
    rate:
      v.rate === undefined
        ? 1
        : num('rate', v.rate, (n) => n > 0 && n <= MAX_RATE, `a number in (0, ${MAX_RATE}]`),
    seed,
    qos: v.qos === undefined ? 1 : (num('qos', v.qos, (n) => n === 0 || n === 1, '0 or 1') as 0 | 1),
    batch: v.batch === undefined ? 1 : int('batch', v.batch, 1),
    connectionPerDevice: v['connection-per-device'] ?? false,
    faults,
  };
  if (v.count !== undefined) options.count = int('count', v.count, 1);
  if (v.duration !== undefined) options.durationS = num('duration', v.duration, (n) => n > 0, 'seconds > 0');
  if (startTs !== undefined) options.startTs = startTs;
  if (speed !== undefined) options.speed = speed;
  if (v['fault-rate'] !== undefined) {
    options.faultRate = num('fault-rate', v['fault-rate'], (n) => n >= 0 && n <= 1, 'a probability in 0..1');
  }
  if (faultDurationS) options.faultDurationS = faultDurationS;
  if (v.labels !== undefined) options.labelsFile = v.labels;
  if (v.window !== undefined) options.window = int('window', v.window, 1);
  if (tokens) options.tokens = tokens;

  if (action === 'run') {
    try {
      validateOptions(options);
      resolveFaults(faults, assets); // a leak on a CNC machine is an argument error, found before connecting
    } catch (err) {
      if (err instanceof SimOptionsError || err instanceof FaultSpecError) throw new UsageError(err.message);
      throw err;
    }
  }
  return { action, options, progress: v.progress, quiet: v.quiet ?? false };
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const simTime = (ts: number): string => new Date(ts).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function progressLine(p: SimProgress, speed: number): string {
  return (
    `evtwin-sim ${p.elapsedS.toFixed(1).padStart(6)} s  sent ${fmtInt(p.sent)}  acked ${fmtInt(p.acked)}  ` +
    `${fmtInt(p.currentRatePerS)}/s  faults active ${p.faultsActive}` +
    (speed !== 1 ? `  sim ${simTime(p.simTs)}` : '') +
    (p.errors > 0 ? `  errors ${p.errors}` : '')
  );
}

export function summaryLine(s: SimStats, o: SimulatorOptions, stopped: boolean): string {
  const msgs = o.batch > 1 ? ` in ${fmtInt(s.messagesAcked)} messages` : '';
  return (
    `evtwin-sim: ${stopped && !s.complete ? 'stopped' : 'done'}: ${s.devices} devices, ${fmtInt(s.acked)} readings acknowledged${msgs} ` +
    `(QoS ${o.qos}, ${s.connections > 1 ? `${s.connections} connections` : 'one connection'}) in ${s.elapsedS.toFixed(1)} s, ` +
    `${fmtInt(s.ratePerS)} readings/s, ${s.errors} errors, ${s.faults} faults` +
    (o.labelsFile ? ` (labels: ${o.labelsFile})` : '') +
    (s.lastError && s.errors > 0 ? `; last error: ${s.lastError}` : '')
  );
}

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stderrIsTTY: boolean;
  /** Register a stop request (Ctrl-C); returns an unregister function. */
  onInterrupt?: (handler: () => void) => () => void;
}

const processIo = (): CliIo => ({
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  stderrIsTTY: process.stderr.isTTY === true,
  onInterrupt: (handler) => {
    let count = 0;
    const onSignal = (): void => {
      if (++count > 1) process.exit(130); // a second Ctrl-C: do not wait for the broker any longer
      handler();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    return () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
  },
});

/** Run the CLI; resolves to the exit status. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  // `evtwin-sim chargers ...`: OCPP charge points (sim/chargers.ts).
  // Loaded on demand: the device simulator starts without the OCPP and registry modules.
  if (argv[0] === 'chargers')
    return (await import('./chargers.js')).chargersMain(argv.slice(1), (s) => io.stdout(s));
  // `evtwin-sim drivers ...`: charge requests replayed against the API (sim/drivers.ts).
  if (argv[0] === 'drivers')
    return (await import('./drivers.js')).driversMain(argv.slice(1), (s) => io.stdout(s));
  let req: CliRequest;
  try {
    req = parseCli(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr(`evtwin-sim: ${err.message}\nTry evtwin-sim --help.\n`);
    return 2;
  }
  if (req.action === 'help') {
    io.stdout(USAGE + '\n');
    return 0;
  }
  if (req.action === 'list-kinds') {
    for (const kind of ASSET_KINDS) {
      io.stdout(`${kind}\n`);
      for (const [metric, spec] of Object.entries(METRICS_BY_KIND[kind])) {
        io.stdout(`  ${metric.padEnd(14)} ${(spec.unit || '-').padEnd(5)} ${spec.description}\n`);
      }
    }
    return 0;
  }
  if (req.action === 'print-assets') {
    io.stdout(assetsToModelText(req.options.assets));
    return 0;
  }

  const o = req.options;
  const showProgress = !req.quiet && (req.progress ?? io.stderrIsTTY);
  const inPlace = io.stderrIsTTY; // overwrite the line on a terminal; one line each otherwise
  let lastLen = 0;
  if (showProgress) {
    o.onProgress = (p) => {
      const line = progressLine(p, o.speed ?? 1);
      if (inPlace) {
        io.stderr(`\r${line}${' '.repeat(Math.max(0, lastLen - line.length))}`);
        lastLen = line.length;
      } else {
        io.stderr(line + '\n');
      }
    };
  }
  // The platform refuses readings more than 5 minutes ahead of its clock (core telemetry.ts, maxFutureMs).
  const startTs = resolveStartTs(o, Date.now());
  const speed = o.speed ?? 1;
  const endTs =
    o.count !== undefined
      ? startTs + (o.count / o.rate) * 1000
      : o.durationS !== undefined
        ? startTs + o.durationS * 1000
        : speed > 1
          ? Infinity
          : startTs;
  if (!req.quiet && endTs > Date.now() + DEFAULT_LIMITS.maxFutureMs) {
    io.stderr(
      `evtwin-sim: warning: simulated time will run more than ${DEFAULT_LIMITS.maxFutureMs / 60_000} min ahead of the clock; ` +
        'ingest refuses such readings (use --start in the past, or a bounded run)\n',
    );
  }
  const sim = startSimulator({ ...o, startTs });
  let stopped = false;
  const unregister = io.onInterrupt?.(() => {
    stopped = true;
    void sim.stop();
  });
  try {
    const stats = await sim.done;
    if (showProgress && inPlace && lastLen > 0) io.stderr('\n');
    if (!req.quiet) io.stdout(summaryLine(stats, o, stopped) + '\n');
    return stats.errors > 0 ? 1 : 0;
  } catch (err) {
    if (showProgress && inPlace && lastLen > 0) io.stderr('\n');
    io.stderr(`evtwin-sim: ${(err as Error).message}\n`);
    return 1;
  } finally {
    unregister?.();
  }
}
