/** Runs labelled files through the detectors causally and scores them (NAB, BATADAL or point-wise). */
import { existsSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { LEARNED_DEFAULTS, type LearnedDetectorOptions } from 'node-red-contrib-evtwin';
import { countRows, readCsv, type CsvOptions } from './csv';
import { batadalScore, confusion, type BatadalScore, type Confusion } from './metrics';
import {
  loadWindows,
  nabScoreFile,
  NAB_PROFILES,
  perfectDetections,
  probationLength,
  windowsToIndices,
  type NabProfileName,
} from './nab';
import {
  AlwaysRunner,
  LearnedRunner,
  MlIsolationForestRunner,
  ZScoreRunner,
  type Runner,
  type Verdict,
} from './runners';

export type EvalFormat = 'points' | 'nab' | 'batadal';

export interface EvalOptions extends CsvOptions {
  train?: string;
  trainRows?: number;
  format?: EvalFormat;
  windows?: string;
  detector?: LearnedDetectorOptions;
  baselines?: boolean;
  progress?: (msg: string) => void;
}

export interface NabFileResult {
  raw: Record<NabProfileName, number>;
  nullScore: Record<NabProfileName, number>;
  perfect: Record<NabProfileName, number>;
  windows: number;
  detected: number;
  fp: number;
}

export interface FileResult {
  file: string;
  format: EvalFormat;
  rows: number;
  scoredFrom: number;
  detector: string;
  confusion: Confusion;
  nab?: NabFileResult;
  batadal?: BatadalScore;
  skipped: number;
}

/** Find NAB's labels/combined_windows.json above a data file and the file's key in it. */
export function nabWindowsFor(file: string, explicit?: string): { path: string; key: string } | null {
  const abs = resolve(file);
  let dir = dirname(abs);
  for (let i = 0; i < 6; i++) {
    const cand = explicit ?? join(dir, 'labels', 'combined_windows.json');
    if (existsSync(cand) && existsSync(join(dir, 'data')))
      return { path: cand, key: relative(join(dir, 'data'), abs).split('\\').join('/') };
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

export function detectFormat(file: string, header: string[]): EvalFormat {
  if (header.some((h) => h.toUpperCase() === 'ATT_FLAG')) return 'batadal';
  if (nabWindowsFor(file)) return 'nab';
  return 'points';
}

/** Flags -> detections at the onset of each episode (one alert per episode, as NAB counts alerts). */
export function onsets(flags: readonly boolean[], cooldown: number): boolean[] {
  const out = new Array<boolean>(flags.length).fill(false);
  let last = -Infinity;
  for (let i = 0; i < flags.length; i++)
    if (flags[i]) {
      if (i - last > cooldown) out[i] = true;
      last = i;
    }
  return out;
}

function makeRunners(o: EvalOptions, trainRows: number): Runner[] {
  const det = { ...o.detector, trainRows };
  const window = det.window ?? LEARNED_DEFAULTS.window;
  const runners: Runner[] = [new LearnedRunner(det)];
  if (o.baselines !== false)
    runners.push(new MlIsolationForestRunner(window), new ZScoreRunner(window), new AlwaysRunner());
  return runners;
}

async function header(file: string, o: CsvOptions): Promise<string[]> {
  let cols: string[] = [];
  for await (const _ of readCsv(
    file,
    o,
    (h) => (cols = [h.timeCol, ...(h.labelCol ? [h.labelCol] : []), ...h.metricCols]),
  ))
    break;
  return cols;
}

/** Evaluate one file (optionally after a training file) with every runner. */
export async function evaluateFile(file: string, o: EvalOptions): Promise<FileResult[]> {
  const format = o.format ?? detectFormat(file, await header(file, o));
  const n = await countRows(file);

  let trainRows: number;
  let trainCount = 0;
  if (o.train) {
    trainCount = await countRows(o.train);
    trainRows = trainCount;
  } else if (format === 'nab') trainRows = o.trainRows ?? probationLength(n);
  else trainRows = o.trainRows ?? LEARNED_DEFAULTS.trainRows;
  const runners = makeRunners(o, Math.max(20, trainRows));
  const say = o.progress ?? ((): void => undefined);
  let seen = 0;
  const step = (ts: number, m: Record<string, number>, isTraining: boolean): Verdict[] => {
    seen++;
    if (seen % 10_000 === 0) say(`${basename(file)}: ${seen} rows`);
    return runners.map((r) => r.update(ts, m, isTraining));
  };
  if (o.train) {
    say(`${basename(file)}: training on ${basename(o.train)} (${trainCount} rows)`);
    for await (const row of readCsv(o.train, o)) step(row.ts, row.metrics, true);
    for (const r of runners) r.endTraining?.();
  }
  const ts: number[] = [];
  const labels: number[] = [];
  const flags: boolean[][] = runners.map(() => []);
  const events: (boolean | undefined)[][] = runners.map(() => []);
  for await (const row of readCsv(file, o)) {
    const isTraining = !o.train && row.index < trainRows;
    const f = step(row.ts, row.metrics, isTraining);
    f.forEach((v, k) => {
      (flags[k] as boolean[]).push(v.anomaly);
      (events[k] as (boolean | undefined)[]).push(v.event);
    });
    ts.push(row.ts);
    labels.push(row.label ?? 0);
    if (!o.train && row.index === trainRows - 1) for (const r of runners) r.endTraining?.();
  }
  const ours = runners[0] as LearnedRunner;
  const cooldown = ours.detector.toJSON().options.cooldown;
  let windows: [number, number][] = [];
  if (format === 'nab') {
    const w = nabWindowsFor(file, o.windows);
    if (!w) throw new Error(`${file}: no NAB labels/combined_windows.json found above it (use --windows)`);
    const limits = loadWindows(w.path)[w.key];
    if (!limits) throw new Error(`${file}: ${w.key} is not in ${w.path}`);
    windows = windowsToIndices(ts, limits);
    labels.fill(0);
    for (const [a, b] of windows) for (let i = a; i <= b; i++) labels[i] = 1;
  }
  const scoredFrom = o.train
    ? 0
    : format === 'nab'
      ? Math.max(trainRows, probationLength(ts.length))
      : trainRows;
  return runners.map((r, k) => {
    const fl = flags[k] as boolean[];
    const res: FileResult = {
      file,
      format,
      rows: ts.length,
      scoredFrom,
      detector: r.name,
      confusion: confusion(labels, fl, scoredFrom),
      skipped: r instanceof LearnedRunner ? r.skipped : 0,
    };
    if (format === 'nab') {
      // The detector's own alert onsets; for the baselines, onsets with our detector's cooldown.
      const ev = events[k] as (boolean | undefined)[];
      const det = ev.every((e) => e !== undefined) ? (ev as boolean[]) : onsets(fl, cooldown);
      const perfect = perfectDetections(ts.length, windows);
      const none = new Array<boolean>(ts.length).fill(false);
      const nab: NabFileResult = {
        raw: {} as Record<NabProfileName, number>,
        nullScore: {} as Record<NabProfileName, number>,
        perfect: {} as Record<NabProfileName, number>,
        windows: 0,
        detected: 0,
        fp: 0,
      };
      for (const p of Object.keys(NAB_PROFILES) as NabProfileName[]) {
        const s = nabScoreFile(ts.length, windows, det, NAB_PROFILES[p]);
        nab.raw[p] = s.score;
        nab.nullScore[p] = nabScoreFile(ts.length, windows, none, NAB_PROFILES[p]).score;
        nab.perfect[p] = nabScoreFile(ts.length, windows, perfect, NAB_PROFILES[p]).score;
        if (p === 'standard') Object.assign(nab, { windows: s.windows, detected: s.tp, fp: s.fp });
      }
      res.nab = nab;
    }
    if (format === 'batadal') res.batadal = batadalScore(labels.slice(scoredFrom), fl.slice(scoredFrom));
    return res;
  });
}
