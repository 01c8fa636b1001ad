/**
 * `npm start` end to end: spawn the real stack command (tools/bin/evtwin-stack.js, compiled tools)
 * on free ports with a temporary data folder, see simulator data reach InfluxDB through Mosquitto
 * and Node-RED, then Ctrl-C it and check that everything it started is gone. Devices log in to
 * Mosquitto with their registry tokens; evtwin-auth in the flow refuses a message with a wrong token.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { influxQuery } from '../src/stack/influxStats';
import { startStack, type Running } from './helpers/stack';

const alive = (pid: number): boolean => {
  try {
    return process.kill(pid, 0);
  } catch {
    return false;
  }
};

/** SIGINT, as Ctrl-C would; it must print "stopped", exit 0 within 15 s and leave no child behind. */
async function interrupt(stack: Running): Promise<void> {
  const t0 = Date.now();
  stack.child.kill('SIGINT');
  const code = await Promise.race([
    stack.exited,
    sleep(15_000, undefined, { ref: false }).then(() => 'timeout' as const),
  ]);
  if (code === 'timeout') stack.child.kill('SIGKILL');
  assert.equal(code, 0, `exit after SIGINT (${Date.now() - t0} ms):\n${stack.output()}`);
  assert.match(stack.output(), /^stopped$/m);
  for (const pid of stack.pids) assert.equal(alive(pid), false, `pid ${pid} still running`);
  rmSync(stack.dataDir, { recursive: true, force: true });
}

/** The simulator's tokens, provisioned by the stack (site/asset → token). */
function deviceTokens(stack: Running): Record<string, string> {
  return JSON.parse(readFileSync(join(stack.dataDir, 'device-tokens.json'), 'utf8')) as Record<
    string,
    string
  >;
}

/** Wait until `check` returns a value, polling InfluxDB; fail with the last value after `ms`. */
async function eventually<T>(ms: number, check: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`${what} within ${ms} ms`);
    await sleep(250);
  }
}

test('npm start: simulator → Mosquitto → Node-RED → InfluxDB, then Ctrl-C stops it all', async () => {
  const stack = await startStack(['--stats-every=1']);
  try {
    assert.match(stack.output(), /mosquitto pid \d+, MQTT 5/);
    assert.equal(stack.pids.length, 2, 'influxd and mosquitto pids are printed');
    for (const pid of stack.pids) assert.ok(alive(pid));

    // Points from several simulated assets arrive within seconds.
    const assets = await eventually(
      15_000,
      async () => {
        const r = await influxQuery(
          stack.influxUrl,
          'evtwin',
          'SELECT count(*) FROM telemetry GROUP BY asset',
        );
        const series = r.results?.[0]?.series ?? [];
        return series.length >= 10 ? series.map((s) => s.tags?.asset ?? '') : undefined;
      },
      'points from 10 assets in InfluxDB',
    );
    assert.ok(assets.includes('cnc-01') && assets.includes('cp-03'), assets.join(','));

    const tokens = deviceTokens(stack);
    assert.equal(Object.keys(tokens).length, 13, 'a token per demo asset');

    // The broker refuses anonymous clients and wrong passwords.
    await assert.rejects(
      mqtt.connectAsync(stack.mqttUrl, { protocolVersion: 5, reconnectPeriod: 0 }),
      /Not authorized|Bad User Name or Password/i,
    );
    await assert.rejects(
      mqtt.connectAsync(stack.mqttUrl, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        username: 'plant-a/robot-02',
        password: 'not-the-token',
      }),
      /Not authorized|Bad User Name or Password/i,
    );

    // Logged in as itself, a message with a wrong token is rejected by evtwin-auth (not stored);
    // the next one, with the right token, is stored.
    const robot = await mqtt.connectAsync(stack.mqttUrl, {
      protocolVersion: 5,
      username: 'plant-a/robot-02',
      password: tokens['plant-a/robot-02'],
    });
    const as = (token: string | undefined) => ({
      qos: 1 as const,
      properties: { userProperties: { authorization: token ?? '' } },
    });
    await robot.publishAsync(
      'evtwin/v1/plant-a/robot-02/telemetry',
      JSON.stringify({ ts: Date.now(), values: { power: 777.25 } }),
      as(tokens['plant-a/cnc-01']),
    );
    await robot.publishAsync(
      'evtwin/v1/plant-a/robot-02/telemetry',
      JSON.stringify({ ts: Date.now(), values: { power: 666.5 } }),
      as(tokens['plant-a/robot-02']),
    );
    await robot.endAsync();
    const power = async (v: number): Promise<boolean> => {
      const r = await influxQuery(
        stack.influxUrl,
        'evtwin',
        `SELECT power FROM telemetry WHERE asset = 'robot-02' AND power = ${v}`,
      );
      return r.results?.[0]?.series !== undefined;
    };
    await eventually(10_000, async () => ((await power(666.5)) ? true : undefined), 'the good reading');
    assert.equal(await power(777.25), false, 'a message with a wrong token is not stored');

    // The second topic scheme: jjm/sensors/{asset}/data lands with default site water-north.
    const pub = await mqtt.connectAsync(stack.mqttUrl, {
      protocolVersion: 5,
      username: 'water-north/pres-01',
      password: tokens['water-north/pres-01'],
    });
    await pub.publishAsync(
      'jjm/sensors/pres-01/data',
      JSON.stringify({ ts: Date.now(), values: { pressure: 4.25 } }),
      as(tokens['water-north/pres-01']),
    );
    await pub.endAsync();
    await eventually(
      10_000,
      async () => {
        const r = await influxQuery(
          stack.influxUrl,
          'evtwin',
          "SELECT pressure FROM telemetry WHERE asset = 'pres-01' AND site = 'water-north' AND pressure = 4.25",
        );
        return r.results?.[0]?.series ? true : undefined;
      },
      'the jjm/sensors reading in InfluxDB',
    );

    // Our nodes loaded in the runtime (admin API), the provisioning is in place.
    const res = await fetch(`${stack.redUrl}nodes`, { headers: { Accept: 'application/json' } });
    const types = ((await res.json()) as { types: string[] }[]).flatMap((s) => s.types);
    for (const t of [
      'evtwin-auth',
      'evtwin-registry',
      'evtwin-ingest',
      'evtwin-influx',
      'evtwin-influx-out',
      'evtwin-mqtt-in',
      'mqtt in',
    ])
      assert.ok(types.includes(t), t);
    const rps = await influxQuery(stack.influxUrl, 'evtwin', 'SHOW RETENTION POLICIES ON evtwin');
    const rows = rps.results?.[0]?.series?.[0]?.values ?? [];
    assert.deepEqual(
      rows.filter((r) => r[4] === true).map((r) => r[0]),
      ['raw'],
    );
    assert.deepEqual(
      rows.map((r) => r[0]).filter((n) => n !== 'autogen'),
      ['raw', 'rollup_1m', 'rollup_1h'],
    );
    const cqs = JSON.stringify(await influxQuery(stack.influxUrl, 'evtwin', 'SHOW CONTINUOUS QUERIES'));
    assert.ok(cqs.includes('telemetry_rollup_1m') && cqs.includes('telemetry_rollup_1h'), cqs);

    // A "flowing" line reports simulator and InfluxDB counts.
    // Windows of 1 s: on a busy machine some lines see none of the (1 s batched) points yet.
    await eventually(
      15_000,
      async () =>
        /flowing: simulator sent \d+ readings .* InfluxDB [1-9]\d* points/.test(stack.output())
          ? true
          : undefined,
      'a flowing line with points',
    );
    // The generated credential secret is kept private.
    for (const f of [
      join(stack.dataDir, 'node-red', '.credential-secret'),
      join(stack.dataDir, 'device-tokens.json'),
      join(stack.dataDir, 'jwt-secret'),
      join(stack.dataDir, 'registry.json'),
    ])
      assert.equal(statSync(f).mode & 0o777, 0o600, f);
    assert.match(stack.output(), /security\s+registry .*13 device tokens.*13 newly registered/);
  } finally {
    await interrupt(stack);
  }
});

test('without Mosquitto: the embedded aedes broker carries MQTT 3.1.1 devices into InfluxDB', async () => {
  const stack = await startStack(['--stats-every=1', '--embedded-broker', '--no-sim']);
  try {
    assert.match(stack.output(), /embedded aedes broker, MQTT 3\.1\.1/);
    assert.equal(stack.pids.length, 1, 'only influxd is a child process');
    assert.match(stack.output(), /aedes has no logins or ACLs/);
    // MQTT 3.1.1 has no user properties: the token travels in the payload; a wrong one is refused.
    const tokens = deviceTokens(stack);
    const pub = await mqtt.connectAsync(stack.mqttUrl, { protocolVersion: 4 });
    const topic = 'evtwin/v1/plant-a/robot-02/telemetry';
    const stored = async (): Promise<number[]> => {
      const r = await influxQuery(
        stack.influxUrl,
        'evtwin',
        "SELECT power FROM telemetry WHERE asset = 'robot-02'",
      );
      return (r.results?.[0]?.series?.[0]?.values ?? []).map((v) => Number(v[1]));
    };
    // "ready" does not wait for the flow's MQTT subscription (aedes keeps nothing for it): send the pair
    // again until the good one lands.
    await eventually(
      15_000,
      async () => {
        await pub.publishAsync(
          topic,
          JSON.stringify({ values: { power: 2.5 }, token: 'wrong-token-000000' }),
          {
            qos: 1,
          },
        );
        await pub.publishAsync(
          topic,
          JSON.stringify({ values: { power: 1.5 }, token: tokens['plant-a/robot-02'] }),
          { qos: 1 },
        );
        await sleep(750);
        return (await stored()).length > 0 ? true : undefined;
      },
      'the reading in InfluxDB',
    );
    await pub.endAsync();
    await sleep(1500);
    const values = await stored();
    assert.ok(values.includes(1.5));
    assert.ok(!values.includes(2.5), `only messages with the right token are stored: ${values.join(',')}`);
  } finally {
    await interrupt(stack);
  }
});
