/**
 * The evtwin-registry config node as the security hub of a real Node-RED instance: users from a users file
 * log in (login routes on RED.httpNode), an admin's access JWT registers a device through the admin API,
 * a worker's JWT is refused, the device passes evtwin-auth until it is revoked, and the one audit log of the
 * instance holds it all and verifies.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEntry } from 'node-red-contrib-evtwin';
import { hashPassword, verifyAuditFile } from 'node-red-contrib-evtwin/runtime';
import { main } from '../src/cli';
import { freePort } from '../src/services';
import { startNodeRed, type NodeRedHandle } from '../src/stack/nodeRed';

const dir = mkdtempSync(join(tmpdir(), 'evtwin-registry-hub-'));
const registryFile = join(dir, 'registry.json');
const auditFile = `${registryFile}.audit.jsonl`;
const API = 'evtwin/api/v1';
let red: NodeRedHandle;

const flow = [
  { id: 'tab', type: 'tab', label: 'hub' },
  {
    id: 'reg',
    type: 'evtwin-registry',
    name: 'hub',
    file: registryFile,
    usersFile: '${EVTWIN_TEST_USERS}',
    graceS: '60',
  },
  { id: 'in', type: 'http in', z: 'tab', url: '/hub-test/:site/:asset', method: 'post', wires: [['prep']] },
  {
    id: 'prep',
    type: 'function',
    z: 'tab',
    // What `mqtt in` delivers: topic, raw payload, MQTT v5 user properties.
    func: [
      "msg.topic = 'evtwin/v1/' + msg.req.params.site + '/' + msg.req.params.asset + '/telemetry';",
      "msg.userProperties = { authorization: msg.req.headers['x-device-token'] };",
      'msg.payload = Buffer.from(JSON.stringify(msg.payload));',
      'return msg;',
    ].join('\n'),
    wires: [['auth']],
  },
  { id: 'auth', type: 'evtwin-auth', z: 'tab', registry: 'reg', wires: [['ok'], ['bad']] },
  {
    id: 'ok',
    type: 'function',
    z: 'tab',
    func: 'msg.payload = { ok: true, identity: msg.evtwin.identity }; return msg;',
    wires: [['res']],
  },
  {
    id: 'bad',
    type: 'function',
    z: 'tab',
    func: 'msg.payload = { ok: false, code: msg.error.code }; msg.statusCode = 403; return msg;',
    wires: [['res']],
  },
  { id: 'res', type: 'http response', z: 'tab', wires: [] },
];

const PASSWORDS = { root: 'root-pass-1', wolf: 'wolf-pass-1' };

before(async () => {
  const fast = { N: 1024, r: 8, p: 1 };
  const usersFile = join(dir, 'users.yaml');
  writeFileSync(
    usersFile,
    [
      'users:',
      `  - { login: root, role: admin, password: "${await hashPassword(PASSWORDS.root, fast)}" }`,
      `  - { login: wolf, role: worker, scope: { assets: [plant-a/cnc-01] }, password: "${await hashPassword(PASSWORDS.wolf, fast)}" }`,
      '',
    ].join('\n'),
  );
  // The secret comes from the environment, never the flow; the users file through ${VAR} substitution.
  process.env.EVTWIN_JWT_SECRET = 'registry-hub-test-secret-'.padEnd(48, 'z');
  process.env.EVTWIN_TEST_USERS = usersFile;
  writeFileSync(join(dir, 'settings.js'), "module.exports = { logging: { console: { level: 'warn' } } };\n");
  writeFileSync(join(dir, 'flows.json'), JSON.stringify(flow));
  red = await startNodeRed({
    userDir: join(dir, 'user'),
    flowFile: join(dir, 'flows.json'),
    port: await freePort(),
    settingsFile: join(dir, 'settings.js'),
    nodePackageDir: dirname(require.resolve('node-red-contrib-evtwin/package.json')),
  });
  // The node mounts the login routes once the audit log and sessions are open.
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${red.url}${API}/auth/me`)).status !== 404) return;
    await sleep(50);
  }
  throw new Error('login routes never appeared');
});

after(async () => {
  await red?.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${red.url}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function login(user: keyof typeof PASSWORDS): Promise<string> {
  const r = await call('POST', `${API}/auth/login`, { login: user, password: PASSWORDS[user] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(typeof r.body.accessToken, 'string');
  return r.body.accessToken as string;
}

let seq = 0;
const publish = (token: string) =>
  call(
    'POST',
    'hub-test/plant-a/cnc-01',
    { ts: Date.now(), seq: ++seq, values: { power: 3.5 } },
    { 'x-device-token': token },
  );

test('admin logs in, registers a device with the access JWT; a worker gets 403; revoking stops the device; audit verifies', async () => {
  const adminJwt = await login('root');
  const workerJwt = await login('wolf');
  const bad = await call('POST', `${API}/auth/login`, { login: 'root', password: 'wrong' });
  assert.equal(bad.status, 401);

  // No token, a worker's token: refused. The admin's: the device is registered, its token shown once.
  const device = { site: 'plant-a', asset: 'cnc-01', owner: 'wolf' };
  assert.equal((await call('POST', `${API}/registry/devices`, device)).status, 401);
  const denied = await call('POST', `${API}/registry/devices`, device, {
    Authorization: `Bearer ${workerJwt}`,
  });
  assert.equal(denied.status, 403, JSON.stringify(denied.body));
  const reg = await call('POST', `${API}/registry/devices`, device, { Authorization: `Bearer ${adminJwt}` });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  const token = reg.body.token as string;
  assert.ok(token.length >= 20);
  const list = await call('GET', `${API}/registry/devices`, undefined, {
    Authorization: `Bearer ${adminJwt}`,
  });
  assert.equal(list.status, 200);
  assert.equal((list.body as unknown as { id: string }[])[0]?.id, 'plant-a/cnc-01');

  // The device passes evtwin-auth with its token; a wrong token does not.
  const ok = await publish(token);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(
    {
      site: (ok.body.identity as { site: string }).site,
      asset: (ok.body.identity as { asset: string }).asset,
    },
    { site: 'plant-a', asset: 'cnc-01' },
  );
  const wrong = await publish(`${token.slice(0, -2)}xx`);
  assert.equal(wrong.status, 403);

  // Revoked through the API: the auth node refuses the device.
  const rev = await call('POST', `${API}/registry/devices/plant-a/cnc-01/revoke`, undefined, {
    Authorization: `Bearer ${adminJwt}`,
  });
  assert.equal(rev.status, 200, JSON.stringify(rev.body));
  const after = await publish(token);
  assert.equal(after.status, 403);
  assert.equal(after.body.code, 'revoked');

  // Stop the runtime: close handlers flush the auth node's rejection summary and close the log.
  await red.stop();
  const verdict = await verifyAuditFile(auditFile);
  assert.equal(verdict.ok, true, JSON.stringify(verdict));
  const entries = readFileSync(auditFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEntry);
  const has = (pred: (e: AuditEntry) => boolean, what: string): void =>
    assert.ok(
      entries.some(pred),
      `${what} in ${entries.map((e) => `${e.action}/${e.actor}/${e.outcome}`).join(' ')}`,
    );
  has((e) => e.action === 'user.login' && e.actor === 'root' && e.outcome === 'ok', 'admin login');
  has((e) => e.action === 'user.login' && e.actor === 'root' && e.outcome === 'denied', 'failed login');
  has((e) => e.action === 'access.denied' && e.actor === 'wolf', 'worker refused');
  has(
    (e) => e.action === 'registry.register' && e.actor === 'root' && e.target === 'plant-a/cnc-01',
    'registration',
  );
  has((e) => e.action === 'registry.revoke' && e.actor === 'root', 'revocation');
  has((e) => e.action === 'auth.reject' && e.target === 'plant-a/cnc-01', 'auth rejections');
  // `evtwin audit verify` (dispatched by the evtwin CLI) agrees.
  const said: string[] = [];
  const io = {
    out: (l: string) => said.push(l),
    err: (l: string) => said.push(l),
    env: process.env,
    now: Date.now,
  };
  assert.equal(await main(['audit', 'verify', auditFile], io), 0, said.join('\n'));
  assert.match(said.join('\n'), new RegExp(`^OK ${entries.length} entries`));
  // The sessions persist next to the registry, the secret nowhere in the flow.
  assert.ok(readFileSync(`${registryFile}.sessions.json`, 'utf8').includes('root'));
  assert.ok(!readFileSync(join(dir, 'flows.json'), 'utf8').includes(process.env.EVTWIN_JWT_SECRET ?? '?'));
});
