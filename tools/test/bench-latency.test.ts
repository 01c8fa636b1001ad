/**
 * The benchmark's write-ack latency proxy on a real influxd: writes (plain and gzip) and queries pass
 * through unchanged, and only probe devices' telemetry points acknowledged with 2xx are recorded, once
 * each, at ack time − payload ts whatever the write's precision.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { createDatabase, influxQuery } from '../src/bench/ingestKit';
import { WriteAckLatency } from '../src/bench/writeAckLatency';
import { freePort, startInfluxd, type Service } from '../src/services';

const DB = 'bench_ack';
let influx: Service;
let proxy: WriteAckLatency;

before(async () => {
  influx = await startInfluxd();
  await createDatabase(influx.url, DB);
  await createDatabase(influx.url, 'other');
  proxy = await WriteAckLatency.listen(influx.url, DB);
});
after(async () => {
  await proxy?.close();
  await influx?.stop();
});

/** POST /write through the proxy; the time span around the request bounds the ack time. */
async function write(
  lines: string[],
  opts: { precision?: string; gzip?: boolean; db?: string } = {},
): Promise<{ status: number; text: string; sentAt: number; doneAt: number }> {
  const q = new URLSearchParams({ db: opts.db ?? DB });
  if (opts.precision) q.set('precision', opts.precision);
  const body = lines.join('\n');
  const sentAt = Date.now();
  const res = await fetch(`${proxy.url}/write?${q}`, {
    method: 'POST',
    body: opts.gzip ? gzipSync(body) : body,
    headers: opts.gzip ? { 'Content-Encoding': 'gzip' } : {},
  });
  const text = await res.text();
  return { status: res.status, text, sentAt, doneAt: Date.now() };
}

const seqOf = async (asset: string): Promise<unknown[][]> =>
  (await influxQuery(influx.url, DB, `SELECT seq FROM telemetry WHERE asset = '${asset}'`))[0]?.values ?? [];

describe('write-ack latency proxy', () => {
  it('passes plain and gzip writes through to influxd', async () => {
    const ts = Date.now() - 60_000;
    const plain = await write([`telemetry,site=s,asset=d1 seq=1i,v=1.5 ${ts}`], { precision: 'ms' });
    assert.equal(plain.status, 204, plain.text);
    const gz = await write([`telemetry,site=s,asset=d2 seq=2i,v=2.5 ${ts}`], { precision: 'ms', gzip: true });
    assert.equal(gz.status, 204, gz.text);
    assert.deepEqual(await seqOf('d1'), [[ts, 1]]);
    assert.deepEqual(await seqOf('d2'), [[ts, 2]]);
  });

  it('records probe points once, at ack time − ts, with ms, ns and µs precision', async () => {
    const t = Date.now();
    proxy.start(t - 5000);
    const ts = t - 1000;
    const msLines = [
      `telemetry,site=s,asset=p1 seq=1i,v=1 ${ts}`,
      `telemetry,asset=p2,site=s seq=1i,v=1 ${ts + 1}`,
      // Not probes, or not telemetry, or published before `from`: not recorded.
      `telemetry,site=s,asset=d3 seq=1i,v=1 ${ts}`,
      `telemetry,site=s,asset=p4x seq=1i,v=1 ${ts}`,
      `scores,site=s,asset=p5 score=1 ${ts}`,
      `telemetry,site=s,asset=p6 seq=1i,v=1 ${t - 10_000}`,
    ];
    const a = await write(msLines, { precision: 'ms' });
    assert.equal(a.status, 204, a.text);
    // Nanoseconds (no precision parameter) and microseconds, the latter gzipped.
    const b = await write([`telemetry,site=s,asset=p7 seq=1i,v=1 ${BigInt(ts) * 1_000_000n}`]);
    assert.equal(b.status, 204, b.text);
    const c = await write([`telemetry,site=s,asset=p8 seq=1i,v=1 ${BigInt(ts) * 1000n}`], {
      precision: 'u',
      gzip: true,
    });
    assert.equal(c.status, 204, c.text);
    // A batch written again (a retry) and a write to another database: nothing new.
    assert.equal((await write(msLines, { precision: 'ms' })).status, 204);
    assert.equal(
      (await write([`telemetry,asset=p9 seq=1i ${ts}`], { precision: 'ms', db: 'other' })).status,
      204,
    );
    const r = await proxy.stop();
    assert.equal(r.sorted.length, 4, `p1, p2, p7, p8: ${JSON.stringify(r.sorted)}`);
    // Ack time lies within the write request's span, so latency ≈ 1000 ms give or take that span.
    const lo = a.sentAt - ts - 1;
    const hi = c.doneAt - ts;
    for (const l of r.sorted) assert.ok(l >= lo && l <= hi, `${l} ms within [${lo}, ${hi}]`);
    assert.ok(r.sorted[0]! >= 990 && r.sorted[3]! < 2000, JSON.stringify(r.sorted));
    assert.ok(Number.isFinite(r.tailP50));
    assert.equal(r.bySecond.length, 1);
    // The points are in influxd as written.
    assert.deepEqual(await seqOf('p7'), [[ts, 1]]);
    assert.deepEqual(await seqOf('p8'), [[ts, 1]]);
  });

  it('passes a refused write back as 400 and records nothing', async () => {
    const ts = Date.now() - 500;
    proxy.start(ts - 1000);
    const bad = await write([`telemetry,site=s,asset=p10 seq=1i ${ts}`, 'telemetry,asset=p11 not a line'], {
      precision: 'ms',
    });
    assert.equal(bad.status, 400);
    // influxd stored p10 (a partial write) but refused the request: the consumer sees a failure.
    assert.match(bad.text, /unable to parse/);
    const r = await proxy.stop();
    assert.deepEqual(r.sorted, []);
  });

  it('records nothing outside start … stop', async () => {
    const ts = Date.now() - 200;
    assert.equal((await write([`telemetry,asset=p13 seq=1i ${ts}`], { precision: 'ms' })).status, 204);
    proxy.start(ts - 1000);
    assert.deepEqual((await proxy.stop()).sorted, []);
  });

  it('passes a query through unchanged', async () => {
    const path = `/query?db=${DB}&epoch=ms&q=${encodeURIComponent("SELECT seq FROM telemetry WHERE asset = 'd1'")}`;
    const [direct, via] = await Promise.all([fetch(`${influx.url}${path}`), fetch(`${proxy.url}${path}`)]);
    assert.equal(via.status, direct.status);
    assert.equal(via.headers.get('content-type'), direct.headers.get('content-type'));
    assert.equal(await via.text(), await direct.text());
    const ping = await fetch(`${proxy.url}/ping`);
    assert.equal(ping.status, 204);
    assert.ok(ping.headers.get('x-influxdb-version'));
  });

  it('answers 502 when influxd cannot be reached', async () => {
    const dead = await WriteAckLatency.listen(`http://127.0.0.1:${await freePort()}`);
    try {
      const res = await fetch(`${dead.url}/ping`);
      assert.equal(res.status, 502);
      assert.match(await res.text(), /influxd proxy: .*ECONNREFUSED/);
    } finally {
      await dead.close();
    }
  });
});
