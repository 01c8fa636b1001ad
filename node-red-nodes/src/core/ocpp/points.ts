/** Charger events → InfluxDB points of measurements `charger` and `sessions` (core/lineProtocol.ts SCHEMA). */
import type { FieldValue, Point } from '../lineProtocol';
import { chargePointStatus, energyWh, type CentralState } from './chargePoint';
import type { ChargerEvent } from './events';

const SESSION_STATE: Partial<Record<ChargerEvent['type'], string>> = {
  'transaction-started': 'started',
  'transaction-updated': 'updated',
  meter: 'updated',
  'transaction-ended': 'ended',
};

/** The points one applied event makes, given the central state after it. */
export function chargerPoints(ev: ChargerEvent, state: CentralState): Point[] {
  const rec = state.chargePoints[ev.cp];
  if (!rec || ev.type === 'heartbeat' || ev.type === 'authorize') return [];
  const points: Point[] = [];
  const status = chargePointStatus(rec);
  const fields: Record<string, FieldValue> = { online: rec.online, event: ev.type };
  if (ev.connectorId !== undefined) fields.connector = ev.connectorId;
  if (ev.connectorId !== undefined) {
    const c = rec.connectors[String(ev.connectorId)];
    if (c) fields.connector_status = c.status;
  }
  if (ev.errorCode) fields.error_code = ev.errorCode;
  if (ev.powerW !== undefined) fields.power_w = ev.powerW;
  if (ev.meterWh !== undefined) fields.meter_wh = ev.meterWh;
  points.push({ measurement: 'charger', tags: { site: rec.site, cp: rec.asset, status }, fields, ts: ev.ts });

  const sessionState = SESSION_STATE[ev.type];
  const tx = ev.transactionId ? state.transactions[ev.transactionId] : undefined;
  if (sessionState && tx) {
    const f: Record<string, FieldValue> = {
      transaction_id: tx.id,
      connector: tx.connectorId,
      meter_start_wh: tx.meterStartWh,
      meter_wh: tx.meterWh,
      energy_wh: energyWh(tx),
      duration_s: Math.max(0, ((tx.stoppedAt ?? ev.ts) - tx.startedAt) / 1000),
    };
    if (tx.idTag) f.id_tag = tx.idTag;
    if (tx.powerW !== undefined && tx.stoppedAt === undefined) f.power_w = tx.powerW;
    if (tx.reason) f.reason = tx.reason;
    points.push({
      measurement: 'sessions',
      tags: { site: rec.site, cp: rec.asset, state: sessionState },
      fields: f,
      ts: ev.ts,
    });
  }
  return points;
}
