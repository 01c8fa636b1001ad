/** evtwin-influx-out: readings or points → the shared InfluxDB writer of an evtwin-influx config node. */
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';
import { isReading, readingToPoint, shortCount } from '../../core';
import { receiptsOf } from '../../core/receipts';
import { SpoolFullError, receipts, type RejectedBatch, type WriterStats } from '../../runtime';
import type { InfluxConfigNode } from '../evtwin-influx/config';
import { StatusReporter, asError } from '../shared/status';

interface InfluxOutDef extends NodeDef {
  influx: string;
}

/** A rejection keeps the status red this long, so it is seen. */
const REJECT_RED_MS = 60_000;
const clip = (s: string | undefined, n = 60): string =>
  !s ? '' : s.length > n ? s.slice(0, n - 1) + '…' : s;

function statusOf(s: WriterStats, now: number): NodeStatus {
  const counts = `queued ${shortCount(s.queued)} · spooled ${shortCount(s.spooled)} · written ${shortCount(s.written)}`;
  if (s.full) {
    const mb = (s.spoolMaxBytes / 1_048_576).toFixed(1);
    return {
      fill: 'red',
      shape: 'ring',
      text: `spool full (${mb} MB): refusing points · ${clip(s.lastError, 40)}`,
    };
  }
  if (s.lastRejectedAt !== undefined && now - s.lastRejectedAt < REJECT_RED_MS) {
    return {
      fill: 'red',
      shape: 'dot',
      text: `${s.rejectedBatches} batch(es) rejected: ${clip(s.lastRejected)}`,
    };
  }
  if (s.down) {
    const held = shortCount(s.queued + s.spooled);
    return {
      fill: 'yellow',
      shape: 'ring',
      text: `InfluxDB down: spooling ${held} points, last error ${clip(s.lastError)}`,
    };
  }
  if (s.spooled > 0) return { fill: 'yellow', shape: 'dot', text: `replaying spool · ${counts}` };
  return { fill: 'green', shape: 'dot', text: counts };
}

export = function register(RED: NodeAPI): void {
  function EvtwinInfluxOutNode(this: Node, def: InfluxOutDef): void {
    RED.nodes.createNode(this, def);
    const config = RED.nodes.getNode(def.influx) as InfluxConfigNode | null;
    const writer = config?.writer;
    const problem = !config
      ? 'no InfluxDB configuration selected'
      : (config.configError ?? 'InfluxDB writer unavailable');
    const status = new StatusReporter(this, () =>
      writer ? statusOf(writer.stats(), Date.now()) : { fill: 'red', shape: 'ring', text: clip(problem) },
    );
    status.refresh();

    // A batch InfluxDB refused (400): loud, and catchable by a Catch node through the message.
    const onRejected = (r: RejectedBatch): void => {
      if (r.sources && !r.sources.includes(this.id)) return;
      const where = r.file ? `; kept in ${r.file}` : '';
      this.error(`InfluxDB rejected a batch of ${r.points} points: ${r.reason}${where}`, {
        topic: 'evtwin/influx/rejected',
        payload: r,
      });
      status.refresh();
    };
    writer?.on('rejected', onRejected);

    this.on('input', (msg: NodeMessageInFlow, _send, done) => {
      // The message's source (evtwin-mqtt-in) acknowledges it once its points are safe, or refused loudly.
      const held = receiptsOf(msg);
      const settle =
        held.length === 0
          ? undefined
          : (): void => {
              for (const id of held) receipts.settle(id);
            };
      try {
        if (!writer) throw new Error(problem);
        const items: unknown[] = Array.isArray(msg.payload) ? msg.payload : [msg.payload];
        const points = items.map((x) => (isReading(x) ? readingToPoint(x) : x));
        // Throws SpoolFullError (nothing of this message accepted): done(err) makes it catchable.
        const { refused } = writer.write(points, this.id, settle);
        if (refused.length === 0) return done();
        const listed = refused
          .slice(0, 5)
          .map((r) => `[${r.index}] ${r.reason}`)
          .join('; ');
        const more = refused.length > 5 ? `; and ${refused.length - 5} more` : '';
        done(
          new Error(
            `${refused.length} of ${items.length} points refused, the others written: ${listed}${more}`,
          ),
        );
      } catch (err) {
        // A full spool with a source that can deliver again (evtwin-mqtt-in): the message stays with the
        // broker until there is room. Anything else: settled, and the error says what was not written.
        const back =
          err instanceof SpoolFullError &&
          held.length > 0 &&
          held.map((id) => receipts.refuse(id)).every(Boolean);
        if (!back) settle?.();
        status.refresh();
        done(
          back
            ? new Error(`${asError(err).message}; the broker keeps the message and delivers it again`)
            : asError(err),
        );
      }
    });

    this.on('close', () => {
      writer?.off('rejected', onRejected);
      status.close();
    });
  }
  RED.nodes.registerType('evtwin-influx-out', EvtwinInfluxOutNode);
};
