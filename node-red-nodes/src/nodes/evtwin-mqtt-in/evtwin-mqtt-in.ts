/**
 * evtwin-mqtt-in: subscribes like `mqtt in` (same broker configuration node, same msg shape), but
 * acknowledges a QoS 1 message only once the flow has settled it: its readings are in InfluxDB or in
 * evtwin-influx-out's on-disk spool, or it was dead-lettered (see core/receipts.ts). With a persistent
 * session, a crash of Node-RED loses nothing: the broker redelivers what was not acknowledged.
 */
import { createHash } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import type { BatchItem } from '../../core/batch';
import { RateMeter, shortCount } from '../../core/rate';
import { MqttSubscriber, receipts, type InboundMessage, type SubscriberOptions } from '../../runtime';
import { StatusReporter, asError } from '../shared/status';

interface MqttInDef extends NodeDef {
  broker: string;
  topic: string;
  qos: string;
  datatype: string;
  ack: string;
  clientId: string;
  sessionExpiryS: string;
  receiveMaximum: string;
  ackTimeoutS: string;
  output: string;
}

/** Items per batch message at most (a socket read rarely holds more). */
const MAX_BATCH = 1000;

/** What Node-RED's mqtt-broker configuration node resolves (10-mqtt.js setOptions). */
interface BrokerConfigNode extends Node {
  brokerurl?: string;
  options?: ConnectionOptions & {
    username?: string;
    password?: string;
    keepalive?: number;
    protocolVersion?: number;
  };
}

const int = (v: string | undefined, fallback: number, what: string, min: number, max: number): number => {
  if (v === undefined || v.trim() === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`${what} must be a whole number ${min}..${max}, got "${v}"`);
  return n;
};

/** The subscriber's options from this node and its broker node; throws a message fit for the status. */
function subscriberOptions(def: MqttInDef, broker: BrokerConfigNode | null): SubscriberOptions {
  if (!broker?.brokerurl || !broker.options) throw new Error('no MQTT broker selected');
  if (!def.topic?.trim()) throw new Error('no topic');
  const o = broker.options;
  if (o.protocolVersion !== undefined && o.protocolVersion !== 4 && o.protocolVersion !== 5)
    throw new Error('the broker node must use MQTT 3.1.1 or 5');
  const tls: ConnectionOptions = {};
  for (const k of [
    'ca',
    'cert',
    'key',
    'passphrase',
    'rejectUnauthorized',
    'servername',
    'ALPNProtocols',
  ] as const)
    if (o[k] !== undefined) Object.assign(tls, { [k]: o[k] });
  return {
    url: broker.brokerurl,
    // A fixed id per node and subscription: the broker finds the session (and what it holds for us)
    // again after a restart; a changed topic starts a new session instead of inheriting the old one's.
    clientId:
      def.clientId?.trim() ||
      `evtwin-in-${def.id.replace(/[^A-Za-z0-9]/g, '')}-${createHash('sha256').update(`${def.topic.trim()}|${def.qos}`).digest('hex').slice(0, 8)}`,
    protocolVersion: o.protocolVersion === 5 ? 5 : 4,
    ...(o.username ? { username: o.username, password: o.password ?? '' } : {}),
    keepaliveS: o.keepalive ?? 60,
    sessionExpiryS: int(def.sessionExpiryS, 86_400, 'session expiry', 0, 4_294_967_295),
    receiveMaximum: int(def.receiveMaximum, 10_000, 'receive maximum', 1, 65_535),
    ackTimeoutMs: int(def.ackTimeoutS, 60, 'acknowledge timeout', 1, 600) * 1000,
    subscriptions: [{ topic: def.topic.trim(), qos: def.qos === '0' ? 0 : 1 }],
    tls,
  };
}

/** The message `mqtt in` would send, with the payload as configured. */
/** The payload as the node's Output setting asks; throws on JSON that does not parse. */
function decodePayload(m: InboundMessage, datatype: string): unknown {
  if (datatype === 'utf8') return m.payload.toString('utf8');
  if (datatype === 'json') return JSON.parse(m.payload.toString('utf8')) as unknown;
  return m.payload;
}

function toMessage(m: InboundMessage, payload: unknown): NodeMessage {
  const msg: NodeMessage & Record<string, unknown> = {
    topic: m.topic,
    payload,
    qos: m.qos,
    retain: m.retain,
  };
  const p = m.properties;
  if (p?.userProperties) msg.userProperties = p.userProperties;
  if (p?.contentType !== undefined) msg.contentType = p.contentType;
  if (p?.responseTopic !== undefined) msg.responseTopic = p.responseTopic;
  if (p?.correlationData !== undefined) msg.correlationData = p.correlationData;
  if (p?.messageExpiryInterval !== undefined) msg.messageExpiryInterval = p.messageExpiryInterval;
  return msg;
}

export = function register(RED: NodeAPI): void {
  function EvtwinMqttInNode(this: Node, def: MqttInDef): void {
    RED.nodes.createNode(this, def);
    const afterStore = def.ack !== 'received';
    const rate = new RateMeter();
    let subscriber: MqttSubscriber | undefined;
    let problem: string | undefined;
    try {
      subscriber = new MqttSubscriber(
        subscriberOptions(def, RED.nodes.getNode(def.broker) as BrokerConfigNode | null),
      );
    } catch (err) {
      problem = asError(err).message;
      this.error(`configuration: ${problem}`);
    }

    const status = new StatusReporter(this, () => {
      if (!subscriber) return { fill: 'red', shape: 'ring', text: (problem ?? '').slice(0, 60) };
      const s = subscriber.stats();
      if (!s.connected)
        return {
          fill: 'red',
          shape: 'ring',
          text: `disconnected${s.lastError ? `: ${s.lastError.slice(0, 48)}` : ''}`,
        };
      const text = `${shortCount(rate.perSecond(Date.now()))}/s · ${shortCount(s.pending)} unacked`;
      return s.forced > 0
        ? { fill: 'yellow', shape: 'dot', text: `${text} · ${shortCount(s.forced)} acked by timeout` }
        : { fill: 'green', shape: 'dot', text };
    });
    status.refresh();

    /** The payload as configured, or NOT_JSON (and the message answered) when it does not parse. */
    const NOT_JSON = Symbol('not JSON');
    const decode = (m: InboundMessage): unknown => {
      try {
        return decodePayload(m, def.datatype);
      } catch (err) {
        m.settle(); // answered here: it can never parse
        this.error(`${m.topic}: payload is not JSON (${asError(err).message})`, {
          topic: m.topic,
          payload: m.payload,
        });
        return NOT_JSON;
      }
    };
    const receiptFor = (m: InboundMessage): number | undefined => {
      if (afterStore && m.qos > 0) return receipts.issue(m.settle, Date.now(), m.refuse);
      m.settle();
      return undefined;
    };

    // Batch output: what arrives in one read from the socket leaves as one message (core/batch.ts).
    let batch: BatchItem[] = [];
    const sendBatch = (): void => {
      const items = batch;
      batch = [];
      if (items.length > 0) this.send({ topic: def.topic, batch: items });
    };

    subscriber?.on('message', (m) => {
      rate.add(1, Date.now());
      const payload = decode(m);
      if (payload === NOT_JSON) return;
      const receipt = receiptFor(m);
      if (def.output !== 'batch') {
        const msg = toMessage(m, payload);
        if (receipt !== undefined || m.dup)
          msg.evtwin = {
            ...(receipt !== undefined ? { receipt } : {}),
            ...(m.dup ? { redelivered: true } : {}),
          };
        this.send(msg);
        return;
      }
      // Only what auth and ingest read: no full msg per item on this busy path.
      const item: BatchItem = { topic: m.topic, payload };
      const props = m.properties?.userProperties;
      if (props) item.userProperties = props;
      if (receipt !== undefined) item.receipt = receipt;
      if (m.dup) item.redelivered = true;
      if (batch.push(item) === 1) queueMicrotask(sendBatch);
      else if (batch.length >= MAX_BATCH) sendBatch();
    });
    subscriber?.on('error', (err) => {
      this.error(err.message);
      status.refresh();
    });
    subscriber?.on('warning', (text) => this.warn(text));
    subscriber?.on('connect', ({ sessionPresent }) => {
      this.log(`connected${sessionPresent ? ' (session resumed)' : ''}`);
      status.refresh();
    });
    subscriber?.on('disconnect', (why) => {
      this.warn(`disconnected: ${why}`);
      status.refresh();
    });
    subscriber?.start();

    this.on('close', (done: () => void) => {
      status.close();
      // Let the flow settle what it holds (its PUBACKs still go out), then leave the session to the broker.
      (subscriber?.close() ?? Promise.resolve())
        .catch((err: unknown) => this.warn(asError(err).message))
        .finally(done);
    });
  }
  RED.nodes.registerType('evtwin-mqtt-in', EvtwinMqttInNode);
};
