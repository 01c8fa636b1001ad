/**
 * `npm run fuzz -- [--count 100000] [--seed N] [--bound-ms MS] [--json FILE]`: the full-size fuzz run with progress
 * and a summary; exits 1 when any input crashed, hung, went unanswered or disturbed valid traffic.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatSummary, runFuzz } from './run';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '100000' },
      seed: { type: 'string' },
      json: { type: 'string' },
      'bound-ms': { type: 'string' },
    },
  });
  const count = Number(values.count);
  const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
  if (!Number.isSafeInteger(count) || count < 10) throw new Error('--count must be an integer >= 10');
  if (!Number.isSafeInteger(seed)) throw new Error('--seed must be an integer');
  const summary = await runFuzz({
    count,
    seed,
    ...(values['bound-ms'] ? { boundMs: Number(values['bound-ms']) } : {}),
    progress: (l) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${l}`),
  });
  console.log(formatSummary(summary));
  if (values.json) writeFileSync(values.json, JSON.stringify(summary, null, 2));
  return summary.failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  },
);
