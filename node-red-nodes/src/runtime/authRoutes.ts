/**
 * User login over HTTP on Node-RED's node server (RED.httpNode, or any express-like router):
 *   POST {base}/auth/login   {login, password}  → 200 {accessToken, refreshToken, tokenType, expiresIn, refreshExpiresIn}
 *   POST {base}/auth/refresh {refreshToken}     → 200 the next pair (the old refresh token is spent)
 *   POST {base}/auth/logout  {refreshToken} or Authorization: Bearer <access> → 204 (the session is revoked)
 *   GET  {base}/auth/me      Authorization: Bearer <access> → 200 {login, name, role, scope}
 * Every attempt is audited (user.login, user.refresh, user.logout; outcome ok or denied with a reason).
 * Failed logins are limited per login+IP and per IP (429 with Retry-After). Bodies are read here (httpNode
 * has no JSON body parser; an already parsed req.body is used as is), at most 8 KiB.
 *
 * authenticate(req) and requireRole(role) are what every other endpoint (registry admin API, twin API)
 * uses: Bearer access JWT → the user as users.yaml says now.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hasRole, type Principal } from '../core/access';
import type { Role, User } from '../core/assetModel';
import type { AuditEvent, AuditSink } from '../core/auditEvent';
import { dummyVerify, MAX_PASSWORD_BYTES, verifyUserPassword } from './passwords';
import { TokenError, type UserTokens } from './userTokens';

export const API_BASE = '/evtwin/api/v1';
export const MAX_BODY_BYTES = 8 * 1024;

/** An express Request is one of these (plus what express adds). */
export type HttpRequest = IncomingMessage & { body?: unknown; ip?: string; evtwinUser?: AuthContext };
export type HttpHandler = (req: HttpRequest, res: ServerResponse, next: (err?: unknown) => void) => void;
/** RED.httpNode, an express app or router. */
export interface RouteTarget {
  post(path: string, handler: HttpHandler): unknown;
  get(path: string, handler: HttpHandler): unknown;
}

export interface AuthDeps {
  tokens: UserTokens;
  /** The user as users.yaml says now (so a changed role or a removed user takes effect at once). */
  findUser(login: string): User | undefined;
  audit: AuditSink;
  /** Default /evtwin/api/v1. */
  basePath?: string;
  /** Epoch ms (tests move it). */
  now?: () => number;
  limits?: Partial<LoginLimits>;
}

export interface LoginLimits {
  /** Failures allowed per login+IP in a window (default 5). */
  perLoginIp: number;
  /** Failures allowed per IP in a window, across logins (default 50). */
  perIp: number;
  /** Window, ms (default 15 min). */
  windowMs: number;
}

/** The caller of an authenticated request. */
export interface AuthContext extends Principal {
  name: string;
  /** Session id (refresh family). */
  sid: string;
  jti: string;
  /** Access token expiry, epoch s. */
  exp: number;
}

/** An HTTP answer other than 2xx, thrown by authenticate and caught by the handlers. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Send JSON with no caching (answers here hold tokens). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  res.statusCode = status;
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (body === undefined) {
    res.end();
    return;
  }
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

/** Does the request carry a body (whoever parsed it)? */
const hasBody = (req: HttpRequest): boolean =>
  Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;

/**
 * The JSON object body of a request. Read here, unless a body parser already consumed the stream
 * (Node-RED's admin app parses every request when httpAdminRoot is "/"): then its req.body is used.
 * Throws HttpError 415 (not JSON), 413 (over `limit`), 400 (not a JSON object).
 */
export async function readJsonBody(
  req: HttpRequest,
  limit = MAX_BODY_BYTES,
): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '')
    .split(';')[0]
    ?.trim()
    .toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'expected Content-Type: application/json');
  if (Number(req.headers['content-length'] ?? 0) > limit)
    throw new HttpError(413, `body larger than ${limit} bytes`);
  if (!hasBody(req)) throw new HttpError(400, 'body is empty: expected a JSON object');
  let value: unknown;
  // body-parser marks what it read with _body; a body it failed to parse leaves {} (an error is passed on).
  if ((req as { _body?: unknown })._body === true || req.readableEnded) value = req.body;
  else {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      size += buf.length;
      if (size > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
      chunks.push(buf);
    }
    try {
      value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new HttpError(400, 'body is not valid JSON');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new HttpError(400, 'body must be a JSON object');
  return value as Record<string, unknown>;
}

/** The client address: express's req.ip (which honours its trust proxy setting), else the socket's. */
export const clientIp = (req: HttpRequest): string => req.ip ?? req.socket?.remoteAddress ?? 'unknown';

/** Counts failures per key in fixed windows; bounded (the oldest keys go first when full). */
export class FailureLimiter {
  private readonly entries = new Map<string, { count: number; resetAt: number }>();
  constructor(
    private readonly windowMs: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Ms until `key` may try again when it has reached `limit` failures, else 0. */
  blockedFor(key: string, limit: number, now: number): number {
    const e = this.entries.get(key);
    if (!e || e.resetAt <= now) return 0;
    return e.count >= limit ? e.resetAt - now : 0;
  }

  fail(key: string, now: number): void {
    let e = this.entries.get(key);
    if (!e || e.resetAt <= now) {
      this.entries.delete(key);
      if (this.entries.size >= this.maxKeys) {
        for (const [k, v] of this.entries) if (v.resetAt <= now) this.entries.delete(k);
        const oldest = this.entries.keys().next();
        if (this.entries.size >= this.maxKeys && !oldest.done) this.entries.delete(oldest.value);
      }
      e = { count: 0, resetAt: now + this.windowMs };
      this.entries.set(key, e);
    }
    e.count++;
  }

  clear(key: string): void {
    this.entries.delete(key);
  }
}

export interface Authenticator {
  /** The caller of a request with `Authorization: Bearer <access JWT>`. Throws HttpError 401. */
  authenticate(req: HttpRequest): Promise<AuthContext>;
  /**
   * Middleware: 401 without a valid access token, 403 below `min` (admin > head > lead > worker > citizen);
   * else sets req.evtwinUser and calls next().
   */
  requireRole(min: Role): HttpHandler;
}

const BEARER = /^Bearer ([A-Za-z0-9_.-]+)$/;

export function createAuthenticator(deps: AuthDeps): Authenticator {
  const now = deps.now ?? Date.now;
  const authenticate = async (req: HttpRequest): Promise<AuthContext> => {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? BEARER.exec(header) : null;
    const challenge = { 'WWW-Authenticate': 'Bearer realm="evtwin"' };
    if (!m?.[1]) throw new HttpError(401, 'missing Authorization: Bearer <access token>', challenge);
    let claims;
    try {
      claims = await deps.tokens.verifyAccess(m[1]);
    } catch (err) {
      const code = err instanceof TokenError ? err.code : 'malformed';
      throw new HttpError(401, `access token refused: ${code}`, {
        'WWW-Authenticate': `Bearer realm="evtwin", error="invalid_token", error_description="${code}"`,
      });
    }
    const user = deps.findUser(claims.login);
    if (!user) throw new HttpError(401, 'access token refused: user', challenge);
    return {
      login: user.login,
      name: user.name,
      role: user.role,
      scope: user.scope,
      sid: claims.sid,
      jti: claims.jti,
      exp: claims.exp,
    };
  };
  return {
    authenticate,
    requireRole(min) {
      return (req, res, next) => {
        authenticate(req)
          .then((ctx) => {
            if (!hasRole(ctx, min)) {
              deps.audit.record({
                ts: now(),
                actor: ctx.login,
                action: 'access.denied',
                target: `${req.method ?? ''} ${(req.url ?? '').split('?')[0] ?? ''}`,
                outcome: 'denied',
                detail: { role: ctx.role, needs: min },
              });
              sendJson(res, 403, { error: `needs role ${min} or above` });
              return;
            }
            req.evtwinUser = ctx;
            next();
          })
          .catch((err: unknown) => fail(res, err));
      };
    },
  };
}

function fail(res: ServerResponse, err: unknown): void {
  if (err instanceof HttpError) sendJson(res, err.status, { error: err.message }, err.headers);
  else sendJson(res, 500, { error: 'internal error' });
}

/** Mount login, refresh, logout and me on `app`; returns the authenticator for other routes. */
export function registerAuthRoutes(app: RouteTarget, deps: AuthDeps): Authenticator {
  const base = (deps.basePath ?? API_BASE).replace(/\/$/, '');
  const now = deps.now ?? Date.now;
  const limits: LoginLimits = { perLoginIp: 5, perIp: 50, windowMs: 15 * 60_000, ...deps.limits };
  const limiter = new FailureLimiter(limits.windowMs);
  const auth = createAuthenticator(deps);
  // The first unknown-user check would otherwise also pay for making the dummy hash (a timing tell).
  void dummyVerify().catch(() => undefined);

  const audit = (e: Omit<AuditEvent, 'ts'>): void => deps.audit.record({ ts: now(), ...e });
  const handle =
    (fn: (req: HttpRequest, res: ServerResponse) => Promise<void>): HttpHandler =>
    (req, res) => {
      fn(req, res).catch((err: unknown) => fail(res, err));
    };
  const text = (body: Record<string, unknown>, field: string, max: number): string => {
    const v = body[field];
    if (v === undefined) throw new HttpError(400, `missing field "${field}"`);
    if (typeof v !== 'string') throw new HttpError(400, `field "${field}" must be a string`);
    if (v.length === 0) throw new HttpError(400, `field "${field}" is empty`);
    if (Buffer.byteLength(v) > max) throw new HttpError(400, `field "${field}" is too long`);
    return v;
  };

  app.post(
    `${base}/auth/login`,
    handle(async (req, res) => {
      const body = await readJsonBody(req);
      const login = text(body, 'login', 128);
      const password = text(body, 'password', MAX_PASSWORD_BYTES);
      const ip = clientIp(req);
      const t = now();
      const keyLogin = `l:${login}\u0000${ip}`;
      const keyIp = `i:${ip}`;
      const wait = Math.max(
        limiter.blockedFor(keyLogin, limits.perLoginIp, t),
        limiter.blockedFor(keyIp, limits.perIp, t),
      );
      if (wait > 0) {
        audit({
          actor: login,
          action: 'user.login',
          outcome: 'denied',
          detail: { reason: 'rate-limited', ip },
        });
        throw new HttpError(429, 'too many failed logins; try again later', {
          'Retry-After': String(Math.ceil(wait / 1000)),
        });
      }
      const user = deps.findUser(login);
      if (!(await verifyUserPassword(user, password)) || !user) {
        limiter.fail(keyLogin, now());
        limiter.fail(keyIp, now());
        audit({
          actor: login,
          action: 'user.login',
          outcome: 'denied',
          // Auditors may tell an unknown login from a wrong password; the client may not.
          detail: {
            reason: !user ? 'unknown-user' : user.passwordHash ? 'wrong-password' : 'no-password',
            ip,
          },
        });
        throw new HttpError(401, 'invalid login or password');
      }
      limiter.clear(keyLogin);
      const pair = await deps.tokens.issue(user);
      audit({ actor: user.login, action: 'user.login', outcome: 'ok', detail: { role: user.role, ip } });
      sendJson(res, 200, pair);
    }),
  );

  app.post(
    `${base}/auth/refresh`,
    handle(async (req, res) => {
      const body = await readJsonBody(req);
      const token = text(body, 'refreshToken', 256);
      const ip = clientIp(req);
      try {
        const next = await deps.tokens.refresh(token, (login) => deps.findUser(login)?.role);
        audit({ actor: next.login, action: 'user.refresh', outcome: 'ok', detail: { ip } });
        const { login: _l, role: _r, sid: _s, ...pair } = next;
        sendJson(res, 200, pair);
      } catch (err) {
        if (!(err instanceof TokenError)) throw err;
        audit({
          actor: 'unknown',
          action: 'user.refresh',
          outcome: 'denied',
          detail: { reason: err.code, ip },
        });
        throw new HttpError(401, `refresh token refused: ${err.code}`);
      }
    }),
  );

  app.post(
    `${base}/auth/logout`,
    handle(async (req, res) => {
      const ip = clientIp(req);
      if (hasBody(req)) {
        const token = text(await readJsonBody(req), 'refreshToken', 256);
        const login = await deps.tokens.logout(token);
        audit({
          actor: login ?? 'unknown',
          action: 'user.logout',
          outcome: login ? 'ok' : 'denied',
          detail: login ? { ip } : { reason: 'unknown-token', ip },
        });
        // Unknown or not, the token no longer works: say so the same way.
        sendJson(res, 204);
        return;
      }
      const ctx = await auth.authenticate(req);
      await deps.tokens.revokeSession(ctx.sid, 'logout');
      audit({ actor: ctx.login, action: 'user.logout', outcome: 'ok', detail: { ip } });
      sendJson(res, 204);
    }),
  );

  app.get(
    `${base}/auth/me`,
    handle(async (req, res) => {
      const ctx = await auth.authenticate(req);
      sendJson(res, 200, {
        login: ctx.login,
        name: ctx.name,
        role: ctx.role,
        scope: ctx.scope,
        exp: ctx.exp,
      });
    }),
  );

  return auth;
}
