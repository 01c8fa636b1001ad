/**
 * Structure-aware generators of hostile inputs, driven by one seeded PRNG so a run is reproducible
 * from its seed. Each case names its category; the runner counts outcomes per category.
 */
import {
  INBOUND_ACTIONS,
  SeededRandom,
  b64urlDecode,
  b64urlEncode,
  fernetEncrypt,
  sealTelemetry,
} from 'node-red-contrib-evtwin';

/** The core's seeded PRNG (one definition), plus the draws a fuzzer needs. */
export class Rng extends SeededRandom {
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
}

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];
const UNICODE = [
  '\u0000',
  '\ud800',
  '\udfff',
  '\ud83d\ude00',
  '\u202e',
  '\ufeff',
  'é',
  '中文',
  '\u200b',
  '\\u0000',
  '%00',
  '../',
  '\n',
  '"',
  '`',
  ',',
  '=',
  ' ',
];
const NUMBER_TEXT = [
  '1e400',
  '-1e400',
  '1e-400',
  '-0',
  '0.0000000000000000000000001',
  '123456789012345678901234567890',
  '9007199254740993',
  '-9007199254740993',
  '1.7976931348623157e308',
  '5e-324',
  '0x10',
  'NaN',
  'Infinity',
  '-Infinity',
  '01',
  '1.',
  '.5',
  '+1',
];
const NUMBERS = [
  0,
  -0,
  1,
  -1,
  1e308,
  -1e308,
  5e-324,
  Number.MAX_SAFE_INTEGER + 2,
  2 ** 64,
  1.5,
  Date.now(),
  -Date.now(),
  1_700_000_000,
];

export function hostileString(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return 'x'.repeat(rng.pick([0, 1, 64, 65, 1000, 70_000]));
    case 1:
      return Array.from({ length: 1 + rng.int(8) }, () => rng.pick(UNICODE)).join('');
    case 2:
      return rng.pick(PROTO_KEYS);
    case 3:
      return rng.pick(['time', 'seq', 'values', 'metric', 'value', 'ts', 'token', 'enc', 'kid']);
    case 4:
      return rng.pick(['2026-01-31T12:00:00Z', '2026-13-45T99:99:99Z', '2026-01-31', 'now', '']);
    default:
      return `m${rng.int(1000)}`;
  }
}

/** Any JSON-ish value, with a depth budget (deep nesting has its own generator). */
export function hostileValue(rng: Rng, depth = 3): unknown {
  const k = rng.int(depth > 0 ? 9 : 6);
  switch (k) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick(NUMBERS);
    case 3:
      return hostileString(rng);
    case 4:
      return undefined;
    case 5:
      return rng.pick([Number.NaN, Number.POSITIVE_INFINITY, 10n, Symbol('s'), () => 1] as unknown[]);
    case 6:
      return Array.from({ length: rng.int(4) }, () => hostileValue(rng, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(5); i > 0; i--) o[hostileString(rng)] = hostileValue(rng, depth - 1);
      return o;
    }
  }
}

/** JSON text of a value, where functions/bigints/symbols degrade to something JSON can hold. */
export function toJsonText(v: unknown): string {
  return (
    JSON.stringify(v, (_k, x: unknown) =>
      typeof x === 'bigint' || typeof x === 'symbol' || typeof x === 'function' ? String(x) : x,
    ) ?? 'null'
  );
}

/** A valid telemetry item as devices send it. */
export function validItem(rng: Rng, now: number, seq?: number): Record<string, unknown> {
  const values: Record<string, number> = {};
  for (let i = 1 + rng.int(5); i > 0; i--) values[`m${rng.int(20)}`] = Math.round(rng.next() * 1e6) / 100;
  const item: Record<string, unknown> = { ts: now - rng.int(60_000), values };
  if (seq !== undefined) item.seq = seq;
  return item;
}

function deepNest(rng: Rng): string {
  const n = rng.pick([100, 1000, 10_000, 100_000]);
  const open = rng.chance(0.5) ? '[' : '{"a":';
  const close = open === '[' ? ']' : '}';
  return open.repeat(n) + '1' + (rng.chance(0.8) ? close.repeat(n) : '');
}

/** Mutations of well-formed JSON text: cut, flipped byte, stray characters. */
function breakJson(rng: Rng, text: string): string {
  switch (rng.int(5)) {
    case 0:
      return text.slice(0, rng.int(text.length));
    case 1: {
      const i = rng.int(text.length);
      return text.slice(0, i) + String.fromCharCode(rng.int(256)) + text.slice(i + 1);
    }
    case 2:
      return text + rng.pick([',', '}', ']', '\u0000', 'garbage']);
    case 3:
      return rng.pick(['', ' ', 'null', 'true', '"str"', '42', '{', '[', '{"ts":}', "{'a':1}", '\ufeff{}']);
    default:
      return text.replace(/[":,]/, rng.pick(['', "'", ';']));
  }
}

export type TelemetryCategory =
  | 'broken-json'
  | 'deep-nesting'
  | 'huge-number'
  | 'huge-string'
  | 'wrong-types'
  | 'proto-pollution'
  | 'unicode'
  | 'batch'
  | 'mutated-valid';

export interface PayloadCase {
  category: TelemetryCategory;
  /** Raw text, a Buffer, or (for node inputs) an already parsed value. */
  payload: unknown;
}

/** A hostile telemetry payload (the body, before any credential). */
export function telemetryPayload(rng: Rng, now: number): PayloadCase {
  const cats: TelemetryCategory[] = [
    'broken-json',
    'deep-nesting',
    'huge-number',
    'huge-string',
    'wrong-types',
    'proto-pollution',
    'unicode',
    'batch',
    'mutated-valid',
  ];
  const category = rng.pick(cats);
  const item = validItem(rng, now);
  let payload: unknown;
  switch (category) {
    case 'broken-json':
      payload = breakJson(rng, toJsonText(item));
      break;
    case 'deep-nesting': {
      const text = deepNest(rng);
      payload = rng.chance(0.3) ? `{"ts":${now},"values":${text}}` : text;
      break;
    }
    case 'huge-number':
      payload = `{"ts":${rng.chance(0.5) ? rng.pick(NUMBER_TEXT) : now},"seq":${rng.pick(NUMBER_TEXT)},"values":{"m1":${rng.pick(NUMBER_TEXT)}}}`;
      break;
    case 'huge-string': {
      const big = 'A'.repeat(rng.pick([1000, 70_000, 300_000]));
      payload = rng.pick([
        `{"ts":${now},"values":{"${big}":1}}`,
        `{"ts":"${big}","values":{"m":1}}`,
        `{"ts":${now},"metric":"m","value":"${big}"}`,
        big,
      ]);
      break;
    }
    case 'wrong-types': {
      const o: Record<string, unknown> = { ...item };
      o[rng.pick(['ts', 'seq', 'values', 'metric', 'value'])] = hostileValue(rng, 2);
      if (rng.chance(0.3)) o.values = hostileValue(rng, 2);
      payload = rng.chance(0.2) ? hostileValue(rng, 2) : o;
      break;
    }
    case 'proto-pollution': {
      const key = rng.pick(PROTO_KEYS);
      payload = rng.pick([
        `{"ts":${now},"values":{"${key}":{"polluted":1},"m1":2}}`,
        `{"${key}":{"polluted":1},"ts":${now},"values":{"m1":1}}`,
        `{"ts":${now},"metric":"${key}","value":1}`,
        `[{"ts":${now},"values":{"__proto__":1}},{"constructor":{"prototype":{"polluted":1}}}]`,
        `{"ts":${now},"values":{"m1":1},"__proto__":{"polluted":1}}`,
      ]);
      break;
    }
    case 'unicode': {
      const name = Array.from({ length: 1 + rng.int(4) }, () => rng.pick(UNICODE)).join('');
      payload = rng.chance(0.5)
        ? toJsonText({ ts: now, values: { [name]: 1, m1: 2 } })
        : Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0xc3, 0x28, rng.int(256)]);
      break;
    }
    case 'batch': {
      const n = rng.pick([0, 1, 3, 100, 10_001]);
      const items = Array.from({ length: n }, (_, i) =>
        rng.chance(0.7) ? validItem(rng, now, i) : hostileValue(rng, 1),
      );
      payload = toJsonText(items);
      break;
    }
    default: {
      const o: Record<string, unknown> = { ...item };
      const k = rng.pick(['ts', 'seq', 'values', 'metric']);
      if (rng.chance(0.5)) delete o[k];
      else o[k] = rng.pick([now + 3_600_000, now - 40 * 86_400_000, -1, '1', [], {}]);
      if (rng.chance(0.2)) Object.assign(o, { metric: 'm', value: 1 });
      payload = toJsonText(o);
    }
  }
  // Node inputs may also get the parsed value or a Buffer (mqtt in without/with parsing).
  if (typeof payload === 'string' && rng.chance(0.2)) payload = Buffer.from(payload);
  return { category, payload };
}

export type AuthCategory =
  | 'no-token'
  | 'bad-token'
  | 'wrong-device-token'
  | 'token-bad-body'
  | 'fernet-bad-base64'
  | 'fernet-wrong-kid'
  | 'fernet-tampered'
  | 'fernet-truncated'
  | 'fernet-expired'
  | 'fernet-bad-plaintext'
  | 'bad-topic'
  | 'bad-properties';

export interface Credentials {
  site: string;
  asset: string;
  token: string;
  kid: string;
  key: string;
}

export interface AuthCase {
  category: AuthCategory | TelemetryCategory;
  topic: unknown;
  payload: unknown;
  userProperties?: unknown;
}

function flipChar(rng: Rng, s: string, from = 0): string {
  const i = from + rng.int(Math.max(1, s.length - from));
  const c = s[i] === 'A' ? 'B' : 'A';
  return s.slice(0, i) + c + s.slice(i + 1);
}

/** A hostile message at the auth gate, aimed at one of `devs` (registered devices with keys). */
export function authCase(rng: Rng, now: number, devs: readonly Credentials[]): AuthCase {
  const d = rng.pick(devs);
  const other = rng.pick(devs);
  const topic = `evtwin/v1/${d.site}/${d.asset}/telemetry`;
  const item = validItem(rng, now, rng.int(1_000_000));
  const kind = rng.int(12);
  const body = (): string => toJsonText(item);
  switch (kind) {
    case 0:
      return { category: 'no-token', topic, payload: body() };
    case 1:
      return {
        category: 'bad-token',
        topic,
        payload: body(),
        userProperties: {
          authorization: rng.pick([
            '',
            'Bearer ',
            'evt_',
            flipChar(rng, d.token, 4),
            d.token + 'x',
            'Bearer ' + 'A'.repeat(70_000),
            'Basic ' + d.token,
            d.token.toLowerCase(),
          ]),
        },
      };
    case 2:
      return {
        category: 'wrong-device-token',
        topic,
        payload: toJsonText({
          ...item,
          token: other.asset === d.asset ? 'evt_' + 'A'.repeat(43) : other.token,
        }),
      };
    case 3: {
      // The right credential, a hostile body: exercises ingest behind a passing gate.
      const p = telemetryPayload(rng, now);
      return {
        category: p.category,
        topic,
        payload: p.payload,
        userProperties: { authorization: `Bearer ${d.token}` },
      };
    }
    case 4: {
      const token = rng.pick(['!!!!', 'gAAAA$$', '====', 'a', 'A'.repeat(70_000), '', 'gAAAAA=A']);
      return {
        category: 'fernet-bad-base64',
        topic,
        payload: toJsonText({ enc: 'fernet', kid: d.kid, token }),
      };
    }
    case 5: {
      const kid = rng.pick([other.kid, 'nope', '', '../../etc', 42, null, 'k'.repeat(65), '__proto__']);
      return {
        category: 'fernet-wrong-kid',
        topic,
        payload: toJsonText({ enc: 'fernet', kid, token: fernetEncrypt(d.key, body(), now) }),
      };
    }
    case 6: {
      const raw = b64urlDecode(fernetEncrypt(d.key, body(), now)) as Buffer;
      const i = rng.int(raw.length);
      raw[i] = (raw[i] as number) ^ (1 << rng.int(8));
      return {
        category: 'fernet-tampered',
        topic,
        payload: toJsonText({ enc: 'fernet', kid: d.kid, token: b64urlEncode(raw) }),
      };
    }
    case 7: {
      const t = fernetEncrypt(d.key, body(), now);
      return {
        category: 'fernet-truncated',
        topic,
        payload: toJsonText({ enc: 'fernet', kid: d.kid, token: t.slice(0, rng.int(t.length)) }),
      };
    }
    case 8: {
      const at = now + rng.pick([-3_600_000, -86_400_000 * 400, 3_600_000, 120_000]);
      return {
        category: 'fernet-expired',
        topic,
        payload: toJsonText(sealTelemetry(d.kid, d.key, item, at)),
      };
    }
    case 9: {
      // A correctly sealed envelope whose plaintext is hostile.
      const p = telemetryPayload(rng, now);
      const text = Buffer.isBuffer(p.payload)
        ? p.payload
        : typeof p.payload === 'string'
          ? p.payload
          : toJsonText(p.payload);
      return {
        category: 'fernet-bad-plaintext',
        topic,
        payload: toJsonText({ enc: 'fernet', kid: d.kid, token: fernetEncrypt(d.key, text, now) }),
      };
    }
    case 10:
      return {
        category: 'bad-topic',
        topic: rng.pick([
          '',
          'evtwin/v1',
          'evtwin/v1/s1//telemetry',
          `evtwin/v1/${d.site}/${d.asset}/telemetry/extra`,
          'evtwin/v1/+/#/telemetry',
          `evtwin/v1/${hostileString(rng)}/a/telemetry`,
          42,
          null,
          { toString: 'x' },
        ]),
        payload: body(),
        userProperties: { authorization: d.token },
      };
    default:
      return {
        category: 'bad-properties',
        topic,
        payload: body(),
        userProperties: rng.pick([
          { authorization: [d.token] },
          { authorization: 42 },
          { authorization: { toString: d.token } },
          'authorization',
          [d.token],
          null,
          { __proto__: { authorization: d.token } },
          JSON.parse(`{"__proto__":{"authorization":"${d.token}"}}`) as unknown,
        ]),
      };
  }
}

export type OcppCategory =
  | 'not-json'
  | 'not-array'
  | 'bad-type-id'
  | 'bad-message-id'
  | 'unknown-action'
  | 'schema-invalid'
  | 'result-unknown-id'
  | 'huge-frame'
  | 'deep-frame'
  | 'proto-keys';

export interface OcppCase {
  category: OcppCategory;
  frame: string;
}

/** The OCPP 1.6 actions the central system accepts: the core's list, so the fuzzer aims at real handlers. */
const OCPP16_ACTIONS = INBOUND_ACTIONS['ocpp1.6'];

/** One hostile OCPP-J text frame; `id` is the message id to use when the frame has one. */
export function ocppFrame(rng: Rng, id: string, maxBytes: number): OcppCase {
  const category = rng.pick<OcppCategory>([
    'not-json',
    'not-array',
    'bad-type-id',
    'bad-message-id',
    'unknown-action',
    'schema-invalid',
    'result-unknown-id',
    'huge-frame',
    'deep-frame',
    'proto-keys',
  ]);
  const action = rng.pick(OCPP16_ACTIONS);
  let frame: string;
  switch (category) {
    case 'not-json':
      frame = breakJson(rng, toJsonText([2, id, action, {}]));
      if (frame === '') frame = '[';
      break;
    case 'not-array':
      frame = toJsonText(rng.pick([{ 0: 2, 1: id }, 'x', 2, null, true, { messageTypeId: 2 }]));
      break;
    case 'bad-type-id':
      frame = toJsonText([rng.pick([0, 1, 5, -1, 2.5, 1e308, '2', null, [2], 'CALL']), id, action, {}]);
      break;
    case 'bad-message-id':
      frame = toJsonText([2, rng.pick([1, null, {}, [], true, 1e308]), action, {}]);
      break;
    case 'unknown-action':
      frame = toJsonText([
        2,
        id,
        rng.pick(['Reset', 'Foo', '', 'constructor', '__proto__', 'x'.repeat(500), 7]),
        {},
      ]);
      break;
    case 'schema-invalid':
      frame = toJsonText([2, id, action, hostileValue(rng, 3)]);
      break;
    case 'result-unknown-id':
      frame = toJsonText(
        rng.chance(0.5) ? [3, id, hostileValue(rng, 2)] : [4, id, 'GenericError', 'x', hostileValue(rng, 1)],
      );
      break;
    case 'huge-frame':
      frame = toJsonText([
        2,
        id,
        'DataTransfer',
        { vendorId: 'v', data: 'D'.repeat(maxBytes + rng.int(4096)) },
      ]);
      break;
    case 'deep-frame':
      frame = `[2,"${id}","DataTransfer",${'{"a":'.repeat(rng.pick([50, 500, 2000]))}1${'}'.repeat(rng.chance(0.8) ? 1 : 0)}]`;
      break;
    default: {
      const key = rng.pick(PROTO_KEYS);
      frame = `[2,"${id}","${action}",{"${key}":{"polluted":1},"connectorId":1,"status":"Available","errorCode":"NoError"}]`;
    }
  }
  return { category, frame };
}
