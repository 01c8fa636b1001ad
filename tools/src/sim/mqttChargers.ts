/**
 * Chargers over MQTT, simulated: a charger that is not OCPP (status on `.../status`, telemetry on
 * `.../telemetry`, commands on `.../cmd`, the contract of core/ocpp/mqtt.ts), and the telemetry of OCPP
 * charge points mirrored to MQTT. Credentials as devices send them: the registry token in the
 * payload, or a Fernet envelope sealed with the charge point's registry key (core/fernet.ts).
 */
import { EventEmitter } from 'node:events';
import mqtt, { type MqttClient } from 'mqtt';
import {
  commandTopic,
  sealTelemetry,
  statusTopic,
  telemetryTopic,
  type RegistryState,
} from 'node-red-contrib-evtwin';
import { loadRegistry } from 'node-red-contrib-evtwin/runtime';
import type { SimChargePoint } from './chargers';

export interface FernetKeyRef {
  kid: string;
  key: string;
}

/** The current Fernet key of every charge point in a registry (`<site>/<cp>` → key). */
export function fernetKeysOf(state: RegistryState): Record<string, FernetKeyRef> {
  const out: Record<string, FernetKeyRef> = {};
  for (const e of state.entries) {
    if (e.revokedAt !== undefined) continue;
    const k = [...e.keys].reverse().find((x) => x.retiredAt === undefined);
    if (k) out[e.id] = { kid: k.kid, key: k.key };
  }
  return out;
}

export const fernetKeysFromRegistry = (file: string): Record<string, FernetKeyRef> =>
  fernetKeysOf(loadRegistry(file));

export interface Credential {
  token?: string;
  key?: FernetKeyRef;
}

/** A payload as the device sends it: sealed with its key, or carrying its token. */
export function withCredential(body: Record<string, unknown>, c: Credential, now = Date.now()): unknown {
  if (c.key) return sealTelemetry(c.key.kid, c.key.key, body, now);
  return c.token ? { ...body, token: c.token } : body;
}

export async function connectMqtt(url: string, login?: { username: string; password: string }) {
  const client = mqtt.connect(url, {
    protocolVersion: 5,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    ...(login ?? {}),
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

const publish = (client: MqttClient, topic: string, payload: unknown, retain = false): Promise<void> =>
  new Promise((resolve, reject) =>
    client.publish(topic, JSON.stringify(payload), { qos: 1, retain }, (err) =>
      err ? reject(err) : resolve(),
    ),
  );

export interface SimMqttChargerOptions {
  site: string;
  asset: string;
  credential: Credential;
  /** What the car + charger can draw, W. */
  maxPowerW?: number;
  /** Do not answer commands (to test timeouts). */
  mute?: boolean;
}

interface Received {
  command: string;
  payload: Record<string, unknown>;
}

/** One MQTT charger with one connector. */
export class SimMqttCharger extends EventEmitter {
  status = 'available';
  operative = true;
  transactionId: string | undefined;
  meterWh = 0;
  limitW: number | undefined;
  readonly received: Received[] = [];
  private seq = 0;
  private lastTs = 0;
  private lastMeterAt = Date.now();
  private txCount = 0;

  constructor(
    readonly client: MqttClient,
    readonly opts: SimMqttChargerOptions,
  ) {
    super();
  }

  get id(): string {
    return `${this.opts.site}/${this.opts.asset}`;
  }

  /** Strictly increasing timestamps: the auth gate refuses replays. */
  private ts(): number {
    this.lastTs = Math.max(Date.now(), this.lastTs + 1);
    return this.lastTs;
  }

  async start(): Promise<void> {
    const topic = commandTopic(this.opts.site, this.opts.asset);
    this.client.on('message', (t, buf) => {
      if (t !== topic) return;
      void this.onCommand(buf).catch((err: unknown) => this.emit('error', err));
    });
    await this.client.subscribeAsync(topic, { qos: 1 });
    await this.sendStatus({ boot: { vendor: 'EVTwin', model: 'sim-mqtt', firmware: '1.0' } });
    await this.sendStatus({ status: this.status, connector: 1 });
  }

  sendStatus(body: Record<string, unknown>): Promise<void> {
    const b = { ts: this.ts(), ...body };
    return publish(
      this.client,
      statusTopic(this.opts.site, this.opts.asset),
      withCredential(b, this.opts.credential),
    );
  }

  /** Meter since the last reading at the current power, then publish power (kW) and energy (kWh). */
  async sendTelemetry(): Promise<void> {
    const now = Date.now();
    const w = this.powerW();
    this.meterWh += (w * (now - this.lastMeterAt)) / 3_600_000;
    this.lastMeterAt = now;
    const body = { ts: this.ts(), seq: this.seq++, values: { power: w / 1000, energy: this.meterWh / 1000 } };
    await publish(
      this.client,
      telemetryTopic(this.opts.site, this.opts.asset),
      withCredential(body, this.opts.credential),
    );
  }

  powerW(): number {
    if (this.status !== 'charging') return 0;
    return Math.min(this.opts.maxPowerW ?? 11_000, this.limitW ?? Infinity);
  }

  async startSession(idTag: string): Promise<string> {
    this.lastMeterAt = Date.now();
    this.transactionId = `${this.opts.asset}-${++this.txCount}`;
    this.status = 'charging';
    await this.sendStatus({
      status: 'charging',
      connector: 1,
      transactionId: this.transactionId,
      idTag,
      meterWh: this.meterWh,
    });
    return this.transactionId;
  }

  async stopSession(next = 'available'): Promise<void> {
    await this.sendTelemetry();
    this.transactionId = undefined;
    this.status = next;
    await this.sendStatus({ status: next, connector: 1, meterWh: this.meterWh });
  }

  private async onCommand(buf: Buffer): Promise<void> {
    const p = JSON.parse(buf.toString()) as Record<string, unknown>;
    const command = String(p.command);
    this.received.push({ command, payload: p });
    this.emit('command', command, p);
    if (this.opts.mute) return;
    let ok = true;
    let after: (() => Promise<void>) | undefined;
    switch (command) {
      case 'start':
        ok = this.operative && this.transactionId === undefined;
        if (ok) after = async () => void (await this.startSession(String(p.idTag)));
        break;
      case 'stop':
        ok = this.transactionId !== undefined;
        if (ok) after = () => this.stopSession();
        break;
      case 'availability':
        this.operative = p.operative === true;
        if (!this.operative)
          after = () =>
            this.transactionId
              ? this.stopSession('unavailable')
              : this.sendStatus({ status: 'unavailable', connector: 1 });
        else
          after = async () => {
            this.status = 'available';
            await this.sendStatus({ status: 'available', connector: 1 });
          };
        break;
      case 'profile':
        this.limitW = typeof p.limitW === 'number' ? p.limitW : undefined;
        break;
      default:
        ok = false;
    }
    await this.sendStatus({ ack: p.commandId, result: ok ? 'Accepted' : 'Rejected' });
    if (after) await after();
  }
}

/**
 * Mirror OCPP charge points' telemetry to MQTT (power kW from the meter's progress, energy kWh), as a
 * charger that reports both ways would. Returns a stop function.
 */
export function mirrorTelemetry(
  client: MqttClient,
  site: string,
  cps: readonly SimChargePoint[],
  credentials: Record<string, Credential>,
  intervalMs: number,
  onSent: () => void = () => undefined,
): () => void {
  const last = new Map<string, { at: number; wh: number }>();
  const seq = new Map<string, number>();
  const tick = async (): Promise<void> => {
    const now = Date.now();
    for (const cp of cps) {
      const id = `${site}/${cp.opts.identity}`;
      const wh = [...cp.connectors.values()].reduce((a, c) => a + c.meterWh, 0);
      const prev = last.get(id);
      last.set(id, { at: now, wh });
      const powerKw = prev && now > prev.at ? (wh - prev.wh) / ((now - prev.at) / 3_600_000) / 1000 : 0;
      const n = seq.get(id) ?? 0;
      seq.set(id, n + 1);
      const body = { ts: now, seq: n, values: { power: powerKw, energy: wh / 1000 } };
      await publish(
        client,
        telemetryTopic(site, cp.opts.identity),
        withCredential(body, credentials[id] ?? {}, now),
      );
      onSent();
    }
  };
  const t = setInterval(() => void tick().catch(() => undefined), intervalMs);
  return () => clearInterval(t);
}

/** A fleet of MQTT chargers on one connection: boot, sessions on a fraction, telemetry on a timer. */
export async function startMqttChargerFleet(o: {
  url: string;
  site: string;
  ids: readonly string[];
  credentials: Record<string, Credential>;
  meterS: number;
  sessions: number;
}): Promise<{ chargers: SimMqttCharger[]; telemetry(): number; close(): Promise<void> }> {
  const client = await connectMqtt(o.url);
  const chargers = o.ids.map(
    (id) =>
      new SimMqttCharger(client, {
        site: o.site,
        asset: id,
        credential: o.credentials[`${o.site}/${id}`] ?? {},
      }),
  );
  let sent = 0;
  for (const [i, c] of chargers.entries()) {
    await c.start();
    if (i < Math.round(o.sessions * chargers.length)) await c.startSession(`TAG-${c.opts.asset}`);
  }
  const timer = setInterval(() => {
    for (const c of chargers)
      void c.sendTelemetry().then(
        () => void sent++,
        () => undefined,
      );
  }, o.meterS * 1000);
  return {
    chargers,
    telemetry: () => sent,
    close: async () => {
      clearInterval(timer);
      // The last will a real charger would leave: offline.
      await Promise.all(chargers.map((c) => c.sendStatus({ online: false }).catch(() => undefined)));
      await client.endAsync();
    },
  };
}
