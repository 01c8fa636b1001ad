/**
 * Scoring memory of a fully trained fleet: `npm run bench:fleet-memory [-- --assets N --readings R]`.
 * One Scorer, configured as evtwin-score is in the ingestion benchmark's flow (learned, trainRows 2000,
 * retrain on, so a 2000-reading history ring per asset), is fed N assets × R readings of five metrics,
 * round-robin as a live fleet sends them. At the end, after a full GC: heap, RSS, external memory,
 * bytes per asset (over the empty scorer) and time per reading, as a markdown table on stdout and as
 * JSON in bench/results/fleet-memory-<timestamp>.json. A benchmark, not a test: it prints figures.
 *
 * Why R defaults to max(trainRows, history) + 200: the detector's pending rows are dropped once it
 * trains (at trainRows), the history ring is full at `history` readings, and the detector's own retrain
 * ring exists only with retrainEvery > 0, which evtwin-score never sets. The 200 rows after are scored by
 * the trained model, so the state measured is the steady one of a fleet that has been running.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  Scorer,
  RETRAIN_HISTORY,
  SeededRandom,
  scorerOptionsFor,
  type Reading,
  type ScorerOptions,
} from 'node-red-contrib-evtwin';
import { METRICS, SITE, describeMachine, stamp } from './ingestKit';

const { values } = parseArgs({
  options: {
    assets: { type: 'string', default: '10000' },
    readings: { type: 'string' },
    'progress-s': { type: 'string', default: '5' },
    out: { type: 'string', default: 'bench/results' },
  },
});

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run bench:fleet-memory does)');

/** The bench flow's evtwin-score settings (tools/src/bench/ingestKit.ts, evtwinFlow). */
const TRAIN_ROWS = 2000;
/** evtwin-score keeps this many readings per asset to retrain from when `retrain` is on. */
const HISTORY = RETRAIN_HISTORY;
/** evtwin-ingest's kind for assets without a model and topics without {kind}, as in the bench. */
const KIND = 'generic';

/** The Scorer evtwin-score builds for the bench flow: rules '', repeatMin 10, learned, retrain, trainRows 2000. */
const benchScorerOptions = (): ScorerOptions =>
  scorerOptionsFor({ rules: {}, repeatMin: 10, learned: true, retrain: true, trainRows: TRAIN_ROWS });

/** Level, daily swing and noise of each metric (near what the bench's devices send). */
const SHAPE: Record<(typeof METRICS)[number], { level: number; swing: number; noise: number }> = {
  power: { level: 12, swing: 3, noise: 0.3 },
  voltage: { level: 230, swing: 2, noise: 0.5 },
  current: { level: 5, swing: 1.2, noise: 0.1 },
  temperature: { level: 40, swing: 6, noise: 0.2 },
  vibration: { level: 1, swing: 0.2, noise: 0.05 },
};

/** One asset's signal: per-metric sinusoids with their own phase, period and slow drift, plus noise. */
class AssetSignal {
  private readonly rng: SeededRandom;
  private readonly phase: number[];
  private readonly periodS: number[];
  private readonly driftPerH: number[];
  private readonly scale: number;

  constructor(seed: number) {
    this.rng = new SeededRandom(seed);
    this.scale = 0.8 + 0.4 * this.rng.next();
    this.phase = METRICS.map(() => 2 * Math.PI * this.rng.next());
    this.periodS = METRICS.map(() => 600 + 3000 * this.rng.next());
    this.driftPerH = METRICS.map(() => (this.rng.next() - 0.5) * 0.02);
  }

  /** Gaussian noise (Box-Muller) from the asset's own stream. */
  private gauss(): number {
    const u = 1 - this.rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.rng.next());
  }

  metrics(tS: number): Record<string, number> {
    const out: Record<string, number> = {};
    METRICS.forEach((m, i) => {
      const s = SHAPE[m];
      const level = s.level * this.scale * (1 + (this.driftPerH[i] as number) * (tS / 3600));
      const wave =
        s.swing * Math.sin((2 * Math.PI * tS) / (this.periodS[i] as number) + (this.phase[i] as number));
      out[m] = Math.round((level + wave + s.noise * this.gauss()) * 1000) / 1000;
    });
    return out;
  }
}

interface Memory {
  heapUsed: number;
  heapTotal: number;
  rss: number;
  external: number;
  arrayBuffers: number;
}

function memoryAfterGc(): Memory {
  // Twice: the first pass can leave weak and finalised objects for the next.
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return {
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    rss: m.rss,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
  };
}

const MB = 1024 * 1024;
const mb = (b: number): string => (b / MB).toFixed(1);
const kb = (b: number): string => (b / 1024).toFixed(1);

function main(): void {
  const assets = Number(values.assets);
  const readings = values.readings ? Number(values.readings) : Math.max(TRAIN_ROWS, HISTORY) + 200;
  const progressMs = Number(values['progress-s']) * 1000;
  if (!(Number.isInteger(assets) && assets >= 1)) throw new Error('--assets must be an integer >= 1');
  if (!(Number.isInteger(readings) && readings >= 1)) throw new Error('--readings must be an integer >= 1');

  const machine = describeMachine();
  const scorer = new Scorer(benchScorerOptions());
  const signals = Array.from({ length: assets }, (_, i) => new AssetSignal(1 + i));
  const names = Array.from({ length: assets }, (_, i) => `d${i}`);
  // The empty scorer and the signal generators: what the fleet's state is measured over.
  const base = memoryAfterGc();

  console.log(
    `fleet memory: ${assets.toLocaleString('en')} assets × ${readings} readings (5 metrics, kind ${KIND}), ` +
      `learned trainRows ${TRAIN_ROWS}, history ${HISTORY}; node ${process.version}, ${machine.cores} cores`,
  );
  const t0 = Date.now();
  const startS = 1_780_000_000;
  let trained = 0;
  let skipped = 0;
  let anomalies = 0;
  let retrainRequests = 0;
  let lastReport = t0;
  let lastCount = 0;
  let count = 0;
  /** Wall time of each phase: rows collected before training, the round that trains, scoring after it. */
  const phaseMs = { collect: 0, train: 0, score: 0 };
  for (let round = 0; round < readings; round++) {
    const roundStart = Date.now();
    // One reading per second per asset, spread over the second as a live fleet's arrive.
    const tS = startS + round;
    for (let i = 0; i < assets; i++) {
      const reading: Reading = {
        site: SITE,
        asset: names[i] as string,
        kind: KIND,
        ts: tS * 1000 + Math.floor((i * 1000) / assets),
        metrics: (signals[i] as AssetSignal).metrics(tS),
      };
      const out = scorer.score(reading);
      count++;
      if (!out.ok) {
        skipped++;
        continue;
      }
      if (out.result.anomaly) anomalies++;
      if (out.retrain) retrainRequests++;
      if (round === TRAIN_ROWS - 1 && out.result.learned?.ready) trained++;
      const now = Date.now();
      if (now - lastReport >= progressMs) {
        const heap = process.memoryUsage();
        console.log(
          `  ${((now - t0) / 1000).toFixed(0).padStart(4)} s  round ${round + 1}/${readings}  ` +
            `trained ${trained}/${assets}  ${Math.round(((count - lastCount) * 1000) / (now - lastReport)).toLocaleString('en')} readings/s  ` +
            `heap ${mb(heap.heapUsed)} MB  external ${mb(heap.external)} MB  rss ${mb(heap.rss)} MB`,
        );
        lastReport = now;
        lastCount = count;
      }
    }
    const ms = Date.now() - roundStart;
    if (round < TRAIN_ROWS - 1) phaseMs.collect += ms;
    else if (round === TRAIN_ROWS - 1) phaseMs.train += ms;
    else phaseMs.score += ms;
  }
  const totalMs = Date.now() - t0;
  const end = memoryAfterGc();

  const retained = end.heapUsed - base.heapUsed + (end.external - base.external);
  const perAsset = {
    heap: (end.heapUsed - base.heapUsed) / assets,
    external: (end.external - base.external) / assets,
    total: retained / assets,
  };
  const collectRounds = Math.min(readings, TRAIN_ROWS - 1);
  const scoreRounds = Math.max(0, readings - TRAIN_ROWS);
  const usPerReading = {
    all: (totalMs * 1000) / count,
    collecting: collectRounds ? (phaseMs.collect * 1000) / (collectRounds * assets) : null,
    trainingRound: readings >= TRAIN_ROWS ? (phaseMs.train * 1000) / assets : null,
    scoring: scoreRounds ? (phaseMs.score * 1000) / (scoreRounds * assets) : null,
  };
  const fmtUs = (v: number | null): string => (v === null ? 'n/a' : `${v.toFixed(1)} µs`);

  console.log('');
  console.log(`| ${assets.toLocaleString('en')} assets × ${readings} readings | value |`);
  console.log('| --- | --- |');
  console.log(`| assets trained | ${trained.toLocaleString('en')} |`);
  console.log(`| heap used (after GC) | ${mb(end.heapUsed)} MB (empty scorer ${mb(base.heapUsed)} MB) |`);
  console.log(`| heap total | ${mb(end.heapTotal)} MB |`);
  console.log(`| RSS | ${mb(end.rss)} MB (empty scorer ${mb(base.rss)} MB) |`);
  console.log(`| external / of it array buffers | ${mb(end.external)} MB / ${mb(end.arrayBuffers)} MB |`);
  console.log(
    `| bytes per asset (heap + external over the empty scorer) | ${Math.round(perAsset.total).toLocaleString('en')} B = ${kb(perAsset.total)} KiB (heap ${kb(perAsset.heap)}, external ${kb(perAsset.external)}) |`,
  );
  console.log(`| time per reading, whole run | ${fmtUs(usPerReading.all)} |`);
  console.log(`| time per reading, collecting training rows | ${fmtUs(usPerReading.collecting)} |`);
  console.log(`| time per asset, the round that trains it | ${fmtUs(usPerReading.trainingRound)} |`);
  console.log(`| time per reading, scoring by a trained model | ${fmtUs(usPerReading.scoring)} |`);
  console.log(
    `| readings skipped / anomalous / retrain requests | ${skipped} / ${anomalies.toLocaleString('en')} / ${retrainRequests} |`,
  );
  console.log(`| wall time | ${(totalMs / 1000).toFixed(1)} s |`);

  const result = {
    kind: 'evtwin-fleet-memory-bench',
    at: new Date().toISOString(),
    machine: {
      cores: machine.cores,
      cpuModel: machine.cpuModel,
      memoryGB: machine.memoryGB,
      loadAvgAtStart: machine.loadAvgAtStart,
      node: machine.node,
    },
    config: {
      assets,
      readingsPerAsset: readings,
      metrics: [...METRICS],
      kind: KIND,
      scorer: { learned: true, trainRows: TRAIN_ROWS, history: HISTORY, retrain: true },
    },
    assetsTrained: trained,
    readingsSkipped: skipped,
    readingsAnomalous: anomalies,
    retrainRequests,
    memoryEmptyScorer: base,
    memoryEnd: end,
    bytesPerAsset: perAsset,
    usPerReading,
    wallSeconds: totalMs / 1000,
  };
  mkdirSync(values.out, { recursive: true });
  const file = join(values.out, `fleet-memory-${stamp()}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nwritten ${file}`);
  // Keep the scorer alive up to the measurement above (it is what was measured).
  if (scorer.size !== assets) console.warn(`scorer holds ${scorer.size} assets, expected ${assets}`);
}

main();
