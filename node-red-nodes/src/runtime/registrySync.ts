/**
 * One registry shared by several Node-RED instances (and the CLI).
 *
 * Scheme: the registry FILE is the source of truth; every instance must reach the same file (one
 * host, or a shared volume). Whoever changes it (under the lock of registryStore) then publishes,
 * per changed entry, a retained MQTT event on `evtwin/v1/_registry/<site>/<asset>` carrying only
 * public facts: {id, credentialRevision, revokedAt, kids}. No token, no hash, no key on the wire.
 * Every instance subscribes; on an event newer than what it holds it
 * 1. applies a revocation at once, in memory (no file read needed: this is what must take < 1 s),
 * 2. re-reads the file for everything else (new devices, rotated tokens and keys),
 * 3. if the file still lags the event (not shared, or not yet visible), blocks that entry (fail
 *    closed) until a later read catches up.
 * Retained events also tell an instance started later (or reconnecting) what it missed. A poll of
 * the file's mtime is the backstop when the broker is down. `_registry` cannot be a site id (ids
 * start with a letter or digit), so the topics never collide with devices'.
 */
import { statSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import type { AuditEvent, AuditSink } from '../core/auditEvent';
import { indexRegistry, type RegistryEntry, type RegistryIndex, type RegistryState } from '../core/registry';
import { TOPIC_ROOT } from '../core/topics';
import { loadRegistry, updateRegistry } from './registryStore';

export const REGISTRY_EVENT_ROOT = `${TOPIC_ROOT}/_registry`;

export interface RegistryEvent {
  v: 1;
  id: string;
  credentialRevision: number;
  revokedAt?: number;
  /** Key ids still accepted. */
  kids: string[];
  /** Instance that made the change. */
  origin: string;
  at: number;
}

export interface RegistryServiceOptions {
  file: string;
  /** mqtt://host:port; none = single instance (file poll only). */
  brokerUrl?: string;
  mqttUsername?: string;
  mqttPassword?: string;
  instanceId: string;
  pollMs?: number;
  audit?: AuditSink;
  log?: (level: 'info' | 'warn' | 'error', text: string) => void;
}

export function eventFor(e: RegistryEntry, origin: string, now: number): RegistryEvent {
  const ev: RegistryEvent = {
    v: 1,
    id: e.id,
    credentialRevision: e.credentialRevision,
    kids: e.keys.filter((k) => k.key !== '' && (k.acceptUntil ?? Infinity) > now).map((k) => k.kid),
    origin,
    at: now,
  };
  if (e.revokedAt !== undefined) ev.revokedAt = e.revokedAt;
  return ev;
}

function parseEvent(payload: Buffer): RegistryEvent | undefined {
  try {
    const v = JSON.parse(payload.toString()) as Partial<RegistryEvent>;
    if (v.v !== 1 || typeof v.id !== 'string' || typeof v.credentialRevision !== 'number') return undefined;
    if (v.revokedAt !== undefined && typeof v.revokedAt !== 'number') return undefined;
    if (!Array.isArray(v.kids)) return undefined;
    return v as RegistryEvent;
  } catch {
    return undefined;
  }
}

export class RegistryService {
  private state: RegistryState | undefined;
  private idx: RegistryIndex | undefined;
  /** Entries whose remote event is newer than the file we could read: refused until caught up. */
  private readonly blocked = new Map<string, RegistryEvent>();
  private client: MqttClient | undefined;
  private poll: NodeJS.Timeout | undefined;
  private mtime = 0;
  private listeners: ((reason: string) => void)[] = [];
  error: string | undefined;
  /** When the last remote event was applied, and what it was (for tests and the status). */
  lastRemote: { id: string; at: number; appliedAt: number } | undefined;

  constructor(private readonly opts: RegistryServiceOptions) {}

  private log(level: 'info' | 'warn' | 'error', text: string): void {
    this.opts.log?.(level, text);
  }

  /** The current index, or undefined when the registry could not be read (callers fail closed). */
  index(): RegistryIndex | undefined {
    return this.idx;
  }

  onChange(fn: (reason: string) => void): void {
    this.listeners.push(fn);
  }

  async start(): Promise<void> {
    this.reload('start');
    this.poll = setInterval(() => {
      try {
        const m = statSync(this.opts.file).mtimeMs;
        if (m !== this.mtime) this.reload('file changed');
      } catch {
        // No file yet.
      }
    }, this.opts.pollMs ?? 500);
    this.poll.unref();
    if (this.opts.brokerUrl) await this.connect(this.opts.brokerUrl);
  }

  private async connect(url: string): Promise<void> {
    // Loaded lazily: only instances that sync need the mqtt package.
    const { connect } = await import('mqtt');
    const options: Parameters<typeof connect>[1] = {
      protocolVersion: 5,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
    };
    if (this.opts.mqttUsername) options.username = this.opts.mqttUsername;
    if (this.opts.mqttPassword) options.password = this.opts.mqttPassword;
    const client = connect(url, options);
    this.client = client;
    client.on('message', (topic, payload) => {
      try {
        const ev = parseEvent(payload);
        if (ev) this.applyRemote(ev);
        else this.log('warn', `ignored a malformed registry event on ${topic}`);
      } catch (err) {
        this.log('error', `registry event on ${topic}: ${(err as Error).message}`);
      }
    });
    client.on('error', (err) => this.log('warn', `registry sync: ${err.message}`));
    client.on('connect', () => {
      client.subscribe(`${REGISTRY_EVENT_ROOT}/#`, { qos: 1 }, (err) => {
        if (err) this.log('error', `registry sync: subscribe failed: ${err.message}`);
      });
    });
  }

  /** True once the sync connection is up (or when there is none to wait for). */
  connected(): boolean {
    return !this.opts.brokerUrl || this.client?.connected === true;
  }

  private reload(reason: string): void {
    try {
      try {
        this.mtime = statSync(this.opts.file).mtimeMs;
      } catch {
        this.mtime = 0;
      }
      this.setState(loadRegistry(this.opts.file), reason);
      this.error = undefined;
    } catch (err) {
      // Keep serving the last good state (revocations still arrive by MQTT); say so loudly.
      this.error = (err as Error).message;
      this.log('error', this.error);
    }
  }

  private setState(state: RegistryState, reason: string): void {
    for (const [id, ev] of this.blocked) {
      const e = state.entries.find((x) => x.id === id);
      if (e && e.credentialRevision >= ev.credentialRevision) this.blocked.delete(id);
    }
    this.state = state;
    this.rebuild();
    for (const fn of this.listeners) fn(reason);
  }

  private rebuild(): void {
    if (!this.state) return;
    if (this.blocked.size === 0) {
      this.idx = indexRegistry(this.state);
      return;
    }
    // Blocked entries are served as revoked: refuse rather than trust stale credentials.
    const entries = this.state.entries.map((e) => {
      const ev = this.blocked.get(e.id);
      return ev ? { ...e, revokedAt: ev.revokedAt ?? ev.at } : e;
    });
    this.idx = indexRegistry({ ...this.state, entries });
  }

  applyRemote(ev: RegistryEvent): void {
    const local = this.state?.entries.find((e) => e.id === ev.id);
    if (local && local.credentialRevision >= ev.credentialRevision) return;
    if (ev.revokedAt !== undefined || local) {
      // Block first (revocation effective now), then try to catch up from the file.
      this.blocked.set(ev.id, ev);
      this.rebuild();
    }
    this.reload(`event from ${ev.origin}`);
    this.lastRemote = { id: ev.id, at: ev.at, appliedAt: Date.now() };
    if (this.blocked.has(ev.id))
      this.log(
        'warn',
        `registry: ${ev.id} changed on ${ev.origin} but ${this.opts.file} lags; refusing it until it catches up`,
      );
  }

  /** Change the registry (locked read-modify-write), then tell the other instances. */
  change<T extends { state: RegistryState; events: AuditEvent[] }>(fn: (s: RegistryState) => T): T {
    const result = updateRegistry(this.opts.file, fn);
    const before = new Map((this.state?.entries ?? []).map((e) => [e.id, e]));
    this.setState(result.state, 'local change');
    this.error = undefined;
    const now = Date.now();
    for (const e of result.state.entries) {
      const old = before.get(e.id);
      if (!old || old.credentialRevision !== e.credentialRevision || old.updatedAt !== e.updatedAt)
        this.publish(eventFor(e, this.opts.instanceId, now));
    }
    for (const ev of result.events) this.opts.audit?.record(ev);
    return result;
  }

  private publish(ev: RegistryEvent): void {
    if (!this.client) return;
    const [site, asset] = ev.id.split('/');
    this.client.publish(
      `${REGISTRY_EVENT_ROOT}/${site}/${asset}`,
      JSON.stringify(ev),
      { qos: 1, retain: true },
      (err) => {
        if (err) this.log('error', `registry sync: publish ${ev.id}: ${err.message}`);
      },
    );
  }

  async close(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
    const c = this.client;
    this.client = undefined;
    if (c) await c.endAsync().catch(() => undefined);
  }
}
