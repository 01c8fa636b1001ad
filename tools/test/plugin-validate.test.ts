/**
 * Offline plugin checks on the packaged archives of both Grafana plugins (what the plugin validator checks
 * without network), and proof that each check catches what it is for.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packagePlugin, readZip, writeZip } from '../src/plugins/zip';
import { validatePluginArchive } from '../src/plugins/validate';

const REPO = join(__dirname, '..', '..');
const ARTIFACTS = join(REPO, 'test-artifacts');

for (const [dir, id] of [
  ['grafana-panel', 'evtwin-twin-panel'],
  ['grafana-datasource', 'evtwin-twin-datasource'],
] as const) {
  describe(`${id} archive`, () => {
    it('is packaged under a folder named after the plugin id and passes every offline check', () => {
      const dist = join(REPO, dir, 'dist');
      assert.ok(existsSync(join(dist, 'plugin.json')), `build ${dir} first (npm run build -w ${dir})`);
      const version = (
        JSON.parse(readFileSync(join(REPO, dir, 'package.json'), 'utf8')) as { version: string }
      ).version;
      const zip = packagePlugin(dist, id);
      mkdirSync(ARTIFACTS, { recursive: true });
      writeFileSync(join(ARTIFACTS, `${id}-${version}.zip`), zip);
      const report = validatePluginArchive(zip, version);
      assert.equal(report.root, id);
      assert.ok(report.files.includes(`${id}/module.js`));
      assert.deepEqual(report.problems, []);
    });
  });
}

describe('the offline checks', () => {
  const good = {
    type: 'panel',
    name: 'X',
    id: 'acme-x-panel',
    info: {
      description: 'd',
      keywords: ['k'],
      version: '1.0.0',
      updated: '2025-01-01',
      author: { name: 'a' },
      logos: { small: 'img/logo.svg', large: 'img/logo.svg' },
      screenshots: [{ name: 's', path: 'img/shot.png' }],
    },
    dependencies: { grafanaDependency: '>=12.0.0' },
  };
  const files = (root: string, meta: object, extra: Record<string, string> = {}) =>
    writeZip(
      Object.entries({
        'plugin.json': JSON.stringify(meta),
        'module.js': 'define([],function(){return {}})',
        'module.js.map': '{}',
        'README.md': '# X\nA panel.',
        'CHANGELOG.md': '# 1.0.0',
        LICENSE: 'Apache-2.0',
        'img/logo.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>',
        'img/shot.png': 'png',
        ...extra,
      }).map(([n, d]) => ({ name: `${root}/${n}`, data: Buffer.from(d) })),
    );

  it('pass a well-formed archive, and our zip reads back byte for byte', () => {
    const zip = files('acme-x-panel', good);
    assert.deepEqual(validatePluginArchive(zip, '1.0.0').problems, []);
    const big = Buffer.from('x'.repeat(10_000));
    assert.deepEqual(readZip(writeZip([{ name: 'a/b.txt', data: big }]))[0]?.data, big);
  });

  it('catch each mistake Grafana refuses', () => {
    const bad = {
      ...good,
      id: 'acme-x',
      alerting: true,
      info: {
        ...good.info,
        version: '%VERSION%',
        keywords: [],
        description: '',
        screenshots: [{ name: 's', path: 'img/missing.png' }],
      },
    };
    const zip = files('dist', bad, {
      'img/logo.svg': '<svg onload="alert(1)"><script>x</script></svg>',
      'module.js': 'angular.module("x"); class P extends PanelCtrl {}',
      'README.md': '# Grafana panel plugin template\nThis template is a starting point',
    });
    const text = validatePluginArchive(zip, '1.0.0').problems.join('\n');
    for (const expected of [
      /root folder "dist" must be named after the plugin id "acme-x"/,
      /plugin id "acme-x" does not match/,
      /%VERSION% placeholder/,
      /differs from package.json version 1.0.0/,
      /info.description missing/,
      /info.keywords missing/,
      /alerting: true needs backend: true/,
      /README.md is still the create-plugin template/,
      /screenshot img\/missing.png not in the archive/,
      /unsafe SVG .*<script/,
      /unsafe SVG .*on\[a-z\]/,
      /Angular in .*module.js/,
    ])
      assert.match(text, expected);
    const noMap = writeZip([{ name: 'acme-x-panel/plugin.json', data: Buffer.from(JSON.stringify(good)) }]);
    assert.match(
      validatePluginArchive(noMap, '1.0.0').problems.join('\n'),
      /module.js.map missing[\s\S]*LICENSE missing/,
    );
  });
});
