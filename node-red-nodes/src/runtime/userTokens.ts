/**
 * User sessions: short access tokens (JWT HS256 via jose, 30 min) and rotating refresh tokens.
 *
 * A login starts a session ("family"). A refresh token is opaque (32 random bytes) and stored only as its
 * sha256; each refresh spends it and returns a new one. Presenting a spent token again means it leaked
 * (or a client raced itself): the whole family is revoked, so neither the thief's nor the user's
 * descendants work any more, and the reuse is audited. Logout revokes the family too. Access tokens
 * carry the family as `sid`, so a revoked session's access tokens stop at once on this instance.
 *
 * Families persist to one JSON file written atomically (tmp, fsync, rename, fsync dir): a restart keeps
 * sessions and a crash never leaves half a file. The key comes from Node-RED credentials or the
 * environment, never from a flow. The clock is injectable for tests.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { isRole, type Role } from '../core/assetModel';
import type { AuditSink } from '../core/auditEvent';
import { writeFileAtomic } from './spool';

export const ACCESS_TTL_S = 30 * 60;
export const REFRESH_TTL_S = 7 * 24 * 3600;
export const SESSION_MAX_S = 30 * 24 * 3600;
const ALG = 'HS256';
const TYP = 'at+jwt';
/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_LENGTH = 4096;

export interface UserTokensOptions {
  /** HS256 key of at least 32 bytes (text is taken as UTF-8): Node-RED credentials or env, never a flow. */
  secret: string | Uint8Array;
  issuer?: string;
  audience?: string;
  /** Access token lifetime, s (default 1800). */
  accessTtlS?: number;
  /** How long a refresh token stays usable if not used, s (default 7 days). */
  refreshTtlS?: number;
  /** Longest a session lives however often it refreshes, s (default 30 days). */
  sessionMaxS?: number;
  /** Where sessions persist (absent: in memory only). */
  storeFile?: string;
  /** Sessions kept per login; starting one more revokes the oldest (default 20). */
  maxSessionsPerUser?: number;
  /** Epoch ms (tests move it). */
  now?: () => number;
  /** Receives `user.token.reuse` when a spent refresh token comes back. */
  audit?: AuditSink;
}

/** What a verified access token says. */
export interface AccessClaims {
  login: string;
  role: Role;
  /** Session (refresh family) id. */
  sid: string;
  jti: string;
  /** Epoch seconds. */
  iat: number;
  exp: number;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  /** Seconds until the access token expires. */
  expiresIn: number;
  refreshExpiresIn: number;
}

export type TokenErrorCode =
  'malformed' | 'algorithm' | 'signature' | 'expired' | 'claims' | 'unknown' | 'revoked' | 'reused' | 'user';

/** Why a token was refused; `code` is safe to log and audit, never the token. */
export class TokenError extends Error {
  override name = 'TokenError';
  constructor(
    readonly code: TokenErrorCode,
    message: string,
  ) {
    super(message);
  }
}

interface Family {
  id: string;
  login: string;
  role: Role;
  /** Epoch ms. */
  created: number;
  /** Absolute end of the session, epoch ms. */
  expires: number;
  /** sha256 of the one live refresh token and when it lapses; null once revoked. */
  current: { hash: string; exp: number } | null;
  /** sha256 of every refresh token this family has spent. */
  spent: string[];
  revoked?: { at: number; reason: string };
}

interface StoreFile {
  version: 1;
  families: Family[];
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

export class UserTokens {
  private readonly key: Uint8Array;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly accessTtlS: number;
  private readonly refreshTtlMs: number;
  private readonly sessionMaxMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;
  private readonly families = new Map<string, Family>();
  /** sha256 of a refresh token (live or spent) → family id. */
  private readonly byHash = new Map<string, string>();
  private writeQueue: Promise<void> = Promise.resolve();
  private pendingWrite: Promise<void> | undefined;

  private constructor(private readonly options: UserTokensOptions) {
    this.key = typeof options.secret === 'string' ? new TextEncoder().encode(options.secret) : options.secret;
    if (this.key.length < 32) throw new Error('UserTokens: the signing secret must be at least 32 bytes');
    this.issuer = options.issuer ?? 'evtwin';
    this.audience = options.audience ?? 'evtwin-api';
    this.accessTtlS = options.accessTtlS ?? ACCESS_TTL_S;
    this.refreshTtlMs = (options.refreshTtlS ?? REFRESH_TTL_S) * 1000;
    this.sessionMaxMs = (options.sessionMaxS ?? SESSION_MAX_S) * 1000;
    this.maxSessions = options.maxSessionsPerUser ?? 20;
    this.now = options.now ?? Date.now;
  }

  /** Open the session store (reading the families a previous run left in storeFile). */
  static async open(options: UserTokensOptions): Promise<UserTokens> {
    const t = new UserTokens(options);
    if (options.storeFile) await t.load(options.storeFile);
    return t;
  }

  /** Start a session for a user whose password (or other proof) was checked: a new family. */
  async issue(user: { login: string; role: Role }): Promise<TokenPair> {
    const now = this.now();
    this.prune(now);
    const family: Family = {
      id: randomUUID(),
      login: user.login,
      role: user.role,
      created: now,
      expires: now + this.sessionMaxMs,
      current: null,
      spent: [],
    };
    this.families.set(family.id, family);
    const live = [...this.families.values()]
      .filter((f) => f.login === user.login && !f.revoked)
      .sort((a, b) => a.created - b.created);
    for (const old of live.slice(0, Math.max(0, live.length - this.maxSessions)))
      this.revokeFamily(old, now, 'too many sessions');
    return this.mint(family, now);
  }

  /**
   * Verify an access token: HS256 only (alg none and others refused), our signature, issuer, audience,
   * typ, not expired, sub and role present, session not revoked here. Throws TokenError.
   */
  async verifyAccess(token: unknown): Promise<AccessClaims> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH)
      throw new TokenError('malformed', 'access token missing or too long');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: [ALG],
        issuer: this.issuer,
        audience: this.audience,
        typ: TYP,
        requiredClaims: ['sub', 'iat', 'exp', 'jti'],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      throw classifyJoseError(err);
    }
    const { sub, role, sid, jti, iat, exp } = payload;
    if (typeof sub !== 'string' || !isRole(role) || typeof sid !== 'string' || typeof jti !== 'string')
      throw new TokenError('claims', 'access token lacks sub, role, sid or jti');
    if (typeof iat !== 'number' || typeof exp !== 'number') throw new TokenError('claims', 'bad iat or exp');
    if (this.families.get(sid)?.revoked) throw new TokenError('revoked', 'session was revoked');
    return { login: sub, role, sid, jti, iat, exp };
  }

  /**
   * Spend a refresh token and return the next pair. `currentRole` gives the user's role now (undefined:
   * the user is gone, which ends the session). A spent token revokes its family (TokenError 'reused').
   */
  async refresh(
    refreshToken: unknown,
    currentRole: (login: string) => Role | undefined,
  ): Promise<TokenPair & { login: string; role: Role; sid: string }> {
    const now = this.now();
    const family = this.familyOf(refreshToken);
    const hash = sha256(refreshToken as string);
    if (family.revoked) throw new TokenError('revoked', 'session was revoked');
    if (family.current?.hash !== hash) {
      // A spent token: someone holds a copy. End the session for everyone holding its descendants.
      this.revokeFamily(family, now, 'refresh token reuse');
      this.options.audit?.record({
        ts: now,
        actor: family.login,
        action: 'user.token.reuse',
        target: `session:${family.id}`,
        outcome: 'denied',
        detail: { reason: 'spent refresh token presented again; session revoked' },
      });
      await this.persist();
      throw new TokenError('reused', 'refresh token was already used; the session is revoked');
    }
    if (family.current.exp <= now || family.expires <= now) {
      this.revokeFamily(family, now, 'expired');
      await this.persist();
      throw new TokenError('expired', 'refresh token expired');
    }
    const role = currentRole(family.login);
    if (role === undefined) {
      this.revokeFamily(family, now, 'user removed');
      await this.persist();
      throw new TokenError('user', 'user no longer exists');
    }
    family.spent.push(hash);
    family.role = role;
    const pair = await this.mint(family, now);
    return { ...pair, login: family.login, role, sid: family.id };
  }

  /** End the session a refresh token belongs to. Returns its login, or undefined for an unknown token. */
  async logout(refreshToken: unknown): Promise<string | undefined> {
    let family: Family;
    try {
      family = this.familyOf(refreshToken);
    } catch {
      return undefined;
    }
    this.revokeFamily(family, this.now(), 'logout');
    await this.persist();
    return family.login;
  }

  /** End a session by id (an access token's sid). */
  async revokeSession(sid: string, reason = 'logout'): Promise<boolean> {
    const family = this.families.get(sid);
    if (!family || family.revoked) return false;
    this.revokeFamily(family, this.now(), reason);
    await this.persist();
    return true;
  }

  /** End every session of a login (password changed, user removed). Returns how many. */
  async revokeUser(login: string, reason = 'revoked'): Promise<number> {
    let n = 0;
    for (const f of this.families.values())
      if (f.login === login && !f.revoked) {
        this.revokeFamily(f, this.now(), reason);
        n++;
      }
    if (n > 0) await this.persist();
    return n;
  }

  /** Live sessions per login (for an admin view; no secrets). */
  sessions(login?: string): { sid: string; login: string; created: number; expires: number }[] {
    return [...this.families.values()]
      .filter((f) => !f.revoked && (login === undefined || f.login === login))
      .map((f) => ({ sid: f.id, login: f.login, created: f.created, expires: f.expires }));
  }

  /** Wait until every change so far is on disk. */
  async close(): Promise<void> {
    await this.writeQueue;
  }

  private familyOf(refreshToken: unknown): Family {
    if (typeof refreshToken !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(refreshToken))
      throw new TokenError('malformed', 'refresh token malformed');
    const id = this.byHash.get(sha256(refreshToken));
    const family = id === undefined ? undefined : this.families.get(id);
    if (!family) throw new TokenError('unknown', 'unknown refresh token');
    return family;
  }

  private async mint(family: Family, now: number): Promise<TokenPair> {
    const refreshToken = randomBytes(32).toString('base64url');
    const hash = sha256(refreshToken);
    const exp = Math.min(now + this.refreshTtlMs, family.expires);
    family.current = { hash, exp };
    this.byHash.set(hash, family.id);
    const iat = Math.floor(now / 1000);
    const accessToken = await new SignJWT({ role: family.role, sid: family.id })
      .setProtectedHeader({ alg: ALG, typ: TYP })
      .setSubject(family.login)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.accessTtlS)
      .setJti(randomUUID())
      .sign(this.key);
    await this.persist();
    return {
      accessToken,
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: this.accessTtlS,
      refreshExpiresIn: Math.floor((exp - now) / 1000),
    };
  }

  private revokeFamily(family: Family, now: number, reason: string): void {
    if (family.revoked) return;
    if (family.current) family.spent.push(family.current.hash);
    family.current = null;
    family.revoked = { at: now, reason };
  }

  /** Forget sessions that can no longer matter: ended and past every token's lifetime. */
  private prune(now: number): void {
    for (const f of this.families.values()) {
      const over = f.revoked ? f.revoked.at + this.refreshTtlMs : f.expires + this.refreshTtlMs;
      if (over < now) {
        this.families.delete(f.id);
        for (const h of f.spent) this.byHash.delete(h);
        if (f.current) this.byHash.delete(f.current.hash);
      }
    }
  }

  private async load(file: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const data = JSON.parse(text) as StoreFile;
    if (data.version !== 1 || !Array.isArray(data.families))
      throw new Error(`${file}: not an EVTwin session store (version 1)`);
    for (const f of data.families) {
      this.families.set(f.id, f);
      for (const h of f.spent) this.byHash.set(h, f.id);
      if (f.current) this.byHash.set(f.current.hash, f.id);
    }
    this.prune(this.now());
  }

  /** Coalesced atomic writes: every caller resolves once a write that includes its change is durable. */
  private persist(): Promise<void> {
    const file = this.options.storeFile;
    if (!file) return Promise.resolve();
    if (!this.pendingWrite) {
      const write = this.writeQueue.then(async () => {
        this.pendingWrite = undefined;
        const data: StoreFile = { version: 1, families: [...this.families.values()] };
        await writeFileAtomic(dirname(file), basename(file), JSON.stringify(data));
      });
      this.pendingWrite = write;
      this.writeQueue = write.catch(() => undefined);
    }
    return this.pendingWrite;
  }
}

function classifyJoseError(err: unknown): TokenError {
  if (err instanceof joseErrors.JWTExpired) return new TokenError('expired', 'access token expired');
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported)
    return new TokenError('algorithm', 'access token algorithm not allowed');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return new TokenError('signature', 'access token signature does not verify');
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return new TokenError('claims', `access token claim "${err.claim}" is not valid`);
  return new TokenError('malformed', 'access token malformed');
}
