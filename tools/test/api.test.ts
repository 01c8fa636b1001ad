/**
 * The twin API (evtwin-api) in a real Node-RED with a real, provisioned influxd holding data of the demo
 * model: a matrix of every endpoint × role (head, lead, worker, citizen, admin) × in-scope/out-of-scope
 * asset, through both ways in (Grafana: service token + X-Grafana-User; a user's JWT), that fails if any
 * answer names an asset outside the caller's scope; bad input; grievances; charger commands; alert intake;
 * a streamed CSV export of a large range.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnsecuredJWT } from 'jose';
import { parseAssetModel, type AssetsResponse, type Point } from 'node-red-contrib-evtwin';
import { hashPassword } from 'node-red-contrib-evtwin/runtime';
import { API, DEMO_ASSETS, startApiStack, type ApiStack } from '../src/bench/api';

const SERVICE = 'svc-token-'.padEnd(40, 's');
const model = parseAssetModel(readFileSync(DEMO_ASSETS, 'utf8'));
const ALL = model.assets.map((a) => `${a.site}/${a.id}`);
const dir = mkdtempSync(join(tmpdir(), 'evtwin-api-test-'));
let stack: ApiStack;
const NOW = Math.floor(Date.now() / 1000) * 1000;

/** What each test user may see (independent of core/access.ts, from users.yaml by hand). */
const SCOPE: Record<string, { visible: string[]; inScope?: string; outScope: string }> = {
  admin: { visible: ALL, inScope: 'water-north/flow-01', outScope: '' },
  head: { visible: ALL, inScope: 'charging-hub/cp-01', outScope: '' },
  'lead-plant-a': {
    visible: ALL.filter((a) => a.startsWith('plant-a/')),
    inScope: 'plant-a/robot-01',
    outScope: 'water-north/flow-01',
  },
  'worker-machining': {
    visible: ['plant-a/cnc-01', 'plant-a/cnc-02', 'plant-a/cnc-03'],
    inScope: 'plant-a/cnc-01',
    outScope: 'plant-a/robot-01',
  },
  'citizen-1': { visible: [], outScope: 'plant-a/cnc-01' },
};
const LOGINS = Object.keys(SCOPE);
const PASSWORD = 'api-test-pass';
const jwts: Record<string, string> = {};

before(async () => {
  const hash = await hashPassword(PASSWORD, { N: 1024, r: 8, p: 1 });
  const usersFile = join(dir, 'users.yaml');
  writeFileSync(
    usersFile,
    [
      'users:',
      `  - { login: admin, role: admin, password: "${hash}" }`,
      `  - { login: head, role: head, password: "${hash}" }`,
      `  - { login: lead-plant-a, role: lead, scope: { sites: [plant-a] }, password: "${hash}" }`,
      `  - { login: lead-zone-1, role: lead, scope: { lines: [water-north/zone-1] }, password: "${hash}" }`,
      `  - { login: worker-machining, role: worker, scope: { assets: [plant-a/cnc-01, plant-a/cnc-02, plant-a/cnc-03] }, password: "${hash}" }`,
      `  - { login: citizen-1, role: citizen, password: "${hash}" }`,
      `  - { login: citizen-2, role: citizen, password: "${hash}" }`,
      '',
    ].join('\n'),
  );
  stack = await startApiStack({
    assetsFile: DEMO_ASSETS,
    usersFile,
    serviceToken: SERVICE,
    jwtSecret: 'api-test-jwt-secret-'.padEnd(48, 'j'),
    capture: true,
  });
  // 2 h of 10 s telemetry for every asset, cnc-01 at 1 s for 3 h; scores, events, recommendations, sessions.
  const points: Point[] = [];
  for (const a of model.assets) {
    const step = a.id === 'cnc-01' ? 1000 : 10_000;
    const span = a.id === 'cnc-01' ? 3 * 3_600_000 : 2 * 3_600_000;
    const metrics =
      a.kind === 'cnc' || a.kind === 'robot'
        ? ['power', 'temperature', 'state']
        : a.kind === 'charger'
          ? ['power', 'energy']
          : [a.kind];
    for (let t = NOW - span; t < NOW; t += step)
      points.push({
        measurement: 'telemetry',
        tags: { site: a.site, line: a.line, asset: a.id, kind: a.kind },
        fields: Object.fromEntries(metrics.map((m, i) => [m, ((t / 1000) % 100) + i])),
        ts: t,
      });
    const tags = { site: a.site, line: a.line, asset: a.id, kind: a.kind };
    points.push(
      {
        measurement: 'scores',
        tags,
        fields: { score: 0.1, health: 90, failure_risk: 0.05, anomaly: false }, // health 0..100 as evtwin-score writes it
        ts: NOW - 5000,
      },
      {
        measurement: 'events',
        tags: { ...tags, type: 'power_spike', severity: 'warning' },
        fields: { message: `spike on ${a.id}`, metric: 'power', observed: 9, expected: 5 },
        ts: NOW - 60_000,
      },
      {
        measurement: 'recommendations',
        tags: { site: a.site, asset: a.id, type: 'idle_power' },
        fields: {
          message: `idle ${a.id}`,
          kwh: 1.5,
          cost: 0.4,
          currency: 'EUR',
          window_start: NOW - 3_600_000,
        },
        ts: NOW - 30_000,
      },
    );
    if (a.kind === 'charger')
      points.push(
        {
          measurement: 'sessions',
          tags: { site: a.site, asset: a.id },
          fields: { energy_kwh: 12.5, id_tag: 'TAG1', transaction_id: `tx-${a.id}` },
          ts: NOW - 40_000,
        },
        {
          measurement: 'charger',
          tags: { site: a.site, asset: a.id },
          fields: { status: 'Available', connector: 1 },
          ts: NOW - 20_000,
        },
      );
  }
  points.push({
    measurement: 'audit',
    tags: { action: 'user.login', outcome: 'ok' },
    fields: { actor: 'head', hash: 'x', seq: 1 },
    ts: NOW - 10_000,
  });
  await stack.write(points);
  await stack.backfillRollups(NOW - 4 * 3_600_000, NOW + 60_000);
  for (const login of [...LOGINS, 'lead-zone-1', 'citizen-2']) {
    const r = await fetch(`${stack.red.url}${API}/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ login, password: PASSWORD }),
    });
    assert.equal(r.status, 200, `login ${login}`);
    jwts[login] = ((await r.json()) as { accessToken: string }).accessToken;
  }
});

after(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

type Via = 'grafana' | 'jwt';
interface Answer {
  status: number;
  text: string;
  json: unknown;
  headers: Headers;
}
async function call(
  method: string,
  path: string,
  o: { as?: string; via?: Via; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.body !== undefined || o.raw !== undefined) headers['Content-Type'] ??= 'application/json';
  if (o.as) {
    if ((o.via ?? 'grafana') === 'grafana') {
      headers['X-Evtwin-Service-Token'] = SERVICE;
      headers['X-Grafana-User'] = o.as;
    } else headers.Authorization = `Bearer ${jwts[o.as] ?? ''}`;
  }
  const res = await fetch(`${stack.base}${path}`, {
    method,
    headers,
    ...(o.raw !== undefined ? { body: o.raw } : o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, headers: res.headers };
}

/** Every site/asset an answer names: objects with site + asset (or site + id), `ref`s, and CSV rows. */
function assetsNamed(v: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) for (const x of v) assetsNamed(x, out);
  else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    const id =
      typeof o.asset === 'string' ? o.asset : typeof o.id === 'string' && 'kind' in o ? o.id : undefined;
    if (typeof o.site === 'string' && id) out.add(`${o.site}/${id}`);
    if (typeof o.ref === 'string') out.add(o.ref);
    for (const x of Object.values(o)) assetsNamed(x, out);
  }
  return out;
}
function csvAssets(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n').slice(1)) {
    const c = line.split(',');
    if (c.length > 3 && c[1] && c[3]) out.add(`${c[1]}/${c[3]}`);
  }
  return out;
}

const QUERY_TYPES = [
  'timeseries',
  'latest',
  'events',
  'annotations',
  'assets',
  'chargers',
  'sessions',
  'recommendations',
  'grievances',
];
const queryOf = (queryType: string, assets?: string[]): Record<string, unknown> => ({
  refId: 'A',
  queryType,
  ...(assets ? { filter: { assets } } : {}),
  ...(queryType === 'timeseries' ? { metrics: ['power', 'flow', 'pressure', 'level', 'energy'] } : {}),
});

describe('twin API scope matrix', () => {
  before(async () => {
    // A grievance near each water asset and one at the charging hub, from both citizens.
    for (const [login, lat, lon] of [
      ['citizen-1', 18.521, 73.851],
      ['citizen-2', 52.5201, 13.4049],
    ] as const) {
      const r = await call('POST', '/grievances', {
        as: login,
        body: { location: { lat, lon }, text: `leak near ${lat}` },
      });
      assert.equal(r.status, 201, r.text);
    }
  });

  for (const via of ['grafana', 'jwt'] as const)
    for (const login of LOGINS) {
      const s = SCOPE[login];
      assert.ok(s);
      it(`${login} via ${via}: no endpoint names an asset outside the scope`, async () => {
        const allowed = new Set(s.visible);
        const leaks: string[] = [];
        let seen = 0;
        const check = (what: string, named: Set<string>): void => {
          for (const a of named) {
            seen++;
            if (!allowed.has(a)) leaks.push(`${what}: ${a}`);
          }
        };
        const targets: (string[] | undefined)[] = [
          undefined,
          ...[s.inScope, s.outScope].filter((x) => x).map((x) => [x as string]),
        ];
        for (const assets of targets) {
          const qs = assets ? `?assets=${encodeURIComponent(assets.join(','))}` : '';
          for (const path of [
            `/assets${qs}`,
            `/assets${qs}${qs ? '&' : '?'}state=1`,
            `/metrics${qs}`,
            '/grievances',
          ]) {
            const r = await call('GET', path, { as: login, via });
            assert.equal(r.status, 200, `${path}: ${r.text}`);
            check(`GET ${path}`, assetsNamed(r.json));
          }
          const q = await call('POST', '/query', {
            as: login,
            via,
            body: {
              range: { from: NOW - 3_600_000, to: NOW + 1000 },
              queries: QUERY_TYPES.map((t, i) => ({ ...queryOf(t, assets), refId: `R${i}` })),
            },
          });
          assert.equal(q.status, 200, q.text);
          const results = (q.json as { results: { error?: string; refId: string }[] }).results;
          assert.equal(
            results.filter((x) => x.error).length,
            0,
            JSON.stringify(results.filter((x) => x.error)),
          );
          check(`POST /query ${JSON.stringify(assets)}`, assetsNamed(q.json));
          // The 24 h range goes through rollup_1m.
          const day = await call('POST', '/query', {
            as: login,
            via,
            body: { range: { from: 'now-24h', to: 'now' }, queries: [queryOf('timeseries', assets)] },
          });
          assert.equal((day.json as { results: { rollup: string }[] }).results[0]?.rollup, 'rollup_1m');
          check('POST /query 24h', assetsNamed(day.json));
          const csv = await call(
            'GET',
            `/export.csv?from=${NOW - 3_600_000}&to=${NOW}${assets ? `&assets=${assets.join(',')}` : ''}`,
            { as: login, via },
          );
          if (login === 'citizen-1') assert.equal(csv.status, 403);
          else {
            assert.equal(csv.status, 200, csv.text);
            check('GET /export.csv', csvAssets(csv.text));
          }
          const out = s.outScope;
          if (out) {
            // Naming an out-of-scope asset yields nothing about it, never an error that says more.
            assert.ok(!csv.text.includes(out.split('/')[1] ?? '?'), 'csv mentions the out-of-scope asset');
          }
        }
        assert.deepEqual(leaks, [], `leaked:\n${leaks.slice(0, 20).join('\n')}`);
        // Not vacuous: who may see assets saw some, and every visible asset appears in the full answer.
        if (s.visible.length > 0) {
          assert.ok(seen > 0, 'saw no assets at all');
          const full = await call('POST', '/query', {
            as: login,
            via,
            body: { range: { from: NOW - 3_600_000, to: NOW + 1000 }, queries: [queryOf('latest')] },
          });
          const named = assetsNamed(full.json);
          for (const a of s.visible) assert.ok(named.has(a), `${login} should see ${a} in latest`);
        }
      });
    }

  it('assets with state: floor position and kind from the asset model, latest health (0..100) and state', async () => {
    const r = await call('GET', '/assets?site=plant-a&state=1', { as: 'head' });
    assert.equal(r.status, 200, r.text);
    const { assets } = r.json as AssetsResponse;
    const byRef = new Map(assets.map((a) => [a.ref, a]));
    for (const a of model.assets.filter((x) => x.site === 'plant-a')) {
      const got = byRef.get(`${a.site}/${a.id}`);
      assert.ok(got, a.id);
      assert.ok(a.position, `${a.id} has a position in the demo model`);
      assert.deepEqual(got.position, a.position);
      assert.equal(got.kind, a.kind);
      assert.equal(got.state?.health, 90);
      assert.equal(typeof got.state?.state, 'number');
    }
    assert.deepEqual(byRef.get('plant-a/cnc-02')?.position, { x: 4, y: 0, z: 0 });
  });

  it('grievances: citizens see their own, the lead of the zone sees and resolves, others cannot', async () => {
    const mine = (await call('GET', '/grievances', { as: 'citizen-1' })).json as {
      grievances: { id: string; reporter: string; site?: string; line?: string }[];
    };
    assert.equal(mine.grievances.length, 1);
    const g = mine.grievances[0];
    assert.ok(g);
    assert.equal(g.reporter, 'citizen-1');
    // A citizen is not told where in the asset model the report was placed.
    assert.equal(g.site, undefined);
    assert.equal(g.line, undefined);
    const other = (await call('GET', '/grievances', { as: 'citizen-2' })).json as {
      grievances: { reporter: string }[];
    };
    assert.deepEqual(
      other.grievances.map((x) => x.reporter),
      ['citizen-2'],
    );
    const zone = (await call('GET', '/grievances', { as: 'lead-zone-1', via: 'jwt' })).json as {
      grievances: { id: string; site?: string; line?: string; asset?: string }[];
    };
    assert.deepEqual(
      zone.grievances.map((x) => [x.id, x.site, x.line, x.asset]),
      [[g.id, 'water-north', 'zone-1', 'flow-01']],
    );
    const plant = (await call('GET', '/grievances', { as: 'lead-plant-a' })).json as {
      grievances: unknown[];
    };
    assert.equal(plant.grievances.length, 0);
    assert.equal(
      (await call('POST', `/grievances/${g.id}/resolve`, { as: 'lead-plant-a', body: {} })).status,
      404,
    );
    assert.equal(
      (await call('POST', `/grievances/${g.id}/resolve`, { as: 'citizen-1', body: {} })).status,
      403,
    );
    const done = await call('POST', `/grievances/${g.id}/resolve`, {
      as: 'lead-zone-1',
      body: { resolution: 'valve fixed' },
    });
    assert.equal(done.status, 200, done.text);
    assert.equal((done.json as { status: string }).status, 'resolved');
    const after = (await call('GET', '/grievances?status=resolved', { as: 'citizen-1' })).json as {
      grievances: { resolvedBy: string }[];
    };
    assert.equal(after.grievances[0]?.resolvedBy, 'lead-zone-1');
    assert.match(readFileSync(join(stack.dir, 'grievances.json'), 'utf8'), /valve fixed/);
  });

  it('charger commands: lead (in scope) and head only; the command leaves on output 1', async () => {
    const body = { command: 'start', idTag: 'TAG1', connectorId: 1 };
    const expect: Record<string, number> = {
      head: 202,
      'lead-plant-a': 404,
      'worker-machining': 403,
      'citizen-1': 403,
      admin: 403,
    };
    for (const [login, status] of Object.entries(expect)) {
      const r = await call('POST', '/chargers/charging-hub/cp-01/commands', { as: login, body });
      assert.equal(r.status, status, `${login}: ${r.text}`);
    }
    const lead = await fetch(`${stack.red.url}${API}/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ login: 'lead-zone-1', password: PASSWORD }),
    });
    assert.equal(lead.status, 200);
    // A lead of the charging hub is not in this users file; the zone lead may not command it either.
    assert.equal(
      (await call('POST', '/chargers/charging-hub/cp-01/commands', { as: 'lead-zone-1', body })).status,
      404,
    );
    assert.equal(
      (await call('POST', '/chargers/plant-a/cnc-01/commands', { as: 'head', body })).status,
      404,
      'not a charger',
    );
    const badCmd = await call('POST', '/chargers/charging-hub/cp-01/commands', {
      as: 'head',
      body: { command: 'explode' },
    });
    assert.equal(badCmd.status, 400);
    assert.match(badCmd.text, /command/);
    const otherCp = await call('POST', '/chargers/charging-hub/cp-01/commands', {
      as: 'head',
      body: { ...body, cp: 'charging-hub/cp-02' },
    });
    assert.equal(otherCp.status, 400);
    const ok = await call('POST', '/chargers/charging-hub/cp-02/commands', {
      as: 'head',
      via: 'jwt',
      body: { command: 'stop', transactionId: 'tx-1' },
    });
    assert.equal(ok.status, 202);
    const id = (ok.json as { commandId: string }).commandId;
    const outs = (await (await fetch(`${stack.red.url}test/api-outputs`)).json()) as {
      port: number;
      topic: string;
      payload: { command: string; cp: string };
      commandId: string;
    }[];
    const sent = outs.find((o) => o.commandId === id);
    assert.ok(sent, 'command reached output 1');
    assert.equal(sent.port, 1);
    assert.equal(sent.topic, 'evtwin/v1/charging-hub/cp-02/cmd');
    assert.deepEqual(sent.payload, { command: 'stop', cp: 'charging-hub/cp-02', transactionId: 'tx-1' });
  });

  it('alert intake takes Grafana webhooks with the service token and sends each alert on output 2', async () => {
    const hook = {
      receiver: 'evtwin',
      status: 'firing',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'HighTemp', site: 'plant-a', asset: 'cnc-02', severity: 'critical' },
          annotations: { summary: 'cnc-02 above 75 °C' },
          startsAt: new Date(NOW).toISOString(),
          endsAt: '0001-01-01T00:00:00Z',
          fingerprint: 'abc123',
        },
      ],
    };
    const ok = await fetch(`${stack.base}/alerts`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${SERVICE}` },
      body: JSON.stringify(hook),
    });
    assert.equal(ok.status, 202);
    const outs = (await (await fetch(`${stack.red.url}test/api-outputs`)).json()) as {
      port: number;
      topic: string;
      payload: { name: string; site: string; severity: string; endsAt?: number };
    }[];
    const a = outs.find((o) => o.port === 2);
    assert.ok(a);
    assert.equal(a.topic, 'evtwin/v1/plant-a/alerts');
    assert.equal(a.payload.name, 'HighTemp');
    assert.equal(a.payload.severity, 'critical');
    assert.equal(a.payload.endsAt, undefined);
    assert.equal((await call('POST', '/alerts', { body: hook })).status, 401);
    assert.equal(
      (await call('POST', '/alerts', { as: 'worker-machining', via: 'jwt', body: hook })).status,
      403,
    );
    const bad = await call('POST', '/alerts', {
      body: { alerts: [{ status: 'burning' }] },
      headers: { 'X-Evtwin-Service-Token': SERVICE },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /alerts\[0\]\.status/);
  });
});

describe('twin API bad input', () => {
  const q = (queries: unknown[], range: unknown = { from: 'now-1h', to: 'now' }) => ({ range, queries });
  const expect4xx = async (
    what: string,
    r: Promise<Answer>,
    status: number,
    message: RegExp,
  ): Promise<void> => {
    const a = await r;
    assert.equal(a.status, status, `${what}: ${a.text}`);
    const body = a.json as { error?: string };
    assert.match(body.error ?? '', message, what);
    assert.equal(assetsNamed(a.json).size, 0, `${what} names assets`);
  };

  it('refuses forged or missing credentials', async () => {
    await expect4xx('no credentials', call('GET', '/assets'), 401, /credentials/);
    await expect4xx(
      'X-Grafana-User alone',
      call('GET', '/assets', { headers: { 'X-Grafana-User': 'head' } }),
      401,
      /service token/,
    );
    await expect4xx(
      'X-Grafana-User + wrong token',
      call('GET', '/assets', { headers: { 'X-Grafana-User': 'head', 'X-Evtwin-Service-Token': 'guess' } }),
      401,
      /service token/,
    );
    await expect4xx(
      'X-Grafana-User + a user JWT',
      call('GET', '/assets', {
        headers: { 'X-Grafana-User': 'head', Authorization: `Bearer ${jwts['worker-machining']}` },
      }),
      401,
      /service token/,
    );
    await expect4xx(
      'unknown Grafana user',
      call('GET', '/assets', { headers: { 'X-Grafana-User': 'mallory', 'X-Evtwin-Service-Token': SERVICE } }),
      403,
      /not an EVTwin user/,
    );
    await expect4xx(
      'service token alone',
      call('GET', '/assets', { headers: { 'X-Evtwin-Service-Token': SERVICE } }),
      401,
      /X-Grafana-User/,
    );
    const none = new UnsecuredJWT({ role: 'head', sid: 'x' })
      .setSubject('head')
      .setIssuer('evtwin')
      .setAudience('evtwin-api')
      .setIssuedAt()
      .setExpirationTime('10m')
      .encode();
    await expect4xx(
      'alg none JWT',
      call('GET', '/assets', { headers: { Authorization: `Bearer ${none}` } }),
      401,
      /refused/,
    );
    // The health check tells the datasource who the token makes it.
    const h = await call('GET', '/health', { as: 'lead-plant-a' });
    assert.equal(h.status, 200);
    assert.deepEqual((h.json as { user: unknown }).user, {
      login: 'lead-plant-a',
      name: 'lead-plant-a',
      role: 'lead',
      via: 'grafana',
    });
    assert.equal((h.json as { influx: { ok: boolean } }).influx.ok, true);
    assert.equal((await call('GET', '/health', { headers: { 'X-Grafana-User': 'head' } })).status, 401);
  });

  it('refuses malformed, oversized and hostile query bodies with a clear 4xx', async () => {
    const as = { as: 'head' };
    await expect4xx('not JSON', call('POST', '/query', { ...as, raw: '{"range": ' }), 400, /not valid JSON/);
    await expect4xx(
      'wrong type',
      call('POST', '/query', { ...as, raw: '{}', headers: { 'Content-Type': 'text/plain' } }),
      415,
      /application\/json/,
    );
    await expect4xx('array body', call('POST', '/query', { ...as, raw: '[]' }), 400, /JSON object/);
    await expect4xx(
      'oversized',
      call('POST', '/query', {
        ...as,
        body: q([{ refId: 'A', queryType: 'assets', pad: 'x'.repeat(70_000) }]),
      }),
      413,
      /larger than/,
    );
    await expect4xx(
      'unknown query type',
      call('POST', '/query', { ...as, body: q([{ refId: 'A', queryType: 'drop_database' }]) }),
      400,
      /queryType must be one of/,
    );
    await expect4xx(
      'metric injection',
      call('POST', '/query', {
        ...as,
        body: q([
          { refId: 'A', queryType: 'timeseries', metrics: ['power" FROM x; DROP DATABASE evtwin; --'] },
        ]),
      }),
      400,
      /not a metric name/,
    );
    await expect4xx(
      'asset injection',
      call('POST', '/query', {
        ...as,
        body: q([{ refId: 'A', queryType: 'latest', filter: { assets: ["plant-a/cnc-01' OR '1'='1"] } }]),
      }),
      400,
      /not an id/,
    );
    await expect4xx(
      'site injection',
      call('GET', `/assets?site=${encodeURIComponent('x" OR 1=1')}`, as),
      400,
      /not an id/,
    );
    await expect4xx(
      'event type injection',
      call('POST', '/query', {
        ...as,
        body: q([{ refId: 'A', queryType: 'events', types: ["a' OR type =~ /.*/"] }]),
      }),
      400,
      /not a valid value/,
    );
    await expect4xx(
      'huge range',
      call('POST', '/query', {
        ...as,
        body: q([{ refId: 'A', queryType: 'assets' }], { from: 0, to: 'now' }),
      }),
      400,
      /exceeds the limit/,
    );
    await expect4xx(
      'reversed range',
      call('POST', '/query', {
        ...as,
        body: q([{ refId: 'A', queryType: 'assets' }], { from: 'now', to: 'now-1h' }),
      }),
      400,
      /before/,
    );
    await expect4xx(
      'bad time',
      call('POST', '/query', {
        ...as,
        body: q([{ refId: 'A', queryType: 'assets' }], { from: 'yesterday; DROP', to: 'now' }),
      }),
      400,
      /range.from/,
    );
    await expect4xx(
      'too many queries',
      call('POST', '/query', {
        ...as,
        body: q(Array.from({ length: 21 }, (_, i) => ({ refId: `Q${i}`, queryType: 'assets' }))),
      }),
      400,
      /at most 20/,
    );
    await expect4xx(
      'unknown field',
      call('POST', '/query', { ...as, body: q([{ refId: 'A', queryType: 'assets', sql: 'SELECT 1' }]) }),
      400,
      /not a field/,
    );
    await expect4xx(
      'csv range',
      call('GET', '/export.csv?from=0&to=now&resolution=raw', as),
      400,
      /exceeds the limit/,
    );
    await expect4xx(
      'csv metric',
      call('GET', `/export.csv?metrics=${encodeURIComponent('power";DROP')}`, as),
      400,
      /not a metric name/,
    );
    await expect4xx(
      'grievance text',
      call('POST', '/grievances', {
        as: 'citizen-1',
        body: { location: { lat: 1, lon: 2 }, text: 'x'.repeat(2001) },
      }),
      400,
      /longer than/,
    );
    await expect4xx(
      'grievance location',
      call('POST', '/grievances', { as: 'citizen-1', body: { location: { lat: 91, lon: 0 }, text: 'x' } }),
      400,
      /lat/,
    );
    // A non-admin asking for audit events gets a 403 for that query only.
    const audit = await call('POST', '/query', {
      as: 'head',
      body: q([{ refId: 'A', queryType: 'events', includeAudit: true }]),
    });
    assert.equal((audit.json as { results: { status: number }[] }).results[0]?.status, 403);
    const adminAudit = await call('POST', '/query', {
      as: 'admin',
      body: q([{ refId: 'A', queryType: 'events', includeAudit: true }], {
        from: NOW - 3_600_000,
        to: NOW + 1000,
      }),
    });
    const events =
      (adminAudit.json as { results: { events: { source: string }[] }[] }).results[0]?.events ?? [];
    assert.ok(
      events.some((e) => e.source === 'audit'),
      'admin sees audit events',
    );
    // The database is still there and whole.
    const n = await stack.influxQuery('SELECT count(power) FROM "raw"."telemetry"');
    assert.ok(Number(n[0]?.[1]) > 10_000);
  });

  it('streams a large CSV export (3 h of 1 s data and more) as chunks, rows as they come', async () => {
    const res = await fetch(`${stack.base}/export.csv?from=${NOW - 3 * 3_600_000}&to=${NOW}&resolution=raw`, {
      headers: { 'X-Evtwin-Service-Token': SERVICE, 'X-Grafana-User': 'worker-machining' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('transfer-encoding'), 'chunked');
    assert.match(res.headers.get('content-type') ?? '', /text\/csv/);
    const reader = res.body?.getReader();
    assert.ok(reader);
    let chunks = 0;
    let text = '';
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks++;
      text += decoder.decode(value, { stream: true });
    }
    const lines = text.trim().split('\n');
    assert.match(lines[0] ?? '', /^time,site,line,asset,kind,/);
    // cnc-01: 10,800 rows at 1 s; cnc-02 and cnc-03: 720 each at 10 s; nothing else.
    assert.equal(lines.length - 1, 10_800 + 720 + 720);
    assert.deepEqual([...csvAssets(text)].sort(), ['plant-a/cnc-01', 'plant-a/cnc-02', 'plant-a/cnc-03']);
    assert.ok(chunks > 5, `arrived in ${chunks} chunks`);
  });
});
