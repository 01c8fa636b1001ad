/**
 * Grafana in `npm start` (tools/src/stack/grafana.ts): the generated grafana.ini (pure), the binary
 * lookup, and the start sequence driven through a stand-in `grafana` executable. The stand-in is a
 * small node script that answers /api/health and records how it was called: no Grafana server can run
 * on this machine, so this checks our side (arguments, config, plugin links, environment, waiting for
 * health, stopping), not Grafana.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ACTIONS_ALLOW_POST_URL } from '../src/grafana/model';
import { freePort } from '../src/services';
import { GRAFANA_MISSING, findGrafana, grafanaIni, startGrafana } from '../src/stack/grafana';

const REPO = resolve(__dirname, '..', '..');
const ini = (text: string): Record<string, Record<string, string>> => {
  const out: Record<string, Record<string, string>> = {};
  let section = '';
  for (const line of text.split('\n')) {
    const s = /^\[(.+)\]$/.exec(line);
    if (s) out[(section = s[1] as string)] = {};
    const kv = /^([a-z_]+) = (.*)$/.exec(line);
    if (kv && out[section]) (out[section] as Record<string, string>)[kv[1] as string] = kv[2] as string;
  }
  return out;
};

describe('grafanaIni (pure)', () => {
  const o = {
    dataDir: '/d/grafana',
    port: 3123,
    adminPassword: 'Abc_def-123456',
    provisioningDir: '/r/provisioning/grafana',
  };
  test('loopback only, unsigned plugins by id, send_user_header, provisioning, admin password', () => {
    const c = ini(grafanaIni(o));
    assert.equal(c.server?.http_addr, '127.0.0.1');
    assert.equal(c.server?.http_port, '3123');
    const ids = ['grafana-datasource', 'grafana-panel'].map(
      (d) => (JSON.parse(readFileSync(join(REPO, d, 'src/plugin.json'), 'utf8')) as { id: string }).id,
    );
    assert.deepEqual(c.plugins?.allow_loading_unsigned_plugins?.split(',').sort(), ids.sort());
    assert.equal(c.dataproxy?.send_user_header, 'true');
    assert.equal(c.security?.actions_allow_post_url, ACTIONS_ALLOW_POST_URL);
    assert.equal(c.paths?.provisioning, '/r/provisioning/grafana');
    assert.equal(c.paths?.plugins, '/d/grafana/plugins');
    assert.equal(c.security?.admin_password, 'Abc_def-123456');
    assert.equal(c['auth.anonymous']?.enabled, 'false');
    assert.equal(c.users?.allow_sign_up, 'false');
    assert.equal(c.analytics?.reporting_enabled, 'false');
  });
  test('refuses a password an ini file would cut (; or #) or a short one', () => {
    assert.throws(() => grafanaIni({ ...o, adminPassword: 'abcdefgh;ijklmn' }));
    assert.throws(() => grafanaIni({ ...o, adminPassword: 'short' }));
  });
  test('without a binary: one line naming both binaries and docker compose', () => {
    assert.ok(!GRAFANA_MISSING.includes('\n'));
    assert.match(GRAFANA_MISSING, /`grafana` or `grafana-server`/);
    assert.match(GRAFANA_MISSING, /docker compose/);
  });
});

describe('startGrafana with a stand-in grafana binary on PATH', () => {
  let dir: string;
  const savedPath = process.env.PATH;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'evtwin-grafana-stack-'));
    // A tarball-like home: <home>/bin/grafana and <home>/conf/defaults.ini.
    mkdirSync(join(dir, 'home', 'bin'), { recursive: true });
    mkdirSync(join(dir, 'home', 'conf'), { recursive: true });
    writeFileSync(join(dir, 'home', 'conf', 'defaults.ini'), '');
    const script = join(dir, 'standin.js');
    writeFileSync(
      script,
      `const http = require('node:http'); const fs = require('node:fs');
const args = process.argv.slice(2);
const config = fs.readFileSync(args[args.indexOf('--config') + 1], 'utf8');
const port = Number(/^http_port = (\\d+)$/m.exec(config)[1]);
fs.writeFileSync(${JSON.stringify(join(dir, 'called.json'))}, JSON.stringify({ args, dashboards: process.env.EVTWIN_GRAFANA_DASHBOARDS, token: process.env.EVTWIN_SERVICE_TOKEN }));
http.createServer((req, res) => { res.writeHead(req.url === '/api/health' ? 200 : 404); res.end('{}'); }).listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
`,
    );
    writeFileSync(
      join(dir, 'home', 'bin', 'grafana'),
      `#!/bin/sh\nexec "${process.execPath}" "${script}" "$@"\n`,
    );
    chmodSync(join(dir, 'home', 'bin', 'grafana'), 0o755);
  });
  after(() => {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  });

  test('finds it, writes grafana.ini, links both plugins, passes the provisioning env, waits for health, stops', async () => {
    process.env.PATH = `${join(dir, 'home', 'bin')}:${savedPath}`;
    const found = findGrafana();
    assert.equal(found?.bin, join(dir, 'home', 'bin', 'grafana'));
    assert.deepEqual(found?.args, ['server']);
    assert.equal(found?.homePath.endsWith('/home') || found?.homePath === '/usr/share/grafana', true);
    const port = await freePort();
    const data = join(dir, 'data');
    const g = await startGrafana({
      dataDir: data,
      repoRoot: REPO,
      port,
      env: { EVTWIN_SERVICE_TOKEN: 'tok-123' },
    });
    assert.ok(g);
    try {
      assert.equal(g.url, `http://127.0.0.1:${port}`);
      assert.equal(g.firstStart, true);
      assert.equal(readFileSync(join(data, 'admin-password'), 'utf8').trim(), g.adminPassword);
      const called = JSON.parse(readFileSync(join(dir, 'called.json'), 'utf8')) as {
        args: string[];
        dashboards: string;
        token: string;
      };
      assert.deepEqual(called.args.slice(0, 2), ['server', '--config']);
      assert.ok(called.args.includes('--homepath'));
      assert.equal(called.dashboards, join(REPO, 'provisioning/grafana/dashboards'));
      assert.equal(called.token, 'tok-123');
      assert.equal(
        readlinkSync(join(data, 'plugins', 'evtwin-twin-datasource')),
        join(REPO, 'grafana-datasource', 'dist'),
      );
      assert.equal(
        readlinkSync(join(data, 'plugins', 'evtwin-twin-panel')),
        join(REPO, 'grafana-panel', 'dist'),
      );
      assert.ok(existsSync(join(data, 'grafana.ini')));
    } finally {
      await g.stop();
    }
    assert.notEqual(g.process.exitCode === null && g.process.signalCode === null, true, 'stopped');
  });
});
