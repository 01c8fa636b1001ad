/**
 * Login, refresh, logout and me on a real Node-RED runtime's HTTP server (RED.httpNode, no body parser
 * of its own), mounted by a test-only node file the way the registry node does; requireRole guarding
 * other routes; bad bodies, bad JWTs, a spent refresh token, rate limiting; the audit trail they leave.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SignJWT, UnsecuredJWT, decodeJwt } from 'jose';
import { verifyChain, type AuditEntry } from 'node-red-contrib-evtwin';
import { hashPassword } from 'node-red-contrib-evtwin/runtime';
import { freePort } from '../src/services';
import { startNodeRed, type NodeRedHandle } from '../src/stack/nodeRed';

const SECRET = 'test-secret-'.padEnd(48, 'x');
const BASE = 'evtwin/api/v1';
const dir = mkdtempSync(join(tmpdir(), 'evtwin-auth-routes-'));
const auditFile = join(dir, 'audit.jsonl');
let red: NodeRedHandle;
const FAST = { N: 1024, r: 8, p: 1 };
const PASSWORDS: Record<string, string> = {
  root: 'root-pass-1',
  ana: 'ana-pass-1',
  wolf: 'wolf-pass-1',
  rita: 'rita-pass-1',
};

before(async () => {
  const hash = async (login: string): Promise<string> => hashPassword(PASSWORDS[login] ?? '', FAST);
  writeFileSync(
    join(dir, 'users.yaml'),
    [
      'users:',
      `  - { login: root, role: admin, password: "${await hash('root')}" }`,
      `  - { login: ana, name: Ana Lead, role: lead, scope: { sites: [plant-a] }, password: "${await hash('ana')}" }`,
      `  - { login: wolf, role: worker, scope: { assets: [plant-a/cnc-01] }, password: "${await hash('wolf')}" }`,
      `  - { login: rita, role: worker, scope: { assets: [plant-a/cnc-02] }, password: "${await hash('rita')}" }`,
      '  - { login: nopass, role: head }',
      '',
    ].join('\n'),
  );
  process.env.EVTWIN_TEST_AUTH = JSON.stringify({
    usersFile: join(dir, 'users.yaml'),
    sessionsFile: join(dir, 'sessions.json'),
    auditFile,
    secret: SECRET,
    limits: { perLoginIp: 3, perIp: 20 },
  });
  writeFileSync(
    join(dir, 'settings.js'),
    `module.exports = { nodesDir: [${JSON.stringify(join(__dirname, 'fixtures', 'auth-routes'))}], logging: { console: { level: 'warn' } } };\n`,
  );
  writeFileSync(join(dir, 'flows.json'), '[]');
  red = await startNodeRed({
    userDir: join(dir, 'user'),
    flowFile: join(dir, 'flows.json'),
    port: await freePort(),
    settingsFile: join(dir, 'settings.js'),
    nodePackageDir: dirname(require.resolve('node-red-contrib-evtwin/package.json')),
  });
  // The fixture mounts the routes once sessions and audit are open.
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${red.url}${BASE}/auth/me`)).status !== 404) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('auth routes never appeared');
});
after(async () => {
  await red?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}
async function call(
  method: 'GET' | 'POST',
  path: string,
  opts: { json?: unknown; raw?: string; type?: string; bearer?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (opts.json !== undefined || opts.raw !== undefined) {
    headers['Content-Type'] = opts.type ?? 'application/json';
    body = opts.raw ?? JSON.stringify(opts.json);
  }
  if (opts.bearer) headers.Authorization = `Bearer ${opts.bearer}`;
  const res = await fetch(`${red.url}${BASE}${path}`, { method, headers, body });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    headers: res.headers,
  };
}
const login = (user: string, password = PASSWORDS[user]): Promise<Answer> =>
  call('POST', '/auth/login', { json: { login: user, password } });
const str = (v: unknown): string => {
  assert.equal(typeof v, 'string');
  return v as string;
};
const auditEntries = (): AuditEntry[] =>
  readFileSync(auditFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEntry);
const waitAudit = async (pred: (e: AuditEntry) => boolean): Promise<AuditEntry> => {
  for (let i = 0; i < 50; i++) {
    const e = auditEntries().find(pred);
    if (e) return e;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('audit entry not found');
};

describe('auth routes on Node-RED', () => {
  it('login → tokens; me → the user as users.yaml says; no caching', async () => {
    const r = await login('ana');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body).sort(), [
      'accessToken',
      'expiresIn',
      'refreshExpiresIn',
      'refreshToken',
      'tokenType',
    ]);
    assert.equal(r.body.expiresIn, 1800);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const me = await call('GET', '/auth/me', { bearer: str(r.body.accessToken) });
    assert.equal(me.status, 200);
    assert.deepEqual(
      { ...me.body, exp: undefined },
      {
        login: 'ana',
        name: 'Ana Lead',
        role: 'lead',
        scope: { sites: ['plant-a'], lines: [], assets: [] },
        exp: undefined,
      },
    );
    const e = await waitAudit((x) => x.action === 'user.login' && x.actor === 'ana' && x.outcome === 'ok');
    assert.equal(e.detail?.role, 'lead');
  });

  it('wrong password, unknown user and a user without a password get the same 401', async () => {
    const answers = await Promise.all([login('wolf', 'nope'), login('ghost', 'x'), login('nopass', 'x')]);
    for (const a of answers)
      assert.deepEqual([a.status, a.body], [401, { error: 'invalid login or password' }]);
    const denied = (actor: string): Promise<AuditEntry> =>
      waitAudit((x) => x.action === 'user.login' && x.actor === actor && x.outcome === 'denied');
    assert.equal((await denied('wolf')).detail?.reason, 'wrong-password');
    assert.equal((await denied('ghost')).detail?.reason, 'unknown-user');
    assert.equal((await denied('nopass')).detail?.reason, 'no-password');
  });

  it('malformed bodies get a 4xx that says what is wrong', async () => {
    // With httpAdminRoot "/", the admin app's body parser reads every request first and, on JSON it cannot
    // parse, leaves req.body = {} (its error is dropped by the stack's admin→node fall-through): still a 400.
    const unparsable = /not valid JSON|missing field "login"/;
    const cases: [Parameters<typeof call>[2], number, RegExp][] = [
      [{ raw: '{"login":' }, 400, unparsable],
      [{ raw: '' }, 400, /body is empty/],
      [{ json: ['ana', 'x'] }, 400, /JSON object/],
      [{ json: 'ana' }, 400, /JSON object|missing field "login"/],
      [{ json: null }, 400, /JSON object|missing field "login"/],
      [{ json: { password: 'x' } }, 400, /missing field "login"/],
      [{ json: { login: 'ana' } }, 400, /missing field "password"/],
      [{ json: { login: 'ana', password: 42 } }, 400, /"password" must be a string/],
      [{ json: { login: '', password: 'x' } }, 400, /"login" is empty/],
      [{ json: { login: 'ana', password: 'x'.repeat(2000) } }, 400, /too long/],
      [{ json: { login: 'ana', password: 'x'.repeat(9000) } }, 413, /larger than/],
      [{ raw: 'login=ana&password=x', type: 'application/x-www-form-urlencoded' }, 415, /application\/json/],
    ];
    for (const [opts, status, msg] of cases) {
      const r = await call('POST', '/auth/login', opts);
      assert.equal(r.status, status, JSON.stringify([opts, r.body]));
      assert.match(String(r.body.error), msg, JSON.stringify(opts).slice(0, 80));
    }
    const noBody = await call('POST', '/auth/login');
    assert.equal(noBody.status, 415);
    const refresh = await call('POST', '/auth/refresh', { json: { token: 'x' } });
    assert.deepEqual([refresh.status, refresh.body.error], [400, 'missing field "refreshToken"']);
  });

  it('refresh rotates; a spent refresh token revokes the whole family and is audited', async () => {
    const first = await login('wolf');
    assert.equal(first.status, 200);
    const second = await call('POST', '/auth/refresh', { json: { refreshToken: first.body.refreshToken } });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.notEqual(second.body.refreshToken, first.body.refreshToken);
    assert.equal(decodeJwt(str(second.body.accessToken)).sub, 'wolf');
    const third = await call('POST', '/auth/refresh', { json: { refreshToken: second.body.refreshToken } });
    assert.equal(third.status, 200);

    const replay = await call('POST', '/auth/refresh', { json: { refreshToken: first.body.refreshToken } });
    assert.deepEqual([replay.status, replay.body.error], [401, 'refresh token refused: reused']);
    // Descendants and the family's access tokens are dead too.
    const child = await call('POST', '/auth/refresh', { json: { refreshToken: third.body.refreshToken } });
    assert.deepEqual([child.status, child.body.error], [401, 'refresh token refused: revoked']);
    const me = await call('GET', '/auth/me', { bearer: str(third.body.accessToken) });
    assert.equal(me.status, 401);
    await waitAudit((x) => x.action === 'user.token.reuse' && x.actor === 'wolf');
    await waitAudit(
      (x) => x.action === 'user.refresh' && x.outcome === 'denied' && x.detail?.reason === 'reused',
    );
    const unknown = await call('POST', '/auth/refresh', { json: { refreshToken: 'A'.repeat(43) } });
    assert.deepEqual([unknown.status, unknown.body.error], [401, 'refresh token refused: unknown']);
  });

  it('logout by refresh token or by access token ends the session', async () => {
    const a = await login('rita');
    const out = await call('POST', '/auth/logout', { json: { refreshToken: a.body.refreshToken } });
    assert.equal(out.status, 204);
    assert.equal(
      (await call('POST', '/auth/refresh', { json: { refreshToken: a.body.refreshToken } })).status,
      401,
    );
    assert.equal((await call('GET', '/auth/me', { bearer: str(a.body.accessToken) })).status, 401);

    const b = await login('rita');
    const out2 = await call('POST', '/auth/logout', { bearer: str(b.body.accessToken) });
    assert.equal(out2.status, 204);
    assert.equal((await call('GET', '/auth/me', { bearer: str(b.body.accessToken) })).status, 401);
    assert.equal(
      (await call('POST', '/auth/refresh', { json: { refreshToken: b.body.refreshToken } })).status,
      401,
    );
    assert.equal((await call('POST', '/auth/logout')).status, 401);
    await waitAudit((x) => x.action === 'user.logout' && x.actor === 'rita');
  });

  it('bad JWTs: alg none, wrong signature, expired, tampered payload, not Bearer → 401', async () => {
    const key = new TextEncoder().encode(SECRET);
    const now = Math.floor(Date.now() / 1000);
    const claims = (jwt: SignJWT | UnsecuredJWT, iat = now): SignJWT | UnsecuredJWT =>
      jwt
        .setSubject('root')
        .setIssuer('evtwin')
        .setAudience('evtwin-api')
        .setIssuedAt(iat)
        .setExpirationTime(iat + 1800)
        .setJti('j1');
    const sign = (jwt: SignJWT, k = key): Promise<string> =>
      jwt.setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(k);
    const good = await sign(claims(new SignJWT({ role: 'admin', sid: 's1' })) as SignJWT);
    assert.equal((await call('GET', '/auth/me', { bearer: good })).status, 200, 'control: a token we signed');

    const none = (claims(new UnsecuredJWT({ role: 'admin', sid: 's1' })) as UnsecuredJWT).encode();
    const wrongKey = await sign(
      claims(new SignJWT({ role: 'admin', sid: 's1' })) as SignJWT,
      new TextEncoder().encode('z'.repeat(48)),
    );
    const expired = await sign(claims(new SignJWT({ role: 'admin', sid: 's1' }), now - 3600) as SignJWT);
    const [h, , s] = (await login('wolf')).body.accessToken?.toString().split('.') ?? [];
    const forgedPayload = Buffer.from(JSON.stringify({ ...decodeJwt(good), sub: 'root' })).toString(
      'base64url',
    );
    const cases: [string, string | undefined, string][] = [
      ['alg none', `Bearer ${none}`, 'algorithm'],
      ['wrong key', `Bearer ${wrongKey}`, 'signature'],
      ['expired', `Bearer ${expired}`, 'expired'],
      ['swapped payload', `Bearer ${h}.${forgedPayload}.${s}`, 'signature'],
      ['no header', undefined, ''],
      ['Basic', `Basic ${Buffer.from('root:root-pass-1').toString('base64')}`, ''],
      ['garbage', 'Bearer %%%', ''],
    ];
    for (const [name, header, code] of cases) {
      const res = await fetch(`${red.url}${BASE}/auth/me`, {
        headers: header ? { Authorization: header } : {},
      });
      assert.equal(res.status, 401, name);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="evtwin"/, name);
      if (code)
        assert.match(
          res.headers.get('www-authenticate') ?? '',
          new RegExp(`error_description="${code}"`),
          name,
        );
    }
  });

  it('requireRole: 401 without a token, 403 below the role, 200 at or above; denials audited', async () => {
    const root = str((await login('root')).body.accessToken);
    const ana = str((await login('ana')).body.accessToken);
    const wolf = str((await login('wolf')).body.accessToken);
    assert.equal((await call('GET', '/test/admin-only')).status, 401);
    assert.deepEqual(
      await call('GET', '/test/admin-only', { bearer: root }).then((r) => [r.status, r.body]),
      [200, { ok: true, login: 'root' }],
    );
    assert.equal((await call('GET', '/test/admin-only', { bearer: ana })).status, 403);
    assert.equal((await call('GET', '/test/lead-or-above', { bearer: ana })).status, 200);
    assert.equal((await call('GET', '/test/lead-or-above', { bearer: root })).status, 200);
    const w = await call('GET', '/test/lead-or-above', { bearer: wolf });
    assert.deepEqual([w.status, w.body.error], [403, 'needs role lead or above']);
    const e = await waitAudit((x) => x.action === 'access.denied' && x.actor === 'wolf');
    assert.equal(e.target, 'GET /evtwin/api/v1/test/lead-or-above');
  });

  it('rate-limits failed logins per login+IP (429 with Retry-After), other logins unaffected', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await login('root', 'guess')).status, 401);
    const blocked = await login('root'); // even the right password
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    assert.equal((await login('ana')).status, 200);
    await waitAudit(
      (x) => x.action === 'user.login' && x.actor === 'root' && x.detail?.reason === 'rate-limited',
    );
  });

  it('the audit file is a valid chain and holds no secret', async () => {
    await new Promise((r) => setTimeout(r, 50));
    const text = readFileSync(auditFile, 'utf8');
    const v = verifyChain(text);
    assert.equal(v.ok, true, JSON.stringify(v));
    for (const p of Object.values(PASSWORDS)) assert.ok(!text.includes(p));
    assert.ok(!/eyJ[A-Za-z0-9_-]{10,}/.test(text), 'no JWT in the audit log');
    const sessions = readFileSync(join(dir, 'sessions.json'), 'utf8');
    assert.ok(!/eyJ/.test(sessions));
  });
});
