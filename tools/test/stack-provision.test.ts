/**
 * The stack's parts on their own: InfluxDB provisioning against a real influxd (idempotent, alters
 * and replaces, rejects bad files with file:line: field), port choice, and the embedded aedes broker.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { freePort, startInfluxd, type Service } from '../src/services';
import { startBroker } from '../src/stack/broker';
import {
  ProvisioningError,
  parseInfluxProvisioning,
  provisionInfluxDB,
  type ProvisionReport,
} from '../src/stack/influxProvision';
import { influxQuery } from '../src/stack/influxStats';
import { choosePort } from '../src/stack/ports';

const FILE = resolve(__dirname, '../../provisioning/influxdb/evtwin.yaml');
const actions = (r: ProvisionReport): string[] => r.steps.map((s) => `${s.kind} ${s.name} ${s.action}`);

describe('influxProvision against a real influxd', () => {
  let influxd: Service;
  let dir: string;
  before(async () => {
    influxd = await startInfluxd();
    dir = mkdtempSync(join(tmpdir(), 'evtwin-prov-'));
  });
  after(async () => {
    await influxd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('creates everything once, then changes nothing', async () => {
    const first = await provisionInfluxDB(influxd.url, FILE);
    assert.deepEqual(actions(first), [
      'database evtwin created',
      'retention-policy raw created',
      'retention-policy rollup_1m created',
      'retention-policy rollup_1h created',
      'continuous-query telemetry_rollup_1m created',
      'continuous-query telemetry_rollup_1h created',
    ]);
    assert.equal(first.defaultRetentionPolicy, 'raw');
    const second = await provisionInfluxDB(influxd.url, FILE);
    assert.equal(second.unchanged, true, actions(second).join('; '));

    const rps = await influxQuery(influxd.url, 'evtwin', 'SHOW RETENTION POLICIES ON evtwin');
    const rows = rps.results?.[0]?.series?.[0]?.values ?? [];
    const byName = new Map(rows.map((r) => [r[0], r]));
    assert.equal(byName.get('raw')?.[1], '720h0m0s');
    assert.equal(byName.get('raw')?.[4], true, 'raw is the default policy');
    assert.equal(byName.get('rollup_1h')?.[1], '43680h0m0s');
    const cqs = await influxQuery(influxd.url, 'evtwin', 'SHOW CONTINUOUS QUERIES');
    const evtwin = cqs.results?.[0]?.series?.find((s) => (s as { name?: string }).name === 'evtwin');
    const text = (evtwin?.values ?? []).map((v) => String(v[1])).join('\n');
    assert.match(
      text,
      /INTO evtwin\.rollup_1m\.:MEASUREMENT FROM evtwin\.raw\.\/\^telemetry\$\/ GROUP BY time\(1m\), \*/,
    );
  });

  test('a rollup written by the continuous query keeps the tags', async () => {
    // Points a minute ago, then run the 1m query by hand over that minute (the CQ's own SELECT).
    const t = Math.floor(Date.now() / 60_000) * 60_000 - 120_000;
    const body = [10, 20, 30]
      .map((v, i) => `telemetry,site=plant-a,asset=cnc-01,kind=cnc power=${v} ${(t + i * 1000) * 1e6}`)
      .join('\n');
    const res = await fetch(`${influxd.url}/write?db=evtwin`, { method: 'POST', body });
    assert.equal(res.status, 204, await res.text());
    await influxQuery(
      influxd.url,
      'evtwin',
      `SELECT mean(*), min(*), max(*) INTO "evtwin"."rollup_1m".:MEASUREMENT FROM "evtwin"."raw"./^telemetry$/ ` +
        `WHERE time >= ${t}ms AND time < ${t + 60_000}ms GROUP BY time(1m), *`,
    );
    const out = await influxQuery(
      influxd.url,
      'evtwin',
      'SELECT mean_power, min_power, max_power FROM "rollup_1m"."telemetry" GROUP BY asset, site',
    );
    const series = out.results?.[0]?.series?.[0];
    assert.deepEqual(series?.tags, { asset: 'cnc-01', site: 'plant-a' });
    assert.deepEqual(series?.values[0]?.slice(1), [20, 10, 30]);
  });

  test('a changed file alters the policy and replaces the query', async () => {
    const changed = readFileSync(FILE, 'utf8')
      .replace('name: rollup_1m, duration: 180d', 'name: rollup_1m, duration: 90d')
      .replace('resample: { every: 1h, for: 2h }', 'resample: { every: 1h, for: 3h }');
    const file = join(dir, 'changed.yaml');
    writeFileSync(file, changed);
    const report = await provisionInfluxDB(influxd.url, file);
    assert.deepEqual(
      report.steps.filter((s) => s.action !== 'unchanged').map((s) => `${s.name} ${s.action}`),
      ['rollup_1m altered', 'telemetry_rollup_1h replaced'],
    );
    assert.equal((await provisionInfluxDB(influxd.url, file)).unchanged, true);
  });

  test('a bad file is refused before anything is applied', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'database: other\nretentionPolicies:\n  - { name: raw, duration: 30 days, default: true }\n',
    );
    await assert.rejects(
      provisionInfluxDB(influxd.url, file),
      /bad\.yaml:3: retentionPolicies\[0\]\.duration:/,
    );
    const dbs = await influxQuery(influxd.url, '', 'SHOW DATABASES');
    assert.ok(!JSON.stringify(dbs).includes('"other"'), 'nothing was created');
  });
});

describe('influx provisioning file validation', () => {
  const bad = (text: string, expected: RegExp): void => {
    assert.throws(
      () => parseInfluxProvisioning(text, 'x.yaml'),
      (err: unknown) => err instanceof ProvisioningError && expected.test(err.message),
    );
  };
  const rp = 'retentionPolicies:\n  - { name: raw, duration: 30d, default: true }\n';

  test('names the problem, the field and the line', () => {
    bad('database: [\n', /^x\.yaml:\d+: /);
    bad(rp, /x\.yaml:1: database: required/);
    bad(`database: evtwin\n${rp}colour: blue\n`, /x\.yaml:4: colour: unknown key/);
    bad('database: evtwin\nretentionPolicies: []\n', /retentionPolicies: required: a non-empty list/);
    bad(
      'database: evtwin\nretentionPolicies:\n  - { name: raw, duration: 30d }\n',
      /exactly one policy must be default: true \(found 0\)/,
    );
    bad(
      'database: evtwin\nretentionPolicies:\n  - { name: raw, duration: 30d, default: true, replication: 0 }\n',
      /x\.yaml:3: retentionPolicies\[0\]\.replication: must be a whole number >= 1/,
    );
    bad(
      `database: evtwin\n${rp}continuousQueries:\n  - name: q\n    query: SELECT mean(*) FROM telemetry\n`,
      /x\.yaml:6: continuousQueries\[0\]\.query: must be SELECT \.\.\. INTO/,
    );
    bad(
      `database: evtwin\n${rp}continuousQueries:\n  - name: q\n    query: SELECT mean(*) INTO "evtwin"."nope".:MEASUREMENT FROM "evtwin"."raw"./t/ GROUP BY time(1m), *\n`,
      /retention policy "nope" is not declared/,
    );
    bad(
      `database: evtwin\n${rp}continuousQueries:\n  - name: q\n    resample: { every: soon }\n    query: SELECT mean(*) INTO a FROM b GROUP BY time(1m)\n`,
      /x\.yaml:6: continuousQueries\[0\]\.resample\.every: "soon" is not a duration/,
    );
  });

  test('the shipped file is valid and makes raw the default', () => {
    const spec = parseInfluxProvisioning(readFileSync(FILE, 'utf8'), FILE);
    assert.equal(spec.database, 'evtwin');
    assert.deepEqual(
      spec.retentionPolicies.map((r) => `${r.name}:${r.duration}:${r.default}`),
      ['raw:30d:true', 'rollup_1m:180d:false', 'rollup_1h:260w:false'],
    );
  });
});

describe('stack ports and embedded broker', () => {
  test('a taken preferred port is left alone and another one is chosen', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const taken = (holder.address() as { port: number }).port;
    try {
      const choice = await choosePort('InfluxDB', taken, 'EVTWIN_TEST_UNSET_PORT');
      assert.notEqual(choice.port, taken);
      assert.match(choice.note ?? '', new RegExp(`port ${taken} is in use .*InfluxDB uses ${choice.port}`));
      process.env.EVTWIN_TEST_SET_PORT = String(taken);
      await assert.rejects(choosePort('InfluxDB', 1, 'EVTWIN_TEST_SET_PORT'), /already in use/);
    } finally {
      delete process.env.EVTWIN_TEST_SET_PORT;
      holder.close();
    }
  });

  test('the embedded aedes broker relays MQTT 3.1.1 on 127.0.0.1', async () => {
    const broker = await startBroker({ dataDir: tmpdir(), port: await freePort(), embedded: true });
    try {
      assert.equal(broker.kind, 'aedes');
      assert.equal(broker.protocolVersion, 4);
      const sub = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
      const got = new Promise<string>((r) => sub.once('message', (_t, p) => r(p.toString())));
      await sub.subscribeAsync('evtwin/v1/+/+/telemetry', { qos: 1 });
      const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
      await pub.publishAsync('evtwin/v1/s/a/telemetry', 'hello', { qos: 1 });
      assert.equal(await got, 'hello');
      await pub.endAsync();
      await sub.endAsync();
    } finally {
      await broker.stop();
    }
  });
});
