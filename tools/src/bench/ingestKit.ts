/**
 * Shared parts of the ingestion benchmark (`npm run bench`) and the chaos run (`npm run chaos`):
 * the flows under test, the device registry, child processes (publisher, ceiling subscriber,
 * Node-RED), process accounting from /proc, InfluxDB queries and the machine description.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { emptyRegistry, register, type RegistryState } from 'node-red-contrib-evtwin';
import { saveRegistry } from 'node-red-contrib-evtwin/runtime';

export const SITE = 'bench';
export const TOPIC_FILTER = 'evtwin/v1/+/+/telemetry';
/** The five metrics of every reading. */
export const METRICS = ['power', 'voltage', 'current', 'temperature', 'vibration'] as const;

/** Device i's asset id: the first `probes` devices are latency probes (`p…`), the others `d…`. */
export const assetOf = (i: number, probes: number): string => (i < probes ? `p${i}` : `d${i}`);
export const topicOf = (asset: string): string => `evtwin/v1/${SITE}/${asset}/telemetry`;

/** Messages between the orchestrator and its children (IPC). */
export type ToChild =
  | { type: 'run'; rate: number; seconds: number; label: string }
  | { type: 'stop' }
  | { type: 'step'; label: string; graceMs: number };
export interface StepReport {
  type: 'step-done';
  label: string;
  sent: number;
  acked: number;
  firstTs: number;
  lastTs: number;
  seconds: number;
}
export interface CeilingReport {
  type: 'ceiling-step';
  label: string;
  received: number;
  p50: number;
  p99: number;
  max: number;
}
export type FromChild =
  | { type: 'ready'; detail?: string }
  | { type: 'progress'; sent: number; acked: number; connected: number }
  | StepReport
  | CeilingReport
  | { type: 'report'; counts: Record<string, number> }
  | { type: 'error'; message: string };

// ---------------------------------------------------------------- devices and registry

export interface Fleet {
  devices: number;
  probes: number;
  /** Device tokens by index (registered in `registryFile`). */
  tokensFile: string;
  registryFile: string;
}

/** Register `devices` devices (site bench) in a fresh registry file; their tokens go to a 0600 file. */
export function makeFleet(dir: string, devices: number, probes: number): Fleet {
  mkdirSync(dir, { recursive: true });
  let state: RegistryState = emptyRegistry();
  const tokens: string[] = [];
  for (let i = 0; i < devices; i++) {
    const r = register(
      state,
      { site: SITE, asset: assetOf(i, probes), owner: 'bench' },
      { now: Date.now(), actor: 'bench' },
    );
    state = r.state;
    tokens.push(r.token);
  }
  const registryFile = join(dir, 'registry.json');
  saveRegistry(registryFile, state);
  const tokensFile = join(dir, 'device-tokens.json');
  writeFileSync(tokensFile, JSON.stringify(tokens), { mode: 0o600 });
  chmodSync(tokensFile, 0o600);
  return { devices, probes, tokensFile, registryFile };
}

export const readTokens = (file: string): string[] => JSON.parse(readFileSync(file, 'utf8')) as string[];

// ---------------------------------------------------------------- flows

export interface BrokerOptions {
  port: number;
  /** Persistent session (chaos): fixed client id, clean false, session expiry, no unsubscribe on close. */
  persistent?: boolean;
}

function brokerNode(b: BrokerOptions): Record<string, unknown> {
  return {
    id: 'bench-broker',
    type: 'mqtt-broker',
    name: 'bench broker',
    broker: '127.0.0.1',
    port: String(b.port),
    clientid: b.persistent ? 'evtwin-bench-node-red' : '',
    autoConnect: true,
    usetls: false,
    protocolVersion: '5',
    keepalive: '30',
    cleansession: !b.persistent,
    autoUnsubscribe: !b.persistent,
    sessionExpiry: b.persistent ? '3600' : '',
    birthTopic: '',
    closeTopic: '',
    willTopic: '',
  };
}

function mqttIn(wires: string[][], datatype: string): Record<string, unknown> {
  return {
    id: 'bench-in',
    type: 'mqtt in',
    z: 'bench-tab',
    name: TOPIC_FILTER,
    topic: TOPIC_FILTER,
    qos: '1',
    datatype,
    broker: 'bench-broker',
    nl: false,
    rap: true,
    rh: 0,
    inputs: 0,
    wires,
  };
}

const tab = { id: 'bench-tab', type: 'tab', label: 'bench', disabled: false, info: '' };

/** Counts what reaches it by `msg.error.code` (or "errors" for a Catch node) and reports over IPC. */
function counterNode(id: string, key: string): Record<string, unknown> {
  return {
    id,
    type: 'function',
    z: 'bench-tab',
    name: `count ${key}`,
    func: [
      // A Catch node's message is the one that failed: count the readings it carried (one, or an array
      // of them after a batch), else one message of something else (score points).
      'const list = Array.isArray(msg.payload) ? msg.payload : [msg.payload];',
      "const readings = list.filter((x) => x && typeof x === 'object' && x.metrics).length;",
      // A refusal whose message the broker keeps and delivers again (evtwin-mqtt-in) is not a loss.
      'const kept = msg.error && /delivers it again/.test(String(msg.error.message));',
      `const k = msg.error && msg.error.code ? '${key}:' + msg.error.code : '${key}:' + (kept ? 'kept' : readings > 0 ? 'reading' : 'other');`,
      "const report = global.get('evtwinBenchCount');",
      'if (report) report(k, Math.max(1, readings));',
      'return null;',
    ].join('\n'),
    outputs: 0,
    libs: [],
    wires: [],
  };
}

/** The stock stack: mqtt in → json → Function (to points) → node-red-contrib-influxdb batch node. */
export function stockFlow(b: BrokerOptions, influxPort: number, database: string): unknown[] {
  const toPoints = [
    '// One reading {ts, seq, values} → one InfluxDB point, tags from the topic.',
    "const parts = msg.topic.split('/');",
    'const p = msg.payload;',
    'const fields = Object.assign({}, p.values, { seq: p.seq });',
    'msg.payload = [{ measurement: "telemetry", tags: { site: parts[2], asset: parts[3] },',
    '  fields: fields, timestamp: new Date(p.ts) }];',
    'return msg;',
  ].join('\n');
  return [
    tab,
    brokerNode(b),
    mqttIn([['bench-json']], 'utf8'),
    {
      id: 'bench-json',
      type: 'json',
      z: 'bench-tab',
      name: '',
      property: 'payload',
      action: 'obj',
      pretty: false,
      wires: [['bench-fn']],
    },
    {
      id: 'bench-fn',
      type: 'function',
      z: 'bench-tab',
      name: 'to points',
      func: toPoints,
      outputs: 1,
      libs: [],
      wires: [['bench-influx-batch']],
    },
    {
      id: 'bench-influxdb',
      type: 'influxdb',
      hostname: '127.0.0.1',
      port: String(influxPort),
      protocol: 'http',
      database,
      name: 'bench',
      usetls: false,
      influxdbVersion: '1.x',
    },
    {
      id: 'bench-influx-batch',
      type: 'influxdb batch',
      z: 'bench-tab',
      influxdb: 'bench-influxdb',
      precision: 'ms',
      retentionPolicy: '',
      name: '',
      wires: [],
    },
    {
      id: 'bench-catch',
      type: 'catch',
      z: 'bench-tab',
      scope: null,
      uncaught: false,
      wires: [['bench-errors']],
    },
    counterNode('bench-errors', 'errors'),
  ];
}

export interface EvtwinFlowOptions {
  influxUrl: string;
  database: string;
  registryFile: string;
  spoolDir: string;
  spoolMaxMB?: number;
  learned?: boolean;
  batchSize?: number;
  flushMs?: number;
  /** evtwin-influx sends a batch as soon as a request slot is free (default true, as in the editor). */
  flushWhenFree?: boolean;
  /** evtwin-mqtt-in's Receive Maximum (default 20,000). */
  receiveMaximum?: number;
  /** evtwin-mqtt-in sends batches (default true; false: a message per MQTT message). */
  batch?: boolean;
}

/**
 * EVTwin: evtwin-mqtt-in → evtwin-auth → evtwin-ingest → evtwin-score → evtwin-influx-out. The input
 * acknowledges a message once its reading is stored or spooled, on a session the broker keeps (the
 * broker node's own session settings do not apply to it).
 */
export function evtwinFlow(b: BrokerOptions, o: EvtwinFlowOptions): unknown[] {
  return [
    tab,
    brokerNode(b),
    {
      id: 'bench-in',
      type: 'evtwin-mqtt-in',
      z: 'bench-tab',
      name: TOPIC_FILTER,
      broker: 'bench-broker',
      topic: TOPIC_FILTER,
      qos: '1',
      datatype: 'buffer',
      ack: 'stored',
      clientId: 'evtwin-bench-in',
      sessionExpiryS: '3600',
      receiveMaximum: String(o.receiveMaximum ?? 20_000),
      ackTimeoutS: '60',
      output: o.batch === false ? 'message' : 'batch',
      wires: [['bench-auth']],
    },
    {
      id: 'bench-registry',
      type: 'evtwin-registry',
      name: 'bench registry',
      file: o.registryFile,
      brokerUrl: '',
      graceS: '86400',
      usersFile: '',
      auditFile: '',
      influx: '',
    },
    {
      id: 'bench-auth',
      type: 'evtwin-auth',
      z: 'bench-tab',
      registry: 'bench-registry',
      topicTemplate: '',
      defaultSite: '',
      ttlS: '',
      maxKiB: '',
      seqWindow: '',
      failBurst: '',
      failPerMinute: '',
      wires: [['bench-ingest'], ['bench-rejects']],
    },
    {
      id: 'bench-ingest',
      type: 'evtwin-ingest',
      z: 'bench-tab',
      topicTemplate: '',
      defaultSite: '',
      defaultKind: '',
      assetsFile: '',
      maxKiB: '',
      maxFutureS: '',
      maxPastH: '',
      requireTs: false,
      wires: [['bench-score'], ['bench-dead']],
    },
    {
      id: 'bench-score',
      type: 'evtwin-score',
      z: 'bench-tab',
      assetsFile: '',
      rules: '',
      learned: o.learned !== false,
      trainRows: '2000',
      retrain: o.learned !== false,
      persist: false,
      modelDir: '',
      saveEveryS: '30',
      scoreEveryS: '1',
      repeatMin: '10',
      wires: [['bench-out'], ['bench-out'], []],
    },
    {
      id: 'bench-influx',
      type: 'evtwin-influx',
      name: 'bench influx',
      url: o.influxUrl,
      database: o.database,
      retentionPolicy: '',
      batchSize: String(o.batchSize ?? 5000),
      flushMs: String(o.flushMs ?? 1000),
      flushWhenFree: o.flushWhenFree !== false,
      spoolMaxMB: String(o.spoolMaxMB ?? 256),
      spoolDir: o.spoolDir,
      gzip: false,
      createDatabase: true,
    },
    { id: 'bench-out', type: 'evtwin-influx-out', z: 'bench-tab', influx: 'bench-influx', wires: [] },
    counterNode('bench-rejects', 'auth'),
    counterNode('bench-dead', 'dead'),
    {
      id: 'bench-catch',
      type: 'catch',
      z: 'bench-tab',
      scope: ['bench-out'],
      uncaught: false,
      wires: [['bench-errors']],
    },
    counterNode('bench-errors', 'errors'),
  ];
}

// ---------------------------------------------------------------- children

const HERE = __dirname;

/** Fork one of our TypeScript children (through tsx) with an IPC channel. */
export function forkChild(script: string, args: string[], extraExecArgv: string[] = []): ChildProcess {
  return fork(join(HERE, script), args, {
    execArgv: ['--import', 'tsx', ...extraExecArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** The next IPC message matching `pick`, or an error if the child exits first or the time runs out. */
export function nextMessage<T extends FromChild>(
  child: ChildProcess,
  pick: (m: FromChild) => m is T,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
    const onMessage = (m: FromChild): void => {
      if (m.type === 'error') return done(new Error(`${what}: ${m.message}`));
      if (pick(m)) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code: number | null, signal: string | null): void =>
      done(new Error(`child exited (${code ?? signal}) while waiting for ${what}`));
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const done = (err: Error): void => {
      cleanup();
      reject(err);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Ask the publisher to stop (it waits for its acknowledgements, then exits); kill it after `ms`. */
export async function stopPublisher(child: ChildProcess, ms = 35_000): Promise<void> {
  if (child.exitCode === null && child.signalCode === null && child.connected)
    child.send({ type: 'stop' } satisfies ToChild);
  await stopChild(child, null, ms);
  await stopChild(child, 'SIGKILL', 1000);
}

/** Send `signal` (none: just wait) to a child we forked, SIGKILL it after `graceMs`, and wait for it. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals | null = 'SIGTERM',
  graceMs = 15_000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (signal) child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------- /proc accounting

const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  cpuS: number;
  rssMB: number;
  at: number;
}

/** CPU seconds (user + system) and RSS of one process, from /proc. */
export function procSample(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuS = (Number(fields[11]) + Number(fields[12])) / TICKS;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { cpuS, rssMB: rssKB / 1024, at: Date.now() };
  } catch {
    return undefined;
  }
}

/** Percent of one core used between two samples. */
export const cpuPercent = (a: ProcSample | undefined, b: ProcSample | undefined): number =>
  a && b && b.at > a.at ? (100 * (b.cpuS - a.cpuS)) / ((b.at - a.at) / 1000) : NaN;

// ---------------------------------------------------------------- InfluxDB

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

export async function influxQuery(
  url: string,
  db: string,
  q: string,
  timeoutMs = 10_000,
): Promise<InfluxSeries[]> {
  const res = await fetch(`${url}/query?db=${encodeURIComponent(db)}&epoch=ms&q=${encodeURIComponent(q)}`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await res.json()) as {
    results?: { series?: InfluxSeries[]; error?: string }[];
    error?: string;
  };
  const first = body.results?.[0];
  if (!res.ok || body.error || first?.error)
    throw new Error(`InfluxDB query failed: ${body.error ?? first?.error ?? res.status}`);
  return first?.series ?? [];
}

export async function createDatabase(url: string, db: string): Promise<void> {
  const res = await fetch(`${url}/query?q=${encodeURIComponent(`CREATE DATABASE "${db}"`)}`, {
    method: 'POST',
  });
  if (!res.ok) throw new Error(`CREATE DATABASE ${db}: HTTP ${res.status}`);
}

/** Points stored (count of seq) in [from, to] ms; -1 when InfluxDB does not answer. */
export async function storedBetween(url: string, db: string, from: number, to: number): Promise<number> {
  try {
    const s = await influxQuery(
      url,
      db,
      `SELECT count(seq) FROM telemetry WHERE time >= ${from}ms AND time <= ${to}ms`,
    );
    return Number(s[0]?.values[0]?.[1] ?? 0);
  } catch {
    return -1;
  }
}

/** Stored points and distinct seqs per asset in [from, to]: distinct < points means duplicates. */
export async function distinctBetween(
  url: string,
  db: string,
  from: number,
  to: number,
): Promise<{ points: number; distinct: number }> {
  const where = `time >= ${from}ms AND time <= ${to}ms`;
  const [points, distinct] = await Promise.all([
    influxQuery(url, db, `SELECT count(seq) FROM telemetry WHERE ${where} GROUP BY asset`),
    influxQuery(url, db, `SELECT count(distinct(seq)) FROM telemetry WHERE ${where} GROUP BY asset`),
  ]);
  const sum = (ss: InfluxSeries[]): number => ss.reduce((n, s) => n + Number(s.values[0]?.[1] ?? 0), 0);
  return { points: sum(points), distinct: sum(distinct) };
}

// ---------------------------------------------------------------- statistics, machine

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

function versionOf(cmd: string, args: string[]): string {
  // `mosquitto -h` prints its version and exits non-zero: read the output either way.
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  const line = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim());
  return line?.trim() ?? `unknown (${r.error?.message ?? 'no output'})`;
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'unknown';
  }
}

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGB: number;
  loadAvgAtStart: number[];
  node: string;
  influxd: string;
  mosquitto: string;
  nodeRed: string;
  mqttJs: string;
  nodeRedContribInfluxdb: string;
}

export function describeMachine(): Machine {
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    loadAvgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    influxd: versionOf('influxd', ['version']),
    mosquitto: versionOf('mosquitto', ['-h']),
    nodeRed: packageVersion('node-red'),
    mqttJs: packageVersion('mqtt'),
    nodeRedContribInfluxdb: packageVersion('node-red-contrib-influxdb'),
  };
}

export const stamp = (): string => new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
