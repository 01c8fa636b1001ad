/**
 * Publisher child of the ingestion benchmark and the chaos run: one MQTT v5 connection per simulated
 * device (so the broker and the pipeline see real fan-in), each message one reading of five metrics
 * `{ts, seq, values}` with the device's token as user property `authorization`. Runs in its own
 * process so its CPU is never counted as the pipeline's. Driven over IPC: `run` publishes at a target
 * rate for a number of seconds and answers `step-done`; `stop` disconnects and exits.
 *
 * The transport is devicePublisher.ts, not mqtt.js: devices really run elsewhere, so this process must
 * cost the machine under test as little as it can (pre-encoded packets, one socket write per device
 * per tick). QoS 1 by default: every unacknowledged message is kept and sent again (DUP) after a
 * reconnect, and what is published while the broker is away is queued, so a broker restart loses
 * nothing here.
 */
import { parseArgs } from 'node:util';
import { DevicePublisher, type PublishCounters } from './devicePublisher';
import { METRICS, assetOf, readTokens, topicOf, type FromChild, type ToChild } from './ingestKit';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    tokens: { type: 'string' },
    devices: { type: 'string' },
    // This process's share of the fleet: device indexes [from, to).
    from: { type: 'string', default: '0' },
    to: { type: 'string' },
    probes: { type: 'string', default: '0' },
    qos: { type: 'string', default: '1' },
    persistent: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '200' },
  },
});

const send = (m: FromChild): void => {
  process.send?.(m);
};

interface Device {
  client: DevicePublisher;
  seq: number;
  lastTs: number;
}

const qos = Number(args.qos) === 0 ? 0 : 1;
const devices: Device[] = [];
const counters: PublishCounters = { acked: 0, rejected: 0, disconnects: 0 };
let sent = 0;

async function connectAll(): Promise<void> {
  const url = args.url ?? '';
  const tokens = readTokens(args.tokens ?? '');
  const n = Number(args.devices ?? tokens.length);
  const from = Number(args.from);
  const to = Math.min(n, Number(args.to ?? n));
  const probes = Number(args.probes);
  const concurrency = Math.max(1, Number(args.concurrency));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = from + next++;
      if (i >= to) return;
      const asset = assetOf(i, probes);
      const client = new DevicePublisher(
        {
          url,
          clientId: `evtwin-bench-pub-${i}`,
          topic: topicOf(asset),
          token: tokens[i] ?? '',
          qos,
          persistent: args.persistent,
          sessionExpiryS: 3600,
          keepaliveS: 60,
          connectTimeoutMs: 30_000,
        },
        counters,
      );
      await client.connect(); // then reconnects by itself; failures show as missing acks
      devices[i - from] = { client, seq: 0, lastTs: 0 };
      if (i % 1000 === 999)
        send({ type: 'progress', sent, acked: counters.acked, connected: devices.filter(Boolean).length });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/**
 * The payload after `{"ts":…,"seq":…`: the values depend only on seq % 20, so the 20 variants are
 * encoded once. Bytes as before: `{"ts":T,"seq":S,"values":{"power":12.35,…}}`.
 */
const VALUES_TAIL: Buffer[] = Array.from({ length: 20 }, (_, w) =>
  Buffer.from(
    `,"values":{"${METRICS[0]}":${(12 + w * 0.05).toFixed(2)},"${METRICS[1]}":${(230 + w * 0.1).toFixed(1)},"${METRICS[2]}":${(5 + w * 0.02).toFixed(2)},"${METRICS[3]}":${(40 + w * 0.1).toFixed(1)},"${METRICS[4]}":${(1 + w * 0.01).toFixed(2)}}}`,
    'latin1',
  ),
);

function publishOne(d: Device): void {
  // Strictly increasing ms per device: (asset, ts) is the point's identity in InfluxDB.
  const ts = Math.max(Date.now(), d.lastTs + 1);
  d.lastTs = ts;
  const seq = ++d.seq;
  sent++;
  d.client.publish(`{"ts":${ts},"seq":${seq}`, VALUES_TAIL[seq % 20]);
}

let running: { stop: boolean } | undefined;
/** Round-robin position, kept across steps so every device gets its turn. */
let cursor = 0;
let order: number[] | undefined;

/**
 * The round-robin order, with the probe devices (the first `probes` indexes) spread evenly through it:
 * latency samples then come from all through a step, not from its start.
 */
function roundRobin(n: number, probes: number): number[] {
  const slots: (number | undefined)[] = new Array<number | undefined>(n).fill(undefined);
  for (let i = 0; i < probes; i++) slots[Math.floor((i * n) / probes)] = i;
  let next = probes;
  return slots.map((v) => (v === undefined ? next++ : v));
}

async function run(rate: number, seconds: number, label: string): Promise<void> {
  const state = { stop: false };
  running = state;
  const start = Date.now();
  const sent0 = sent;
  const acked0 = counters.acked;
  let firstTs = 0;
  // Probes are the fleet's first indexes: this process holds those below `probes`, at its start.
  const localProbes = Math.max(
    0,
    Math.min(Number(args.probes), Number(args.to ?? Infinity)) - Number(args.from),
  );
  order ??= roundRobin(devices.length, Math.min(devices.length, localProbes));
  const seq = order;
  let lastProgress = start;
  const end = start + seconds * 1000;
  while (!state.stop) {
    const now = Date.now();
    if (now >= end) break;
    const due = Math.floor((rate * (now - start)) / 1000) - (sent - sent0);
    // Cap one tick's burst so the event loop still reads acks.
    for (let k = 0; k < Math.min(due, 2000); k++) {
      const d = devices[seq[cursor] as number] as Device;
      cursor = (cursor + 1) % seq.length;
      if (firstTs === 0) firstTs = Math.max(Date.now(), d.lastTs + 1);
      publishOne(d);
    }
    if (now - lastProgress >= 500) {
      lastProgress = now;
      send({ type: 'progress', sent, acked: counters.acked, connected: devices.length });
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const lastTs = devices.reduce((m, d) => Math.max(m, d.lastTs), 0);
  // Give QoS 1 acknowledgements a moment (a broker restart may hold them longer: they are counted later).
  const ackDeadline = Date.now() + 5000;
  while (counters.acked - acked0 < sent - sent0 && Date.now() < ackDeadline)
    await new Promise((r) => setTimeout(r, 20));
  send({
    type: 'step-done',
    label,
    sent: sent - sent0,
    acked: counters.acked - acked0,
    firstTs,
    lastTs,
    seconds: (Date.now() - start) / 1000,
  });
  send({ type: 'progress', sent, acked: counters.acked, connected: devices.length });
}

process.on('message', (m: ToChild) => {
  if (m.type === 'run') {
    run(m.rate, m.seconds, m.label).catch((err: unknown) => send({ type: 'error', message: String(err) }));
  } else if (m.type === 'stop') {
    if (running) running.stop = true;
    // Wait for outstanding acks (bounded), then leave.
    const deadline = Date.now() + 30_000;
    const finish = async (): Promise<void> => {
      while (counters.acked < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      send({ type: 'progress', sent, acked: counters.acked, connected: devices.length });
      await Promise.all(devices.map((d) => d.client.close()));
      process.exit(0);
    };
    void finish();
  }
});

connectAll().then(
  () => send({ type: 'ready', detail: `${devices.length} devices connected` }),
  (err: unknown) => {
    send({ type: 'error', message: `connecting: ${String(err)}` });
    process.exit(1);
  },
);
