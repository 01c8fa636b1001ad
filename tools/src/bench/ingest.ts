/**
 * `npm run bench`: the whole ingestion path on real Mosquitto, InfluxDB and Node-RED, three consumers
 * side by side on the same services in one run:
 *   ceiling  one mqtt.js subscriber, no processing (raw broker throughput)
 *   stock    mqtt in → json → Function (to points) → node-red-contrib-influxdb `influxdb batch`
 *   evtwin   mqtt in → evtwin-auth → evtwin-ingest → evtwin-score → evtwin-influx-out
 * Simulated devices (one MQTT connection each, a separate process) publish at a target rate stepped
 * up until the consumer saturates (delivered < 90 % of offered, or latency running away: the median of
 * a step's last quarter past --runaway-ms).
 * Every figure is measured: delivered and lost readings are counted in InfluxDB; latency is the
 * publish time in the payload to the moment influxd acknowledged (204) the write holding a probe
 * device's point, seen by a proxy in this process between the consumers and influxd (--latency ack,
 * the default), or to the moment the point was first returned by a query polled every --poll-ms
 * (--latency poll: the figure carries the poll's error); RSS and CPU are the consumer process's from
 * /proc. `--help` lists the options.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { freePort, startInfluxd, startMosquitto, type Service } from '../services';
import { round, summarise, type LatencyMeter, type LatencyResult } from './latencyStats';
import { WriteAckLatency } from './writeAckLatency';
import {
  cpuPercent,
  createDatabase,
  describeMachine,
  evtwinFlow,
  forkChild,
  influxQuery,
  makeFleet,
  nextMessage,
  percentile,
  procSample,
  stamp,
  stockFlow,
  stopChild,
  stopPublisher,
  storedBetween,
  type CeilingReport,
  type FromChild,
  type Machine,
  type ProcSample,
  type StepReport,
  type ToChild,
} from './ingestKit';

const HELP = `npm run bench [-- options]     ingestion benchmark: ceiling vs stock Node-RED vs EVTwin

  --devices N         simulated devices, one MQTT connection each (default 1000, at most 10000)
  --rates LIST        target rates in msg/s, stepped up until saturation
                      (default 2000,5000,10000,15000,17500,20000,22500,25000,30000,40000,50000)
  --step-seconds S    seconds per step (default 15)
  --pipelines LIST    ceiling,stock,evtwin (default all three, in that order)
  --publishers N      publisher processes sharing the fleet (default 1; more only helps with spare cores)
  --flush-ms MS       evtwin-influx flush interval (default 1000, the node's default)
  --no-flush-when-free  evtwin-influx waits for the flush interval instead of sending a batch as soon
                      as a request slot is free (the node's default for new connections)
  --inflight N        Mosquitto max_inflight_messages per client (default 1000; Mosquitto's own: 20)
  --qos 0|1           publisher QoS (default 1; consumers subscribe with QoS 1)
  --probes N          devices whose points measure latency (default devices/20, 4..50)
  --latency ack|poll  how latency is measured for stock and evtwin (default ack):
                      ack   payload ts → influxd's 204 to the write holding the point, seen by a
                            proxy in this process between the consumer and influxd
                      poll  payload ts → point first returned by a query polled every --poll-ms
                            (carries the poll's error and loads influxd)
  --poll-ms MS        latency poll period with --latency poll (default 20)
  --runaway-ms MS     median latency of a step's last quarter beyond this counts as saturated
                      (latency runaway; default 1000)
  --no-learned        evtwin-score with rules only (default: rules + learned detector)
  --no-batch          evtwin-mqtt-in sends a message per MQTT message (default: batches)
  --node-flags "F..." Node/V8 flags for both Node-RED consumers, e.g. "--max-semi-space-size=32"
  --cpu-prof          V8 CPU profiles of each Node-RED consumer in <out>/cpuprofile-<pipeline>/
  --out DIR           results folder (default bench/results)
  --quick             smoke run: 20 devices, rates 100,300, 2 s steps
  --help`;

const { values: opt } = parseArgs({
  options: {
    devices: { type: 'string' },
    rates: { type: 'string' },
    'step-seconds': { type: 'string' },
    pipelines: { type: 'string', default: 'ceiling,stock,evtwin' },
    qos: { type: 'string', default: '1' },
    probes: { type: 'string' },
    latency: { type: 'string', default: 'ack' },
    'poll-ms': { type: 'string', default: '20' },
    'runaway-ms': { type: 'string', default: '1000' },
    publishers: { type: 'string', default: '1' },
    'flush-ms': { type: 'string', default: '1000' },
    'no-flush-when-free': { type: 'boolean', default: false },
    inflight: { type: 'string', default: '1000' },
    'no-learned': { type: 'boolean', default: false },
    'no-batch': { type: 'boolean', default: false },
    'node-flags': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    out: { type: 'string' },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

type Pipeline = 'ceiling' | 'stock' | 'evtwin';
/** How stock and evtwin latency is measured (the ceiling's is always at its subscriber). */
export type LatencyMeasure = 'ack' | 'poll';

export interface StepResult {
  targetRate: number;
  sent: number;
  /** msg/s the publishers achieved. */
  offered: number;
  /** msg/s stored (or received, for the ceiling) within the step plus 1 s. */
  delivered: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  /** Median latency of the step's last quarter (ceiling: p50): above --runaway-ms counts as saturated. */
  latencyTailP50Ms: number;
  /** [p50, p99] per second of the step (stock and evtwin). */
  latencyBySecond?: [number, number][];
  latencySamples: number;
  /** Median duration of one latency poll (its resolution); only with --latency poll. */
  pollQueryP50Ms?: number;
  /** 99th percentile of the poll duration: a slow poll adds up to half of it to what it finds. */
  pollQueryP99Ms?: number;
  /** influxd's answer time to the consumer's writes (--latency ack): p50/p99/max ms, and [p50, p99] per second. */
  influxWriteMs?: { p50: number; p99: number; max: number; requests: number; bySecond: [number, number][] };
  /** CPU of this harness process (the write proxy, with --latency ack), one core = 100. */
  harnessCpuPercent: number;
  /** Stored after the final drain (ceiling: received). */
  stored: number;
  lost: number;
  cpuPercent: number;
  rssMB: number;
  brokerCpuPercent: number;
  influxCpuPercent: number;
  publisherCpuPercent: number;
  loadAvg1: number;
  saturated: boolean;
  publisherBound: boolean;
  note?: string;
}

export interface PipelineResult {
  pipeline: Pipeline;
  description: string;
  latencyDefinition: string;
  steps: StepResult[];
  /** Highest delivered msg/s among steps that were not saturated. */
  sustainedMsgPerS: number;
  readingsPerS: number;
  metricValuesPerS: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  peakRssMB: number;
  cpuPercentAtSustained: number;
  sent: number;
  lost: number;
  saturatedAt?: number;
  counts?: Record<string, number>;
}

export interface BenchResult {
  kind: 'evtwin-ingest-bench';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: Machine;
  loadAvgAtEnd: number[];
  config: {
    devices: number;
    probes: number;
    publishers: number;
    flushMs: number;
    /** evtwin-influx sent a batch as soon as a request slot was free (absent in older results: false). */
    flushWhenFree?: boolean;
    inflight: number;
    rates: number[];
    stepSeconds: number;
    qos: number;
    learned: boolean;
    /** evtwin-mqtt-in sent batches (false: a message per MQTT message). */
    batch: boolean;
    /** How stock and evtwin latency was measured (results before it was recorded: poll). */
    latencyMeasure: LatencyMeasure;
    /** Latency poll period; only with latencyMeasure poll. */
    pollMs: number;
    runawayMs: number;
  };
  pipelines: PipelineResult[];
  summary: Record<string, number | string | boolean | null>;
}

const DESCRIPTIONS: Record<Pipeline, string> = {
  ceiling: 'one mqtt.js subscriber (QoS 1), no processing',
  stock:
    'mqtt in → json → Function (to points) → node-red-contrib-influxdb influxdb batch (one write per message)',
  evtwin:
    'evtwin-mqtt-in (acks once stored) → evtwin-auth (token per message) → evtwin-ingest → evtwin-score → evtwin-influx-out',
};
const STORED_LATENCY: Record<LatencyMeasure, string> = {
  ack:
    "payload ts → influxd's 2xx answer to the write request holding the point (in its WAL), on probe " +
    'devices, seen by a proxy in the harness between the consumer and influxd',
  poll: 'payload ts → point first returned by an InfluxDB query on probe devices (polled)',
};
const latencyDefinition = (p: Pipeline, measure: LatencyMeasure): string =>
  p === 'ceiling' ? 'payload ts → message received by the subscriber' : STORED_LATENCY[measure];

const log = (line: string): void => {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};
const fmt = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en') : '–');

/** Polls probe devices' points and records, once per point, when it became queryable. */
class LatencyPoller implements LatencyMeter {
  private readonly seen = new Set<string>();
  /** (publish ts, latency) pairs, to see whether latency grows through the step. */
  private timeline: [number, number][] = [];
  /** How long each poll took: the resolution of the latency figure. */
  queryMs: number[] = [];
  private active = false;
  private from = 0;
  private loop: Promise<void> | undefined;
  constructor(
    private readonly url: string,
    private readonly db: string,
    private readonly pollMs: number,
  ) {}
  /** Only points published from `from` on count (earlier ones belong to another step). */
  start(from: number): void {
    this.from = from;
    this.active = true;
    this.timeline = [];
    this.queryMs = [];
    this.loop = this.run();
  }
  async stop(): Promise<LatencyResult> {
    this.active = false;
    await this.loop;
    return summarise(this.timeline);
  }
  private async run(): Promise<void> {
    let prev = Date.now();
    let newest = 0;
    while (this.active) {
      // Points of a device arrive in order and the pipelines reorder devices by at most a batch, so
      // looking back 2 s from the newest point seen finds every new one, without pulling the last 10 s
      // of every probe on each poll (thousands of rows 50 times a second loaded InfluxDB and this process).
      const from = Math.max(this.from, Date.now() - 10_000, newest - 2000);
      const sentAt = Date.now();
      try {
        const series = await influxQuery(
          this.url,
          this.db,
          `SELECT seq FROM telemetry WHERE asset =~ /^p[0-9]+$/ AND time >= ${from}ms GROUP BY asset`,
          5000,
        );
        const now = Date.now();
        this.queryMs.push(now - sentAt);
        // The point appeared after the previous answer and before this one: take the middle.
        const observed = (prev + now) / 2;
        for (const s of series) {
          const asset = s.tags?.asset ?? '';
          for (const v of s.values) {
            const t = Number(v[0]);
            if (t > newest) newest = t;
            const key = `${asset}@${t}`;
            if (this.seen.has(key)) continue;
            this.seen.add(key);
            this.timeline.push([t, Math.max(0, observed - t)]);
          }
        }
        prev = now;
      } catch {
        // InfluxDB busy: the next poll sees what this one missed (with a larger latency, as it should).
      }
      await sleep(this.pollMs);
    }
    if (this.seen.size > 200_000) this.seen.clear();
  }
}

interface Consumer {
  child: ChildProcess;
  counts: Record<string, number>;
  stop(): Promise<void>;
}

async function startConsumer(
  pipeline: Pipeline,
  ctx: {
    broker: Service;
    /** Where the consumer writes: influxd, or the write-ack proxy in front of it. */
    influx: { url: string; port: number };
    work: string;
    registryFile: string;
    learned: boolean;
    batch: boolean;
    flushMs: number;
    flushWhenFree: boolean;
    /** V8/Node flags of the Node-RED consumers (the same for stock and EVTwin). */
    nodeFlags: string[];
    profDir?: string;
  },
): Promise<Consumer> {
  if (pipeline === 'ceiling') {
    const child = forkChild('ingestCeiling.ts', ['--url', ctx.broker.url]);
    await nextMessage(child, (m): m is FromChild => m.type === 'ready', 30_000, 'the ceiling subscriber');
    return { child, counts: {}, stop: () => stopChild(child) };
  }
  const userDir = join(ctx.work, `node-red-${pipeline}`);
  mkdirSync(userDir, { recursive: true });
  const db = `bench_${pipeline}`;
  const flow =
    pipeline === 'stock'
      ? stockFlow({ port: ctx.broker.port }, ctx.influx.port, db)
      : evtwinFlow(
          { port: ctx.broker.port },
          {
            influxUrl: ctx.influx.url,
            database: db,
            registryFile: ctx.registryFile,
            spoolDir: join(userDir, 'spool'),
            learned: ctx.learned,
            flushMs: ctx.flushMs,
            flushWhenFree: ctx.flushWhenFree,
            batch: ctx.batch,
          },
        );
  const flowFile = join(userDir, 'flow.json');
  writeFileSync(flowFile, JSON.stringify(flow, null, 2));
  const port = await freePort();
  const prof = ctx.profDir
    ? // One profile per thread (tsx's loader runs in a worker): the largest file is the main thread.
      ['--cpu-prof', '--cpu-prof-dir', join(ctx.profDir, `cpuprofile-${pipeline}`)]
    : [];
  const child = forkChild(
    'ingestNodeRed.ts',
    ['--flow', flowFile, '--user-dir', userDir, '--port', String(port)],
    [...prof, ...ctx.nodeFlags],
  );
  const consumer: Consumer = { child, counts: {}, stop: () => stopChild(child) };
  child.on('message', (m: FromChild) => {
    if (m.type === 'report') consumer.counts = m.counts;
  });
  await nextMessage(child, (m): m is FromChild => m.type === 'ready', 60_000, `Node-RED (${pipeline})`);
  return consumer;
}

async function main(): Promise<void> {
  if (opt.help) {
    console.log(HELP);
    return;
  }
  const quick = opt.quick === true;
  const devices = Math.min(10_000, Math.max(1, Number(opt.devices ?? (quick ? 20 : 1000))));
  const rates = (
    opt.rates ?? (quick ? '100,300' : '2000,5000,10000,15000,17500,20000,22500,25000,30000,40000,50000')
  )
    .split(',')
    .map(Number)
    .filter((r) => r > 0);
  const stepSeconds = Number(opt['step-seconds'] ?? (quick ? 2 : 15));
  const probes = Math.min(
    devices,
    Math.max(1, Number(opt.probes ?? Math.min(50, Math.max(4, Math.ceil(devices / 20))))),
  );
  const pipelines = (opt.pipelines ?? '')
    .split(',')
    .filter((p): p is Pipeline => ['ceiling', 'stock', 'evtwin'].includes(p));
  const qos = Number(opt.qos) === 0 ? 0 : 1;
  if (opt.latency !== 'ack' && opt.latency !== 'poll')
    throw new Error(`--latency ${opt.latency}: ack or poll`);
  const latencyMeasure: LatencyMeasure = opt.latency;
  const pollMs = Number(opt['poll-ms']);
  const publisherCount = Math.max(1, Math.round(Number(opt.publishers)));
  const flushMs = Math.max(1, Number(opt['flush-ms']));
  const inflight = Math.max(0, Math.round(Number(opt.inflight)));
  const runawayMs = Number(opt['runaway-ms']);
  const learned = !opt['no-learned'];
  const batch = !opt['no-batch'];
  const flushWhenFree = !opt['no-flush-when-free'];
  const nodeFlags = (opt['node-flags'] ?? '').split(/\s+/).filter(Boolean);
  const outDir = resolve(opt.out ?? join(__dirname, '..', '..', '..', 'bench', 'results'));
  mkdirSync(outDir, { recursive: true });
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  log(
    `${machine.cores} cores (${machine.cpuModel}), load ${machine.loadAvgAtStart.join(' ')}; node ${machine.node}`,
  );
  log(
    `${devices} devices (${probes} latency probes), rates ${rates.join(',')} msg/s, ${stepSeconds} s per step, QoS ${qos}; ` +
      `latency by ${latencyMeasure === 'ack' ? "influxd's write acknowledgement" : `a query every ${pollMs} ms`}`,
  );

  const work = mkdtempSync(join(tmpdir(), 'evtwin-bench-'));
  // Mosquitto sends at most max_inflight_messages (default 20) unacknowledged QoS 1 messages to a
  // client: a consumer whose PUBACKs wait behind its own work is then capped at 20 per round trip.
  // Raised here for every consumer alike (and the queue with it), as a deployment should.
  const [influx, broker] = await Promise.all([
    startInfluxd(),
    startMosquitto({
      extraConfig: [`max_inflight_messages ${inflight}`, 'max_queued_messages 1000000'],
    }),
  ]);
  const publishers: ChildProcess[] = [];
  const results: PipelineResult[] = [];
  // The current pipeline's write-ack proxy (--latency ack), closed in the end even on failure.
  let proxy: WriteAckLatency | undefined;
  try {
    for (const p of pipelines) if (p !== 'ceiling') await createDatabase(influx.url, `bench_${p}`);
    const fleet = makeFleet(join(work, 'fleet'), devices, probes);
    // Each publisher process holds a contiguous share of the fleet and offers rate / publishers.
    const share = Math.ceil(devices / publisherCount);
    for (let p = 0; p < publisherCount && p * share < devices; p++) {
      const child = forkChild('ingestPublisher.ts', [
        '--url',
        broker.url,
        '--tokens',
        fleet.tokensFile,
        '--devices',
        String(devices),
        '--from',
        String(p * share),
        '--to',
        String(Math.min(devices, (p + 1) * share)),
        '--probes',
        String(probes),
        '--qos',
        String(qos),
      ]);
      child.on('message', (m: FromChild) => {
        if (m.type === 'progress' && m.connected < share)
          log(`publisher ${p + 1}: ${m.connected} of its ${share} devices connected`);
      });
      publishers.push(child);
    }
    const t0 = Date.now();
    await Promise.all(
      publishers.map((c) =>
        nextMessage(
          c,
          (m): m is FromChild => m.type === 'ready',
          60_000 + devices * 20,
          'the publishers to connect',
        ),
      ),
    );
    log(
      `${devices} device connections up in ${((Date.now() - t0) / 1000).toFixed(1)} s ` +
        `(${publishers.length} publisher process${publishers.length > 1 ? 'es' : ''})`,
    );

    const runStep = async (rate: number, seconds: number, label: string): Promise<StepReport> => {
      const reports = await Promise.all(
        publishers.map((c) => {
          const done = nextMessage(
            c,
            (m): m is StepReport => m.type === 'step-done' && m.label === label,
            seconds * 1000 + 60_000,
            `step ${label}`,
          );
          c.send({ type: 'run', rate: rate / publishers.length, seconds, label } satisfies ToChild);
          return done;
        }),
      );
      return {
        type: 'step-done',
        label,
        sent: reports.reduce((n, r) => n + r.sent, 0),
        acked: reports.reduce((n, r) => n + r.acked, 0),
        // A publisher that sent nothing in this step has no window of its own.
        firstTs: Math.min(...reports.filter((r) => r.sent > 0).map((r) => r.firstTs)),
        lastTs: Math.max(...reports.filter((r) => r.sent > 0).map((r) => r.lastTs)),
        seconds: Math.max(...reports.map((r) => r.seconds)),
      };
    };
    const publishersCpu = (): ProcSample | undefined => {
      const ss = publishers.map((c) => procSample(c.pid ?? 0));
      if (ss.some((x) => !x)) return undefined;
      return {
        cpuS: ss.reduce((n, x) => n + (x?.cpuS ?? 0), 0),
        rssMB: ss.reduce((n, x) => n + (x?.rssMB ?? 0), 0),
        at: Math.max(...ss.map((x) => x?.at ?? 0)),
      };
    };

    for (const pipeline of pipelines) {
      // Let influxd and the broker finish what the previous consumer left (compactions, queues), so
      // each consumer starts on quiet services: until both use < 10 % of a core over 2 s (at most 60 s).
      const settleStart = Date.now();
      for (;;) {
        const a = [procSample(influx.process.pid ?? 0), procSample(broker.process.pid ?? 0)];
        await sleep(2000);
        const b = [procSample(influx.process.pid ?? 0), procSample(broker.process.pid ?? 0)];
        const busy = Math.max(cpuPercent(a[0], b[0]), cpuPercent(a[1], b[1]));
        if (!(busy >= 10) || Date.now() - settleStart > 60_000) {
          if (Date.now() - settleStart > 2500)
            log(`services settled in ${((Date.now() - settleStart) / 1000).toFixed(0)} s`);
          break;
        }
      }
      log(`── ${pipeline}: ${DESCRIPTIONS[pipeline]}`);
      const db = `bench_${pipeline}`;
      // Only the consumer's writes go through the proxy: counting and creating databases talk to influxd.
      proxy =
        pipeline !== 'ceiling' && latencyMeasure === 'ack'
          ? await WriteAckLatency.listen(influx.url, db)
          : undefined;
      const consumer = await startConsumer(pipeline, {
        broker,
        influx: proxy ? { url: proxy.url, port: proxy.listenPort } : influx,
        work,
        registryFile: fleet.registryFile,
        learned,
        batch,
        flushMs,
        flushWhenFree,
        nodeFlags,
        ...(opt['cpu-prof'] ? { profDir: outDir } : {}),
      });
      const pid = consumer.child.pid ?? 0;
      const ceilingStep = (label: string, graceMs: number): Promise<CeilingReport> => {
        const r = nextMessage(
          consumer.child,
          (m): m is CeilingReport => m.type === 'ceiling-step' && m.label === label,
          graceMs + 30_000,
          'ceiling report',
        );
        consumer.child.send({ type: 'step', label, graceMs } satisfies ToChild);
        return r;
      };
      // Warm up until the consumer's subscription is live: what arrives before does not count.
      for (let i = 0; ; i++) {
        const w = await runStep(Math.min(rates[0] ?? 100, 200), 1, `${pipeline}-warmup-${i}`);
        await sleep(500);
        const got =
          pipeline === 'ceiling'
            ? (await ceilingStep(`${pipeline}-warmup-${i}`, 0)).received
            : await storedBetween(influx.url, db, w.firstTs, w.lastTs);
        if (got > 0) break;
        if (i >= 30) throw new Error(`${pipeline}: nothing arrived after 30 warm-up rounds`);
      }
      // Prime: every device publishes at least once, so per-device state (auth replay windows, scorer
      // models) exists before the first measured step; then let it drain.
      const primeRate = Math.min(rates[0] ?? 100, 2000);
      const prime = await runStep(primeRate, Math.ceil(devices / primeRate) + 1, `${pipeline}-prime`);
      if (pipeline !== 'ceiling') {
        const deadline = Date.now() + 60_000;
        while (
          Date.now() < deadline &&
          (await storedBetween(influx.url, db, prime.firstTs, prime.lastTs)) < prime.sent
        )
          await sleep(250);
      }
      await sleep(1000);
      if (pipeline === 'ceiling') await ceilingStep(`${pipeline}-drain`, 0);

      const steps: (StepResult & { window: [number, number] })[] = [];
      const poller = pipeline === 'ceiling' || proxy ? undefined : new LatencyPoller(influx.url, db, pollMs);
      const meter: LatencyMeter | undefined = proxy ?? poller;
      let peakRss = 0;
      for (const rate of rates) {
        const label = `${pipeline}-${rate}`;
        const before = {
          me: procSample(pid),
          broker: procSample(broker.process.pid ?? 0),
          influx: procSample(influx.process.pid ?? 0),
          pub: publishersCpu(),
          harness: process.cpuUsage(),
          at: Date.now(),
        };
        let rssMax = 0;
        const rssTimer = setInterval(() => {
          rssMax = Math.max(rssMax, procSample(pid)?.rssMB ?? 0);
        }, 500);
        meter?.start(Date.now());
        const r = await runStep(rate, stepSeconds, label);
        const after = {
          me: procSample(pid),
          broker: procSample(broker.process.pid ?? 0),
          influx: procSample(influx.process.pid ?? 0),
          pub: publishersCpu(),
        };
        const harness = process.cpuUsage(before.harness);
        const harnessCpu =
          (100 * (harness.user + harness.system)) / 1000 / Math.max(1, Date.now() - before.at);
        const span = Math.max(0.001, (r.lastTs - r.firstTs) / 1000 || r.seconds);
        let delivered: number;
        let lat: { p50: number; p99: number; max: number; n: number };
        let pollQ = 0;
        let pollQ99 = 0;
        let tailP50 = NaN;
        let perSecond: [number, number][] | undefined;
        let influxWrite: LatencyResult['influxWrite'];
        if (pipeline === 'ceiling') {
          const c = await ceilingStep(label, 1000);
          delivered = c.received;
          lat = { p50: c.p50, p99: c.p99, max: c.max, n: c.received };
        } else {
          await sleep(1000);
          delivered = Math.max(0, await storedBetween(influx.url, db, r.firstTs, r.lastTs));
          const measured = await meter?.stop();
          const l = measured?.sorted ?? [];
          tailP50 = measured?.tailP50 ?? NaN;
          perSecond = measured?.bySecond;
          influxWrite = measured?.influxWrite;
          lat = { p50: percentile(l, 50), p99: percentile(l, 99), max: l[l.length - 1] ?? NaN, n: l.length };
          if (poller) {
            const q = [...poller.queryMs].sort((a, b) => a - b);
            pollQ = percentile(q, 50);
            pollQ99 = percentile(q, 99);
          }
        }
        clearInterval(rssTimer);
        rssMax = Math.max(rssMax, after.me?.rssMB ?? 0);
        peakRss = Math.max(peakRss, rssMax);
        const offered = r.sent / span;
        const deliveredRate = delivered / span;
        const publisherBound = r.sent / stepSeconds < 0.9 * rate;
        // Runaway: the backlog at the end of the step (median latency of its last quarter) is past the
        // bound; a p99 spike alone (the machine stalling once) is not. The ceiling has no timeline: p50.
        const tail = pipeline === 'ceiling' ? lat.p50 : tailP50;
        const saturated = deliveredRate < 0.9 * offered || tail > runawayMs || lat.n === 0;
        const step: StepResult & { window: [number, number] } = {
          window: [r.firstTs, r.lastTs],
          targetRate: rate,
          sent: r.sent,
          offered: round(offered),
          delivered: round(deliveredRate),
          latencyP50Ms: round(lat.p50, 1),
          latencyP99Ms: round(lat.p99, 1),
          latencyMaxMs: round(lat.max, 1),
          latencyTailP50Ms: round(tail, 1),
          ...(perSecond ? { latencyBySecond: perSecond } : {}),
          ...(influxWrite
            ? {
                influxWriteMs: {
                  p50: round(influxWrite.p50, 1),
                  p99: round(influxWrite.p99, 1),
                  max: round(influxWrite.max, 1),
                  requests: influxWrite.n,
                  bySecond: influxWrite.bySecond,
                },
              }
            : {}),
          latencySamples: lat.n,
          ...(poller ? { pollQueryP50Ms: round(pollQ, 1), pollQueryP99Ms: round(pollQ99, 1) } : {}),
          harnessCpuPercent: round(harnessCpu, 1),
          stored: delivered,
          lost: 0,
          cpuPercent: round(cpuPercent(before.me, after.me), 1),
          rssMB: round(rssMax, 1),
          brokerCpuPercent: round(cpuPercent(before.broker, after.broker), 1),
          influxCpuPercent: round(cpuPercent(before.influx, after.influx), 1),
          publisherCpuPercent: round(cpuPercent(before.pub, after.pub), 1),
          loadAvg1: round(loadavg()[0] ?? NaN, 2),
          saturated,
          publisherBound,
        };
        steps.push(step);
        log(
          `${pipeline} @ ${fmt(rate)}/s: offered ${fmt(offered)}/s, delivered ${fmt(deliveredRate)}/s, ` +
            `p50 ${round(lat.p50, 1)} ms, p99 ${round(lat.p99, 1)} ms (${lat.n} samples` +
            (poller ? `, poll ${round(pollQ, 1)}/${round(pollQ99, 1)} ms p50/p99` : '') +
            (influxWrite
              ? `; influxd answered ${influxWrite.n} writes in ${round(influxWrite.p50, 1)}/${round(influxWrite.p99, 1)}/${round(influxWrite.max, 1)} ms p50/p99/max`
              : '') +
            `), CPU ${step.cpuPercent}% RSS ${step.rssMB} MB (broker ${step.brokerCpuPercent}%, influxd ${step.influxCpuPercent}%, ` +
            `publishers ${step.publisherCpuPercent}%, harness ${step.harnessCpuPercent}%), load ${step.loadAvg1}` +
            (saturated ? '  → saturated' : '') +
            (publisherBound ? '  → publishers could not offer the target rate' : ''),
        );
        // Drain before the next step so steps do not overlap.
        if (pipeline !== 'ceiling') {
          const deadline = Date.now() + 30_000;
          while (Date.now() < deadline && (await storedBetween(influx.url, db, r.firstTs, r.lastTs)) < r.sent)
            await sleep(250);
        } else {
          await ceilingStep(`${label}-drain`, 500).then((c) => {
            step.stored += c.received;
          });
        }
        if (saturated || publisherBound) break;
      }
      // Final count: every step's window, once the pipeline has drained (at most 60 s).
      if (pipeline !== 'ceiling') {
        const deadline = Date.now() + 60_000;
        const total = (): Promise<number[]> =>
          Promise.all(steps.map((s) => storedBetween(influx.url, db, s.window[0], s.window[1])));
        let counts = await total();
        while (Date.now() < deadline && counts.some((c, i) => c < (steps[i]?.sent ?? 0))) {
          await sleep(500);
          counts = await total();
        }
        steps.forEach((s, i) => {
          s.stored = Math.max(0, counts[i] ?? 0);
        });
      }
      for (const s of steps) s.lost = Math.max(0, s.sent - s.stored);
      await consumer.stop();
      await proxy?.close();
      proxy = undefined;
      const ok = steps.filter((s) => !s.saturated);
      const best = ok.reduce<StepResult | undefined>(
        (b, s) => (!b || s.delivered > b.delivered ? s : b),
        undefined,
      );
      const sustained = best?.delivered ?? 0;
      results.push({
        pipeline,
        description: DESCRIPTIONS[pipeline],
        latencyDefinition: latencyDefinition(pipeline, latencyMeasure),
        steps: steps.map(({ window: _w, ...s }) => s),
        sustainedMsgPerS: sustained,
        readingsPerS: sustained,
        metricValuesPerS: sustained * 5,
        latencyP50Ms: best?.latencyP50Ms ?? NaN,
        latencyP99Ms: best?.latencyP99Ms ?? NaN,
        peakRssMB: round(peakRss, 1),
        cpuPercentAtSustained: best?.cpuPercent ?? NaN,
        sent: steps.reduce((n, s) => n + s.sent, 0),
        lost: steps.reduce((n, s) => n + s.lost, 0),
        ...(steps.find((s) => s.saturated)
          ? { saturatedAt: steps.find((s) => s.saturated)?.targetRate }
          : {}),
        ...(Object.keys(consumer.counts).length ? { counts: consumer.counts } : {}),
      });
      log(
        `${pipeline}: sustained ${fmt(sustained)} msg/s, lost ${results.at(-1)?.lost} of ${results.at(-1)?.sent}`,
      );
    }
  } finally {
    await proxy?.close();
    await Promise.all(publishers.map((c) => stopPublisher(c)));
    await Promise.all([influx.stop(), broker.stop()]);
    rmSync(work, { recursive: true, force: true });
  }

  const by = (p: Pipeline): PipelineResult | undefined => results.find((r) => r.pipeline === p);
  const ceiling = by('ceiling')?.sustainedMsgPerS;
  const ev = by('evtwin');
  const stock = by('stock');
  const at10k = ev?.steps.find((s) => s.targetRate === 10_000);
  const result: BenchResult = {
    kind: 'evtwin-ingest-bench',
    startedAt,
    finishedAt: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine,
    loadAvgAtEnd: loadavg().map((x) => round(x, 2)),
    config: {
      devices,
      probes,
      publishers: publisherCount,
      flushMs,
      flushWhenFree,
      inflight,
      rates,
      stepSeconds,
      qos,
      learned,
      batch,
      latencyMeasure,
      pollMs,
      runawayMs,
    },
    pipelines: results,
    summary: {
      evtwinMsgPerS: ev?.sustainedMsgPerS ?? null,
      stockMsgPerS: stock?.sustainedMsgPerS ?? null,
      ceilingMsgPerS: ceiling ?? null,
      // The publishers, not the broker, set the ceiling's figure: it is then a lower bound.
      ceilingPublisherBound: by('ceiling')?.steps.at(-1)?.publisherBound ?? null,
      evtwinShareOfCeiling: ev && ceiling ? round(ev.sustainedMsgPerS / ceiling, 3) : null,
      evtwinOverStock:
        ev && stock?.sustainedMsgPerS ? round(ev.sustainedMsgPerS / stock.sustainedMsgPerS, 2) : null,
      evtwinP99At10kMs: at10k ? at10k.latencyP99Ms : null,
      target25kMet: ev ? ev.sustainedMsgPerS >= 25_000 : null,
      target70PctOfCeilingMet: ev && ceiling ? ev.sustainedMsgPerS >= 0.7 * ceiling : null,
      beatsStock: ev && stock ? ev.sustainedMsgPerS > stock.sustainedMsgPerS : null,
      p99Under50msAt10k: at10k ? at10k.latencyP99Ms < 50 && !at10k.saturated : null,
    },
  };
  const name = `ingest-${quick ? 'quick-' : ''}${stamp()}`;
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(outDir, `${name}.md`), markdown(result));
  log(`results: ${join(outDir, name)}.json and .md`);
  process.stdout.write('\n' + markdown(result));
}

export function markdown(r: BenchResult): string {
  const m = r.machine;
  const polled = r.config.latencyMeasure === 'poll';
  // The latency columns say which measure they hold: the two are not comparable.
  const latCol = polled ? 'polled' : 'ack';
  const lines = [
    `# Ingestion benchmark ${r.startedAt}`,
    '',
    `Machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGB} GB; load average ${m.loadAvgAtStart.join(' ')} at start, ` +
      `${r.loadAvgAtEnd.join(' ')} at end. Node ${m.node}, ${m.influxd}, ${m.mosquitto}, Node-RED ${m.nodeRed}, ` +
      `mqtt.js ${m.mqttJs}, node-red-contrib-influxdb ${m.nodeRedContribInfluxdb}.`,
    '',
    `Run: \`${r.command}\`: ${r.config.devices} devices (one MQTT v5 connection each, QoS ${r.config.qos}), ` +
      `one reading of 5 metrics per message, ${r.config.stepSeconds} s per step, rates ${r.config.rates.join(', ')} msg/s; ` +
      `saturated = delivered < 90 % of offered or latency runaway (median latency of the step's last quarter > ${r.config.runawayMs} ms; ceiling: p50). Scoring: ${r.config.learned ? 'rules + learned detector' : 'rules only'} on every reading, a score point per asset at most every second (and every anomaly); evtwin-mqtt-in ${r.config.batch ? 'sends batches (what one socket read holds)' : 'sends a message per MQTT message'}, acknowledges once stored or spooled; evtwin-influx batch 5000 points or ${r.config.flushMs} ms${r.config.flushWhenFree ? ', sent as soon as a request slot is free' : ''}; Mosquitto max_inflight_messages ${r.config.inflight}.`,
    '',
    `| pipeline | sustained msg/s | readings/s | metric values/s | p50 ms (${latCol}) | p99 ms (${latCol}) | peak RSS MB | CPU % (one core = 100) | lost / sent | saturated at |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.pipelines.map(
      (p) =>
        `| ${p.pipeline} | ${fmt(p.sustainedMsgPerS)} | ${fmt(p.readingsPerS)} | ${fmt(p.metricValuesPerS)} | ${p.latencyP50Ms} | ${p.latencyP99Ms} | ${p.peakRssMB} | ${p.cpuPercentAtSustained} | ${fmt(p.lost)} / ${fmt(p.sent)} | ${p.saturatedAt !== undefined ? fmt(p.saturatedAt) : 'not reached'} |`,
    ),
    '',
    `Summary: ${Object.entries(r.summary)
      .map(([k, v]) => `${k} = ${v}`)
      .join('; ')}.`,
    '',
    'Latency: ceiling = payload ts → received by the subscriber; stock and evtwin = ' +
      (polled
        ? 'payload ts → the point first returned by an InfluxDB query on the probe devices ' +
          `(polled every ${r.config.pollMs} ms: the figure carries the poll's error, "poll ms" per step is its duration). `
        : "payload ts → influxd's 2xx answer to the write request holding a probe device's point (the point is then in " +
          "its WAL), seen by a proxy in the harness between the consumer and influxd (no polling error; the harness's " +
          'CPU, which includes the proxy, is listed per step). ') +
      'CPU and RSS are the consumer process alone (broker, influxd and publishers are listed per step).',
    '',
    '## Steps',
    '',
    `| pipeline | target/s | offered/s | delivered/s | p50 ms (${latCol}) | p99 ms (${latCol}) | max ms | last-quarter p50 ms | samples | ${polled ? 'poll ms' : 'harness %'} | CPU % | RSS MB | broker % | influxd % | publishers % | load | lost | saturated |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...r.pipelines.flatMap((p) =>
      p.steps.map(
        (s) =>
          `| ${p.pipeline} | ${fmt(s.targetRate)} | ${fmt(s.offered)} | ${fmt(s.delivered)} | ${s.latencyP50Ms} | ${s.latencyP99Ms} | ${s.latencyMaxMs} | ${s.latencyTailP50Ms} | ${s.latencySamples} | ${(polled ? s.pollQueryP50Ms : s.harnessCpuPercent) ?? '–'} | ${s.cpuPercent} | ${s.rssMB} | ${s.brokerCpuPercent} | ${s.influxCpuPercent} | ${s.publisherCpuPercent} | ${s.loadAvg1} | ${fmt(s.lost)} | ${s.saturated ? 'yes' : 'no'}${s.publisherBound ? ' (publisher-bound)' : ''} |`,
      ),
    ),
    '',
  ];
  return lines.join('\n');
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  });
}
