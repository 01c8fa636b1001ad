/**
 * docker-compose.yml checked without Docker (no engine here): every service has a health check or is a
 * one-shot job, start order uses conditions that fit, no literal secret and no default for one, every
 * ${VAR} is documented in .env.example, every mounted path exists, nothing is published beyond
 * 127.0.0.1 by default, the Dockerfile targets and the init scripts' imports exist. Where the binary is
 * here, the service's config is run for real: Mosquitto with provisioning/mosquitto/mosquitto.conf and
 * the passwd/ACL that the security-init job writes from a registry, with the code `npm start` uses.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { parse as parseYaml } from 'yaml';
import { parseAssetModel } from 'node-red-contrib-evtwin';
import { main } from '../src/cli/index';
import { ACTIONS_ALLOW_POST_URL } from '../src/grafana/model';
import { findExecutable, freePort } from '../src/services';
import { brokerConfig, provisionSecurity, writeStackBrokerFiles } from '../src/stack/security';

const REPO = resolve(__dirname, '..', '..');
type Json = Record<string, unknown>;
interface Service extends Json {
  image?: string;
  build?: { context: string; dockerfile: string; target: string };
  restart?: string;
  healthcheck?: { test: unknown };
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  command?: string[];
}
const composeText = readFileSync(join(REPO, 'docker-compose.yml'), 'utf8');
/** The text without comment lines (which may mention ${VAR} as prose). */
const uncommented = (text: string): string =>
  text
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'))
    .join('\n');
const compose = parseYaml(composeText, { merge: true }) as {
  services: Record<string, Service>;
  volumes: Json;
};
const services = Object.entries(compose.services);
const envExample = readFileSync(join(REPO, '.env.example'), 'utf8');
const documented = new Map(
  envExample
    .split('\n')
    .map((l) => /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1] as string, m[2] as string]),
);
const SECRET = /PASSWORD|SECRET|TOKEN|_HASH$/;
const oneShot = (s: Service): boolean => s.restart === 'no';

describe('docker-compose.yml (structure; no Docker engine here)', () => {
  test('every service has a health check or is a one-shot job', () => {
    assert.ok(services.length >= 8);
    for (const [name, s] of services)
      assert.ok(s.healthcheck || oneShot(s), `${name}: no healthcheck, not one-shot`);
    for (const name of ['security-init', 'influxdb-init', 'grafana-permissions'])
      assert.ok(oneShot(compose.services[name] as Service), name);
  });

  test('depends_on uses conditions: healthy for services, completed for one-shot jobs', () => {
    let edges = 0;
    for (const [name, s] of services)
      for (const [dep, d] of Object.entries(s.depends_on ?? {})) {
        edges++;
        const target = compose.services[dep];
        assert.ok(target, `${name} depends on missing ${dep}`);
        const want = oneShot(target) ? 'service_completed_successfully' : 'service_healthy';
        assert.equal(d.condition, want, `${name} → ${dep}`);
        if (want === 'service_healthy') assert.ok(target.healthcheck, `${dep} has no healthcheck`);
      }
    assert.ok(edges >= 10, `${edges} edges`);
    const dep = (a: string, b: string) => Object.keys(compose.services[a]?.depends_on ?? {}).includes(b);
    assert.ok(dep('grafana-permissions', 'grafana'), 'the permissions job runs after Grafana is healthy');
    assert.ok(dep('mosquitto', 'security-init'), 'Mosquitto starts after its passwd/ACL are written');
  });

  test('no literal secret, no default for a secret; every ${VAR} documented in .env.example', () => {
    const vars = [...uncommented(composeText).matchAll(/\$\{([A-Z][A-Z0-9_]*)(:?[-?][^}]*)?\}/g)];
    assert.ok(vars.length > 20);
    for (const m of vars) {
      const [, name, rest] = m as unknown as [string, string, string | undefined];
      assert.ok(documented.has(name), `${name} is not in .env.example`);
      if (SECRET.test(name)) {
        assert.ok(rest?.startsWith(':?'), `${name}: a secret must be \${${name}:?message}, not ${m[0]}`);
        assert.equal(documented.get(name), '', `.env.example must leave ${name} empty`);
      }
    }
    for (const [name, s] of services)
      for (const [k, v] of Object.entries(s.environment ?? {}))
        if (SECRET.test(k))
          assert.match(String(v), /^\$\{[A-Z0-9_]+:\?[^}]+\}$/, `${name}.${k} = ${String(v)}`);
    // And nothing that looks like a key or password in the clear.
    assert.doesNotMatch(composeText, /(PASSWORD|SECRET|TOKEN)\s*[:=]\s*['"]?[A-Za-z0-9+/]{12,}/);
  });

  test('every mounted path exists (plugin dist/ folders are build outputs of a workspace)', () => {
    let mounts = 0;
    for (const [name, s] of services)
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0] as string;
        if (!host.startsWith('./')) {
          assert.ok(host in (compose.volumes ?? {}), `${name}: named volume ${host} is not declared`);
          continue;
        }
        mounts++;
        const path = join(REPO, host);
        const dist = /^\.\/(grafana-[a-z]+)\/dist$/.exec(host);
        if (dist) {
          const pkg = JSON.parse(readFileSync(join(REPO, dist[1] as string, 'package.json'), 'utf8')) as Json;
          assert.ok((pkg.scripts as Json).build, `${host}: ${dist[1]} has no build script`);
        } else assert.ok(existsSync(path), `${name}: ${host} does not exist`);
      }
    assert.ok(mounts >= 8, `${mounts} bind mounts`);
  });

  test('no port is published on all interfaces by default', () => {
    let ports = 0;
    for (const [name, s] of services)
      for (const p of s.ports ?? []) {
        ports++;
        assert.ok(p.startsWith('${EVTWIN_BIND_ADDRESS:-127.0.0.1}:'), `${name}: ${p}`);
      }
    assert.equal(ports, 4);
    assert.equal(documented.get('EVTWIN_BIND_ADDRESS'), '127.0.0.1');
  });

  test('Grafana: unsigned plugins allowed by id, send_user_header, provisioning mounted, its env covers the provisioning files', () => {
    const g = compose.services.grafana as Service;
    const env = g.environment ?? {};
    const ids = ['grafana-datasource', 'grafana-panel'].map(
      (d) => (JSON.parse(readFileSync(join(REPO, d, 'src/plugin.json'), 'utf8')) as { id: string }).id,
    );
    assert.deepEqual(String(env.GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS).split(',').sort(), ids.sort());
    assert.equal(env.GF_DATAPROXY_SEND_USER_HEADER, 'true');
    // The same action allow-list as `npm start` (the provisioning test matches every action URL against it).
    assert.equal(env.GF_SECURITY_ACTIONS_ALLOW_POST_URL, ACTIONS_ALLOW_POST_URL);
    assert.ok(g.volumes?.includes('./provisioning/grafana:/etc/grafana/provisioning:ro'));
    for (const id of ids)
      assert.ok(
        g.volumes?.some((v) => v.endsWith(`/var/lib/grafana/plugins/${id}:ro`)),
        id,
      );
    const provisioningText = [
      'datasources/evtwin.yaml',
      'alerting/contact-points.yaml',
      'dashboards/providers.yaml',
    ]
      .map((f) => uncommented(readFileSync(join(REPO, 'provisioning/grafana', f), 'utf8')))
      .join('\n');
    for (const m of provisioningText.matchAll(/\$\{([A-Z0-9_]+)\}/g))
      assert.ok(
        (m[1] as string) in env,
        `Grafana's environment lacks ${m[1]} (used in provisioning/grafana)`,
      );
  });

  test('images: Dockerfile targets exist, COPY sources exist, init scripts import what tools builds', async () => {
    const dockerfile = readFileSync(join(REPO, 'docker/Dockerfile'), 'utf8');
    for (const [name, s] of services)
      if (s.build) {
        assert.ok(existsSync(join(REPO, s.build.dockerfile)), name);
        assert.match(
          dockerfile,
          new RegExp(`^FROM .* AS ${s.build.target}$`, 'm'),
          `${name}: target ${s.build.target}`,
        );
      }
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm))
      for (const src of (m[1] as string).split(/\s+/)) assert.ok(existsSync(join(REPO, src)), `COPY ${src}`);
    // docker/*.js require the built tools; each module and export must exist in tools/src.
    const scripts = ['init-security.js', 'init-influxdb.js', 'simulate.js'];
    for (const s of scripts) {
      const text = readFileSync(join(REPO, 'docker', s), 'utf8');
      for (const r of text.matchAll(/const \{([^}]+)\} = require\('\/src\/tools\/dist\/(.+)\.js'\)/g)) {
        const mod = (await import(join(REPO, 'tools/src', `${r[2] as string}.ts`))) as Json;
        for (const name of (r[1] as string)
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean))
          assert.equal(typeof mod[name], 'function', `${s}: ${r[2]}.${name}`);
      }
    }
    for (const [name, s] of services) {
      const cmd = (s.command ?? []).join(' ');
      for (const m of cmd.matchAll(/docker\/([a-z-]+\.js)/g))
        assert.ok(scripts.includes(m[1] as string), `${name}: ${m[1]}`);
    }
    // The permissions job's command line is one our CLI knows.
    const job = compose.services['grafana-permissions']?.command ?? [];
    assert.deepEqual(job.slice(0, 3), ['evtwin', 'grafana', 'sync-permissions']);
    const out: string[] = [];
    const code = await main([...job.slice(1), '--help'], {
      out: (x) => out.push(x),
      err: (x) => out.push(x),
      env: {},
      now: Date.now,
    });
    assert.equal(code, 0, out.join('\n'));
  });
});

test('one writer of the broker files: the security-init job calls what `npm start` calls; same ACL, jjm/ topics included', () => {
  // The job runs docker/init-security.js, which writes /data/mosquitto (the volume Mosquitto reads as
  // /mosquitto/auth) with writeStackBrokerFiles; `npm start` goes through brokerConfig.
  const job = compose.services['security-init'];
  assert.match((job?.command ?? []).join(' '), /node docker\/init-security\.js/);
  assert.doesNotMatch((job?.command ?? []).join(' '), /broker-files/, 'no second writer');
  assert.ok(job?.volumes?.includes('mosquitto-auth:/data/mosquitto'));
  assert.ok(compose.services.mosquitto?.volumes?.includes('mosquitto-auth:/mosquitto/auth:ro'));
  const init = readFileSync(join(REPO, 'docker/init-security.js'), 'utf8');
  assert.match(init, /writeStackBrokerFiles\(sec\.registryFile, '\/data\/mosquitto', servicePassword\)/);

  const dir = mkdtempSync(join(tmpdir(), 'evtwin-compose-acl-'));
  try {
    const assetsFile = join(REPO, 'provisioning/evtwin/assets.yaml');
    const assets = parseAssetModel(readFileSync(assetsFile, 'utf8'), assetsFile).assets;
    const sec = provisionSecurity(join(dir, 'data'), assets);
    brokerConfig(sec, join(dir, 'npm-start')); // what `npm start` writes
    const r = writeStackBrokerFiles(sec.registryFile, join(dir, 'compose'), sec.servicePassword);
    const acl = readFileSync(r.acl, 'utf8');
    assert.equal(acl, readFileSync(join(dir, 'npm-start', 'acl'), 'utf8'));
    assert.match(acl, /^user evtwin-node-red\ntopic read jjm\/#$/m);
    assert.match(acl, /^user water-north\/flow-01\ntopic write jjm\/sensors\/flow-01\/data$/m);
    const users = (f: string) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(':')[0])
        .sort();
    assert.deepEqual(users(r.passwd), users(join(dir, 'npm-start', 'passwd')));
    assert.equal(r.devices, assets.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- Mosquitto with the provisioned config, for real ----

const mosquittoBin = findExecutable('mosquitto');
describe(
  'Mosquitto starts with provisioning/mosquitto/mosquitto.conf and the security-init job’s broker files',
  { skip: !mosquittoBin && 'mosquitto not installed' },
  () => {
    let dir: string;
    let proc: ChildProcess | undefined;
    let port: number;
    let deviceToken: string;
    let waterToken: string;
    const servicePassword = 'svc-' + Math.random().toString(36).slice(2);
    const io = (env: NodeJS.ProcessEnv, out: string[]) => ({
      out: (s: string) => out.push(s),
      err: (s: string) => out.push(s),
      env,
      now: Date.now,
    });

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'evtwin-compose-mq-'));
      const registry = join(dir, 'registry.json');
      const register = async (site: string, asset: string): Promise<string> => {
        const out: string[] = [];
        const argv = ['registry', 'register', '--file', registry, '--site', site, '--asset', asset];
        assert.equal(await main([...argv, '--owner', 'ops', '--json'], io({}, out)), 0, out.join('\n'));
        return (JSON.parse(out[0] as string) as { token: string }).token;
      };
      deviceToken = await register('plant-a', 'cnc-01');
      waterToken = await register('water-north', 'flow-01');
      // What the security-init job writes (docker/init-security.js), with the paths of this temp dir.
      writeStackBrokerFiles(registry, join(dir, 'auth'), servicePassword);
      port = await freePort();
      // The provisioned file with container paths mapped to the temp dir and the listener on loopback.
      const conf = readFileSync(join(REPO, 'provisioning/mosquitto/mosquitto.conf'), 'utf8')
        .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
        .replaceAll('/mosquitto/auth/', `${dir}/auth/`)
        .replaceAll('/mosquitto/data/', `${dir}/`);
      assert.notEqual(conf, readFileSync(join(REPO, 'provisioning/mosquitto/mosquitto.conf'), 'utf8'));
      // As root Mosquitto would switch to user "mosquitto", which cannot read our 0600 files here.
      const confFile = join(dir, 'mosquitto.conf');
      writeFileSync(confFile, conf + (process.getuid?.() === 0 ? 'user root\n' : ''));
      proc = spawn(mosquittoBin as string, ['-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      for (let i = 0; ; i++) {
        const ok = await new Promise<boolean>((r) => {
          const s = netConnect(port, '127.0.0.1');
          s.once('connect', () => (s.destroy(), r(true)));
          s.once('error', () => r(false));
        });
        if (ok) break;
        if (i > 50 || proc.exitCode !== null) assert.fail(`mosquitto did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    after(async () => {
      if (proc && proc.exitCode === null) {
        const exited = new Promise((r) => proc?.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    });

    const login = (username: string, password: string) =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        username,
        password,
        reconnectPeriod: 0,
        protocolVersion: 5,
      });

    /** The device publishes on `own` and on `foreign`: the ACL refuses the latter, the service user sees only `own`. */
    async function onlyOwnTopic(
      device: { username: string; password: string },
      filter: string,
      own: string,
      foreign: string,
      payload: string,
    ): Promise<void> {
      const svc = await login('evtwin-node-red', servicePassword);
      const dev = await login(device.username, device.password);
      try {
        const got: string[] = [];
        svc.on('message', (topic) => got.push(topic));
        await svc.subscribeAsync(filter, { qos: 1 });
        await dev.publishAsync(own, payload, { qos: 1 });
        // MQTT 5 reason code "Not authorized".
        await assert.rejects(dev.publishAsync(foreign, payload, { qos: 1 }), /Not authorized/);
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(got, [own]);
      } finally {
        await Promise.all([svc.endAsync(), dev.endAsync()]);
      }
    }

    test('anonymous clients are refused; the service user and a device log in; the device reaches its own topic', async () => {
      const url = `mqtt://127.0.0.1:${port}`;
      await assert.rejects(
        mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000 }),
        'anonymous refused',
      );
      await assert.rejects(
        mqtt.connectAsync(url, {
          username: 'plant-a/cnc-01',
          password: 'wrong',
          reconnectPeriod: 0,
          connectTimeout: 3000,
        }),
      );
      await onlyOwnTopic(
        { username: 'plant-a/cnc-01', password: deviceToken },
        'evtwin/#',
        'evtwin/v1/plant-a/cnc-01/telemetry',
        'evtwin/v1/plant-a/cnc-02/telemetry',
        '{"ts":1,"values":{"power":1}}',
      );
    });

    test('a water sensor publishes on the legacy jjm/sensors/{asset}/data and the service user reads it', async () => {
      await onlyOwnTopic(
        { username: 'water-north/flow-01', password: waterToken },
        'jjm/#',
        'jjm/sensors/flow-01/data',
        'jjm/sensors/pres-01/data',
        '{"flow":1}',
      );
    });
  },
);
