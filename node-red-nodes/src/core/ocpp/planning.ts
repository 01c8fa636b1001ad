/**
 * Site policies, pure: sharing a site power limit over active sessions (→ charging profiles), and
 * freeze protection with hysteresis.
 */
import { openTransactions, type CentralState } from './chargePoint';
import type { ChargerCommand } from './commands';

export interface ActiveSession {
  cp: string;
  connectorId: number;
  transactionId: string;
  /** What this charger/EV can take at most, W (default: unlimited). */
  maxW?: number;
}

export interface Allocation extends ActiveSession {
  limitW: number;
}

export interface LoadPlanOptions {
  /** Below this a session cannot charge (IEC 61851: 6 A; 1,380 W single-phase at 230 V). */
  minW?: number;
}

export const DEFAULT_MIN_W = 1380;

/**
 * Divide `limitW` over the sessions: equal shares, capped by each session's maximum, the surplus
 * of capped sessions shared again (water filling). When shares fall below `minW`, the oldest
 * sessions (first in the list) keep `minW` and the rest are paused (0 W). The sum never exceeds the limit.
 */
export function planSiteLoad(
  limitW: number,
  sessions: readonly ActiveSession[],
  options: LoadPlanOptions = {},
): { allocations: Allocation[]; totalW: number; paused: number } {
  const minW = options.minW ?? DEFAULT_MIN_W;
  const limit = Number.isFinite(limitW) && limitW > 0 ? limitW : 0;
  // How many sessions can run at minW at once.
  const fit = minW > 0 ? Math.floor(limit / minW) : sessions.length;
  const running = sessions.slice(0, Math.min(sessions.length, fit));
  const share = new Map<number, number>();
  let left = limit;
  let open = running.map((_, i) => i);
  while (open.length > 0 && left > 1e-9) {
    const each = left / open.length;
    const stillOpen: number[] = [];
    let used = 0;
    for (const i of open) {
      const cap = running[i]?.maxW ?? Infinity;
      const have = share.get(i) ?? 0;
      const give = Math.min(each, cap - have);
      share.set(i, have + give);
      used += give;
      if (have + give < cap - 1e-9) stillOpen.push(i);
    }
    left -= used;
    if (stillOpen.length === open.length) break; // nobody capped: the split is final
    open = stillOpen;
  }
  // Whole watts, rounded down, so rounding never pushes the total over the limit.
  const allocations: Allocation[] = sessions.map((s, i) => ({
    ...s,
    limitW: i < running.length ? Math.floor(share.get(i) ?? 0) : 0,
  }));
  const totalW = allocations.reduce((a, b) => a + b.limitW, 0);
  return { allocations, totalW, paused: sessions.length - running.length };
}

/** The profile commands of a plan (TxProfile per transaction). */
export function planCommands(allocations: readonly Allocation[]): ChargerCommand[] {
  return allocations.map((a) => ({
    command: 'profile',
    cp: a.cp,
    connectorId: a.connectorId,
    limitW: a.limitW,
    purpose: 'TxProfile',
    transactionId: a.transactionId,
  }));
}

export type FreezeState = 'normal' | 'frozen';

export interface FreezePolicy {
  /** Halt below this temperature, °C. */
  haltBelowC: number;
  /** Resume only at or above this (> haltBelowC), °C: the hysteresis band. */
  resumeAtC: number;
}

export const DEFAULT_FREEZE: FreezePolicy = { haltBelowC: 0, resumeAtC: 2 };

/** Next freeze state for a temperature reading; readings that are not numbers change nothing. */
export function freezeDecision(
  state: FreezeState,
  temperatureC: unknown,
  policy: FreezePolicy = DEFAULT_FREEZE,
): { state: FreezeState; changed: boolean } {
  if (typeof temperatureC !== 'number' || !Number.isFinite(temperatureC)) return { state, changed: false };
  if (state === 'normal' && temperatureC < policy.haltBelowC) return { state: 'frozen', changed: true };
  if (state === 'frozen' && temperatureC >= policy.resumeAtC) return { state: 'normal', changed: true };
  return { state, changed: false };
}

export function checkFreezePolicy(p: FreezePolicy): FreezePolicy {
  if (!Number.isFinite(p.haltBelowC) || !Number.isFinite(p.resumeAtC))
    throw new Error('freeze thresholds must be numbers');
  if (p.resumeAtC <= p.haltBelowC)
    throw new Error(
      `resume temperature (${p.resumeAtC} °C) must be above the halt temperature (${p.haltBelowC} °C)`,
    );
  return p;
}

/**
 * The profile commands that changed since the previous plan (`cp#transactionId` → W), split so the
 * caller sends the cuts before the raises: the site stays under its limit while profiles are in flight.
 */
export function planChanges(
  previous: ReadonlyMap<string, number>,
  allocations: readonly Allocation[],
): { next: Map<string, number>; lower: ChargerCommand[]; raise: ChargerCommand[] } {
  const key = (cp: string, tx: string | undefined): string => `${cp}#${tx ?? ''}`;
  const next = new Map(allocations.map((a) => [key(a.cp, a.transactionId), a.limitW]));
  const lower: ChargerCommand[] = [];
  const raise: ChargerCommand[] = [];
  for (const cmd of planCommands(allocations)) {
    if (cmd.command !== 'profile') continue;
    const before = previous.get(key(cmd.cp, cmd.transactionId));
    if (before === cmd.limitW) continue;
    (cmd.limitW < (before ?? Infinity) ? lower : raise).push(cmd);
  }
  return { next, lower, raise };
}

/**
 * What freeze protection sends to the given charge points: halting stops their open sessions and
 * sets them Inoperative; resuming sets them Operative again, except those in maintenance.
 */
export function freezeCommands(
  state: CentralState,
  cps: readonly string[],
  to: FreezeState,
): ChargerCommand[] {
  const out: ChargerCommand[] = [];
  for (const cp of cps) {
    if (to === 'frozen') {
      for (const t of openTransactions(state, cp)) out.push({ command: 'stop', cp, transactionId: t.id });
      out.push({ command: 'availability', cp, operative: false });
    } else if (!state.chargePoints[cp]?.maintenance) {
      out.push({ command: 'availability', cp, operative: true });
    }
  }
  return out;
}

/** An evtwin-charger scope (`site`, `site/*`, `site/cp`, comma or space separated; empty: all). */
export interface ChargerScope {
  /** Stable key of the scope (freeze state is kept per scope): `*` for all. */
  key: string;
  has(cp: string): boolean;
}

export function parseScope(text: string | undefined): ChargerScope {
  const items = (text ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return {
    key: items.length === 0 ? '*' : [...items].sort().join(','),
    has: (cp) => {
      if (items.length === 0) return true;
      const site = cp.split('/')[0] ?? '';
      return items.some((s) => s === cp || s === site || s === `${site}/*`);
    },
  };
}

/** The open sessions load management shares the limit over: in scope, reachable, oldest first. */
export function plannedSessions(
  state: CentralState,
  reachable: readonly string[],
  inScope: (cp: string) => boolean,
): ActiveSession[] {
  return openTransactions(state)
    .filter((t) => inScope(t.cp) && reachable.includes(t.cp))
    .sort((a, b) => a.startedAt - b.startedAt)
    .map((t) => ({ cp: t.cp, connectorId: t.connectorId, transactionId: t.id }));
}
