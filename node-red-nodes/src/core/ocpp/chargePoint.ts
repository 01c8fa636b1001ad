/**
 * The central system's view of every charge point, pure: state + canonical event in, new state (and
 * derived events) out. Connector state machine, transactions with meter start/stop and energy,
 * offline detection by missed heartbeats, and the OCPP responses the central system answers with.
 * Persisted as JSON by the runtime (runtime/ocppServer.ts).
 */
import { fromOcpp, type ChargerEvent, type ConnectorStatus, type OcppProtocol, type Who } from './events';

export interface ConnectorState {
  status: ConnectorStatus;
  since: number;
  errorCode?: string;
  transactionId?: string;
}

export interface Transaction {
  id: string;
  cp: string;
  connectorId: number;
  idTag?: string;
  startedAt: number;
  meterStartWh: number;
  /** Latest energy register seen (start, meter values, stop). */
  meterWh: number;
  powerW?: number;
  stoppedAt?: number;
  meterStopWh?: number;
  reason?: string;
  /** Stop conditions of a driver's request (start command `until`): energy, Wh, and/or a deadline. */
  until?: { energyWh?: number; stopAt?: number };
}

export interface ChargePointRecord {
  id: string;
  site: string;
  asset: string;
  protocol?: OcppProtocol;
  /** How it talks: OCPP over WebSocket (default) or MQTT (mqtt.ts); commands follow it. */
  transport?: 'ocpp' | 'mqtt';
  /** WebSocket open. */
  connected: boolean;
  /** Connected and heard from within the heartbeat allowance. */
  online: boolean;
  lastSeen: number;
  bootedAt?: number;
  vendor?: string;
  model?: string;
  firmware?: string;
  /** Set by ChangeAvailability commands the charger accepted (connector 0 = whole charge point). */
  inoperative: boolean;
  /** Maintenance flag set by a flow: freeze protection will not bring it back. */
  maintenance: boolean;
  connectors: Record<string, ConnectorState>;
}

export interface CentralState {
  format: 'evtwin-ocpp';
  version: 1;
  chargePoints: Record<string, ChargePointRecord>;
  /** Open transactions by id, and the most recent closed ones (bounded). */
  transactions: Record<string, Transaction>;
  /** Next integer id for OCPP 1.6 StartTransaction. */
  nextTxId: number;
  /** Freeze protection per evtwin-charger scope, so a restart while frozen stays frozen. */
  freeze?: Record<string, FreezeRecord>;
}

export interface FreezeRecord {
  state: 'normal' | 'frozen';
  since: number;
  temperatureC: number;
}

export const emptyCentralState = (): CentralState => ({
  format: 'evtwin-ocpp',
  version: 1,
  chargePoints: {},
  transactions: {},
  nextTxId: 1,
});

/** Closed transactions kept in state (the rest live in InfluxDB `sessions`). */
export const CLOSED_TX_KEPT = 200;

export interface HeartbeatPolicy {
  intervalS: number;
  /** Offline after this many missed intervals. */
  missed: number;
}

export const DEFAULT_HEARTBEAT: HeartbeatPolicy = { intervalS: 60, missed: 3 };

export function recordFor(state: CentralState, cp: string, site: string, asset: string): ChargePointRecord {
  return (
    state.chargePoints[cp] ?? {
      id: cp,
      site,
      asset,
      connected: false,
      online: false,
      lastSeen: 0,
      inoperative: false,
      maintenance: false,
      connectors: {},
    }
  );
}

/** One status for the whole charge point, for dashboards and the `charger` measurement. */
export function chargePointStatus(r: ChargePointRecord): ConnectorStatus {
  if (!r.online) return 'offline';
  const statuses = Object.entries(r.connectors)
    .filter(([k]) => k !== '0')
    .map(([, c]) => c.status);
  const whole = r.connectors['0']?.status;
  if (whole === 'faulted' || whole === 'unavailable') return whole;
  for (const s of ['charging', 'suspended', 'finishing', 'preparing', 'faulted', 'reserved'] as const)
    if (statuses.includes(s)) return s;
  if (statuses.length > 0 && statuses.every((s) => s === 'unavailable')) return 'unavailable';
  return r.inoperative ? 'unavailable' : 'available';
}

export const openTransactions = (state: CentralState, cp?: string): Transaction[] =>
  Object.values(state.transactions).filter(
    (t) => t.stoppedAt === undefined && (cp === undefined || t.cp === cp),
  );

/** Ids of the oldest closed transactions beyond CLOSED_TX_KEPT once `closing` is closed too. */
function closedToDrop(tx: Record<string, Transaction>, closing: string): string[] {
  const closed = Object.values(tx).filter((t) => t.stoppedAt !== undefined && t.id !== closing);
  if (closed.length + 1 <= CLOSED_TX_KEPT) return [];
  closed.sort((a, b) => (a.stoppedAt ?? 0) - (b.stoppedAt ?? 0));
  return closed.slice(0, closed.length + 1 - CLOSED_TX_KEPT).map((t) => t.id);
}

/**
 * What one event changes: the charge point's record, the transactions touched, the ids dropped.
 * Applying it is `commit`'s job: a copy (pure, the default) or in place (the runtime owns its state,
 * and copying maps of thousands of charge points per event would cost more than the event).
 */
export interface Patch {
  chargePoint: ChargePointRecord;
  transactions: Transaction[];
  drop: string[];
  nextTxId: number;
}
export type Commit = (state: CentralState, patch: Patch) => CentralState;

export const commitCopy: Commit = (state, p) => {
  const transactions = { ...state.transactions };
  for (const t of p.transactions) transactions[t.id] = t;
  for (const id of p.drop) delete transactions[id];
  return {
    ...state,
    chargePoints: { ...state.chargePoints, [p.chargePoint.id]: p.chargePoint },
    transactions,
    nextTxId: p.nextTxId,
  };
};

/** Mutates `state`: for a shell that owns it (runtime/ocppServer.ts). */
export const commitInPlace: Commit = (state, p) => {
  state.chargePoints[p.chargePoint.id] = p.chargePoint;
  for (const t of p.transactions) state.transactions[t.id] = t;
  for (const id of p.drop) delete state.transactions[id];
  state.nextTxId = p.nextTxId;
  return state;
};

export interface Applied {
  state: CentralState;
  /** The event, completed (assigned transaction id, energy, status) or marked unknown. */
  event: ChargerEvent;
  /** True when a transaction event named a transaction the central system does not know. */
  unknownTransaction?: boolean;
}

/** Apply one canonical event to the central state. */
export function applyEvent(
  state: CentralState,
  event: ChargerEvent,
  receivedAt = event.ts,
  commit: Commit = commitCopy,
): Applied {
  const ev: ChargerEvent = { ...event };
  let rec = {
    ...recordFor(state, ev.cp, ev.site, ev.asset),
    connectors: { ...recordFor(state, ev.cp, ev.site, ev.asset).connectors },
  };
  const touched = new Map<string, Transaction>();
  const txOf = (id: string): Transaction | undefined => touched.get(id) ?? state.transactions[id];
  let drop: string[] = [];
  let nextTxId = state.nextTxId;
  let unknownTransaction = false;
  const now = ev.ts;
  const setConnector = (id: number, patch: Partial<ConnectorState> & { status: ConnectorStatus }): void => {
    const key = String(id);
    const prev = rec.connectors[key];
    const next: ConnectorState = {
      ...(prev ?? {}),
      ...patch,
      since: prev && prev.status === patch.status ? prev.since : now,
    };
    if (patch.errorCode === undefined) delete next.errorCode;
    rec.connectors[key] = next;
  };

  if (ev.type !== 'disconnected' && ev.type !== 'offline' && ev.type !== 'protocol-error') {
    // Arrival time, not the charger's clock (which may drift).
    rec.lastSeen = Math.max(rec.lastSeen, receivedAt);
    rec.online = true;
  }
  if (ev.protocol) rec.protocol = ev.protocol;
  // A charger connected over OCPP that also reports telemetry over MQTT stays an OCPP charger.
  if (ev.transport && !rec.connected) rec.transport = ev.transport;
  else if (ev.protocol) rec.transport = 'ocpp';

  switch (ev.type) {
    case 'connected':
      rec.connected = true;
      rec.online = true;
      break;
    case 'disconnected':
      rec.connected = false;
      rec.online = false;
      ev.status = 'offline';
      break;
    case 'offline':
      rec.online = false;
      ev.status = 'offline';
      break;
    case 'boot':
      rec.bootedAt = now;
      if (ev.vendor) rec.vendor = ev.vendor;
      if (ev.model) rec.model = ev.model;
      if (ev.firmware) rec.firmware = ev.firmware;
      break;
    case 'status':
      if (ev.status) {
        const patch: Partial<ConnectorState> & { status: ConnectorStatus } = { status: ev.status };
        if (ev.errorCode) patch.errorCode = ev.errorCode;
        setConnector(ev.connectorId ?? 0, patch);
      }
      break;
    case 'transaction-started': {
      // 1.6: the central system assigns the id. 2.0.1: the station does; a repeated Started is an update.
      const id = ev.transactionId ?? String(nextTxId++);
      ev.transactionId = id;
      const existing = txOf(id);
      const connectorId = ev.connectorId ?? existing?.connectorId ?? 1;
      ev.connectorId = connectorId;
      const meter = ev.meterWh ?? existing?.meterStartWh ?? 0;
      const tx: Transaction = existing ?? {
        id,
        cp: ev.cp,
        connectorId,
        startedAt: now,
        meterStartWh: meter,
        meterWh: meter,
      };
      if (ev.idTag && !tx.idTag) tx.idTag = ev.idTag;
      if (ev.powerW !== undefined) tx.powerW = ev.powerW;
      touched.set(id, { ...tx });
      setConnector(connectorId, { status: ev.status ?? 'charging', transactionId: id });
      ev.status = ev.status ?? 'charging';
      break;
    }
    case 'transaction-updated':
    case 'meter': {
      let tx = ev.transactionId ? txOf(ev.transactionId) : undefined;
      if (!tx && ev.type === 'meter' && ev.connectorId) {
        // 2.0.1 MeterValues name no transaction: the open one on that EVSE.
        tx = openTransactions(state, ev.cp).find((t) => t.connectorId === ev.connectorId);
        if (tx) ev.transactionId = tx.id;
      }
      if (!tx && ev.type === 'transaction-updated' && ev.transactionId) {
        // An update for a transaction started before we knew it (restart, missed Started): adopt it.
        const meter = ev.meterWh ?? 0;
        tx = {
          id: ev.transactionId,
          cp: ev.cp,
          connectorId: ev.connectorId ?? 1,
          startedAt: now,
          meterStartWh: meter,
          meterWh: meter,
        };
        if (ev.idTag) tx.idTag = ev.idTag;
      }
      if (tx && tx.stoppedAt === undefined) {
        const next: Transaction = { ...tx };
        if (ev.meterWh !== undefined && ev.meterWh >= next.meterWh) next.meterWh = ev.meterWh;
        if (ev.powerW !== undefined) next.powerW = ev.powerW;
        if (ev.idTag && !next.idTag) next.idTag = ev.idTag;
        touched.set(next.id, next);
        ev.connectorId = next.connectorId;
        if (ev.status) setConnector(next.connectorId, { status: ev.status, transactionId: next.id });
      }
      break;
    }
    case 'transaction-ended': {
      const id = ev.transactionId;
      const tx = id ? txOf(id) : undefined;
      if (!tx || tx.stoppedAt !== undefined) {
        unknownTransaction = !tx;
        break;
      }
      const stopWh = ev.meterWh !== undefined && ev.meterWh >= tx.meterStartWh ? ev.meterWh : tx.meterWh;
      const closed: Transaction = { ...tx, stoppedAt: now, meterStopWh: stopWh, meterWh: stopWh };
      delete closed.powerW;
      if (ev.reason) closed.reason = ev.reason;
      touched.set(tx.id, closed);
      drop = closedToDrop(state.transactions, tx.id);
      ev.connectorId = tx.connectorId;
      if (!ev.idTag && tx.idTag) ev.idTag = tx.idTag; // 2.0.1 stations may omit it on Ended
      ev.meterWh = stopWh;
      const c = rec.connectors[String(tx.connectorId)];
      if (c && c.transactionId === tx.id) {
        const { transactionId: _done, ...rest } = c;
        rec.connectors[String(tx.connectorId)] = {
          ...rest,
          status: c.status === 'unavailable' || c.status === 'faulted' ? c.status : 'finishing',
          since: now,
        };
      }
      break;
    }
    default:
      break;
  }
  rec = { ...rec };
  const out: Applied = {
    state: commit(state, { chargePoint: rec, transactions: [...touched.values()], drop, nextTxId }),
    event: ev,
  };
  if (unknownTransaction) out.unknownTransaction = true;
  return out;
}

/** Energy of a transaction so far (or in total once stopped), Wh. */
export const energyWh = (t: Transaction): number => Math.max(0, t.meterWh - t.meterStartWh);

/** Charge points connected but silent for longer than the allowance become `offline`. */
export function sweepHeartbeats(
  state: CentralState,
  now: number,
  policy: HeartbeatPolicy = DEFAULT_HEARTBEAT,
  commit: Commit = commitCopy,
): { state: CentralState; events: ChargerEvent[] } {
  const events: ChargerEvent[] = [];
  let next = state;
  const allowance = policy.intervalS * policy.missed * 1000;
  for (const r of Object.values(state.chargePoints)) {
    if (r.online && now - r.lastSeen > allowance) {
      const applied = applyEvent(
        next,
        {
          type: 'offline',
          cp: r.id,
          site: r.site,
          asset: r.asset,
          ts: now,
          reason: 'missed heartbeats',
        },
        now,
        commit,
      );
      next = applied.state;
      events.push(applied.event);
    }
  }
  return { state: next, events };
}

/** After a restart no connection survives: everything starts offline until it reconnects. */
export function afterRestart(state: CentralState): CentralState {
  const chargePoints: Record<string, ChargePointRecord> = {};
  for (const [id, r] of Object.entries(state.chargePoints))
    chargePoints[id] = { ...r, connected: false, online: false };
  return { ...state, chargePoints };
}

export function validateCentralState(v: unknown): CentralState {
  const s = v as Partial<CentralState> | null;
  if (!s || typeof s !== 'object' || s.format !== 'evtwin-ocpp' || s.version !== 1)
    throw new Error('not an evtwin-ocpp state file (format/version)');
  if (typeof s.chargePoints !== 'object' || s.chargePoints === null) throw new Error('chargePoints missing');
  if (typeof s.transactions !== 'object' || s.transactions === null) throw new Error('transactions missing');
  if (typeof s.nextTxId !== 'number' || !Number.isSafeInteger(s.nextTxId))
    throw new Error('nextTxId missing');
  return s as CentralState;
}

// ---- answering calls ----------------------------------------------------------------------------

export interface IdTagPolicy {
  /** Accepted tags; empty: any tag. */
  accepted: readonly string[];
  blocked: readonly string[];
}

export const authorizeIdTag = (
  tag: string | undefined,
  policy: IdTagPolicy,
): 'Accepted' | 'Blocked' | 'Invalid' => {
  if (!tag) return 'Invalid';
  if (policy.blocked.includes(tag)) return 'Blocked';
  return policy.accepted.length === 0 || policy.accepted.includes(tag) ? 'Accepted' : 'Invalid';
};

export interface CallContext extends Who {
  heartbeatIntervalS: number;
  idTags: IdTagPolicy;
}

export interface Handled extends Applied {
  events: ChargerEvent[];
  response: Record<string, unknown>;
}

/**
 * One call from a charge point, answered: map to canonical events, apply them, and build the OCPP
 * response (which for 1.6 StartTransaction carries the id the central system just assigned).
 */
export function handleCall(
  state: CentralState,
  ctx: CallContext,
  action: string,
  params: unknown,
  commit: Commit = commitCopy,
): Handled {
  const mapped = fromOcpp(ctx, action, params);
  let next = state;
  const events: ChargerEvent[] = [];
  let unknownTransaction = false;
  for (const ev of mapped) {
    const a = applyEvent(next, ev, ctx.now, commit);
    next = a.state;
    events.push(a.event);
    if (a.unknownTransaction) unknownTransaction = true;
  }
  if (mapped.length === 0) {
    // Calls we accept without a state change still count as a sign of life.
    const a = applyEvent(
      next,
      {
        type: 'heartbeat',
        cp: ctx.cp,
        site: ctx.site,
        asset: ctx.asset,
        ts: ctx.now,
        protocol: ctx.protocol,
      },
      ctx.now,
      commit,
    );
    next = a.state;
  }
  const first = events[0];
  const iso = new Date(ctx.now).toISOString();
  const v16 = ctx.protocol === 'ocpp1.6';
  const tagStatus = authorizeIdTag(first?.idTag, ctx.idTags);
  let response: Record<string, unknown> = {};
  switch (action) {
    case 'BootNotification':
      response = { status: 'Accepted', currentTime: iso, interval: ctx.heartbeatIntervalS };
      break;
    case 'Heartbeat':
      response = { currentTime: iso };
      break;
    case 'Authorize':
      response = v16 ? { idTagInfo: { status: tagStatus } } : { idTokenInfo: { status: tagStatus } };
      break;
    case 'StartTransaction':
      response = { transactionId: Number(first?.transactionId), idTagInfo: { status: tagStatus } };
      break;
    case 'StopTransaction':
      // Answered even for an unknown transaction: the charger must be able to empty its queue.
      response = first?.idTag ? { idTagInfo: { status: authorizeIdTag(first.idTag, ctx.idTags) } } : {};
      break;
    case 'TransactionEvent':
      response =
        first?.idTag && first.type === 'transaction-started' ? { idTokenInfo: { status: tagStatus } } : {};
      break;
    case 'DataTransfer':
      response = { status: 'UnknownVendorId' };
      break;
    default:
      response = {};
  }
  const out: Handled = {
    state: next,
    event: first ?? { type: 'heartbeat', cp: ctx.cp, site: ctx.site, asset: ctx.asset, ts: ctx.now },
    events,
    response,
  };
  if (unknownTransaction) out.unknownTransaction = true;
  return out;
}

function patchRecord(state: CentralState, cp: string, patch: Partial<ChargePointRecord>): CentralState {
  const rec = state.chargePoints[cp];
  if (!rec) return state;
  return { ...state, chargePoints: { ...state.chargePoints, [cp]: { ...rec, ...patch } } };
}

/** A ChangeAvailability the charger accepted, for the whole charge point (connector 0 or none). */
export function applyAvailability(state: CentralState, cp: string, operative: boolean): CentralState {
  return patchRecord(state, cp, { inoperative: !operative });
}

/** Attach a driver's stop conditions to a transaction that just started. */
export function limitSession(
  state: CentralState,
  txId: string,
  limit: { kWh?: number; durationS?: number },
  now: number,
): CentralState {
  const t = state.transactions[txId];
  if (!t || t.stoppedAt !== undefined) return state;
  const until: NonNullable<Transaction['until']> = {};
  if (limit.kWh !== undefined) until.energyWh = limit.kWh * 1000;
  if (limit.durationS !== undefined) until.stopAt = now + limit.durationS * 1000;
  return { ...state, transactions: { ...state.transactions, [txId]: { ...t, until } } };
}

/** Open sessions whose driver's limit is reached (energy delivered or deadline passed). */
export function sessionsDue(state: CentralState, now: number, among?: Iterable<string>): Transaction[] {
  const candidates = among
    ? [...among].flatMap((id) => {
        const t = state.transactions[id];
        return t && t.stoppedAt === undefined ? [t] : [];
      })
    : openTransactions(state);
  return candidates.filter(
    (t) =>
      t.until !== undefined &&
      ((t.until.energyWh !== undefined && energyWh(t) >= t.until.energyWh) ||
        (t.until.stopAt !== undefined && now >= t.until.stopAt)),
  );
}

/** Freeze protection's state for one scope (key: the evtwin-charger scope, `*` for all). */
export function setFreeze(state: CentralState, scope: string, rec: FreezeRecord): CentralState {
  return { ...state, freeze: { ...(state.freeze ?? {}), [scope]: rec } };
}

/** Maintenance mode: kept until cleared, so automatic policies (freeze resume) leave the charger alone. */
export function setMaintenance(state: CentralState, cp: string, on: boolean): CentralState {
  return patchRecord(state, cp, { maintenance: on });
}
