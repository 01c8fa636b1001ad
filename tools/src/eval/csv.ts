/** Streaming reader for labelled CSV files: one parsed row at a time, no whole-file arrays. */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

export interface CsvOptions {
  delimiter?: string;
  timeCol?: string;
  labelCol?: string;
  ignoreCols?: string[];
}

export interface CsvRow {
  /** 0-based data row number. */
  index: number;
  ts: number;
  metrics: Record<string, number>;
  /** 1 anomalous, 0 normal, undefined when the file has no label column. */
  label: number | undefined;
}

export interface CsvHeader {
  timeCol: string;
  labelCol: string | undefined;
  metricCols: string[];
}

const TIME_NAMES = ['timestamp', 'datetime', 'time', 'date', 'ts'];
const LABEL_NAMES = ['label', 'anomaly', 'att_flag', 'is_anomaly', 'attack'];

/** Milliseconds since the epoch (UTC) from ISO-like, dd/mm/yy[yy] HH[:MM[:SS]] or epoch numbers. */
export function parseTime(text: string): number {
  const t = text.trim();
  let m = /^(\d{1,2})\/(\d{1,2})\/(\d{2}|\d{4})[ T](\d{1,2})(?::(\d{2}))?(?::(\d{2}))?$/.exec(t);
  if (m) {
    const y = Number(m[3]);
    return Date.UTC(
      y < 100 ? 2000 + y : y,
      Number(m[2]) - 1,
      Number(m[1]),
      Number(m[4]),
      Number(m[5] ?? 0),
      Number(m[6] ?? 0),
    );
  }
  m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?(Z)?$/.exec(t);
  if (m)
    return (
      Date.UTC(
        Number(m[1]),
        Number(m[2]) - 1,
        Number(m[3]),
        Number(m[4] ?? 0),
        Number(m[5] ?? 0),
        Number(m[6] ?? 0),
      ) + Math.round(Number(m[7] ?? 0) * 1000)
    );
  if (/^-?\d+(\.\d+)?$/.test(t)) {
    const n = Number(t);
    return n < 1e11 ? n * 1000 : n; // seconds or milliseconds
  }
  const d = Date.parse(t);
  if (Number.isNaN(d)) throw new Error(`unrecognised timestamp ${JSON.stringify(text)}`);
  return d;
}

export function resolveHeader(cols: string[], o: CsvOptions): CsvHeader {
  const lower = cols.map((c) => c.toLowerCase());
  const pick = (given: string | undefined, names: string[]): string | undefined => {
    if (given !== undefined) {
      const i = lower.indexOf(given.toLowerCase());
      if (i < 0) throw new Error(`column ${JSON.stringify(given)} not found (columns: ${cols.join(', ')})`);
      return cols[i];
    }
    for (const n of names) {
      const i = lower.indexOf(n);
      if (i >= 0) return cols[i];
    }
    return undefined;
  };
  const timeCol = pick(o.timeCol, TIME_NAMES);
  if (!timeCol) throw new Error(`no time column (use --time-col; columns: ${cols.join(', ')})`);
  const labelCol = pick(o.labelCol, LABEL_NAMES);
  const ignore = new Set((o.ignoreCols ?? []).map((c) => c.toLowerCase()));
  const metricCols = cols.filter(
    (c) => c !== timeCol && c !== labelCol && !ignore.has(c.toLowerCase()) && c !== '',
  );
  return { timeCol, labelCol, metricCols };
}

/** Rows of a CSV file in order. Empty cells become missing metrics (the detector skips such rows). */
export async function* readCsv(
  path: string,
  o: CsvOptions = {},
  onHeader?: (h: CsvHeader) => void,
): AsyncGenerator<CsvRow> {
  const delimiter = o.delimiter ?? ',';
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let cols: string[] | null = null;
  let header: CsvHeader | null = null;
  let timeIdx = -1;
  let labelIdx = -1;
  let metricIdx: number[] = [];
  let index = 0;
  for await (const raw of rl) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) continue;
    const cells = line.split(delimiter).map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
    if (!cols) {
      cols = cells;
      header = resolveHeader(cols, o);
      timeIdx = cols.indexOf(header.timeCol);
      labelIdx = header.labelCol ? cols.indexOf(header.labelCol) : -1;
      metricIdx = header.metricCols.map((c) => (cols as string[]).indexOf(c));
      onHeader?.(header);
      continue;
    }
    const metrics: Record<string, number> = {};
    metricIdx.forEach((ci, k) => {
      const cell = cells[ci];
      if (cell !== undefined && cell !== '')
        metrics[(header as CsvHeader).metricCols[k] as string] = Number(cell);
    });
    let label: number | undefined;
    if (labelIdx >= 0) {
      const l = Number(cells[labelIdx]);
      label = l === 1 ? 1 : 0; // BATADAL's dataset04 marks unknown rows -999: not an attack
    }
    yield { index: index++, ts: parseTime(cells[timeIdx] ?? ''), metrics, label };
  }
}

/** Count data rows (for NAB's probation period, which depends on the file length). */
export async function countRows(path: string): Promise<number> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let n = -1;
  for await (const line of rl) if (line.trim()) n++;
  return Math.max(0, n);
}
