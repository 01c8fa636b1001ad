/**
 * Broker side, all real: the registry → `evtwin broker-files` → Mosquitto 2.0 with password_file and
 * acl_file. mosquitto_pub with device A's credentials reaches A's topic, not B's (ACL denials are
 * silent at QoS 0, so a subscriber checks); a wrong password or a revoked device is refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { mosquittoVerify, register, passwordFile, mosquittoHash } from 'node-red-contrib-evtwin';
import { updateRegistry } from 'node-red-contrib-evtwin/runtime';
import { main } from '../src/cli';
import { startMosquitto, type Service } from '../src/services';

const SERVICE_PASSWORD = 'service-pw-for-tests';

function pub(port: number, user: string, password: string, topic: string, message: string): Promise<number> {
  return new Promise((resolve) => {
    execFile(
      'mosquitto_pub',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-V',
        'mqttv5',
        '-u',
        user,
        '-P',
        password,
        '-t',
        topic,
        '-m',
        message,
      ],
      { timeout: 5000 },
      (err) => resolve(err ? (typeof err.code === 'number' ? err.code : 99) : 0),
    );
  });
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, {
    out: (s) => (out += s + '\n'),
    err: (s) => (err += s + '\n'),
    env: { SVC_PW: SERVICE_PASSWORD },
    now: Date.now,
  });
  return { code, out, err };
}

describe('broker password and ACL files (real Mosquitto)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evtwin-acl-'));
  const file = join(dir, 'registry.json');
  const out = join(dir, 'broker');
  let broker: Service;
  let tokenA = '';
  let tokenB = '';
  const seen: { topic: string; payload: string }[] = [];
  let watcher: mqtt.MqttClient;

  before(async () => {
    const c = { now: Date.now(), actor: 'test' };
    tokenA = updateRegistry(file, (s) => register(s, { site: 's1', asset: 'a', owner: 'ann' }, c)).token;
    tokenB = updateRegistry(file, (s) => register(s, { site: 's1', asset: 'b', owner: 'bob' }, c)).token;
    const r = await cli([
      'broker-files',
      '--file',
      file,
      '--out',
      out,
      '--service-user',
      'nodered',
      '--service-password-env',
      'SVC_PW',
    ]);
    assert.equal(r.code, 0, r.err);
    broker = await startMosquitto({
      // Started as root, Mosquitto drops to user "mosquitto", which cannot read our 0600 files in a 0700
      // temp dir; in a deployment the files belong to the broker's user instead.
      extraConfig: [
        'user root',
        `password_file ${join(out, 'passwd')}`,
        `acl_file ${join(out, 'acl')}`,
        'allow_anonymous false',
      ],
    });
    watcher = await mqtt.connectAsync(broker.url, {
      username: 'nodered',
      password: SERVICE_PASSWORD,
      protocolVersion: 5,
    });
    watcher.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString() }));
    await watcher.subscribeAsync('evtwin/#');
  });

  after(async () => {
    await watcher?.endAsync();
    await broker?.stop();
  });

  it('writes $7$ hashes in the format mosquitto_passwd 2.0 writes', () => {
    const ours = readFileSync(join(out, 'passwd'), 'utf8');
    assert.match(ours, /^nodered:\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/m);
    const line = ours.split('\n').find((l) => l.startsWith('s1/a:')) as string;
    assert.ok(mosquittoVerify(tokenA, line.slice('s1/a:'.length)));
    // mosquitto_passwd's own line for a known password verifies with our code, and the shapes match.
    const theirs = join(dir, 'theirs');
    writeFileSync(theirs, '');
    return new Promise<void>((resolve, reject) => {
      execFile('mosquitto_passwd', ['-b', theirs, 'alice', 'secret'], (err) => {
        if (err) return reject(err);
        const hash = readFileSync(theirs, 'utf8').trim().slice('alice:'.length);
        assert.ok(mosquittoVerify('secret', hash), hash);
        assert.equal(
          mosquittoHash('secret').split('$').slice(0, 3).join('$'),
          hash.split('$').slice(0, 3).join('$'),
        );
        assert.equal(passwordFile([], []), '\n');
        resolve();
      });
    });
  });

  it("device A publishes to its own topic, not to B's; a wrong password is refused", async () => {
    assert.equal(
      await pub(broker.port, 's1/a', tokenA, 'evtwin/v1/s1/b/telemetry', 'A-as-B'),
      0,
      'QoS0 denial is silent',
    );
    assert.equal(await pub(broker.port, 's1/a', tokenA, 'evtwin/v1/s1/a/cmd', 'A-writes-own-cmd'), 0);
    assert.equal(await pub(broker.port, 's1/a', tokenA, 'evtwin/v1/s1/a/telemetry', 'A-own'), 0);
    assert.equal(await pub(broker.port, 's1/b', tokenB, 'evtwin/v1/s1/b/telemetry', 'B-own'), 0);
    assert.notEqual(
      await pub(broker.port, 's1/a', tokenB, 'evtwin/v1/s1/a/telemetry', 'wrong-pw'),
      0,
      'B token as A',
    );
    assert.notEqual(await pub(broker.port, 's1/a', 'nope', 'evtwin/v1/s1/a/telemetry', 'wrong-pw'), 0);
    await sleep(300);
    const got = seen.map((m) => `${m.topic} ${m.payload}`);
    assert.ok(got.includes('evtwin/v1/s1/a/telemetry A-own'), got.join('; '));
    assert.ok(got.includes('evtwin/v1/s1/b/telemetry B-own'), got.join('; '));
    assert.ok(!got.some((g) => /A-as-B|wrong-pw|A-writes-own-cmd/.test(g)), got.join('; '));
  });

  it("device A reads its own cmd topic and not B's", async () => {
    const a = await mqtt.connectAsync(broker.url, { username: 's1/a', password: tokenA, protocolVersion: 5 });
    const got: string[] = [];
    a.on('message', (topic) => got.push(topic));
    await a.subscribeAsync(['evtwin/v1/s1/a/cmd', 'evtwin/v1/s1/b/cmd', 'evtwin/v1/s1/b/telemetry']);
    await watcher.publishAsync('evtwin/v1/s1/b/cmd', 'for-b');
    await watcher.publishAsync('evtwin/v1/s1/b/telemetry', 'b-data');
    await watcher.publishAsync('evtwin/v1/s1/a/cmd', 'for-a');
    await sleep(300);
    await a.endAsync();
    assert.deepEqual(got, ['evtwin/v1/s1/a/cmd']);
  });

  it('a revoked device is refused after the files are regenerated and Mosquitto reloads (SIGHUP)', async () => {
    assert.equal((await cli(['registry', 'revoke', '--file', file, '--site', 's1', '--asset', 'a'])).code, 0);
    const r = await cli([
      'broker-files',
      '--file',
      file,
      '--out',
      out,
      '--service-user',
      'nodered',
      '--service-password-env',
      'SVC_PW',
    ]);
    assert.equal(r.code, 0, r.err);
    assert.ok(!readFileSync(join(out, 'passwd'), 'utf8').includes('s1/a:'));
    process.kill(broker.process.pid as number, 'SIGHUP');
    await sleep(300);
    assert.notEqual(await pub(broker.port, 's1/a', tokenA, 'evtwin/v1/s1/a/telemetry', 'after-revoke'), 0);
    assert.equal(await pub(broker.port, 's1/b', tokenB, 'evtwin/v1/s1/b/telemetry', 'b-still-ok'), 0);
  });
});
