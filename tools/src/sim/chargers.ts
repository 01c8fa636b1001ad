/**
 * Simulated OCPP charge points (ocpp-rpc clients, 1.6 or 2.0.1): boot, heartbeat, sessions with
 * meter values, and obedience to the central system's commands (remote start/stop, availability,
 * charging profiles, reset, unlock, trigger). Used by `evtwin-sim chargers`, the OCPP benchmark and
 * the integration tests, so all three drive the central system the same way.
 */
import { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { RPCClient } from 'ocpp-rpc';
import {
  connectMqtt,
  fernetKeysFromRegistry,
  mirrorTelemetry,
  startMqttChargerFleet,
  type Credential,
} from './mqttChargers';

export type SimProtocol = 'ocpp1.6' | 'ocpp2.0.1';

export interface SimChargePointOptions {
  /** ws://host:port/ocpp/<site> (the identity is appended). */
  endpoint: string;
  identity: string;
  /** Basic-auth password: the registry token. */
  password?: string;
  protocol?: SimProtocol;
  connectors?: number;
  /** What the car + charger can draw, W. */
  maxPowerW?: number;
  /** Validate our own calls and the central system's (default true). */
  strict?: boolean;
  callTimeoutMs?: number;
  /** Do not answer commands (to test timeouts). */
  mute?: boolean;
  /** Options for the WebSocket (e.g. `{ca}` for wss:// with a private CA). */
  wsOpts?: Record<string, unknown>;
}

export interface ConnectorSim {
  status: string;
  operative: boolean;
  transactionId?: string;
  idTag?: string;
  meterWh: number;
  /** TxProfile limit of the running session, W. */
  limitW?: number;
  /** TxDefaultProfile limit for sessions without their own profile, W. */
  defaultLimitW?: number;
  lastMeterAt: number;
  seqNo: number;
}

interface Received {
  action: string;
  params: Record<string, unknown>;
  at: number;
}

const iso = (t = Date.now()): string => new Date(t).toISOString();
const later = (fn: () => Promise<unknown>): void => {
  setTimeout(() => void fn().catch(() => undefined), 5);
};

type Params = Record<string, unknown>;
type Handler = (call: { params?: Params }) => Promise<Record<string, unknown>>;

/** The slice of ocpp-rpc's client we use (its constructor typing requires every option). */
interface Rpc extends EventEmitter {
  connect(): Promise<unknown>;
  call(method: string, params?: unknown, options?: Record<string, unknown>): Promise<unknown>;
  handle(method: string, handler: Handler): void;
  close(options?: { code?: number; reason?: string; force?: boolean }): Promise<unknown>;
  sendRaw(message: string): void;
  readonly state: number;
}

let txCounter = 0;

export class SimChargePoint extends EventEmitter {
  readonly rpc: Rpc;
  readonly protocol: SimProtocol;
  readonly connectors = new Map<number, ConnectorSim>();
  /** Commands received from the central system, in order. */
  readonly received: Received[] = [];
  private readonly maxPowerW: number;
  private timers: NodeJS.Timeout[] = [];

  constructor(readonly opts: SimChargePointOptions) {
    super();
    this.protocol = opts.protocol ?? 'ocpp1.6';
    this.maxPowerW = opts.maxPowerW ?? 11_000;
    for (let i = 1; i <= (opts.connectors ?? 1); i++)
      this.connectors.set(i, {
        status: 'Available',
        operative: true,
        meterWh: 0,
        lastMeterAt: Date.now(),
        seqNo: 0,
      });
    const Ctor = RPCClient as unknown as new (o: Record<string, unknown>) => Rpc;
    this.rpc = new Ctor({
      endpoint: opts.endpoint,
      identity: opts.identity,
      ...(opts.password ? { password: opts.password } : {}),
      protocols: [this.protocol],
      strictMode: opts.strict ?? true,
      reconnect: false,
      callConcurrency: 1,
      callTimeoutMs: opts.callTimeoutMs ?? 10_000,
      ...(opts.wsOpts ? { wsOpts: opts.wsOpts } : {}),
    });
    this.rpc.on('close', (e: unknown) => this.emit('close', e));
    this.installHandlers();
  }

  get v16(): boolean {
    return this.protocol === 'ocpp1.6';
  }

  async connect(options: { boot?: boolean } = {}): Promise<void> {
    await this.rpc.connect();
    if (options.boot !== false) {
      await this.boot();
      for (const id of this.connectors.keys()) await this.sendStatus(id);
    }
  }

  call(action: string, params: Params): Promise<unknown> {
    return this.rpc.call(action, params);
  }

  async boot(): Promise<unknown> {
    return this.v16
      ? this.call('BootNotification', {
          chargePointVendor: 'EVTwin',
          chargePointModel: 'SimCP',
          firmwareVersion: '1.0',
        })
      : this.call('BootNotification', {
          reason: 'PowerUp',
          chargingStation: { vendorName: 'EVTwin', model: 'SimCP', firmwareVersion: '1.0' },
        });
  }

  heartbeat(): Promise<unknown> {
    return this.call('Heartbeat', {});
  }

  private conn(id: number): ConnectorSim {
    const c = this.connectors.get(id);
    if (!c) throw new Error(`${this.opts.identity} has no connector ${id}`);
    return c;
  }

  async sendStatus(id: number): Promise<unknown> {
    const c = this.conn(id);
    if (this.v16)
      return this.call('StatusNotification', {
        connectorId: id,
        errorCode: 'NoError',
        status: c.status,
        timestamp: iso(),
      });
    const s201 = !c.operative ? 'Unavailable' : c.transactionId ? 'Occupied' : 'Available';
    return this.call('StatusNotification', {
      timestamp: iso(),
      connectorStatus: s201,
      evseId: id,
      connectorId: 1,
    });
  }

  async authorize(idTag: string): Promise<string> {
    const r = (await (this.v16
      ? this.call('Authorize', { idTag })
      : this.call('Authorize', { idToken: { idToken: idTag, type: 'ISO14443' } }))) as {
      idTagInfo?: { status: string };
      idTokenInfo?: { status: string };
    };
    return (r.idTagInfo ?? r.idTokenInfo)?.status ?? 'Unknown';
  }

  /** Power drawn now, W: the charger's maximum capped by the latest charging profile. */
  powerW(id: number): number {
    const c = this.conn(id);
    if (!c.transactionId || !c.operative) return 0;
    return Math.min(this.maxPowerW, c.limitW ?? c.defaultLimitW ?? Infinity);
  }

  private advance(id: number): void {
    const c = this.conn(id);
    const now = Date.now();
    c.meterWh += (this.powerW(id) * (now - c.lastMeterAt)) / 3_600_000;
    c.lastMeterAt = now;
  }

  private sampled(id: number): Record<string, unknown>[] {
    const c = this.conn(id);
    const wh = Math.round(c.meterWh);
    const w = this.powerW(id);
    return this.v16
      ? [
          {
            timestamp: iso(),
            sampledValue: [
              { value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
              { value: String(w), measurand: 'Power.Active.Import', unit: 'W' },
            ],
          },
        ]
      : [
          {
            timestamp: iso(),
            sampledValue: [
              { value: wh, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'Wh' } },
              { value: w, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W' } },
            ],
          },
        ];
  }

  async startSession(id: number, idTag: string): Promise<string> {
    const c = this.conn(id);
    if (c.transactionId) throw new Error(`connector ${id} already charging`);
    if (!c.operative) throw new Error(`connector ${id} is inoperative`);
    c.lastMeterAt = Date.now();
    c.idTag = idTag;
    if (this.v16) {
      const r = (await this.call('StartTransaction', {
        connectorId: id,
        idTag,
        meterStart: Math.round(c.meterWh),
        timestamp: iso(),
      })) as { transactionId: number };
      c.transactionId = String(r.transactionId);
      c.status = 'Charging';
      await this.sendStatus(id);
    } else {
      c.transactionId = `${this.opts.identity}-${Date.now().toString(36)}-${++txCounter}`;
      c.seqNo = 0;
      await this.call('TransactionEvent', {
        eventType: 'Started',
        timestamp: iso(),
        triggerReason: 'Authorized',
        seqNo: c.seqNo++,
        transactionInfo: { transactionId: c.transactionId, chargingState: 'Charging' },
        idToken: { idToken: idTag, type: 'ISO14443' },
        evse: { id, connectorId: 1 },
        meterValue: this.sampled(id),
      });
      c.status = 'Charging';
    }
    this.emit('started', id, c.transactionId);
    return c.transactionId;
  }

  async sendMeterValues(id: number): Promise<unknown> {
    this.advance(id);
    const c = this.conn(id);
    if (this.v16) {
      const p: Params = { connectorId: id, meterValue: this.sampled(id) };
      if (c.transactionId) p.transactionId = Number(c.transactionId);
      return this.call('MeterValues', p);
    }
    if (c.transactionId)
      return this.call('TransactionEvent', {
        eventType: 'Updated',
        timestamp: iso(),
        triggerReason: 'MeterValuePeriodic',
        seqNo: c.seqNo++,
        transactionInfo: {
          transactionId: c.transactionId,
          chargingState: this.powerW(id) > 0 ? 'Charging' : 'SuspendedEVSE',
        },
        meterValue: this.sampled(id),
      });
    return this.call('MeterValues', { evseId: id, meterValue: this.sampled(id) });
  }

  async stopSession(id: number, reason = 'Local'): Promise<void> {
    this.advance(id);
    const c = this.conn(id);
    const tx = c.transactionId;
    if (!tx) return;
    c.transactionId = undefined;
    c.limitW = undefined;
    if (this.v16) {
      await this.call('StopTransaction', {
        transactionId: Number(tx),
        meterStop: Math.round(c.meterWh),
        timestamp: iso(),
        reason,
        idTag: c.idTag,
      });
      c.status = c.operative ? 'Available' : 'Unavailable';
      await this.sendStatus(id);
    } else {
      // Like real 2.0.1 stations, no idToken on Ended.
      await this.call('TransactionEvent', {
        eventType: 'Ended',
        timestamp: iso(),
        triggerReason: reason === 'Remote' ? 'RemoteStop' : 'StopAuthorized',
        seqNo: c.seqNo++,
        transactionInfo: { transactionId: tx, stoppedReason: reason },
        meterValue: this.sampled(id),
      });
      c.status = c.operative ? 'Available' : 'Unavailable';
    }
    this.emit('stopped', id, tx);
  }

  private connectorOfTx(tx: unknown): number | undefined {
    for (const [id, c] of this.connectors)
      if (c.transactionId !== undefined && c.transactionId === String(tx)) return id;
    return undefined;
  }

  private installHandlers(): void {
    const on = (action: string, fn: (p: Params) => Record<string, unknown>): void => {
      this.rpc.handle(action, async ({ params }) => {
        const p = params ?? {};
        this.received.push({ action, params: p, at: Date.now() });
        this.emit('command', action, p);
        if (this.opts.mute) return new Promise<Record<string, unknown>>(() => undefined);
        return fn(p);
      });
    };
    const free = (): number | undefined =>
      [...this.connectors].find(([, c]) => !c.transactionId && c.operative)?.[0];
    const start = (p: Params, tag: string, connector: unknown): Record<string, unknown> => {
      const id = typeof connector === 'number' ? connector : free();
      const c = id === undefined ? undefined : this.connectors.get(id);
      if (id === undefined || !c || c.transactionId || !c.operative) return { status: 'Rejected' };
      const profile = (p.chargingProfile ?? undefined) as Params | undefined;
      const limit = profile ? this.limitOf(profile) : undefined;
      if (limit !== undefined) c.limitW = limit;
      later(() => this.startSession(id, tag));
      return { status: 'Accepted' };
    };
    const stop = (tx: unknown): Record<string, unknown> => {
      const id = this.connectorOfTx(tx);
      if (id === undefined) return { status: 'Rejected' };
      later(() => this.stopSession(id, 'Remote'));
      return { status: 'Accepted' };
    };
    on('RemoteStartTransaction', (p) => start(p, String(p.idTag), p.connectorId));
    on('RequestStartTransaction', (p) =>
      start(p, String((p.idToken as Params | undefined)?.idToken), p.evseId),
    );
    on('RemoteStopTransaction', (p) => stop(p.transactionId));
    on('RequestStopTransaction', (p) => stop(p.transactionId));
    on('ChangeAvailability', (p) => {
      const operative = (p.type ?? p.operationalStatus) === 'Operative';
      const evse = p.evse as Params | undefined;
      const which =
        typeof p.connectorId === 'number' && p.connectorId > 0
          ? p.connectorId
          : typeof evse?.id === 'number'
            ? evse.id
            : 0;
      const ids = which === 0 ? [...this.connectors.keys()] : [which];
      const busy = ids.some((id) => this.connectors.get(id)?.transactionId);
      for (const id of ids) {
        const c = this.connectors.get(id);
        if (!c) continue;
        c.operative = operative;
        if (!c.transactionId) c.status = operative ? 'Available' : 'Unavailable';
        later(() => this.sendStatus(id));
      }
      return { status: busy && !operative ? 'Scheduled' : 'Accepted' };
    });
    on('SetChargingProfile', (p) => {
      const id = (p.connectorId ?? p.evseId) as number;
      const profile = (p.csChargingProfiles ?? p.chargingProfile) as Params;
      const limit = this.limitOf(profile);
      if (profile?.chargingProfilePurpose === 'TxDefaultProfile' && limit !== undefined) {
        for (const [cid, c] of this.connectors)
          if (id === 0 || cid === id) {
            this.advance(cid);
            c.defaultLimitW = limit;
          }
        return { status: 'Accepted' };
      }
      const c = this.connectors.get(id);
      if (!c || limit === undefined) return { status: 'Rejected' };
      this.advance(id);
      c.limitW = limit;
      this.emit('profile', id, limit);
      return { status: 'Accepted' };
    });
    on('Reset', () => ({ status: 'Accepted' }));
    on('UnlockConnector', () => (this.v16 ? { status: 'Unlocked' } : { status: 'Unlocked' }));
    on('TriggerMessage', (p) => {
      const what = String(p.requestedMessage);
      const evse = p.evse as Params | undefined;
      const connector =
        typeof p.connectorId === 'number'
          ? p.connectorId
          : typeof evse?.id === 'number'
            ? evse.id
            : undefined;
      const ids = connector !== undefined ? [connector] : [...this.connectors.keys()];
      if (what === 'BootNotification') later(() => this.boot());
      else if (what === 'Heartbeat') later(() => this.heartbeat());
      else if (what === 'StatusNotification')
        later(async () => {
          for (const id of ids) await this.sendStatus(id);
        });
      else if (what === 'MeterValues')
        later(async () => {
          for (const id of ids) await this.sendMeterValues(id);
        });
      else return { status: 'NotImplemented' };
      return { status: 'Accepted' };
    });
  }

  private limitOf(profile: Params | undefined): number | undefined {
    const schedule = profile?.chargingSchedule;
    const s = (Array.isArray(schedule) ? schedule[0] : schedule) as Params | undefined;
    const periods = s?.chargingSchedulePeriod as Params[] | undefined;
    const limit = periods?.[0]?.limit;
    if (typeof limit !== 'number') return undefined;
    // Profiles in A: assume 230 V single phase.
    return s?.chargingRateUnit === 'A' ? limit * 230 : limit;
  }

  /** Heartbeats and meter values on timers (fleet mode). */
  run(heartbeatMs: number, meterMs: number): void {
    const jitter = (ms: number) => Math.floor(Math.random() * ms);
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const first = setTimeout(() => {
        void fn().catch(() => undefined);
        const t = setInterval(() => void fn().catch(() => undefined), ms);
        this.timers.push(t);
      }, jitter(ms));
      this.timers.push(first);
    };
    if (heartbeatMs > 0) every(heartbeatMs, () => this.heartbeat());
    if (meterMs > 0)
      every(meterMs, async () => {
        for (const id of this.connectors.keys()) await this.sendMeterValues(id);
      });
  }

  async close(force = false): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    await this.rpc.close(force ? { force: true } : { code: 1000 }).catch(() => undefined);
  }
}

// ---- fleet and CLI --------------------------------------------------------------------------------

export interface FleetOptions {
  /** ws://host:port/ocpp (site is appended). */
  url: string;
  site: string;
  count: number;
  /** `<site>/<cp>` → token. */
  tokens: Record<string, string>;
  /** Charge point ids; default cp-0001… */
  ids?: string[];
  protocol: SimProtocol | 'mix';
  heartbeatS: number;
  meterS: number;
  /** Start a session on this fraction of charge points right after boot. */
  sessions: number;
  /** Connections opened at once. */
  concurrency?: number;
}

export const simChargerId = (i: number): string => `cp-${String(i + 1).padStart(4, '0')}`;

export async function startChargerFleet(
  o: FleetOptions,
): Promise<{ cps: SimChargePoint[]; failed: string[]; close(): Promise<void> }> {
  const ids = o.ids ?? Array.from({ length: o.count }, (_, i) => simChargerId(i));
  const cps: SimChargePoint[] = [];
  const failed: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const i = next++;
      const id = ids[i] as string;
      const protocol: SimProtocol =
        o.protocol === 'mix' ? (i % 2 === 0 ? 'ocpp1.6' : 'ocpp2.0.1') : o.protocol;
      const token = o.tokens[`${o.site}/${id}`];
      const cp = new SimChargePoint({
        endpoint: `${o.url.replace(/\/+$/, '')}/${o.site}`,
        identity: id,
        protocol,
        ...(token ? { password: token } : {}),
      });
      try {
        await cp.connect();
        if (i < Math.round(o.sessions * ids.length)) await cp.startSession(1, `TAG-${id}`);
        cp.run(o.heartbeatS * 1000, o.meterS * 1000);
        cps.push(cp);
      } catch (err) {
        failed.push(`${id}: ${(err as Error).message}`);
        await cp.close(true);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 50 }, worker));
  return {
    cps,
    failed,
    close: async () => {
      await Promise.all(cps.map((c) => c.close()));
    },
  };
}

export const CHARGERS_USAGE = `Usage: evtwin-sim chargers [options]

Runs N simulated OCPP charge points against a central system (evtwin-ocpp): each boots, sends
StatusNotification, heartbeats, meter values, and obeys remote start/stop, availability, charging
profiles, reset, unlock and trigger commands.

  --url URL          central system, without site (default ws://127.0.0.1:9220/ocpp)
  --site SITE        site of the charge points (default sim)
  --count N          charge points cp-0001… (default 10)
  --ids LIST         instead, these charge point ids (comma-separated)
  --tokens FILE      JSON {"<site>/<cp>": "<registry token>"} (basic-auth passwords)
  --protocol P       1.6, 2.0.1 or mix (default 1.6)
  --heartbeat S      heartbeat interval, s (default 60)
  --meter S          meter values interval, s (default 10)
  --sessions F       fraction of charge points that start a session at once (default 0.5)
  --duration S       stop after S seconds (default: until Ctrl-C)
  --mqtt URL         also publish each charge point's telemetry (power kW, energy kWh) over MQTT to
                     evtwin/v1/{site}/{cp}/telemetry every --meter seconds
  --registry FILE    seal that telemetry with each charge point's Fernet key from this registry file
                     (else the --tokens token rides in the payload)
  --transport mqtt   chargers that speak MQTT, not OCPP (needs --mqtt): status, telemetry and commands
                     on evtwin/v1/{site}/{cp}/status|telemetry|cmd
  -h, --help         this text
`;

/** Each charger's credential: its Fernet key from the registry file when given, else its token. */
function credentialsFor(
  site: string,
  ids: readonly string[],
  tokens: Record<string, string>,
  registry: string | undefined,
): Record<string, Credential> {
  const keys = registry ? fernetKeysFromRegistry(registry) : {};
  const out: Record<string, Credential> = {};
  for (const id of ids) {
    const key = keys[`${site}/${id}`];
    const token = tokens[`${site}/${id}`];
    out[`${site}/${id}`] = key ? { key } : token ? { token } : {};
  }
  return out;
}

/** Until --duration seconds pass or Ctrl-C. */
function untilStopped(duration: string | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = duration ? setTimeout(resolve, Number(duration) * 1000) : undefined;
    process.once('SIGINT', () => {
      if (t) clearTimeout(t);
      resolve();
    });
  });
}

export async function chargersMain(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      url: { type: 'string', default: 'ws://127.0.0.1:9220/ocpp' },
      site: { type: 'string', default: 'sim' },
      count: { type: 'string', default: '10' },
      ids: { type: 'string' },
      tokens: { type: 'string' },
      protocol: { type: 'string', default: '1.6' },
      heartbeat: { type: 'string', default: '60' },
      meter: { type: 'string', default: '10' },
      sessions: { type: 'string', default: '0.5' },
      duration: { type: 'string' },
      mqtt: { type: 'string' },
      registry: { type: 'string' },
      transport: { type: 'string', default: 'ocpp' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out(CHARGERS_USAGE);
    return 0;
  }
  const protocol =
    values.protocol === '1.6'
      ? 'ocpp1.6'
      : values.protocol === '2.0.1'
        ? 'ocpp2.0.1'
        : values.protocol === 'mix'
          ? 'mix'
          : undefined;
  const ids = values.ids
    ? values.ids
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
    : undefined;
  const count = ids ? ids.length : Number(values.count);
  if (!protocol || !Number.isInteger(count) || count < 1) {
    out('evtwin-sim chargers: --protocol must be 1.6, 2.0.1 or mix; --count a positive integer\n');
    return 2;
  }
  const tokens = values.tokens
    ? (JSON.parse(readFileSync(values.tokens, 'utf8')) as Record<string, string>)
    : {};
  if (values.transport !== 'ocpp' && values.transport !== 'mqtt') {
    out('evtwin-sim chargers: --transport must be ocpp or mqtt\n');
    return 2;
  }
  if (values.transport === 'mqtt') {
    if (!values.mqtt) {
      out('evtwin-sim chargers: --transport mqtt needs --mqtt URL\n');
      return 2;
    }
    const list = ids ?? Array.from({ length: count }, (_, i) => simChargerId(i));
    const mqttFleet = await startMqttChargerFleet({
      url: values.mqtt,
      site: values.site,
      ids: list,
      credentials: credentialsFor(values.site, list, tokens, values.registry),
      meterS: Number(values.meter),
      sessions: Number(values.sessions),
    });
    out(`${list.length} MQTT chargers started\n`);
    await untilStopped(values.duration);
    await mqttFleet.close();
    const obeyed = mqttFleet.chargers.reduce((a, c) => a + c.received.length, 0);
    const wh = mqttFleet.chargers.reduce((a, c) => a + c.meterWh, 0);
    out(
      `done: ${obeyed} commands obeyed, ${wh.toFixed(1)} Wh metered, ${mqttFleet.telemetry()} MQTT telemetry messages sent\n`,
    );
    return 0;
  }
  const fleet = await startChargerFleet({
    url: values.url,
    site: values.site,
    count,
    ...(ids ? { ids } : {}),
    tokens,
    protocol,
    heartbeatS: Number(values.heartbeat),
    meterS: Number(values.meter),
    sessions: Number(values.sessions),
  });
  out(`${fleet.cps.length} charge points connected, ${fleet.failed.length} failed\n`);
  for (const f of fleet.failed.slice(0, 10)) out(`  ${f}\n`);
  let telemetry = 0;
  let stopMirror = (): void => undefined;
  let client: Awaited<ReturnType<typeof connectMqtt>> | undefined;
  if (values.mqtt) {
    const credentials = credentialsFor(
      values.site,
      fleet.cps.map((cp) => cp.opts.identity),
      tokens,
      values.registry,
    );
    client = await connectMqtt(values.mqtt);
    stopMirror = mirrorTelemetry(
      client,
      values.site,
      fleet.cps,
      credentials,
      Number(values.meter) * 1000,
      () => {
        telemetry++;
      },
    );
    const sealed = Object.values(credentials).filter((c) => c.key).length;
    out(`MQTT telemetry to ${values.mqtt}: ${sealed} of ${fleet.cps.length} Fernet-sealed\n`);
  }
  await untilStopped(values.duration);
  stopMirror();
  await client?.endAsync();
  await fleet.close();
  const energy = fleet.cps.reduce(
    (a, cp) => a + [...cp.connectors.values()].reduce((b, c) => b + c.meterWh, 0),
    0,
  );
  const commands = fleet.cps.reduce((a, cp) => a + cp.received.length, 0);
  out(`done: ${commands} commands obeyed, ${energy.toFixed(1)} Wh metered\n`);
  if (values.mqtt) out(`${telemetry} MQTT telemetry messages sent\n`);
  return fleet.failed.length > 0 && fleet.cps.length === 0 ? 1 : 0;
}
