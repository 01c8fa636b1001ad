/**
 * `npm run eval -- FILES... [--train FILE] [--delimiter ';'] [--time-col C] [--label-col C]
 *  [--ignore-cols a,b] [--train-rows N] [--format points|nab|batadal] [--windows FILE] [--set key=value]
 *  [--no-baselines] [--json]` and `npm run eval -- --bench`.
 */
import type { LearnedDetectorOptions } from 'node-red-contrib-evtwin';
import { bench } from './bench';
import { formatReport, pool } from './report';
import { evaluateFile, type EvalFormat, type EvalOptions, type FileResult } from './run';

const USAGE = `usage: evtwin-eval FILES... [--train FILE] [--delimiter C] [--time-col C] [--label-col C]
       [--ignore-cols a,b] [--train-rows N] [--format points|nab|batadal] [--windows FILE]
       [--set option=value]... [--no-baselines] [--json]
       evtwin-eval --bench`;

export async function main(argv: string[]): Promise<number> {
  const files: string[] = [];
  const o: EvalOptions = { progress: (m) => process.stderr.write(`${m}\n`) };
  const det: Record<string, number> = {};
  let json = false;
  let doBench = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--train':
        o.train = val();
        break;
      case '--delimiter':
        o.delimiter = val();
        break;
      case '--time-col':
        o.timeCol = val();
        break;
      case '--label-col':
        o.labelCol = val();
        break;
      case '--ignore-cols':
        o.ignoreCols = val().split(',');
        break;
      case '--train-rows':
        o.trainRows = Number(val());
        break;
      case '--format': {
        const f = val();
        if (!['points', 'nab', 'batadal'].includes(f))
          throw new Error(`--format must be points, nab or batadal`);
        o.format = f as EvalFormat;
        break;
      }
      case '--windows':
        o.windows = val();
        break;
      case '--set': {
        const [k, v] = val().split('=');
        if (!k || v === undefined || !Number.isFinite(Number(v)))
          throw new Error('--set needs option=number');
        det[k] = Number(v);
        break;
      }
      case '--no-baselines':
        o.baselines = false;
        break;
      case '--json':
        json = true;
        break;
      case '--bench':
        doBench = true;
        break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        return 0;
      default:
        if (a.startsWith('--')) throw new Error(`unknown option ${a}\n${USAGE}`);
        files.push(a);
    }
  }
  o.detector = det as LearnedDetectorOptions;
  if (doBench) {
    const b = bench(o.detector);
    process.stdout.write(
      json
        ? `${JSON.stringify(b, null, 2)}\n`
        : `${Object.entries(b)
            .map(([k, v]) => `${k}: ${v}`)
            .join('\n')}\n`,
    );
    return 0;
  }
  if (!files.length) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const results: FileResult[] = [];
  for (const f of files) results.push(...(await evaluateFile(f, o)));
  if (json) process.stdout.write(`${JSON.stringify({ files: results, pooled: pool(results) }, null, 2)}\n`);
  else process.stdout.write(formatReport(results));
  return 0;
}
