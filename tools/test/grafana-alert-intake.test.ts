/**
 * What Grafana's side of the stack needs from `npm start`, against the real stack (tools/bin/evtwin-stack.js
 * on free ports): the datasource's route (service token + X-Grafana-User) gets answers scoped to that
 * user, and the contact point of provisioning/grafana/alerting/contact-points.yaml (webhook, Bearer
 * service token) reaches the alert intake, whose alerts the flow publishes on evtwin/v1/{site}/alerts.
 * Grafana itself cannot run here; the requests are the ones its data proxy and webhook notifier send.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import { parse as parseYaml } from 'yaml';
import { findGrafana } from '../src/stack/grafana';
import { startStack, type Running } from './helpers/stack';

const REPO = resolve(__dirname, '../..');
const TOKEN = 'svc-' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);

let stack: Running;
let redUrl: string;
let mqttUrl: string;

before(async () => {
  stack = await startStack(['--no-sim', '--stats-every=0'], {
    EVTWIN_SERVICE_TOKEN: TOKEN,
    // This test is about Node-RED's side: no Grafana even where one is installed.
    ...(findGrafana() ? { EVTWIN_GRAFANA: 'off' } : {}),
  });
  redUrl = stack.redUrl.replace(/\/$/, '');
  mqttUrl = stack.mqttUrl;
  // RED.start() resolves before the flows have started (Node-RED loads them without awaiting), so
  // "ready" can come before the evtwin-api node mounts its routes: wait for them.
  for (let i = 0; (await fetch(`${redUrl}/evtwin/api/v1/health`)).status !== 200; i++) {
    if (i > 200) assert.fail('the twin API did not answer /health within 10 s of "ready"');
    await sleep(50);
  }
});
after(async () => {
  if (!stack) return;
  if (stack.child.exitCode === null) {
    stack.child.kill('SIGINT');
    await stack.exited;
  }
  rmSync(stack.dataDir, { recursive: true, force: true });
});

test('without a Grafana binary, npm start says so in one line and goes on', () => {
  if (findGrafana()) assert.match(stack.output(), /^ {2}Grafana {4}off \(EVTWIN_GRAFANA=off\)$/m);
  else assert.match(stack.output(), /^ {2}Grafana skipped: no `grafana` or `grafana-server` on PATH .*$/m);
});

test('the datasource route: service token + X-Grafana-User → scoped to that user; a wrong token is 401', async () => {
  const api = `${redUrl}/evtwin/api/v1`;
  const headers = (user: string, token = TOKEN) => ({
    'X-Evtwin-Service-Token': token,
    'X-Grafana-User': user,
  });
  const health = (await (await fetch(`${api}/health`, { headers: headers('lead-plant-a') })).json()) as {
    user?: { login: string; role: string; via: string };
  };
  assert.deepEqual(
    health.user && { login: health.user.login, role: health.user.role, via: health.user.via },
    {
      login: 'lead-plant-a',
      role: 'lead',
      via: 'grafana',
    },
  );
  const assets = async (user: string) =>
    (
      (await (await fetch(`${api}/assets`, { headers: headers(user) })).json()) as {
        assets: { site: string }[];
      }
    ).assets;
  assert.deepEqual([...new Set((await assets('lead-plant-a')).map((a) => a.site))], ['plant-a']);
  assert.equal((await assets('head')).length, 13);
  assert.equal((await fetch(`${api}/assets`, { headers: headers('head', 'wrong') })).status, 401);
});

test('the provisioned contact point reaches the alert intake; the flow publishes the alert on evtwin/v1/{site}/alerts', async () => {
  const cp = parseYaml(
    readFileSync(join(REPO, 'provisioning/grafana/alerting/contact-points.yaml'), 'utf8'),
  ) as {
    contactPoints: { receivers: { settings: Record<string, string> }[] }[];
  };
  const settings = cp.contactPoints[0]?.receivers[0]?.settings ?? {};
  // What Grafana does with the file: expand ${VAR} from its environment.
  const expand = (s: string) =>
    s.replace(
      /\$\{([A-Z_]+)\}/g,
      (_, v: string) => ({ EVTWIN_NODE_RED_URL: redUrl, EVTWIN_SERVICE_TOKEN: TOKEN })[v] ?? '',
    );
  const url = expand(settings.url ?? '');
  const auth = `${settings.authorization_scheme} ${expand(settings.authorization_credentials ?? '')}`;

  const sub = await mqtt.connectAsync(mqttUrl, {
    username: 'evtwin-node-red',
    password: readFileSync(join(stack.dataDir, 'mqtt-service-password'), 'utf8').trim(),
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  try {
    const got: {
      topic: string;
      payload: { name: string; asset?: string; labels: Record<string, string> };
    }[] = [];
    sub.on('message', (topic, payload) => got.push({ topic, payload: JSON.parse(payload.toString()) }));
    await sub.subscribeAsync('evtwin/v1/+/alerts', { qos: 1 });
    // Grafana's webhook body (version 1) for one firing alert of the "Failure risk high" rule.
    const body = {
      receiver: 'evtwin-api',
      status: 'firing',
      orgId: 1,
      alerts: [
        {
          status: 'firing',
          labels: {
            alertname: 'Failure risk high',
            site: 'plant-a',
            asset: 'cnc-03',
            role: 'lead',
            severity: 'critical',
          },
          annotations: { summary: 'Failure risk of plant-a/cnc-03 is 90%' },
          startsAt: new Date().toISOString(),
          endsAt: '0001-01-01T00:00:00Z',
          fingerprint: 'a1b2c3d4',
          values: { B: 0.9, C: 1 },
        },
      ],
      groupLabels: { alertname: 'Failure risk high', site: 'plant-a' },
      version: '1',
    };
    const res = await fetch(url, {
      method: 'POST',
      headers: { Authorization: auth, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 202, await res.text());
    const unauth = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(unauth.status, 401);
    for (let i = 0; i < 100 && got.length === 0; i++) await sleep(50);
    assert.equal(got.length, 1);
    assert.equal(got[0]?.topic, 'evtwin/v1/plant-a/alerts');
    assert.equal(got[0]?.payload.name, 'Failure risk high');
    assert.equal(got[0]?.payload.asset, 'cnc-03');
    assert.equal(got[0]?.payload.labels.role, 'lead');
  } finally {
    await sub.endAsync();
  }
});

test('the Lead dashboard’s charger actions, sent as Grafana’s data proxy sends them: 202 for a lead in scope, 403 for a worker, 404 out of scope', async () => {
  type FetchAction = {
    type: string;
    title: string;
    confirmation?: string;
    fetch: { method: string; url: string; body?: string; headers?: string[][] };
  };
  const lead = JSON.parse(
    readFileSync(join(REPO, 'provisioning/grafana/dashboards/lead/evtwin-lead.json'), 'utf8'),
  ) as {
    panels: {
      title: string;
      fieldConfig?: { overrides: { properties: { id: string; value: unknown }[] }[] };
    }[];
  };
  const actions = lead.panels.flatMap((p) =>
    (p.fieldConfig?.overrides ?? []).flatMap((o) =>
      o.properties.filter((x) => x.id === 'actions').flatMap((x) => x.value as FetchAction[]),
    ),
  );
  assert.deepEqual(actions.map((a) => a.title).sort(), [
    'Back in service (operative)',
    'Maintenance (inoperative)',
    'Reset (hard)',
    'Reset (soft)',
    'Stop session',
  ]);
  // Grafana's data proxy: /api/datasources/proxy/uid/<uid>/<route path>/<rest> → <route url>/<rest>, with
  // the route's headers (service token) and X-Grafana-User added.
  const plugin = JSON.parse(readFileSync(join(REPO, 'grafana-datasource/src/plugin.json'), 'utf8')) as {
    routes: { path: string; url: string; method?: string; headers: { name: string; content: string }[] }[];
  };
  const proxy = (url: string, method: string): { url: string; headers: Record<string, string> } => {
    const m = /^\/api\/datasources\/proxy\/uid\/evtwin\/([^/]+)\/(.*)$/.exec(url);
    assert.ok(m, `not a proxy URL of the evtwin datasource: ${url}`);
    const route = plugin.routes.find((r) => r.path === m[1] && (r.method ?? method) === method);
    assert.ok(route, `no route "${m[1]}" for ${method} in plugin.json`);
    const headers = Object.fromEntries(
      route.headers.map((h) => [h.name, h.content.replace('{{ .SecureJsonData.serviceToken }}', TOKEN)]),
    );
    return { url: `${route.url.replace('{{ .JsonData.url }}', redUrl)}/${m[2]}`, headers };
  };
  // A row of the Chargers / Sessions tables; Grafana fills ${__data.fields.X} from it.
  const row: Record<string, string> = { site: 'charging-hub', asset: 'cp-02', transaction_id: '4711' };
  const fill = (s: string) =>
    s.replace(/\$\{__data\.fields\.([a-z_]+)\}/g, (_, f: string) => row[f] ?? assert.fail(`no field ${f}`));
  const send = async (a: FetchAction, user: string) => {
    assert.equal(a.type, 'fetch');
    assert.ok(a.confirmation && a.confirmation.length > 10, `${a.title}: a confirmation`);
    const p = proxy(fill(a.fetch.url), a.fetch.method);
    return fetch(p.url, {
      method: a.fetch.method,
      headers: { ...Object.fromEntries(a.fetch.headers ?? []), ...p.headers, 'X-Grafana-User': user },
      body: fill(a.fetch.body ?? ''),
    });
  };
  for (const a of actions) {
    const ok = await send(a, 'lead-charging');
    const answer = (await ok.json()) as { command?: string; site?: string; asset?: string; status?: string };
    assert.equal(ok.status, 202, `${a.title}: ${JSON.stringify(answer)}`);
    assert.deepEqual(
      { command: answer.command, site: answer.site, asset: answer.asset, status: answer.status },
      {
        command: (JSON.parse(fill(a.fetch.body ?? '{}')) as { command: string }).command,
        site: 'charging-hub',
        asset: 'cp-02',
        status: 'accepted',
      },
    );
    assert.equal((await send(a, 'head')).status, 202, `${a.title} as head`);
    assert.equal((await send(a, 'worker-machining')).status, 403, `${a.title} as a worker`);
    assert.equal((await send(a, 'lead-plant-a')).status, 404, `${a.title} by a lead of another site`);
  }
  // The check can fail: a body the API refuses is a 400.
  const bad = actions[0] as FetchAction;
  const refused = await send({ ...bad, fetch: { ...bad.fetch, body: '{"command":"availability"}' } }, 'head');
  assert.equal(refused.status, 400);
});
