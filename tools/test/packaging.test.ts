/**
 * node-red-contrib-evtwin as a user gets it: `npm pack` the built package, `npm install` the tarball
 * into a fresh Node-RED user directory outside the monorepo (as the palette does), then start stock
 * Node-RED from its own CLI, 4.1 on Node 20 and 5 on Node 22, and check over its admin API that every
 * node set of package.json's "node-red"."nodes" loaded from that user directory, that the editor gets
 * our HTML, icons and examples, and that the examples deploy and run against real Mosquitto and InfluxDB.
 *
 * Needs `npm run build -w node-red-nodes` first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import mqtt from 'mqtt';
import { influxRowAt, onTab, withEndpoints, type Example } from '../src/packaging/examples';
import { ensureNodeRed5, type IsolatedRuntime } from '../src/packaging/runtimes';
import { startNodeRed, type FlowNode, type NodeRed, type NodeSetInfo } from '../src/packaging/nodered';
import {
  danglingSourceMaps,
  installIntoUserDir,
  nodeSets,
  pack,
  readPackageJson,
  staleBuildOutputs,
  tarballProblems,
  type Packed,
} from '../src/packaging/tarball';
import { startInfluxd, startMosquitto, type Service } from '../src/services';

const ROOT = realpathSync(join(__dirname, '..', '..'));
const PKG_DIR = join(ROOT, 'node-red-nodes');
const pkg = readPackageJson(PKG_DIR);
const timings: Record<string, number> = {};

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings[label] = Math.round(performance.now() - t0);
  }
}

const inside = (path: string, dir: string): boolean => path === dir || path.startsWith(dir + sep);

interface Runtime {
  label: string;
  /** The binaries, installed on first use when needed. */
  resolve: () => Promise<IsolatedRuntime>;
  nodeRedVersion: RegExp;
  nodeVersion: RegExp;
}

const RUNTIMES: Runtime[] = [
  {
    label: 'Node-RED 4.1 on Node 20',
    resolve: async () => ({
      node: process.execPath,
      redJs: join(ROOT, 'node_modules', 'node-red', 'red.js'),
    }),
    nodeRedVersion: /Node-RED version: v4\.1\./,
    nodeVersion: /Node\.js {2}version: v20\./,
  },
  {
    label: 'Node-RED 5 on Node 22',
    resolve: () => ensureNodeRed5(join(ROOT, '.data', 'cache', 'node-red-5'), (line) => console.log(line)),
    nodeRedVersion: /Node-RED version: v5\./,
    nodeVersion: /Node\.js {2}version: v22\./,
  },
];

describe('packaging checks', () => {
  it('name what a broken tarball lacks or should not hold', () => {
    const good = ['package.json', 'README.md', 'LICENSE', 'dist/nodes/a/a.js', 'dist/nodes/a/a.html'];
    const fake = { name: 'x', version: '1.0.0', 'node-red': { nodes: { a: 'dist/nodes/a/a.js' } } };
    const empty = mkdtempSync(join(tmpdir(), 'evtwin-pkg-'));
    const problems = tarballProblems(
      [
        ...good.filter((f) => f !== 'dist/nodes/a/a.html' && f !== 'LICENSE'),
        'src/a.ts',
        'test/a.test.js',
        'tsconfig.tsbuildinfo',
      ],
      empty,
      fake,
    );
    rmSync(empty, { recursive: true, force: true });
    for (const expected of [
      /missing dist\/nodes\/a\/a\.html/,
      /missing LICENSE/,
      /src\/a\.ts/,
      /test\/a\.test\.js/,
      /tsbuildinfo/,
      /no example flows/,
    ]) {
      assert.ok(
        problems.some((p) => expected.test(p)),
        `${expected} in ${JSON.stringify(problems)}`,
      );
    }
  });

  it('find source maps that lead outside the package', () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'evtwin-maps-')));
    try {
      mkdirSync(join(dir, 'dist'));
      writeFileSync(
        join(dir, 'dist', 'a.js.map'),
        JSON.stringify({ version: 3, sources: ['../../src/a.ts'], mappings: '' }),
      );
      writeFileSync(
        join(dir, 'dist', 'b.js.map'),
        JSON.stringify({
          version: 3,
          sources: ['../../src/b.ts'],
          sourcesContent: ['export {}'],
          mappings: '',
        }),
      );
      assert.deepEqual(danglingSourceMaps(dir), [
        { map: join('dist', 'a.js.map'), source: '../../src/a.ts' },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('packaging: the npm tarball in stock Node-RED', () => {
  let work: string;
  let userDir: string;
  let installed: string;
  let packed: Packed;
  let broker: Service;
  let influx: Service;

  before(async () => {
    assert.ok(
      existsSync(join(PKG_DIR, 'dist')),
      'build node-red-nodes first: npm run build -w node-red-nodes',
    );
    // Both outside the monorepo, so nothing resolves through its node_modules or workspace links.
    work = realpathSync(mkdtempSync(join(tmpdir(), 'evtwin-pack-')));
    userDir = realpathSync(mkdtempSync(join(tmpdir(), 'evtwin-userdir-')));
    assert.ok(!inside(userDir, ROOT) && !inside(work, ROOT), 'temp dirs are outside the repo');
    [broker, influx] = await Promise.all([startMosquitto(), startInfluxd()]);
    packed = await timed('npm pack', () => pack(PKG_DIR, work));
    installed = await timed('npm install (tarball into user dir)', () =>
      installIntoUserDir(userDir, packed.tarball, pkg.name),
    );
  });

  after(async () => {
    await Promise.all([broker?.stop(), influx?.stop()]);
    console.log(`packaging timings (ms): ${JSON.stringify(timings)}`);
    if (packed)
      console.log(
        `tarball: ${packed.files.length} files, ${packed.size} B packed, ${packed.unpackedSize} B unpacked`,
      );
    for (const dir of [work, userDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the tarball holds every node set, its editor and icons, the examples, README and LICENSE, and nothing else', () => {
    console.log(`tarball files: ${packed.files.join(' ')}`);
    assert.deepEqual(tarballProblems(packed.files, PKG_DIR, pkg), []);
    assert.deepEqual(staleBuildOutputs(packed.files, PKG_DIR), [], 'compiled files whose source is gone');
    assert.deepEqual(
      danglingSourceMaps(installed),
      [],
      'source maps whose sources are neither in the package nor embedded (sourcesContent)',
    );
  });

  for (const rt of RUNTIMES) {
    describe(rt.label, () => {
      let red: NodeRed;
      before(async () => {
        const { node, redJs } = await timed(`${rt.label}: runtime ready`, rt.resolve);
        assert.ok(existsSync(node), `${node} is missing`);
        assert.ok(existsSync(redJs), `${redJs} is missing`);
        red = await timed(`${rt.label}: start to GET /nodes`, () => startNodeRed({ node, redJs, userDir }));
      });
      after(async () => {
        if (red) await timed(`${rt.label}: stop`, () => red.stop());
      });

      it('runs the intended versions', () => {
        assert.match(red.log(), rt.nodeRedVersion);
        assert.match(red.log(), rt.nodeVersion);
      });

      it('loads every node set of "node-red"."nodes" from the user directory, enabled and without error', async () => {
        const sets = await red.getJson<NodeSetInfo[]>('/nodes');
        const ours = sets.filter((s) => s.module === pkg.name);
        for (const name of Object.keys(nodeSets(pkg))) {
          const set = ours.find((s) => s.name === name);
          assert.ok(set, `node set ${name} is listed by GET /nodes`);
          assert.equal(set.err, undefined, `node set ${name} failed to load: ${JSON.stringify(set.err)}`);
          assert.equal(set.enabled, true, `node set ${name} is enabled`);
          assert.ok(set.types.length > 0, `node set ${name} registered types`);
          assert.equal(set.version, pkg.version);
          assert.equal(set.local, true, `node set ${name} comes from <userDir>/node_modules`);
        }
        assert.deepEqual(
          ours.map((s) => s.name).sort(),
          Object.keys(nodeSets(pkg)).sort(),
          'no other node sets',
        );
        // Node-RED logs (debug level) which copy of each module it chose; the monorepo's workspace
        // link is also on its search path and must be the one ignored.
        const chosen = [...red.log().matchAll(new RegExp(`\\] Module: ${pkg.name} \\S+ (\\S+)`, 'g'))].map(
          (m) => m[1],
        );
        assert.deepEqual(
          chosen,
          [installed],
          'the module Node-RED loaded is the copy installed in the user dir',
        );
      });

      it('serves our editor HTML for every type and our icons', async () => {
        const sets = (await red.getJson<NodeSetInfo[]>('/nodes')).filter((s) => s.module === pkg.name);
        const res = await fetch(`${red.url}/nodes`, { headers: { Accept: 'text/html' } });
        const html = await res.text();
        for (const type of sets.flatMap((s) => s.types)) {
          assert.match(
            html,
            new RegExp(`registerType\\(\\s*['"]${type}['"]`),
            `editor definition of ${type}`,
          );
          assert.match(html, new RegExp(`data-help-name=["']${type}["']`), `help text of ${type}`);
        }
        const icons = await red.getJson<Record<string, string[]>>('/icons');
        const shipped = readdirSync(join(PKG_DIR, 'icons'));
        // Each node folder carries its own copy of the icons, so Node-RED may list one several times.
        assert.deepEqual(
          [...new Set(icons[pkg.name] ?? [])].sort(),
          [...shipped].sort(),
          'icons listed for our module',
        );
        for (const icon of shipped) {
          const r = await fetch(`${red.url}/icons/${pkg.name}/${icon}`);
          assert.equal(r.status, 200, icon);
          assert.match(r.headers.get('content-type') ?? '', /svg/);
          await r.arrayBuffer();
        }
      });

      it('lists our examples under Import > Examples and each deploys without missing types or errors', async () => {
        const listed = await red.getJson<unknown[]>(`/library/examples/flows/${pkg.name}`);
        const names = listed.map((e) =>
          (typeof e === 'string' ? e : (e as { fn: string }).fn).replace(/\.json$/, ''),
        );
        const files = readdirSync(join(PKG_DIR, 'examples')).map((f) => f.replace(/\.json$/, ''));
        assert.deepEqual(names.sort(), files.sort(), 'the examples menu of our module');
        for (const name of files) {
          const flow = await red.getJson<FlowNode[]>(
            `/library/examples/flows/${pkg.name}/${encodeURIComponent(name)}`,
          );
          const since = red.log().length;
          await red.deploy(
            onTab(
              withEndpoints(flow, { mqttPort: broker.port, influxUrl: influx.url }),
              `tab-${name.slice(0, 2)}`,
              name,
            ),
          );
          await red.waitForLog(/\[info\] Started flows|Waiting for missing types/, since);
          const afterDeploy = red.log().slice(since);
          assert.doesNotMatch(afterDeploy, /missing types/i, `${name}: missing types`);
          assert.doesNotMatch(afterDeploy, /\[error\]/, `${name}: errors in the runtime log`);
          const deployed = await red.getJson<FlowNode[]>('/flows');
          for (const n of flow)
            assert.ok(
              deployed.some((d) => d.id === n.id),
              `${name}: ${n.type} ${n.id} deployed`,
            );
        }
      });

      it('runs "02 Other topic scheme": the inject buttons give two readings and three dead letters', async () => {
        const ex = await fetchExample(red, '02 ');
        // Debug output goes to the log as well, so the test can see it.
        const flow = ex.flow.map((n) => (n.type === 'debug' ? { ...n, console: true } : n));
        let since = red.log().length;
        await red.deploy(onTab(flow, 'tab-02', ex.name));
        await red.waitForLog(/\[info\] Started flows/, since);
        since = red.log().length;
        for (const n of flow.filter((x) => x.type === 'inject')) {
          const r = await fetch(`${red.url}/inject/${n.id}`, { method: 'POST' });
          assert.equal(r.status, 200, `inject ${n.name as string}`);
        }
        const count = (label: string): number => red.log().slice(since).split(`[debug:${label}]`).length - 1;
        const deadline = Date.now() + 5000;
        while ((count('readings') < 2 || count('dead letters') < 3) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(count('readings'), 2, red.log().slice(since));
        assert.equal(count('dead letters'), 3, red.log().slice(since));
        for (const code of ['bad-value', 'not-json', 'topic-mismatch'])
          assert.match(red.log().slice(since), new RegExp(code));
      });

      it('runs "01 MQTT to InfluxDB": a device message on the broker becomes a point in InfluxDB', async () => {
        const ex = await fetchExample(red, '01 ');
        const flow = withEndpoints(ex.flow, { mqttPort: broker.port, influxUrl: influx.url });
        const since = red.log().length;
        await red.deploy(onTab(flow, 'tab-01', ex.name));
        await red.waitForLog(/\[info\] Started flows/, since);
        // Example 01 reads with evtwin-mqtt-in (its own connection, acknowledged once stored).
        await red.waitForLog(/\[info\] \[evtwin-mqtt-in:[^\]]*\] connected/, since);
        // A timestamp no other run uses, so the point found is this runtime's.
        const ts = Date.now() - 1000 - RUNTIMES.indexOf(rt);
        const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
        try {
          let row: Record<string, unknown> | undefined;
          // The subscription is made just after the connection: retry briefly if the first is missed.
          for (let attempt = 0; attempt < 5 && !row; attempt++) {
            await client.publishAsync(
              'evtwin/v1/plant-a/cnc-01/telemetry',
              JSON.stringify({ ts, seq: 1, values: { power: 4.25 } }),
              { qos: 1 },
            );
            row = await influxRowAt(influx.url, 'evtwin', 'telemetry', ts, 3000);
          }
          assert.ok(row, `the reading reached InfluxDB:\n${red.log().slice(since)}`);
          assert.equal(row.site, 'plant-a');
          assert.equal(row.asset, 'cnc-01');
          assert.equal(row.power, 4.25);
        } finally {
          await client.endAsync();
        }
        assert.doesNotMatch(red.log().slice(since), /\[error\]/);
      });
    });
  }
});

async function fetchExample(red: NodeRed, prefix: string): Promise<Example> {
  const files = readdirSync(join(PKG_DIR, 'examples')).filter((f) => f.startsWith(prefix));
  const name = files[0]?.replace(/\.json$/, '');
  assert.ok(name, `an example named ${prefix}...`);
  const flow = await red.getJson<FlowNode[]>(
    `/library/examples/flows/${pkg.name}/${encodeURIComponent(name)}`,
  );
  return { name, file: name, flow };
}
