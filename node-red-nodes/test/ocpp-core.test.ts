/**
 * The pure OCPP core: mapping of 1.6 and 2.0.1 calls to canonical events, the central state machine
 * and transactions, commands and their payloads (checked against ocpp-rpc's own JSON schemas),
 * site load planning and freeze protection.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  afterRestart,
  applyEvent,
  freezeCommands,
  fromChargerReading,
  fromMqttStatus,
  limitSession,
  MqttChargerError,
  openTransactions,
  parseStatusTopic,
  planChanges,
  sessionsDue,
  setFreeze,
  setMaintenance,
  type Transaction,
  CLOSED_TX_KEPT,
  commitInPlace,
  chargePointStatus,
  chargerPoints,
  CommandError,
  commandAccepted,
  emptyCentralState,
  encodePoint,
  energyWh,
  freezeDecision,
  fromOcpp16,
  fromOcpp201,
  handleCall,
  parseCommand,
  planCommands,
  planSiteLoad,
  sweepHeartbeats,
  toOcppCall,
  validateCentralState,
  type CallContext,
  type CentralState,
  type ChargerCommand,
  type OcppProtocol,
} from '../src/core';

interface Validator {
  subprotocol: string;
  validate(schemaId: string, params: unknown): boolean;
}
// ocpp-rpc's bundled schemas: the same ones strict mode applies on the wire.
const validators = require('ocpp-rpc/lib/standard-validators') as Validator[];
const validate = (protocol: OcppProtocol, action: string, kind: 'req' | 'conf', payload: unknown): void => {
  const v = validators.find((x) => x.subprotocol === protocol);
  assert.ok(v, protocol);
  v.validate(`urn:${action}.${kind}`, payload);
};

const T0 = Date.parse('2026-01-10T08:00:00Z');
const ctx = (protocol: OcppProtocol, now = T0): CallContext => ({
  cp: 's1/cp1',
  site: 's1',
  asset: 'cp1',
  protocol,
  now,
  heartbeatIntervalS: 60,
  idTags: { accepted: [], blocked: ['STOLEN'] },
});
const energy16 = (wh: number, ts = T0) => [
  {
    timestamp: new Date(ts).toISOString(),
    sampledValue: [
      { value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
      { value: '7.2', measurand: 'Power.Active.Import', unit: 'kW' },
    ],
  },
];

describe('OCPP mapping', () => {
  it('maps 1.6 calls to canonical events', () => {
    const who = { ...ctx('ocpp1.6') };
    const [boot] = fromOcpp16(who, 'BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' });
    assert.equal(boot?.type, 'boot');
    assert.equal(boot?.vendor, 'V');
    const [st] = fromOcpp16(who, 'StatusNotification', {
      connectorId: 1,
      status: 'SuspendedEV',
      errorCode: 'NoError',
    });
    assert.deepEqual([st?.status, st?.connectorId, st?.errorCode], ['suspended', 1, undefined]);
    const [f] = fromOcpp16(who, 'StatusNotification', {
      connectorId: 2,
      status: 'Faulted',
      errorCode: 'GroundFailure',
    });
    assert.deepEqual([f?.status, f?.errorCode], ['faulted', 'GroundFailure']);
    const [mv] = fromOcpp16(who, 'MeterValues', {
      connectorId: 1,
      transactionId: 7,
      meterValue: energy16(1500),
    });
    assert.deepEqual([mv?.type, mv?.transactionId, mv?.meterWh, mv?.powerW], ['meter', '7', 1500, 7200]);
    assert.deepEqual(fromOcpp16(who, 'NoSuchAction', {}), []);
  });

  it('maps 2.0.1 calls, ignoring the token type and the missing idToken on Ended', () => {
    const who = ctx('ocpp2.0.1');
    const [st] = fromOcpp201(who, 'StatusNotification', {
      timestamp: new Date(T0).toISOString(),
      connectorStatus: 'Occupied',
      evseId: 1,
      connectorId: 1,
    });
    assert.deepEqual([st?.status, st?.connectorId], ['preparing', 1]);
    const [s] = fromOcpp201(who, 'TransactionEvent', {
      eventType: 'Started',
      timestamp: new Date(T0).toISOString(),
      triggerReason: 'Authorized',
      seqNo: 0,
      transactionInfo: { transactionId: 'tx-a', chargingState: 'Charging' },
      idToken: { idToken: 'TAG1', type: 'ISO14443' },
      evse: { id: 1 },
      meterValue: [
        {
          timestamp: new Date(T0).toISOString(),
          sampledValue: [
            { value: 2, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'kWh' } },
          ],
        },
      ],
    });
    assert.deepEqual(
      [s?.type, s?.transactionId, s?.idTag, s?.meterWh, s?.status],
      ['transaction-started', 'tx-a', 'TAG1', 2000, 'charging'],
    );
    const [e] = fromOcpp201(who, 'TransactionEvent', {
      eventType: 'Ended',
      timestamp: new Date(T0).toISOString(),
      triggerReason: 'StopAuthorized',
      seqNo: 3,
      transactionInfo: { transactionId: 'tx-a', stoppedReason: 'Remote' },
    });
    assert.deepEqual([e?.type, e?.idTag, e?.reason], ['transaction-ended', undefined, 'Remote']);
  });
});

describe('central state', () => {
  it('runs a 1.6 session: boot, status, start (id assigned), meter values, stop with energy', () => {
    let s: CentralState = emptyCentralState();
    const step = (action: string, params: unknown, now = T0) => {
      const h = handleCall(s, ctx('ocpp1.6', now), action, params);
      validate('ocpp1.6', action, 'conf', h.response);
      s = h.state;
      return h;
    };
    assert.equal(
      step('BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' }).response.interval,
      60,
    );
    step('StatusNotification', { connectorId: 1, status: 'Available', errorCode: 'NoError' });
    assert.equal(chargePointStatus(s.chargePoints['s1/cp1']!), 'available');
    assert.deepEqual(step('Authorize', { idTag: 'TAG1' }).response, { idTagInfo: { status: 'Accepted' } });
    assert.deepEqual(step('Authorize', { idTag: 'STOLEN' }).response, { idTagInfo: { status: 'Blocked' } });
    const start = step('StartTransaction', {
      connectorId: 1,
      idTag: 'TAG1',
      meterStart: 1000,
      timestamp: new Date(T0).toISOString(),
    });
    assert.equal(start.response.transactionId, 1);
    assert.equal(start.events[0]?.transactionId, '1');
    assert.equal(chargePointStatus(s.chargePoints['s1/cp1']!), 'charging');
    step('MeterValues', { connectorId: 1, transactionId: 1, meterValue: energy16(2500) });
    assert.equal(energyWh(s.transactions['1']!), 1500);
    const stop = step('StopTransaction', {
      transactionId: 1,
      meterStop: 4000,
      timestamp: new Date(T0 + 3600_000).toISOString(),
      reason: 'Remote',
    });
    assert.equal(stop.unknownTransaction, undefined);
    const tx = s.transactions['1']!;
    assert.deepEqual([tx.meterStopWh, energyWh(tx), tx.reason, tx.idTag], [4000, 3000, 'Remote', 'TAG1']);
    assert.equal(s.chargePoints['s1/cp1']!.connectors['1']?.status, 'finishing');
    // A second StartTransaction gets the next id; a stop for an unknown one is answered and flagged.
    assert.equal(
      step('StartTransaction', {
        connectorId: 1,
        idTag: 'TAG1',
        meterStart: 4000,
        timestamp: new Date(T0).toISOString(),
      }).response.transactionId,
      2,
    );
    const unknown = step('StopTransaction', {
      transactionId: 999,
      meterStop: 1,
      timestamp: new Date(T0).toISOString(),
    });
    assert.equal(unknown.unknownTransaction, true);
    assert.deepEqual(unknown.response, {});
  });

  it('a meter register going backwards never lowers the energy; stop below start keeps the last reading', () => {
    let s = emptyCentralState();
    s = handleCall(s, ctx('ocpp1.6'), 'StartTransaction', {
      connectorId: 1,
      idTag: 'A',
      meterStart: 100,
      timestamp: new Date(T0).toISOString(),
    }).state;
    s = handleCall(s, ctx('ocpp1.6'), 'MeterValues', {
      connectorId: 1,
      transactionId: 1,
      meterValue: energy16(900),
    }).state;
    s = handleCall(s, ctx('ocpp1.6'), 'MeterValues', {
      connectorId: 1,
      transactionId: 1,
      meterValue: energy16(50),
    }).state;
    assert.equal(energyWh(s.transactions['1']!), 800);
    s = handleCall(s, ctx('ocpp1.6'), 'StopTransaction', {
      transactionId: 1,
      meterStop: 10,
      timestamp: new Date(T0).toISOString(),
    }).state;
    assert.equal(energyWh(s.transactions['1']!), 800);
  });

  it('answers 2.0.1 calls with schema-valid responses and tracks station-assigned ids', () => {
    let s = emptyCentralState();
    const c = ctx('ocpp2.0.1');
    const boot = handleCall(s, c, 'BootNotification', {
      reason: 'PowerUp',
      chargingStation: { model: 'M', vendorName: 'V' },
    });
    validate('ocpp2.0.1', 'BootNotification', 'conf', boot.response);
    s = boot.state;
    const started = handleCall(s, c, 'TransactionEvent', {
      eventType: 'Started',
      timestamp: new Date(T0).toISOString(),
      triggerReason: 'Authorized',
      seqNo: 0,
      transactionInfo: { transactionId: 'T-9' },
      idToken: { idToken: 'TAG', type: 'ISO14443' },
      evse: { id: 2 },
    });
    validate('ocpp2.0.1', 'TransactionEvent', 'conf', started.response);
    s = started.state;
    assert.equal(s.transactions['T-9']?.connectorId, 2);
    s = handleCall(s, c, 'MeterValues', {
      evseId: 2,
      meterValue: [{ timestamp: new Date(T0).toISOString(), sampledValue: [{ value: 500 }] }],
    }).state;
    assert.equal(s.transactions['T-9']?.meterWh, 500);
    const ended = handleCall(s, c, 'TransactionEvent', {
      eventType: 'Ended',
      timestamp: new Date(T0).toISOString(),
      triggerReason: 'EVDeparted',
      seqNo: 2,
      transactionInfo: { transactionId: 'T-9' },
    });
    validate('ocpp2.0.1', 'TransactionEvent', 'conf', ended.response);
    assert.equal(ended.events[0]?.idTag, 'TAG', 'Ended without idToken keeps the session tag');
  });

  it('commits in place exactly as it copies, and keeps only the latest closed transactions', () => {
    let copied = emptyCentralState();
    const owned = emptyCentralState();
    const calls: [string, unknown][] = [
      ['BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' }],
    ];
    for (let i = 0; i < CLOSED_TX_KEPT + 5; i++) {
      const ts = new Date(T0 + i * 1000).toISOString();
      calls.push(['StartTransaction', { connectorId: 1, idTag: 'T', meterStart: i * 10, timestamp: ts }]);
      calls.push(['MeterValues', { connectorId: 1, transactionId: i + 1, meterValue: energy16(i * 10 + 5) }]);
      calls.push(['StopTransaction', { transactionId: i + 1, meterStop: i * 10 + 9, timestamp: ts }]);
    }
    calls.forEach(([action, params], i) => {
      const prev = copied;
      const snapshot = i % 50 === 0 ? JSON.stringify(prev) : undefined;
      copied = handleCall(prev, ctx('ocpp1.6'), action, params).state;
      if (snapshot) assert.equal(JSON.stringify(prev), snapshot, 'the copying commit never mutates');
      assert.equal(handleCall(owned, ctx('ocpp1.6'), action, params, commitInPlace).state, owned);
    });
    assert.deepEqual(owned, copied);
    const closed = Object.values(copied.transactions).filter((t) => t.stoppedAt !== undefined);
    assert.equal(closed.length, CLOSED_TX_KEPT);
    assert.equal(copied.transactions['1'], undefined, 'the oldest went first');
    assert.equal(copied.transactions[String(CLOSED_TX_KEPT + 5)]?.meterStopWh, (CLOSED_TX_KEPT + 4) * 10 + 9);
  });

  it('goes offline after missed heartbeats, on disconnect, and after a restart', () => {
    let s = handleCall(emptyCentralState(), ctx('ocpp1.6'), 'Heartbeat', {}).state;
    assert.equal(s.chargePoints['s1/cp1']?.online, true);
    assert.equal(sweepHeartbeats(s, T0 + 179_000, { intervalS: 60, missed: 3 }).events.length, 0);
    const swept = sweepHeartbeats(s, T0 + 181_000, { intervalS: 60, missed: 3 });
    assert.deepEqual(
      swept.events.map((e) => e.type),
      ['offline'],
    );
    assert.equal(chargePointStatus(swept.state.chargePoints['s1/cp1']!), 'offline');
    assert.equal(sweepHeartbeats(swept.state, T0 + 999_000).events.length, 0, 'reported once');
    s = applyEvent(s, { type: 'connected', cp: 's1/cp1', site: 's1', asset: 'cp1', ts: T0 }).state;
    const restarted = validateCentralState(JSON.parse(JSON.stringify(afterRestart(s))));
    assert.deepEqual(
      [restarted.chargePoints['s1/cp1']?.connected, restarted.chargePoints['s1/cp1']?.online],
      [false, false],
    );
    assert.throws(() => validateCentralState({ format: 'x' }));
  });

  it('writes charger and sessions points the schema accepts', () => {
    let s = emptyCentralState();
    const h = handleCall(s, ctx('ocpp1.6'), 'StartTransaction', {
      connectorId: 1,
      idTag: 'T',
      meterStart: 10,
      timestamp: new Date(T0).toISOString(),
    });
    s = h.state;
    const points = chargerPoints(h.events[0]!, s);
    assert.deepEqual(
      points.map((p) => p.measurement),
      ['charger', 'sessions'],
    );
    for (const p of points) encodePoint(p);
    assert.match(encodePoint(points[1]!), /^sessions,cp=cp1,site=s1,state=started /);
  });
});

describe('commands', () => {
  const all: ChargerCommand[] = [
    { command: 'start', cp: 's1/cp1', idTag: 'TAG', connectorId: 1, profile: { limitW: 7000 } },
    { command: 'stop', cp: 's1/cp1', transactionId: '12' },
    { command: 'availability', cp: 's1/cp1', operative: false },
    { command: 'availability', cp: 's1/cp1', operative: true, connectorId: 1 },
    { command: 'profile', cp: 's1/cp1', connectorId: 1, limitW: 3680.5, transactionId: '12' },
    { command: 'reset', cp: 's1/cp1', hard: true },
    { command: 'unlock', cp: 's1/cp1', connectorId: 1 },
    { command: 'trigger', cp: 's1/cp1', message: 'StatusNotification', connectorId: 1 },
  ];
  for (const protocol of ['ocpp1.6', 'ocpp2.0.1'] as const)
    it(`every command makes a schema-valid ${protocol} call`, () => {
      for (const cmd of all) {
        const call = toOcppCall(cmd, protocol, { remoteStartId: 5, profileId: 9 });
        assert.doesNotThrow(
          () => validate(protocol, call.action, 'req', call.payload),
          `${cmd.command} → ${call.action}`,
        );
      }
    });

  it('parses commands and OCPP action aliases, refusing bad ones with a reason', () => {
    assert.deepEqual(parseCommand({ command: 'RemoteStopTransaction', transactionId: 3 }, 's1/cp1'), {
      command: 'stop',
      cp: 's1/cp1',
      transactionId: '3',
    });
    assert.deepEqual(parseCommand({ command: 'ChangeAvailability', cp: 's/a', operative: false }), {
      command: 'availability',
      cp: 's/a',
      operative: false,
    });
    assert.throws(() => parseCommand({ command: 'explode', cp: 's/a' }), CommandError);
    assert.throws(() => parseCommand({ command: 'start', cp: 's/a' }), /idTag/);
    assert.throws(() => parseCommand({ command: 'stop', transactionId: '1' }), /"cp"/);
    assert.throws(
      () => parseCommand({ command: 'profile', cp: 's/a', connectorId: 1, limitW: -1 }),
      /limitW/,
    );
    assert.throws(
      () => toOcppCall({ command: 'stop', cp: 's/a', transactionId: 'abc' }, 'ocpp1.6'),
      /integers/,
    );
    assert.equal(commandAccepted({ status: 'Accepted' }), true);
    assert.equal(commandAccepted({ status: 'Rejected' }), false);
  });
});

describe('site planning', () => {
  const sessions = (n: number, maxW?: number) =>
    Array.from({ length: n }, (_, i) => ({
      cp: `s1/cp${i}`,
      connectorId: 1,
      transactionId: String(i),
      ...(maxW ? { maxW } : {}),
    }));

  it('shares the limit equally and never exceeds it', () => {
    for (const [limit, n] of [
      [22000, 3],
      [11000, 1],
      [10001, 7],
      [5000, 3],
      [0, 2],
    ] as const) {
      const plan = planSiteLoad(limit, sessions(n));
      assert.ok(plan.totalW <= limit, `${plan.totalW} <= ${limit}`);
      for (const a of plan.allocations) assert.ok(a.limitW === 0 || a.limitW >= 1380);
    }
    assert.deepEqual(
      planSiteLoad(22000, sessions(2)).allocations.map((a) => a.limitW),
      [11000, 11000],
    );
  });

  it('gives what capped sessions cannot use to the others', () => {
    const s = [...sessions(1, 3700), ...sessions(2).map((x) => ({ ...x, cp: `${x.cp}b` }))];
    assert.deepEqual(
      planSiteLoad(22000, s).allocations.map((a) => a.limitW),
      [3700, 9150, 9150],
    );
  });

  it('pauses the newest sessions when shares would fall below the minimum', () => {
    const plan = planSiteLoad(4000, sessions(4));
    assert.deepEqual(
      plan.allocations.map((a) => a.limitW),
      [2000, 2000, 0, 0],
    );
    assert.equal(plan.paused, 2);
    const cmds = planCommands(plan.allocations);
    assert.deepEqual(cmds[0], {
      command: 'profile',
      cp: 's1/cp0',
      connectorId: 1,
      limitW: 2000,
      purpose: 'TxProfile',
      transactionId: '0',
    });
  });

  it('halts below 0 °C and resumes only at the top of the hysteresis band', () => {
    const seq = [5, 0.5, -0.1, 0.5, 1.9, 2, 1, -3];
    let state: 'normal' | 'frozen' = 'normal';
    const states = seq.map((t) => (state = freezeDecision(state, t).state));
    assert.deepEqual(states, [
      'normal',
      'normal',
      'frozen',
      'frozen',
      'frozen',
      'normal',
      'normal',
      'frozen',
    ]);
    assert.deepEqual(freezeDecision('frozen', 'warm'), { state: 'frozen', changed: false });
  });
});

describe('MQTT chargers, driver limits, plan changes', () => {
  const who = { site: 's1', asset: 'm1', now: 1_000_000 };
  it('maps MQTT status to the same events: boot, session start/end from status, ack, last will', () => {
    let s = emptyCentralState();
    const apply = (body: unknown) => {
      const p = fromMqttStatus(who, body, s);
      for (const ev of p.events) s = applyEvent(s, ev, who.now).state;
      return p;
    };
    apply({ boot: { vendor: 'V', model: 'M' } });
    assert.equal(s.chargePoints['s1/m1']?.transport, 'mqtt');
    assert.equal(s.chargePoints['s1/m1']?.vendor, 'V');
    const start = apply({ status: 'Charging', connector: 2, transactionId: 'T1', idTag: 'A', meterWh: 100 });
    assert.deepEqual(
      start.events.map((e) => e.type),
      ['transaction-started', 'status'],
    );
    assert.deepEqual([s.transactions.T1?.connectorId, s.transactions.T1?.meterStartWh], [2, 100]);
    // The same status again changes nothing about sessions.
    assert.deepEqual(
      apply({ status: 'charging', connector: 2, transactionId: 'T1' }).events.map((e) => e.type),
      ['status'],
    );
    s = applyEvent(
      s,
      fromChargerReading({
        site: 's1',
        asset: 'm1',
        kind: 'charger',
        ts: 1,
        metrics: { energy: 0.4, power: 7, connector: 2 },
      }),
      1,
    ).state;
    assert.deepEqual([s.transactions.T1?.meterWh, s.transactions.T1?.powerW], [400, 7000]);
    const end = apply({ status: 'finishing', connector: 2, meterWh: 450 });
    assert.deepEqual(
      end.events.map((e) => e.type),
      ['transaction-ended', 'status'],
    );
    assert.equal(energyWh(s.transactions.T1 as Transaction), 350);
    // Without an id the central numbers the session.
    apply({ status: 'charging', connector: 1 });
    assert.equal(openTransactions(s, 's1/m1')[0]?.id, '1');
    assert.deepEqual(apply({ ack: 'c-1', result: 'Accepted' }).ack, {
      commandId: 'c-1',
      response: { status: 'Accepted' },
    });
    assert.deepEqual(
      apply({ online: false }).events.map((e) => e.type),
      ['disconnected'],
    );
    assert.equal(s.chargePoints['s1/m1']?.online, false);
    for (const [bad, why] of [
      ['{', /not valid JSON/],
      [[1], /JSON object/],
      [{}, /needs "status"/],
      [{ status: 'Sleeping' }, /"status" must be one of/],
      [{ status: 'charging', connector: 1.5 }, /"connector"/],
      [{ status: 'charging', meterWh: -1 }, /"meterWh"/],
      [{ status: 'charging', ts: 'yesterday' }, /"ts"/],
    ] as const)
      assert.throws(
        () => fromMqttStatus(who, bad, s),
        (e: Error) => e instanceof MqttChargerError && why.test(e.message),
      );
    assert.deepEqual(parseStatusTopic('evtwin/v1/s1/m1/status'), { site: 's1', asset: 'm1' });
    assert.equal(parseStatusTopic('evtwin/v1/s1/m1/telemetry'), undefined);
    // An OCPP charger that also reports MQTT telemetry stays OCPP.
    let o = applyEvent(emptyCentralState(), {
      type: 'connected',
      cp: 's1/c',
      site: 's1',
      asset: 'c',
      ts: 1,
      protocol: 'ocpp1.6',
    }).state;
    o = applyEvent(
      o,
      fromChargerReading({ site: 's1', asset: 'c', kind: 'charger', ts: 2, metrics: { energy: 1 } }),
    ).state;
    assert.equal(o.chargePoints['s1/c']?.transport, 'ocpp');
  });

  it('a start command may carry a driver limit; sessions are due at the energy or the deadline', () => {
    assert.deepEqual(parseCommand({ command: 'start', cp: 's/c', idTag: 'A', until: { kWh: 5 } }), {
      command: 'start',
      cp: 's/c',
      idTag: 'A',
      until: { kWh: 5 },
    });
    assert.throws(
      () => parseCommand({ command: 'start', cp: 's/c', idTag: 'A', until: {} }),
      /kWh or durationS/,
    );
    assert.throws(
      () => parseCommand({ command: 'start', cp: 's/c', idTag: 'A', until: { durationS: 0 } }),
      /positive/,
    );
    let s = emptyCentralState();
    const ev = { cp: 's/c', site: 's', asset: 'c', protocol: 'ocpp1.6' as const };
    s = applyEvent(s, { ...ev, type: 'transaction-started', ts: 0, connectorId: 1, meterWh: 1000 }).state;
    s = applyEvent(s, { ...ev, type: 'transaction-started', ts: 0, connectorId: 2, meterWh: 0 }).state;
    s = limitSession(s, '1', { kWh: 2 }, 0);
    s = limitSession(s, '2', { durationS: 60 }, 0);
    assert.deepEqual(sessionsDue(s, 59_000), []);
    s = applyEvent(s, { ...ev, type: 'meter', ts: 1, transactionId: '1', meterWh: 3000 }).state;
    assert.deepEqual(
      sessionsDue(s, 59_000).map((t) => t.id),
      ['1'],
    );
    assert.deepEqual(
      sessionsDue(s, 60_000).map((t) => t.id),
      ['1', '2'],
    );
  });

  it('plan changes: only what changed, cuts before raises; freeze commands spare maintenance', () => {
    const a = (cp: string, limitW: number) => ({ cp, connectorId: 1, transactionId: cp, limitW });
    const first = planChanges(new Map(), [a('x', 5000), a('y', 5000)]);
    assert.equal(first.lower.length, 2);
    const second = planChanges(first.next, [a('x', 3000), a('y', 5000), a('z', 2000)]);
    assert.deepEqual(
      second.lower.map((c) => c.cp),
      ['x', 'z'],
    );
    assert.deepEqual(second.raise, []);
    const third = planChanges(second.next, [a('x', 5000), a('y', 5000)]);
    assert.deepEqual(
      third.raise.map((c) => c.cp),
      ['x'],
    );
    let s = emptyCentralState();
    for (const cp of ['s/a', 's/b'])
      s = applyEvent(s, { type: 'connected', cp, site: 's', asset: cp.slice(2), ts: 0 }).state;
    s = applyEvent(s, {
      type: 'transaction-started',
      cp: 's/a',
      site: 's',
      asset: 'a',
      ts: 0,
      transactionId: 'T',
    }).state;
    s = setMaintenance(s, 's/b', true);
    assert.deepEqual(
      freezeCommands(s, ['s/a', 's/b'], 'frozen').map((c) => `${c.cp}:${c.command}`),
      ['s/a:stop', 's/a:availability', 's/b:availability'],
    );
    assert.deepEqual(
      freezeCommands(s, ['s/a', 's/b'], 'normal').map((c) => c.cp),
      ['s/a'],
    );
    const f = setFreeze(s, '*', { state: 'frozen', since: 1, temperatureC: -2 });
    assert.equal(
      validateCentralState(JSON.parse(JSON.stringify(afterRestart(f)))).freeze?.['*']?.state,
      'frozen',
    );
  });
});
