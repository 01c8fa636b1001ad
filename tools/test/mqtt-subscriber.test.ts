/**
 * MqttSubscriber against a real Mosquitto: what is not settled survives a crash of the subscriber's
 * process (the broker redelivers it), what is settled does not come back; PUBACKs go out in arrival
 * order and the broker honours our Receive Maximum; the acknowledge timeout; refused credentials; and
 * close() draining what the flow still holds.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { mosquittoHash, passwordFile } from 'node-red-contrib-evtwin';
import { MqttSubscriber, type InboundMessage, type SubscriberOptions } from 'node-red-contrib-evtwin/runtime';
import { startMosquitto, type Service } from '../src/services';
import type { FromSubscriberChild } from './fixtures/mqtt-subscriber/child';
import { until } from './helpers/until';

let broker: Service;
let publisher: mqtt.MqttClient;
const running: MqttSubscriber[] = [];
let unique = 0;

before(async () => {
  broker = await startMosquitto();
  publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'test-publisher' });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close(0)));
});
after(async () => {
  await publisher?.endAsync();
  await broker?.stop();
});

/** A fresh topic and client id for one test. */
function names(what: string): { topic: string; clientId: string } {
  unique++;
  return { topic: `test/${what}/${unique}`, clientId: `sub-${what}-${unique}-${process.pid}` };
}

/** A started subscriber (closed after the test) and the messages it has received, in order. */
function subscriber(opts: Partial<SubscriberOptions> & { clientId: string; topic: string }): {
  sub: MqttSubscriber;
  got: InboundMessage[];
  errors: string[];
  warnings: string[];
} {
  const { topic, ...rest } = opts;
  const sub = new MqttSubscriber({
    url: broker.url,
    protocolVersion: 5,
    sessionExpiryS: 600,
    subscriptions: [{ topic, qos: 1 }],
    reconnectMinMs: 100,
    ...rest,
  });
  const got: InboundMessage[] = [];
  const errors: string[] = [];
  const warnings: string[] = [];
  sub.on('message', (m) => got.push(m));
  sub.on('error', (e) => errors.push(e.message));
  sub.on('warning', (w) => warnings.push(w));
  running.push(sub);
  sub.start();
  return { sub, got, errors, warnings };
}

const connected = (sub: MqttSubscriber): Promise<void> => until('connected', () => sub.stats().connected);

/** Publish at QoS 1 (resolves on the broker's PUBACK, so the message is queued for the session). */
async function publish(topic: string, payloads: string[]): Promise<void> {
  for (const p of payloads) await publisher.publishAsync(topic, p, { qos: 1 });
}

/** Subscribe once and receive a probe, so the session's subscription is in place before the real test. */
async function primed(s: ReturnType<typeof subscriber>, topic: string): Promise<void> {
  await connected(s.sub);
  await publish(topic, ['probe']);
  await until('the probe', () => s.got.some((m) => m.payload.toString() === 'probe'));
  for (const m of s.got.splice(0)) m.settle();
}

const texts = (ms: InboundMessage[]): string[] => ms.map((m) => m.payload.toString());
const range = (n: number, prefix = 'm'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('MqttSubscriber against Mosquitto', () => {
  it('after a SIGKILL of the subscriber process, the broker redelivers exactly what was not acknowledged', async () => {
    const { topic, clientId } = names('crash');
    const child: ChildProcess = fork(
      join(__dirname, 'fixtures', 'mqtt-subscriber', 'child.ts'),
      [JSON.stringify({ url: broker.url, clientId, topic })],
      { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    try {
      const seen: string[] = [];
      let acked = 0;
      let connects = 0;
      child.on('message', (m: FromSubscriberChild) => {
        if (m.kind === 'message') seen.push(m.payload);
        else if (m.kind === 'acked') acked = m.acknowledged;
        else connects++;
      });
      await until('the child connected', () => connects > 0, 15_000);
      await publish(topic, ['probe']);
      await until('the probe', () => seen.includes('probe') && acked === 1);
      seen.length = 0;
      // The child settles s0..s4 and s6, holds h5 and h7: PUBACKs go in order, so s0..s4 are acknowledged
      // and s6, though settled, waits behind h5.
      const sent = ['s0', 's1', 's2', 's3', 's4', 'hold5', 's6', 'hold7'];
      await publish(topic, sent);
      await until('the child received all', () => seen.length === sent.length);
      assert.deepEqual(seen, sent);
      await until('5 more acknowledged', () => acked === 6);
      await sleep(300); // the PUBACKs leave the child's socket
      assert.equal(acked, 6, 'nothing past the held message was acknowledged');
      child.kill('SIGKILL');
      await new Promise((resolve) =>
        child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve),
      );

      const again = subscriber({ clientId, topic });
      await until('redelivery', () => again.got.length >= 3);
      await sleep(500);
      assert.deepEqual(texts(again.got), ['hold5', 's6', 'hold7'], 'only the unacknowledged, in order');
      assert.ok(
        again.got.every((m) => m.dup),
        'marked as sent before',
      );
      for (const m of again.got) m.settle();
      await until('acknowledged', () => again.sub.stats().acknowledged === 3);
      await sleep(100); // PUBACKs right before a DISCONNECT are the drain test's subject, not this one's
      await again.sub.close();
      // A third connection finds nothing left.
      const third = subscriber({ clientId, topic });
      await connected(third.sub);
      await sleep(500);
      assert.deepEqual(texts(third.got), []);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('honours Receive Maximum and acknowledges in arrival order', async () => {
    const { topic, clientId } = names('window');
    const s = subscriber({ clientId, topic, receiveMaximum: 50 });
    await primed(s, topic);
    await publish(topic, range(120));
    await until('50 messages', () => s.got.length >= 50);
    await sleep(400);
    assert.equal(s.got.length, 50, 'the broker stops at our Receive Maximum');
    assert.equal(s.sub.stats().pending, 50);

    // Settling all but the first frees nothing: its PUBACK must go first.
    for (const m of s.got.slice(1)) m.settle();
    await sleep(400);
    assert.equal(s.got.length, 50, 'no PUBACK overtook the unsettled first message');
    assert.equal(s.sub.stats().acknowledged, 1, 'only the probe');

    // Mosquitto 2.0.11 sends a burst past Receive Maximum once a PUBACK frees a slot, so only "more"
    // is asserted here, not "exactly 50 more".
    s.got[0]?.settle();
    await until('more after the first PUBACK', () => s.got.length > 50);
    await until('all 120', () => {
      for (const m of s.got) m.settle();
      return s.got.length === 120;
    });
    for (const m of s.got) m.settle();
    await until('all acknowledged', () => s.sub.stats().pending === 0);
    assert.deepEqual(texts(s.got), range(120));
    assert.equal(s.sub.stats().acknowledged, 121);
    assert.equal(s.sub.stats().forced, 0);
  });

  it('acknowledges messages the flow never settles after ackTimeoutMs, and counts them', async () => {
    const { topic, clientId } = names('timeout');
    const s = subscriber({ clientId, topic, ackTimeoutMs: 800 });
    await primed(s, topic);
    await publish(topic, range(3));
    await until('3 messages', () => s.got.length === 3);
    await sleep(300);
    assert.equal(s.sub.stats().forced, 0, 'not before the timeout');
    assert.equal(s.sub.stats().pending, 3);
    await until('forced', () => s.sub.stats().forced === 3, 4000);
    assert.equal(s.sub.stats().acknowledged, 4);
    assert.equal(s.sub.stats().pending, 0);
    assert.match(s.warnings[0] ?? '', /3 message\(s\) not settled within 0\.8 s acknowledged anyway/);
    // A late settle changes nothing.
    for (const m of s.got) m.settle();
    assert.equal(s.sub.stats().acknowledged, 4);
    // The PUBACKs really went out: a new connection of the session gets nothing back. (The pause keeps
    // this test off the race of PUBACKs right before the DISCONNECT, which the drain test is about.)
    await sleep(200);
    await s.sub.close();
    const again = subscriber({ clientId, topic });
    await connected(again.sub);
    await sleep(500);
    assert.deepEqual(texts(again.got), []);
  });

  it('reports refused credentials as an error event, without crashing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'evtwin-sub-auth-'));
    const passwd = join(dir, 'passwd');
    writeFileSync(passwd, passwordFile([], [{ username: 'svc', hash: mosquittoHash('right') }]), {
      mode: 0o600,
    });
    const secured = await startMosquitto({
      extraConfig: ['user root', `password_file ${passwd}`, 'allow_anonymous false'],
    });
    try {
      for (const protocolVersion of [5, 4] as const) {
        const { topic, clientId } = names(`auth-v${protocolVersion}`);
        const opts = {
          url: secured.url,
          clientId,
          protocolVersion,
          sessionExpiryS: 0,
          subscriptions: [{ topic, qos: 1 as const }],
        };
        const bad = new MqttSubscriber({ ...opts, username: 'svc', password: 'wrong' });
        running.push(bad);
        const errors: Error[] = [];
        bad.on('error', (e) => errors.push(e));
        bad.start();
        await until(`v${protocolVersion} refusal`, () => errors.length > 0);
        assert.match(
          errors[0]?.message ?? '',
          /broker refused the connection: (bad user name or password|not authorized)/,
        );
        assert.equal(bad.stats().connected, false);
        assert.match(bad.stats().lastError ?? '', /bad user name or password|not authorized/);
        await bad.close();

        // The same broker takes the right password: the refusal was about the credentials.
        const good = new MqttSubscriber({ ...opts, username: 'svc', password: 'right' });
        running.push(good);
        const goodErrors: string[] = [];
        good.on('error', (e) => goodErrors.push(e.message));
        good.start();
        await until(`v${protocolVersion} connected`, () => good.stats().connected);
        await good.close();
        assert.deepEqual(goodErrors, []);
      }
    } finally {
      await secured.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close() waits for the flow to settle what it holds, and those messages are not redelivered', async () => {
    // Repeated: the PUBACKs of messages settled during the drain go out right before the DISCONNECT, and
    // a broker that drops them (or a close that cuts them off) shows only some of the time.
    const redelivered: string[] = [];
    for (let round = 0; round < 8; round++) {
      const { topic, clientId } = names('drain');
      const s = subscriber({ clientId, topic });
      await primed(s, topic);
      await publish(topic, range(3));
      await until('3 messages', () => s.got.length === 3);
      const t0 = Date.now();
      const closing = s.sub.close(3000);
      await sleep(150);
      for (const m of s.got) m.settle();
      await closing;
      const took = Date.now() - t0;
      assert.ok(took >= 100 && took < 1500, `close returned once everything was settled (${took} ms)`);
      assert.equal(s.sub.stats().connected, false);
      assert.equal(s.sub.stats().acknowledged, 4);
      const again = subscriber({ clientId, topic });
      await connected(again.sub);
      await sleep(300);
      redelivered.push(...texts(again.got).map((t) => `round ${round}: ${t}`));
      await again.sub.close(0);
    }
    assert.deepEqual(redelivered, [], 'settled during the drain: acknowledged before DISCONNECT');
  });

  it('close() gives up after drainMs and leaves the rest to the session', async () => {
    const { topic, clientId } = names('drain-timeout');
    const s = subscriber({ clientId, topic });
    await primed(s, topic);
    await publish(topic, range(3));
    await until('3 messages', () => s.got.length === 3);
    const t0 = Date.now();
    const closing = s.sub.close(1000);
    await sleep(200);
    s.got[0]?.settle();
    s.got[2]?.settle(); // waits behind m1: not acknowledged
    await closing;
    const took = Date.now() - t0;
    assert.ok(took >= 950 && took < 2500, `close waited for drainMs (${took} ms)`);
    const again = subscriber({ clientId, topic });
    await until('redelivery', () => again.got.length >= 2);
    await sleep(400);
    assert.deepEqual(texts(again.got), ['m1', 'm2']);
  });
});
