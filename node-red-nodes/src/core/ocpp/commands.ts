/**
 * Commands to charge points: one canonical shape, validated, and its OCPP 1.6 / 2.0.1 call
 * (action + payload, valid against each protocol's JSON schema).
 */
import type { OcppProtocol } from './events';

export type TriggerableMessage = 'BootNotification' | 'StatusNotification' | 'Heartbeat' | 'MeterValues';
export const TRIGGERABLE: readonly TriggerableMessage[] = [
  'BootNotification',
  'StatusNotification',
  'Heartbeat',
  'MeterValues',
];

export interface ProfileSpec {
  /** Power limit, W. */
  limitW: number;
  /** Default TxProfile when a transaction is named, else TxDefaultProfile. */
  purpose?: 'TxProfile' | 'TxDefaultProfile' | 'ChargePointMaxProfile';
  transactionId?: string;
  profileId?: number;
  stackLevel?: number;
}

export type ChargerCommand =
  | {
      command: 'start';
      cp: string;
      connectorId?: number;
      idTag: string;
      profile?: ProfileSpec;
      /** A driver's request: the central system stops the session after this energy or time. */
      until?: SessionLimit;
    }
  | { command: 'stop'; cp: string; transactionId: string }
  | { command: 'availability'; cp: string; connectorId?: number; operative: boolean }
  | ({ command: 'profile'; cp: string; connectorId: number } & ProfileSpec)
  | { command: 'reset'; cp: string; hard?: boolean }
  | { command: 'unlock'; cp: string; connectorId: number }
  | { command: 'trigger'; cp: string; message: TriggerableMessage; connectorId?: number };

/** When a requested charge ends (kWh delivered or seconds elapsed, whichever comes first). */
export interface SessionLimit {
  kWh?: number;
  durationS?: number;
}

export type CommandName = ChargerCommand['command'];
export const COMMANDS: readonly CommandName[] = [
  'start',
  'stop',
  'availability',
  'profile',
  'reset',
  'unlock',
  'trigger',
];

/** OCPP action names accepted as aliases of the canonical command names. */
const ALIASES: Record<string, CommandName> = {
  RemoteStartTransaction: 'start',
  RequestStartTransaction: 'start',
  RemoteStopTransaction: 'stop',
  RequestStopTransaction: 'stop',
  ChangeAvailability: 'availability',
  SetChargingProfile: 'profile',
  Reset: 'reset',
  UnlockConnector: 'unlock',
  TriggerMessage: 'trigger',
};

export class CommandError extends Error {
  override name = 'CommandError';
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function posInt(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
    throw new CommandError(`"${what}" must be an integer >= ${min}`);
  return v;
}

function nonEmpty(v: unknown, what: string, max = 36): string {
  if (typeof v === 'number' && Number.isInteger(v)) return String(v);
  if (typeof v !== 'string' || v === '' || v.length > max)
    throw new CommandError(`"${what}" must be a non-empty string of at most ${max} characters`);
  return v;
}

function profileSpec(p: Record<string, unknown>): ProfileSpec {
  if (typeof p.limitW !== 'number' || !Number.isFinite(p.limitW) || p.limitW < 0)
    throw new CommandError('"limitW" must be a non-negative number of watts');
  const out: ProfileSpec = { limitW: p.limitW };
  if (p.purpose !== undefined) {
    if (
      p.purpose !== 'TxProfile' &&
      p.purpose !== 'TxDefaultProfile' &&
      p.purpose !== 'ChargePointMaxProfile'
    )
      throw new CommandError('"purpose" must be TxProfile, TxDefaultProfile or ChargePointMaxProfile');
    out.purpose = p.purpose;
  }
  if (p.transactionId !== undefined) out.transactionId = nonEmpty(p.transactionId, 'transactionId');
  if (p.profileId !== undefined) out.profileId = posInt(p.profileId, 'profileId', 1);
  if (p.stackLevel !== undefined) out.stackLevel = posInt(p.stackLevel, 'stackLevel');
  return out;
}

function sessionLimit(v: unknown): SessionLimit {
  if (!isRecord(v)) throw new CommandError('"until" must be an object {kWh?, durationS?}');
  const out: SessionLimit = {};
  for (const k of ['kWh', 'durationS'] as const) {
    const x = v[k];
    if (x === undefined) continue;
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0)
      throw new CommandError(`"until.${k}" must be a positive number`);
    out[k] = x;
  }
  if (out.kWh === undefined && out.durationS === undefined)
    throw new CommandError('"until" needs kWh or durationS');
  return out;
}

/** A command from a message (`{command, cp, ...}`); throws CommandError naming what is wrong. */
export function parseCommand(value: unknown, defaultCp?: string): ChargerCommand {
  if (!isRecord(value)) throw new CommandError('a command must be an object {command, cp, ...}');
  const name = typeof value.command === 'string' ? (ALIASES[value.command] ?? value.command) : undefined;
  if (!name || !COMMANDS.includes(name as CommandName))
    throw new CommandError(`"command" must be one of ${COMMANDS.join(', ')} (or an OCPP action name)`);
  const cp = value.cp ?? defaultCp;
  if (typeof cp !== 'string' || !/^[^/]+\/[^/]+$/.test(cp))
    throw new CommandError('"cp" must be a charge point id "<site>/<asset>"');
  const connector = (required: boolean): number | undefined =>
    value.connectorId === undefined
      ? required
        ? posInt(undefined, 'connectorId', 1)
        : undefined
      : posInt(value.connectorId, 'connectorId');
  switch (name as CommandName) {
    case 'start': {
      const cmd: ChargerCommand = { command: 'start', cp, idTag: nonEmpty(value.idTag, 'idTag', 20) };
      const c = connector(false);
      if (c !== undefined) cmd.connectorId = posInt(c, 'connectorId', 1);
      if (value.profile !== undefined) {
        if (!isRecord(value.profile)) throw new CommandError('"profile" must be an object {limitW}');
        cmd.profile = profileSpec(value.profile);
      }
      if (value.until !== undefined) cmd.until = sessionLimit(value.until);
      return cmd;
    }
    case 'stop':
      return { command: 'stop', cp, transactionId: nonEmpty(value.transactionId, 'transactionId') };
    case 'availability': {
      if (typeof value.operative !== 'boolean') throw new CommandError('"operative" must be true or false');
      const cmd: ChargerCommand = { command: 'availability', cp, operative: value.operative };
      const c = connector(false);
      if (c !== undefined) cmd.connectorId = c;
      return cmd;
    }
    case 'profile':
      return { command: 'profile', cp, connectorId: connector(true) ?? 1, ...profileSpec(value) };
    case 'reset': {
      if (value.hard !== undefined && typeof value.hard !== 'boolean')
        throw new CommandError('"hard" must be true or false');
      return value.hard === undefined ? { command: 'reset', cp } : { command: 'reset', cp, hard: value.hard };
    }
    case 'unlock':
      return { command: 'unlock', cp, connectorId: connector(true) ?? 1 };
    case 'trigger': {
      if (!TRIGGERABLE.includes(value.message as TriggerableMessage))
        throw new CommandError(`"message" must be one of ${TRIGGERABLE.join(', ')}`);
      const cmd: ChargerCommand = { command: 'trigger', cp, message: value.message as TriggerableMessage };
      const c = connector(false);
      if (c !== undefined) cmd.connectorId = c;
      return cmd;
    }
  }
}

export interface OcppCall {
  action: string;
  payload: Record<string, unknown>;
}

/** The id every remote start uses for 2.0.1's remoteStartId and for profile ids when none is given. */
export interface CallIds {
  remoteStartId?: number;
  profileId?: number;
}

function profile16(spec: ProfileSpec, id: number): Record<string, unknown> {
  const purpose = spec.purpose ?? (spec.transactionId ? 'TxProfile' : 'TxDefaultProfile');
  const p: Record<string, unknown> = {
    chargingProfileId: spec.profileId ?? id,
    stackLevel: spec.stackLevel ?? 0,
    chargingProfilePurpose: purpose,
    chargingProfileKind: 'Relative',
    chargingSchedule: {
      chargingRateUnit: 'W',
      chargingSchedulePeriod: [{ startPeriod: 0, limit: Math.round(spec.limitW * 10) / 10 }],
    },
  };
  if (purpose === 'TxProfile' && spec.transactionId && /^\d+$/.test(spec.transactionId))
    p.transactionId = Number(spec.transactionId);
  return p;
}

function profile201(spec: ProfileSpec, id: number): Record<string, unknown> {
  const purpose =
    spec.purpose === 'ChargePointMaxProfile'
      ? 'ChargingStationMaxProfile'
      : (spec.purpose ?? (spec.transactionId ? 'TxProfile' : 'TxDefaultProfile'));
  const p: Record<string, unknown> = {
    id: spec.profileId ?? id,
    stackLevel: spec.stackLevel ?? 0,
    chargingProfilePurpose: purpose,
    chargingProfileKind: 'Relative',
    chargingSchedule: [
      {
        id: spec.profileId ?? id,
        chargingRateUnit: 'W',
        chargingSchedulePeriod: [{ startPeriod: 0, limit: Math.round(spec.limitW * 10) / 10 }],
      },
    ],
  };
  if (purpose === 'TxProfile' && spec.transactionId) p.transactionId = spec.transactionId;
  return p;
}

/** The OCPP call for a command, in the charge point's protocol. */
export function toOcppCall(cmd: ChargerCommand, protocol: OcppProtocol, ids: CallIds = {}): OcppCall {
  const v16 = protocol === 'ocpp1.6';
  const profileId = ids.profileId ?? 1;
  switch (cmd.command) {
    case 'start': {
      if (v16) {
        const payload: Record<string, unknown> = { idTag: cmd.idTag };
        if (cmd.connectorId !== undefined) payload.connectorId = cmd.connectorId;
        if (cmd.profile)
          payload.chargingProfile = profile16({ ...cmd.profile, purpose: 'TxProfile' }, profileId);
        return { action: 'RemoteStartTransaction', payload };
      }
      const payload: Record<string, unknown> = {
        idToken: { idToken: cmd.idTag, type: 'Central' },
        remoteStartId: ids.remoteStartId ?? 1,
      };
      if (cmd.connectorId !== undefined) payload.evseId = cmd.connectorId;
      if (cmd.profile)
        payload.chargingProfile = profile201({ ...cmd.profile, purpose: 'TxProfile' }, profileId);
      return { action: 'RequestStartTransaction', payload };
    }
    case 'stop':
      if (v16) {
        if (!/^\d+$/.test(cmd.transactionId))
          throw new CommandError(`OCPP 1.6 transaction ids are integers, got "${cmd.transactionId}"`);
        return { action: 'RemoteStopTransaction', payload: { transactionId: Number(cmd.transactionId) } };
      }
      return { action: 'RequestStopTransaction', payload: { transactionId: cmd.transactionId } };
    case 'availability': {
      const type = cmd.operative ? 'Operative' : 'Inoperative';
      if (v16) return { action: 'ChangeAvailability', payload: { connectorId: cmd.connectorId ?? 0, type } };
      const payload: Record<string, unknown> = { operationalStatus: type };
      if (cmd.connectorId) payload.evse = { id: cmd.connectorId };
      return { action: 'ChangeAvailability', payload };
    }
    case 'profile': {
      const { command: _c, cp: _cp, connectorId, ...spec } = cmd;
      return v16
        ? {
            action: 'SetChargingProfile',
            payload: { connectorId, csChargingProfiles: profile16(spec, profileId) },
          }
        : {
            action: 'SetChargingProfile',
            payload: { evseId: connectorId, chargingProfile: profile201(spec, profileId) },
          };
    }
    case 'reset':
      return v16
        ? { action: 'Reset', payload: { type: cmd.hard ? 'Hard' : 'Soft' } }
        : { action: 'Reset', payload: { type: cmd.hard ? 'Immediate' : 'OnIdle' } };
    case 'unlock':
      return v16
        ? { action: 'UnlockConnector', payload: { connectorId: cmd.connectorId } }
        : { action: 'UnlockConnector', payload: { evseId: cmd.connectorId, connectorId: 1 } };
    case 'trigger': {
      const payload: Record<string, unknown> = { requestedMessage: cmd.message };
      if (cmd.connectorId !== undefined) {
        if (v16) payload.connectorId = cmd.connectorId;
        else payload.evse = { id: cmd.connectorId };
      }
      return { action: 'TriggerMessage', payload };
    }
  }
}

/** Did the charger accept? (`Accepted`, `Unlocked`, `Scheduled` count as yes.) */
export function commandAccepted(response: unknown): boolean {
  const status = isRecord(response) ? response.status : undefined;
  return status === 'Accepted' || status === 'Unlocked' || status === 'Scheduled';
}
