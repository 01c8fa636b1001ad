/**
 * evtwin-registry + evtwin-ocpp + evtwin-charger in a real Node-RED runtime, with real ocpp-rpc
 * charge points (tools/src/sim/chargers.ts) over loopback: sessions in OCPP 1.6 and 2.0.1, commands
 * and their audit, bad input (schema-invalid calls, unknown actions, oversized frames, abrupt
 * disconnects, unknown transactions, floods), identities at the handshake and revocation.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import helper from 'node-red-node-test-helper';
import { register, revoke, type ChargerEvent } from 'node-red-contrib-evtwin';
import { updateRegistry, type OcppCentralSystem } from 'node-red-contrib-evtwin/runtime';
import { SimChargePoint, type SimProtocol } from '../src/sim/chargers';
import { coreNodeFiles, onTab, readExamples } from '../src/packaging/examples';
import type { FlowNode } from '../src/packaging/nodered';
import { runSim } from './helpers/simCli';
import { until } from './helpers/until';

const DIST = join(__dirname, '..', '..', 'node-red-nodes', 'dist', 'nodes');
const loadFile = createRequire(__filename);
const nodes: unknown[] = ['evtwin-registry', 'evtwin-ocpp', 'evtwin-charger'].map((t) =>
  loadFile(join(DIST, t, `${t}.js`)),
);
helper.init(require.resolve('node-red'));

/** Simulated charge points of the running test, closed after it. */
const opened: SimChargePoint[] = [];
/** And anything else a test started. */
const cleanups: (() => Promise<unknown>)[] = [];
export async function closeOpened(): Promise<void> {
  await Promise.all(opened.splice(0).map((c) => c.close(true)));
  await Promise.all(cleanups.splice(0).map((f) => f()));
}

export interface World {
  dir: string;
  file: string;
  stateFile: string;
  tokens: Record<string, string>;
}

/** A registry with charge points s1/cp1..cp6, a device s1/dev1. */
export function seed(): World {
  const dir = mkdtempSync(join(tmpdir(), 'evtwin-ocpp-'));
  const file = join(dir, 'registry.json');
  const tokens: Record<string, string> = {};
  const ctx = { now: Date.now(), actor: 'test' };
  for (const asset of ['cp1', 'cp2', 'cp3', 'cp4', 'cp5', 'cp6']) {
    const r = updateRegistry(file, (s) =>
      register(s, { site: 's1', asset, owner: 'op', kind: 'charge-point' }, ctx),
    );
    tokens[`s1/${asset}`] = r.token;
  }
  const d = updateRegistry(file, (s) => register(s, { site: 's1', asset: 'dev1', owner: 'op' }, ctx));
  tokens['s1/dev1'] = d.token;
  return { dir, file, stateFile: join(dir, 'ocpp-state.json'), tokens };
}

interface Msg {
  topic?: string;
  payload: unknown;
  error?: { message: string };
}

export interface Loaded {
  port: number;
  central: OcppCentralSystem;
  events: Msg[];
  results: Msg[];
  points: Msg[];
  errors: Msg[];
  send(msg: Record<string, unknown>): void;
  cp(
    asset: string,
    protocol?: SimProtocol,
    extra?: Partial<ConstructorParameters<typeof SimChargePoint>[0]>,
  ): SimChargePoint;
  evs(type: ChargerEvent['type'], cp?: string): ChargerEvent[];
}

export async function load(
  w: World,
  chargerProps: Record<string, unknown> = {},
  ocppProps: Record<string, unknown> = {},
): Promise<Loaded> {
  const flow = [
    { id: 'tab', type: 'tab' },
    { id: 'reg', type: 'evtwin-registry', file: w.file, graceS: '3600' },
    {
      id: 'ocpp',
      type: 'evtwin-ocpp',
      registry: 'reg',
      port: '0',
      stateFile: w.stateFile,
      strict: true,
      relaxed: 'cp6',
      callTimeoutS: '5',
      maxKiB: '16',
      blockedTags: 'STOLEN',
      ...ocppProps,
    },
    {
      id: 'ch',
      x: 100,
      y: 100,
      type: 'evtwin-charger',
      z: 'tab',
      ocpp: 'ocpp',
      timeoutS: '1',
      wires: [['events'], ['results'], ['points']],
      ...chargerProps,
    },
    { id: 'events', x: 100, y: 100, type: 'helper', z: 'tab' },
    { id: 'results', x: 100, y: 100, type: 'helper', z: 'tab' },
    { id: 'points', x: 100, y: 100, type: 'helper', z: 'tab' },
    {
      id: 'catch',
      x: 100,
      y: 100,
      type: 'catch',
      z: 'tab',
      scope: ['ch'],
      uncaught: false,
      wires: [['errors']],
    },
    { id: 'errors', x: 100, y: 100, type: 'helper', z: 'tab' },
  ];
  await helper.load(nodes, flow);
  const cfg = helper.getNode('ocpp') as unknown as {
    central?: OcppCentralSystem;
    ready?: Promise<void>;
    configError?: string;
  };
  await cfg.ready;
  assert.ok(cfg.central, `central system running: ${cfg.configError}`);
  const central = cfg.central;
  const bucket = (id: string): Msg[] => {
    const seen: Msg[] = [];
    helper.getNode(id)?.on('input', (m: Msg) => seen.push(m));
    return seen;
  };
  const events = bucket('events');
  const ch = helper.getNode('ch');
  assert.ok(ch);
  return {
    port: central.port,
    central,
    events,
    results: bucket('results'),
    points: bucket('points'),
    errors: bucket('errors'),
    send: (msg) => ch.receive(msg),
    cp: (asset, protocol = 'ocpp1.6', extra = {}) => {
      const c = new SimChargePoint({
        endpoint: `ws://127.0.0.1:${central.port}/ocpp/s1`,
        identity: asset,
        ...(w.tokens[`s1/${asset}`] ? { password: w.tokens[`s1/${asset}`] } : {}),
        protocol,
        ...extra,
      });
      opened.push(c);
      return c;
    },
    evs: (type, cp) =>
      events
        .map((m) => m.payload as ChargerEvent)
        .filter((e) => e && e.type === type && (cp === undefined || e.cp === cp)),
  };
}

export function auditLines(
  w: World,
): { action: string; target?: string; outcome: string; actor: string; detail?: Record<string, unknown> }[] {
  const f = `${w.file}.audit.jsonl`;
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(
      (l) =>
        JSON.parse(l) as {
          action: string;
          target?: string;
          outcome: string;
          actor: string;
          detail?: Record<string, unknown>;
        },
    );
}

describe('evtwin-ocpp + evtwin-charger with real charge points', () => {
  before(() => new Promise<void>((resolve) => helper.startServer(() => resolve())));
  after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));
  afterEach(async () => {
    await closeOpened();
    await helper.unload();
  });

  it('OCPP 1.6: boot → authorize → start → meter values → remote stop, with points and audit', async () => {
    const w = seed();
    const n = await load(w);
    const cp = n.cp('cp1');
    await cp.connect();
    await until('boot event', () => n.evs('boot', 's1/cp1').length === 1);
    assert.equal(await cp.authorize('TAG1'), 'Accepted');
    assert.equal(await cp.authorize('STOLEN'), 'Blocked');
    const tx = await cp.startSession(1, 'TAG1');
    assert.equal(tx, '1', 'the central system assigned the id');
    cp.connectors.get(1)!.meterWh = 1000; // meter moved on
    await cp.sendMeterValues(1);
    await until('meter event', () => n.evs('meter', 's1/cp1').some((e) => e.meterWh === 1000));
    assert.equal(n.central.state().transactions['1']?.meterWh, 1000);

    n.send({ payload: { command: 'stop', cp: 's1/cp1', transactionId: tx }, actor: 'alice' });
    await until('command result', () => n.results.length === 1);
    const r = n.results[0]?.payload as { action: string; accepted: boolean; response: unknown };
    assert.deepEqual([r.action, r.accepted], ['RemoteStopTransaction', true]);
    await until('transaction ended', () => n.evs('transaction-ended', 's1/cp1').length === 1);
    const ended = n.evs('transaction-ended', 's1/cp1')[0]!;
    assert.equal(ended.transactionId, '1');
    assert.equal(ended.idTag, 'TAG1');
    const closed = n.central.state().transactions['1']!;
    assert.ok(
      closed.stoppedAt !== undefined && closed.meterStopWh !== undefined && closed.meterStopWh >= 1000,
    );

    const measurements = n.points.flatMap(
      (m) => m.payload as { measurement: string; tags: Record<string, string> }[],
    );
    assert.ok(measurements.some((p) => p.measurement === 'charger' && p.tags.cp === 'cp1'));
    const sessions = measurements.filter((p) => p.measurement === 'sessions').map((p) => p.tags.state);
    assert.deepEqual([sessions[0], sessions.at(-1)], ['started', 'ended']);

    await until('command audited', () => auditLines(w).some((a) => a.action === 'charger.command'));
    const audit = auditLines(w).find((a) => a.action === 'charger.command');
    assert.equal(audit?.target, 's1/cp1');
    assert.equal(audit?.outcome, 'ok');
    assert.match(audit?.actor ?? '', /^alice via node:/);
  });

  it('OCPP 2.0.1: request start with a profile, transaction events, request stop; every command kind answers', async () => {
    const w = seed();
    const n = await load(w);
    const cp = n.cp('cp2', 'ocpp2.0.1');
    await cp.connect();
    n.send({
      payload: {
        command: 'RequestStartTransaction',
        cp: 's1/cp2',
        idTag: 'TAG2',
        connectorId: 1,
        profile: { limitW: 7400 },
      },
    });
    await until('started', () => n.evs('transaction-started', 's1/cp2').length === 1);
    const started = n.evs('transaction-started', 's1/cp2')[0]!;
    assert.equal(started.idTag, 'TAG2');
    assert.equal(cp.connectors.get(1)?.limitW, 7400, 'the profile reached the charger');
    for (const payload of [
      {
        command: 'profile',
        cp: 's1/cp2',
        connectorId: 1,
        limitW: 3700,
        transactionId: started.transactionId,
      },
      { command: 'trigger', cp: 's1/cp2', message: 'MeterValues', connectorId: 1 },
      { command: 'unlock', cp: 's1/cp2', connectorId: 1 },
      { command: 'reset', cp: 's1/cp2' },
      { command: 'stop', cp: 's1/cp2', transactionId: started.transactionId },
    ])
      n.send({ payload });
    await until('all answered', () => n.results.length === 6, 8000);
    assert.deepEqual(
      n.results.map((m) => (m.payload as { action: string }).action),
      [
        'RequestStartTransaction',
        'SetChargingProfile',
        'TriggerMessage',
        'UnlockConnector',
        'Reset',
        'RequestStopTransaction',
      ],
    );
    assert.ok(n.results.every((m) => (m.payload as { accepted: boolean }).accepted));
    await until('ended', () => n.evs('transaction-ended', 's1/cp2').length === 1);
    assert.equal(
      n.evs('transaction-ended', 's1/cp2')[0]?.idTag,
      'TAG2',
      'Ended without idToken keeps the tag',
    );
    assert.equal(n.errors.length, 0);
  });

  it('commands to offline or silent chargers fail through done(err); bad commands too', async () => {
    const w = seed();
    const n = await load(w);
    n.send({ payload: { command: 'reset', cp: 's1/cp5' } });
    await until('offline error', () => n.errors.length === 1);
    assert.match(n.errors[0]?.error?.message ?? '', /not connected/);
    const mute = n.cp('cp5', 'ocpp1.6', { mute: true });
    await mute.connect();
    n.send({ payload: { command: 'reset', cp: 's1/cp5' } });
    await until('timeout error', () => n.errors.length === 2, 4000);
    assert.match(n.errors[1]?.error?.message ?? '', /timed? ?out/i);
    n.send({ payload: { command: 'explode', cp: 's1/cp5' } });
    await until('bad command error', () => n.errors.length === 3);
    assert.match(n.errors[2]?.error?.message ?? '', /"command" must be one of/);
    await until(
      'failures audited',
      () => auditLines(w).filter((a) => a.action === 'charger.command' && a.outcome === 'error').length >= 2,
    );
  });

  it('bad input: schema-invalid call, unknown action, unknown transaction, oversized frame, abrupt disconnect', async () => {
    const w = seed();
    const n = await load(w);
    const cp = n.cp('cp3');
    await cp.connect();
    // Bypass the client's own validation: what a broken charger would send.
    const raw = n.cp('cp1', 'ocpp1.6', { strict: false });
    await raw.connect();
    await assert.rejects(
      raw.call('StatusNotification', { connectorId: 'one', status: 'Sleeping' }),
      (e: Error & { rpcErrorCode?: string }) => {
        assert.match(
          e.rpcErrorCode ?? '',
          /Formation|Format|TypeConstraint|PropertyConstraint|OccurrenceConstraint/,
        );
        return true;
      },
    );
    await assert.rejects(
      raw.call('FlyToTheMoon', {}),
      (e: Error & { rpcErrorCode?: string }) => e.rpcErrorCode === 'NotImplemented',
    );
    await until(
      'call errors audited',
      () =>
        auditLines(w).filter((a) => a.action === 'charger.call-error' && a.target === 's1/cp1').length >= 2,
    );
    assert.ok(n.evs('protocol-error', 's1/cp1').length >= 2);
    // A relaxed charge point may break the schema (cp6 is listed as not strict).
    const lax = n.cp('cp6', 'ocpp1.6', { strict: false });
    await lax.connect();
    await lax.call('StatusNotification', {
      connectorId: 1,
      status: 'Available',
      errorCode: 'NoError',
      vendorExtra: true,
    });

    // Unknown transaction: answered, recorded.
    const stop = await raw.call('StopTransaction', {
      transactionId: 4242,
      meterStop: 10,
      timestamp: new Date().toISOString(),
    });
    assert.deepEqual(stop, {});
    await until('unknown transaction audited', () =>
      auditLines(w).some((a) => a.action === 'charger.unknown-transaction'),
    );

    // Flood: 200 bad calls; the runtime keeps serving and the flow sees at most 10 per 10 s.
    const before = n.evs('protocol-error', 's1/cp1').length;
    await Promise.allSettled(Array.from({ length: 200 }, () => raw.call('Nope', {})));
    assert.ok(n.evs('protocol-error', 's1/cp1').length - before <= 10);

    // Oversized frame (max 16 KiB): that connection closes, nothing else does.
    const big = n.cp('cp4');
    await big.connect();
    const closed = new Promise((resolve) => big.once('close', resolve));
    big.rpc.sendRaw(
      JSON.stringify([2, 'x1', 'DataTransfer', { vendorId: 'v', data: 'x'.repeat(64 * 1024) }]),
    );
    await closed;
    await until('cp4 disconnected', () => n.evs('disconnected', 's1/cp4').length === 1);

    // Abrupt disconnect mid-transaction: state stays consistent, the charger resumes and stops later.
    const tx = await cp.startSession(1, 'TAG3');
    await cp.close(true);
    await until('cp3 disconnected', () => n.evs('disconnected', 's1/cp3').length === 1);
    assert.equal(n.central.state().transactions[tx]?.stoppedAt, undefined, 'still open');
    assert.equal(n.central.state().chargePoints['s1/cp3']?.online, false);
    const again = n.cp('cp3');
    again.connectors.get(1)!.transactionId = tx;
    again.connectors.get(1)!.meterWh = 500;
    await again.connect();
    await again.stopSession(1, 'EVDisconnected');
    assert.equal(n.central.state().transactions[tx]?.meterStopWh, 500);
    // Still serving the others.
    await raw.heartbeat();

    // 2.0.1: a TransactionEvent Ended for a transaction nobody started is answered and recorded too.
    const v2 = n.cp('cp5', 'ocpp2.0.1');
    await v2.connect();
    const ended = await v2.call('TransactionEvent', {
      eventType: 'Ended',
      timestamp: new Date().toISOString(),
      triggerReason: 'EVDeparted',
      seqNo: 0,
      transactionInfo: { transactionId: 'NOPE-1', stoppedReason: 'EVDisconnected' },
    });
    assert.deepEqual(ended, {});
    await until('2.0.1 unknown transaction audited', () =>
      auditLines(w).some(
        (a) =>
          a.action === 'charger.unknown-transaction' &&
          a.target === 's1/cp5' &&
          a.detail?.transactionId === 'NOPE-1',
      ),
    );
    assert.equal(n.central.state().transactions['NOPE-1'], undefined, 'no phantom session');
  });

  it('a flood of valid calls (raw frames, no client-side queue) is served one at a time, state consistent', async () => {
    const w = seed();
    const n = await load(w);
    const cp = n.cp('cp2');
    await cp.connect();
    const tx = await cp.startSession(1, 'FLOOD');
    const answered = new Set<string>();
    cp.rpc.on('message', (m: { message: string; outbound: boolean }) => {
      if (m.outbound) return;
      const frame = JSON.parse(String(m.message)) as unknown[];
      if (frame[0] === 3 && typeof frame[1] === 'string' && frame[1].startsWith('flood-'))
        answered.add(frame[1]);
    });
    const N = 300;
    for (let i = 1; i <= N; i++)
      cp.rpc.sendRaw(
        JSON.stringify([
          2,
          `flood-${i}`,
          'MeterValues',
          {
            connectorId: 1,
            transactionId: Number(tx),
            meterValue: [
              {
                timestamp: new Date().toISOString(),
                sampledValue: [
                  { value: String(i * 10), measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
                ],
              },
            ],
          },
        ]),
      );
    await until(`all ${N} answered`, () => answered.size === N, 20_000);
    assert.equal(n.central.state().transactions[tx]?.meterWh, N * 10, 'the last (highest) register wins');
    assert.equal(n.central.state().chargePoints['s1/cp2']?.connected, true, 'still connected');
    assert.equal(n.evs('protocol-error', 's1/cp2').length, 0);
    const c = cp.connectors.get(1);
    assert.ok(c);
    c.meterWh = N * 10 + 5;
    await cp.stopSession(1);
    assert.ok((n.central.state().transactions[tx]?.meterStopWh ?? 0) >= N * 10 + 5);
  });

  it('refuses unknown, wrong-password, non-charge-point and duplicate identities; revocation disconnects and refuses', async () => {
    const w = seed();
    const n = await load(w);
    await assert.rejects(n.cp('ghost').connect(), /Unauthorized|Not found/);
    await assert.rejects(n.cp('cp1', 'ocpp1.6', { password: w.tokens['s1/cp2'] }).connect(), /Unauthorized/);
    await assert.rejects(n.cp('cp1', 'ocpp1.6', { password: undefined }).connect(), /Unauthorized/);
    await assert.rejects(n.cp('dev1').connect(), /Unauthorized/);
    const first = n.cp('cp1');
    await first.connect();
    await assert.rejects(n.cp('cp1').connect(), /Conflict/);

    const gone = new Promise((resolve) => first.once('close', resolve));
    updateRegistry(w.file, (s) => revoke(s, 's1/cp1', { now: Date.now(), actor: 'admin' }));
    const t0 = Date.now();
    await gone;
    const ms = Date.now() - t0;
    assert.ok(ms < 3000, `disconnected ${ms} ms after revocation`);
    await assert.rejects(n.cp('cp1').connect(), /Unauthorized/);
    await until('disconnect audited', () =>
      auditLines(w).some((a) => a.action === 'charger.disconnect' && a.target === 's1/cp1'),
    );
  });

  it('security profile 2: TLS with the certificate and key from the credentials, basic auth inside', async () => {
    const w = seed();
    const key = join(w.dir, 'key.pem');
    const cert = join(w.dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const flow = [
      { id: 'reg', type: 'evtwin-registry', file: w.file, graceS: '3600' },
      {
        id: 'tls',
        type: 'evtwin-ocpp',
        registry: 'reg',
        port: '0',
        tls: true,
        strict: true,
        stateFile: w.stateFile,
      },
    ];
    await helper.load(nodes, flow, {
      tls: { tlsCert: readFileSync(cert, 'utf8'), tlsKey: readFileSync(key, 'utf8') },
    });
    const cfg = helper.getNode('tls') as unknown as {
      central?: OcppCentralSystem;
      ready?: Promise<void>;
      configError?: string;
    };
    await cfg.ready;
    assert.ok(cfg.central, cfg.configError);
    const port = cfg.central.port;
    const ca = readFileSync(cert, 'utf8');
    const secure = new SimChargePoint({
      endpoint: `wss://127.0.0.1:${port}/ocpp/s1`,
      identity: 'cp1',
      password: w.tokens['s1/cp1'] as string,
      wsOpts: { ca },
    });
    opened.push(secure);
    await secure.connect();
    assert.equal(cfg.central.state().chargePoints['s1/cp1']?.online, true);
    const wrong = new SimChargePoint({
      endpoint: `wss://127.0.0.1:${port}/ocpp/s1`,
      identity: 'cp2',
      password: w.tokens['s1/cp1'] as string,
      wsOpts: { ca },
    });
    opened.push(wrong);
    await assert.rejects(wrong.connect(), /Unauthorized/);
    const plain = new SimChargePoint({
      endpoint: `ws://127.0.0.1:${port}/ocpp/s1`,
      identity: 'cp2',
      password: w.tokens['s1/cp2'] as string,
    });
    opened.push(plain);
    await assert.rejects(plain.connect(), 'no plain WebSocket on the TLS port');
    // TLS without a certificate is a configuration error, reported, not a crash.
    await helper.unload();
    await helper.load(nodes, flow);
    const bad = helper.getNode('tls') as unknown as { central?: OcppCentralSystem; configError?: string };
    assert.match(bad.configError ?? '', /certificate and key/);
  });

  it('restart recovery: state persisted, silent reconnect gets TriggerMessage, the open session ends cleanly', async () => {
    const w = seed();
    let n = await load(w);
    const cp = n.cp('cp1');
    await cp.connect();
    const tx = await cp.startSession(1, 'TAG1');
    await until('started', () => n.evs('transaction-started', 's1/cp1').length === 1);
    await closeOpened();
    await helper.unload();
    const saved = JSON.parse(readFileSync(w.stateFile, 'utf8')) as {
      transactions: Record<string, { stoppedAt?: number }>;
    };
    assert.ok(saved.transactions[tx], 'transaction in the state file');
    assert.equal(saved.transactions[tx]?.stoppedAt, undefined);

    n = await load(w);
    const before = n.central.state();
    assert.equal(before.chargePoints['s1/cp1']?.online, false, 'offline until it reconnects');
    assert.equal(before.transactions[tx]?.stoppedAt, undefined, 'open session survived the restart');
    const again = n.cp('cp1');
    again.connectors.get(1)!.transactionId = tx;
    again.connectors.get(1)!.meterWh = 2500;
    await again.connect({ boot: false }); // a real charger may say nothing after a central restart
    const asked = (what: string) =>
      again.received.some((r) => r.action === 'TriggerMessage' && r.params.requestedMessage === what);
    await until('TriggerMessage BootNotification', () => asked('BootNotification'), 6000);
    await until('TriggerMessage StatusNotification', () => asked('StatusNotification'), 6000);
    await until('boot after trigger', () => n.evs('boot', 's1/cp1').length === 1);
    await again.stopSession(1, 'Local');
    const t = n.central.state().transactions[tx];
    assert.ok((t?.meterStopWh ?? 0) >= 2500, 'the stop reading is the meter after the restart');
    // The next 1.6 id does not reuse the persisted one.
    assert.notEqual(await again.startSession(1, 'TAG1'), tx);
  });

  it('load management keeps the site under its limit as sessions start and stop', async () => {
    const w = seed();
    const n = await load(w, { siteLimitW: '11000', minW: '1380' });
    const sims = [
      n.cp('cp1', 'ocpp1.6', { maxPowerW: 11000 }),
      n.cp('cp2', 'ocpp2.0.1', { maxPowerW: 11000 }),
      n.cp('cp3', 'ocpp1.6', { maxPowerW: 11000 }),
    ];
    for (const s of sims) await s.connect();
    await until('default profiles (0 W until planned)', () =>
      sims.every((s) => s.connectors.get(1)?.defaultLimitW === 0),
    );
    const drawn = () => sims.reduce((a, s) => a + s.powerW(1), 0);
    const limits = () => sims.map((s) => s.connectors.get(1)?.limitW);
    let checks = 0;
    const watch = setInterval(() => {
      checks++;
      assert.ok(drawn() <= 11000, `drawing ${drawn()} W`);
    }, 5);
    try {
      await sims[0]!.startSession(1, 'A');
      await until('one session: whole limit', () => limits()[0] === 11000);
      await sims[1]!.startSession(1, 'B');
      await until('two sessions: half each', () => limits()[0] === 5500 && limits()[1] === 5500);
      await sims[2]!.startSession(1, 'C');
      await until('three sessions: a third each', () => limits().every((l) => l === 3666));
      assert.ok(drawn() <= 11000, `drawing ${drawn()} W`);
      await sims[1]!.stopSession(1);
      await until('re-planned after a stop', () => limits()[0] === 5500 && limits()[2] === 5500);
      assert.ok(drawn() <= 11000, `after a stop: drawing ${drawn()} W`);
      n.send({ topic: 'site-limit', payload: 2000 });
      await until(
        'lower limit: one runs at the minimum, one paused',
        () => limits()[0] === 2000 && limits()[2] === 0,
      );
      assert.ok(drawn() <= 2000, `after the new limit: drawing ${drawn()} W`);
      const plans = n.events
        .filter((m) => m.topic === 'charger/plan')
        .map((m) => m.payload as { totalW: number; limitW: number });
      assert.ok(plans.length >= 3, `${plans.length} plans`);
      assert.ok(
        plans.every((p) => p.totalW <= p.limitW),
        JSON.stringify(plans),
      );
    } finally {
      clearInterval(watch);
    }
    assert.ok(checks > 0);
  });

  it('freeze protection: below 0 °C stop sessions and set Inoperative; resume with hysteresis; maintenance stays', async () => {
    const w = seed();
    const n = await load(w, { haltBelowC: '0', resumeAtC: '2' });
    const a = n.cp('cp1');
    const b = n.cp('cp2', 'ocpp2.0.1');
    const m = n.cp('cp3');
    for (const s of [a, b, m]) await s.connect();
    const tx = await a.startSession(1, 'A');
    n.send({ topic: 'maintenance', payload: { cp: 's1/cp3', on: true } });
    await until('maintenance applied', () => m.connectors.get(1)?.operative === false);
    const sent = (s: SimChargePoint, action: string) => s.received.filter((r) => r.action === action);
    n.send({ topic: 'temperature', payload: 3 });
    n.send({ topic: 'temperature', payload: -0.5 });
    await until('freeze summary', () => n.events.some((e) => e.topic === 'charger/freeze'));
    await until('session stopped', () => n.central.state().transactions[tx]?.stoppedAt !== undefined);
    assert.equal(sent(a, 'RemoteStopTransaction').length, 1);
    assert.equal(a.connectors.get(1)?.operative, false);
    assert.equal(b.connectors.get(1)?.operative, false);
    assert.equal(sent(b, 'ChangeAvailability')[0]?.params.operationalStatus, 'Inoperative');
    await until('inoperative recorded', () => n.central.state().chargePoints['s1/cp1']?.inoperative === true);
    await until(
      'charger reports Unavailable',
      () => n.central.state().chargePoints['s1/cp1']?.connectors['1']?.status === 'unavailable',
    );
    // Inside the band: nothing changes.
    const count = a.received.length + b.received.length;
    n.send({ topic: 'temperature', payload: 1.5 });
    await sleep(200);
    assert.equal(a.received.length + b.received.length, count);
    n.send({ topic: 'temperature', payload: 2.5 });
    await until(
      'resumed',
      () => a.connectors.get(1)?.operative === true && b.connectors.get(1)?.operative === true,
    );
    await sleep(100);
    assert.equal(m.connectors.get(1)?.operative, false, 'maintenance is left alone');
    const freezes = n.events
      .filter((e) => e.topic === 'charger/freeze')
      .map((e) => (e.payload as { state: string }).state);
    assert.deepEqual(freezes, ['frozen', 'normal']);
    await until('audited as freeze-protection', () =>
      auditLines(w).some((l) => l.actor.startsWith('freeze-protection') && l.action === 'charger.command'),
    );
  });

  it('freeze state survives a Node-RED restart: reconnecting chargers are held until it warms up', async () => {
    const w = seed();
    let n = await load(w, { haltBelowC: '0', resumeAtC: '2' });
    const a = n.cp('cp1');
    await a.connect();
    const tx = await a.startSession(1, 'A');
    n.send({ topic: 'temperature', payload: -3 });
    await until('session stopped', () => n.central.state().transactions[tx]?.stoppedAt !== undefined);
    await until('inoperative', () => a.connectors.get(1)?.operative === false);
    // Restart: the flow stops (the state file is written on close) and starts again.
    await closeOpened();
    await helper.unload();
    const saved = JSON.parse(readFileSync(w.stateFile, 'utf8')) as { freeze?: Record<string, unknown> };
    assert.equal((saved.freeze?.['*'] as { state?: string } | undefined)?.state, 'frozen');
    n = await load(w, { haltBelowC: '0', resumeAtC: '2' });
    // A charger that came back Operative (power cycle) is set Inoperative again on connect.
    const again = n.cp('cp1');
    await again.connect();
    await until('held inoperative after restart', () => again.connectors.get(1)?.operative === false);
    assert.deepEqual(
      again.received.filter((r) => r.action === 'ChangeAvailability').map((r) => r.params.type),
      ['Inoperative'],
    );
    // Inside the hysteresis band nothing resumes.
    n.send({ topic: 'temperature', payload: 1.5 });
    await sleep(200);
    assert.equal(again.connectors.get(1)?.operative, false);
    assert.equal(n.events.filter((e) => e.topic === 'charger/freeze').length, 0);
    n.send({ topic: 'temperature', payload: 2.5 });
    await until('resumed', () => again.connectors.get(1)?.operative === true);
    // The summary follows once every command is answered.
    await until('freeze summary', () => n.events.some((e) => e.topic === 'charger/freeze'));
    const freezes = n.events
      .filter((e) => e.topic === 'charger/freeze')
      .map((e) => (e.payload as { state: string }).state);
    assert.deepEqual(freezes, ['normal']);
    await until('freeze changes audited', () =>
      auditLines(w).some((l) => l.action === 'charger.freeze' && l.detail?.state === 'normal'),
    );
  });
  it('`evtwin-sim chargers` runs a fleet that boots, charges, meters and obeys profiles', async () => {
    const w = seed();
    const n = await load(w, { siteLimitW: '9000' });
    const tokensFile = join(w.dir, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify(w.tokens));
    const { code, out } = await runSim([
      'chargers',
      '--url',
      `ws://127.0.0.1:${n.port}/ocpp`,
      '--site',
      's1',
      '--ids',
      'cp1,cp2,cp3',
      '--tokens',
      tokensFile,
      '--protocol',
      'mix',
      '--meter',
      '0.3',
      '--heartbeat',
      '1',
      '--sessions',
      '1',
      '--duration',
      '2',
    ]);
    assert.equal(code, 0, out);
    assert.match(out, /3 charge points connected, 0 failed/);
    for (const cp of ['s1/cp1', 's1/cp2', 's1/cp3']) {
      assert.equal(n.evs('boot', cp).length, 1, `${cp} booted`);
      assert.equal(n.evs('transaction-started', cp).length, 1, `${cp} charged`);
      assert.ok(n.evs('meter', cp).length + n.evs('transaction-updated', cp).length >= 2, `${cp} metered`);
    }
    const obeyed = Number(/(\d+) commands obeyed/.exec(out)?.[1]);
    assert.ok(obeyed >= 6, `default + planned profiles obeyed: ${out}`);
    const wh = Number(/([\d.]+) Wh metered/.exec(out)?.[1]);
    // At most 9 kW for the ~2 s of the run (3 s of margin): the site limit held.
    assert.ok(wh > 0 && wh < (9000 * 3) / 3600, `energy under the 9 kW site limit: ${wh} Wh`);
  });
});

describe('example "04 Charging network" with real charge points', () => {
  before(() => {
    helper.settings({ userDir: mkdtempSync(join(tmpdir(), 'evtwin-ocpp-userdir-')) });
    return new Promise<void>((resolve) => helper.startServer(() => resolve()));
  });
  after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));
  afterEach(async () => {
    await closeOpened();
    await helper.unload();
  });

  it('a driver request over HTTP starts and stops a charge; an offline charger answers 502; maintenance works', async () => {
    const w = seed();
    const ex = readExamples(join(__dirname, '..', '..', 'node-red-nodes', 'examples')).find((e) =>
      e.name.startsWith('04 '),
    );
    assert.ok(ex, 'example 04 exists');
    // As a user would edit the config nodes: our registry, any free port, endpoints offline.
    const flow: FlowNode[] = ex.flow.map((n) =>
      n.type === 'evtwin-registry'
        ? { ...n, file: w.file }
        : n.type === 'evtwin-ocpp'
          ? { ...n, port: '0', stateFile: w.stateFile }
          : n.type === 'mqtt-broker'
            ? { ...n, port: '1', autoConnect: false }
            : n.type === 'evtwin-influx'
              ? { ...n, url: 'http://127.0.0.1:1' }
              : n,
    );
    const files = coreNodeFiles(require.resolve('node-red'));
    const core = [
      ...new Set(flow.flatMap((n) => (files.has(n.type) ? [files.get(n.type) as string] : []))),
    ].map((f) => loadFile(f) as unknown);
    // The http-in routes live on RED.httpNode, which the helper does not serve: serve it here.
    let httpNode: Parameters<typeof createServer>[1] | undefined;
    const capture = (RED: { httpNode: Parameters<typeof createServer>[1] }): void => {
      httpNode = RED.httpNode;
    };
    const influxNodes: unknown[] = ['evtwin-influx', 'evtwin-influx-out', 'evtwin-auth', 'evtwin-ingest'].map(
      (t) => loadFile(join(DIST, t, `${t}.js`)),
    );
    await helper.load([capture, ...core, ...nodes, ...influxNodes], onTab(flow, 'ex04', 'example'));
    assert.ok(httpNode, 'RED.httpNode');
    const server = createServer(httpNode).listen(0, '127.0.0.1');
    cleanups.push(() => new Promise((r) => server.close(r)));
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const post = async (
      path: string,
      body: unknown,
    ): Promise<{ status: number; body: Record<string, unknown> }> => {
      const r = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    const cfg = helper.getNode('ev04-ocpp') as unknown as {
      central?: OcppCentralSystem;
      ready?: Promise<void>;
    };
    await cfg.ready;
    const central = cfg.central;
    assert.ok(central);
    const cp = new SimChargePoint({
      endpoint: `ws://127.0.0.1:${central.port}/ocpp/s1`,
      identity: 'cp1',
      password: w.tokens['s1/cp1'] as string,
    });
    opened.push(cp);
    await cp.connect();

    const start = await post('/evtwin/charging/start', { cp: 's1/cp1', idTag: 'DRIVER1', connectorId: 1 });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    assert.deepEqual([start.body.action, start.body.accepted], ['RemoteStartTransaction', true]);
    await until('session started', () => cp.connectors.get(1)?.transactionId !== undefined);
    const tx = cp.connectors.get(1)?.transactionId as string;
    await until('central knows it', () => central.state().transactions[tx]?.idTag === 'DRIVER1');
    const stop = await post('/evtwin/charging/stop', { cp: 's1/cp1', transactionId: tx });
    assert.deepEqual(
      [stop.status, stop.body.action, stop.body.accepted],
      [200, 'RemoteStopTransaction', true],
    );
    await until('session ended', () => central.state().transactions[tx]?.stoppedAt !== undefined);

    const offline = await post('/evtwin/charging/start', { cp: 's1/cp2', idTag: 'DRIVER2' });
    assert.equal(offline.status, 502);
    assert.match(String(offline.body.error), /not connected/);

    const maint = await post('/evtwin/charging/maintenance', { cp: 's1/cp1', on: true });
    assert.deepEqual([maint.status, maint.body.accepted], [200, true]);
    assert.equal(cp.connectors.get(1)?.operative, false);
    assert.equal(central.state().chargePoints['s1/cp1']?.maintenance, true);
    await until('driver commands audited', () =>
      auditLines(w).some((a) => a.actor.startsWith('driver-api via')),
    );
  });
});
