/**
 * The device simulator's engine (imperative shell around device.ts): schedules readings in simulated
 * time, publishes them over MQTT v5 with bounded in-flight windows, counts acknowledgements, writes
 * fault labels. `startSimulator` is what the CLI, the local stack and the end-to-end tests call.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect, type IClientPublishOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import type { Asset } from 'node-red-contrib-evtwin';
import { DeviceSim, MAX_RATE, type SimReading } from './device';
import { assetKey, resolveFaults, type FaultLabel, type FaultSpec } from './faults';

export { DeviceSim, MAX_RATE, simReading, type SimReading, type DeviceOptions } from './device';
export * from './faults';
export { createModel, diurnalDemand, localHour, type SignalModel, type StepContext } from './models';
export { Rng, hashString } from './prng';
export { DEFAULT_ASSETS_FILE, SYNTHETIC_SITE, assetsToModelText, loadAssets, syntheticAssets } from './fleet';

export interface SimulatorOptions {
  /** Broker URL, e.g. mqtt://127.0.0.1:1883 (credentials may be in the URL). */
  url: string;
  assets: Asset[];
  /** Readings per simulated second per device (fractional allowed, at most 1000). */
  rate: number;
  /** Exactly this many readings per device, then done. */
  count?: number;
  /** Simulated seconds to cover (readings with ts < start + duration), then done. */
  durationS?: number;
  seed: number;
  qos: 0 | 1;
  /** Readings per message (an array payload when > 1). */
  batch: number;
  connectionPerDevice: boolean;
  faults: FaultSpec[];
  /** Probability per device per simulated minute that a random fault begins (0..1). */
  faultRate?: number;
  /** Range of random fault durations in simulated seconds; [30, 300] by default. */
  faultDurationS?: [number, number];
  /**
   * Simulated epoch ms of the first reading. Default: now; or, when speed > 1 and the run has an end,
   * early enough that the last reading is stamped about now (a backfill never lands in the future).
   */
  startTs?: number;
  /** Simulated seconds per wall second; Infinity: as fast as the broker acknowledges. Default 1. */
  speed?: number;
  onProgress?: (progress: SimProgress) => void;
  progressIntervalMs?: number;
  /** Ground-truth fault labels are appended here as JSON lines (the file is truncated first). */
  labelsFile?: string;
  onLabel?: (label: FaultLabel) => void;
  /** Most publishes awaiting their acknowledgement per connection; capped by the broker's Receive Maximum. */
  window?: number;
  /** Device tokens by "site/asset", sent as the MQTT v5 user property `authorization`. */
  tokens?: Record<string, string>;
  /**
   * With connectionPerDevice: each device's connection logs in to the broker as "site/asset" with its token
   * as password (Mosquitto password file made from the registry), besides the user property.
   */
  brokerLogin?: boolean;
  clientIdPrefix?: string;
  /** MQTT protocol level: 5 (default) or 4 (3.1.1, e.g. the embedded aedes broker: tokens go in the payload). */
  protocolVersion?: 4 | 5;
}

export interface SimStats {
  /** Readings handed to the MQTT client. */
  sent: number;
  /** Readings acknowledged: PUBACK at QoS 1, written to the socket at QoS 0. */
  acked: number;
  messagesSent: number;
  messagesAcked: number;
  /** Acknowledged readings by "site/asset". */
  perDevice: Record<string, number>;
  errors: number;
  lastError?: string;
  /** Faults injected (labels written) so far. */
  faults: number;
  /** Devices with a fault active at their latest reading. */
  faultsActive: number;
  devices: number;
  connections: number;
  elapsedS: number;
  /** Acknowledged readings per wall second since the start. */
  ratePerS: number;
  /** Simulated epoch ms of the latest reading produced. */
  simTs: number;
  /** Every reading was produced and acknowledged (false when stopped early or still running). */
  complete: boolean;
}

export interface SimProgress extends SimStats {
  /** Acknowledged readings per second over the last progress interval. */
  currentRatePerS: number;
}

export interface Simulator {
  /** Resolves once every reading of a bounded run is acknowledged (or after stop()); rejects if the broker is unreachable. */
  readonly done: Promise<SimStats>;
  /** Stop producing, wait briefly for in-flight acknowledgements, disconnect. */
  stop(): Promise<SimStats>;
  stats(): SimStats;
}

export class SimOptionsError extends Error {
  override name = 'SimOptionsError';
}

const DEFAULT_WINDOW = 64;
const MIN_TICK_MS = 10;

/** Check options; throws SimOptionsError naming the first problem. */
export function validateOptions(o: SimulatorOptions): void {
  const fail = (msg: string): never => {
    throw new SimOptionsError(msg);
  };
  if (!o.url) fail('url is required');
  if (o.assets.length === 0) fail('no assets to simulate');
  if (!(Number.isFinite(o.rate) && o.rate > 0 && o.rate <= MAX_RATE)) {
    fail(`rate must be > 0 and <= ${MAX_RATE} readings per second per device (timestamps are whole ms)`);
  }
  if (o.count !== undefined && !(Number.isSafeInteger(o.count) && o.count >= 1))
    fail('count must be an integer >= 1');
  if (o.durationS !== undefined && !(Number.isFinite(o.durationS) && o.durationS > 0))
    fail('duration must be > 0 seconds');
  if (!Number.isSafeInteger(o.seed)) fail('seed must be an integer');
  if (o.qos !== 0 && o.qos !== 1) fail('qos must be 0 or 1');
  if (!(Number.isSafeInteger(o.batch) && o.batch >= 1 && o.batch <= 10_000))
    fail('batch must be an integer in 1..10000');
  if (o.faultRate !== undefined && !(o.faultRate >= 0 && o.faultRate <= 1))
    fail('fault rate must be in 0..1');
  if (o.faultDurationS) {
    const [lo, hi] = o.faultDurationS;
    if (!(lo > 0 && hi >= lo)) fail('fault duration range must be 0 < min <= max');
  }
  if (o.speed !== undefined && !(o.speed > 0)) fail('speed must be > 0 (or Infinity)');
  if (o.startTs !== undefined && !Number.isFinite(o.startTs)) fail('start must be a finite epoch ms');
  if (o.protocolVersion !== undefined && o.protocolVersion !== 4 && o.protocolVersion !== 5) {
    fail('protocolVersion must be 4 or 5');
  }
  if (o.protocolVersion === 4 && o.tokens && Object.keys(o.tokens).length > 0 && o.batch !== 1) {
    fail('on MQTT 3.1.1 a device token travels in the payload ("token"): batch must be 1');
  }
  if (o.brokerLogin && !o.connectionPerDevice)
    fail('brokerLogin needs connectionPerDevice: one broker login per device');
  if (o.window !== undefined && !(Number.isSafeInteger(o.window) && o.window >= 1))
    fail('window must be an integer >= 1');
  const keys = new Set<string>();
  for (const a of o.assets) {
    const k = assetKey(a);
    if (keys.has(k)) fail(`asset ${k} appears twice`);
    keys.add(k);
  }
}

/** The simulated start: the given one, else now, else (fast-forward with an end) so the run ends about now. */
export function resolveStartTs(
  o: Pick<SimulatorOptions, 'startTs' | 'speed' | 'count' | 'durationS' | 'rate'>,
  now: number,
): number {
  if (o.startTs !== undefined) return Math.round(o.startTs);
  const spanMs =
    o.count !== undefined
      ? (o.count / o.rate) * 1000
      : o.durationS !== undefined
        ? o.durationS * 1000
        : undefined;
  return Math.round((o.speed ?? 1) > 1 && spanMs !== undefined ? now - spanMs : now);
}

interface Outgoing {
  dev: Dev;
  topic: string;
  payload: string;
  readings: number;
}

/** One MQTT connection and its publish queue, drained at most `window` unacknowledged at a time. */
interface Link {
  client?: MqttClient;
  window: number;
  inflight: number;
  queue: (Outgoing | undefined)[];
  head: number;
  pumping: boolean;
  /** The devices publishing through this link (all of them on a shared connection). */
  devs: Dev[];
  cursor: number;
  /** The last fill stopped at a full queue. */
  blocked: boolean;
}

interface Dev {
  sim: DeviceSim;
  /** On MQTT 3.1.1, the device token sent inside the payload. */
  payloadToken?: string;
  link: Link;
  pending: SimReading[];
  /** Produce readings with ts below this (duration), or until `limit` readings (count). */
  endTs: number;
  limit: number;
  acked: number;
  publishOpts: IClientPublishOptions;
  finished: boolean;
}

const queued = (l: Link): number => l.queue.length - l.head;

export function startSimulator(options: SimulatorOptions): Simulator {
  validateOptions(options);
  const o = options;
  const speed = o.speed ?? 1;
  const startTs = resolveStartTs(o, Date.now());
  const bounded = o.count !== undefined || o.durationS !== undefined;

  const specsByAsset = resolveFaults(o.faults, o.assets);
  let faultCount = 0;
  if (o.labelsFile) writeFileSync(o.labelsFile, '');
  const onLabel = (label: FaultLabel): void => {
    faultCount++;
    if (o.labelsFile) appendFileSync(o.labelsFile, JSON.stringify(label) + '\n');
    o.onLabel?.(label);
  };

  const newLink = (): Link => ({
    window: o.window ?? DEFAULT_WINDOW,
    inflight: 0,
    queue: [],
    head: 0,
    pumping: false,
    devs: [],
    cursor: 0,
    blocked: false,
  });
  const shared = o.connectionPerDevice ? undefined : newLink();
  const devs: Dev[] = o.assets.map((asset) => {
    const sim = new DeviceSim(asset, {
      seed: o.seed,
      rate: o.rate,
      startTs,
      faults: specsByAsset.get(assetKey(asset)) ?? [],
      ...(o.faultRate !== undefined ? { faultRate: o.faultRate } : {}),
      ...(o.faultDurationS ? { faultDurationS: o.faultDurationS } : {}),
      onLabel,
    });
    const token = o.tokens?.[sim.key];
    return {
      sim,
      link: shared ?? newLink(),
      pending: [],
      endTs: o.durationS !== undefined ? startTs + o.durationS * 1000 : Infinity,
      limit: o.count ?? Infinity,
      acked: 0,
      publishOpts:
        token && o.protocolVersion !== 4
          ? { qos: o.qos, properties: { userProperties: { authorization: token } } }
          : { qos: o.qos },
      finished: false,
      ...(token && o.protocolVersion === 4 ? { payloadToken: token } : {}),
    };
  });
  const links = shared ? [shared] : devs.map((d) => d.link);
  for (const d of devs) d.link.devs.push(d);

  let sent = 0;
  let acked = 0;
  let messagesSent = 0;
  let messagesAcked = 0;
  let errors = 0;
  let lastError: string | undefined;
  let simTs = startTs;
  let running = false;
  let stopping = false;
  let finishedAll = false;
  let wallStart = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let progressTimer: NodeJS.Timeout | undefined;

  const stats = (): SimStats => {
    const elapsedS = running || finishedAll || stopping ? (performance.now() - wallStart) / 1000 : 0;
    const perDevice: Record<string, number> = {};
    let faultsActive = 0;
    for (const d of devs) {
      perDevice[d.sim.key] = d.acked;
      if (d.sim.activeFaults.length > 0) faultsActive++;
    }
    return {
      sent,
      acked,
      messagesSent,
      messagesAcked,
      perDevice,
      errors,
      ...(lastError !== undefined ? { lastError } : {}),
      faults: faultCount,
      faultsActive,
      devices: devs.length,
      connections: links.filter((l) => l.client).length,
      elapsedS,
      ratePerS: elapsedS > 0 ? acked / elapsedS : 0,
      simTs,
      complete: finishedAll,
    };
  };

  // Keep the local queue short: readings are produced when there is room, which is the back-pressure.
  const highWater = (l: Link): number => Math.max(2 * l.window, 32);

  const pump = (l: Link): void => {
    if (l.pumping || !l.client) return;
    l.pumping = true;
    try {
      while (l.inflight < l.window && l.head < l.queue.length && !stopping) {
        const msg = l.queue[l.head] as Outgoing;
        l.queue[l.head++] = undefined; // let it be collected
        l.inflight++;
        sent += msg.readings;
        messagesSent++;
        l.client.publish(msg.topic, msg.payload, msg.dev.publishOpts, (err) => {
          l.inflight--;
          if (err) {
            errors++;
            lastError = `${msg.topic}: ${err.message}`;
          } else {
            acked += msg.readings;
            messagesAcked++;
            msg.dev.acked += msg.readings;
          }
          pump(l);
          refill(l);
          checkDone();
        });
      }
      if (l.head > 1024 && l.head * 2 > l.queue.length) {
        l.queue = l.queue.slice(l.head);
        l.head = 0;
      }
    } finally {
      l.pumping = false;
    }
  };

  const flush = (d: Dev): void => {
    if (d.pending.length === 0) return;
    const body = d.pending.length === 1 && o.batch === 1 ? d.pending[0] : d.pending;
    d.link.queue.push({
      dev: d,
      topic: d.sim.topic,
      // MQTT 3.1.1 has no user properties: the token rides in the payload (batch 1, an object).
      payload: JSON.stringify(
        d.payloadToken !== undefined && !Array.isArray(body) ? { ...body, token: d.payloadToken } : body,
      ),
      readings: d.pending.length,
    });
    d.pending = [];
  };

  const simNow = (): number =>
    speed === Infinity ? Infinity : startTs + (performance.now() - wallStart) * speed;
  const toWallMs = (ts: number): number => wallStart + (ts - startTs) / speed;

  /** Produce one reading of d if it is due; false when it is not (or has finished). */
  const produceOne = (d: Dev, now: number): boolean => {
    if (d.finished) return false;
    const ts = d.sim.nextTs;
    if (d.sim.produced >= d.limit || ts >= d.endTs) {
      d.finished = true;
      flush(d);
      return false;
    }
    if (ts > now) return false;
    d.pending.push(d.sim.next());
    if (ts > simTs) simTs = ts;
    const last = d.sim.produced >= d.limit || d.sim.nextTs >= d.endTs;
    if (d.pending.length >= o.batch || last) flush(d);
    if (last) d.finished = true;
    return true;
  };

  /**
   * Produce the due readings of a link's devices, round-robin, while its queue has room: a full queue
   * is the back-pressure (the link's acknowledgements resume it). Returns the earliest reading not yet due.
   */
  const fill = (l: Link, now: number): number => {
    let nextDue = Infinity;
    let quiet = 0; // devices in a row with nothing due: once every device is quiet, the link is done for now
    const n = l.devs.length;
    l.blocked = false;
    while (quiet < n) {
      if (queued(l) >= highWater(l)) {
        l.blocked = true;
        break;
      }
      const d = l.devs[l.cursor] as Dev;
      l.cursor = (l.cursor + 1) % n;
      if (produceOne(d, now)) {
        quiet = 0;
      } else {
        quiet++;
        if (!d.finished) nextDue = Math.min(nextDue, d.sim.nextTs);
      }
    }
    return nextDue;
  };

  let timerAt = Infinity;
  /** Run the tick when the reading due at simulated `ts` comes due (or sooner, if already planned). */
  const wakeAt = (ts: number): void => {
    if (ts === Infinity || stopping) return;
    // At least 10 ms apart: a scan covers every device, and the payload carries the exact ts anyway.
    const at = Math.max(performance.now() + MIN_TICK_MS, Math.min(toWallMs(ts), performance.now() + 1000));
    if (timer && timerAt <= at) return;
    if (timer) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(tick, at - performance.now());
  };

  /** Timer-driven: readings that have come due in simulated time. */
  const tick = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!running || stopping) return;
    const now = simNow();
    let nextDue = Infinity;
    for (const l of links) {
      nextDue = Math.min(nextDue, fill(l, now));
      pump(l);
    }
    wakeAt(nextDue);
    checkDone();
  };

  /** Acknowledgement-driven: a link that was held back by its full queue gets more work. */
  const refill = (l: Link): void => {
    if (!l.blocked || !running || stopping || queued(l) > highWater(l) / 2) return;
    wakeAt(fill(l, simNow()));
    pump(l);
  };

  let resolveDone!: (s: SimStats) => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<SimStats>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  done.catch(() => undefined); // a caller that only uses stop() must not see an unhandled rejection

  let closing: Promise<SimStats> | undefined;
  const close = (): Promise<SimStats> => {
    closing ??= (async () => {
      stopping = true;
      if (timer) clearTimeout(timer);
      // Wait (briefly) for what is in flight, so the summary counts what the broker really has.
      const deadline = Date.now() + 5000;
      while (links.some((l) => l.inflight > 0) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      if (progressTimer) clearInterval(progressTimer);
      reportProgress();
      await Promise.all(
        links.map(async (l) => {
          const c = l.client;
          if (!c) return;
          await c.endAsync(l.inflight > 0).catch(() => undefined);
        }),
      );
      const s = stats();
      running = false;
      resolveDone(s);
      return s;
    })();
    return closing;
  };

  function checkDone(): void {
    if (!bounded || finishedAll || stopping || !running) return;
    if (!devs.every((d) => d.finished && d.pending.length === 0)) return;
    if (!links.every((l) => l.inflight === 0 && queued(l) === 0)) return;
    finishedAll = true;
    void close();
  }

  let lastProgress = { at: performance.now(), acked: 0 };
  const reportProgress = (): void => {
    if (!o.onProgress) return;
    const now = performance.now();
    const s = stats();
    const dt = (now - lastProgress.at) / 1000;
    const currentRatePerS = dt > 0 ? (s.acked - lastProgress.acked) / dt : 0;
    lastProgress = { at: now, acked: s.acked };
    o.onProgress({ ...s, currentRatePerS });
  };

  const clientId = (suffix: string): string =>
    `${o.clientIdPrefix ?? 'evtwin-sim'}-${suffix}-${randomBytes(4).toString('hex')}`.slice(0, 200);

  const connectLink = async (l: Link, suffix: string): Promise<void> => {
    const key = l.devs[0]?.sim.key;
    const password = o.brokerLogin && key !== undefined ? o.tokens?.[key] : undefined;
    const client = connect(o.url, {
      ...(password !== undefined ? { username: key, password } : {}),
      protocolVersion: o.protocolVersion ?? 5,
      clientId: clientId(suffix),
      clean: true,
      keepalive: 30,
      connectTimeout: 10_000,
      reconnectPeriod: 1000,
    });
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      const onConnect = (packet: IConnackPacket): void => {
        client.off('error', onError);
        resolve(packet);
      };
      const onError = (err: Error): void => {
        client.off('connect', onConnect);
        client.end(true);
        reject(err);
      };
      client.once('connect', onConnect);
      client.once('error', onError);
    });
    if (stopping) {
      client.end(true);
      return;
    }
    // mqtt.js does not enforce the broker's Receive Maximum (Mosquitto: 20); exceeding it drops the connection.
    const receiveMax = connack.properties?.receiveMaximum;
    if (o.qos > 0 && receiveMax !== undefined) l.window = Math.min(l.window, receiveMax);
    l.client = client;
    // Small publishes awaiting acknowledgements: Nagle's algorithm would hold them back (mqtt.js leaves it on).
    const noDelay = (): void => {
      (client.stream as Partial<Socket> | undefined)?.setNoDelay?.(true);
    };
    noDelay();
    client.on('connect', noDelay);
    // Later connection trouble: mqtt.js reconnects and resends unacknowledged QoS 1 publishes.
    client.on('error', (err) => {
      lastError = err.message;
    });
  };

  (async () => {
    const targets = shared
      ? [{ link: shared, suffix: 'shared' }]
      : devs.map((d) => ({ link: d.link, suffix: `${d.sim.asset.site}.${d.sim.asset.id}` }));
    // A bounded number of handshakes at a time: thousands at once would only trip connect timeouts.
    for (let i = 0; i < targets.length; i += 32) {
      await Promise.all(targets.slice(i, i + 32).map((t) => connectLink(t.link, t.suffix)));
      if (stopping) break;
    }
  })().then(
    () => {
      if (stopping) return;
      running = true;
      wallStart = performance.now();
      lastProgress = { at: wallStart, acked: 0 };
      if (o.onProgress) {
        progressTimer = setInterval(reportProgress, o.progressIntervalMs ?? 1000);
        progressTimer.unref();
      }
      tick();
    },
    (err: Error) => {
      stopping = true;
      for (const l of links) l.client?.end(true);
      rejectDone(new Error(`cannot connect to ${o.url}: ${err.message}`));
    },
  );

  return {
    done,
    stop: close,
    stats,
  };
}
