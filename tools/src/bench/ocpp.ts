/**
 * OCPP central system under load: `npm run bench:ocpp [-- --count 1000 --seconds 20 --rate 100]`.
 * This process runs the central system (runtime/ocppServer.ts, registry-checked basic auth, state
 * file); a child process runs the simulated charge points (sim/chargers.ts: heartbeat and meter
 * values every 10 s, half of them charging). Then commands (SetChargingProfile) go to random charge
 * points at a steady rate. Reports command round-trip p50/p99 and the central system's memory per
 * connection. `--protocol 1.6|2.0.1|mix` (default mix). A benchmark, not a test: it prints figures.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  emptyRegistry,
  entryId,
  indexRegistry,
  register,
  verifyToken,
  type ChargerEvent,
  type RegistryState,
} from 'node-red-contrib-evtwin';
import { OcppCentralSystem } from 'node-red-contrib-evtwin/runtime';
import { simChargerId, startChargerFleet, type SimProtocol } from '../sim/chargers';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    rate: { type: 'string', default: '100' },
    protocol: { type: 'string', default: 'mix' },
    child: { type: 'string' },
  },
});

const SITE = 'bench';

async function child(spec: string): Promise<void> {
  const o = JSON.parse(spec) as {
    url: string;
    count: number;
    tokensFile: string;
    protocol: SimProtocol | 'mix';
  };
  const { readFileSync } = await import('node:fs');
  const tokens = JSON.parse(readFileSync(o.tokensFile, 'utf8')) as Record<string, string>;
  const t0 = Date.now();
  const fleet = await startChargerFleet({
    url: o.url,
    site: SITE,
    count: o.count,
    tokens,
    protocol: o.protocol,
    heartbeatS: 10,
    meterS: 10,
    sessions: 0.5,
    concurrency: 100,
  });
  process.send?.({
    ready: fleet.cps.length,
    failed: fleet.failed.slice(0, 5),
    failedCount: fleet.failed.length,
    ms: Date.now() - t0,
  });
  process.on('message', (m: { stop?: boolean }) => {
    if (!m.stop) return;
    const obeyed = fleet.cps.reduce((a, c) => a + c.received.length, 0);
    void fleet.close().then(() => {
      process.send?.({ closed: true, obeyed });
      process.exit(0);
    });
  });
}

const pct = (sorted: number[], p: number): number =>
  sorted.length === 0
    ? NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number);
const mb = (b: number): string => (b / 1_048_576).toFixed(1);
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

async function main(): Promise<void> {
  const count = Number(values.count);
  const seconds = Number(values.seconds);
  const rate = Number(values.rate);
  const protocol: SimProtocol | 'mix' =
    values.protocol === '1.6' ? 'ocpp1.6' : values.protocol === '2.0.1' ? 'ocpp2.0.1' : 'mix';
  const dir = mkdtempSync(join(tmpdir(), 'evtwin-bench-ocpp-'));
  try {
    let state: RegistryState = emptyRegistry();
    const tokens: Record<string, string> = {};
    for (let i = 0; i < count; i++) {
      const r = register(
        state,
        { site: SITE, asset: simChargerId(i), owner: 'bench', kind: 'charge-point', withKey: false },
        { now: Date.now(), actor: 'bench' },
      );
      state = r.state;
      tokens[entryId(SITE, simChargerId(i))] = r.token;
    }
    const index = indexRegistry(state);
    const tokensFile = join(dir, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify(tokens));

    gc();
    const before = process.memoryUsage();
    let events = 0;
    const central = new OcppCentralSystem({
      port: 0,
      credentials: {
        verify: (site, asset, password) => {
          const v = verifyToken(index, password, site, asset);
          return v.ok ? { ok: true, fingerprint: v.entry.tokenHash } : { ok: false, reason: v.reason };
        },
        current: (site, asset) => index.byId.get(entryId(site, asset))?.tokenHash,
      },
      stateFile: join(dir, 'ocpp-state.json'),
      heartbeat: { intervalS: 10, missed: 3 },
      callTimeoutMs: 10_000,
      triggerAfterMs: 60_000,
    });
    central.on('event', (_ev: ChargerEvent) => events++);
    const port = await central.start();
    const url = `ws://127.0.0.1:${port}/ocpp`;

    const sim = fork(__filename, ['--child', JSON.stringify({ url, count, tokensFile, protocol })], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = await new Promise<{ ready: number; failedCount: number; failed: string[]; ms: number }>(
      (resolve, reject) => {
        sim.once('message', (m) =>
          resolve(m as { ready: number; failedCount: number; failed: string[]; ms: number }),
        );
        sim.once('exit', (code) => reject(new Error(`simulator exited ${code}`)));
      },
    );
    console.log(
      `connected ${ready.ready}/${count} charge points (${protocol}) in ${(ready.ms / 1000).toFixed(1)} s; failed ${ready.failedCount} ${ready.failed.join('; ')}`,
    );
    // One full heartbeat + meter-values cycle before measuring.
    await new Promise((r) => setTimeout(r, 11_000));
    gc();
    const loaded = process.memoryUsage();
    const eventsBefore = events;

    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const ids = central.connectedIds();
    const rtt: number[] = [];
    const failures: Record<string, number> = {};
    const inflight: Promise<void>[] = [];
    const t0 = Date.now();
    let sent = 0;
    while (Date.now() - t0 < seconds * 1000) {
      const due = Math.floor(((Date.now() - t0) / 1000) * rate);
      while (sent < due) {
        const cp = ids[Math.floor(Math.random() * ids.length)] as string;
        const started = process.hrtime.bigint();
        sent++;
        inflight.push(
          central
            .command({
              command: 'profile',
              cp,
              connectorId: 1,
              limitW: 1380 + Math.floor(Math.random() * 9620),
              purpose: 'TxDefaultProfile',
            })
            .then(
              () => void rtt.push(Number(process.hrtime.bigint() - started) / 1e6),
              (err: Error & { code?: string }) =>
                void (failures[err.code ?? err.message] = (failures[err.code ?? err.message] ?? 0) + 1),
            ),
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(inflight);
    const elapsed = (Date.now() - t0) / 1000;
    loop.disable();
    const loopMs = { p99: +(loop.percentile(99) / 1e6).toFixed(1), max: +(loop.max / 1e6).toFixed(1) };
    const eventRate = (events - eventsBefore) / elapsed;
    rtt.sort((a, b) => a - b);
    const online = Object.values(central.state().chargePoints).filter((r) => r.online).length;

    sim.send({ stop: true });
    await new Promise<void>((resolve) => sim.once('exit', () => resolve()));
    await central.close();

    const perConnHeap = (loaded.heapUsed - before.heapUsed) / Math.max(1, ready.ready);
    const perConnRss = (loaded.rss - before.rss) / Math.max(1, ready.ready);
    const result = {
      chargePoints: ready.ready,
      online,
      commands: sent,
      answered: rtt.length,
      failures,
      rttMs: {
        p50: +pct(rtt, 50).toFixed(2),
        p99: +pct(rtt, 99).toFixed(2),
        max: +(rtt.at(-1) ?? NaN).toFixed(2),
      },
      chargerEventsPerS: +eventRate.toFixed(1),
      centralEventLoopDelayMs: loopMs,
      memory: {
        heapPerConnectionKiB: +(perConnHeap / 1024).toFixed(1),
        rssPerConnectionKiB: +(perConnRss / 1024).toFixed(1),
        heapMB: +mb(loaded.heapUsed),
        rssMB: +mb(loaded.rss),
      },
    };
    console.log(
      `commands ${sent} at ${rate}/s over ${elapsed.toFixed(1)} s: answered ${rtt.length}, round trip p50 ${result.rttMs.p50} ms, p99 ${result.rttMs.p99} ms, max ${result.rttMs.max} ms` +
        (Object.keys(failures).length ? `; failures ${JSON.stringify(failures)}` : ''),
    );
    console.log(
      `charger events ${result.chargerEventsPerS}/s; ${online} online after the run; central event-loop delay p99 ${loopMs.p99} ms, max ${loopMs.max} ms`,
    );
    console.log(
      `central system memory: ${result.memory.heapPerConnectionKiB} KiB heap and ${result.memory.rssPerConnectionKiB} KiB RSS per connection (heap ${result.memory.heapMB} MB, RSS ${result.memory.rssMB} MB)`,
    );
    console.log(JSON.stringify(result));
    if (result.rttMs.p99 >= 100) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (values.child) void child(values.child);
else
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
