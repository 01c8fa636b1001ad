/**
 * Batches: several device messages in one Node-RED message. Node-RED spends a fixed cost per message
 * and hop (ids, hooks, scheduling, copies); at thousands of device messages a second that cost, not
 * the work, fills the CPU. evtwin-mqtt-in's batch output puts the messages that arrived together on
 * `msg.batch`; evtwin-auth checks each item and passes the good ones on as a batch; evtwin-ingest
 * turns a batch into one message whose payload is the array of readings (a contract evtwin-score,
 * evtwin-shard and evtwin-influx-out take). Each item keeps what its own message would have carried.
 */
import type { Identity } from './authGate';

export interface BatchItem {
  topic: string;
  payload: unknown;
  /** MQTT 5 user properties (the device credential until evtwin-auth removes it). */
  userProperties?: Record<string, unknown>;
  /** The item's receipt (see receipts.ts), when its source acknowledges late. */
  receipt?: number;
  /** The broker delivers it again (MQTT DUP): see AuthInput.redelivered. */
  redelivered?: boolean;
  /** Set by evtwin-auth: who sent it. */
  identity?: Identity;
}

/** The batch a message carries on msg.batch, or undefined when it is a message of its own. */
export function batchOf(msg: object): BatchItem[] | undefined {
  const b = (msg as { batch?: unknown }).batch;
  return Array.isArray(b) ? (b as BatchItem[]) : undefined;
}
