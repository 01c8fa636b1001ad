/** The telemetry codec: every accepted shape, and every kind of bad input with its reason. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, decodeTelemetry, type DecodeLimits } from '../src/core';

const NOW = Date.parse('2026-11-23T12:00:00Z');
const decode = (payload: unknown, limits: DecodeLimits = DEFAULT_LIMITS) =>
  decodeTelemetry(payload, NOW, limits);
const codes = (payload: unknown, limits?: DecodeLimits) =>
  decode(payload, limits).rejections.map((r) => r.code);

describe('decodeTelemetry: accepted shapes', () => {
  it('reads a values dict with epoch-ms ts and seq', () => {
    const r = decode(
      Buffer.from(JSON.stringify({ ts: NOW - 5, seq: 9, values: { power: 4.5, temperature: 40 } })),
    );
    assert.deepEqual(r, {
      items: [{ ts: NOW - 5, seq: 9, metrics: { power: 4.5, temperature: 40 } }],
      rejections: [],
    });
  });

  it('reads a single metric/value with an ISO timestamp, in any offset', () => {
    const r = decode('{"ts":"2026-11-23T13:00:00+01:00","metric":"pressure","value":3.25}');
    assert.deepEqual(r.items, [{ ts: NOW, metrics: { pressure: 3.25 } }]);
  });

  it('reads a batch of mixed shapes from an already-parsed array', () => {
    const r = decode([
      { ts: NOW - 2, values: { a: 1 } },
      { ts: NOW - 1, metric: 'b', value: 2 },
    ]);
    assert.equal(r.items.length, 2);
    assert.deepEqual(r.rejections, []);
  });

  it('uses the receive time when ts is missing, unless ts is required', () => {
    assert.equal(decode({ values: { a: 1 } }).items[0]?.ts, NOW);
    assert.deepEqual(codes({ values: { a: 1 } }, { ...DEFAULT_LIMITS, defaultTsToReceiveTime: false }), [
      'bad-timestamp',
    ]);
  });

  it('counts booleans as 1 and 0', () => {
    assert.deepEqual(decode({ ts: NOW, values: { running: true, fault: false } }).items[0]?.metrics, {
      running: 1,
      fault: 0,
    });
  });
});

describe('decodeTelemetry: bad input', () => {
  it('refuses malformed JSON with the parser message', () => {
    const r = decode('{"ts": 1, "values": {');
    assert.equal(r.rejections[0]?.code, 'not-json');
    assert.match(r.rejections[0]?.reason ?? '', /not valid JSON/);
  });

  it('refuses empty payloads and empty batches', () => {
    assert.deepEqual(codes(''), ['bad-shape']);
    assert.deepEqual(codes('   '), ['bad-shape']);
    assert.deepEqual(codes('[]'), ['bad-shape']);
  });

  it('refuses an oversized payload before parsing it', () => {
    const big = JSON.stringify({ ts: NOW, values: { a: 1 }, pad: 'x'.repeat(2000) });
    const r = decode(big, { ...DEFAULT_LIMITS, maxBytes: 1024 });
    assert.equal(r.rejections[0]?.code, 'too-large');
    assert.match(r.rejections[0]?.reason ?? '', /over the limit of 1024/);
  });

  it('refuses batches with too many items', () => {
    assert.deepEqual(codes(new Array(11).fill({ values: { a: 1 } }), { ...DEFAULT_LIMITS, maxItems: 10 }), [
      'too-large',
    ]);
  });

  it('refuses wrong types: strings, null, NaN and Infinity where numbers belong', () => {
    const r = decode({ ts: NOW, values: { a: '12.5', b: null, c: 1, d: [1] } });
    assert.deepEqual(r.items, [{ ts: NOW, metrics: { c: 1 } }], 'the good metric beside bad ones is kept');
    assert.deepEqual(
      r.rejections.map((x) => x.reason),
      [
        'values.a: expected a number, got a string "12.5"',
        'values.b: expected a number, got null',
        'values.d: expected a number, got an array',
      ],
    );
    // JSON has no NaN/Infinity, but an upstream function node can produce them.
    assert.deepEqual(codes({ ts: NOW, values: { x: NaN, y: Infinity } }), ['bad-value', 'bad-value']);
  });

  it('refuses empty values, both shapes at once, and non-object items', () => {
    assert.deepEqual(codes({ ts: NOW, values: {} }), ['bad-shape']);
    assert.deepEqual(codes({ ts: NOW, values: { a: 1 }, metric: 'b', value: 2 }), ['bad-shape']);
    assert.deepEqual(codes({ ts: NOW }), ['bad-shape']);
    assert.deepEqual(codes(42), ['bad-shape']);
    assert.deepEqual(codes('"text"'), ['bad-shape']);
  });

  it('refuses bad metric names and reserved ones', () => {
    assert.deepEqual(codes({ ts: NOW, values: { 'bad name': 1 } }), ['bad-metric']);
    assert.deepEqual(codes({ ts: NOW, metric: 'time', value: 1 }), ['bad-metric']);
    assert.deepEqual(codes({ ts: NOW, metric: 7, value: 1 }), ['bad-metric']);
  });

  it('refuses timestamps far in the future or past, seconds for milliseconds, and garbage', () => {
    assert.match(
      decode({ ts: NOW + 3_600_000, values: { a: 1 } }).rejections[0]?.reason ?? '',
      /3600 s in the future/,
    );
    assert.match(
      decode({ ts: NOW - 40 * 86_400_000, values: { a: 1 } }).rejections[0]?.reason ?? '',
      /older than the limit/,
    );
    assert.match(
      decode({ ts: NOW / 1000, values: { a: 1 } }).rejections[0]?.reason ?? '',
      /looks like epoch seconds/,
    );
    assert.deepEqual(
      codes({ ts: '2026-11-23', values: { a: 1 } }),
      ['bad-timestamp'],
      'no time zone: ambiguous',
    );
    assert.deepEqual(codes({ ts: '2026-13-45T99:00:00Z', values: { a: 1 } }), ['bad-timestamp']);
    assert.deepEqual(codes({ ts: true, values: { a: 1 } }), ['bad-timestamp']);
  });

  it('refuses a bad seq', () => {
    assert.deepEqual(codes({ ts: NOW, seq: -1, values: { a: 1 } }), ['bad-seq']);
    assert.deepEqual(codes({ ts: NOW, seq: 1.5, values: { a: 1 } }), ['bad-seq']);
  });

  it('keeps every good item of a batch with one bad element, and names the bad index', () => {
    const batch = [
      { ts: NOW - 3, values: { a: 1 } },
      { ts: NOW - 2, values: { a: 'x' } },
      'garbage',
      { ts: NOW - 1, values: { a: 3 } },
    ];
    const r = decode(JSON.stringify(batch));
    assert.deepEqual(
      r.items.map((i) => i.metrics.a),
      [1, 3],
    );
    assert.deepEqual(
      r.rejections.map((x) => [x.index, x.code]),
      [
        [1, 'bad-value'],
        [2, 'bad-shape'],
      ],
    );
    assert.match(r.rejections[1]?.reason ?? '', /^item 2: expected an object, got a string "garbage"/);
  });
});
