/**
 * A cheap MQTT 5 publishing client for simulated devices: one TCP connection, one topic, one user
 * property (`authorization`) on every PUBLISH. The benchmark runs a thousand of these in one process
 * beside the pipeline under test, so each message must cost little CPU:
 *
 * - the fixed parts of a PUBLISH (topic, user property) are encoded once per device, and a packet is
 *   built with a few Buffer writes into one allocation;
 * - packets are written once per device per tick (several packets in one socket write);
 * - PUBACKs are read straight from the socket bytes; other packets (CONNACK, DISCONNECT) go through
 *   mqtt-packet's parser.
 *
 * QoS 1: every message is kept until its PUBACK. After a lost connection the client reconnects with
 * backoff and sends the unacknowledged messages again, in order, with DUP set; what is published while
 * disconnected is queued. The broker's Receive Maximum bounds the messages in flight.
 * QoS 0: sent as is (queued while disconnected), counted as acknowledged once written.
 */
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

export interface DeviceOptions {
  /** mqtt://host:port (plain TCP). */
  url: string;
  clientId: string;
  topic: string;
  /** Sent as MQTT 5 user property `authorization` on every PUBLISH. */
  token: string;
  qos: 0 | 1;
  /** Clean start false and Session Expiry Interval `sessionExpiryS`: the broker keeps the session. */
  persistent: boolean;
  sessionExpiryS?: number;
  keepaliveS?: number;
  /** The first connection must succeed within this (retrying refused sockets). Default 30 s. */
  connectTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/** Counters shared by every device of a process. */
export interface PublishCounters {
  /** QoS 1: successful PUBACKs received; QoS 0: messages written to the socket. */
  acked: number;
  /** PUBACKs with a failure reason code (≥ 0x80). */
  rejected: number;
  /** Connections lost (each followed by a reconnect). */
  disconnects: number;
}

const EMPTY = Buffer.alloc(0);
/** Every socket reads into this (see open()): reads are handled synchronously, one at a time. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
const PINGREQ = Buffer.from([0xc0, 0x00]);
/** DISCONNECT, reason Normal: the session stays for its expiry interval. */
const DISCONNECT = Buffer.from([0xe0, 0x00]);

const varintLength = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4);

function writeVarint(buf: Buffer, at: number, n: number): number {
  do {
    let b = n % 0x80;
    n = Math.floor(n / 0x80);
    if (n > 0) b |= 0x80;
    buf[at++] = b;
  } while (n > 0);
  return at;
}

/** A UTF-8 string with its two-byte length. */
function mqttString(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > 0xffff) throw new Error(`string too long for MQTT (${bytes.length} bytes)`);
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

// ---------------------------------------------------------------- batching of socket writes

const dirty: DevicePublisher[] = [];
let flushQueued = false;

function flushAll(): void {
  flushQueued = false;
  for (let i = 0; i < dirty.length; i++) dirty[i]?.flush();
  dirty.length = 0;
}

// ---------------------------------------------------------------- keepalive, one timer for all

const live = new Set<DevicePublisher>();
let keepaliveTimer: NodeJS.Timeout | undefined;
let keepaliveMs = 0;

function watchKeepalive(d: DevicePublisher, ms: number): void {
  if (ms <= 0) return;
  live.add(d);
  if (keepaliveTimer && ms >= keepaliveMs) return;
  clearInterval(keepaliveTimer);
  keepaliveMs = ms;
  // Every half keepalive: a PINGREQ from a device that wrote nothing since the last check.
  keepaliveTimer = setInterval(() => {
    const now = Date.now();
    for (const x of live) x.keepalive(now, keepaliveMs / 2);
  }, keepaliveMs / 2);
  keepaliveTimer.unref();
}

function unwatchKeepalive(d: DevicePublisher): void {
  live.delete(d);
  if (live.size === 0) {
    clearInterval(keepaliveTimer);
    keepaliveTimer = undefined;
  }
}

// ---------------------------------------------------------------- one device

export class DevicePublisher {
  private readonly o: Required<DeviceOptions>;
  private readonly host: string;
  private readonly port: number;
  private readonly connectPacket: Buffer;
  /** Topic name with its length: what comes before the packet identifier. */
  private readonly topicPart: Buffer;
  /** Property length and the `authorization` user property: what comes before the payload. */
  private readonly propsPart: Buffer;

  private socket: Socket | undefined;
  /** Bumped per connection: events of an earlier socket are ignored. */
  private generation = 0;
  private connected = false;
  private closing = false;
  private receiveMaximum = 65_535;
  private reconnectDelay: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private parser = mqttPacket.parser({ protocolVersion: 5 });
  /** Bytes of an incomplete packet from the last socket read. */
  private rest: Buffer | undefined;
  private lastWrite = 0;
  private awaitingPong = false;

  /** QoS 1 messages sent and not yet acknowledged, by packet identifier, in the order sent. */
  private readonly inflight = new Map<number, Buffer>();
  /** Messages not yet sent (disconnected, or the broker's Receive Maximum reached); no identifier yet. */
  private backlog: Buffer[] = [];
  private backlogHead = 0;
  /** Packets for this tick's socket write. */
  private out: Buffer[] = [];
  private nextId = 1;

  private firstConnect: { resolve: () => void; reject: (err: Error) => void; deadline: number } | undefined;
  private closed: (() => void) | undefined;

  constructor(
    options: DeviceOptions,
    private readonly counters: PublishCounters,
  ) {
    this.o = {
      sessionExpiryS: 3600,
      keepaliveS: 60,
      connectTimeoutMs: 30_000,
      reconnectMinMs: 250,
      reconnectMaxMs: 2000,
      ...options,
    };
    const url = new URL(this.o.url);
    if (url.protocol !== 'mqtt:' && url.protocol !== 'tcp:')
      throw new Error(`device publisher speaks plain mqtt:// only (got ${url.protocol}//)`);
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = url.port ? Number(url.port) : 1883;
    this.reconnectDelay = this.o.reconnectMinMs;
    this.connectPacket = mqttPacket.generate(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 5,
        clean: !this.o.persistent,
        clientId: this.o.clientId,
        keepalive: this.o.keepaliveS,
        ...(this.o.persistent ? { properties: { sessionExpiryInterval: this.o.sessionExpiryS } } : {}),
      },
      { protocolVersion: 5 },
    );
    this.topicPart = mqttString(this.o.topic);
    const key = mqttString('authorization');
    const value = mqttString(this.o.token);
    const propsLength = 1 + key.length + value.length;
    this.propsPart = Buffer.allocUnsafe(varintLength(propsLength) + propsLength);
    let at = writeVarint(this.propsPart, 0, propsLength);
    this.propsPart[at++] = 0x26; // User Property
    at += key.copy(this.propsPart, at);
    value.copy(this.propsPart, at);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Messages published and not yet acknowledged (QoS 1) or not yet written (QoS 0). */
  get pending(): number {
    return this.inflight.size + this.backlog.length - this.backlogHead;
  }

  /** Connect; resolves on the first successful CONNACK, rejects if refused or not connected in time. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject, deadline: Date.now() + this.o.connectTimeoutMs };
      watchKeepalive(this, this.o.keepaliveS * 1000);
      this.open();
    });
  }

  /**
   * Publish one message whose payload is `text` (ASCII / latin1, written byte for byte) followed by
   * `tail`. Goes out with this tick's socket write, or is queued while disconnected.
   */
  publish(text: string, tail: Buffer = EMPTY): void {
    const qos = this.o.qos;
    const payloadLength = text.length + tail.length;
    const remaining = this.topicPart.length + (qos ? 2 : 0) + this.propsPart.length + payloadLength;
    const buf = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
    buf[0] = qos ? 0x32 : 0x30;
    let at = writeVarint(buf, 1, remaining);
    at += this.topicPart.copy(buf, at);
    if (qos) at += 2; // packet identifier: written when sent
    at += this.propsPart.copy(buf, at);
    at += buf.write(text, at, 'latin1');
    if (tail.length > 0) tail.copy(buf, at);
    // Behind anything queued, so messages go out in the order published.
    if (
      this.connected &&
      this.backlogHead === this.backlog.length &&
      (qos === 0 || this.inflight.size < this.receiveMaximum)
    )
      this.send(buf);
    else this.backlog.push(buf);
  }

  /**
   * Send DISCONNECT (the session stays on the broker for its expiry interval) and close. Messages
   * still unacknowledged are given up: wait for `pending` to reach 0 first to keep them.
   */
  close(timeoutMs = 2000): Promise<void> {
    if (this.closing) return Promise.resolve();
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.connectTimer);
    unwatchKeepalive(this);
    const socket = this.socket;
    if (!socket || socket.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        socket.destroy();
        resolve();
      }, timeoutMs);
      this.closed = () => {
        clearTimeout(t);
        resolve();
      };
      if (this.connected) {
        this.flush();
        socket.end(DISCONNECT);
      } else socket.destroy();
    });
  }

  /** Called for every device every half keepalive. */
  keepalive(now: number, idleMs: number): void {
    if (!this.connected || !this.socket) return;
    if (this.awaitingPong) return this.fail(this.generation, 'no PINGRESP within the keepalive');
    if (now - this.lastWrite < idleMs) return;
    this.awaitingPong = true;
    this.socket.write(PINGREQ);
    this.lastWrite = now;
  }

  /** Write this tick's packets in one socket write. */
  flush(): void {
    const out = this.out;
    if (out.length === 0) return;
    this.out = [];
    if (!this.connected || !this.socket) {
      // Lost before the write: QoS 1 packets wait in `inflight`; QoS 0 ones go back to the queue.
      if (this.o.qos === 0) this.requeue(out);
      return;
    }
    this.socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    this.lastWrite = Date.now();
    if (this.o.qos === 0) this.counters.acked += out.length;
  }

  // ---------------------------------------------------------------- internals

  private send(buf: Buffer): void {
    if (this.o.qos) {
      let id = this.nextId;
      while (this.inflight.has(id)) id = (id % 65_535) + 1;
      this.nextId = (id % 65_535) + 1;
      // The identifier follows the fixed header and the topic.
      let at = 1;
      while ((buf[at] as number) & 0x80) at++;
      buf.writeUInt16BE(id, at + 1 + this.topicPart.length);
      this.inflight.set(id, buf);
    }
    this.queueWrite(buf);
  }

  private queueWrite(buf: Buffer): void {
    if (this.out.push(buf) === 1) {
      dirty.push(this);
      if (!flushQueued) {
        flushQueued = true;
        process.nextTick(flushAll);
      }
    }
  }

  private requeue(bufs: Buffer[]): void {
    this.backlog = bufs.concat(this.backlog.slice(this.backlogHead));
    this.backlogHead = 0;
  }

  /** Send queued messages while the broker's Receive Maximum allows. */
  private pump(): void {
    const q = this.backlog;
    while (this.backlogHead < q.length && (this.o.qos === 0 || this.inflight.size < this.receiveMaximum))
      this.send(q[this.backlogHead++] as Buffer);
    if (this.backlogHead === q.length) {
      this.backlog = [];
      this.backlogHead = 0;
    } else if (this.backlogHead > 1024 && this.backlogHead * 2 > q.length) {
      this.backlog = q.slice(this.backlogHead);
      this.backlogHead = 0;
    }
  }

  private open(): void {
    if (this.closing) return;
    const gen = ++this.generation;
    this.rest = undefined;
    this.parser = mqttPacket.parser({ protocolVersion: 5 });
    this.parser.on('packet', (p: Packet) => {
      if (gen === this.generation) this.onPacket(p, gen);
    });
    this.parser.on('error', (err: unknown) =>
      this.fail(gen, `malformed packet from the broker: ${String(err)}`),
    );
    // Reads land in one buffer shared by every device (no allocation, no stream per read); onData
    // copies what it keeps.
    const socket = netConnect({
      host: this.host,
      port: this.port,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array): boolean => {
          if (gen === this.generation) this.onData(buf as Buffer, n, gen);
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    this.socket = socket;
    socket.on('connect', () => socket.write(this.connectPacket));
    socket.on('error', (err) => this.fail(gen, err.message));
    socket.on('close', () => {
      if (this.closing) this.closed?.();
      this.fail(gen, 'connection closed');
    });
    this.connectTimer = setTimeout(() => this.fail(gen, 'no CONNACK in time'), this.o.connectTimeoutMs);
  }

  /** Split the stream into packets; PUBACKs are handled here, the rest by mqtt-packet. */
  private onData(read: Buffer, n: number, gen: number): void {
    const buf = this.rest ? Buffer.concat([this.rest, read.subarray(0, n)]) : read;
    const end = this.rest ? buf.length : n;
    this.rest = undefined;
    let i = 0;
    while (i < end) {
      // Fixed header: type and flags, then the remaining length (1..4 bytes).
      let length = 0;
      let mult = 1;
      let at = i + 1;
      let complete = false;
      for (let k = 0; k < 4 && at < end; k++) {
        const b = buf[at++] as number;
        length += (b & 0x7f) * mult;
        mult *= 0x80;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
        if (k === 3) return this.fail(gen, 'malformed packet from the broker: remaining length');
      }
      if (!complete || at + length > end) break;
      const type = (buf[i] as number) >> 4;
      if (type === 4) {
        // PUBACK: identifier, then (MQTT 5, optional) reason code and properties.
        const id = ((buf[at] as number) << 8) | (buf[at + 1] as number);
        this.onPuback(id, length > 2 ? (buf[at + 2] as number) : 0);
      } else if (type === 13) {
        this.awaitingPong = false;
      } else {
        // A copy: the read buffer is reused, and the parser may keep a reference.
        this.parser.parse(Buffer.from(buf.subarray(i, at + length)));
        if (gen !== this.generation) return;
      }
      i = at + length;
    }
    if (i < end) this.rest = Buffer.from(buf.subarray(i, end));
  }

  private onPuback(id: number, reason: number): void {
    if (!this.inflight.delete(id)) return; // not ours (or a duplicate)
    if (reason < 0x80) this.counters.acked++;
    else this.counters.rejected++;
    if (this.backlogHead < this.backlog.length) this.pump();
  }

  private onPacket(p: Packet, gen: number): void {
    if (p.cmd === 'connack') {
      clearTimeout(this.connectTimer);
      const code = p.reasonCode ?? 0;
      if (code !== 0)
        return this.fail(gen, `broker refused the connection: reason 0x${code.toString(16)}`, true);
      this.onConnected(p.sessionPresent, p.properties?.receiveMaximum);
    } else if (p.cmd === 'disconnect') {
      const why = p.properties?.reasonString ?? `reason 0x${(p.reasonCode ?? 0).toString(16)}`;
      this.fail(gen, `broker disconnected: ${why}`);
    }
  }

  private onConnected(_sessionPresent: boolean, receiveMaximum: number | undefined): void {
    this.connected = true;
    this.awaitingPong = false;
    this.receiveMaximum = receiveMaximum ?? 65_535;
    this.reconnectDelay = this.o.reconnectMinMs;
    // Unacknowledged messages again, in the order first sent, marked as duplicates. Without a session
    // (clean start, or the broker lost it) the broker has not stored them either: they go again too.
    for (const buf of this.inflight.values()) {
      buf[0] = (buf[0] as number) | 0x08;
      this.queueWrite(buf);
    }
    this.pump();
    const first = this.firstConnect;
    this.firstConnect = undefined;
    first?.resolve();
  }

  /** The connection `gen` is gone: reconnect with backoff (or give up on a first connect past its deadline). */
  private fail(gen: number, why: string, refused = false): void {
    if (gen !== this.generation) return;
    this.generation++;
    const wasConnected = this.connected;
    this.connected = false;
    clearTimeout(this.connectTimer);
    const socket = this.socket;
    this.socket = undefined;
    if (socket && !socket.destroyed) socket.destroy();
    if (this.o.qos === 0 && this.out.length > 0) this.requeue(this.out);
    this.out = [];
    if (this.closing) return;
    if (wasConnected) this.counters.disconnects++;
    const first = this.firstConnect;
    if (first && (refused || Date.now() >= first.deadline)) {
      this.firstConnect = undefined;
      this.closing = true;
      unwatchKeepalive(this);
      first.reject(new Error(`${this.o.clientId}: ${why}`));
      return;
    }
    const delay = refused ? this.o.reconnectMaxMs : this.reconnectDelay;
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.o.reconnectMaxMs);
    // Jitter, so a fleet that lost its broker does not come back in one burst.
    this.reconnectTimer = setTimeout(() => this.open(), delay * (0.5 + Math.random() * 0.5));
  }
}
