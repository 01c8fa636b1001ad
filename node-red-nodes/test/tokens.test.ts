/**
 * User access tokens (JWT via jose) and rotating refresh tokens: claims, bad JWTs (alg none, wrong
 * signature, expired, wrong issuer/audience/typ), rotation, reuse revoking the family, logout, persistence.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import type { AuditEvent, Role } from '../src/core';
import { TokenError, UserTokens, type UserTokensOptions } from '../src/runtime/userTokens';

const SECRET = 'k'.repeat(40);
const T0 = 1_767_225_600_000;
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Rig {
  tokens: UserTokens;
  clock: { now: number };
  events: AuditEvent[];
  file: string;
}
async function rig(extra: Partial<UserTokensOptions> = {}, file?: string): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'evtwin-tokens-'));
  dirs.push(dir);
  const clock = { now: T0 };
  const events: AuditEvent[] = [];
  const storeFile = file ?? join(dir, 'sessions.json');
  const tokens = await UserTokens.open({
    secret: SECRET,
    storeFile,
    now: () => clock.now,
    audit: { record: (e) => events.push(e) },
    ...extra,
  });
  return { tokens, clock, events, file: storeFile };
}
const roles: Record<string, Role> = { ana: 'lead', bo: 'worker' };
const roleOf = (login: string): Role | undefined => roles[login];

async function refused(p: Promise<unknown>, code: TokenError['code']): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof TokenError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('access tokens', () => {
  it('carry sub, role, sid, iat, exp (30 min), jti; HS256; typ at+jwt', async () => {
    const { tokens } = await rig();
    const pair = await tokens.issue({ login: 'ana', role: 'lead' });
    assert.equal(pair.expiresIn, 1800);
    assert.equal(pair.tokenType, 'Bearer');
    assert.deepEqual(decodeProtectedHeader(pair.accessToken), { alg: 'HS256', typ: 'at+jwt' });
    const c = decodeJwt(pair.accessToken);
    assert.equal(c.sub, 'ana');
    assert.equal(c.role, 'lead');
    assert.equal(c.iat, T0 / 1000);
    assert.equal(c.exp, T0 / 1000 + 1800);
    assert.equal(c.iss, 'evtwin');
    assert.equal(c.aud, 'evtwin-api');
    assert.match(String(c.jti), /^[0-9a-f-]{36}$/);
    const v = await tokens.verifyAccess(pair.accessToken);
    assert.deepEqual(v, { login: 'ana', role: 'lead', sid: c.sid, jti: c.jti, iat: c.iat, exp: c.exp });
  });

  it('expire after 30 minutes (injected clock)', async () => {
    const r = await rig();
    const { accessToken } = await r.tokens.issue({ login: 'ana', role: 'lead' });
    r.clock.now = T0 + 1799_000;
    await r.tokens.verifyAccess(accessToken);
    r.clock.now = T0 + 1800_000;
    await refused(r.tokens.verifyAccess(accessToken), 'expired');
  });

  it('refuse alg none, a wrong key, another algorithm, issuer, audience, typ, and garbage', async () => {
    const { tokens } = await rig();
    const key = new TextEncoder().encode(SECRET);
    const base = (): SignJWT =>
      new SignJWT({ role: 'admin', sid: 's' })
        .setSubject('mallory')
        .setIssuer('evtwin')
        .setAudience('evtwin-api')
        .setIssuedAt(T0 / 1000)
        .setExpirationTime(T0 / 1000 + 1800)
        .setJti('j');
    const none = new UnsecuredJWT({ role: 'admin', sid: 's' })
      .setSubject('mallory')
      .setIssuer('evtwin')
      .setAudience('evtwin-api')
      .setIssuedAt(T0 / 1000)
      .setExpirationTime(T0 / 1000 + 1800)
      .setJti('j')
      .encode();
    await refused(tokens.verifyAccess(none), 'algorithm');
    // alg none with the header patched to typ at+jwt as well.
    const noneTyp = `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${none.split('.')[1]}.`;
    await refused(tokens.verifyAccess(noneTyp), 'algorithm');
    const wrongKey = await base()
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .sign(new TextEncoder().encode('w'.repeat(40)));
    await refused(tokens.verifyAccess(wrongKey), 'signature');
    const hs512 = await base().setProtectedHeader({ alg: 'HS512', typ: 'at+jwt' }).sign(key);
    await refused(tokens.verifyAccess(hs512), 'algorithm');
    const good = await base().setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(key);
    assert.equal((await tokens.verifyAccess(good)).login, 'mallory'); // the forger's control case
    // Payload swapped under a valid signature.
    const [h, , s] = good.split('.');
    const evil = Buffer.from(JSON.stringify({ ...decodeJwt(good), role: 'admin', sub: 'root' })).toString(
      'base64url',
    );
    await refused(tokens.verifyAccess(`${h}.${evil}.${s}`), 'signature');
    const iss = await base().setIssuer('other').setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(key);
    await refused(tokens.verifyAccess(iss), 'claims');
    const aud = await base().setAudience('x').setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(key);
    await refused(tokens.verifyAccess(aud), 'claims');
    const typ = await base().setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(key);
    await refused(tokens.verifyAccess(typ), 'claims');
    const noRole = await new SignJWT({ sid: 's' })
      .setSubject('m')
      .setIssuer('evtwin')
      .setAudience('evtwin-api')
      .setIssuedAt(T0 / 1000)
      .setExpirationTime(T0 / 1000 + 60)
      .setJti('j')
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .sign(key);
    await refused(tokens.verifyAccess(noRole), 'claims');
    for (const junk of ['', 'abc', 'a.b.c', 'x'.repeat(5000), 42, null, undefined])
      await refused(tokens.verifyAccess(junk), 'malformed');
  });

  it('refuse a secret shorter than 32 bytes', async () => {
    await assert.rejects(UserTokens.open({ secret: 'short' }), /at least 32 bytes/);
  });
});

describe('refresh tokens', () => {
  it('rotate: each refresh returns a new pair and spends the old token', async () => {
    const r = await rig();
    const p1 = await r.tokens.issue({ login: 'ana', role: 'lead' });
    assert.match(p1.refreshToken, /^[A-Za-z0-9_-]{43}$/);
    r.clock.now += 60_000;
    const p2 = await r.tokens.refresh(p1.refreshToken, roleOf);
    assert.notEqual(p2.refreshToken, p1.refreshToken);
    assert.equal(p2.login, 'ana');
    assert.equal(decodeJwt(p2.accessToken).sid, decodeJwt(p1.accessToken).sid);
    const p3 = await r.tokens.refresh(p2.refreshToken, roleOf);
    await r.tokens.verifyAccess(p3.accessToken);
    // Only hashes are stored.
    const stored = readFileSync(r.file, 'utf8');
    for (const t of [p1.refreshToken, p2.refreshToken, p3.refreshToken]) assert.ok(!stored.includes(t));
  });

  it('reuse of a spent token revokes the whole family, including descendants, and is audited', async () => {
    const r = await rig();
    const p1 = await r.tokens.issue({ login: 'ana', role: 'lead' });
    const other = await r.tokens.issue({ login: 'ana', role: 'lead' });
    const p2 = await r.tokens.refresh(p1.refreshToken, roleOf);
    const p3 = await r.tokens.refresh(p2.refreshToken, roleOf);
    await refused(r.tokens.refresh(p1.refreshToken, roleOf), 'reused');
    await refused(r.tokens.refresh(p3.refreshToken, roleOf), 'revoked');
    await refused(r.tokens.refresh(p2.refreshToken, roleOf), 'revoked');
    // The family's access tokens stop too; another session of the same user does not.
    await refused(r.tokens.verifyAccess(p3.accessToken), 'revoked');
    await r.tokens.verifyAccess(other.accessToken);
    await r.tokens.refresh(other.refreshToken, roleOf);
    assert.equal(r.events.length, 1);
    assert.deepEqual(
      { ...r.events[0], detail: undefined },
      {
        ts: T0,
        actor: 'ana',
        action: 'user.token.reuse',
        target: `session:${String(decodeJwt(p1.accessToken).sid)}`,
        outcome: 'denied',
        detail: undefined,
      },
    );
    assert.ok(!JSON.stringify(r.events).includes(p1.refreshToken));
  });

  it('logout revokes the family; unknown and malformed tokens are refused', async () => {
    const r = await rig();
    const p1 = await r.tokens.issue({ login: 'bo', role: 'worker' });
    const p2 = await r.tokens.refresh(p1.refreshToken, roleOf);
    assert.equal(await r.tokens.logout(p2.refreshToken), 'bo');
    await refused(r.tokens.refresh(p2.refreshToken, roleOf), 'revoked');
    await refused(r.tokens.verifyAccess(p2.accessToken), 'revoked');
    assert.equal(await r.tokens.logout('A'.repeat(43)), undefined);
    await refused(r.tokens.refresh('A'.repeat(43), roleOf), 'unknown');
    for (const junk of ['', 'short', 'A'.repeat(44), 'A'.repeat(42) + '=', 7, null, { t: 1 }])
      await refused(r.tokens.refresh(junk, roleOf), 'malformed');
  });

  it('expire: idle lifetime, session maximum; a removed user ends the session; role changes follow', async () => {
    const r = await rig({ refreshTtlS: 3600, sessionMaxS: 2 * 3600 });
    const p = await r.tokens.issue({ login: 'ana', role: 'lead' });
    r.clock.now += 3600_000;
    await refused(r.tokens.refresh(p.refreshToken, roleOf), 'expired');

    let q = await r.tokens.issue({ login: 'ana', role: 'lead' });
    for (let i = 0; i < 2; i++) {
      r.clock.now += 3000_000;
      q = await r.tokens.refresh(q.refreshToken, roleOf);
    }
    assert.equal(q.refreshExpiresIn, 2 * 3600 - 6000); // capped by the session maximum
    r.clock.now += (2 * 3600 - 6000) * 1000 - 1;
    const last = await r.tokens.refresh(q.refreshToken, roleOf);
    assert.equal(last.refreshExpiresIn, 0);
    q = last;
    r.clock.now += 1;
    await refused(r.tokens.refresh(q.refreshToken, roleOf), 'expired');

    const s = await r.tokens.issue({ login: 'ana', role: 'lead' });
    const promoted = await r.tokens.refresh(s.refreshToken, () => 'head');
    assert.equal(decodeJwt(promoted.accessToken).role, 'head');
    await refused(
      r.tokens.refresh(promoted.refreshToken, () => undefined),
      'user',
    );
  });

  it('keep at most N sessions per user (the oldest is revoked)', async () => {
    const r = await rig({ maxSessionsPerUser: 2 });
    const a = await r.tokens.issue({ login: 'ana', role: 'lead' });
    r.clock.now += 1;
    await r.tokens.issue({ login: 'ana', role: 'lead' });
    r.clock.now += 1;
    await r.tokens.issue({ login: 'ana', role: 'lead' });
    assert.equal(r.tokens.sessions('ana').length, 2);
    await refused(r.tokens.refresh(a.refreshToken, roleOf), 'revoked');
  });

  it('survive a restart: sessions, spent tokens and revocations are persisted atomically', async () => {
    const r = await rig();
    const live = await r.tokens.issue({ login: 'ana', role: 'lead' });
    const spent = await r.tokens.issue({ login: 'bo', role: 'worker' });
    const next = await r.tokens.refresh(spent.refreshToken, roleOf);
    const gone = await r.tokens.issue({ login: 'bo', role: 'worker' });
    await r.tokens.logout(gone.refreshToken);
    await r.tokens.close();
    assert.deepEqual(
      readdirSync(join(r.file, '..')).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left',
    );

    const again = await rig({}, r.file);
    const l2 = await again.tokens.refresh(live.refreshToken, roleOf);
    assert.equal(l2.login, 'ana');
    await again.tokens.verifyAccess(live.accessToken);
    await refused(again.tokens.refresh(gone.refreshToken, roleOf), 'revoked');
    await refused(again.tokens.refresh(spent.refreshToken, roleOf), 'reused');
    await refused(again.tokens.refresh(next.refreshToken, roleOf), 'revoked');
  });

  it('many concurrent refreshes of different sessions all persist', async () => {
    const r = await rig();
    const pairs = await Promise.all(
      Array.from({ length: 20 }, () => r.tokens.issue({ login: 'ana', role: 'lead' })),
    );
    const next = await Promise.all(pairs.map((p) => r.tokens.refresh(p.refreshToken, roleOf)));
    await r.tokens.close();
    assert.ok(existsSync(r.file));
    const again = await rig({}, r.file);
    for (const p of next) await again.tokens.refresh(p.refreshToken, roleOf);
  });
});
