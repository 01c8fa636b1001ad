/** Tables of eval results: per file and pooled, per detector. */
import { basename } from 'node:path';
import { addConfusion, emptyConfusion, pointMetrics, type Confusion } from './metrics';
import { normalise, NAB_PROFILES, type NabProfileName } from './nab';
import type { FileResult } from './run';

export interface PooledResult {
  detector: string;
  files: number;
  confusion: Confusion;
  nab?: Record<NabProfileName, number>;
  nabRaw?: Record<NabProfileName, number>;
  windows?: number;
  detected?: number;
  fp?: number;
}

export function pool(results: FileResult[]): PooledResult[] {
  const by = new Map<string, FileResult[]>();
  for (const r of results) by.set(r.detector, [...(by.get(r.detector) ?? []), r]);
  return [...by.entries()].map(([detector, rs]) => {
    const out: PooledResult = {
      detector,
      files: rs.length,
      confusion: rs.reduce((c, r) => addConfusion(c, r.confusion), emptyConfusion()),
    };
    const nabs = rs.flatMap((r) => (r.nab ? [r.nab] : []));
    if (nabs.length) {
      out.nab = {} as Record<NabProfileName, number>;
      out.nabRaw = {} as Record<NabProfileName, number>;
      for (const p of Object.keys(NAB_PROFILES) as NabProfileName[]) {
        const raw = nabs.reduce((s, x) => s + x.raw[p], 0);
        out.nabRaw[p] = raw;
        out.nab[p] = normalise(
          raw,
          nabs.reduce((s, x) => s + x.nullScore[p], 0),
          nabs.reduce((s, x) => s + x.perfect[p], 0),
        );
      }
      out.windows = nabs.reduce((s, x) => s + x.windows, 0);
      out.detected = nabs.reduce((s, x) => s + x.detected, 0);
      out.fp = nabs.reduce((s, x) => s + x.fp, 0);
    }
    return out;
  });
}

const f3 = (x: number | undefined): string => (x === undefined ? '' : x.toFixed(3));
const f2 = (x: number | undefined): string => (x === undefined ? '' : x.toFixed(2));
const f1 = (x: number | undefined): string => (x === undefined ? '' : x.toFixed(1));

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i < 2 ? c.padEnd(w[i] as number) : c.padStart(w[i] as number))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

export function formatReport(results: FileResult[]): string {
  const head = [
    'file',
    'detector',
    'rows',
    'F1',
    'prec',
    'recall',
    'FAR',
    'MAR',
    'NAB std',
    'NAB lowFP',
    'NAB lowFN',
    'win det/all',
    'FP ev',
    'S',
    'S_TTD',
  ];
  const rows = results.map((r) => {
    const m = pointMetrics(r.confusion);
    return [
      basename(r.file),
      r.detector,
      String(r.rows - r.scoredFrom),
      f3(m.f1),
      f3(m.precision),
      f3(m.recall),
      f3(m.far),
      f3(m.mar),
      f2(r.nab?.raw.standard),
      f2(r.nab?.raw.reward_low_FP_rate),
      f2(r.nab?.raw.reward_low_FN_rate),
      r.nab ? `${r.nab.detected}/${r.nab.windows}` : '',
      r.nab ? String(r.nab.fp) : '',
      f3(r.batadal?.s),
      f3(r.batadal?.sTtd),
    ];
  });
  const pooled = pool(results).map((p) => {
    const m = pointMetrics(p.confusion);
    return [
      `POOLED (${p.files} files)`,
      p.detector,
      String(p.confusion.tp + p.confusion.fp + p.confusion.tn + p.confusion.fn),
      f3(m.f1),
      f3(m.precision),
      f3(m.recall),
      f3(m.far),
      f3(m.mar),
      p.nab ? f1(p.nab.standard) : '',
      p.nab ? f1(p.nab.reward_low_FP_rate) : '',
      p.nab ? f1(p.nab.reward_low_FN_rate) : '',
      p.windows !== undefined ? `${p.detected}/${p.windows}` : '',
      p.fp !== undefined ? String(p.fp) : '',
      '',
      '',
    ];
  });
  const note =
    'NAB per file: raw score; POOLED NAB: normalised over the files (null 0, perfect 100). ' +
    'NAB counts alert onsets (first flag after `cooldown` quiet rows). F1..MAR are point-wise on scored rows.';
  return `${table(head, [...rows, ...pooled])}\n${note}\n`;
}
