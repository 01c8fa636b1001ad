/**
 * One canonical charger event for OCPP 1.6 and 2.0.1: what a charge point said, with the protocol's
 * differences (integer vs string transaction ids, StatusNotification vs TransactionEvent, idTag vs
 * idToken, sampled value layouts) mapped away. Pure: parameters in, events out.
 */

export type OcppProtocol = 'ocpp1.6' | 'ocpp2.0.1';
export const OCPP_PROTOCOLS: readonly OcppProtocol[] = ['ocpp1.6', 'ocpp2.0.1'];

/** Connector status, the union of both protocols' vocabularies plus `offline` (central view). */
export type ConnectorStatus =
  | 'available'
  | 'preparing'
  | 'charging'
  | 'suspended'
  | 'finishing'
  | 'reserved'
  | 'unavailable'
  | 'faulted'
  | 'offline';

export type ChargerEventType =
  | 'connected'
  | 'disconnected'
  | 'offline'
  | 'boot'
  | 'heartbeat'
  | 'status'
  | 'authorize'
  | 'transaction-started'
  | 'transaction-updated'
  | 'transaction-ended'
  | 'meter'
  | 'protocol-error';

export interface ChargerEvent {
  type: ChargerEventType;
  /** Registry id `<site>/<asset>`. */
  cp: string;
  site: string;
  asset: string;
  /** Epoch ms (the charger's timestamp when it gave one, else when it arrived). */
  ts: number;
  protocol?: OcppProtocol;
  /** Set for chargers that speak MQTT (mqtt.ts) rather than OCPP. */
  transport?: 'mqtt';
  /** 1.6 connector id, or the 2.0.1 EVSE id (0 = the whole charge point). */
  connectorId?: number;
  status?: ConnectorStatus;
  errorCode?: string;
  /** 1.6 idTag, or the 2.0.1 idToken value (its type is not part of identity: stations vary it). */
  idTag?: string;
  /** Always a string (1.6 integers are stringified). */
  transactionId?: string;
  /** Energy register, Wh (Energy.Active.Import.Register). */
  meterWh?: number;
  powerW?: number;
  socPct?: number;
  reason?: string;
  vendor?: string;
  model?: string;
  firmware?: string;
  /** For protocol-error: the action and the error code sent back. */
  action?: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const int = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) ? v : undefined;

export function parseTs(v: unknown, fallback: number): number {
  if (typeof v !== 'string') return fallback;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : fallback;
}

const STATUS_16: Record<string, ConnectorStatus> = {
  Available: 'available',
  Preparing: 'preparing',
  Charging: 'charging',
  SuspendedEVSE: 'suspended',
  SuspendedEV: 'suspended',
  Finishing: 'finishing',
  Reserved: 'reserved',
  Unavailable: 'unavailable',
  Faulted: 'faulted',
};
const STATUS_201: Record<string, ConnectorStatus> = {
  Available: 'available',
  Occupied: 'preparing',
  Reserved: 'reserved',
  Unavailable: 'unavailable',
  Faulted: 'faulted',
};
const CHARGING_STATE_201: Record<string, ConnectorStatus> = {
  Charging: 'charging',
  EVConnected: 'preparing',
  SuspendedEV: 'suspended',
  SuspendedEVSE: 'suspended',
  Idle: 'preparing',
};

/** Energy (Wh), power (W) and SoC from OCPP sampled values; both protocols share this layout. */
export function readSampledValues(meterValue: unknown): {
  meterWh?: number;
  powerW?: number;
  socPct?: number;
} {
  const out: { meterWh?: number; powerW?: number; socPct?: number } = {};
  if (!Array.isArray(meterValue)) return out;
  for (const mv of meterValue) {
    if (!isRecord(mv) || !Array.isArray(mv.sampledValue)) continue;
    for (const sv of mv.sampledValue) {
      if (!isRecord(sv)) continue;
      // 1.6 carries the value as a string, 2.0.1 as a number.
      const raw = typeof sv.value === 'number' ? sv.value : Number(sv.value);
      if (!Number.isFinite(raw)) continue;
      const measurand = str(sv.measurand) ?? 'Energy.Active.Import.Register';
      if (sv.phase !== undefined) continue; // per-phase values duplicate the totals
      const unit = str(sv.unit) ?? (isRecord(sv.unitOfMeasure) ? str(sv.unitOfMeasure.unit) : undefined);
      const multiplier =
        isRecord(sv.unitOfMeasure) && typeof sv.unitOfMeasure.multiplier === 'number'
          ? 10 ** sv.unitOfMeasure.multiplier
          : 1;
      const value = raw * multiplier;
      if (measurand === 'Energy.Active.Import.Register') out.meterWh = unit === 'kWh' ? value * 1000 : value;
      else if (measurand === 'Power.Active.Import') out.powerW = unit === 'kW' ? value * 1000 : value;
      else if (measurand === 'SoC') out.socPct = value;
    }
  }
  return out;
}

export interface Who {
  cp: string;
  site: string;
  asset: string;
  protocol: OcppProtocol;
  now: number;
}

function base(who: Who, type: ChargerEventType, ts = who.now): ChargerEvent {
  return { type, cp: who.cp, site: who.site, asset: who.asset, ts, protocol: who.protocol };
}

function withMeter(ev: ChargerEvent, m: ReturnType<typeof readSampledValues>): ChargerEvent {
  if (m.meterWh !== undefined) ev.meterWh = m.meterWh;
  if (m.powerW !== undefined) ev.powerW = m.powerW;
  if (m.socPct !== undefined) ev.socPct = m.socPct;
  return ev;
}

/** OCPP 1.6 call → canonical events (StartTransaction carries no id yet: the central system assigns it). */
export function fromOcpp16(who: Who, action: string, params: unknown): ChargerEvent[] {
  const p = isRecord(params) ? params : {};
  switch (action) {
    case 'BootNotification': {
      const ev = base(who, 'boot');
      const vendor = str(p.chargePointVendor);
      const model = str(p.chargePointModel);
      const firmware = str(p.firmwareVersion);
      if (vendor) ev.vendor = vendor;
      if (model) ev.model = model;
      if (firmware) ev.firmware = firmware;
      return [ev];
    }
    case 'Heartbeat':
      return [base(who, 'heartbeat')];
    case 'StatusNotification': {
      const ev = base(who, 'status', parseTs(p.timestamp, who.now));
      ev.connectorId = int(p.connectorId) ?? 0;
      ev.status = STATUS_16[String(p.status)] ?? 'unavailable';
      const code = str(p.errorCode);
      if (code && code !== 'NoError') ev.errorCode = code;
      return [ev];
    }
    case 'Authorize': {
      const ev = base(who, 'authorize');
      const tag = str(p.idTag);
      if (tag) ev.idTag = tag;
      return [ev];
    }
    case 'StartTransaction': {
      const ev = base(who, 'transaction-started', parseTs(p.timestamp, who.now));
      ev.connectorId = int(p.connectorId) ?? 1;
      const tag = str(p.idTag);
      if (tag) ev.idTag = tag;
      if (typeof p.meterStart === 'number') ev.meterWh = p.meterStart;
      return [ev];
    }
    case 'StopTransaction': {
      const ev = base(who, 'transaction-ended', parseTs(p.timestamp, who.now));
      if (p.transactionId !== undefined) ev.transactionId = String(p.transactionId);
      const tag = str(p.idTag);
      if (tag) ev.idTag = tag;
      if (typeof p.meterStop === 'number') ev.meterWh = p.meterStop;
      const reason = str(p.reason);
      if (reason) ev.reason = reason;
      return [ev];
    }
    case 'MeterValues': {
      const ts =
        Array.isArray(p.meterValue) && isRecord(p.meterValue[0]) ? p.meterValue[0].timestamp : undefined;
      const ev = base(who, 'meter', parseTs(ts, who.now));
      ev.connectorId = int(p.connectorId) ?? 0;
      if (p.transactionId !== undefined) ev.transactionId = String(p.transactionId);
      return [withMeter(ev, readSampledValues(p.meterValue))];
    }
    default:
      return [];
  }
}

/** OCPP 2.0.1 call → canonical events. */
export function fromOcpp201(who: Who, action: string, params: unknown): ChargerEvent[] {
  const p = isRecord(params) ? params : {};
  switch (action) {
    case 'BootNotification': {
      const ev = base(who, 'boot');
      const station = isRecord(p.chargingStation) ? p.chargingStation : {};
      const vendor = str(station.vendorName);
      const model = str(station.model);
      const firmware = str(station.firmwareVersion);
      if (vendor) ev.vendor = vendor;
      if (model) ev.model = model;
      if (firmware) ev.firmware = firmware;
      const reason = str(p.reason);
      if (reason) ev.reason = reason;
      return [ev];
    }
    case 'Heartbeat':
      return [base(who, 'heartbeat')];
    case 'StatusNotification': {
      const ev = base(who, 'status', parseTs(p.timestamp, who.now));
      ev.connectorId = int(p.evseId) ?? 0;
      ev.status = STATUS_201[String(p.connectorStatus)] ?? 'unavailable';
      return [ev];
    }
    case 'Authorize': {
      const ev = base(who, 'authorize');
      const tag = isRecord(p.idToken) ? str(p.idToken.idToken) : undefined;
      if (tag) ev.idTag = tag;
      return [ev];
    }
    case 'TransactionEvent': {
      const kind = String(p.eventType);
      const type: ChargerEventType =
        kind === 'Started'
          ? 'transaction-started'
          : kind === 'Ended'
            ? 'transaction-ended'
            : 'transaction-updated';
      const ev = base(who, type, parseTs(p.timestamp, who.now));
      const info = isRecord(p.transactionInfo) ? p.transactionInfo : {};
      const id = str(info.transactionId);
      if (id) ev.transactionId = id;
      const evse = isRecord(p.evse) ? int(p.evse.id) : undefined;
      if (evse !== undefined) ev.connectorId = evse;
      const tag = isRecord(p.idToken) ? str(p.idToken.idToken) : undefined;
      if (tag) ev.idTag = tag;
      const state = str(info.chargingState);
      if (state && CHARGING_STATE_201[state]) ev.status = CHARGING_STATE_201[state];
      const reason =
        str(info.stoppedReason) ?? (type === 'transaction-ended' ? str(p.triggerReason) : undefined);
      if (reason) ev.reason = reason;
      return [withMeter(ev, readSampledValues(p.meterValue))];
    }
    case 'MeterValues': {
      const ts =
        Array.isArray(p.meterValue) && isRecord(p.meterValue[0]) ? p.meterValue[0].timestamp : undefined;
      const ev = base(who, 'meter', parseTs(ts, who.now));
      ev.connectorId = int(p.evseId) ?? 0;
      return [withMeter(ev, readSampledValues(p.meterValue))];
    }
    default:
      return [];
  }
}

export function fromOcpp(who: Who, action: string, params: unknown): ChargerEvent[] {
  return who.protocol === 'ocpp1.6' ? fromOcpp16(who, action, params) : fromOcpp201(who, action, params);
}

/** Actions a charge point may call on the central system, per protocol (everything else: NotImplemented). */
export const INBOUND_ACTIONS: Readonly<Record<OcppProtocol, readonly string[]>> = {
  'ocpp1.6': [
    'BootNotification',
    'Heartbeat',
    'StatusNotification',
    'Authorize',
    'StartTransaction',
    'StopTransaction',
    'MeterValues',
    'DataTransfer',
    'DiagnosticsStatusNotification',
    'FirmwareStatusNotification',
  ],
  'ocpp2.0.1': [
    'BootNotification',
    'Heartbeat',
    'StatusNotification',
    'Authorize',
    'TransactionEvent',
    'MeterValues',
    'DataTransfer',
    'FirmwareStatusNotification',
    'NotifyEvent',
    'NotifyReport',
    'SecurityEventNotification',
    'LogStatusNotification',
  ],
};
