/**
 * The auth gate, pure: one raw MQTT message (topic, payload, user properties) → either a verified
 * identity with the parsed, decrypted payload (credential removed), or a rejection with a reason.
 * It runs before ingest, because an encrypted payload must be opened before it can be decoded; ingest
 * accepts the parsed body as is, so nothing is parsed twice.
 */
import { FernetError, fernetDecrypt, isFernetEnvelope } from './fernet';
import { credentialOf, keyFor, verifyToken, entryId, type EntryKind, type RegistryIndex } from './registry';
import {
  FailureThrottle,
  ReplayGuard,
  type ReplayFacts,
  type ReplayOptions,
  type ThrottleOptions,
} from './replay';
import type { TopicTemplate } from './topics';

export type AuthRejectReason =
  | 'bad-topic'
  | 'unavailable'
  | 'missing'
  | 'malformed'
  | 'unknown'
  | 'revoked'
  | 'wrong-device'
  | 'unknown-key'
  | 'expired-key'
  | 'tampered'
  | 'expired'
  | 'replayed'
  | 'throttled';

/** The verified identity put on the message (`msg.evtwin.identity`): later nodes trust this, not the topic. */
export interface Identity {
  site: string;
  asset: string;
  owner: string;
  kind: EntryKind;
  /** How the device proved itself. */
  via: 'token' | 'fernet';
}

export type AuthResult =
  | { ok: true; identity: Identity; body: unknown }
  | { ok: false; reason: AuthRejectReason; detail: string; device?: string };

export interface AuthGateOptions {
  template: TopicTemplate;
  defaultSite?: string;
  /** Fernet TTL in seconds (0 = no limit). */
  ttlS: number;
  maxBytes: number;
  replay: ReplayOptions;
  throttle: ThrottleOptions;
}

export interface AuthInput {
  topic?: unknown;
  payload?: unknown;
  userProperties?: unknown;
  /**
   * The broker delivers this message again (MQTT DUP, which a broker sets on its own redeliveries and
   * never passes on from a publisher): it was checked before, perhaps not stored (a crash, a full
   * spool), so the replay check lets it through. InfluxDB keeps one point per series and time.
   */
  redelivered?: boolean;
}

const toMs = (ts: unknown): number | undefined => {
  if (typeof ts === 'number' && Number.isFinite(ts)) return ts < 100_000_000_000 ? ts * 1000 : ts;
  if (typeof ts === 'string') {
    const t = Date.parse(ts);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
};

function replayItems(body: unknown): ReplayFacts['items'] {
  const list = Array.isArray(body) ? body : [body];
  return list.map((x) => {
    const item = typeof x === 'object' && x !== null ? (x as { seq?: unknown; ts?: unknown }) : {};
    const out: { seq?: number; ts?: number } = {};
    if (typeof item.seq === 'number' && Number.isSafeInteger(item.seq)) out.seq = item.seq;
    const ts = toMs(item.ts);
    if (ts !== undefined) out.ts = ts;
    return out;
  });
}

export class AuthGate {
  private readonly replay: ReplayGuard;
  private readonly throttle: FailureThrottle;
  constructor(private readonly opts: AuthGateOptions) {
    this.replay = new ReplayGuard(opts.replay);
    this.throttle = new FailureThrottle(opts.throttle);
  }

  check(input: AuthInput, index: RegistryIndex | undefined, now: number): AuthResult {
    const topic = typeof input.topic === 'string' ? input.topic : '';
    const fields = this.opts.template.match(topic);
    const site = fields?.site ?? this.opts.defaultSite;
    if (!fields?.asset || !site)
      return {
        ok: false,
        reason: 'bad-topic',
        detail: `topic "${topic}" does not fit "${this.opts.template.template}"`,
      };
    const device = entryId(site, fields.asset);
    if (this.throttle.throttled(device, now))
      return { ok: false, reason: 'throttled', detail: 'too many failures from this device', device };
    const result = this.verify(input, index, site, fields.asset, device, now);
    if (!result.ok) this.throttle.failure(device, now);
    return result;
  }

  private verify(
    input: AuthInput,
    index: RegistryIndex | undefined,
    site: string,
    asset: string,
    device: string,
    now: number,
  ): AuthResult {
    const fail = (reason: AuthRejectReason, detail: string): AuthResult => ({
      ok: false,
      reason,
      detail,
      device,
    });
    if (!index) return fail('unavailable', 'the registry is not loaded');
    const parsed = this.parse(input.payload);
    if (typeof parsed === 'string') return fail('malformed', parsed);

    const props = input.userProperties;
    const rawAuth =
      typeof props === 'object' && props !== null
        ? (props as Record<string, unknown>).authorization
        : undefined;
    if (rawAuth !== undefined && typeof rawAuth !== 'string')
      return fail('malformed', 'user property "authorization" must be one string');
    const headerToken = credentialOf(rawAuth);

    let body: unknown = parsed;
    let fernet: ReplayFacts['fernet'];
    let identityOwner: { owner: string; kind: EntryKind };
    let via: Identity['via'];
    if (isFernetEnvelope(parsed)) {
      const k = keyFor(index, parsed.kid, site, asset, now);
      if (!k.ok) return fail(k.reason, `key id ${JSON.stringify(parsed.kid).slice(0, 80)}`);
      if (typeof parsed.token !== 'string') return fail('malformed', 'envelope "token" must be a string');
      try {
        const opened = fernetDecrypt(k.key.key, parsed.token, this.opts.ttlS || undefined, now);
        fernet = { mac: opened.mac.toString('hex'), tsMs: opened.timestamp * 1000 };
        const inner = this.parse(opened.plaintext);
        if (typeof inner === 'string') return fail('malformed', `decrypted ${inner}`);
        body = inner;
      } catch (err) {
        if (err instanceof FernetError)
          return fail(err.code === 'future' ? 'expired' : err.code, `Fernet: ${err.message}`);
        throw err;
      }
      // The key authenticates the sender; a token, when sent as well, must also be right.
      if (headerToken !== undefined) {
        const v = verifyToken(index, headerToken, site, asset);
        if (!v.ok) return fail(v.reason, 'token beside the envelope');
      }
      identityOwner = k.entry;
      via = 'fernet';
    } else {
      const inBody =
        typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && 'token' in parsed
          ? (parsed as { token: unknown }).token
          : undefined;
      const v = verifyToken(index, headerToken ?? inBody, site, asset);
      if (!v.ok)
        return fail(
          v.reason,
          headerToken !== undefined ? 'user property "authorization"' : 'payload "token"',
        );
      if (inBody !== undefined) {
        const { token: _credential, ...rest } = parsed as Record<string, unknown>;
        body = rest;
      }
      identityOwner = v.entry;
      via = 'token';
    }

    const facts: ReplayFacts = { items: replayItems(body) };
    if (fernet) facts.fernet = fernet;
    const replayed = input.redelivered === true ? undefined : this.replay.check(device, facts, now);
    if (replayed) return fail('replayed', replayed);
    this.replay.commit(device, facts, now);
    return {
      ok: true,
      identity: { site, asset, owner: identityOwner.owner, kind: identityOwner.kind, via },
      body,
    };
  }

  /** JSON from a Buffer/string (size-limited) or an already parsed object; a string explains a failure. */
  private parse(payload: unknown): unknown {
    if (Buffer.isBuffer(payload) || typeof payload === 'string') {
      const size = Buffer.isBuffer(payload) ? payload.length : Buffer.byteLength(payload);
      if (size > this.opts.maxBytes) return `payload is ${size} bytes, over ${this.opts.maxBytes}`;
      try {
        const v: unknown = JSON.parse(payload.toString());
        return typeof v === 'string' ? 'payload is a JSON string, not telemetry' : v;
      } catch {
        return 'payload is not JSON';
      }
    }
    if (typeof payload === 'object' && payload !== null) return payload;
    return `payload is ${payload === null ? 'null' : typeof payload}`;
  }

  /** Forget a device's replay window (after its token is rotated or it is re-registered). */
  forget(device: string): void {
    this.replay.forget(device);
  }
}
