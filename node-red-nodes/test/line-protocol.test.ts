/** Line protocol: fixed field types, escaping, and points refused one by one. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  SchemaError,
  encodeBatch,
  encodePoint,
  isPoint,
  readingToPoint,
  type Point,
} from '../src/core/lineProtocol';

const reading = {
  site: 'plant-a',
  line: 'machining',
  asset: 'cnc-01',
  kind: 'cnc',
  ts: 1767225600000,
  seq: 7,
  metrics: { power: 4, temperature: 41.5 },
};

describe('encodePoint', () => {
  it('writes telemetry metrics as floats (even whole numbers), seq as integer, tags sorted, ms timestamp', () => {
    assert.equal(
      encodePoint(readingToPoint(reading)),
      'telemetry,asset=cnc-01,kind=cnc,line=machining,site=plant-a power=4,temperature=41.5,seq=7i 1767225600000',
    );
  });

  it('leaves out absent and empty tags', () => {
    const { line: _line, ...noLine } = reading;
    assert.equal(
      encodePoint(readingToPoint({ ...noLine, site: 'plant-a', metrics: { power: 1.5 } })),
      'telemetry,asset=cnc-01,kind=cnc,site=plant-a power=1.5,seq=7i 1767225600000',
    );
  });

  it('escapes spaces, commas and equals signs in names and tag values, quotes and backslashes in strings', () => {
    const schemas = {
      'my events': { tags: ['type'], fields: { note: 'string' }, otherFields: 'float' },
    } as const;
    const p: Point = {
      measurement: 'my events',
      tags: { type: 'a b,c=d' },
      fields: { note: 'say "hi" \\ there', 'x y': 1.25 },
      ts: 5,
    };
    assert.equal(
      encodePoint(p, schemas),
      'my\\ events,type=a\\ b\\,c\\=d note="say \\"hi\\" \\\\ there",x\\ y=1.25 5',
    );
  });

  it('refuses what would fail or corrupt the batch in InfluxDB', () => {
    const bad: [string, Point][] = [
      ['NaN', readingToPoint({ ...reading, metrics: { power: NaN } })],
      ['Infinity', readingToPoint({ ...reading, metrics: { power: Infinity } })],
      ['fractional seq', readingToPoint({ ...reading, seq: 1.5 })],
      ['unknown measurement', { measurement: 'nope', tags: {}, fields: { a: 1 }, ts: 1 }],
      ['unknown tag', { measurement: 'telemetry', tags: { room: 'x' }, fields: { a: 1 }, ts: 1 }],
      ['backslash in a tag', readingToPoint({ ...reading, asset: 'a\\b' })],
      ['line break in a tag', readingToPoint({ ...reading, asset: 'a\nb' })],
      ['line break in a field key', readingToPoint({ ...reading, metrics: { 'a\nb': 1 } })],
      ['no field', { measurement: 'telemetry', tags: { asset: 'a' }, fields: {}, ts: 1 }],
      ['fractional ms', { measurement: 'telemetry', tags: { asset: 'a' }, fields: { a: 1 }, ts: 1.5 }],
      ['string metric', { measurement: 'telemetry', tags: { asset: 'a' }, fields: { a: 'high' }, ts: 1 }],
    ];
    for (const [what, p] of bad) assert.throws(() => encodePoint(p), SchemaError, what);
  });
});

describe('encodeBatch', () => {
  it('keeps the good points and names each refused one by index', () => {
    const input: unknown[] = [
      readingToPoint(reading),
      readingToPoint({ ...reading, metrics: { power: NaN } }),
      { hello: 'world' },
      readingToPoint({ ...reading, ts: reading.ts + 1 }),
    ];
    const { lines, refused } = encodeBatch(input);
    assert.equal(lines.length, 2);
    assert.match(lines[1] ?? '', / 1767225600001$/);
    assert.deepEqual(
      refused.map((r) => r.index),
      [1, 2],
    );
    assert.match(refused[0]?.reason ?? '', /telemetry\.power: expected a finite float, got NaN/);
    assert.match(refused[1]?.reason ?? '', /not a point/);
  });

  it('recognises the shape of a point', () => {
    assert.equal(isPoint(readingToPoint(reading)), true);
    assert.equal(isPoint(reading), false);
    assert.equal(isPoint({ measurement: 'x', tags: [], fields: {}, ts: 1 }), false);
    assert.equal(isPoint(null), false);
  });
});
