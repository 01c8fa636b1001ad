/** What the audit log records, and the one interface every part that audits writes to. */
export type AuditOutcome = 'ok' | 'denied' | 'error';

export interface AuditEvent {
  /** Epoch ms. */
  ts: number;
  /** Who: a user login, `device:<site>/<asset>`, `node:<id>` or `system`. */
  actor: string;
  /** What, dotted: `registry.register`, `registry.revoke`, `user.login`, `auth.reject`, `charger.command`, … */
  action: string;
  /** On what: a device, user, charge point. */
  target?: string;
  outcome: AuditOutcome;
  /** Short facts, never secrets (no tokens, keys or passwords). */
  detail?: Record<string, string | number | boolean>;
}

export interface AuditSink {
  record(event: AuditEvent): void;
}
