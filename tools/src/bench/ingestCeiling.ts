/**
 * The ceiling of the ingestion benchmark: one mqtt.js subscriber (QoS 1) that only counts what the
 * broker delivers and reads the publish time at the head of each payload, no other processing. Its
 * latency is publish → received by the subscriber (there is no store behind it). Child process, IPC:
 * `step` waits `graceMs`, reports what arrived since the last report, and starts counting anew.
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { TOPIC_FILTER, type FromChild, type ToChild } from './ingestKit';

const { values: args } = parseArgs({ options: { url: { type: 'string' } } });
const send = (m: FromChild): void => {
  process.send?.(m);
};

// Latency histogram in whole ms (the payload's ts is ms); the last bucket holds everything beyond.
const MAX_MS = 60_000;
let hist = new Uint32Array(MAX_MS + 1);
let received = 0;

const HEAD = Buffer.from('{"ts":');

async function main(): Promise<void> {
  const client = await mqtt.connectAsync(args.url ?? '', {
    protocolVersion: 5,
    clean: true,
    reconnectPeriod: 500,
  });
  client.on('message', (_topic, payload) => {
    received++;
    if (payload.subarray(0, HEAD.length).equals(HEAD)) {
      const ts = Number(payload.toString('latin1', HEAD.length, HEAD.length + 13));
      const lat = Math.max(0, Math.min(MAX_MS, Date.now() - ts));
      if (Number.isFinite(lat)) hist[lat] = (hist[lat] ?? 0) + 1;
    }
  });
  await client.subscribeAsync(TOPIC_FILTER, { qos: 1 });
  process.on('message', (m: ToChild) => {
    if (m.type === 'step') {
      setTimeout(() => {
        const h = hist;
        const n = received;
        hist = new Uint32Array(MAX_MS + 1);
        received = 0;
        const total = h.reduce((a, b) => a + b, 0);
        const at = (p: number): number => {
          const want = Math.ceil((p / 100) * total);
          let acc = 0;
          for (let i = 0; i < h.length; i++) {
            acc += h[i] as number;
            if (acc >= want && want > 0) return i;
          }
          return NaN;
        };
        let max = NaN;
        for (let i = h.length - 1; i >= 0; i--)
          if ((h[i] as number) > 0) {
            max = i;
            break;
          }
        send({ type: 'ceiling-step', label: m.label, received: n, p50: at(50), p99: at(99), max });
      }, m.graceMs);
    } else if (m.type === 'stop') {
      client.endAsync().finally(() => process.exit(0));
    }
  });
  send({ type: 'ready' });
}

main().catch((err: unknown) => {
  send({ type: 'error', message: String(err) });
  process.exit(1);
});
