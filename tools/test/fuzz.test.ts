/**
 * The fuzzer at a small size (`npm run fuzz` runs it at 100,000): hostile inputs through the core
 * auth + ingest path, the evtwin-auth / evtwin-ingest nodes in Node-RED and the evtwin-ocpp central
 * system over WebSockets. No crash, no hang, every input answered or dead-lettered, valid traffic
 * beside it all stored or answered. Plus the regressions the fuzzer found.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, decodeTelemetry } from 'node-red-contrib-evtwin';
import { formatSummary, runFuzz } from '../src/fuzz/run';

const COUNT = Number(process.env.EVTWIN_FUZZ_COUNT ?? 3000);
const SEED = Number(process.env.EVTWIN_FUZZ_SEED ?? 20261207);

describe('fuzz', () => {
  it(`${COUNT} hostile inputs (seed ${SEED}): all answered, none crash or hang, valid traffic intact`, async () => {
    const s = await runFuzz({ count: COUNT, seed: SEED });
    const report = formatSummary(s);
    assert.deepEqual(s.failures, [], report);
    assert.equal(s.inputs, COUNT, report);
    const { core, nodes, ocpp } = s.targets;
    assert.ok(core && nodes && ocpp);
    // Each target saw hostile inputs of every kind and valid traffic beside them.
    for (const t of [core, nodes]) {
      for (const cat of [
        'ingest:deep-nesting',
        'ingest:proto-pollution',
        'auth:fernet-tampered',
        'auth:bad-token',
        'valid',
      ])
        assert.ok(t.byCategory[cat], `${cat} missing\n${report}`);
      assert.ok(t.valid > COUNT / 100, report);
    }
    for (const cat of [
      'not-json',
      'bad-type-id',
      'unknown-action',
      'schema-invalid',
      'huge-frame',
      'result-unknown-id',
    ])
      assert.ok(ocpp.byCategory[`ocpp:${cat}`], `ocpp:${cat} missing\n${report}`);
    // The hostile inputs were refused for the right reasons, not stored.
    assert.equal(core.byCategory['auth:fernet-tampered']?.stored, undefined, report);
    assert.ok((ocpp.outcomes.callerror ?? 0) > 0 && (ocpp.outcomes['closed:1009'] ?? 0) > 0, report);
    assert.ok((ocpp.outcomes['valid ocpp-rpc calls ok'] ?? 0) > 0, report);
  });

  it('regression: a metric named __proto__ is refused, not silently dropped', () => {
    const now = Date.now();
    const r = decodeTelemetry(`{"ts":${now},"values":{"__proto__":1,"m":2}}`, now, DEFAULT_LIMITS);
    assert.deepEqual(r.items, [{ ts: now, metrics: { m: 2 } }]);
    assert.equal(r.rejections[0]?.code, 'bad-metric');
    const only = decodeTelemetry(`{"ts":${now},"metric":"__proto__","value":1}`, now, DEFAULT_LIMITS);
    assert.deepEqual(only.items, []);
  });

  it('regression: a timestamp beyond the range of dates is a rejection, not a throw', () => {
    for (const ts of [1e300, -1e300, 8.7e15]) {
      const r = decodeTelemetry(JSON.stringify({ ts, values: { m: 1 } }), Date.now(), DEFAULT_LIMITS);
      assert.equal(r.items.length, 0);
      assert.equal(r.rejections[0]?.code, 'bad-timestamp');
    }
  });
});
