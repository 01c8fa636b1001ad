/**
 * evtwin-influx + evtwin-influx-out in a real Node-RED runtime against a real influxd: counts and field
 * types, an outage in the middle of a stream, a full spool, close, replay after a restart, and a batch
 * InfluxDB refuses.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import helper from 'node-red-node-test-helper';
import type { NodeMessage } from 'node-red';
import { readingToPoint, type Reading } from 'node-red-contrib-evtwin';
import { receipts, SpoolFullError, type InfluxWriter } from 'node-red-contrib-evtwin/runtime';
import { freePort } from '../src/services';
import { evtwinNode, nodeById, useNodeRedInflux } from './helpers/nodeRedInflux';

const influxNode = evtwinNode('evtwin-influx');
const outNode = evtwinNode('evtwin-influx-out');

const T0 = 1_767_225_600_000;
const rig = useNodeRedInflux('evtwin-influx-out-');
const { query, tempDir } = rig;

const reading = (i: number, asset = 'cnc-01', ts = T0 + i): Reading => ({
  site: 'plant-a',
  line: 'machining',
  asset,
  kind: 'cnc',
  ts,
  seq: i,
  // Whole numbers on purpose: a writer that guesses types from values would create integer fields.
  metrics: { power: i % 10, temperature: 40 + (i % 7), vibration: 0.5 },
});

const scalar = async (db: string, q: string): Promise<unknown> => (await query(db, q))[0]?.values[0]?.[1];

interface Caught {
  errors: string[];
  statuses: { fill?: string; text?: string }[];
}

/** Load a flow: config node, out node, and a Catch node for everything the out node reports. */
async function load(
  config: Record<string, unknown>,
): Promise<{ out: NonNullable<ReturnType<typeof helper.getNode>>; writer: InfluxWriter; caught: Caught }> {
  const flow = [
    { id: 'f1', type: 'tab' },
    rig.influxConfig({ spoolMaxMB: '100', gzip: true, createDatabase: true, ...config }),
    { id: 'out', type: 'evtwin-influx-out', z: 'f1', x: 100, y: 100, influx: 'cfg' },
    {
      id: 'catch',
      type: 'catch',
      z: 'f1',
      x: 100,
      y: 200,
      scope: ['out'],
      uncaught: false,
      wires: [['sink']],
    },
    { id: 'sink', type: 'helper', z: 'f1', x: 300, y: 200 },
  ];
  await helper.load([influxNode, outNode], flow);
  const caught: Caught = { errors: [], statuses: [] };
  nodeById('sink').on('input', (m: NodeMessage & { error?: { message: string } }) =>
    caught.errors.push(m.error?.message ?? ''),
  );
  const out = nodeById('out');
  out.on('call:status', (call: { args: [{ fill?: string; text?: string }] }) =>
    caught.statuses.push(call.args[0]),
  );
  const writer = (nodeById('cfg') as unknown as { writer: InfluxWriter }).writer;
  assert.ok(writer, 'the config node made a writer');
  return { out, writer, caught };
}

async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const closedPortUrl = async (): Promise<string> => `http://127.0.0.1:${await freePort()}`;

describe('evtwin-influx-out against influxd', () => {
  it('writes N readings as N points with float fields, and measures points/s', async () => {
    const N = 100_000;
    const SINGLE = 20_000;
    const { out, writer } = await load({ url: rig.influx.url, database: 'w1', spoolDir: tempDir() });
    // One reading per message (the ingest node's output), then arrays of 100 (a batch per message).
    let start = process.hrtime.bigint();
    for (let i = 0; i < SINGLE; i++) out.receive({ payload: reading(i) });
    await writer.whenIdle();
    const singleS = Number(process.hrtime.bigint() - start) / 1e9;
    start = process.hrtime.bigint();
    for (let i = SINGLE; i < N; i += 100)
      out.receive({ payload: Array.from({ length: 100 }, (_, k) => reading(i + k)) });
    await writer.whenIdle();
    const arrayS = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(
      `# throughput through the node to influxd (batch 5000): ${Math.round(SINGLE / singleS)} points/s with 1 reading per message, ` +
        `${Math.round((N - SINGLE) / arrayS)} points/s with 100 per message`,
    );
    assert.equal(writer.stats().written, N);
    assert.equal(await scalar('w1', 'SELECT count(power) FROM telemetry'), N);
    assert.equal(await scalar('w1', 'SELECT count(seq) FROM telemetry'), N);
    const fields = Object.fromEntries((await query('w1', 'SHOW FIELD KEYS FROM telemetry'))[0]?.values ?? []);
    assert.deepEqual(fields, { power: 'float', seq: 'integer', temperature: 'float', vibration: 'float' });
    const tags = await query('w1', 'SHOW TAG KEYS FROM telemetry');
    assert.deepEqual(tags[0]?.values.flat(), ['asset', 'kind', 'line', 'site']);
  });

  it('spools during an outage and replays everything, in order, without duplicates', async () => {
    const { out, writer, caught } = await load({ url: rig.influx.url, database: 'w2', spoolDir: tempDir() });
    const MSGS = 260;
    const PER = 100;
    // Asset a: unique timestamps (count, no duplicates). Asset b: each timestamp written 4 times with a
    // rising seq, so the value InfluxDB keeps is the last one only if batches were replayed in order.
    let killedAt = 0;
    let restartedAt = 0;
    let restart: Promise<void> | undefined;
    for (let m = 0; m < MSGS; m++) {
      const batch: Reading[] = [];
      for (let k = 0; k < PER; k++) {
        const i = m * PER + k;
        batch.push(reading(i, 'a'), reading(i, 'b', T0 + (i % (MSGS * 25))));
      }
      out.receive({ payload: batch });
      if (m === 30) {
        await rig.influx.kill();
        killedAt = Date.now();
      }
      if (m === 230) {
        restartedAt = Date.now();
        restart = rig.influx.restart();
      }
      await sleep(20);
    }
    await restart;
    const readyAt = Date.now();
    assert.ok(restartedAt - killedAt > 3000, `outage lasted ${restartedAt - killedAt} ms`);
    const spooledAtRestart = writer.stats().spooled;
    await writer.whenIdle();
    const drainMs = Date.now() - readyAt;
    console.log(
      `# outage ${restartedAt - killedAt} ms; ${spooledAtRestart} points spooled when influxd was back; drained in ${drainMs} ms after it was ready`,
    );
    const N = MSGS * PER;
    assert.ok(spooledAtRestart > 0, 'points were spooled');
    assert.equal(await scalar('w2', "SELECT count(power) FROM telemetry WHERE asset='a'"), N);
    const seqs = (await query('w2', "SELECT seq FROM telemetry WHERE asset='a'"))[0]?.values.map((v) => v[1]);
    assert.deepEqual(
      seqs,
      Array.from({ length: N }, (_, i) => i),
    );
    const distinct = MSGS * 25;
    const last = (await query('w2', "SELECT seq FROM telemetry WHERE asset='b'"))[0]?.values ?? [];
    assert.equal(last.length, distinct);
    for (const [ts, seq] of last) {
      assert.equal(seq, Number(ts) - T0 + distinct * 3, `ts ${String(ts)} holds the last write`);
    }
    assert.ok(
      caught.statuses.some((s) => s.fill === 'yellow' && /InfluxDB down: spooling/.test(s.text ?? '')),
      `status showed spooling: ${JSON.stringify(caught.statuses.map((s) => s.text))}`,
    );
    assert.deepEqual(caught.errors, []);
    await waitFor('green status', () => caught.statuses.at(-1)?.fill === 'green');
  });

  it('refuses with a catchable error when the spool is full, never dropping silently', async () => {
    const spoolDir = tempDir();
    const { out, writer, caught } = await load({
      url: await closedPortUrl(),
      database: 'w3',
      spoolDir,
      spoolMaxMB: '0.05',
    });
    let sent = 0;
    while (caught.errors.length === 0 && sent < 2000) {
      out.receive({ payload: [reading(sent * 2), reading(sent * 2 + 1)] });
      sent++;
      await sleep(2);
    }
    await sleep(200);
    assert.match(caught.errors[0] ?? '', /^SpoolFullError: spool full: .*ECONNREFUSED.*2 points refused/);
    const refusedMsgs = caught.errors.length;
    const s = writer.stats();
    assert.equal(
      s.queued + s.spooled,
      (sent - refusedMsgs) * 2,
      'every point is either held or reported refused',
    );
    assert.ok(s.heldBytes <= 0.05 * 1_048_576);
    await waitFor('red status', () =>
      caught.statuses.some((st) => st.fill === 'red' && /spool full/.test(st.text ?? '')),
    );
  });

  it('flushes on close', async () => {
    const spoolDir = tempDir();
    const { out } = await load({ url: rig.influx.url, database: 'w4', spoolDir, flushMs: '600000' });
    for (let i = 0; i < 1234; i++) out.receive({ payload: reading(i) });
    await sleep(100);
    assert.equal(
      await scalar('w4', 'SELECT count(power) FROM telemetry').catch(() => undefined),
      undefined,
      'nothing written yet',
    );
    await helper.unload();
    assert.equal(await scalar('w4', 'SELECT count(power) FROM telemetry'), 1234);
    assert.deepEqual(
      readdirSync(spoolDir).filter((f) => f.endsWith('.lp')),
      [],
    );
  });

  it('replays at start a spool left on disk by a previous run', async () => {
    const spoolDir = tempDir();
    const first = await load({ url: await closedPortUrl(), database: 'w5', spoolDir });
    for (let i = 0; i < 50; i++)
      first.out.receive({
        payload: [reading(i * 10), ...Array.from({ length: 9 }, (_, k) => reading(i * 10 + k + 1))],
      });
    await waitFor(
      'points accepted',
      () => first.writer.stats().queued + first.writer.stats().spooled === 500,
    );
    await helper.unload();
    assert.ok(
      readdirSync(spoolDir).some((f) => f.endsWith('.lp')),
      'close left a spool',
    );

    const second = await load({ url: rig.influx.url, database: 'w5', spoolDir });
    await waitFor(
      'replay',
      async () => (await scalar('w5', 'SELECT count(power) FROM telemetry').catch(() => 0)) === 500,
    );
    await second.writer.whenIdle();
    assert.equal(second.writer.stats().written, 500);
    assert.deepEqual(
      readdirSync(spoolDir).filter((f) => f.endsWith('.lp')),
      [],
    );
  });

  it('moves a batch with a field type conflict to rejected/ and reports it loudly', async () => {
    const pre = await fetch(`${rig.influx.url}/query?q=${encodeURIComponent('CREATE DATABASE w6')}`, {
      method: 'POST',
    });
    assert.equal(pre.status, 200);
    const w = await fetch(`${rig.influx.url}/write?db=w6&precision=ms`, {
      method: 'POST',
      // Field types are kept per shard in InfluxDB 1.x: the conflicting point must share the shard (week) of T0.
      body: `telemetry,asset=old power="a string" ${T0 - 1}`,
    });
    assert.equal(w.status, 204);
    const spoolDir = tempDir();
    const { out, writer, caught } = await load({ url: rig.influx.url, database: 'w6', spoolDir });
    for (let i = 0; i < 20; i++) out.receive({ payload: reading(i) });
    await waitFor('the rejection', () => caught.errors.length > 0);
    assert.match(
      caught.errors[0] ?? '',
      /InfluxDB rejected a batch of 20 points: HTTP 400: .*field type conflict/,
    );
    const rejected = join(spoolDir, 'rejected');
    const files = readdirSync(rejected).filter((f) => f.endsWith('.lp'));
    assert.equal(files.length, 1);
    assert.equal(readFileSync(join(rejected, files[0] ?? ''), 'utf8').split('\n').length, 20);
    assert.ok(existsSync(join(rejected, `${files[0]}.reason.txt`)));
    await waitFor('red status', () =>
      caught.statuses.some((s) => s.fill === 'red' && /rejected/.test(s.text ?? '')),
    );
    const s = writer.stats();
    assert.equal(s.rejectedPoints, 20);
    assert.equal(s.spooled + s.queued, 0, 'never retried');
    // The writer goes on: later good points are written.
    out.receive({
      payload: { measurement: 'telemetry', tags: { asset: 'new' }, fields: { temperature: 1 }, ts: T0 },
    });
    await writer.whenIdle();
    assert.equal(await scalar('w6', "SELECT count(temperature) FROM telemetry WHERE asset='new'"), 1);
  });

  it('reports points the schema refuses and writes the ones beside them', async () => {
    const { out, writer, caught } = await load({ url: rig.influx.url, database: 'w7', spoolDir: tempDir() });
    out.receive({
      payload: [reading(1), { ...reading(2), metrics: { power: Number.NaN } }, { hello: 1 }, reading(3)],
    });
    await waitFor('the error', () => caught.errors.length > 0);
    assert.match(
      caught.errors[0] ?? '',
      /^Error: 2 of 4 points refused, the others written: \[1\] telemetry\.power: expected a finite float, got NaN; \[2\] not a point/,
    );
    await writer.whenIdle();
    assert.equal(await scalar('w7', 'SELECT count(power) FROM telemetry'), 2);
  });
});

describe('onSafe: when the writer calls back (what evtwin-mqtt-in acknowledges on)', () => {
  const points = (from: number, n: number, asset = 'safe'): unknown[] =>
    Array.from({ length: n }, (_, i) => readingToPoint(reading(from + i, asset)));
  const count = async (db: string): Promise<unknown> =>
    scalar(db, 'SELECT count(power) FROM telemetry').catch(() => undefined);

  it('calls back only once every batch holding the points is queryable in InfluxDB', async () => {
    // No timed flush: a batch is sent only when it holds 5000 points.
    const { writer } = await load({ database: 's1', spoolDir: tempDir(), flushMs: '600000' });
    const seen: { which: string; count: Promise<unknown> }[] = [];
    const onSafe = (which: string) => (): void => {
      seen.push({ which, count: count('s1') });
    };
    // 7000 points: one sealed batch of 5000, 2000 in the open one.
    writer.write(points(0, 7000), 'test', onSafe('first'));
    await waitFor('the first batch stored', async () => (await count('s1')) === 5000);
    await sleep(300);
    assert.equal(seen.length, 0, 'not while 2000 of its points wait in the open batch');
    // 3000 more fill the open batch: it is sealed and sent.
    writer.write(points(7000, 3000), 'test', onSafe('second'));
    await waitFor('the callbacks', () => seen.length === 2);
    await sleep(200);
    assert.deepEqual(
      seen.map((x) => x.which),
      ['first', 'second'],
      'each called once',
    );
    // What InfluxDB answered to a query made the moment each callback ran.
    assert.deepEqual(await Promise.all(seen.map((x) => x.count)), [10_000, 10_000]);
  });

  it('evtwin-influx-out settles the receipt a message carries once its reading is stored', async () => {
    const { out } = await load({ database: 's2', spoolDir: tempDir(), flushMs: '300' });
    let countAtSettle: Promise<unknown> | undefined;
    const receipt = receipts.issue(() => {
      countAtSettle = count('s2');
    });
    out.receive({ payload: reading(1), evtwin: { receipt } });
    await sleep(100);
    assert.equal(countAtSettle, undefined, 'not before the timed flush');
    await waitFor('the settle', () => countAtSettle !== undefined);
    assert.equal(await countAtSettle, 1);
  });

  it('calls back at once when nothing was accepted', async () => {
    const { writer } = await load({ database: 's3', spoolDir: tempDir(), flushMs: '600000' });
    let calls = 0;
    const r = writer.write([{ hello: 1 }], 'test', () => calls++);
    assert.equal(r.accepted, 0);
    assert.equal(calls, 1, 'synchronously, within write()');
    writer.write([], 'test', () => calls++);
    assert.equal(calls, 2);
  });

  it('during an outage, calls back once the points are in the spool on disk', async () => {
    const spoolDir = tempDir();
    const { writer } = await load({ url: await closedPortUrl(), database: 's4', spoolDir, flushMs: '50' });
    let atCall: { spooled: number; files: string[] } | undefined;
    let calls = 0;
    writer.write(points(0, 100), 'test', () => {
      calls++;
      atCall = {
        spooled: writer.stats().spooled,
        files: readdirSync(spoolDir).filter((f) => f.endsWith('.lp')),
      };
    });
    assert.equal(calls, 0);
    await waitFor('the callback', () => calls > 0, 10_000);
    assert.equal(atCall?.spooled, 100, 'the points were counted as spooled');
    assert.equal(atCall?.files.length, 1, 'a segment file exists');
    await sleep(300);
    assert.equal(calls, 1);
  });

  it('never calls back for a write that throws SpoolFullError', async () => {
    const { writer } = await load({
      url: await closedPortUrl(),
      database: 's5',
      spoolDir: tempDir(),
      spoolMaxMB: '0.05',
      flushMs: '20',
    });
    const calls = new Map<number, number>();
    const threw = new Set<number>();
    for (let i = 0; i < 3000 && threw.size < 5; i++) {
      try {
        writer.write(points(i * 2, 2), 'test', () => calls.set(i, (calls.get(i) ?? 0) + 1));
      } catch (err) {
        assert.ok(err instanceof SpoolFullError, String(err));
        threw.add(i);
      }
      await sleep(1);
    }
    assert.equal(threw.size, 5, 'the spool filled up');
    await sleep(1000);
    assert.deepEqual(
      [...threw].filter((i) => calls.has(i)),
      [],
      'no callback for a refused write',
    );
    assert.ok(calls.size > 0, 'accepted writes were called back once spooled');
    assert.ok(
      [...calls.values()].every((n) => n === 1),
      'at most once each',
    );
  });
});

describe('send at once when InfluxDB is free (flushWhenFree)', () => {
  const points = (from: number, n: number, asset = 'free'): unknown[] =>
    Array.from({ length: n }, (_, i) => readingToPoint(reading(from + i, asset)));

  it('stores a lone point at once instead of after the flush interval', async () => {
    const { writer } = await load({
      database: 'f1',
      spoolDir: tempDir(),
      flushMs: '600000',
      flushWhenFree: true,
    });
    const started = Date.now();
    let safeAfter: number | undefined;
    writer.write(points(0, 1), 'test', () => (safeAfter = Date.now() - started));
    await waitFor('the point stored', () => safeAfter !== undefined, 10_000);
    assert.equal(await scalar('f1', 'SELECT count(power) FROM telemetry'), 1);
  });

  it('keeps the timed flush when off (a flow made before the option)', async () => {
    const { writer } = await load({ database: 'f2', spoolDir: tempDir(), flushMs: '600000' });
    let safe = false;
    writer.write(points(0, 1), 'test', () => (safe = true));
    await sleep(500);
    assert.equal(safe, false, 'waits for the flush interval');
    assert.equal(writer.stats().queued, 1);
  });

  it('sends what arrives while a write is in flight as one batch once it is answered (group commit)', async () => {
    // A slow InfluxDB: answers every write after 300 ms and records each request's lines.
    const bodies: string[][] = [];
    const slow = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean));
        setTimeout(() => res.writeHead(204).end(), 300);
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
      const { writer } = await load({
        url,
        database: 'f3',
        spoolDir: tempDir(),
        flushMs: '600000',
        flushWhenFree: true,
        createDatabase: false,
        gzip: false,
      });
      let safe = 0;
      // A lone point goes at once...
      writer.write(points(0, 1), 'test', () => safe++);
      await waitFor('the first request', () => bodies.length === 1);
      // ...so 50 points written one by one meanwhile wait, and go together once it is answered.
      for (let i = 0; i < 50; i++) {
        writer.write(points(1 + i, 1), 'test', () => safe++);
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(bodies.length, 1, 'nothing more sent while a write is in flight');
      await waitFor('all 51 safe', () => safe === 51, 10_000);
      assert.deepEqual(
        bodies.map((b) => b.length),
        [1, 50],
      );
    } finally {
      await new Promise((resolve) => slow.close(resolve));
    }
  });
});
