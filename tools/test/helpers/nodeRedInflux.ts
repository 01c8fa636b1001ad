/**
 * Our Node-RED nodes in node-red-node-test-helper's runtime against a real influxd (on a free port, in a
 * temp dir): one lifecycle for the node tests that write to or read from InfluxDB, the compiled node
 * modules, a node by id, and InfluxQL queries back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, afterEach, before } from 'node:test';
import helper from 'node-red-node-test-helper';
import { startInfluxd, type Service } from '../../src/services';

const pkg = dirname(require.resolve('node-red-contrib-evtwin/package.json'));
const loadFile = createRequire(__filename);

/** The compiled module of one of our node types (node-red-nodes/dist/nodes/TYPE/TYPE.js), for helper.load. */
export const evtwinNode = (type: string): unknown => loadFile(join(pkg, 'dist', 'nodes', type, `${type}.js`));

/** A node of the loaded flow; fails the test when there is none. */
export function nodeById(id: string): NonNullable<ReturnType<typeof helper.getNode>> {
  const n = helper.getNode(id);
  assert.ok(n, `node ${id} loaded`);
  return n;
}

export interface Series {
  columns: string[];
  values: unknown[][];
}

export interface NodeRedInflux {
  /** The suite's influxd (started in `before`). */
  readonly influx: Service;
  /** A temp dir, removed after the suite. */
  tempDir(): string;
  /** One InfluxQL statement against `db` (epoch ms); its series; throws on an InfluxDB error. */
  query(db: string, q: string): Promise<Series[]>;
  /**
   * The flow's evtwin-influx config node, id `cfg`, writing to this influxd in batches of 5000 flushed every
   * 100 ms; `fields` add to or replace those (database, spoolDir, createDatabase, another url…).
   */
  influxConfig(fields: Record<string, unknown>): Record<string, unknown>;
}

/**
 * Call once at the top of a test file (or inside a `describe`, for that suite only): starts influxd and
 * the test helper's server before the tests, unloads the flow after each test, and stops both and removes
 * the temp dirs after the last one.
 */
export function useNodeRedInflux(tempPrefix: string): NodeRedInflux {
  helper.init(require.resolve('node-red'));
  let influx: Service | undefined;
  const dirs: string[] = [];
  const running = (): Service => {
    assert.ok(influx, 'influxd is started in before()');
    return influx;
  };
  before(async () => {
    influx = await startInfluxd();
    await new Promise<void>((resolve) => helper.startServer(() => resolve()));
  });
  after(async () => {
    await new Promise<void>((resolve) => helper.stopServer(() => resolve()));
    await influx?.stop();
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });
  afterEach(() => helper.unload());
  return {
    get influx() {
      return running();
    },
    tempDir: () => {
      const d = mkdtempSync(join(tmpdir(), tempPrefix));
      dirs.push(d);
      return d;
    },
    query: async (db, q) => {
      const res = await fetch(`${running().url}/query?db=${db}&epoch=ms&q=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { results: { series?: Series[]; error?: string }[] };
      const r = body.results[0];
      if (r?.error) throw new Error(r.error);
      return r?.series ?? [];
    },
    influxConfig: (fields) => ({
      id: 'cfg',
      type: 'evtwin-influx',
      url: running().url,
      batchSize: '5000',
      flushMs: '100',
      ...fields,
    }),
  };
}
