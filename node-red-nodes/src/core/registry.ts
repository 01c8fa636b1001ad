/**
 * The device and charge-point registry, pure: state in, new state + audit events out. Persistence
 * lives in runtime/registryStore.ts, propagation between Node-RED instances in runtime/registrySync.ts.
 *
 * Credentials: a device token is `evt_` + 32 random bytes in base64url. Only SHA-256(token) is kept.
 * A fast unsalted hash is right here (unlike passwords): the token has 256 bits of entropy, so no
 * dictionary or brute force can invert the hash, and a per-message check stays microseconds.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuditEvent } from './auditEvent';
import { generateFernetKey } from './fernet';
import { mosquittoHash } from './mosquittoAuth';
import { ID_PATTERN } from './reading';

export const REGISTRY_FORMAT = 'evtwin-registry';
export const REGISTRY_VERSION = 1;
export const TOKEN_PREFIX = 'evt_';
/** `evt_` + base64url of 32 bytes (43 characters, no padding). */
export const TOKEN_PATTERN = /^evt_[A-Za-z0-9_-]{43}$/;
export const TOKEN_LENGTH = TOKEN_PREFIX.length + 43;
export const KID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export type EntryKind = 'device' | 'charge-point';
export const ENTRY_KINDS: readonly EntryKind[] = ['device', 'charge-point'];

export interface FernetKeyRecord {
  kid: string;
  /** url-safe base64, 32 bytes. A shared secret: the registry file must be readable only by the service. */
  key: string;
  createdAt: number;
  /** When a newer key replaced it; it is still accepted until `acceptUntil`. */
  retiredAt?: number;
  acceptUntil?: number;
}

export interface RegistryEntry {
  /** `<site>/<asset>`. */
  id: string;
  site: string;
  asset: string;
  kind: EntryKind;
  owner: string;
  name: string;
  /** hex SHA-256 of the token. */
  tokenHash: string;
  /** Mosquitto `$7$` PBKDF2 hash of the token (the device's MQTT password), for the broker's password file. */
  brokerHash?: string;
  /** Bumped on every credential change (token or key rotation, revocation): lets other instances notice. */
  credentialRevision: number;
  createdAt: number;
  updatedAt: number;
  revokedAt?: number;
  keys: FernetKeyRecord[];
}

export interface RegistryState {
  format: typeof REGISTRY_FORMAT;
  version: typeof REGISTRY_VERSION;
  /** Bumped on every change. */
  revision: number;
  entries: RegistryEntry[];
}

export const emptyRegistry = (): RegistryState => ({
  format: REGISTRY_FORMAT,
  version: REGISTRY_VERSION,
  revision: 0,
  entries: [],
});

export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(
    readonly code: 'bad-request' | 'not-found' | 'conflict',
    message: string,
  ) {
    super(message);
  }
}

export interface Change {
  state: RegistryState;
  events: AuditEvent[];
  entry: RegistryEntry;
}

export interface Ctx {
  now: number;
  /** Who asks: a user login, `cli:<user>` or `system`. */
  actor: string;
  random?: (n: number) => Buffer;
}

export const entryId = (site: string, asset: string): string => `${site}/${asset}`;
export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

export function newToken(random: (n: number) => Buffer = randomBytes): string {
  return TOKEN_PREFIX + random(32).toString('base64url');
}

function newKid(random: (n: number) => Buffer): string {
  return 'k' + random(6).toString('base64url');
}

/** What may leave the registry: no token hash, no keys (only their ids and dates). */
export interface PublicEntry {
  id: string;
  site: string;
  asset: string;
  kind: EntryKind;
  owner: string;
  name: string;
  createdAt: number;
  updatedAt: number;
  revokedAt?: number;
  credentialRevision: number;
  keys: { kid: string; createdAt: number; retiredAt?: number; acceptUntil?: number }[];
}

export function publicEntry(e: RegistryEntry): PublicEntry {
  const out: PublicEntry = {
    id: e.id,
    site: e.site,
    asset: e.asset,
    kind: e.kind,
    owner: e.owner,
    name: e.name,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
    credentialRevision: e.credentialRevision,
    keys: e.keys.map(({ key: _secret, ...rest }) => rest),
  };
  if (e.revokedAt !== undefined) out.revokedAt = e.revokedAt;
  return out;
}

const NAME_MAX = 200;

function text(value: unknown, field: string, pattern?: RegExp): string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new RegistryError('bad-request', `"${field}" must be a non-empty string`);
  const v = value.trim();
  if (v.length > NAME_MAX) throw new RegistryError('bad-request', `"${field}" is longer than ${NAME_MAX}`);
  if (pattern && !pattern.test(v))
    throw new RegistryError('bad-request', `"${field}" ${JSON.stringify(v)} must match ${pattern.source}`);
  return v;
}

function find(state: RegistryState, id: string): RegistryEntry {
  const e = state.entries.find((x) => x.id === id);
  if (!e) throw new RegistryError('not-found', `no device or charge point "${id}" in the registry`);
  return e;
}

function replace(state: RegistryState, entry: RegistryEntry): RegistryState {
  return {
    ...state,
    revision: state.revision + 1,
    entries: state.entries.map((e) => (e.id === entry.id ? entry : e)),
  };
}

function audit(ctx: Ctx, action: string, target: string, detail?: AuditEvent['detail']): AuditEvent {
  const ev: AuditEvent = { ts: ctx.now, actor: ctx.actor, action, target, outcome: 'ok' };
  if (detail) ev.detail = detail;
  return ev;
}

export interface RegisterRequest {
  site?: unknown;
  asset?: unknown;
  kind?: unknown;
  owner?: unknown;
  name?: unknown;
  /** Give the entry a Fernet key; default: yes for charge points. */
  withKey?: unknown;
}

export interface Registered extends Change {
  /** The device token: shown once, never stored. */
  token: string;
  /** The first Fernet key, when one was made: shown once (the registry keeps it to decrypt). */
  key?: { kid: string; key: string };
}

export function register(state: RegistryState, req: RegisterRequest, ctx: Ctx): Registered {
  const random = ctx.random ?? randomBytes;
  if (typeof req !== 'object' || req === null)
    throw new RegistryError('bad-request', 'body must be an object');
  const site = text(req.site, 'site', ID_PATTERN);
  const asset = text(req.asset, 'asset', ID_PATTERN);
  const kind = req.kind === undefined ? 'device' : req.kind;
  if (typeof kind !== 'string' || !ENTRY_KINDS.includes(kind as EntryKind))
    throw new RegistryError('bad-request', `"kind" must be one of ${ENTRY_KINDS.join(', ')}`);
  const owner = text(req.owner, 'owner');
  const name = req.name === undefined ? asset : text(req.name, 'name');
  if (req.withKey !== undefined && typeof req.withKey !== 'boolean')
    throw new RegistryError('bad-request', '"withKey" must be true or false');
  const withKey = req.withKey ?? kind === 'charge-point';
  const id = entryId(site, asset);
  if (state.entries.some((e) => e.id === id))
    throw new RegistryError('conflict', `"${id}" is already registered (rotate its token instead)`);
  const token = newToken(random);
  const keys: FernetKeyRecord[] = [];
  if (withKey) keys.push({ kid: newKid(random), key: generateFernetKey(random), createdAt: ctx.now });
  const entry: RegistryEntry = {
    id,
    site,
    asset,
    kind: kind as EntryKind,
    owner,
    name,
    tokenHash: hashToken(token),
    brokerHash: mosquittoHash(token, random(12)),
    credentialRevision: 1,
    createdAt: ctx.now,
    updatedAt: ctx.now,
    keys,
  };
  const next: RegistryState = { ...state, revision: state.revision + 1, entries: [...state.entries, entry] };
  const out: Registered = {
    state: next,
    entry,
    token,
    events: [audit(ctx, 'registry.register', id, { kind: entry.kind, owner })],
  };
  if (keys[0]) out.key = { kid: keys[0].kid, key: keys[0].key };
  return out;
}

export function rename(state: RegistryState, id: string, name: unknown, ctx: Ctx): Change {
  const e = find(state, id);
  const entry = { ...e, name: text(name, 'name'), updatedAt: ctx.now };
  return {
    state: replace(state, entry),
    entry,
    events: [audit(ctx, 'registry.rename', id, { name: entry.name })],
  };
}

export function rotateToken(state: RegistryState, id: string, ctx: Ctx): Change & { token: string } {
  const e = find(state, id);
  if (e.revokedAt !== undefined)
    throw new RegistryError('conflict', `"${id}" is revoked; register it again under a new asset id`);
  const token = newToken(ctx.random ?? randomBytes);
  const entry: RegistryEntry = {
    ...e,
    tokenHash: hashToken(token),
    brokerHash: mosquittoHash(token, (ctx.random ?? randomBytes)(12)),
    credentialRevision: e.credentialRevision + 1,
    updatedAt: ctx.now,
  };
  return { state: replace(state, entry), entry, token, events: [audit(ctx, 'registry.rotate-token', id)] };
}

export function revoke(state: RegistryState, id: string, ctx: Ctx): Change {
  const e = find(state, id);
  if (e.revokedAt !== undefined) throw new RegistryError('conflict', `"${id}" is already revoked`);
  const entry = {
    ...e,
    revokedAt: ctx.now,
    credentialRevision: e.credentialRevision + 1,
    updatedAt: ctx.now,
  };
  return { state: replace(state, entry), entry, events: [audit(ctx, 'registry.revoke', id)] };
}

/**
 * A new current Fernet key; the previous current key stays valid for `graceMs` (0 = revoke it now).
 * Keys past their grace lose their secret.
 */
export function rotateKey(
  state: RegistryState,
  id: string,
  graceMs: number,
  ctx: Ctx,
): Change & { key: { kid: string; key: string } } {
  const e = find(state, id);
  if (e.revokedAt !== undefined) throw new RegistryError('conflict', `"${id}" is revoked`);
  if (!Number.isFinite(graceMs) || graceMs < 0)
    throw new RegistryError('bad-request', '"graceS" must be a non-negative number');
  const random = ctx.random ?? randomBytes;
  const fresh: FernetKeyRecord = { kid: newKid(random), key: generateFernetKey(random), createdAt: ctx.now };
  // Keys past their grace keep their id (so a late message says "expired-key") but lose the secret.
  const kept = e.keys
    .map((k) =>
      k.retiredAt === undefined ? { ...k, retiredAt: ctx.now, acceptUntil: ctx.now + graceMs } : k,
    )
    .map((k) => ((k.acceptUntil ?? Infinity) <= ctx.now ? { ...k, key: '' } : k));
  const entry = {
    ...e,
    keys: [...kept, fresh],
    credentialRevision: e.credentialRevision + 1,
    updatedAt: ctx.now,
  };
  return {
    state: replace(state, entry),
    entry,
    key: { kid: fresh.kid, key: fresh.key },
    events: [audit(ctx, 'registry.rotate-key', id, { kid: fresh.kid, graceS: Math.round(graceMs / 1000) })],
  };
}

/** Validate a parsed registry file; throws an Error naming the first problem. */
export function validateRegistry(value: unknown): RegistryState {
  const bad = (why: string): never => {
    throw new Error(`not a valid registry: ${why}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('expected an object');
  const s = value as Partial<RegistryState>;
  if (s.format !== REGISTRY_FORMAT) return bad(`"format" must be "${REGISTRY_FORMAT}"`);
  if (s.version !== REGISTRY_VERSION)
    return bad(`unsupported version ${JSON.stringify(s.version)} (this build reads ${REGISTRY_VERSION})`);
  if (typeof s.revision !== 'number' || !Number.isSafeInteger(s.revision))
    return bad('"revision" must be an integer');
  if (!Array.isArray(s.entries)) return bad('"entries" must be an array');
  const ids = new Set<string>();
  s.entries.forEach((e: Partial<RegistryEntry>, i) => {
    const where = `entries[${i}]`;
    if (typeof e !== 'object' || e === null) bad(`${where} is not an object`);
    for (const f of ['id', 'site', 'asset', 'owner', 'name', 'tokenHash'] as const)
      if (typeof e[f] !== 'string') bad(`${where}.${f} must be a string`);
    if (!ENTRY_KINDS.includes(e.kind as EntryKind))
      bad(`${where}.kind is not one of ${ENTRY_KINDS.join(', ')}`);
    if (!/^[0-9a-f]{64}$/.test(e.tokenHash as string)) bad(`${where}.tokenHash is not a hex SHA-256`);
    if (e.id !== entryId(e.site as string, e.asset as string)) bad(`${where}.id must be "<site>/<asset>"`);
    if (ids.has(e.id as string)) bad(`${where}.id "${e.id}" appears twice`);
    ids.add(e.id as string);
    if (e.brokerHash !== undefined && typeof e.brokerHash !== 'string')
      bad(`${where}.brokerHash must be a string`);
    for (const f of ['createdAt', 'updatedAt', 'credentialRevision'] as const)
      if (typeof e[f] !== 'number') bad(`${where}.${f} must be a number`);
    if (e.revokedAt !== undefined && typeof e.revokedAt !== 'number')
      bad(`${where}.revokedAt must be a number`);
    if (!Array.isArray(e.keys)) bad(`${where}.keys must be an array`);
    (e.keys as FernetKeyRecord[]).forEach((k, j) => {
      if (typeof k?.kid !== 'string' || !KID_PATTERN.test(k.kid)) bad(`${where}.keys[${j}].kid is invalid`);
      if (typeof k.key !== 'string') bad(`${where}.keys[${j}].key must be a string`);
    });
  });
  return value as RegistryState;
}

// ---- verification -------------------------------------------------------------------------------

export type TokenVerdict =
  | { ok: true; entry: RegistryEntry }
  | { ok: false; reason: 'missing' | 'malformed' | 'unknown' | 'revoked' | 'wrong-device' };

export type KeyVerdict =
  | { ok: true; entry: RegistryEntry; key: FernetKeyRecord }
  | { ok: false; reason: 'unknown' | 'revoked' | 'wrong-device' | 'unknown-key' | 'expired-key' };

/** Lookups built once per registry revision, so a check is a hash and two map reads. */
export interface RegistryIndex {
  readonly state: RegistryState;
  byId: Map<string, RegistryEntry>;
  byTokenHash: Map<string, string>;
  byKid: Map<string, { id: string; key: FernetKeyRecord }>;
}

export function indexRegistry(state: RegistryState): RegistryIndex {
  const byId = new Map<string, RegistryEntry>();
  const byTokenHash = new Map<string, string>();
  const byKid = new Map<string, { id: string; key: FernetKeyRecord }>();
  for (const e of state.entries) {
    byId.set(e.id, e);
    byTokenHash.set(e.tokenHash, e.id);
    for (const k of e.keys) byKid.set(k.kid, { id: e.id, key: k });
  }
  return { state, byId, byTokenHash, byKid };
}

/** Strip an optional `Bearer ` prefix from an `authorization` value. */
export function credentialOf(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return value.startsWith('Bearer ') ? value.slice(7) : value;
}

/** Is `token` the current credential of `<site>/<asset>`? Hashes compared in constant time. */
export function verifyToken(index: RegistryIndex, token: unknown, site: string, asset: string): TokenVerdict {
  if (token === undefined || token === null || token === '') return { ok: false, reason: 'missing' };
  // Length first: an oversized value never reaches the regex or the hash.
  if (typeof token !== 'string' || token.length !== TOKEN_LENGTH || !TOKEN_PATTERN.test(token))
    return { ok: false, reason: 'malformed' };
  const hash = hashToken(token);
  const entry = index.byId.get(entryId(site, asset));
  if (entry && timingSafeEqual(Buffer.from(hash, 'hex'), Buffer.from(entry.tokenHash, 'hex'))) {
    return entry.revokedAt !== undefined ? { ok: false, reason: 'revoked' } : { ok: true, entry };
  }
  // Not this device's token: say whether it is someone else's (a misconfigured or stolen device).
  return index.byTokenHash.has(hash)
    ? { ok: false, reason: 'wrong-device' }
    : { ok: false, reason: 'unknown' };
}

/** Which key of `<site>/<asset>` a Fernet key id names, if it may still be used at `now`. */
export function keyFor(
  index: RegistryIndex,
  kid: unknown,
  site: string,
  asset: string,
  now: number,
): KeyVerdict {
  const entry = index.byId.get(entryId(site, asset));
  if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) return { ok: false, reason: 'unknown-key' };
  const hit = index.byKid.get(kid);
  if (!entry) return hit ? { ok: false, reason: 'wrong-device' } : { ok: false, reason: 'unknown' };
  if (entry.revokedAt !== undefined) return { ok: false, reason: 'revoked' };
  if (!hit) return { ok: false, reason: 'unknown-key' };
  if (hit.id !== entry.id) return { ok: false, reason: 'wrong-device' };
  if (hit.key.key === '' || (hit.key.acceptUntil !== undefined && hit.key.acceptUntil <= now))
    return { ok: false, reason: 'expired-key' };
  return { ok: true, entry, key: hit.key };
}
