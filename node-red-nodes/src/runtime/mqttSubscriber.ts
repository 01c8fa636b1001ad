/**
 * An MQTT subscriber that acknowledges a message when the caller says it is safe, not when it arrives.
 *
 * mqtt.js (and so Node-RED's `mqtt in`) sends the PUBACK of a QoS 1 message as soon as the message is
 * handed to the flow, and handles one message at a time if the acknowledgement is delayed; a crash then
 * loses what was acknowledged but not yet stored. Here each message carries settle(): PUBACKs go out in
 * arrival order (MQTT 5 §4.6) once a message and all before it are settled, several per socket write,
 * while the broker keeps sending up to our Receive Maximum. With a persistent session the broker
 * redelivers whatever was not acknowledged when the connection or the process died.
 *
 * Speaks MQTT 3.1.1 and 5 over TCP or TLS; receives at most QoS 1 (the broker downgrades QoS 2).
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { AckWindow } from '../core/ackWindow';

export interface Subscription {
  topic: string;
  qos: 0 | 1;
  /** MQTT 5 subscription options: no local, retain as published, retain handling (default 1: retained
   * messages when the subscription is new, not on a resubscribe after a reconnect). */
  nl?: boolean;
  rap?: boolean;
  rh?: 0 | 1 | 2;
}

export interface SubscriberOptions {
  /** mqtt://host:port or mqtts://host:port */
  url: string;
  clientId: string;
  protocolVersion: 4 | 5;
  username?: string;
  password?: string;
  keepaliveS?: number;
  /**
   * How long the broker keeps the session (subscriptions and unacknowledged messages) while we are away:
   * the MQTT 5 Session Expiry Interval; for MQTT 3.1.1, > 0 means clean session false. 0: a clean session.
   */
  sessionExpiryS: number;
  /** MQTT 5 Receive Maximum: messages the broker may send before we acknowledge (1..65535). */
  receiveMaximum?: number;
  subscriptions: Subscription[];
  tls?: ConnectionOptions;
  /** A message not settled after this long is acknowledged anyway, and counted (default 60 s). */
  ackTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  connectTimeoutMs?: number;
}

export interface InboundMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
  /** The broker sent it before (after a reconnect): it may have been processed already. */
  dup: boolean;
  properties: IPublishPacket['properties'];
  /** The message is safe: acknowledge it (in order with the others). Later calls do nothing. */
  settle: () => void;
  /**
   * The flow cannot keep the message now (its store is full): it is never acknowledged; the connection
   * is dropped and opened again after a pause that grows while refusals go on, and the broker delivers
   * everything not acknowledged again (DUP set). Later calls, and settle() after it, do nothing.
   */
  refuse: () => void;
}

export interface SubscriberStats {
  connected: boolean;
  /** Received and not yet acknowledged. */
  pending: number;
  received: number;
  acknowledged: number;
  /** Acknowledged by the timeout, not by the flow. */
  forced: number;
  /** Messages the flow refused (full store): left to the broker to deliver again. */
  refused: number;
  connects: number;
  lastError?: string;
}

export interface SubscriberEvents {
  message: [InboundMessage];
  connect: [{ sessionPresent: boolean }];
  disconnect: [string];
  error: [Error];
  warning: [string];
}

const CONNACK_V4: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'client identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};
const CONNACK_V5: Record<number, string> = {
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8c: 'bad authentication method',
  0x95: 'packet too large',
  0x97: 'quota exceeded',
};

/** PUBACK with reason Success: the short form both MQTT 3.1.1 and 5 accept. */
function putPuback(buf: Buffer, at: number, id: number): void {
  buf[at] = 0x40;
  buf[at + 1] = 2;
  buf[at + 2] = id >> 8;
  buf[at + 3] = id & 0xff;
}

export class MqttSubscriber extends EventEmitter<SubscriberEvents> {
  private readonly o: Required<Omit<SubscriberOptions, 'username' | 'password' | 'tls'>> &
    Pick<SubscriberOptions, 'username' | 'password' | 'tls'>;
  private readonly window = new AckWindow();
  private socket: Socket | undefined;
  /** Bumped per connection: a settle() from an earlier connection must not acknowledge on this one. */
  private generation = 0;
  private connected = false;
  private closing = false;
  private outbox: number[] = [];
  private flushQueued = false;
  private nextPacketId = 1;
  private subscribeId = 0;
  private reconnectDelay: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private awaitingPong = false;
  private drained: (() => void) | undefined;
  private counts = { received: 0, acknowledged: 0, forced: 0, refused: 0, connects: 0 };
  /** Pause after a refusal: doubles while refusals go on, back to the minimum once acks flow. */
  private refusePauseMs = 1000;
  private lastError: string | undefined;

  constructor(options: SubscriberOptions) {
    super();
    const url = new URL(options.url);
    if (
      url.protocol !== 'mqtt:' &&
      url.protocol !== 'mqtts:' &&
      url.protocol !== 'tcp:' &&
      url.protocol !== 'ssl:'
    )
      throw new Error(`broker URL must be mqtt:// or mqtts:// (got ${url.protocol}//)`);
    if (options.subscriptions.length === 0) throw new Error('nothing to subscribe to');
    const receiveMaximum = options.receiveMaximum ?? 10_000;
    if (!Number.isInteger(receiveMaximum) || receiveMaximum < 1 || receiveMaximum > 65_535)
      throw new Error(`receive maximum must be 1..65535, got ${receiveMaximum}`);
    this.o = {
      keepaliveS: 60,
      receiveMaximum,
      ackTimeoutMs: 60_000,
      reconnectMinMs: 500,
      reconnectMaxMs: 10_000,
      connectTimeoutMs: 10_000,
      ...options,
    };
    this.reconnectDelay = this.o.reconnectMinMs;
  }

  stats(): SubscriberStats {
    return {
      connected: this.connected,
      pending: this.window.pending,
      ...this.counts,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  start(): void {
    this.expiryTimer ??= setInterval(() => this.expire(), 1000);
    this.expiryTimer.unref();
    this.open();
  }

  /**
   * Stop taking messages, give the flow up to `drainMs` to settle what it holds (so its PUBACKs still
   * go out), then DISCONNECT. The session stays on the broker for sessionExpiryS.
   */
  async close(drainMs = 3000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.expiryTimer);
    const socket = this.socket;
    if (socket && this.connected) {
      socket.pause();
      if (this.window.pending > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, drainMs);
          this.drained = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      this.flush();
      socket.write(
        mqttPacket.generate(
          { cmd: 'disconnect', reasonCode: 0 },
          { protocolVersion: this.o.protocolVersion },
        ),
      );
      // Let the broker close the connection after the DISCONNECT: half-closing at once made Mosquitto
      // 2.0.11 drop the last PUBACKs now and then (the messages came back after the restart).
      this.teardown('closed');
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          socket.destroy();
          resolve();
        }, 1000);
        socket.once('close', () => {
          clearTimeout(t);
          resolve();
        });
        socket.resume();
      });
      return;
    }
    this.teardown('closed');
  }

  private open(): void {
    if (this.closing) return;
    const gen = ++this.generation;
    const url = new URL(this.o.url);
    const tls = url.protocol === 'mqtts:' || url.protocol === 'ssl:';
    const port = url.port ? Number(url.port) : tls ? 8883 : 1883;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = tls
      ? tlsConnect({ ...this.o.tls, host, port, servername: this.o.tls?.servername ?? host })
      : netConnect({ host, port });
    socket.setNoDelay(true);
    this.socket = socket;
    const parser = mqttPacket.parser({ protocolVersion: this.o.protocolVersion });
    parser.on('packet', (p: Packet) => {
      if (gen === this.generation) this.onPacket(p, gen);
    });
    parser.on('error', (err: unknown) => this.fail(gen, `malformed packet from the broker: ${String(err)}`));
    socket.on(tls ? 'secureConnect' : 'connect', () => {
      const v5 = this.o.protocolVersion === 5;
      socket.write(
        mqttPacket.generate(
          {
            cmd: 'connect',
            protocolId: 'MQTT',
            protocolVersion: this.o.protocolVersion,
            clean: this.o.sessionExpiryS === 0,
            clientId: this.o.clientId,
            keepalive: this.o.keepaliveS,
            ...(this.o.username !== undefined ? { username: this.o.username } : {}),
            ...(this.o.password !== undefined ? { password: Buffer.from(this.o.password) } : {}),
            ...(v5
              ? {
                  properties: {
                    sessionExpiryInterval: this.o.sessionExpiryS,
                    receiveMaximum: this.o.receiveMaximum,
                    topicAliasMaximum: 0,
                  },
                }
              : {}),
          },
          { protocolVersion: this.o.protocolVersion },
        ),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      if (gen === this.generation) parser.parse(chunk);
    });
    socket.on('error', (err) => this.fail(gen, err.message));
    socket.on('close', () => this.fail(gen, 'connection closed'));
    this.connectTimer = setTimeout(() => this.fail(gen, 'no CONNACK in time'), this.o.connectTimeoutMs);
  }

  private onPacket(p: Packet, gen: number): void {
    switch (p.cmd) {
      case 'publish':
        return this.onPublish(p, gen);
      case 'connack': {
        clearTimeout(this.connectTimer);
        const code = (this.o.protocolVersion === 5 ? p.reasonCode : p.returnCode) ?? 0;
        if (code !== 0) {
          const table = this.o.protocolVersion === 5 ? CONNACK_V5 : CONNACK_V4;
          return this.fail(gen, `broker refused the connection: ${table[code] ?? `code ${code}`}`, true);
        }
        this.connected = true;
        this.counts.connects++;
        this.reconnectDelay = this.o.reconnectMinMs;
        this.subscribe();
        this.startPing(gen);
        this.emit('connect', { sessionPresent: p.sessionPresent });
        return;
      }
      case 'suback': {
        const refused = (p.granted as number[]).flatMap((g, i) =>
          g >= 0x80 ? [`${this.o.subscriptions[i]?.topic ?? '?'} (code 0x${g.toString(16)})`] : [],
        );
        if (refused.length > 0) this.report(`broker refused the subscription to ${refused.join(', ')}`);
        return;
      }
      case 'pingresp':
        this.awaitingPong = false;
        return;
      case 'pubrel':
        // Only after a QoS 2 delivery the broker should not have sent (we subscribe at QoS ≤ 1).
        this.socket?.write(mqttPacket.generate({ cmd: 'pubcomp', messageId: p.messageId ?? 0 }));
        return;
      case 'disconnect': {
        const why = p.properties?.reasonString ?? `reason 0x${(p.reasonCode ?? 0).toString(16)}`;
        return this.fail(gen, `broker disconnected: ${why}`);
      }
      default:
        return;
    }
  }

  private onPublish(p: IPublishPacket, gen: number): void {
    this.counts.received++;
    const qos: 0 | 1 = p.qos === 0 ? 0 : 1;
    const id = qos === 0 ? 0 : (p.messageId ?? 0);
    const slot = this.window.add(id, Date.now());
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      if (gen !== this.generation) return; // that connection is gone: the broker will redeliver
      this.queueAcks(this.window.settle(slot));
    };
    const refuse = (): void => {
      if (settled) return;
      settled = true;
      this.counts.refused++;
      if (gen !== this.generation) return; // already reconnecting: the broker will redeliver it
      const pause = this.refusePauseMs;
      this.refusePauseMs = Math.min(this.refusePauseMs * 2, 30_000);
      this.report(
        `the flow could not keep a message (store full): intake paused ${pause / 1000} s, the broker keeps the rest`,
        'warning',
      );
      this.fail(gen, 'paused: the flow refused a message', false, pause);
    };
    this.emit('message', {
      topic: p.topic,
      payload: typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload,
      qos,
      retain: p.retain,
      dup: p.dup,
      properties: p.properties,
      settle,
      refuse,
    });
  }

  private queueAcks(ids: number[]): void {
    if (ids.length > 0) {
      this.counts.acknowledged += ids.length;
      this.refusePauseMs = 1000;
      for (const id of ids) this.outbox.push(id);
      if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(() => this.flush());
      }
    }
    if (this.window.pending === 0) this.drained?.();
  }

  /** One socket write for every PUBACK settled since the last one. */
  private flush(): void {
    this.flushQueued = false;
    const ids = this.outbox;
    if (ids.length === 0) return;
    this.outbox = [];
    if (!this.connected || !this.socket) return;
    const buf = Buffer.allocUnsafe(ids.length * 4);
    for (let i = 0; i < ids.length; i++) putPuback(buf, i * 4, ids[i] ?? 0);
    this.socket.write(buf);
  }

  private subscribe(): void {
    this.subscribeId = this.nextPacketId;
    this.nextPacketId = (this.nextPacketId % 65_535) + 1;
    const v5 = this.o.protocolVersion === 5;
    this.socket?.write(
      mqttPacket.generate(
        {
          cmd: 'subscribe',
          messageId: this.subscribeId,
          subscriptions: this.o.subscriptions.map((s) => ({
            topic: s.topic,
            qos: s.qos,
            // Retained messages only for a new subscription: not again on every reconnect.
            ...(v5 ? { nl: s.nl ?? false, rap: s.rap ?? true, rh: s.rh ?? 1 } : {}),
          })),
        },
        { protocolVersion: this.o.protocolVersion },
      ),
    );
  }

  private startPing(gen: number): void {
    clearInterval(this.pingTimer);
    if (this.o.keepaliveS <= 0) return;
    this.awaitingPong = false;
    this.pingTimer = setInterval(() => {
      if (gen !== this.generation) return;
      if (this.awaitingPong) return this.fail(gen, 'broker did not answer a PINGREQ within the keepalive');
      this.awaitingPong = true;
      this.socket?.write(mqttPacket.generate({ cmd: 'pingreq' }));
    }, this.o.keepaliveS * 1000);
    this.pingTimer.unref();
  }

  /** Acknowledge messages the flow has held for longer than ackTimeoutMs. */
  private expire(): void {
    const { ids, forced } = this.window.expire(Date.now() - this.o.ackTimeoutMs);
    if (forced === 0) return;
    this.counts.forced += forced;
    this.report(
      `${forced} message(s) not settled within ${this.o.ackTimeoutMs / 1000} s acknowledged anyway: ` +
        'does the flow end in evtwin-influx-out?',
      'warning',
    );
    this.queueAcks(ids);
  }

  private report(message: string, kind: 'error' | 'warning' = 'error'): void {
    this.lastError = message;
    if (kind === 'warning') this.emit('warning', message);
    else if (this.listenerCount('error') > 0) this.emit('error', new Error(message));
  }

  /** The connection `gen` failed: forget its unacknowledged messages and reconnect with backoff. */
  private fail(gen: number, why: string, refused = false, pauseMs?: number): void {
    if (gen !== this.generation) return;
    const wasConnected = this.connected;
    this.teardown(why);
    if (this.closing) return;
    if (refused || (!wasConnected && pauseMs === undefined)) this.report(why);
    if (wasConnected) this.emit('disconnect', why);
    const delay = pauseMs ?? (refused ? this.o.reconnectMaxMs : this.reconnectDelay);
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.o.reconnectMaxMs);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  private teardown(why: string): void {
    this.generation++;
    this.connected = false;
    clearTimeout(this.connectTimer);
    clearInterval(this.pingTimer);
    this.window.clear();
    this.outbox = [];
    this.drained?.();
    this.drained = undefined;
    const socket = this.socket;
    this.socket = undefined;
    // A close() ended the socket after its DISCONNECT: let that go out; otherwise drop the connection.
    if (socket && !socket.destroyed && why !== 'closed') socket.destroy();
  }
}
