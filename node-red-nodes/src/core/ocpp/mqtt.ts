/**
 * Chargers that speak MQTT instead of OCPP, pure: their canonical readings (`evtwin/v1/{site}/{cp}/telemetry`
 * after evtwin-ingest) and status messages (`.../status`) become the same ChargerEvents the OCPP
 * mapping makes, so one state machine (chargePoint.ts applyEvent) serves both. Commands go out on
 * `.../cmd` as {commandId, ...ChargerCommand}; the charger answers on `.../status` with {ack, status}.
 *
 * Status message (JSON object, every field optional but one of status/online/boot/ack):
 *   {"ts", "connector": 1, "status": "charging" | "Charging" | ..., "errorCode", "transactionId",
 *    "idTag", "meterWh", "reason", "online": false (last will), "boot": {"vendor","model","firmware"},
 *    "ack": "<commandId>", "result": "Accepted" | "Rejected"}
 * Sessions need no extra messages: a connector entering charging/suspended opens one, leaving it closes it.
 */
import type { Reading } from '../reading';
import { TOPIC_ROOT, compileTopicTemplate } from '../topics';
import { openTransactions, type CentralState } from './chargePoint';
import type { ChargerCommand } from './commands';
import { parseTs, type ChargerEvent, type ConnectorStatus } from './events';

export class MqttChargerError extends Error {
  override name = 'MqttChargerError';
}

const STATUSES: readonly ConnectorStatus[] = [
  'available',
  'preparing',
  'charging',
  'suspended',
  'finishing',
  'reserved',
  'unavailable',
  'faulted',
];
/** OCPP spellings a charger's firmware may reuse. */
const ALIASES: Record<string, ConnectorStatus> = {
  suspendedev: 'suspended',
  suspendedevse: 'suspended',
  occupied: 'preparing',
};
const IN_SESSION: readonly ConnectorStatus[] = ['charging', 'suspended'];

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function parseStatus(v: unknown): ConnectorStatus {
  const key = typeof v === 'string' ? v.toLowerCase() : '';
  const s = (STATUSES as readonly string[]).includes(key) ? (key as ConnectorStatus) : ALIASES[key];
  if (!s)
    throw new MqttChargerError(`"status" must be one of ${STATUSES.join(', ')}, got ${JSON.stringify(v)}`);
  return s;
}

function optString(b: Record<string, unknown>, k: string, max = 64): string | undefined {
  const v = b[k];
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isInteger(v)) return String(v);
  if (typeof v !== 'string' || v === '' || v.length > max)
    throw new MqttChargerError(`"${k}" must be a non-empty string of at most ${max} characters`);
  return v;
}

function optNumber(b: Record<string, unknown>, k: string, min = 0): number | undefined {
  const v = b[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
    throw new MqttChargerError(`"${k}" must be a number >= ${min}`);
  return v;
}

export interface MqttWho {
  site: string;
  asset: string;
  /** Arrival time, epoch ms. */
  now: number;
}

export interface MqttStatusParsed {
  events: ChargerEvent[];
  /** A command answer: the commandId and the charger's verdict. */
  ack?: { commandId: string; response: Record<string, unknown> };
}

/** One status message → events (validated; throws MqttChargerError naming the bad field). */
export function fromMqttStatus(who: MqttWho, body: unknown, state: CentralState): MqttStatusParsed {
  let b = body;
  if (Buffer.isBuffer(b) || typeof b === 'string') {
    try {
      b = JSON.parse(b.toString()) as unknown;
    } catch (err) {
      throw new MqttChargerError(`status is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (!isRecord(b)) throw new MqttChargerError('status must be a JSON object');
  const cp = `${who.site}/${who.asset}`;
  const base = { cp, site: who.site, asset: who.asset, transport: 'mqtt' as const };
  const ts = b.ts === undefined ? who.now : typeof b.ts === 'number' ? b.ts : parseTs(b.ts, NaN);
  if (!Number.isFinite(ts)) throw new MqttChargerError('"ts" must be epoch ms or an ISO 8601 time');
  const out: MqttStatusParsed = { events: [] };
  const ack = optString(b, 'ack', 64);
  if (ack) {
    const result = optString(b, 'result', 32) ?? 'Rejected';
    out.ack = { commandId: ack, response: { status: result } };
  }
  if (b.online === false) {
    out.events.push({
      ...base,
      type: 'disconnected',
      ts,
      reason: optString(b, 'reason', 200) ?? 'last will',
    });
    return out;
  }
  if (b.online !== undefined && b.online !== true) throw new MqttChargerError('"online" must be a boolean');
  if (b.boot !== undefined) {
    if (!isRecord(b.boot)) throw new MqttChargerError('"boot" must be an object');
    const ev: ChargerEvent = { ...base, type: 'boot', ts };
    const vendor = optString(b.boot, 'vendor');
    const model = optString(b.boot, 'model');
    const firmware = optString(b.boot, 'firmware');
    if (vendor) ev.vendor = vendor;
    if (model) ev.model = model;
    if (firmware) ev.firmware = firmware;
    out.events.push(ev);
  }
  if (b.status === undefined) {
    if (out.events.length === 0 && !out.ack && b.online !== true)
      throw new MqttChargerError('status message needs "status", "online", "boot" or "ack"');
    if (b.online === true) out.events.push({ ...base, type: 'heartbeat', ts });
    return out;
  }
  const status = parseStatus(b.status);
  const connectorId = optNumber(b, 'connector', 0) ?? 1;
  if (!Number.isInteger(connectorId)) throw new MqttChargerError('"connector" must be an integer >= 0');
  const errorCode = optString(b, 'errorCode', 50);
  const transactionId = optString(b, 'transactionId', 36);
  const idTag = optString(b, 'idTag', 36);
  const meterWh = optNumber(b, 'meterWh');
  const reason = optString(b, 'reason', 200);
  const open = openTransactions(state, cp).find((t) => t.connectorId === connectorId);
  const extra = { ...(meterWh !== undefined ? { meterWh } : {}) };
  if (open && (!IN_SESSION.includes(status) || (transactionId && transactionId !== open.id))) {
    out.events.push({
      ...base,
      ...extra,
      type: 'transaction-ended',
      ts,
      connectorId,
      transactionId: open.id,
      reason: reason ?? (status === 'faulted' ? 'Faulted' : 'Local'),
    });
  }
  const stillOpen = open && IN_SESSION.includes(status) && (!transactionId || transactionId === open.id);
  if (IN_SESSION.includes(status) && !stillOpen) {
    const ev: ChargerEvent = { ...base, ...extra, type: 'transaction-started', ts, connectorId, status };
    if (transactionId) ev.transactionId = transactionId;
    if (idTag) ev.idTag = idTag;
    out.events.push(ev);
  }
  const ev: ChargerEvent = { ...base, type: 'status', ts, connectorId, status };
  if (errorCode && errorCode !== 'NoError') ev.errorCode = errorCode;
  out.events.push(ev);
  return out;
}

/**
 * A canonical reading of an MQTT charger → a meter event (kinds.ts `charger` metrics: power kW,
 * energy kWh). The open session on the connector (metric `connector`, default 1) takes it.
 */
export function fromChargerReading(r: Reading): ChargerEvent {
  const ev: ChargerEvent = {
    type: 'meter',
    cp: `${r.site}/${r.asset}`,
    site: r.site,
    asset: r.asset,
    ts: r.ts,
    transport: 'mqtt',
  };
  const c = r.metrics.connector;
  ev.connectorId = typeof c === 'number' && Number.isInteger(c) && c >= 0 ? c : 1;
  if (typeof r.metrics.energy === 'number') ev.meterWh = r.metrics.energy * 1000;
  if (typeof r.metrics.power === 'number') ev.powerW = r.metrics.power * 1000;
  if (typeof r.metrics.soc === 'number') ev.socPct = r.metrics.soc;
  return ev;
}

/** `evtwin/v1/{site}/{cp}/status` → site and cp, or undefined for any other topic. */
const STATUS_TOPIC = compileTopicTemplate(`${TOPIC_ROOT}/{site}/{asset}/status`);
export function parseStatusTopic(topic: string): { site: string; asset: string } | undefined {
  const m = STATUS_TOPIC.match(topic);
  return m?.site && m.asset ? { site: m.site, asset: m.asset } : undefined;
}

/**
 * The JSON published on `.../cmd`: the command plus what an MQTT charger needs to act without the
 * central's bookkeeping (the connector of a transaction the central numbered).
 */
export function toMqttCommand(
  cmd: ChargerCommand,
  commandId: string,
  state: CentralState,
  now: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = { commandId, ts: now, ...cmd };
  if (cmd.command === 'stop') {
    const t = state.transactions[cmd.transactionId];
    if (t) out.connectorId = t.connectorId;
  }
  return out;
}
