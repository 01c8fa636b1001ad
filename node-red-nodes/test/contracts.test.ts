/** Topic templates, the asset model loader, ingest and line protocol: the contracts everyone imports. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AssetModelError,
  DEFAULT_LIMITS,
  DEFAULT_TELEMETRY_TEMPLATE,
  RateMeter,
  compileTopicTemplate,
  encodePoint,
  indexAssets,
  ingestMessage,
  parseAssetModel,
  readingToPoint,
  telemetryTopic,
} from '../src/core';

const MODEL_FILE = join(__dirname, '..', '..', 'provisioning', 'evtwin', 'assets.yaml');

describe('topic templates', () => {
  it('matches the default scheme and builds its subscription', () => {
    const t = compileTopicTemplate(DEFAULT_TELEMETRY_TEMPLATE);
    assert.equal(t.subscription, 'evtwin/v1/+/+/telemetry');
    assert.deepEqual(t.match(telemetryTopic('plant-a', 'cnc-01')), { site: 'plant-a', asset: 'cnc-01' });
    assert.equal(t.match('evtwin/v1/plant-a/cnc-01/status'), undefined);
    assert.equal(t.match('evtwin/v1/plant-a/cnc 01/telemetry'), undefined, 'ids are validated');
  });

  it('maps other schemes in', () => {
    const t = compileTopicTemplate('jjm/sensors/{asset}/data');
    assert.equal(t.subscription, 'jjm/sensors/+/data');
    assert.deepEqual(t.match('jjm/sensors/pres-01/data'), { asset: 'pres-01' });
  });

  it('refuses templates that cannot work, with the reason', () => {
    assert.throws(() => compileTopicTemplate('a/{site}/b'), /\{asset\} is required/);
    assert.throws(() => compileTopicTemplate('a/+/{asset}'), /not MQTT wildcards/);
    assert.throws(() => compileTopicTemplate('a/{asset}/{colour}'), /unknown placeholder \{colour\}/);
    assert.throws(() => compileTopicTemplate('a/x{asset}'), /whole topic level/);
    assert.throws(() => compileTopicTemplate('{asset}/{asset}'), /appears twice/);
  });
});

describe('asset model', () => {
  it('loads the provisioned model', () => {
    const model = parseAssetModel(readFileSync(MODEL_FILE, 'utf8'), MODEL_FILE);
    assert.equal(model.sites.length, 3);
    assert.equal(model.assets.length, 13);
    const idx = indexAssets(model);
    assert.equal(idx.get('plant-a', 'cnc-01')?.line, 'machining');
    assert.equal(idx.byId('cp-02')?.site, 'charging-hub');
  });

  it('names file, line, column and field on a mistake', () => {
    const text =
      'sites:\n  - id: a\n    lines:\n      - id: l\n        assets:\n          - id: x\n            kind: cnc\n            location: { lat: 95, lon: 0 }\n';
    assert.throws(
      () => parseAssetModel(text, 'my.yaml'),
      (err: unknown) =>
        err instanceof AssetModelError &&
        err.file === 'my.yaml' &&
        err.line === 8 &&
        err.field === 'sites[0].lines[0].assets[0].location.lat' &&
        /within -90..90/.test(err.message),
    );
    assert.throws(
      () => parseAssetModel('sites:\n  - id: a\n    colour: red\n', 'm.yaml'),
      /m\.yaml:3:5: sites\[0\]\.colour: unknown field/,
    );
    assert.throws(() => parseAssetModel('sites: [\n', 'm.yaml'), /m\.yaml:\d+:\d+: \(syntax\)/);
    assert.throws(
      () =>
        parseAssetModel(
          'sites:\n  - id: a\n    assets: [{id: x, kind: cnc}, {id: x, kind: robot}]\n',
          'm.yaml',
        ),
      /appears twice/,
    );
  });
});

describe('ingest', () => {
  const model = indexAssets(parseAssetModel(readFileSync(MODEL_FILE, 'utf8'), MODEL_FILE));
  const now = Date.now();
  const config = {
    template: compileTopicTemplate(DEFAULT_TELEMETRY_TEMPLATE),
    defaultKind: 'generic',
    limits: DEFAULT_LIMITS,
  };

  it('takes site, line and kind from the asset model', () => {
    const r = ingestMessage(telemetryTopic('plant-a', 'robot-01'), { ts: now, values: { power: 1 } }, now, {
      ...config,
      assets: model,
    });
    assert.deepEqual(r.readings, [
      { site: 'plant-a', line: 'assembly', asset: 'robot-01', kind: 'robot', ts: now, metrics: { power: 1 } },
    ]);
  });

  it('without a model, takes identity from the topic and the default kind', () => {
    const r = ingestMessage(telemetryTopic('s1', 'dev-9'), { ts: now, values: { x: 1 } }, now, config);
    assert.equal(r.readings[0]?.kind, 'generic');
    assert.equal(r.readings[0]?.line, undefined);
  });

  it('refuses unknown assets and topics without a site', () => {
    const unknown = ingestMessage(telemetryTopic('plant-a', 'ghost'), { values: { x: 1 } }, now, {
      ...config,
      assets: model,
    });
    assert.equal(unknown.rejections[0]?.code, 'unknown-asset');
    const noSite = ingestMessage('d/x', { values: { x: 1 } }, now, {
      ...config,
      template: compileTopicTemplate('d/{asset}'),
    });
    assert.equal(noSite.rejections[0]?.code, 'topic-mismatch');
  });
});

describe('line protocol', () => {
  it('writes metrics as floats and seq as an integer, in ms, with escaping', () => {
    const line = encodePoint(
      readingToPoint({
        site: 'plant a',
        line: 'l,1',
        asset: 'cnc=1',
        kind: 'cnc',
        ts: 1700000000123,
        seq: 7,
        metrics: { power: 4, 'x y': 0.5 },
      }),
    );
    assert.equal(
      line,
      'telemetry,asset=cnc\\=1,kind=cnc,line=l\\,1,site=plant\\ a power=4,x\\ y=0.5,seq=7i 1700000000123',
    );
  });

  it('refuses points outside the schema', () => {
    assert.throws(
      () => encodePoint({ measurement: 'nope', tags: {}, fields: { a: 1 }, ts: 1 }),
      /not in the schema/,
    );
    assert.throws(
      () => encodePoint({ measurement: 'telemetry', tags: { colour: 'red' }, fields: { a: 1 }, ts: 1 }),
      /tag "colour"/,
    );
    assert.throws(
      () => encodePoint({ measurement: 'telemetry', tags: {}, fields: { a: 'x' }, ts: 1 }),
      /expected a finite float/,
    );
    assert.throws(
      () => encodePoint({ measurement: 'telemetry', tags: {}, fields: { seq: 1.5 }, ts: 1 }),
      /expected an integer/,
    );
    assert.throws(
      () => encodePoint({ measurement: 'telemetry', tags: {}, fields: {}, ts: 1 }),
      /at least one field/,
    );
  });
});

describe('rate meter', () => {
  it('reports events per second over the completed window', () => {
    const m = new RateMeter(5);
    const t0 = 1_000_000;
    for (let s = 0; s < 5; s++) m.add(100, t0 + s * 1000);
    assert.equal(m.perSecond(t0 + 4500), 100);
    assert.equal(m.perSecond(t0 + 20_000), 0);
    assert.equal(m.total, 500);
  });
});
