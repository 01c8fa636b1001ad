/**
 * Which flags become events (pure): a fault that lasts an hour is one event when it starts, a
 * reminder every `repeatMs` while it lasts, and a new one when it gets worse; not one per reading.
 */
import type { Point } from '../lineProtocol';
import type { Reading } from '../reading';
import type { Flag, FlagType, SeverityLevel } from './rules';
import type { ScoreResult } from './scorer';

export interface EventGateOptions {
  /** While a flag of a type stays active, repeat its event at most this often. */
  repeatMs: number;
  /** A type not seen for this long is over: its next flag is a new event. */
  clearMs: number;
}

export const DEFAULT_EVENT_GATE: EventGateOptions = { repeatMs: 10 * 60_000, clearMs: 2 * 60_000 };

interface Open {
  lastSeen: number;
  lastEmitted: number;
  level: SeverityLevel;
}

const RANK: Record<SeverityLevel, number> = { info: 0, warning: 1, critical: 2 };

export class EventGate {
  private readonly open = new Map<string, Open>();
  constructor(private readonly opts: EventGateOptions = DEFAULT_EVENT_GATE) {}

  /** The flags of one reading of one asset that should be emitted as events now. */
  filter(assetKey: string, ts: number, flags: readonly Flag[]): Flag[] {
    const out: Flag[] = [];
    const seen = new Set<FlagType>();
    for (const f of flags) {
      if (seen.has(f.type)) continue; // most severe first: one event per type and reading
      seen.add(f.type);
      const key = `${assetKey}|${f.type}`;
      const o = this.open.get(key);
      const isNew = !o || ts - o.lastSeen > this.opts.clearMs;
      const worse = o !== undefined && RANK[f.level] > RANK[o.level];
      if (isNew || worse || ts - (o?.lastEmitted ?? 0) >= this.opts.repeatMs) {
        out.push(f);
        this.open.set(key, { lastSeen: ts, lastEmitted: ts, level: f.level });
      } else o.lastSeen = ts;
    }
    return out;
  }

  /** Forget assets (for example after a restart of their state). */
  clear(): void {
    this.open.clear();
  }
}

/** The `scores` point of one scored reading (schema in core/lineProtocol.ts). */
export function scorePoint(r: Reading, s: ScoreResult): Point {
  return {
    measurement: 'scores',
    tags: { site: r.site, line: r.line, asset: r.asset, kind: r.kind },
    fields: { score: s.score, health: s.health, failure_risk: s.failureRisk, anomaly: s.anomaly },
    ts: r.ts,
  };
}

/** The `events` point of one flag. */
export function eventPoint(r: Reading, f: Flag): Point {
  return {
    measurement: 'events',
    tags: { site: r.site, line: r.line, asset: r.asset, kind: r.kind, type: f.type, severity: f.level },
    fields: { message: f.message, metric: f.metric, observed: f.observed, expected: f.expected },
    ts: r.ts,
  };
}

/** An alert message for MQTT `evtwin/v1/{site}/alerts` (core/topics.ts alertsTopic). */
export interface Alert {
  site: string;
  line?: string;
  asset: string;
  kind: string;
  ts: number;
  type: FlagType;
  severity: SeverityLevel;
  /** 0..1. */
  score: number;
  metric: string;
  observed: number;
  expected: number;
  message: string;
}

export function alertOf(r: Reading, f: Flag): Alert {
  const a: Alert = {
    site: r.site,
    asset: r.asset,
    kind: r.kind,
    ts: r.ts,
    type: f.type,
    severity: f.level,
    score: f.severity,
    metric: f.metric,
    observed: f.observed,
    expected: f.expected,
    message: f.message,
  };
  if (r.line !== undefined) a.line = r.line;
  return a;
}
