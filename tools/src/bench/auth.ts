/**
 * Auth throughput per core (one thread), through the core path evtwin-auth runs per message:
 * `npm run bench:auth [-- --seconds N]`. A benchmark, not a test: it prints figures.
 */
import { parseArgs } from 'node:util';
import {
  AuthGate,
  DEFAULT_REPLAY,
  DEFAULT_TELEMETRY_TEMPLATE,
  compileTopicTemplate,
  emptyRegistry,
  indexRegistry,
  register,
  sealTelemetry,
  type AuthInput,
  type RegistryState,
} from 'node-red-contrib-evtwin';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' } } });
const seconds = Number(values.seconds);

const DEVICES = 1000;
let state: RegistryState = emptyRegistry();
const tokens: string[] = [];
const keys: { kid: string; key: string }[] = [];
for (let i = 0; i < DEVICES; i++) {
  const r = register(
    state,
    { site: 's', asset: `d${i}`, owner: 'o', withKey: true },
    { now: Date.now(), actor: 'bench' },
  );
  state = r.state;
  tokens.push(r.token);
  keys.push(r.key as { kid: string; key: string });
}
const index = indexRegistry(state);

function gate(burst: number): AuthGate {
  return new AuthGate({
    template: compileTopicTemplate(DEFAULT_TELEMETRY_TEMPLATE),
    ttlS: 120,
    maxBytes: 256 * 1024,
    replay: DEFAULT_REPLAY,
    throttle: { burst, perMinute: 60, maxDevices: 100_000 },
  });
}

function run(name: string, g: AuthGate, make: (i: number) => AuthInput, expectOk: boolean): void {
  // Messages are made before timing: the figure is the gate alone (parse + verify + replay window).
  const batch = Array.from({ length: 20_000 }, (_, i) => make(i));
  let n = 0;
  let wrong = 0;
  let busy = 0n;
  let round = 0;
  const budget = BigInt(Math.round(seconds * 1e9));
  // Only the checks are timed; making fresh messages (new seqs, new Fernet tokens) between rounds is not.
  while (busy < budget) {
    const t = process.hrtime.bigint();
    for (const m of batch) {
      if (g.check(m, index, Date.now()).ok !== expectOk) wrong++;
    }
    busy += process.hrtime.bigint() - t;
    n += batch.length;
    round++;
    if (expectOk)
      batch.splice(0, batch.length, ...Array.from({ length: 20_000 }, (_, i) => make(i + round * 20_000)));
  }
  const s = Number(busy) / 1e9;
  console.log(
    `${name.padEnd(44)} ${Math.round(n / s)
      .toLocaleString('en')
      .padStart(10)} msg/s${wrong ? `  (${wrong} unexpected verdicts)` : ''}`,
  );
}

const payload = (i: number) => JSON.stringify({ ts: Date.now(), seq: i, values: { power: 1.5, temp: 20 } });
const topic = (d: number) => `evtwin/v1/s/d${d}/telemetry`;
console.log(`auth throughput, one core, ${DEVICES} devices, ${seconds} s per case (node ${process.version})`);
run(
  'valid token (user property)',
  gate(20),
  (i) => ({
    topic: topic(i % DEVICES),
    payload: Buffer.from(payload(Math.floor(i / DEVICES))),
    userProperties: { authorization: tokens[i % DEVICES] },
  }),
  true,
);
run(
  'invalid token (unknown), throttling off',
  gate(1e12),
  (i) => ({
    topic: topic(i % DEVICES),
    payload: Buffer.from(payload(i)),
    userProperties: { authorization: 'evt_' + 'A'.repeat(43) },
  }),
  false,
);
run(
  'invalid token, throttled devices',
  gate(20),
  (i) => ({
    topic: topic(i % DEVICES),
    payload: Buffer.from(payload(i)),
    userProperties: { authorization: 'evt_' + 'A'.repeat(43) },
  }),
  false,
);
run(
  'malformed token',
  gate(1e12),
  (i) => ({
    topic: topic(i % DEVICES),
    payload: Buffer.from(payload(i)),
    userProperties: { authorization: 'nonsense' },
  }),
  false,
);
// Fernet sealing is slow-ish: make a pool and vary seq by device rounds.
run(
  'valid Fernet envelope',
  gate(20),
  (i) => {
    const d = i % DEVICES;
    const k = keys[d] as { kid: string; key: string };
    return {
      topic: topic(d),
      payload: Buffer.from(
        JSON.stringify(sealTelemetry(k.kid, k.key, JSON.parse(payload(Math.floor(i / DEVICES))))),
      ),
    };
  },
  true,
);
run(
  'tampered Fernet envelope, throttling off',
  gate(1e12),
  (i) => {
    const d = i % DEVICES;
    const k = keys[d] as { kid: string; key: string };
    const env = sealTelemetry(k.kid, k.key, JSON.parse(payload(i)));
    env.token = env.token.slice(0, 30) + (env.token[30] === 'A' ? 'B' : 'A') + env.token.slice(31);
    return { topic: topic(d), payload: Buffer.from(JSON.stringify(env)) };
  },
  false,
);
