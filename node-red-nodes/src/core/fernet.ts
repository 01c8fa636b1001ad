/**
 * Fernet (https://github.com/fernet/spec/blob/master/Spec.md), interoperable with Python's
 * `cryptography.fernet`: token = base64url(0x80 ‖ ts(u64 BE seconds) ‖ IV(16) ‖ AES-128-CBC(PKCS7) ‖
 * HMAC-SHA256(everything before it)), with padding. Key = base64url(32 bytes): signing key ‖ encryption key.
 * Pure apart from node:crypto; the clock and the IV source are parameters so tests can pin them.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const VERSION = 0x80;
const HEADER = 1 + 8 + 16;
const MAC = 32;
/** Python's cryptography refuses tokens more than 60 s in the future; so do we. */
export const FERNET_MAX_CLOCK_SKEW_S = 60;
/** Longest token text we look at: an oversized token is refused before any decoding. */
export const FERNET_MAX_TOKEN_CHARS = 64 * 1024;

export type FernetFailure = 'malformed' | 'tampered' | 'expired' | 'future';

export class FernetError extends Error {
  override name = 'FernetError';
  constructor(
    readonly code: FernetFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface FernetKey {
  signing: Buffer;
  encryption: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** url-safe base64 with padding, as Python's `base64.urlsafe_b64encode` writes it. */
export function b64urlEncode(buf: Buffer): string {
  return buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** Strict url-safe base64 decoding (padding optional); undefined when the text is not base64url. */
export function b64urlDecode(text: string): Buffer | undefined {
  if (!B64URL.test(text) || text.replace(/=+$/, '').length % 4 === 1) return undefined;
  return Buffer.from(text.replace(/=+$/, ''), 'base64url');
}

export function generateFernetKey(random: (n: number) => Buffer = randomBytes): string {
  return b64urlEncode(random(32));
}

export function parseFernetKey(key: string): FernetKey {
  const raw = typeof key === 'string' ? b64urlDecode(key) : undefined;
  if (!raw || raw.length !== 32) throw new Error('a Fernet key must be 32 bytes in url-safe base64');
  return { signing: raw.subarray(0, 16), encryption: raw.subarray(16) };
}

const asKey = (key: string | FernetKey): FernetKey => (typeof key === 'string' ? parseFernetKey(key) : key);

export function fernetEncrypt(
  key: string | FernetKey,
  plaintext: Buffer | string,
  nowMs: number = Date.now(),
  iv: Buffer = randomBytes(16),
): string {
  const k = asKey(key);
  if (iv.length !== 16) throw new Error('IV must be 16 bytes');
  const cipher = createCipheriv('aes-128-cbc', k.encryption, iv);
  const data = Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext, 'utf8');
  const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
  const head = Buffer.alloc(9);
  head[0] = VERSION;
  head.writeBigUInt64BE(BigInt(Math.floor(nowMs / 1000)), 1);
  const body = Buffer.concat([head, iv, ciphertext]);
  const mac = createHmac('sha256', k.signing).update(body).digest();
  return b64urlEncode(Buffer.concat([body, mac]));
}

export interface FernetOpened {
  plaintext: Buffer;
  /** The token's timestamp, epoch seconds. */
  timestamp: number;
  /** The token's HMAC: unique per token, a good key for replay detection. */
  mac: Buffer;
}

/**
 * Verify (constant-time HMAC check) and decrypt. `ttlS` undefined means no age limit. Throws
 * FernetError with a code: malformed (not a token), tampered (HMAC fails: wrong key or changed
 * bytes), expired (older than the TTL), future (more than 60 s ahead of the clock).
 */
export function fernetDecrypt(
  key: string | FernetKey,
  token: string,
  ttlS?: number,
  nowMs: number = Date.now(),
): FernetOpened {
  const k = asKey(key);
  if (typeof token !== 'string' || token.length === 0) throw new FernetError('malformed', 'token is empty');
  if (token.length > FERNET_MAX_TOKEN_CHARS)
    throw new FernetError('malformed', `token is longer than ${FERNET_MAX_TOKEN_CHARS} characters`);
  const raw = b64urlDecode(token);
  if (!raw) throw new FernetError('malformed', 'token is not url-safe base64');
  if (raw.length < HEADER + 16 + MAC || (raw.length - HEADER - MAC) % 16 !== 0)
    throw new FernetError('malformed', `token has an impossible length (${raw.length} bytes)`);
  if (raw[0] !== VERSION)
    throw new FernetError('malformed', `unknown Fernet version 0x${raw[0]?.toString(16)}`);
  const body = raw.subarray(0, raw.length - MAC);
  const mac = raw.subarray(raw.length - MAC);
  const expected = createHmac('sha256', k.signing).update(body).digest();
  if (!timingSafeEqual(mac, expected)) throw new FernetError('tampered', 'HMAC does not match');
  const timestamp = Number(raw.readBigUInt64BE(1));
  const now = Math.floor(nowMs / 1000);
  if (ttlS !== undefined && timestamp + ttlS < now)
    throw new FernetError('expired', `token is ${now - timestamp} s old, over the TTL of ${ttlS} s`);
  if (timestamp > now + FERNET_MAX_CLOCK_SKEW_S)
    throw new FernetError('future', `token is ${timestamp - now} s in the future`);
  const decipher = createDecipheriv('aes-128-cbc', k.encryption, raw.subarray(9, HEADER));
  let plaintext: Buffer;
  try {
    plaintext = Buffer.concat([decipher.update(raw.subarray(HEADER, raw.length - MAC)), decipher.final()]);
  } catch {
    // Only reachable with a correct HMAC, i.e. a sender holding the key that padded wrongly.
    throw new FernetError('tampered', 'bad padding');
  }
  return { plaintext, timestamp, mac: Buffer.from(mac) };
}

/** The encrypted telemetry envelope (DESIGN.md, "Contracts"). */
export interface FernetEnvelope {
  enc: 'fernet';
  kid: string;
  token: string;
}

export function isFernetEnvelope(value: unknown): value is FernetEnvelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return (value as { enc?: unknown }).enc === 'fernet';
}

/** Seal a telemetry payload (any JSON value) for a device key. */
export function sealTelemetry(
  kid: string,
  key: string | FernetKey,
  payload: unknown,
  nowMs?: number,
): FernetEnvelope {
  return { enc: 'fernet', kid, token: fernetEncrypt(key, JSON.stringify(payload), nowMs) };
}
