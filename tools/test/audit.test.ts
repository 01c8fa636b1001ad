/**
 * The audit log end to end: events mirrored to a real influxd (measurement `audit`, tags action and
 * outcome only, every hash there), and `evtwin audit verify` on a good, a tampered and a torn file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEntry, AuditEvent } from 'node-red-contrib-evtwin';
import { AuditLog, InfluxWriter, RejectionAggregator } from 'node-red-contrib-evtwin/runtime';
import { run } from '../src/cli/audit';
import { startInfluxd, type Service } from '../src/services';

const T0 = 1_767_225_600_000;
const dir = mkdtempSync(join(tmpdir(), 'evtwin-audit-it-'));
let influx: Service;
before(async () => {
  influx = await startInfluxd();
});
after(async () => {
  await influx?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Series {
  name: string;
  columns: string[];
  values: unknown[][];
}
async function query(q: string): Promise<Series[]> {
  const res = await fetch(`${influx.url}/query?db=evtwin&epoch=ms&q=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { results: { series?: Series[]; error?: string }[] };
  if (body.results[0]?.error) throw new Error(body.results[0].error);
  return body.results[0]?.series ?? [];
}
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(args, { out: (s) => (out += s + '\n'), err: (s) => (err += s + '\n') });
  return { code, out, err };
}
const ev = (i: number): AuditEvent => ({
  // Bursts: four events share each millisecond.
  ts: T0 + Math.floor(i / 4),
  actor: `user-${i % 7}`,
  action: ['user.login', 'registry.register', 'registry.revoke'][i % 3] ?? 'x',
  target: `plant-a/cnc-${i}`,
  outcome: i % 5 === 0 ? 'denied' : 'ok',
  detail: { i, note: 'comma, space "quote"' },
});

describe('audit log → InfluxDB', () => {
  it('mirrors every entry (same-ms bursts included) with its hash; tags stay low-cardinality', async () => {
    const file = join(dir, 'mirror.jsonl');
    const writer = new InfluxWriter({
      url: influx.url,
      database: 'evtwin',
      spoolDir: join(dir, 'spool'),
      spoolMaxBytes: 10_000_000,
      flushMs: 50,
    });
    const log = await AuditLog.open({ file, mirror: writer });
    const agg = new RejectionAggregator({
      sink: log,
      actor: 'node:auth',
      now: () => T0 + 1000,
      timer: false,
    });
    for (let i = 0; i < 200; i++) log.record(ev(i));
    for (let i = 0; i < 500; i++) agg.recordRejection(`plant-a/cnc-${i % 3}`, i % 2 ? 'bad-token' : 'replay');
    agg.close();
    await log.close();
    await writer.close();

    const count = await query('SELECT count("hash") FROM audit');
    assert.equal(count[0]?.values[0]?.[1], 203);
    const tags = await query('SHOW TAG KEYS FROM audit');
    assert.deepEqual(
      tags[0]?.values.map((v) => v[0]),
      ['action', 'outcome'],
    );
    const fields = Object.fromEntries((await query('SHOW FIELD KEYS FROM audit'))[0]?.values ?? []) as Record<
      string,
      string
    >;
    assert.deepEqual(fields, {
      actor: 'string',
      detail: 'string',
      hash: 'string',
      seq: 'integer',
      target: 'string',
    });
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const entries = lines.map((l) => JSON.parse(l) as AuditEntry);
    const stored = await query('SELECT "hash", "seq", "detail" FROM audit ORDER BY time');
    const bySeq = new Map(stored[0]?.values.map((v) => [v[2] as number, v[1] as string]));
    for (const e of entries) assert.equal(bySeq.get(e.seq), e.hash, `seq ${e.seq}`);
    const rejects = await query(`SELECT "detail","target" FROM audit WHERE "action" = 'auth.reject'`);
    assert.equal(rejects[0]?.values.length, 3);
    assert.match(String(rejects[0]?.values[0]?.[1]), /"count":1\d\d/);
    assert.deepEqual(await cli(['verify', file]).then((r) => [r.code, r.out.split(' ').slice(0, 2)]), [
      0,
      ['OK', '203'],
    ]);
  });
});

describe('evtwin audit verify', () => {
  const makeLog = async (name: string, n: number): Promise<string> => {
    const file = join(dir, name);
    const log = await AuditLog.open({ file });
    for (let i = 0; i < n; i++) log.record(ev(i));
    await log.close();
    return file;
  };

  it('OK on a good file, with count and last hash', async () => {
    const file = await makeLog('good.jsonl', 30);
    const last = (JSON.parse(readFileSync(file, 'utf8').trim().split('\n').pop() ?? '') as AuditEntry).hash;
    const r = await cli(['verify', file]);
    assert.deepEqual([r.code, r.out], [0, `OK 30 entries, last hash ${last}\n`]);
    const j = await cli(['verify', file, '--json']);
    assert.deepEqual(JSON.parse(j.out), { file, ok: true, entries: 30, lastHash: last, lastSeq: 30 });
  });

  it('one byte changed in the middle → TAMPERED and that line', async () => {
    const file = await makeLog('tampered.jsonl', 30);
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    lines[14] = (lines[14] ?? '').replace('"outcome":"ok"', '"outcome":"no"').replace('"denied"', '"denieD"');
    writeFileSync(file, lines.join('\n'));
    const r = await cli(['verify', file]);
    assert.equal(r.code, 1);
    assert.match(r.out, /^TAMPERED line 15: .* \(14 entries before it verify\)\n$/);
  });

  it('a torn last line → TRUNCATED; reopening recovers and appends verify again', async () => {
    const file = await makeLog('torn.jsonl', 10);
    appendFileSync(file, '{"action":"user.lo');
    const r = await cli(['verify', file]);
    assert.equal(r.code, 1);
    assert.match(r.out, /^TRUNCATED line 11: the last line has no newline \(18 bytes\)/);
    const log = await AuditLog.open({ file });
    log.record(ev(10));
    await log.close();
    const r2 = await cli(['verify', file]);
    assert.deepEqual([r2.code, r2.out.split(' ').slice(0, 2)], [0, ['OK', '12']]);
  });

  it('usage and unreadable files', async () => {
    assert.equal((await cli([])).code, 2);
    assert.equal((await cli(['check', 'x'])).code, 2);
    assert.equal((await cli(['verify'])).code, 2);
    assert.equal((await cli(['verify', 'a', 'b'])).code, 2);
    const missing = await cli(['verify', join(dir, 'nope.jsonl')]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /ENOENT/);
    assert.equal((await cli(['--help'])).code, 0);
  });
});
