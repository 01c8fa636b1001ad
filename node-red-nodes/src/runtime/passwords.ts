/**
 * Password hashes with scrypt (node:crypto, no native addon): `scrypt$N$r$p$salt$hash`, salt and hash in
 * base64url, so the parameters travel with each hash and can be raised later (needsRehash). Comparison is
 * constant-time; verifying for an unknown user costs the same as for a known one (no user enumeration by
 * timing).
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** ~50-100 ms and 32 MiB per hash on a 2020s core (OWASP's scrypt minimum is N=2^17 r=8 p=1 at 128 MiB; raise it where memory allows). */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
/** Longer inputs are refused before hashing (scrypt's cost does not depend on it, but bodies should stay small). */
export const MAX_PASSWORD_BYTES = 1024;
// Bounds on parameters read from a hash, so a crafted hash cannot make verify allocate gigabytes.
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

export class PasswordHashError extends Error {
  override name = 'PasswordHashError';
}

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = {
    N: params.N,
    r: params.r,
    p: params.p,
    // Node refuses above 32 MiB by default; allow what the parameters need (128 * N * r) with headroom.
    maxmem: 256 * params.N * params.r + 1024 * 1024,
  };
  return new Promise((resolve, reject) =>
    scryptCallback(password.normalize('NFC'), salt, KEY_LENGTH, options, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

function checkParams(params: ScryptParams): void {
  const { N, r, p } = params;
  if (!Number.isSafeInteger(N) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0)
    throw new PasswordHashError(`scrypt N must be a power of two in 2..${MAX_N}`);
  if (!Number.isSafeInteger(r) || r < 1 || r > MAX_R)
    throw new PasswordHashError(`scrypt r must be in 1..${MAX_R}`);
  if (!Number.isSafeInteger(p) || p < 1 || p > MAX_P)
    throw new PasswordHashError(`scrypt p must be in 1..${MAX_P}`);
}

function checkPassword(password: string): void {
  if (typeof password !== 'string' || password.length === 0) throw new PasswordHashError('empty password');
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES)
    throw new PasswordHashError(`password longer than ${MAX_PASSWORD_BYTES} bytes`);
}

/** A new salted hash of the password, `scrypt$N$r$p$salt$hash`. */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  checkPassword(password);
  checkParams(params);
  const salt = randomBytes(SALT_LENGTH);
  const key = await scrypt(password, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

/** Parse a stored hash; throws PasswordHashError when it is not one of ours (or its parameters are out of bounds). */
export function parsePasswordHash(stored: string): ParsedHash {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt')
    throw new PasswordHashError('not a scrypt hash (scrypt$N$r$p$salt$hash)');
  const [, n, r, p, salt, key] = parts as [string, string, string, string, string, string];
  const num = (s: string): number => (/^\d{1,8}$/.test(s) ? Number(s) : NaN);
  const params = { N: num(n), r: num(r), p: num(p) };
  checkParams(params);
  const saltBuf = Buffer.from(salt, 'base64url');
  const keyBuf = Buffer.from(key, 'base64url');
  if (saltBuf.length < 8 || keyBuf.length !== KEY_LENGTH || !/^[A-Za-z0-9_-]+$/.test(salt + key))
    throw new PasswordHashError('bad salt or hash in scrypt hash');
  return { params, salt: saltBuf, key: keyBuf };
}

/**
 * Does the password match the stored hash? False for a wrong password, an over-long one or a hash that
 * does not parse (which it reports only as "no": a broken entry must not open a door).
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  let parsed: ParsedHash;
  try {
    checkPassword(password);
    parsed = parsePasswordHash(stored);
  } catch {
    await dummyVerify();
    return false;
  }
  const key = await scrypt(password, parsed.salt, parsed.params);
  return timingSafeEqual(key, parsed.key);
}

let dummy: Promise<ParsedHash> | undefined;

/**
 * Spend the time of one verification with the default parameters and answer nothing: call it when the
 * login is unknown (or has no password), so its answer takes as long as a wrong password.
 */
export async function dummyVerify(password = 'x'): Promise<false> {
  dummy ??= hashPassword('evtwin-dummy-password').then(parsePasswordHash);
  const d = await dummy;
  const key = await scrypt(password.slice(0, MAX_PASSWORD_BYTES) || 'x', d.salt, d.params);
  timingSafeEqual(key, d.key);
  return false;
}

/** Verify a login attempt against a user who may not exist or may have no password: same cost either way. */
export async function verifyUserPassword(
  user: { passwordHash?: string | undefined } | undefined,
  password: string,
): Promise<boolean> {
  if (!user?.passwordHash) return dummyVerify(typeof password === 'string' ? password : 'x');
  return verifyPassword(password, user.passwordHash);
}

/** True when the hash was made with parameters other than `params` (rehash it at the next successful login). */
export function needsRehash(stored: string, params: ScryptParams = DEFAULT_SCRYPT): boolean {
  try {
    const p = parsePasswordHash(stored).params;
    return p.N !== params.N || p.r !== params.r || p.p !== params.p;
  } catch {
    return true;
  }
}
