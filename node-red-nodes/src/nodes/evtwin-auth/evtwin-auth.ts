/**
 * evtwin-auth: the gate between `mqtt in` and evtwin-ingest. Checks the device credential (MQTT v5
 * user property `authorization`, or a `token` field in the payload) or opens a Fernet envelope
 * with the device's key, refuses replays, throttles repeated failures. Output 1: the parsed (and
 * decrypted) payload without the credential, with msg.evtwin.identity; output 2: rejections with
 * msg.error.code = the reason. The logic is core/authGate.ts; this adapter only wires it in.
 */
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import { AuthGate, type AuthInput, type AuthResult } from '../../core/authGate';
import { RateMeter, shortCount } from '../../core/rate';
import { DEFAULT_REPLAY, DEFAULT_THROTTLE } from '../../core/replay';
import { RejectionAggregator } from '../../runtime/auditLog';
import { receipts, settleReceipts } from '../../runtime/receipts';
import { batchOf, type BatchItem } from '../../core/batch';
import { DEFAULT_TELEMETRY_TEMPLATE, compileTopicTemplate } from '../../core/topics';
import type { RegistryConfigNode } from '../evtwin-registry/config';
import { StatusReporter, asError } from '../shared/status';

interface AuthNodeDef extends NodeDef {
  registry: string;
  topicTemplate: string;
  defaultSite: string;
  ttlS: string;
  maxKiB: string;
  seqWindow: string;
  failBurst: string;
  failPerMinute: string;
}

const num = (v: string | undefined, fallback: number, what: string): number => {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${what} must be a non-negative number, got "${v}"`);
  return n;
};

export = function register(RED: NodeAPI): void {
  function EvtwinAuthNode(this: Node, def: AuthNodeDef): void {
    RED.nodes.createNode(this, def);
    const registry = RED.nodes.getNode(def.registry) as RegistryConfigNode | null;
    const passed = new RateMeter();
    const rejected = new RateMeter();
    let lastReason = '';
    let gate: AuthGate | undefined;
    let configError: string | undefined;
    try {
      if (!registry) throw new Error('no evtwin-registry selected');
      const ttlS = num(def.ttlS, 120, 'Fernet TTL');
      gate = new AuthGate({
        template: compileTopicTemplate(def.topicTemplate || DEFAULT_TELEMETRY_TEMPLATE),
        ...(def.defaultSite ? { defaultSite: def.defaultSite } : {}),
        ttlS,
        maxBytes: Math.round(num(def.maxKiB, 256, 'max size') * 1024),
        replay: {
          ...DEFAULT_REPLAY,
          seqWindow: Math.max(1, Math.round(num(def.seqWindow, DEFAULT_REPLAY.seqWindow, 'seq window'))),
          fernetMemoryMs: (ttlS + 60) * 1000,
        },
        throttle: {
          ...DEFAULT_THROTTLE,
          burst: Math.max(1, num(def.failBurst, DEFAULT_THROTTLE.burst, 'failure burst')),
          perMinute: num(def.failPerMinute, DEFAULT_THROTTLE.perMinute, 'failures per minute'),
        },
      });
    } catch (err) {
      configError = asError(err).message;
      this.error(`configuration: ${configError}`);
    }

    // Rejections reach the audit log as one event per device and minute.
    const aggregate = new RejectionAggregator({
      sink: { record: (ev) => registry?.audit.record(ev) },
      actor: `node:${this.id}`,
    });

    const status = new StatusReporter(this, () => {
      const now = Date.now();
      const why = configError ?? registry?.configError ?? registry?.service?.error;
      if (why) return { fill: 'red', shape: 'ring', text: why.slice(0, 60) };
      const text = `${shortCount(passed.perSecond(now))}/s ok · ${shortCount(rejected.perSecond(now))}/s rejected`;
      return rejected.perSecond(now) > 0
        ? { fill: 'yellow', shape: 'dot', text: `${text} (${lastReason})` }
        : { fill: 'green', shape: 'dot', text };
    });
    status.refresh();

    const check = (input: AuthInput, now: number): AuthResult =>
      gate
        ? gate.check(input, registry?.service?.index(), now)
        : { ok: false, reason: 'unavailable', detail: `node not configured: ${configError}` };

    /** Count and audit a rejection; the msg.error of its message on output 2. */
    const rejectionError = (
      result: Extract<AuthResult, { ok: false }>,
      topic: string,
      now: number,
    ): NodeMessage['error'] => {
      rejected.add(1, now);
      lastReason = result.reason;
      aggregate.recordRejection(result.device ?? `topic:${topic}`, result.reason);
      return {
        message: `${result.reason}: ${result.detail}`,
        code: result.reason,
        source: { id: this.id, type: this.type, name: this.name },
      };
    };

    /** A refused item of a batch becomes a message of its own on output 2, as it would have alone. */
    const rejection = (
      item: BatchItem,
      result: Extract<AuthResult, { ok: false }>,
      now: number,
    ): NodeMessage => {
      const { authorization: _credential, ...otherProps } = item.userProperties ?? {};
      if (item.receipt !== undefined) receipts.settle(item.receipt);
      return {
        topic: item.topic,
        payload: item.payload,
        ...(item.userProperties ? { userProperties: otherProps } : {}),
        error: rejectionError(result, item.topic, now),
      };
    };

    this.on('input', (msg: NodeMessageInFlow, send, done) => {
      const batch = batchOf(msg);
      if (batch) {
        try {
          const now = Date.now();
          const good: BatchItem[] = [];
          const bad: NodeMessage[] = [];
          for (const item of batch) {
            const result = check(item, now);
            if (result.ok) {
              // The credential never travels further than this node.
              const { userProperties: _props, ...kept } = item;
              good.push({ ...kept, payload: result.body, identity: result.identity });
            } else bad.push(rejection(item, result, now));
          }
          passed.add(good.length, now);
          const { _msgid: _ignored, ...rest } = msg;
          send([good.length > 0 ? { ...rest, batch: good } : null, bad]);
          done();
        } catch (err) {
          for (const item of batch) if (item.receipt !== undefined) receipts.settle(item.receipt);
          done(asError(err));
        }
        return;
      }
      try {
        const now = Date.now();
        const { _msgid: _ignored, ...rest } = msg;
        // The credential never travels further than this node.
        const props = rest.userProperties as Record<string, unknown> | undefined;
        const { authorization: _credential, ...otherProps } =
          typeof props === 'object' && props !== null ? props : ({} as Record<string, unknown>);
        const carried =
          typeof rest.evtwin === 'object' && rest.evtwin !== null ? (rest.evtwin as object) : {};
        const redelivered = (carried as { redelivered?: unknown }).redelivered === true;
        const result = check(
          { topic: msg.topic, payload: msg.payload, userProperties: msg.userProperties, redelivered },
          now,
        );
        if (props !== undefined) rest.userProperties = otherProps;
        if (result.ok) {
          passed.add(1, now);
          const out: NodeMessage = {
            ...rest,
            payload: result.body,
            evtwin: { ...carried, identity: result.identity },
          };
          send([out, null]);
        } else {
          // msg.topic may be anything an upstream node set: String() of an object can throw.
          const topic = typeof msg.topic === 'string' ? msg.topic : `(${typeof msg.topic})`;
          send([null, { ...rest, error: rejectionError(result, topic, now) }]);
          settleReceipts(msg); // answered: its path ends in the rejection output
        }
        done();
      } catch (err) {
        settleReceipts(msg);
        done(asError(err));
      }
    });

    this.on('close', () => {
      aggregate.close();
      status.close();
    });
  }
  RED.nodes.registerType('evtwin-auth', EvtwinAuthNode);
};
