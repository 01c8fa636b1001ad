/** evtwin-ingest: MQTT message → canonical readings (output 1) and dead letters (output 2). */
import { readFileSync } from 'node:fs';
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import {
  DEFAULT_LIMITS,
  DEFAULT_TELEMETRY_TEMPLATE,
  RateMeter,
  compileTopicTemplate,
  indexAssets,
  ingestMessage,
  parseAssetModel,
  shortCount,
  type IngestConfig,
  type Reading,
  type Rejection,
} from '../../core';
import { batchOf, type BatchItem } from '../../core/batch';
import { receiptOf } from '../../core/receipts';
import { receipts } from '../../runtime/receipts';
import { StatusReporter, asError } from '../shared/status';

interface IngestNodeDef extends NodeDef {
  topicTemplate: string;
  defaultSite: string;
  defaultKind: string;
  assetsFile: string;
  maxKiB: string;
  maxFutureS: string;
  maxPastH: string;
  requireTs: boolean;
}

const num = (v: string | undefined, fallback: number): number => {
  const n = Number(v);
  return v !== undefined && v !== '' && Number.isFinite(n) && n >= 0 ? n : fallback;
};

/** Build the core's config from the node's properties; throws with a message fit for the status. */
function ingestConfigFrom(def: IngestNodeDef): IngestConfig {
  const config: IngestConfig = {
    template: compileTopicTemplate(def.topicTemplate || DEFAULT_TELEMETRY_TEMPLATE),
    defaultKind: def.defaultKind || 'generic',
    limits: {
      maxBytes: Math.round(num(def.maxKiB, DEFAULT_LIMITS.maxBytes / 1024) * 1024),
      maxItems: DEFAULT_LIMITS.maxItems,
      maxFutureMs: num(def.maxFutureS, DEFAULT_LIMITS.maxFutureMs / 1000) * 1000,
      maxPastMs: num(def.maxPastH, DEFAULT_LIMITS.maxPastMs / 3_600_000) * 3_600_000,
      defaultTsToReceiveTime: !def.requireTs,
    },
  };
  if (def.defaultSite) config.defaultSite = def.defaultSite;
  const file = def.assetsFile?.trim();
  if (file) config.assets = indexAssets(parseAssetModel(readFileSync(file, 'utf8'), file));
  return config;
}

export = function register(RED: NodeAPI): void {
  function EvtwinIngestNode(this: Node, def: IngestNodeDef): void {
    RED.nodes.createNode(this, def);
    const readings = new RateMeter();
    const rejected = new RateMeter();
    let lastReject = '';
    let config: IngestConfig | undefined;
    let configError: string | undefined;
    try {
      config = ingestConfigFrom(def);
    } catch (err) {
      configError = asError(err).message;
      this.error(`configuration: ${configError}`);
    }
    const status = new StatusReporter(this, () => {
      const now = Date.now();
      if (configError) return { fill: 'red', shape: 'ring', text: configError.slice(0, 60) };
      const text = `${shortCount(readings.perSecond(now))}/s · ${shortCount(readings.total)} in · ${shortCount(rejected.total)} rejected`;
      return rejected.perSecond(now) > 0
        ? { fill: 'yellow', shape: 'dot', text: `${text} (${lastReject})` }
        : { fill: 'green', shape: 'dot', text };
    });
    status.refresh();

    const ingest = (
      topic: string,
      payload: unknown,
      receivedAt: number,
    ): { readings: Reading[]; rejections: Rejection[] } =>
      config
        ? ingestMessage(topic, payload, receivedAt, config)
        : {
            readings: [],
            rejections: [{ code: 'config-error', reason: `node not configured: ${configError}` }],
          };

    /** A dead letter: the original payload and topic with the reason on msg.error. */
    const deadLetter = (
      base: object,
      topic: string,
      payload: unknown,
      r: Rejection,
      origin: object,
    ): NodeMessage => ({
      ...base,
      topic,
      payload,
      error: {
        message: r.reason,
        code: r.code,
        index: r.index,
        source: { id: this.id, type: this.type, name: this.name },
      },
      evtwin: origin,
    });

    const count = (good: number, rejections: readonly Rejection[], receivedAt: number): void => {
      readings.add(good, receivedAt);
      if (rejections.length > 0) {
        rejected.add(rejections.length, receivedAt);
        lastReject = rejections[0]?.code ?? '';
      }
    };

    this.on('input', (msg: NodeMessageInFlow, send, done) => {
      const batch = batchOf(msg);
      if (batch) return onBatch(msg, batch, send, done);
      const receivedAt = Date.now();
      const topic = typeof msg.topic === 'string' ? msg.topic : '';
      const result = ingest(topic, msg.payload, receivedAt);
      // Keep what an earlier node put on msg.evtwin (evtwin-auth's verified identity).
      const carried = typeof msg.evtwin === 'object' && msg.evtwin !== null ? (msg.evtwin as object) : {};
      const origin = { ...carried, topic, receivedAt };
      const { _msgid: _ignored, ...rest } = msg;
      const good: NodeMessage[] = result.readings.map((reading) => ({
        ...rest,
        payload: reading,
        evtwin: origin,
      }));
      const bad = result.rejections.map((r) => deadLetter(rest, topic, msg.payload, r, origin));
      count(good.length, result.rejections, receivedAt);
      // One message became good.length readings: each must be settled downstream; dead letters end here.
      const receipt = receiptOf(msg);
      if (receipt !== undefined) receipts.fork(receipt, good.length);
      send([good, bad]);
      done();
    });

    /**
     * A batch (see core/batch.ts) → one message with every good reading in payload (an array) and the
     * receipts of the items they came from; dead letters one per rejection, as for single messages.
     */
    const onBatch = (
      msg: NodeMessageInFlow,
      batch: BatchItem[],
      send: (m: (NodeMessage | NodeMessage[] | null)[]) => void,
      done: (err?: Error) => void,
    ): void => {
      const receivedAt = Date.now();
      const good: Reading[] = [];
      const held: number[] = [];
      const bad: NodeMessage[] = [];
      const rejections: Rejection[] = [];
      for (const item of batch) {
        const result = ingest(item.topic, item.payload, receivedAt);
        for (const r of result.readings) good.push(r);
        const origin = {
          ...(item.identity ? { identity: item.identity } : {}),
          topic: item.topic,
          receivedAt,
        };
        for (const r of result.rejections) {
          rejections.push(r);
          bad.push(deadLetter({}, item.topic, item.payload, r, origin));
        }
        // The item's readings travel in the one message below: settled there, or here if it has none.
        if (item.receipt !== undefined) {
          if (result.readings.length > 0) held.push(item.receipt);
          else receipts.settle(item.receipt);
        }
      }
      count(good.length, rejections, receivedAt);
      const { _msgid: _ignored, batch: _batch, ...rest } = msg;
      const carried = typeof msg.evtwin === 'object' && msg.evtwin !== null ? (msg.evtwin as object) : {};
      send([
        good.length > 0
          ? { ...rest, payload: good, evtwin: { ...carried, receivedAt, receipts: held } }
          : null,
        bad,
      ]);
      done();
    };

    this.on('close', () => status.close());
  }
  RED.nodes.registerType('evtwin-ingest', EvtwinIngestNode);
};
