/**
 * evtwin-shard: canonical reading → the same reading addressed to its shard topic
 * (`evtwin/v1/_shard/{k}/{site}/{asset}`) for an `mqtt out` node (output 1); anything that is not a
 * routable reading → output 2 with msg.error. The routing is core/shard.ts.
 */
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import { RateMeter, checkShardCount, isReading, routeReading, shortCount } from '../../core';
import { StatusReporter, asError } from '../shared/status';

interface ShardNodeDef extends NodeDef {
  shards: string;
  qos: string;
}

export = function register(RED: NodeAPI): void {
  function EvtwinShardNode(this: Node, def: ShardNodeDef): void {
    RED.nodes.createNode(this, def);
    const routed = new RateMeter();
    let shards = 0;
    let configError: string | undefined;
    const qos = def.qos === '0' ? 0 : 1;
    try {
      shards = Number(def.shards);
      checkShardCount(shards);
    } catch (err) {
      configError = asError(err).message;
      this.error(`configuration: ${configError}`);
    }
    const status = new StatusReporter(this, () =>
      configError
        ? { fill: 'red', shape: 'ring', text: configError.slice(0, 60) }
        : {
            fill: 'green',
            shape: 'dot',
            text: `${shards} shards · ${shortCount(routed.perSecond(Date.now()))}/s · ${shortCount(routed.total)} routed`,
          },
    );
    status.refresh();

    this.on('input', (msg: NodeMessageInFlow, send, done) => {
      const { _msgid: _ignored, ...rest } = msg;
      const carried = typeof msg.evtwin === 'object' && msg.evtwin !== null ? (msg.evtwin as object) : {};
      // An array of readings (a batch from evtwin-ingest) is routed reading by reading.
      const list: unknown[] = Array.isArray(msg.payload) ? msg.payload : [msg.payload];
      const good: NodeMessage[] = [];
      const bad: NodeMessage[] = [];
      for (const reading of list) {
        const route = configError
          ? { ok: false as const, reason: `node not configured: ${configError}` }
          : isReading(reading)
            ? routeReading(reading, shards)
            : { ok: false as const, reason: 'payload is not a canonical reading' };
        if (!route.ok) {
          bad.push({
            ...rest,
            payload: reading,
            error: { message: route.reason, code: 'not-routable', source: { id: this.id, type: this.type } },
          });
          continue;
        }
        good.push({
          ...rest,
          payload: reading,
          topic: route.topic,
          qos,
          retain: false,
          evtwin: { ...carried, shard: route.shard },
        });
      }
      routed.add(good.length, Date.now());
      send([good, bad]);
      done();
    });
    this.on('close', () => status.close());
  }
  RED.nodes.registerType('evtwin-shard', EvtwinShardNode);
};
