/**
 * evtwin-registry + evtwin-auth (+ evtwin-ingest) in a real Node-RED runtime: tokens, Fernet
 * envelopes, replays, throttling, and the admin HTTP API. Every bad input goes to output 2 with a
 * reason; the runtime keeps running.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import type { NodeMessage } from 'node-red';
import { fernetEncrypt, sealTelemetry } from '../src/core/fernet';
import { register } from '../src/core/registry';
import { updateRegistry } from '../src/runtime/registryStore';
// The dist nodes settle receipts in dist's runtime: issue them there too.
const { receipts } = require(join(__dirname, '..', 'dist', 'runtime', 'receipts.js')) as {
  receipts: { issue(onSettled: () => void): number; size: number };
};

const DIST = join(__dirname, '..', 'dist', 'nodes');
const nodes = [
  require(join(DIST, 'evtwin-registry', 'evtwin-registry.js')),
  require(join(DIST, 'evtwin-auth', 'evtwin-auth.js')),
  require(join(DIST, 'evtwin-ingest', 'evtwin-ingest.js')),
];
const ADMIN = 'admin-secret-for-tests';

helper.init(require.resolve('node-red'));

// The helper's request() is supertest on its admin app; the shared typing does not declare it.
/** The API's JSON answers, the fields these tests read. */
interface Res {
  status: number;
  body: { error: string; token: string; qr: string; key: { kid: string; key: string }; length: number };
}
interface Req extends PromiseLike<Res> {
  set(name: string, value: string): Req;
  send(body: object): Req;
}
interface Agent {
  get(path: string): Req;
  post(path: string): Req;
  patch(path: string): Req;
}
const admin = (): Agent => (helper as unknown as { request(): Agent }).request();

interface Devices {
  file: string;
  a: string;
  b: string;
  cp: string;
  kid: string;
  key: string;
}

function seed(): Devices {
  const file = join(mkdtempSync(join(tmpdir(), 'evtwin-auth-')), 'registry.json');
  const c = { now: Date.now(), actor: 'test' };
  const a = updateRegistry(file, (s) => register(s, { site: 's1', asset: 'a', owner: 'ann' }, c));
  const b = updateRegistry(file, (s) => register(s, { site: 's1', asset: 'b', owner: 'bob' }, c));
  const cp = updateRegistry(file, (s) =>
    register(s, { site: 's1', asset: 'cp1', owner: 'ann', kind: 'charge-point' }, c),
  );
  if (!cp.key) throw new Error('charge point without key');
  return { file, a: a.token, b: b.token, cp: cp.token, kid: cp.key.kid, key: cp.key.key };
}

function nodeById(id: string): NonNullable<ReturnType<typeof helper.getNode>> {
  const node = helper.getNode(id);
  if (!node) throw new Error(`node ${id} is not in the loaded flow`);
  return node;
}

/** Load registry → auth → (ingest) and collect both outputs. */
async function load(file: string, authProps: Record<string, unknown> = {}) {
  const flow = [
    { id: 'reg', type: 'evtwin-registry', name: 'r', file, graceS: '3600' },
    { id: 'auth', type: 'evtwin-auth', registry: 'reg', wires: [['ingest', 'ok'], ['bad']], ...authProps },
    { id: 'ingest', type: 'evtwin-ingest', wires: [['readings'], []] },
    { id: 'ok', type: 'helper' },
    { id: 'bad', type: 'helper' },
    { id: 'readings', type: 'helper' },
  ];
  await helper.load(nodes, flow, { reg: { adminToken: ADMIN } });
  const ok: NodeMessage[] = [];
  const bad: NodeMessage[] = [];
  const readings: NodeMessage[] = [];
  nodeById('ok').on('input', (m: NodeMessage) => ok.push(m));
  nodeById('bad').on('input', (m: NodeMessage) => bad.push(m));
  nodeById('readings').on('input', (m: NodeMessage) => readings.push(m));
  const auth = nodeById('auth');
  /** Send one message; resolve with where it went. */
  const send = async (
    msg: Record<string, unknown>,
  ): Promise<{ ok?: NodeMessage; code?: string; msg?: NodeMessage }> => {
    const [okBefore, badBefore] = [ok.length, bad.length];
    auth.receive(msg);
    const deadline = Date.now() + 2000;
    while (ok.length === okBefore && bad.length === badBefore) {
      if (Date.now() > deadline) throw new Error('no output');
      await new Promise((r) => setTimeout(r, 2));
    }
    const rejected = bad[badBefore];
    if (rejected) return { code: (rejected.error as { code: string }).code, msg: rejected };
    return { ok: ok[okBefore] as NodeMessage };
  };
  return { ok, bad, readings, send };
}

const topic = (asset: string) => `evtwin/v1/s1/${asset}/telemetry`;
const withToken = (token: unknown) => ({ userProperties: { authorization: token } });
let seq = 0;
const reading = (extra: Record<string, unknown> = {}) => ({
  ts: Date.now(),
  seq: ++seq,
  values: { t: 20 },
  ...extra,
});

describe('evtwin-auth node', () => {
  before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
  after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));
  afterEach(() => helper.unload());

  it('checks each item of a batch: good ones go on as one batch and one message of readings, bad ones alone; receipts', async () => {
    const d = seed();
    const { ok, bad, readings } = await load(d.file);
    const settled: string[] = [];
    const item = (name: string, asset: string, token: unknown, payload: unknown) => ({
      topic: topic(asset),
      payload: Buffer.from(JSON.stringify(payload)),
      userProperties: { authorization: token },
      receipt: receipts.issue(() => settled.push(name)),
    });
    const batch = [
      item('a1', 'a', d.a, reading()),
      item('forged', 'b', d.a, reading()), // a's token on b's topic
      item('b1', 'b', d.b, [reading(), reading()]), // two readings in one message
      item('a-future', 'a', d.a, reading({ ts: Date.now() + 10 * 86_400_000 })), // ingest refuses it
    ];
    nodeById('auth').receive({ topic: 'evtwin/v1/+/+/telemetry', batch });
    const deadline = Date.now() + 2000;
    while ((readings.length === 0 || bad.length === 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 30));
    // auth: one batch of the three authentic items, credentials gone, identities on them.
    assert.equal(ok.length, 1);
    const passed = ok[0]?.batch as { topic: string; identity: { asset: string }; userProperties?: unknown }[];
    assert.deepEqual(
      passed.map((i) => i.identity.asset),
      ['a', 'b', 'a'],
    );
    assert.ok(
      passed.every((i) => i.userProperties === undefined),
      'credentials removed',
    );
    // The forged item alone on output 2, with its reason, its receipt settled there.
    assert.equal(bad.length, 1);
    assert.equal((bad[0]?.error as { code: string }).code, 'wrong-device');
    assert.equal(bad[0]?.topic, topic('b'));
    // ingest: one message holding the three readings, and the receipts of the items they came from.
    assert.equal(readings.length, 1);
    const list = readings[0]?.payload as { asset: string }[];
    assert.deepEqual(
      list.map((r) => r.asset),
      ['a', 'b', 'b'],
    );
    const held = (readings[0]?.evtwin as { receipts: number[] }).receipts;
    assert.deepEqual(held, [batch[0]?.receipt, batch[2]?.receipt]);
    // Settled: the forged one (auth) and the one from the future (ingest dead-letter); not the stored ones.
    assert.deepEqual(settled.sort(), ['a-future', 'forged']);
  });

  it('passes a valid token (user property or payload), strips it, and ingest keeps the identity', async () => {
    const d = seed();
    const { send, readings } = await load(d.file);
    const r1 = await send({
      topic: topic('a'),
      payload: Buffer.from(JSON.stringify(reading())),
      ...withToken(d.a),
    });
    assert.deepEqual((r1.ok?.evtwin as { identity: unknown }).identity, {
      site: 's1',
      asset: 'a',
      owner: 'ann',
      kind: 'device',
      via: 'token',
    });
    assert.deepEqual(r1.ok?.userProperties, {}, 'authorization removed');
    const r2 = await send({ topic: topic('a'), payload: JSON.stringify(reading({ token: `${d.a}` })) });
    assert.ok(r2.ok, `payload token accepted: ${r2.code}`);
    assert.equal((r2.ok.payload as { token?: string }).token, undefined, 'token removed from the payload');
    const r3 = await send({ topic: topic('a'), payload: reading(), ...withToken(`Bearer ${d.a}`) });
    assert.ok(r3.ok, 'Bearer prefix accepted');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(readings.length, 3);
    const ev = readings[0]?.evtwin as { identity: { asset: string }; topic: string };
    assert.equal(ev.identity.asset, 'a');
    assert.equal(ev.topic, topic('a'));
    assert.equal((readings[0]?.payload as { metrics: { t: number } }).metrics.t, 20);
  });

  it('rejects missing, malformed, truncated, oversized, wrong-type, other-device and unknown tokens', async () => {
    const d = seed();
    const { send } = await load(d.file, { maxKiB: '4' });
    const cases: [string, Record<string, unknown>][] = [
      ['missing', { topic: topic('a'), payload: reading() }],
      ['missing', { topic: topic('a'), payload: reading(), ...withToken('') }],
      ['malformed', { topic: topic('a'), payload: reading(), ...withToken('evt_garbage') }],
      ['malformed', { topic: topic('a'), payload: reading(), ...withToken(d.a.slice(0, 30)) }],
      ['malformed', { topic: topic('a'), payload: reading(), ...withToken(d.a + 'A'.repeat(5000)) }],
      ['malformed', { topic: topic('a'), payload: reading(), ...withToken([d.a, d.a]) }],
      ['malformed', { topic: topic('a'), payload: reading({ token: 12345 }) }],
      ['malformed', { topic: topic('a'), payload: 'x'.repeat(5000), ...withToken(d.a) }],
      ['malformed', { topic: topic('a'), payload: '{not json', ...withToken(d.a) }],
      ['wrong-device', { topic: topic('a'), payload: reading(), ...withToken(d.b) }],
      ['wrong-device', { topic: topic('zzz'), payload: reading(), ...withToken(d.a) }],
      ['unknown', { topic: topic('a'), payload: reading(), ...withToken('evt_' + 'Q'.repeat(43)) }],
      ['bad-topic', { topic: 'some/other/topic', payload: reading(), ...withToken(d.a) }],
    ];
    for (const [expected, msg] of cases) {
      const r = await send(msg);
      assert.equal(r.code, expected, `${JSON.stringify(msg).slice(0, 120)} → ${r.code ?? 'accepted'}`);
      assert.equal(
        (r.msg?.userProperties as { authorization?: unknown } | undefined)?.authorization,
        undefined,
      );
    }
    assert.ok(
      (await send({ topic: topic('a'), payload: reading(), ...withToken(d.a) })).ok,
      'a good one still passes',
    );
  });

  it('opens Fernet envelopes; rejects tampered, unknown kid, rotated-out key, outside the TTL, replays', async () => {
    const d = seed();
    const { send } = await load(d.file, { ttlS: '60' });
    const first = reading({ values: { power: 7.4 } });
    const env = sealTelemetry(d.kid, d.key, first);
    const r = await send({ topic: topic('cp1'), payload: JSON.stringify(env) });
    assert.ok(r.ok, `envelope accepted: ${r.code}`);
    assert.deepEqual((r.ok.payload as { values: unknown }).values, { power: 7.4 });
    assert.equal((r.ok.evtwin as { identity: { via: string } }).identity.via, 'fernet');
    assert.equal((await send({ topic: topic('cp1'), payload: JSON.stringify(env) })).code, 'replayed');
    // The same reading sealed again (a device resending it): a new Fernet token, but seq and ts seen.
    const resealed = sealTelemetry(d.kid, d.key, first);
    assert.equal(
      (await send({ topic: topic('cp1'), payload: resealed })).code,
      'replayed',
      'new token, old seq',
    );
    const tampered = { ...sealTelemetry(d.kid, d.key, reading()) };
    tampered.token =
      tampered.token.slice(0, 40) + (tampered.token[40] === 'A' ? 'B' : 'A') + tampered.token.slice(41);
    assert.equal((await send({ topic: topic('cp1'), payload: tampered })).code, 'tampered');
    assert.equal(
      (await send({ topic: topic('cp1'), payload: { ...env, kid: 'kNOPE' } })).code,
      'unknown-key',
    );
    assert.equal(
      (await send({ topic: topic('a'), payload: sealTelemetry(d.kid, d.key, reading()) })).code,
      'wrong-device',
    );
    const old = {
      enc: 'fernet',
      kid: d.kid,
      token: fernetEncrypt(d.key, JSON.stringify(reading()), Date.now() - 120_000),
    };
    assert.equal((await send({ topic: topic('cp1'), payload: old })).code, 'expired');
    assert.equal(
      (await send({ topic: topic('cp1'), payload: { enc: 'fernet', kid: d.kid, token: 7 } })).code,
      'malformed',
    );
    // A token beside the envelope must be right too.
    const withBad = {
      topic: topic('cp1'),
      payload: sealTelemetry(d.kid, d.key, reading()),
      ...withToken(d.a),
    };
    assert.equal((await send(withBad)).code, 'wrong-device');

    // Rotate the key with no grace through the admin API: the old key is refused at once.
    const res = await admin()
      .post('/evtwin/api/v1/registry/devices/s1/cp1/rotate-key')
      .set('Authorization', `Bearer ${ADMIN}`)
      .send({ graceS: 0 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const fresh = res.body.key as { kid: string; key: string };
    assert.equal(
      (await send({ topic: topic('cp1'), payload: sealTelemetry(d.kid, d.key, reading()) })).code,
      'expired-key',
    );
    assert.ok(
      (await send({ topic: topic('cp1'), payload: sealTelemetry(fresh.kid, fresh.key, reading()) })).ok,
    );
  });

  it('refuses replayed seqs and throttles a device after repeated failures', async () => {
    const d = seed();
    const { send } = await load(d.file, { failBurst: '5', failPerMinute: '1' });
    const m = reading();
    assert.ok((await send({ topic: topic('a'), payload: m, ...withToken(d.a) })).ok);
    assert.equal((await send({ topic: topic('a'), payload: m, ...withToken(d.a) })).code, 'replayed');
    // The broker's own redelivery (MQTT DUP, marked by evtwin-mqtt-in) of a message seen before passes:
    // its first pass may never have been stored (a crash, a full spool).
    const again = await send({
      topic: topic('a'),
      payload: m,
      ...withToken(d.a),
      evtwin: { redelivered: true },
    });
    assert.ok(again.ok, `redelivery accepted: ${again.code}`);
    for (let i = 0; i < 4; i++) await send({ topic: topic('a'), payload: reading(), ...withToken(d.b) });
    assert.equal(
      (await send({ topic: topic('a'), payload: reading(), ...withToken(d.a) })).code,
      'throttled',
    );
    assert.ok(
      (await send({ topic: topic('b'), payload: reading(), ...withToken(d.b) })).ok,
      'other devices unaffected',
    );
  });

  it('admin API: requires the admin token, validates bodies, shows the token once with a QR code, revokes at once', async () => {
    const d = seed();
    const { send } = await load(d.file);
    const api = '/evtwin/api/v1/registry/devices';
    assert.equal((await admin().get(api)).status, 401);
    assert.equal((await admin().get(api).set('Authorization', 'Bearer wrong')).status, 401);
    const list = await admin().get(api).set('Authorization', `Bearer ${ADMIN}`);
    assert.equal(list.status, 200);
    assert.equal(list.body.length, 3);
    const text = JSON.stringify(list.body);
    assert.ok(!/tokenHash|brokerHash|"key"/.test(text), 'no hashes or keys listed');
    const post = (body: unknown) =>
      admin()
        .post(api)
        .set('Authorization', `Bearer ${ADMIN}`)
        .send(body as object);
    for (const bad of [
      {},
      { site: 's1' },
      { site: 's1', asset: 'x/y', owner: 'o' },
      { site: 's1', asset: 'n', owner: 'o', kind: 'toaster' },
      [1],
    ]) {
      const res = await post(bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.match(res.body.error, /must/);
    }
    assert.equal((await post({ site: 's1', asset: 'a', owner: 'o' })).status, 409);
    const created = await post({ site: 's1', asset: 'new1', owner: 'carol', name: 'New' });
    assert.equal(created.status, 201);
    assert.match(created.body.token, /^evt_/);
    assert.match(created.body.qr, /^data:image\/png;base64,/);
    assert.ok(
      (await send({ topic: topic('new1'), payload: reading(), ...withToken(created.body.token) })).ok,
    );
    const ren = await admin()
      .patch(`${api}/s1/new1`)
      .set('Authorization', `Bearer ${ADMIN}`)
      .send({ name: 7 });
    assert.equal(ren.status, 400);
    assert.equal(
      (await admin().post(`${api}/s1/nope/revoke`).set('Authorization', `Bearer ${ADMIN}`)).status,
      404,
    );
    const rev = await admin().post(`${api}/s1/a/revoke`).set('Authorization', `Bearer ${ADMIN}`);
    assert.equal(rev.status, 200);
    assert.equal((await send({ topic: topic('a'), payload: reading(), ...withToken(d.a) })).code, 'revoked');
    const rot = await admin().post(`${api}/s1/b/rotate`).set('Authorization', `Bearer ${ADMIN}`);
    assert.equal(rot.status, 200);
    assert.equal((await send({ topic: topic('b'), payload: reading(), ...withToken(d.b) })).code, 'unknown');
    assert.ok((await send({ topic: topic('b'), payload: reading(), ...withToken(rot.body.token) })).ok);
  });
});
