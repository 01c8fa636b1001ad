/**
 * Per-device anti-replay, failure throttling and rejection aggregation for the auth gate. Pure
 * in-memory state (no I/O, the clock is a parameter), bounded in size so a flood of made-up
 * device ids cannot exhaust memory.
 */
/** A Map that forgets its oldest key beyond `max` entries. */
class BoundedMap<V> extends Map<string, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(key: string, value: V): this {
    if (!this.has(key) && this.size >= this.max) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}

export interface ReplayOptions {
  /** How far behind the highest seq an unseen seq is still accepted (out-of-order delivery). */
  seqWindow: number;
  /** Without seq: how far behind the newest accepted ts a message is still accepted. */
  tsWindowMs: number;
  /** Fernet TTL (+ clock skew): how long a token's MAC must be remembered. */
  fernetMemoryMs: number;
  maxDevices: number;
}

export const DEFAULT_REPLAY: ReplayOptions = {
  seqWindow: 256,
  tsWindowMs: 5_000,
  fernetMemoryMs: 120_000,
  maxDevices: 100_000,
};

interface DeviceWindow {
  maxSeq: number;
  seen: Set<number>;
  maxTs: number;
  /** ts of the first message after the device's last reboot: anything older is from before it. */
  floorTs: number;
  /** Fernet MACs seen (hex) → when they can be forgotten. */
  macs: Map<string, number>;
}

/** The facts of one message the replay check needs. */
export interface ReplayFacts {
  /** seq and ts of each telemetry item (ts in epoch ms; undefined when the item has none). */
  items: { seq?: number; ts?: number }[];
  /** The Fernet token's HMAC (hex) and timestamp (ms), for encrypted messages. */
  fernet?: { mac: string; tsMs: number };
}

/**
 * A message is a replay when:
 * - it is a Fernet token already seen (exact, as long as the TTL lets the token live), or
 * - an item's seq was already accepted, or is more than `seqWindow` behind the highest — unless its
 *   ts is newer than anything accepted (a rebooted device restarting its seq at 0; from then on,
 *   anything older than that first message is refused), or
 * - an item without seq is more than `tsWindowMs` older than the newest accepted ts.
 * `check` does not remember anything; `commit` does, after the rest of the message passed.
 */
export class ReplayGuard {
  private readonly devices: BoundedMap<DeviceWindow>;
  constructor(private readonly opts: ReplayOptions = DEFAULT_REPLAY) {
    this.devices = new BoundedMap(opts.maxDevices);
  }

  check(device: string, facts: ReplayFacts, now: number): string | undefined {
    const w = this.devices.get(device);
    if (!w) return undefined;
    if (facts.fernet) {
      const until = w.macs.get(facts.fernet.mac);
      if (until !== undefined && until > now) return 'Fernet token already seen';
    }
    const batch = new Set<number>();
    for (const item of facts.items) {
      if (item.ts !== undefined && item.ts < w.floorTs)
        return `ts ${item.ts} is from before the device restarted`;
      const newer = item.ts !== undefined && item.ts > w.maxTs;
      if (item.seq !== undefined) {
        if (batch.has(item.seq)) return `seq ${item.seq} appears twice in the message`;
        batch.add(item.seq);
        if (newer) continue;
        if (w.seen.has(item.seq)) return `seq ${item.seq} was already accepted`;
        if (item.seq <= w.maxSeq - this.opts.seqWindow)
          return `seq ${item.seq} is more than ${this.opts.seqWindow} behind ${w.maxSeq}`;
      } else if (item.ts !== undefined && item.ts < w.maxTs - this.opts.tsWindowMs) {
        return `ts ${item.ts} is more than ${this.opts.tsWindowMs} ms behind the newest accepted`;
      }
    }
    return undefined;
  }

  commit(device: string, facts: ReplayFacts, now: number): void {
    let w = this.devices.get(device);
    if (!w) {
      w = { maxSeq: -1, seen: new Set(), maxTs: -Infinity, floorTs: -Infinity, macs: new Map() };
      this.devices.set(device, w);
    }
    for (const item of facts.items) {
      if (item.seq !== undefined) {
        const restarted =
          item.ts !== undefined && item.ts > w.maxTs && item.seq <= w.maxSeq - this.opts.seqWindow;
        if (restarted) {
          w.seen.clear();
          w.maxSeq = item.seq;
          w.floorTs = item.ts as number;
        }
        w.seen.add(item.seq);
        if (item.seq > w.maxSeq) w.maxSeq = item.seq;
      }
      if (item.ts !== undefined && item.ts > w.maxTs) w.maxTs = item.ts;
    }
    if (w.seen.size > this.opts.seqWindow * 2) {
      const floor = w.maxSeq - this.opts.seqWindow;
      for (const s of w.seen) if (s <= floor) w.seen.delete(s);
    }
    if (facts.fernet) {
      w.macs.set(facts.fernet.mac, facts.fernet.tsMs + this.opts.fernetMemoryMs);
      if (w.macs.size > 1024) for (const [mac, until] of w.macs) if (until <= now) w.macs.delete(mac);
    }
  }

  forget(device: string): void {
    this.devices.delete(device);
  }
}

export interface ThrottleOptions {
  /** Failures a device may have in a burst. */
  burst: number;
  /** Failures forgiven per minute. */
  perMinute: number;
  maxDevices: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = { burst: 20, perMinute: 60, maxDevices: 100_000 };

/**
 * A token bucket of failures per device: each failure takes a token; with none left the device is
 * throttled (its messages are refused unchecked) until the bucket refills one.
 */
export class FailureThrottle {
  private readonly buckets: BoundedMap<{ tokens: number; at: number }>;
  constructor(private readonly opts: ThrottleOptions = DEFAULT_THROTTLE) {
    this.buckets = new BoundedMap(opts.maxDevices);
  }
  private level(device: string, now: number): { tokens: number; at: number } | undefined {
    const b = this.buckets.get(device);
    if (!b) return undefined;
    b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) * this.opts.perMinute) / 60_000);
    b.at = now;
    return b;
  }
  throttled(device: string, now: number): boolean {
    const b = this.level(device, now);
    return b !== undefined && b.tokens < 1;
  }
  failure(device: string, now: number): void {
    const b = this.level(device, now) ?? { tokens: this.opts.burst, at: now };
    b.tokens = Math.max(0, b.tokens - 1);
    this.buckets.set(device, b);
  }
}
