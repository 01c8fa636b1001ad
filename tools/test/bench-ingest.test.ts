/**
 * `npm run bench -- --quick` works end to end at a tiny size: the three rows (ceiling, stock, EVTwin)
 * are recorded in JSON and markdown, and nothing sent was lost. No timing is asserted (shared machine).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BenchResult } from '../src/bench/ingest';

describe('npm run bench -- --quick', () => {
  it('records ceiling, stock and evtwin with no reading lost', { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'evtwin-bench-test-'));
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', join(__dirname, '..', 'src', 'bench', 'ingest.ts'), '--quick', '--out', out],
        { cwd: join(__dirname, '..'), maxBuffer: 16 * 1024 * 1024, timeout: 280_000 },
      );
      const files = readdirSync(out);
      const json = files.find((f) => f.endsWith('.json'));
      assert.ok(json, `a JSON result in ${out}: ${files.join(', ')}\n${stdout}`);
      assert.ok(
        files.some((f) => f.endsWith('.md')),
        'a markdown result',
      );
      const r = JSON.parse(readFileSync(join(out, json), 'utf8')) as BenchResult;
      assert.deepEqual(
        r.pipelines.map((p) => p.pipeline),
        ['ceiling', 'stock', 'evtwin'],
      );
      for (const p of r.pipelines) {
        assert.ok(p.sent > 0, `${p.pipeline}: load was sent`);
        assert.equal(p.lost, 0, `${p.pipeline}: ${p.lost} of ${p.sent} lost\n${stdout}`);
        assert.ok(p.steps.length > 0, `${p.pipeline}: steps recorded`);
      }
      assert.equal(r.machine.cores > 0, true);
      const md = readFileSync(join(out, json.replace(/\.json$/, '.md')), 'utf8');
      for (const name of ['ceiling', 'stock', 'evtwin']) assert.match(md, new RegExp(`\\| ${name} \\|`));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
