/**
 * The OCPP-J central system (CSMS) on ocpp-rpc: one WebSocket port for OCPP 1.6 and 2.0.1, identities
 * checked against the registry at the handshake (security profile 1: basic auth with the charge
 * point's registry token; profile 2: the same over TLS), strict schema validation unless relaxed per
 * charge point, one call at a time per charge point, bounded outgoing commands, state persisted as
 * atomic JSON. The logic is core/ocpp; this class is the I/O around it.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { RPCServer } from 'ocpp-rpc';
import type { AuditEvent, AuditSink } from '../core/auditEvent';
import { ID_PATTERN, type Reading } from '../core/reading';
import { commandTopic } from '../core/topics';
import {
  INBOUND_ACTIONS,
  OCPP_PROTOCOLS,
  afterRestart,
  applyAvailability,
  applyEvent,
  commandAccepted,
  commitInPlace,
  emptyCentralState,
  fromChargerReading,
  fromMqttStatus,
  handleCall,
  limitSession,
  MqttChargerError,
  sessionsDue,
  setFreeze,
  toMqttCommand,
  setMaintenance,
  sweepHeartbeats,
  toOcppCall,
  validateCentralState,
  DEFAULT_HEARTBEAT,
  type CentralState,
  type ChargerCommand,
  type FreezeRecord,
  type SessionLimit,
  type ChargerEvent,
  type HeartbeatPolicy,
  type IdTagPolicy,
  type OcppProtocol,
} from '../core/ocpp';
import { RejectionAggregator } from './auditLog';
import { writeFileAtomic } from './spool';

/** How identities are checked: the registry, seen through two functions (so tests and tools can plug in). */
export interface CredentialCheck {
  /** Is `password` the current credential of `<site>/<asset>`? `fingerprint` changes when it stops being. */
  verify(
    site: string,
    asset: string,
    password: string | undefined,
  ): { ok: true; fingerprint: string } | { ok: false; reason: string };
  /** The current fingerprint, or undefined when the charge point is unknown or revoked. */
  current(site: string, asset: string): string | undefined;
}

export interface OcppServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0: any free port. */
  port: number;
  /** URL path before `/<site>/<cp>`; default `/ocpp`. */
  pathPrefix?: string;
  /** Site of charge points connecting to `<prefix>/<cp>` (no site in the path). */
  defaultSite?: string;
  /** Security profile 2: TLS with this certificate and key (PEM). */
  tls?: { cert: string; key: string };
  /** Validate every call against the OCPP JSON schemas (default true). */
  strict?: boolean;
  /** Charge points (`<site>/<asset>` or asset) exempt from strict validation. */
  relaxed?: readonly string[];
  credentials: CredentialCheck;
  /** JSON file holding the central state; none: memory only. */
  stateFile?: string;
  heartbeat?: HeartbeatPolicy;
  idTags?: IdTagPolicy;
  callTimeoutMs?: number;
  /** Most commands in flight or waiting per charge point; more are refused at once. */
  maxQueue?: number;
  /** Largest WebSocket frame accepted; a larger one closes the connection (1009). */
  maxPayloadBytes?: number;
  /** After a (re)connect, ask for Boot/StatusNotification when the charger stays silent this long. */
  triggerAfterMs?: number;
  /** How often silent charge points are checked. */
  sweepMs?: number;
  /** State changes are written at most this often (close() always writes), ms. */
  saveDelayMs?: number;
  /** Protocol errors in a row before a charge point is disconnected. */
  maxBadMessages?: number;
  audit?: AuditSink;
  log?: (level: 'info' | 'warn' | 'error', text: string) => void;
}

export interface CommandResult {
  cp: string;
  command: ChargerCommand['command'];
  action: string;
  request: Record<string, unknown>;
  response: unknown;
  accepted: boolean;
  ms: number;
}

/** Where commands to MQTT chargers go (evtwin-charger's MQTT output): topic `.../cmd`, JSON payload. */
export type MqttPublish = (topic: string, payload: Record<string, unknown>) => void;

export class CommandFailed extends Error {
  override name = 'CommandFailed';
  constructor(
    readonly code: 'offline' | 'queue-full' | 'timeout' | 'call-error' | 'bad-command',
    message: string,
  ) {
    super(message);
  }
}

interface Session {
  cp: string;
  site: string;
  asset: string;
  fingerprint: string;
}

/** The part of ocpp-rpc's server-side client we use (its typings leave handler params loose). */
interface Client extends EventEmitter {
  readonly protocol: string | undefined;
  readonly session: Record<string, unknown>;
  call(method: string, params?: unknown, options?: Record<string, unknown>): Promise<unknown>;
  handle(method: string, handler: (call: { params?: unknown }) => Promise<Record<string, unknown>>): void;
  close(options?: { code?: number; reason?: string; force?: boolean }): Promise<unknown>;
  reconfigure(options: Record<string, unknown>): void;
}

interface Live {
  client: Client;
  session: Session;
  protocol: OcppProtocol;
  pending: number;
  heard: boolean;
  trigger?: NodeJS.Timeout;
  /** Protocol-error events sent in the current 10 s window (the rest are only counted and audited). */
  errWindow: number;
  errCount: number;
}

const isProtocol = (p: string | undefined): p is OcppProtocol => OCPP_PROTOCOLS.includes(p as OcppProtocol);

export class OcppCentralSystem extends EventEmitter {
  private rpc: RPCServer | undefined;
  private http: Server | undefined;
  private central: CentralState = emptyCentralState();
  private readonly live = new Map<string, Live>();
  /** Identities accepted at the handshake whose socket is not open yet (duplicate refusal). */
  private readonly reserved = new Map<string, NodeJS.Timeout>();
  private sweep: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private saveTimer: NodeJS.Timeout | undefined;
  private readonly rejections: RejectionAggregator | undefined;
  private remoteStartId = 1;
  /** Driver limits of accepted start commands, until their session starts (by charge point). */
  private readonly pendingLimits = new Map<string, { idTag: string; limit: SessionLimit; at: number }>();
  /** Open sessions with a driver limit (checked on meter values and every sweep). */
  private readonly limited = new Set<string>();
  /** Sessions a stop was sent to for their limit (not sent twice). */
  private readonly stopping = new Set<string>();
  /** The MQTT output last used for each MQTT charger, for commands the central sends itself. */
  private readonly publishers = new Map<string, MqttPublish>();
  /** Commands published to MQTT chargers awaiting their ack on `.../status`. */
  private readonly mqttPending = new Map<
    string,
    {
      cp: string;
      resolve: (r: Record<string, unknown>) => void;
      reject: (e: Error) => void;
      timer: NodeJS.Timeout;
    }
  >();
  private closed = false;
  port = 0;

  constructor(private readonly opts: OcppServerOptions) {
    super();
    const audit = opts.audit;
    this.rejections = audit
      ? new RejectionAggregator({ sink: { record: (ev) => audit.record(ev) }, actor: 'ocpp' })
      : undefined;
  }

  private log(level: 'info' | 'warn' | 'error', text: string): void {
    this.opts.log?.(level, text);
  }

  private audit(ev: Omit<AuditEvent, 'ts'>): void {
    this.opts.audit?.record({ ts: Date.now(), ...ev });
  }

  /** The central state: a live view, updated in place as events arrive (do not modify it). */
  state(): CentralState {
    return this.central;
  }

  connectedIds(): string[] {
    return [...this.live.keys()];
  }

  /** Charge points a command can reach now: OCPP connections and MQTT chargers heard from recently. */
  reachableIds(): string[] {
    const ids = new Set(this.live.keys());
    for (const r of Object.values(this.central.chargePoints))
      if (r.transport === 'mqtt' && r.online) ids.add(r.id);
    return [...ids];
  }

  protocolOf(cp: string): OcppProtocol | undefined {
    return this.live.get(cp)?.protocol;
  }

  async start(): Promise<number> {
    this.loadState();
    const rpc = new RPCServer({
      protocols: [...OCPP_PROTOCOLS],
      strictMode: this.opts.strict ?? true,
      callConcurrency: 1,
      callTimeoutMs: this.opts.callTimeoutMs ?? 30_000,
      pingIntervalMs: 30_000,
      maxBadMessages: this.opts.maxBadMessages ?? 20,
      respondWithDetailedErrors: false,
      wssOptions: { maxPayload: this.opts.maxPayloadBytes ?? 64 * 1024 },
    });
    this.rpc = rpc;
    rpc.auth((accept, reject, handshake) => {
      const r = this.authorize(
        handshake.endpoint,
        handshake.identity,
        handshake.protocols,
        handshake.password,
      );
      if ('code' in r) return reject(r.code, r.message);
      accept({ ...r.session }, r.protocol);
    });
    rpc.on('client', (c: unknown) => this.onClient(c as Client));
    rpc.on('error', (err: Error) => this.log('warn', `ocpp: ${err.message}`));
    const handler = rpc.handleUpgrade;
    const server = this.opts.tls
      ? createHttpsServer({ cert: this.opts.tls.cert, key: this.opts.tls.key })
      : createHttpServer();
    server.on('request', (_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    server.on('upgrade', (req, socket, head) => {
      void handler(req, socket as Parameters<typeof handler>[1], head);
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    this.http = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : this.opts.port;
    this.sweep = setInterval(() => this.checkHeartbeats(), this.opts.sweepMs ?? 1000);
    this.sweep.unref();
    return this.port;
  }

  // ---- handshake --------------------------------------------------------------------------------

  private authorize(
    endpoint: string,
    identity: string,
    offered: Set<string>,
    password: Buffer | undefined,
  ): { code: number; message: string } | { session: Session; protocol: OcppProtocol } {
    const prefix = (this.opts.pathPrefix ?? '/ocpp').replace(/\/+$/, '');
    const end = endpoint.replace(/\/+$/, '');
    let site: string | undefined;
    if (end.startsWith(`${prefix}/`) && !end.slice(prefix.length + 1).includes('/'))
      site = end.slice(prefix.length + 1);
    else if ((end === prefix || end === '') && this.opts.defaultSite) site = this.opts.defaultSite;
    if (!site || !ID_PATTERN.test(site) || !ID_PATTERN.test(identity))
      return { code: 404, message: 'Not found' };
    const cp = `${site}/${identity}`;
    const protocol = OCPP_PROTOCOLS.find((p) => offered.has(p));
    if (!protocol) {
      this.rejections?.recordRejection(cp, 'no-subprotocol');
      return { code: 400, message: 'No supported OCPP subprotocol (ocpp1.6, ocpp2.0.1)' };
    }
    if (this.closed) return { code: 503, message: 'Closing' };
    const verdict = this.opts.credentials.verify(site, identity, password?.toString('utf8'));
    if (!verdict.ok) {
      this.rejections?.recordRejection(cp, verdict.reason);
      return { code: 401, message: 'Unauthorized' };
    }
    if (this.live.has(cp) || this.reserved.has(cp)) {
      this.rejections?.recordRejection(cp, 'duplicate');
      return { code: 409, message: 'Already connected' };
    }
    const t = setTimeout(() => this.reserved.delete(cp), 10_000);
    t.unref();
    this.reserved.set(cp, t);
    return { session: { cp, site, asset: identity, fingerprint: verdict.fingerprint }, protocol };
  }

  // ---- connections ------------------------------------------------------------------------------

  private onClient(client: Client): void {
    const session = client.session as unknown as Session;
    const protocol = client.protocol;
    clearTimeout(this.reserved.get(session.cp));
    this.reserved.delete(session.cp);
    if (!isProtocol(protocol) || this.live.has(session.cp) || this.closed) {
      void client.close({ code: 1008, reason: 'refused' });
      return;
    }
    const relaxed = this.opts.relaxed ?? [];
    if (relaxed.includes(session.cp) || relaxed.includes(session.asset))
      client.reconfigure({ strictMode: false });
    const live: Live = { client, session, protocol, pending: 0, heard: false, errWindow: 0, errCount: 0 };
    this.live.set(session.cp, live);

    for (const action of INBOUND_ACTIONS[protocol])
      client.handle(action, async ({ params }) => this.onCall(live, action, params));
    client.on(
      'callError',
      (e: { outbound?: boolean; method?: string; error?: { rpcErrorCode?: string; message?: string } }) => {
        if (e.outbound) return;
        this.protocolError(
          live,
          e.method ?? '?',
          e.error?.rpcErrorCode ?? 'GenericError',
          e.error?.message ?? '',
        );
      },
    );
    client.on('badMessage', (e: { error?: { rpcErrorCode?: string; message?: string } }) => {
      this.protocolError(
        live,
        '?',
        e.error?.rpcErrorCode ?? 'RpcFrameworkError',
        e.error?.message ?? 'bad message',
      );
    });
    client.on('close', (e: { code?: number; reason?: string }) => this.onClose(live, e));
    client.on('socketError', (err: Error) => this.log('warn', `ocpp ${session.cp}: ${err.message}`));

    this.apply({
      type: 'connected',
      cp: session.cp,
      site: session.site,
      asset: session.asset,
      ts: Date.now(),
      protocol,
    });
    // Real charge points may reconnect in silence after a central restart: ask them to speak.
    live.trigger = setTimeout(() => {
      if (live.heard || this.live.get(session.cp) !== live) return;
      void (async () => {
        for (const message of ['BootNotification', 'StatusNotification'] as const) {
          await this.command({ command: 'trigger', cp: session.cp, message }, { actor: 'system' }).catch(
            (err: unknown) =>
              this.log('warn', `ocpp ${session.cp}: trigger ${message}: ${(err as Error).message}`),
          );
        }
      })();
    }, this.opts.triggerAfterMs ?? 2000);
    live.trigger.unref();
  }

  private async onCall(live: Live, action: string, params: unknown): Promise<Record<string, unknown>> {
    live.heard = true;
    const { session } = live;
    const h = handleCall(
      this.central,
      {
        cp: session.cp,
        site: session.site,
        asset: session.asset,
        protocol: live.protocol,
        now: Date.now(),
        heartbeatIntervalS: (this.opts.heartbeat ?? DEFAULT_HEARTBEAT).intervalS,
        idTags: this.opts.idTags ?? { accepted: [], blocked: [] },
      },
      action,
      params,
      commitInPlace,
    );
    this.central = h.state;
    this.scheduleSave();
    for (const ev of h.events) {
      this.emit('event', ev, this.central);
      this.afterEvent(ev);
    }
    if (h.unknownTransaction) {
      const txId = h.events[0]?.transactionId ?? '?';
      this.audit({
        actor: `charger:${session.cp}`,
        action: 'charger.unknown-transaction',
        target: session.cp,
        outcome: 'error',
        detail: { action, transactionId: txId },
      });
      this.emit(
        'event',
        {
          type: 'protocol-error',
          cp: session.cp,
          site: session.site,
          asset: session.asset,
          ts: Date.now(),
          protocol: live.protocol,
          action,
          transactionId: txId,
          reason: 'unknown transaction',
        },
        this.central,
      );
    }
    return h.response;
  }

  private protocolError(live: Live, action: string, code: string, message: string): void {
    const { session } = live;
    // The first 10 per 10 s are audited one by one and reach the flow; a flood beyond that is
    // counted into one audit summary per charge point and minute.
    const w = Math.floor(Date.now() / 10_000);
    if (w !== live.errWindow) {
      live.errWindow = w;
      live.errCount = 0;
    }
    if (++live.errCount > 10) {
      this.rejections?.recordRejection(session.cp, `${action}:${code}`);
      return;
    }
    this.audit({
      actor: `charger:${session.cp}`,
      action: 'charger.call-error',
      target: session.cp,
      outcome: 'denied',
      detail: { action, code, message: message.slice(0, 200) },
    });
    this.emit(
      'event',
      {
        type: 'protocol-error',
        cp: session.cp,
        site: session.site,
        asset: session.asset,
        ts: Date.now(),
        protocol: live.protocol,
        action,
        errorCode: code,
        reason: message.slice(0, 200),
      },
      this.central,
    );
  }

  private onClose(live: Live, e: { code?: number; reason?: string }): void {
    if (live.trigger) clearTimeout(live.trigger);
    const { session } = live;
    if (this.live.get(session.cp) !== live) return;
    this.live.delete(session.cp);
    const ev: ChargerEvent = {
      type: 'disconnected',
      cp: session.cp,
      site: session.site,
      asset: session.asset,
      ts: Date.now(),
      protocol: live.protocol,
    };
    if (e.code !== undefined) ev.reason = `${e.code}${e.reason ? ` ${e.reason}` : ''}`;
    this.apply(ev);
  }

  private apply(ev: ChargerEvent): ChargerEvent {
    const a = applyEvent(this.central, ev, Date.now(), commitInPlace);
    this.central = a.state;
    this.scheduleSave();
    this.emit('event', a.event, this.central);
    this.afterEvent(a.event);
    return a.event;
  }

  /** Driver limits: attach a pending one to the session it asked for; stop sessions that reached theirs. */
  private afterEvent(ev: ChargerEvent): void {
    if (ev.type === 'transaction-started' && ev.transactionId) {
      const p = this.pendingLimits.get(ev.cp);
      if (p && (ev.idTag === undefined || ev.idTag === p.idTag)) {
        this.pendingLimits.delete(ev.cp);
        this.central = limitSession(this.central, ev.transactionId, p.limit, Date.now());
        this.limited.add(ev.transactionId);
        this.scheduleSave();
      }
    }
    if (ev.type === 'meter' || ev.type === 'transaction-updated') this.stopDue();
  }

  private stopDue(): void {
    if (this.limited.size === 0) return;
    for (const id of this.limited)
      if (this.central.transactions[id]?.stoppedAt !== undefined || !this.central.transactions[id])
        this.limited.delete(id);
    for (const t of sessionsDue(this.central, Date.now(), this.limited)) {
      if (this.stopping.has(t.id)) continue;
      this.stopping.add(t.id);
      const publish = this.publishers.get(t.cp);
      this.command(
        { command: 'stop', cp: t.cp, transactionId: t.id },
        { actor: 'session-limit', ...(publish ? { publish } : {}) },
      ).then(
        () => setTimeout(() => this.stopping.delete(t.id), 60_000).unref(),
        (err: unknown) => {
          this.stopping.delete(t.id); // retried at the next sweep
          this.log('warn', `ocpp ${t.cp}: stop at limit: ${(err as Error).message}`);
        },
      );
    }
  }

  private checkHeartbeats(): void {
    // Backstop for registry changes that reached us without a change notification.
    this.recheckCredentials();
    this.stopDue();
    const { state, events } = sweepHeartbeats(
      this.central,
      Date.now(),
      this.opts.heartbeat ?? DEFAULT_HEARTBEAT,
      commitInPlace,
    );
    if (events.length === 0) return;
    this.central = state;
    this.scheduleSave();
    for (const ev of events) this.emit('event', ev, this.central);
  }

  /**
   * Registry changed: disconnect every charge point whose credential is no longer the one it
   * connected with (revoked, removed, rotated). Reconnects are refused at the handshake.
   */
  recheckCredentials(): string[] {
    const dropped: string[] = [];
    for (const live of [...this.live.values()]) {
      const { session } = live;
      if (this.opts.credentials.current(session.site, session.asset) === session.fingerprint) continue;
      dropped.push(session.cp);
      this.audit({
        actor: 'system',
        action: 'charger.disconnect',
        target: session.cp,
        outcome: 'ok',
        detail: { reason: 'credential revoked or rotated' },
      });
      void live.client.close({ code: 1008, reason: 'credential revoked' }).catch(() => undefined);
    }
    return dropped;
  }

  // ---- commands ---------------------------------------------------------------------------------

  /** Send a command; resolves with the charger's answer, rejects with CommandFailed. Always audited. */
  async command(
    cmd: ChargerCommand,
    opts: { actor?: string; timeoutMs?: number; publish?: MqttPublish } = {},
  ): Promise<CommandResult> {
    const actor = opts.actor ?? 'system';
    const started = Date.now();
    const fail = (code: CommandFailed['code'], message: string, action: string = cmd.command): never => {
      this.audit({
        actor,
        action: 'charger.command',
        target: cmd.cp,
        outcome: 'error',
        detail: { command: cmd.command, action, error: code, message: message.slice(0, 200) },
      });
      throw new CommandFailed(code, message);
    };
    const live = this.live.get(cmd.cp);
    const rec = this.central.chargePoints[cmd.cp];
    if (opts.publish) this.publishers.set(cmd.cp, opts.publish);
    const viaMqtt = !live && rec?.transport === 'mqtt';
    if (!live && !viaMqtt) return fail('offline', `${cmd.cp} is not connected`);
    if (viaMqtt && !rec?.online) return fail('offline', `${cmd.cp} (MQTT) is offline`);
    if (viaMqtt && !opts.publish)
      return fail('offline', `${cmd.cp} is an MQTT charger and no MQTT output is wired`);
    const max = this.opts.maxQueue ?? 16;
    const pending = live
      ? live.pending
      : [...this.mqttPending.values()].filter((p) => p.cp === cmd.cp).length;
    if (pending >= max)
      return fail('queue-full', `${cmd.cp} already has ${pending} commands waiting (max ${max})`);
    const timeoutMs = opts.timeoutMs ?? this.opts.callTimeoutMs ?? 30_000;
    let call: { action: string; payload: Record<string, unknown> };
    let answer: Promise<unknown> | undefined;
    try {
      if (live) {
        call = toOcppCall(cmd, live.protocol, {
          remoteStartId: this.remoteStartId++,
          profileId: 100 + ('connectorId' in cmd ? (cmd.connectorId ?? 0) : 0),
        });
      } else {
        const m = this.mqttCall(cmd, opts.publish as MqttPublish, timeoutMs);
        call = m;
        answer = m.response;
      }
    } catch (err) {
      return fail('bad-command', (err as Error).message);
    }
    if (live) live.pending++;
    // Before the call: a charger may send StartTransaction before we see its answer.
    if (cmd.command === 'start' && cmd.until)
      this.pendingLimits.set(cmd.cp, { idTag: cmd.idTag, limit: cmd.until, at: started });
    let response: unknown;
    try {
      response = await (live
        ? live.client.call(call.action, call.payload, { callTimeoutMs: timeoutMs })
        : answer);
    } catch (err) {
      const e = err as Error & { rpcErrorCode?: string };
      const code = e.name === 'TimeoutError' ? 'timeout' : 'call-error';
      if (this.pendingLimits.get(cmd.cp)?.at === started) this.pendingLimits.delete(cmd.cp);
      return fail(
        code,
        `${call.action} to ${cmd.cp}: ${e.rpcErrorCode ? `${e.rpcErrorCode} ` : ''}${e.message}`,
        call.action,
      );
    } finally {
      if (live) live.pending--;
    }
    const ok = commandAccepted(response);
    if (!ok && cmd.command === 'start' && this.pendingLimits.get(cmd.cp)?.at === started)
      this.pendingLimits.delete(cmd.cp);
    if (ok && cmd.command === 'availability' && !cmd.connectorId) {
      this.central = applyAvailability(this.central, cmd.cp, cmd.operative);
      this.scheduleSave();
    }
    const status =
      typeof response === 'object' && response !== null
        ? String((response as { status?: unknown }).status)
        : '';
    this.audit({
      actor,
      action: 'charger.command',
      target: cmd.cp,
      outcome: ok ? 'ok' : 'denied',
      detail: { command: cmd.command, action: call.action, status },
    });
    return {
      cp: cmd.cp,
      command: cmd.command,
      action: call.action,
      request: call.payload,
      response,
      accepted: ok,
      ms: Date.now() - started,
    };
  }

  setMaintenance(cp: string, on: boolean, actor = 'system'): void {
    this.central = setMaintenance(this.central, cp, on);
    this.scheduleSave();
    this.audit({ actor, action: 'charger.maintenance', target: cp, outcome: 'ok', detail: { on } });
  }

  // ---- MQTT chargers (core/ocpp/mqtt.ts) ---------------------------------------------------------

  private checkMqttCharger(site: string, asset: string): void {
    // Same identities as OCPP: a registered, unrevoked charge point (evtwin-auth checked the message).
    if (this.opts.credentials.current(site, asset) === undefined)
      throw new MqttChargerError(`${site}/${asset} is not a registered charge point (or it was revoked)`);
  }

  /** A status message from `evtwin/v1/{site}/{cp}/status`: state changes and command acks. */
  mqttStatus(site: string, asset: string, body: unknown): ChargerEvent[] {
    this.checkMqttCharger(site, asset);
    const parsed = fromMqttStatus({ site, asset, now: Date.now() }, body, this.central);
    const applied = parsed.events.map((ev) => this.apply(ev));
    if (parsed.ack) {
      const p = this.mqttPending.get(parsed.ack.commandId);
      if (p && p.cp === `${site}/${asset}`) p.resolve(parsed.ack.response);
    }
    return applied;
  }

  /** A canonical reading of an MQTT charger (after evtwin-ingest): meter values. */
  mqttReading(r: Reading): ChargerEvent {
    this.checkMqttCharger(r.site, r.asset);
    return this.apply(fromChargerReading(r));
  }

  private mqttCall(
    cmd: ChargerCommand,
    publish: MqttPublish,
    timeoutMs: number,
  ): { action: string; payload: Record<string, unknown>; response: Promise<Record<string, unknown>> } {
    const rec = this.central.chargePoints[cmd.cp];
    const commandId = randomUUID();
    const payload = toMqttCommand(cmd, commandId, this.central, Date.now());
    const response = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.mqttPending.delete(commandId);
        reject(Object.assign(new Error(`no ack within ${timeoutMs} ms`), { name: 'TimeoutError' }));
      }, timeoutMs);
      this.mqttPending.set(commandId, {
        cp: cmd.cp,
        timer,
        reject,
        resolve: (r) => {
          clearTimeout(timer);
          this.mqttPending.delete(commandId);
          resolve(r);
        },
      });
    });
    publish(commandTopic(rec?.site ?? '', rec?.asset ?? ''), payload);
    return { action: 'mqtt', payload, response };
  }

  /** Freeze protection's state for a scope, persisted with the central state. */
  freezeOf(scope: string): FreezeRecord | undefined {
    return this.central.freeze?.[scope];
  }

  setFreeze(scope: string, rec: FreezeRecord, actor = 'freeze-protection'): void {
    this.central = setFreeze(this.central, scope, rec);
    this.scheduleSave();
    this.audit({ actor, action: 'charger.freeze', target: scope, outcome: 'ok', detail: { ...rec } });
  }

  // ---- persistence ------------------------------------------------------------------------------

  private loadState(): void {
    const file = this.opts.stateFile;
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true });
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return; // first start
    }
    try {
      this.central = afterRestart(validateCentralState(JSON.parse(text)));
      for (const t of Object.values(this.central.transactions))
        if (t.until && t.stoppedAt === undefined) this.limited.add(t.id);
    } catch (err) {
      // Keep the bad file for a human; start clean rather than refuse to serve chargers.
      const aside = `${file}.corrupt-${Date.now()}`;
      renameSync(file, aside);
      this.log('error', `ocpp state ${file} unreadable (${(err as Error).message}); moved to ${aside}`);
    }
  }

  private scheduleSave(): void {
    if (!this.opts.stateFile || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.save();
    }, this.opts.saveDelayMs ?? 1000);
    this.saveTimer.unref();
  }

  /** Write the state now (atomic: tmp, fsync, rename). Writes are serialised. */
  save(): Promise<void> {
    const file = this.opts.stateFile;
    if (!file) return Promise.resolve();
    const text = JSON.stringify(this.central);
    this.saving = this.saving
      .then(() => writeFileAtomic(dirname(file), basename(file), text))
      .catch((err: unknown) => this.log('error', `ocpp state: ${(err as Error).message}`));
    return this.saving;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweep) clearInterval(this.sweep);
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    for (const t of this.reserved.values()) clearTimeout(t);
    for (const p of this.mqttPending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('central system stopping'));
    }
    this.mqttPending.clear();
    for (const l of this.live.values()) if (l.trigger) clearTimeout(l.trigger);
    this.rejections?.close();
    await Promise.all(
      [...this.live.values()].map((l) =>
        l.client.close({ code: 1001, reason: 'central system stopping' }).catch(() => undefined),
      ),
    );
    const rpc = this.rpc;
    this.rpc = undefined;
    await rpc?.close({ code: 1001, reason: 'central system stopping' }).catch(() => undefined);
    // Connections closed above become `disconnected`; then the final state is written.
    await this.save();
    const http = this.http;
    this.http = undefined;
    if (http) {
      http.closeAllConnections?.();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  }
}
