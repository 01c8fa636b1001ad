/**
 * Node-RED child of the ingestion benchmark and the chaos run: one embedded runtime (the stack's
 * startNodeRed) running the given flow, in its own process so its RSS and CPU are the pipeline's
 * alone. Function nodes in the flow count outcomes through global `evtwinBenchCount(key, n)`; the
 * counts go to the parent every 500 ms. SIGTERM stops Node-RED gracefully (writers flush or spool).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startNodeRed, type NodeRedHandle } from '../stack/nodeRed';
import type { FromChild } from './ingestKit';

const { values: args } = parseArgs({
  options: {
    flow: { type: 'string' },
    'user-dir': { type: 'string' },
    port: { type: 'string' },
  },
});
const send = (m: FromChild): void => {
  process.send?.(m);
};

const counts: Record<string, number> = {};
const g = globalThis as unknown as { evtwinBenchCount?: (key: string, n: number) => void };
g.evtwinBenchCount = (key: string, n: number): void => {
  counts[key] = (counts[key] ?? 0) + n;
};

async function main(): Promise<void> {
  const userDir = args['user-dir'] ?? '';
  const settingsFile = join(userDir, 'bench-settings.js');
  // Function nodes reach the counter through global context; logs only from warnings up.
  writeFileSync(
    settingsFile,
    [
      'module.exports = {',
      "  logging: { console: { level: 'warn', metrics: false, audit: false } },",
      '  functionGlobalContext: { evtwinBenchCount: (k, n) => globalThis.evtwinBenchCount(k, n) },',
      '  editorTheme: { tours: false },',
      '  diagnostics: { enabled: false },',
      '  telemetry: { enabled: false },',
      '};',
      '',
    ].join('\n'),
  );
  const state: { handle?: NodeRedHandle } = {};
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    send({ type: 'report', counts });
    const done = (): void => {
      send({ type: 'report', counts });
      process.exit(0);
    };
    (state.handle ? state.handle.stop() : Promise.resolve()).then(done, done);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const timer = setInterval(() => send({ type: 'report', counts }), 500);
  const handle = await startNodeRed({
    userDir,
    flowFile: args.flow ?? '',
    port: Number(args.port),
    settingsFile,
    nodePackageDir: join(__dirname, '..', '..', '..', 'node-red-nodes'),
  });
  state.handle = handle;
  send({ type: 'ready', detail: handle.url });
  if (process.env.EVTWIN_BENCH_TRACE) traceWriter();
}

/** EVTWIN_BENCH_TRACE=1: the writer's state every second on stderr (where a pipeline stalls). */
function traceWriter(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the embedded runtime's own instance
  const RED = require('node-red') as {
    nodes: { getNode(id: string): unknown };
    hooks: {
      add(
        name: string,
        hook: (evt: { msg: Record<string, unknown>; destination: { id: string } }) => void,
      ): void;
    };
  };
  // Age (now − payload ts) of what reaches the flow's first node and evtwin-influx-out: where a delay
  // starts (before the flow: publishers, broker, socket; in the flow; in the writer and influxd).
  const STOPS = {
    'bench-auth': 'auth',
    'bench-ingest': 'ingest',
    'bench-score': 'score',
    'bench-out': 'influx-out',
  };
  const ages = new Map<string, number[]>(Object.values(STOPS).map((name) => [name, []]));
  const tsOf = (payload: unknown): number | undefined => {
    if (Buffer.isBuffer(payload)) {
      const m = /"ts":(\d+)/.exec(payload.toString('latin1', 0, 32));
      return m ? Number(m[1]) : undefined;
    }
    const ts = (payload as { ts?: unknown } | null)?.ts;
    return typeof ts === 'number' ? ts : undefined;
  };
  RED.hooks.add('onReceive.evtwinBenchTrace', ({ msg, destination }) => {
    const at = ages.get(STOPS[destination.id as keyof typeof STOPS] ?? '');
    if (!at) return;
    const now = Date.now();
    const payloads = Array.isArray(msg.batch)
      ? (msg.batch as { payload: unknown }[]).map((i) => i.payload)
      : Array.isArray(msg.payload)
        ? msg.payload
        : [msg.payload];
    for (const p of payloads) {
      const ts = tsOf(p);
      if (ts !== undefined) at.push(now - ts);
    }
  });
  const summary = (a: number[]): string => {
    const s = a.splice(0).sort((x, y) => x - y);
    const q = (f: number): number => s[Math.min(s.length - 1, Math.floor(f * s.length))] ?? NaN;
    return `${q(0.5)}/${q(0.99)}/${s[s.length - 1] ?? NaN}`;
  };
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the runtime the flow's nodes use
  const { receipts } = require(
    join(__dirname, '..', '..', '..', 'node-red-nodes', 'dist', 'runtime', 'receipts.js'),
  ) as {
    receipts: { size: number };
  };
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const lagMs = Math.round(now - last - 1000);
    last = now;
    const influx = RED.nodes.getNode('bench-influx') as { writer?: { stats(): object } } | null;
    const mem = process.memoryUsage();
    process.stderr.write(
      `[trace] age p50/p99/max ms at ${[...ages].map(([name, a]) => `${name} ${summary(a)}`).join(', ')} ` +
        `${JSON.stringify({ inFlow: receipts.size, lagMs, writer: influx?.writer?.stats(), heapMB: Math.round(mem.heapUsed / 1e6) })}\n`,
    );
  }, 1000).unref();
}

main().catch((err: unknown) => {
  send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
