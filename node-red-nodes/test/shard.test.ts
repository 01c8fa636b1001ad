/**
 * core/shard.ts and the evtwin-shard node: the shard of a device is stable (fixed FNV-1a vectors),
 * in range, spread evenly; readings are addressed to their shard topic, anything else dead-lettered.
 */
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import helper from 'node-red-node-test-helper';
import { fnv1a32, routeReading, shardOf, shardSubscription, shardTopic } from '../src/core/shard';
import type { Reading } from '../src/core/reading';

helper.init(require.resolve('node-red'));
const shardNode = require(join(__dirname, '..', 'dist', 'nodes', 'evtwin-shard', 'evtwin-shard.js'));

describe('shard (core)', () => {
  it('FNV-1a 32 matches the reference vectors, so every instance and version agrees', () => {
    assert.equal(fnv1a32(''), 0x811c9dc5);
    assert.equal(fnv1a32('a'), 0xe40c292c);
    assert.equal(fnv1a32('foobar'), 0xbf9cf968);
  });

  it('shards are in range and spread evenly over 10,000 devices', () => {
    for (const n of [1, 2, 3, 8]) {
      const counts = new Array<number>(n).fill(0);
      for (let i = 0; i < 10_000; i++) {
        const k = shardOf(`site${i % 7}`, `asset-${i}`, n);
        assert.ok(Number.isInteger(k) && k >= 0 && k < n);
        counts[k] = (counts[k] ?? 0) + 1;
      }
      for (const c of counts)
        assert.ok(Math.abs(c - 10_000 / n) < (10_000 / n) * 0.1, `${n}: ${counts.join(',')}`);
    }
    assert.equal(shardOf('s1', 'd1', 4), shardOf('s1', 'd1', 4));
  });

  it('refuses shard counts that are not positive integers', () => {
    for (const n of [0, -1, 1.5, Number.NaN, 2000]) assert.throws(() => shardOf('s', 'a', n), RangeError);
  });

  it('topics: the reading goes where the instance of its shard subscribes', () => {
    const k = shardOf('s1', 'pump-7', 3);
    assert.equal(shardTopic('s1', 'pump-7', 3), `evtwin/v1/_shard/${k}/s1/pump-7`);
    assert.equal(shardSubscription(k), `evtwin/v1/_shard/${k}/+/+`);
    const r: Reading = { site: 's1', asset: 'pump-7', kind: 'pump', ts: 1, metrics: { a: 1 } };
    assert.deepEqual(routeReading(r, 3), { ok: true, shard: k, topic: `evtwin/v1/_shard/${k}/s1/pump-7` });
    assert.equal(routeReading({ ...r, asset: 'a/#' }, 3).ok, false);
  });
});

describe('evtwin-shard node', () => {
  afterEach(() => helper.unload());
  after(() => new Promise<void>((resolve) => helper.stopServer(() => resolve())));

  it('addresses readings to their shard topic (QoS 1) and dead-letters the rest', async () => {
    await helper.load(shardNode, [
      { id: 'sh', type: 'evtwin-shard', shards: '4', qos: '1', wires: [['ok'], ['bad']] },
      { id: 'ok', type: 'helper' },
      { id: 'bad', type: 'helper' },
    ]);
    const ok: { topic: string; qos: number; payload: Reading; evtwin: { shard: number } }[] = [];
    const bad: { error: { code: string } }[] = [];
    helper.getNode('ok')?.on('input', (m: (typeof ok)[number]) => ok.push(m));
    helper.getNode('bad')?.on('input', (m: (typeof bad)[number]) => bad.push(m));
    const sh = helper.getNode('sh');
    const r: Reading = { site: 's1', asset: 'd1', kind: 'generic', ts: 1, metrics: { x: 1 } };
    sh?.receive({ payload: r });
    sh?.receive({ payload: 'not a reading' });
    sh?.receive({ payload: { ...r, site: 'a/b' } });
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(ok.length, 1);
    assert.equal(ok[0]?.topic, shardTopic('s1', 'd1', 4));
    assert.equal(ok[0]?.qos, 1);
    assert.equal(ok[0]?.evtwin.shard, shardOf('s1', 'd1', 4));
    assert.deepEqual(ok[0]?.payload, r);
    assert.deepEqual(
      bad.map((m) => m.error.code),
      ['not-routable', 'not-routable'],
    );
  });

  it('a bad shard count is a configuration error: everything dead-lettered, nothing routed', async () => {
    await helper.load(shardNode, [
      { id: 'sh', type: 'evtwin-shard', shards: 'x', wires: [['ok'], ['bad']] },
      { id: 'ok', type: 'helper' },
      { id: 'bad', type: 'helper' },
    ]);
    let okCount = 0;
    let badCount = 0;
    helper.getNode('ok')?.on('input', () => okCount++);
    helper.getNode('bad')?.on('input', () => badCount++);
    helper.getNode('sh')?.receive({ payload: { site: 's', asset: 'a', kind: 'k', ts: 1, metrics: {} } });
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual([okCount, badCount], [0, 1]);
  });
});
