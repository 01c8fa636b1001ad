/** The on-disk spool, and the writer's use of it while InfluxDB cannot be reached (a closed port). */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readingToPoint } from '../src/core/lineProtocol';
import { InfluxWriter, Spool, SpoolFullError, segmentName } from '../src/runtime';

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'evtwin-spool-test-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A port nothing listens on: every write fails with ECONNREFUSED, as when influxd is down. */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

const point = (i: number) =>
  readingToPoint({ site: 's', asset: 'a', kind: 'k', ts: 1_767_225_600_000 + i, seq: i, metrics: { v: i } });

describe('Spool', () => {
  it('keeps segments in sequence order whatever order they arrive in, and replays them after a restart', async () => {
    const dir = tempDir();
    const spool = new Spool(dir);
    await spool.append(3, 'c', 1);
    await spool.append(1, 'a\na', 2);
    await spool.append(2, 'bb', 1);
    assert.deepEqual(
      spool.list().map((s) => s.seq),
      [1, 2, 3],
    );
    assert.equal(spool.points, 4);
    assert.equal(spool.bytes, 3 + 2 + 1);
    // A torn write from a crash: never renamed, so never counted, and cleaned at the next open.
    writeFileSync(join(dir, `${segmentName(4, 1)}.tmp`), 'partial');

    const reopened = new Spool(dir);
    assert.deepEqual(
      reopened.list().map((s) => [s.seq, s.points, s.bytes]),
      [
        [1, 2, 3],
        [2, 1, 2],
        [3, 1, 1],
      ],
    );
    assert.equal(reopened.lastSeq, 3);
    assert.equal(await reopened.read(reopened.head()!), 'a\na');
    assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')), 'tmp file removed');
    await reopened.remove(reopened.head()!);
    assert.equal(reopened.head()?.seq, 2);
    assert.equal(reopened.points, 2);
  });

  it('moves a rejected segment to rejected/ with its reason', async () => {
    const spool = new Spool(tempDir());
    const seg = await spool.append(1, 'x', 1);
    const file = await spool.reject(seg, 'HTTP 400: field type conflict');
    assert.equal(spool.size, 0);
    assert.equal(readFileSync(file, 'utf8'), 'x');
    assert.match(readFileSync(`${file}.reason.txt`, 'utf8'), /field type conflict/);
    assert.equal(new Spool(spool.dir).size, 0, 'a rejected batch is never replayed');
  });
});

describe('InfluxWriter without InfluxDB', () => {
  it('spools batches in order, refuses loudly when the bound is reached, and leaves the spool for the next run', async () => {
    const dir = tempDir();
    const url = `http://127.0.0.1:${await closedPort()}`;
    const writer = new InfluxWriter({
      url,
      database: 'evtwin',
      spoolDir: dir,
      spoolMaxBytes: 4000,
      batchSize: 10,
      flushMs: 20,
    });
    let accepted = 0;
    let refusal: unknown;
    for (let i = 0; i < 200 && !refusal; i++) {
      try {
        accepted += writer.write([point(i)]).accepted;
      } catch (err) {
        refusal = err;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok(refusal instanceof SpoolFullError, `expected a SpoolFullError, got ${String(refusal)}`);
    assert.match((refusal as Error).message, /^spool full: .*ECONNREFUSED.*1 points refused/);
    const stats = writer.stats();
    assert.equal(stats.full, true);
    assert.equal(stats.down, true);
    assert.equal(stats.written, 0);
    assert.ok(stats.heldBytes <= 4000, `held ${stats.heldBytes} bytes within the bound`);
    assert.equal(stats.queued + stats.spooled, accepted);
    await writer.close();
    assert.throws(() => writer.write([point(0)]), /closed/);

    // Everything accepted is on disk, in write order, for the next start.
    const spool = new Spool(dir);
    assert.equal(spool.points, accepted);
    const lines: string[] = [];
    for (const seg of spool.list()) lines.push(...(await spool.read(seg)).split('\n'));
    assert.deepEqual(
      lines.map((l) => Number(l.split(' ')[2])),
      Array.from({ length: accepted }, (_, i) => 1_767_225_600_000 + i),
    );
  });

  it('refuses the points the schema refuses and takes the others', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const writer = new InfluxWriter({
      url,
      database: 'evtwin',
      spoolDir: tempDir(),
      spoolMaxBytes: 1_000_000,
    });
    const result = writer.write([
      point(1),
      { measurement: 'telemetry', tags: {}, fields: { v: 'x' }, ts: 1 },
      point(2),
    ]);
    assert.equal(result.accepted, 2);
    assert.deepEqual(
      result.refused.map((r) => r.index),
      [1],
    );
    await writer.close();
    assert.equal(new Spool(writer.spool.dir).points, 2, 'close spools what it could not write');
  });
});
