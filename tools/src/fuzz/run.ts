/**
 * The fuzzer: hostile inputs through (1) the core path evtwin-auth and evtwin-ingest run (AuthGate,
 * ingestMessage), (2) the real nodes in a Node-RED runtime (registry → auth → ingest, and ingest
 * alone), (3) the OCPP central system of evtwin-ocpp over real WebSockets (raw frames, probes and an
 * ocpp-rpc charge point beside them). Every input must be answered (output or dead letter, OCPP
 * reply or close) within a time bound; valid traffic interleaved must come through unchanged.
 */
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import WebSocket from 'ws';
import { RPCClient } from 'ocpp-rpc';
import {
  AuthGate,
  DEFAULT_LIMITS,
  DEFAULT_REPLAY,
  DEFAULT_THROTTLE,
  DEFAULT_TELEMETRY_TEMPLATE,
  compileTopicTemplate,
  emptyRegistry,
  indexRegistry,
  ingestMessage,
  register,
  revoke,
  type IngestConfig,
  type Reading,
  type RegistryState,
} from 'node-red-contrib-evtwin';
import { updateRegistry } from 'node-red-contrib-evtwin/runtime';
import { Rng, authCase, ocppFrame, telemetryPayload, toJsonText, validItem, type Credentials } from './gen';

export interface FuzzOptions {
  count: number;
  seed: number;
  /** Per-input bound (ms): slower counts as a hang. Default 2 s in the core, 10 s through Node-RED and OCPP (queueing on a shared 2-core machine). */
  boundMs?: number;
  progress?: (line: string) => void;
}

export interface TargetSummary {
  inputs: number;
  valid: number;
  byCategory: Record<string, Record<string, number>>;
  outcomes: Record<string, number>;
  maxMs: number;
  p99Ms: number;
  maxCategory: string;
  failures: string[];
}

export interface FuzzSummary {
  seed: number;
  inputs: number;
  valid: number;
  seconds: number;
  targets: Record<string, TargetSummary>;
  failures: string[];
}

class Tally {
  inputs = 0;
  valid = 0;
  byCategory: Record<string, Record<string, number>> = {};
  outcomes: Record<string, number> = {};
  maxMs = 0;
  maxCategory = '';
  failures: string[] = [];
  private times: number[] = [];
  get p99Ms(): number {
    const sorted = [...this.times].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length * 0.99)] ?? 0;
  }
  add(category: string, outcome: string, ms: number): void {
    this.inputs++;
    this.times.push(ms);
    const c = (this.byCategory[category] ??= {});
    c[outcome] = (c[outcome] ?? 0) + 1;
    this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + 1;
    if (ms > this.maxMs) {
      this.maxMs = ms;
      this.maxCategory = category;
    }
  }
  /** A plain object (the JSON summary), percentiles computed. */
  summary(): TargetSummary {
    const { inputs, valid, byCategory, outcomes, maxMs, p99Ms, maxCategory, failures } = this;
    return { inputs, valid, byCategory, outcomes, maxMs, p99Ms, maxCategory, failures };
  }
  fail(what: string): void {
    if (this.failures.length < 20) this.failures.push(what);
    else if (this.failures.length === 20) this.failures.push('… (more)');
  }
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));
const polluted = (): boolean =>
  Object.keys(Object.prototype).length > 0 || ({} as Record<string, unknown>).polluted !== undefined;

interface World {
  state: RegistryState;
  hostile: Credentials[];
  valid: Credentials[];
}

/** Registered devices: hostile ones (their credentials are used with bad bodies), valid ones, one revoked. */
function seedRegistry(file?: string): World {
  const ctx = { now: Date.now(), actor: 'fuzz' };
  let state = emptyRegistry();
  const hostile: Credentials[] = [];
  const valid: Credentials[] = [];
  const add = (asset: string, list: Credentials[]): void => {
    const req = { site: 's1', asset, owner: 'fuzz', withKey: true };
    const r = file ? updateRegistry(file, (s) => register(s, req, ctx)) : register(state, req, ctx);
    state = r.state;
    if (!r.key) throw new Error('registered without key');
    list.push({ site: 's1', asset, token: r.token, kid: r.key.kid, key: r.key.key });
  };
  for (let i = 0; i < 6; i++) add(`h${i}`, hostile);
  for (let i = 0; i < 3; i++) add(`v${i}`, valid);
  const rev: Credentials[] = [];
  add('r0', rev);
  state = file
    ? updateRegistry(file, (s) => revoke(s, 's1/r0', ctx)).state
    : revoke(state, 's1/r0', ctx).state;
  hostile.push(...rev);
  return { state, hostile, valid };
}

const THROTTLE_OFF = { ...DEFAULT_THROTTLE, burst: 1e9, perMinute: 1e9 };

/** Valid device traffic: one or a few items, with the credential in the MQTT v5 user property. */
function validMessage(
  rng: Rng,
  d: Credentials,
  seq: number,
  now: number,
): { topic: string; payload: string; userProperties: { authorization: string }; items: number } {
  const n = rng.chance(0.2) ? 3 : 1;
  const items = Array.from({ length: n }, (_, i) => ({ ...validItem(rng, now), seq: seq + i }));
  return {
    topic: `evtwin/v1/${d.site}/${d.asset}/telemetry`,
    payload: toJsonText(n === 1 ? items[0] : items),
    userProperties: { authorization: `Bearer ${d.token}` },
    items: n,
  };
}

/** What passes ingest must be a reading InfluxDB can take: at least one metric, finite numbers only. */
function checkReadings(readings: Reading[], t: Tally, category: string): void {
  for (const r of readings) {
    const values = Object.values(r.metrics);
    if (values.length === 0) t.fail(`${category}: a reading without metrics passed ingest`);
    if (values.some((v) => typeof v !== 'number' || !Number.isFinite(v)))
      t.fail(`${category}: a reading with a non-finite metric passed ingest`);
  }
}

// ---- 1. core ------------------------------------------------------------------------------------

function fuzzCore(count: number, rng: Rng, opts: FuzzOptions): Tally {
  const t = new Tally();
  const world = seedRegistry();
  const index = indexRegistry(world.state);
  const template = compileTopicTemplate(DEFAULT_TELEMETRY_TEMPLATE);
  const gate = new AuthGate({
    template,
    ttlS: 120,
    maxBytes: 256 * 1024,
    replay: DEFAULT_REPLAY,
    throttle: THROTTLE_OFF,
  });
  const config: IngestConfig = { template, defaultKind: 'generic', limits: DEFAULT_LIMITS };
  const seqs = new Map<string, number>();
  const bound = opts.boundMs ?? 2000;
  for (let i = 0; i < count; i++) {
    const now = Date.now();
    const isValid = i % 10 === 9;
    // Generate first: only the code under test is timed.
    let category = 'valid';
    let direct: { topic: string; payload: unknown } | undefined;
    let input: { topic: unknown; payload: unknown; userProperties?: unknown } = { topic: '', payload: '' };
    let items = 0;
    let dev: Credentials | undefined;
    if (!isValid && rng.chance(0.4)) {
      // Ingest alone (flows without auth): hostile topic and payload.
      const p = telemetryPayload(rng, now);
      category = `ingest:${p.category}`;
      const topic = rng.chance(0.1) ? `evtwin/v1/s1/${rng.int(5)}/telemetry/x` : 'evtwin/v1/s1/h1/telemetry';
      direct = { topic, payload: p.payload };
    } else if (isValid) {
      dev = rng.pick(world.valid);
      const seq = (seqs.get(dev.asset) ?? 0) + 10;
      seqs.set(dev.asset, seq);
      const v = validMessage(rng, dev, seq, now);
      items = v.items;
      input = v;
      t.valid++;
    } else {
      const c = authCase(rng, now, world.hostile);
      category = `auth:${c.category}`;
      input = c;
    }
    const t0 = process.hrtime.bigint();
    let outcome: string;
    try {
      if (direct) {
        const r = ingestMessage(direct.topic, direct.payload, now, config);
        if (r.readings.length + r.rejections.length === 0) throw new Error('no reading and no rejection');
        checkReadings(r.readings, t, category);
        outcome = r.readings.length > 0 ? (r.rejections.length > 0 ? 'partial' : 'stored') : 'dead-letter';
      } else {
        const a = gate.check(input, index, now);
        if (!a.ok) {
          outcome = `rejected:${a.reason}`;
          if (isValid) t.fail(`valid message refused: ${a.reason} ${a.detail}`);
        } else {
          const topic = typeof input.topic === 'string' ? input.topic : '';
          const r = ingestMessage(topic, a.body, now, config);
          if (r.readings.length + r.rejections.length === 0) throw new Error('no reading and no rejection');
          checkReadings(r.readings, t, category);
          outcome = r.readings.length > 0 ? (r.rejections.length > 0 ? 'partial' : 'stored') : 'dead-letter';
          if (isValid) {
            if (r.readings.length !== items || r.rejections.length > 0)
              t.fail(`valid message: ${r.readings.length}/${items} readings, ${r.rejections[0]?.reason}`);
            if (r.readings.some((x) => x.asset !== dev?.asset)) t.fail('valid reading for the wrong asset');
          }
        }
      }
    } catch (err) {
      outcome = 'CRASH';
      t.fail(`${category}: threw ${(err as Error).stack?.split('\n').slice(0, 3).join(' | ')}`);
    }
    const took = ms(t0);
    if (took > bound) {
      t.fail(`${category}: took ${took.toFixed(0)} ms (bound ${bound})`);
      outcome = 'HANG';
    }
    t.add(category, outcome, took);
    if (polluted()) {
      t.fail(`${category}: Object.prototype polluted`);
      for (const k of Object.keys(Object.prototype)) delete (Object.prototype as Record<string, unknown>)[k];
    }
    if ((i + 1) % 10_000 === 0) opts.progress?.(`core: ${i + 1}/${count}`);
  }
  return t;
}

// ---- 2. nodes -----------------------------------------------------------------------------------

interface Out {
  fuzzId?: number;
  payload?: unknown;
  error?: { code?: string; message?: string };
}

const DIST = join(__dirname, '..', '..', '..', 'node-red-nodes', 'dist', 'nodes');
const loadFile = createRequire(__filename);
const loadNodes = (types: string[]): unknown[] => types.map((t) => loadFile(join(DIST, t, `${t}.js`)));

interface Pending {
  sent: bigint;
  category: string;
  valid?: { items: number; asset: string };
  outs: string[];
  readings: number;
  answeredMs?: number;
}

async function fuzzNodes(count: number, rng: Rng, opts: FuzzOptions, dir: string): Promise<Tally> {
  const t = new Tally();
  const file = join(dir, 'registry.json');
  const world = seedRegistry(file);
  const flow = [
    { id: 'tab', type: 'tab' },
    { id: 'reg', type: 'evtwin-registry', file, graceS: '3600' },
    {
      id: 'auth',
      type: 'evtwin-auth',
      z: 'tab',
      registry: 'reg',
      failBurst: '1000000000',
      failPerMinute: '1000000000',
      wires: [['ingest'], ['authBad']],
    },
    { id: 'ingest', type: 'evtwin-ingest', z: 'tab', wires: [['readings'], ['dead']] },
    { id: 'ingest2', type: 'evtwin-ingest', z: 'tab', wires: [['readings'], ['dead']] },
    { id: 'authBad', type: 'helper', z: 'tab' },
    { id: 'readings', type: 'helper', z: 'tab' },
    { id: 'dead', type: 'helper', z: 'tab' },
  ];
  await helper.load(loadNodes(['evtwin-registry', 'evtwin-auth', 'evtwin-ingest']), flow);
  try {
    const node = (id: string): NonNullable<ReturnType<typeof helper.getNode>> => {
      const n = helper.getNode(id);
      if (!n) throw new Error(`node ${id} missing`);
      return n;
    };
    // The registry loads asynchronously: wait for its index.
    const reg = node('reg') as unknown as { service?: { index(): unknown } };
    for (let i = 0; i < 200 && !reg.service?.index(); i++) await sleep(10);
    const pending = new Map<number, Pending>();
    const seen = (kind: string) => (m: Out) => {
      const p = typeof m.fuzzId === 'number' ? pending.get(m.fuzzId) : undefined;
      if (!p) return;
      if (p.answeredMs === undefined) p.answeredMs = ms(p.sent);
      p.outs.push(kind === 'dead' || kind === 'authBad' ? `${kind}:${m.error?.code}` : kind);
      if (kind === 'readings') {
        p.readings++;
        const r = m.payload as Reading;
        if (p.valid && r.asset !== p.valid.asset) t.fail(`valid reading for the wrong asset ${r.asset}`);
        checkReadings([r], t, p.category);
      }
    };
    for (const id of ['authBad', 'readings', 'dead']) node(id).on('input', seen(id));
    const auth = node('auth');
    const ingest2 = node('ingest2');
    const seqs = new Map<string, number>();
    const bound = opts.boundMs ?? 10_000;
    const WINDOW = 64;
    let next = 0;
    const finish = (id: number, p: Pending): void => {
      pending.delete(id);
      const took = p.answeredMs ?? ms(p.sent);
      let outcome: string;
      if (p.outs.length === 0) {
        outcome = 'HANG';
        t.fail(`${p.category}: no output within ${bound} ms`);
      } else if (p.readings > 0) outcome = p.outs.length > p.readings ? 'partial' : 'stored';
      else outcome = p.outs[0] ?? '?';
      if (p.valid) {
        if (p.readings !== p.valid.items || p.outs.length !== p.readings)
          t.fail(`valid message: ${p.readings}/${p.valid.items} readings, outputs ${p.outs.join(',')}`);
      }
      if (took > bound && outcome !== 'HANG') t.fail(`${p.category}: answered after ${took.toFixed(0)} ms`);
      t.add(p.category, outcome, took);
    };
    while (next < count) {
      const batch: number[] = [];
      for (let k = 0; k < WINDOW && next < count; k++, next++) {
        const id = next;
        const now = Date.now();
        const isValid = id % 10 === 9;
        const p: Pending = { sent: process.hrtime.bigint(), category: 'valid', outs: [], readings: 0 };
        let msg: Record<string, unknown>;
        let target = auth;
        if (isValid) {
          const d = rng.pick(world.valid);
          const seq = (seqs.get(d.asset) ?? 0) + 10;
          seqs.set(d.asset, seq);
          const v = validMessage(rng, d, seq, now);
          p.valid = { items: v.items, asset: d.asset };
          msg = { topic: v.topic, payload: Buffer.from(v.payload), userProperties: v.userProperties };
          t.valid++;
        } else if (rng.chance(0.4)) {
          const c = telemetryPayload(rng, now);
          p.category = `ingest:${c.category}`;
          msg = {
            topic: rng.chance(0.1)
              ? rng.pick([42, null, 'evtwin/v1/x', undefined])
              : 'evtwin/v1/s1/h2/telemetry',
            payload: rng.chance(0.2) && typeof c.payload === 'string' ? safeParse(c.payload) : c.payload,
          };
          if (rng.chance(0.05)) msg.evtwin = rng.pick([null, 'x', { identity: 1 }, []]);
          target = ingest2;
        } else {
          const c = authCase(rng, now, world.hostile);
          p.category = `auth:${c.category}`;
          msg = { topic: c.topic, payload: c.payload };
          if (c.userProperties !== undefined) msg.userProperties = c.userProperties;
        }
        msg.fuzzId = id;
        pending.set(id, p);
        batch.push(id);
        p.sent = process.hrtime.bigint();
        target.receive(msg);
      }
      const deadline = Date.now() + bound;
      while (batch.some((id) => pending.get(id)?.answeredMs === undefined) && Date.now() < deadline)
        await sleep(1);
      // Let the rest of a batch's outputs (several readings per message) arrive.
      await new Promise((r) => setImmediate(r));
      await sleep(0);
      for (const id of batch) {
        const p = pending.get(id);
        if (p) finish(id, p);
      }
      if (polluted()) t.fail('Object.prototype polluted');
      if (Math.floor(next / 5000) !== Math.floor((next - batch.length) / 5000))
        opts.progress?.(`nodes: ${next}/${count}`);
    }
  } finally {
    await helper.unload();
  }
  return t;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

// ---- 3. OCPP ------------------------------------------------------------------------------------

/** The slice of ocpp-rpc's client used here (its constructor typing requires every option). */
interface Rpc {
  connect(): Promise<unknown>;
  call(method: string, params?: unknown): Promise<unknown>;
  close(options?: { force?: boolean }): Promise<unknown>;
}

interface Frame {
  type: unknown;
  id: unknown;
}

/** A raw charge-point WebSocket: frames in, parsed replies out; closes are recorded. */
class RawCp {
  ws!: WebSocket;
  replies: Frame[] = [];
  closed: { code: number } | undefined;
  constructor(
    private readonly url: string,
    private readonly identity: string,
    private readonly token: string,
  ) {}
  async open(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.connect();
        return;
      } catch (err) {
        // 409 until the server has noticed the previous connection closed.
        if (attempt > 100) throw err;
        await sleep(20);
      }
    }
  }
  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const auth = Buffer.from(`${this.identity}:${this.token}`).toString('base64');
      const ws = new WebSocket(`${this.url}/${this.identity}`, ['ocpp1.6'], {
        headers: { authorization: `Basic ${auth}` },
      });
      ws.once('open', () => {
        this.ws = ws;
        this.closed = undefined;
        resolve();
      });
      ws.once('unexpected-response', (_req, res) => {
        reject(new Error(`handshake ${res.statusCode}`));
        ws.terminate();
      });
      ws.once('error', reject);
      ws.on('message', (data) => {
        try {
          const f = JSON.parse(data.toString()) as unknown[];
          // The central system may call us (TriggerMessage): answer, do not count.
          if (f[0] === 2) {
            ws.send(JSON.stringify([3, f[1], { status: 'Accepted' }]));
            return;
          }
          this.replies.push({ type: f[0], id: f[1] });
        } catch {
          this.replies.push({ type: 'garbage', id: undefined });
        }
      });
      ws.on('close', (code) => {
        if (this.ws === ws) this.closed = { code };
      });
    });
  }
  /** Wait until a reply with this id arrives (or the socket closes); undefined on timeout. */
  async reply(ids: string[], timeoutMs: number): Promise<Frame | 'closed' | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.replies.findIndex((f) => typeof f.id === 'string' && ids.includes(f.id));
      if (i >= 0) return this.replies.splice(i, 1)[0];
      if (this.closed) return 'closed';
      if (Date.now() > deadline) return undefined;
      await sleep(0);
    }
  }
}

/**
 * The id ocpp-rpc answers a frame under: its own id when it is a CALL-like array with a string id,
 * '-1' when none can be read; undefined for CALLRESULT/CALLERROR frames (OCPP-J: never answered).
 */
function replyId(frame: string): string | undefined {
  if (frame.length === 0) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(frame);
  } catch {
    return '-1';
  }
  if (!Array.isArray(v) || typeof v[0] !== 'number' || ![2, 3, 4].includes(v[0])) return '-1';
  if (v[0] !== 2) return undefined;
  return typeof v[1] === 'string' ? v[1] : '-1';
}

async function fuzzOcpp(count: number, rng: Rng, opts: FuzzOptions, dir: string): Promise<Tally> {
  const t = new Tally();
  const file = join(dir, 'ocpp-registry.json');
  const ctx = { now: Date.now(), actor: 'fuzz' };
  const tokens: Record<string, string> = {};
  for (const asset of ['cp1', 'cp2', 'cp3', 'good'])
    tokens[asset] = updateRegistry(file, (s) =>
      register(s, { site: 's1', asset, owner: 'fuzz', kind: 'charge-point' }, ctx),
    ).token;
  const MAX_KIB = 16;
  const flow = [
    { id: 'reg', type: 'evtwin-registry', file, graceS: '3600' },
    {
      id: 'ocpp',
      type: 'evtwin-ocpp',
      registry: 'reg',
      port: '0',
      stateFile: join(dir, 'ocpp-state.json'),
      strict: true,
      callTimeoutS: '5',
      maxKiB: String(MAX_KIB),
    },
  ];
  await helper.load(loadNodes(['evtwin-registry', 'evtwin-ocpp']), flow);
  const good = { client: undefined as Rpc | undefined };
  try {
    const cfg = helper.getNode('ocpp') as unknown as {
      central?: { port: number };
      ready?: Promise<void>;
      configError?: string;
    };
    await cfg.ready;
    if (!cfg.central) throw new Error(`central system not running: ${cfg.configError}`);
    const url = `ws://127.0.0.1:${cfg.central.port}/ocpp/s1`;
    const bound = opts.boundMs ?? 10_000;

    // Valid traffic beside the fuzzing: a real ocpp-rpc charge point, booted, calling all along.
    const Ctor = RPCClient as unknown as new (o: Record<string, unknown>) => Rpc;
    const client = new Ctor({
      endpoint: url,
      identity: 'good',
      password: tokens.good,
      protocols: ['ocpp1.6'],
      strictMode: true,
      reconnect: false,
      callTimeoutMs: bound,
    });
    good.client = client;
    await client.connect();
    await client.call('BootNotification', { chargePointVendor: 'fuzz', chargePointModel: 'good' });
    let goodCalls = 0;
    let goodFailed = 0;
    let stop = false;
    const goodLoop = (async () => {
      for (let n = 0; !stop; n++) {
        try {
          if (n % 2 === 0) await client.call('Heartbeat', {});
          else
            await client.call('StatusNotification', {
              connectorId: 1,
              status: n % 4 === 1 ? 'Available' : 'Preparing',
              errorCode: 'NoError',
            });
          goodCalls++;
        } catch (err) {
          goodFailed++;
          t.fail(`valid ocpp-rpc call failed: ${(err as Error).message}`);
        }
        await sleep(5);
      }
    })();

    const lanes = ['cp1', 'cp2', 'cp3'];
    const per = Math.ceil(count / lanes.length);
    let done = 0;
    await Promise.all(
      lanes.map(async (identity, lane) => {
        const cp = new RawCp(url, identity, tokens[identity] as string);
        await cp.open();
        const boot = async (): Promise<void> => {
          cp.ws.send(
            JSON.stringify([
              2,
              'boot',
              'BootNotification',
              { chargePointVendor: 'f', chargePointModel: 'm' },
            ]),
          );
          await cp.reply(['boot'], bound);
        };
        await boot();
        const laneRng = new Rng(Math.floor(rng.next() * 2 ** 32) + lane);
        const n = Math.min(per, count - lane * per);
        for (let i = 0; i < n; i++) {
          if (cp.closed) {
            await cp.open();
            await boot();
          }
          const id = `f${lane}-${i}`;
          const c = ocppFrame(laneRng, id, MAX_KIB * 1024);
          const want = replyId(c.frame);
          const t0 = process.hrtime.bigint();
          cp.replies.length = 0;
          cp.ws.send(c.frame);
          // A valid call right behind each hostile frame: it must be answered, on a live connection.
          const probe = `p${lane}-${i}`;
          if (c.category !== 'huge-frame') cp.ws.send(JSON.stringify([2, probe, 'Heartbeat', {}]));
          let outcome: string;
          if (want) {
            // Replies to frames without a usable id come back under '-1'.
            const r = await cp.reply([want], bound);
            if (r === 'closed') outcome = `closed:${cp.closed?.code}`;
            else if (r === undefined) outcome = 'HANG';
            else
              outcome = r.type === 4 ? 'callerror' : r.type === 3 ? 'callresult' : `reply:${String(r.type)}`;
          } else outcome = 'ignored (OCPP-J: no reply to results)';
          if (c.category !== 'huge-frame') {
            const pr = await cp.reply([probe], bound);
            if (pr === 'closed') {
              if (!outcome.startsWith('closed')) outcome = `closed:${cp.closed?.code}`;
            } else if (pr === undefined || pr.type !== 3) {
              t.fail(
                `${c.category}: valid probe after it not answered (${pr === undefined ? 'timeout' : String(pr.type)})`,
              );
              if (outcome !== 'HANG') outcome = 'PROBE-LOST';
            }
          } else if (!outcome.startsWith('closed')) {
            t.fail(`huge frame not refused: ${outcome}`);
          }
          const took = ms(t0);
          if (outcome === 'HANG')
            t.fail(`${c.category}: no reply within ${bound} ms: ${c.frame.slice(0, 80)}`);
          t.add(`ocpp:${c.category}`, outcome, took);
          if (c.category !== 'huge-frame') t.valid++;
          if (++done % 5000 === 0) opts.progress?.(`ocpp: ${done}/${count}`);
        }
        cp.ws.close();
      }),
    );
    stop = true;
    await goodLoop;
    if (polluted()) t.fail('Object.prototype polluted after the OCPP frames');
    t.outcomes['valid ocpp-rpc calls ok'] = goodCalls;
    if (goodFailed > 0) t.outcomes['valid ocpp-rpc calls failed'] = goodFailed;
    if (goodCalls === 0) t.fail('the valid charge point made no call');
  } finally {
    await good.client?.close({ force: true }).catch(() => undefined);
    await helper.unload();
  }
  return t;
}

// ---- all ----------------------------------------------------------------------------------------

let helperReady = false;

/** Split `count` over the three targets (core gets the most: it is the cheapest per input). */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzSummary> {
  if (!helperReady) {
    helper.init(require.resolve('node-red'));
    helperReady = true;
  }
  const t0 = Date.now();
  const rng = new Rng(opts.seed);
  const nOcpp = Math.round(opts.count * 0.15);
  const nNodes = Math.round(opts.count * 0.3);
  const nCore = opts.count - nOcpp - nNodes;
  const dir = mkdtempSync(join(tmpdir(), 'evtwin-fuzz-'));
  const crashes: string[] = [];
  const onCrash = (err: unknown): void => {
    crashes.push(`uncaught: ${(err as Error)?.stack ?? String(err)}`);
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  const targets: Record<string, TargetSummary> = {};
  try {
    opts.progress?.(`seed ${opts.seed}: ${nCore} core, ${nNodes} node, ${nOcpp} OCPP inputs`);
    targets.core = fuzzCore(nCore, rng, opts).summary();
    targets.nodes = (await fuzzNodes(nNodes, rng, opts, dir)).summary();
    targets.ocpp = (await fuzzOcpp(nOcpp, rng, opts, dir)).summary();
  } finally {
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    rmSync(dir, { recursive: true, force: true });
  }
  const all = Object.values(targets);
  return {
    seed: opts.seed,
    inputs: all.reduce((s, x) => s + x.inputs, 0),
    valid: all.reduce((s, x) => s + x.valid, 0),
    seconds: (Date.now() - t0) / 1000,
    targets,
    failures: [
      ...crashes,
      ...Object.entries(targets).flatMap(([k, x]) => x.failures.map((f) => `${k}: ${f}`)),
    ],
  };
}

/** A readable summary: per target, outcomes and the slowest input; per category, outcomes. */
export function formatSummary(s: FuzzSummary): string {
  const lines = [`fuzz seed ${s.seed}: ${s.inputs} inputs in ${s.seconds.toFixed(1)} s`];
  for (const [name, t] of Object.entries(s.targets)) {
    lines.push(
      `\n${name}: ${t.inputs} inputs (${t.valid} valid beside them), p99 ${t.p99Ms.toFixed(1)} ms, max ${t.maxMs.toFixed(1)} ms per input (${t.maxCategory})`,
    );
    const lost = ['HANG', 'CRASH', 'PROBE-LOST'].reduce((n, k) => n + (t.outcomes[k] ?? 0), 0);
    lines.push(`  answered or dead-lettered: ${t.inputs - lost} of ${t.inputs}`);
    lines.push(
      '  outcomes: ' +
        Object.entries(t.outcomes)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
    );
    for (const [cat, o] of Object.entries(t.byCategory).sort())
      lines.push(
        `  ${cat.padEnd(32)} ${Object.entries(o)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
  }
  lines.push(
    s.failures.length === 0
      ? '\nno failures'
      : `\nFAILURES (${s.failures.length}):\n  ${s.failures.join('\n  ')}`,
  );
  return lines.join('\n');
}
