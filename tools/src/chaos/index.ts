/**
 * `npm run chaos`: fault injection under steady load through the EVTwin pipeline
 * (evtwin-mqtt-in → evtwin-auth → evtwin-ingest → evtwin-score → evtwin-influx-out) on real Mosquitto,
 * InfluxDB and Node-RED. Devices publish QoS 1 on persistent sessions; evtwin-mqtt-in keeps a persistent
 * session too and acknowledges a message only once its reading is stored or spooled, and Mosquitto
 * keeps its queue on disk. Scenarios, one after another on the same services:
 *   influx-outage    influxd killed (SIGKILL) for --outage-seconds, then started again
 *   broker-restart   Mosquitto stopped (SIGTERM: it saves its queues) for --broker-down-seconds
 *   node-red-restart Node-RED stopped gracefully (SIGTERM) and started again
 *   node-red-crash   Node-RED killed (SIGKILL) and started again
 *   spool-full       the writer's spool quota set to --spool-mb, influxd down until it is full
 * After each: readings lost (sent − distinct seq stored in the scenario's window), duplicates stored
 * (points − distinct seq: a redelivered reading keeps its ts, so InfluxDB overwrites it, and auth
 * refuses replays; both are counted), readings refused loudly (done(err) to a Catch node), and the
 * time to catch up (from the end of the fault until the backlog is within one second of load).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { freePort, startInfluxd, startMosquitto } from '../services';
import {
  createDatabase,
  describeMachine,
  distinctBetween,
  evtwinFlow,
  forkChild,
  makeFleet,
  nextMessage,
  stamp,
  stopChild,
  stopPublisher,
  storedBetween,
  type FromChild,
  type Machine,
  type StepReport,
  type ToChild,
} from '../bench/ingestKit';

export const SCENARIOS = [
  'influx-outage',
  'broker-restart',
  'node-red-restart',
  'node-red-crash',
  'spool-full',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface ChaosOptions {
  devices: number;
  rate: number;
  outageSeconds: number;
  brokerDownSeconds: number;
  warmSeconds: number;
  afterSeconds: number;
  spoolMB: number;
  scenarios: Scenario[];
  learned: boolean;
  log: (line: string) => void;
}

export interface ScenarioResult {
  scenario: Scenario;
  description: string;
  sent: number;
  acked: number;
  storedPoints: number;
  storedDistinct: number;
  lost: number;
  duplicatesStored: number;
  /** Readings refused with done(err) (spool full), seen by the Catch node: loud, not silent. */
  refusedLoudly: number;
  /** lost − refusedLoudly: must be 0. */
  lostSilently: number;
  /**
   * Refusals of a full spool whose message the broker kept and delivered again (evtwin-mqtt-in): not
   * losses; a reading refused twice counts twice.
   */
  refusedThenRedelivered: number;
  /** Redeliveries the auth node refused as replays (not stored twice). */
  replaysRefused: number;
  faultSeconds: number;
  catchUpSeconds: number;
  counts: Record<string, number>;
  note?: string;
}

export interface ChaosResult {
  kind: 'evtwin-chaos';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: Machine;
  loadAvgAtEnd: number[];
  config: Omit<ChaosOptions, 'log'>;
  scenarios: ScenarioResult[];
}

const DESCRIPTIONS: Record<Scenario, string> = {
  'influx-outage': 'influxd killed (SIGKILL), started again after the outage',
  'broker-restart': 'Mosquitto stopped (SIGTERM, persistence on), started again',
  'node-red-restart': 'Node-RED stopped gracefully (SIGTERM), started again',
  'node-red-crash': 'Node-RED killed (SIGKILL), started again',
  'spool-full': 'spool quota small, influxd down until the spool is full, then back',
};

interface NodeRed {
  child: ChildProcess;
  counts: Record<string, number>;
}

const delta = (a: Record<string, number>, b: Record<string, number>): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (b[k] ?? 0) - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
};

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  const work = mkdtempSync(join(tmpdir(), 'evtwin-chaos-'));
  const [influx, broker] = await Promise.all([
    startInfluxd({ dataDir: join(work, 'influxd') }),
    startMosquitto(),
  ]);
  const db = 'chaos';
  const userDir = join(work, 'node-red');
  mkdirSync(userDir, { recursive: true });
  let nodeRed: NodeRed | undefined;
  let publisher: ChildProcess | undefined;
  const results: ScenarioResult[] = [];

  const startNodeRed = async (spoolMB: number): Promise<NodeRed> => {
    const flow = evtwinFlow(
      { port: broker.port, persistent: true },
      {
        influxUrl: influx.url,
        database: db,
        registryFile: fleet.registryFile,
        spoolDir: join(userDir, 'spool'),
        spoolMaxMB: spoolMB,
        learned: o.learned,
      },
    );
    const flowFile = join(userDir, 'flow.json');
    writeFileSync(flowFile, JSON.stringify(flow, null, 2));
    const child = forkChild('../bench/ingestNodeRed.ts', [
      '--flow',
      flowFile,
      '--user-dir',
      userDir,
      '--port',
      String(await freePort()),
    ]);
    const nr: NodeRed = { child, counts: {} };
    child.on('message', (m: FromChild) => {
      if (m.type === 'report') nr.counts = m.counts;
    });
    await nextMessage(child, (m): m is FromChild => m.type === 'ready', 60_000, 'Node-RED');
    return nr;
  };

  let fleet: ReturnType<typeof makeFleet>;
  let sentTotal = 0;
  try {
    await createDatabase(influx.url, db);
    fleet = makeFleet(join(work, 'fleet'), o.devices, Math.min(o.devices, 5));
    nodeRed = await startNodeRed(256);
    publisher = forkChild('../bench/ingestPublisher.ts', [
      '--url',
      broker.url,
      '--tokens',
      fleet.tokensFile,
      '--devices',
      String(o.devices),
      '--probes',
      String(Math.min(o.devices, 5)),
      '--persistent',
    ]);
    const pub = publisher;
    pub.on('message', (m: FromChild) => {
      if (m.type === 'progress') sentTotal = m.sent;
    });
    await nextMessage(
      pub,
      (m): m is FromChild => m.type === 'ready',
      60_000 + o.devices * 20,
      'the publishers',
    );
    o.log(`${o.devices} devices connected (QoS 1, persistent sessions); ${o.rate} msg/s steady load`);

    const run = (seconds: number, label: string): Promise<StepReport> => {
      const done = nextMessage(
        pub,
        (m): m is StepReport => m.type === 'step-done' && m.label === label,
        seconds * 1000 + 120_000,
        label,
      );
      pub.send({ type: 'run', rate: o.rate, seconds, label } satisfies ToChild);
      return done;
    };

    // Warm up until Node-RED's subscription is live (its persistent session exists from then on).
    for (let i = 0; ; i++) {
      const w = await run(1, `warmup-${i}`);
      await sleep(1000);
      if ((await storedBetween(influx.url, db, w.firstTs, w.lastTs)) > 0) break;
      if (i >= 30) throw new Error('nothing reached InfluxDB after 30 warm-up rounds');
    }
    await sleep(2000);

    for (const scenario of o.scenarios) {
      const nr0 = (): NodeRed => {
        if (!nodeRed) throw new Error('Node-RED is not running');
        return nodeRed;
      };
      if (scenario === 'spool-full') {
        // A small quota needs its own writer configuration: restart Node-RED with it (gracefully).
        await stopChild(nr0().child);
        nodeRed = await startNodeRed(o.spoolMB);
        await sleep(2000);
      }
      const countsBefore = { ...nr0().counts };
      const faultSeconds =
        scenario === 'influx-outage' || scenario === 'spool-full'
          ? o.outageSeconds
          : scenario === 'broker-restart'
            ? o.brokerDownSeconds
            : 0;
      const windowStart = Date.now();
      const sent0 = sentTotal;
      o.log(`── ${scenario}: ${DESCRIPTIONS[scenario]}`);
      // Publish long enough to cover warm-up, the fault (restarts take a few seconds) and the recovery.
      const total = o.warmSeconds + faultSeconds + 10 + o.afterSeconds;
      const load = run(total, `chaos-${scenario}`);
      await sleep(o.warmSeconds * 1000);
      const faultAt = Date.now();
      let note: string | undefined;
      if (scenario === 'influx-outage') {
        await influx.kill();
        o.log(`influxd killed; down for ${faultSeconds} s`);
        await sleep(faultSeconds * 1000);
        await influx.restart();
      } else if (scenario === 'spool-full') {
        await influx.kill();
        o.log(`influxd killed; waiting for the ${o.spoolMB} MB spool to fill (at most ${faultSeconds} s)`);
        const deadline = Date.now() + faultSeconds * 1000;
        while (Date.now() < deadline) {
          const refused = Object.entries(delta(countsBefore, nr0().counts))
            .filter(([k]) => k.startsWith('errors'))
            .reduce((n, [, v]) => n + v, 0);
          if (refused > 0 && Date.now() - faultAt > 2000) {
            // Keep it full for a while: every reading in this time is refused loudly.
            await sleep(Math.min(3000, Math.max(0, deadline - Date.now())));
            break;
          }
          await sleep(250);
        }
        await influx.restart();
      } else if (scenario === 'broker-restart') {
        const exited = new Promise<void>((r) => broker.process.once('exit', () => r()));
        broker.process.kill('SIGTERM');
        await exited;
        o.log(`Mosquitto stopped; down for ${faultSeconds} s`);
        await sleep(faultSeconds * 1000);
        await broker.restart();
      } else {
        await stopChild(nr0().child, scenario === 'node-red-crash' ? 'SIGKILL' : 'SIGTERM');
        o.log(`Node-RED ${scenario === 'node-red-crash' ? 'killed' : 'stopped'}; starting it again`);
        // Counts of the new process start from zero: keep the old ones to add.
        const carried = nr0().counts;
        nodeRed = await startNodeRed(256);
        const fresh = nodeRed;
        fresh.child.on('message', (m: FromChild) => {
          if (m.type === 'report')
            fresh.counts = Object.fromEntries(
              [...new Set([...Object.keys(carried), ...Object.keys(m.counts)])].map((k) => [
                k,
                (carried[k] ?? 0) + (m.counts[k] ?? 0),
              ]),
            );
        });
        if (scenario === 'node-red-crash')
          note =
            'evtwin-mqtt-in acknowledges a message only once its reading is in InfluxDB or the spool: what the ' +
            'crash caught in flight was redelivered by the broker (the stock mqtt in acknowledges on entry).';
      }
      const recoveredAt = Date.now();
      o.log(`fault over after ${((recoveredAt - faultAt) / 1000).toFixed(1)} s; catching up`);
      // Catch-up: the backlog (sent − stored in this window) back within one second of load.
      let catchUpAt: number | undefined;
      let loadDone: StepReport | undefined;
      void load.then((r) => {
        loadDone = r;
      });
      const deadline = Date.now() + (total + 180) * 1000;
      const refusedSoFar = (): number => delta(countsBefore, nr0().counts)['errors:reading'] ?? 0;
      while (Date.now() < deadline) {
        const stored = await storedBetween(influx.url, db, windowStart, Date.now() + 60_000);
        // Readings refused loudly (spool full) will never be stored: they are not backlog.
        const backlog = sentTotal - sent0 - stored - refusedSoFar();
        if (stored >= 0 && catchUpAt === undefined && backlog <= o.rate) catchUpAt = Date.now();
        if (loadDone && stored + refusedSoFar() >= loadDone.sent) break;
        if (loadDone && catchUpAt !== undefined && Date.now() - catchUpAt > 30_000) break; // never complete: loss
        await sleep(250);
      }
      const r = await load;
      await sleep(1500); // the last counter report from Node-RED
      const stored = await distinctBetween(influx.url, db, r.firstTs, r.lastTs);
      const counts = delta(countsBefore, nr0().counts);
      const refusedLoudly = counts['errors:reading'] ?? 0;
      const lost = Math.max(0, r.sent - stored.distinct);
      const result: ScenarioResult = {
        scenario,
        description: DESCRIPTIONS[scenario],
        sent: r.sent,
        acked: r.acked,
        storedPoints: stored.points,
        storedDistinct: stored.distinct,
        lost,
        duplicatesStored: stored.points - stored.distinct,
        refusedLoudly,
        lostSilently: Math.max(0, lost - refusedLoudly),
        refusedThenRedelivered: counts['errors:kept'] ?? 0,
        replaysRefused: counts['auth:replay'] ?? 0,
        faultSeconds: Math.round((recoveredAt - faultAt) / 100) / 10,
        catchUpSeconds: catchUpAt === undefined ? NaN : Math.round((catchUpAt - recoveredAt) / 100) / 10,
        counts,
        ...(note ? { note } : {}),
      };
      results.push(result);
      o.log(
        `${scenario}: sent ${r.sent}, stored ${stored.distinct} distinct (${stored.points} points), lost ${lost} ` +
          `(refused loudly ${refusedLoudly}, silently ${result.lostSilently}), refused then redelivered ${result.refusedThenRedelivered}, duplicates ${result.duplicatesStored}, ` +
          `replays refused ${result.replaysRefused}, catch-up ${result.catchUpSeconds} s`,
      );
      if (scenario === 'spool-full') {
        await stopChild(nr0().child);
        nodeRed = await startNodeRed(256);
      }
    }
  } finally {
    if (publisher) await stopPublisher(publisher);
    if (nodeRed) await stopChild(nodeRed.child);
    await Promise.all([influx.stop(), broker.stop()]);
    rmSync(work, { recursive: true, force: true });
  }
  const { log: _log, ...config } = o;
  return {
    kind: 'evtwin-chaos',
    startedAt,
    finishedAt: new Date().toISOString(),
    command: `npm run chaos -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine,
    loadAvgAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
    config,
    scenarios: results,
  };
}

export function chaosMarkdown(r: ChaosResult): string {
  const m = r.machine;
  return [
    `# Chaos run ${r.startedAt}`,
    '',
    `Machine: ${m.cores} cores, ${m.cpuModel}; load ${m.loadAvgAtStart.join(' ')} at start, ${r.loadAvgAtEnd.join(' ')} at end. ` +
      `Node ${m.node}, ${m.influxd}, ${m.mosquitto}, Node-RED ${m.nodeRed}.`,
    '',
    `Run: \`${r.command}\`: ${r.config.devices} devices, ${r.config.rate} msg/s steady (QoS 1, persistent sessions), ` +
      `InfluxDB outage ${r.config.outageSeconds} s, broker down ${r.config.brokerDownSeconds} s, spool quota ${r.config.spoolMB} MB for spool-full.`,
    '',
    '| scenario | fault s | sent | stored (distinct seq) | lost | refused loudly | lost silently | refused, then redelivered | duplicates stored | replays refused | catch-up s |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.scenarios.map(
      (s) =>
        `| ${s.scenario} | ${s.faultSeconds} | ${s.sent} | ${s.storedDistinct} | ${s.lost} | ${s.refusedLoudly} | ${s.lostSilently} | ${s.refusedThenRedelivered ?? 0} | ${s.duplicatesStored} | ${s.replaysRefused} | ${s.catchUpSeconds} |`,
    ),
    '',
    "lost = sent − distinct seq stored in the scenario's window; duplicates stored = points − distinct seq (a reading " +
      'redelivered with its ts overwrites itself in InfluxDB, and evtwin-auth refuses the replay); refused loudly = ' +
      'readings the writer refused with done(err) (spool full) and nobody kept, counted by a Catch node; refused, then ' +
      'redelivered = refusals of a full spool whose message evtwin-mqtt-in left unacknowledged for the broker to deliver ' +
      'again (a reading refused twice counts twice); catch-up = end of the fault ' +
      'until the backlog is within one second of load.',
    '',
    ...r.scenarios.filter((s) => s.note).map((s) => `- ${s.scenario}: ${s.note}`),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      devices: { type: 'string', default: '200' },
      rate: { type: 'string', default: '2000' },
      'outage-seconds': { type: 'string', default: '60' },
      'broker-down-seconds': { type: 'string', default: '5' },
      'warm-seconds': { type: 'string', default: '10' },
      'after-seconds': { type: 'string', default: '20' },
      'spool-mb': { type: 'string', default: '2' },
      scenarios: { type: 'string', default: SCENARIOS.join(',') },
      'no-learned': { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (a.help) {
    console.log(
      `npm run chaos [-- options]   fault injection under steady load through the EVTwin pipeline\n\n` +
        `  --devices N (200)  --rate MSG_PER_S (2000)  --outage-seconds S (60)  --broker-down-seconds S (5)\n` +
        `  --warm-seconds S (10)  --after-seconds S (20)  --spool-mb MB (2)  --no-learned\n` +
        `  --scenarios LIST (${SCENARIOS.join(',')})  --out DIR (bench/results)`,
    );
    return;
  }
  const scenarios = (a.scenarios ?? '')
    .split(',')
    .filter((s): s is Scenario => (SCENARIOS as readonly string[]).includes(s));
  const log = (line: string): void => {
    process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  };
  const result = await runChaos({
    devices: Number(a.devices),
    rate: Number(a.rate),
    outageSeconds: Number(a['outage-seconds']),
    brokerDownSeconds: Number(a['broker-down-seconds']),
    warmSeconds: Number(a['warm-seconds']),
    afterSeconds: Number(a['after-seconds']),
    spoolMB: Number(a['spool-mb']),
    scenarios,
    learned: !a['no-learned'],
    log,
  });
  const outDir = resolve(a.out ?? join(__dirname, '..', '..', '..', 'bench', 'results'));
  mkdirSync(outDir, { recursive: true });
  const name = `chaos-${stamp()}`;
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(outDir, `${name}.md`), chaosMarkdown(result));
  log(`results: ${join(outDir, name)}.json and .md`);
  process.stdout.write('\n' + chaosMarkdown(result));
  // A non-zero exit when anything was lost silently or stored twice.
  const bad = result.scenarios.filter((s) => s.lostSilently > 0 || s.duplicatesStored > 0);
  if (bad.length > 0) {
    log(`exit code 2: readings lost silently or stored twice in ${bad.map((s) => s.scenario).join(', ')}`);
    process.exitCode = 2;
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  });
}
