/**
 * The audit log file: append-only, hash-chained JSONL (core/audit.ts), one fsync per small group of
 * events. record() is synchronous (the AuditSink contract): it extends the chain in memory at once, so the
 * order of the file is the order of the calls, and the group is written on the next tick.
 *
 * On open it reads only the end of the file for the last hash. A last line without its newline is a write
 * cut short by a crash: it is moved to FILE.torn-<ts> and the chain continues from the line before, with
 * an `audit.recover` event saying so. Each event is mirrored to InfluxDB measurement `audit` through a
 * writer (InfluxWriter), tags action and outcome only (actors and targets are unbounded: fields).
 */
import { EventEmitter } from 'node:events';
import { open, readFile, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import {
  GENESIS_HASH,
  canonicalJSON,
  checkLine,
  entryLine,
  nextEntry,
  parseEntry,
  verifyChain,
  type AuditEntry,
  type ChainVerdict,
} from '../core/audit';
import type { AuditEvent, AuditSink } from '../core/auditEvent';
import type { Point } from '../core/lineProtocol';

/** The part of InfluxWriter the mirror uses. */
export interface PointWriter {
  write(points: readonly unknown[], source?: string): unknown;
}

export interface AuditLogOptions {
  file: string;
  /** Mirror every event to InfluxDB `audit` (an InfluxWriter). */
  mirror?: PointWriter;
  /** Epoch ms, for recover events (tests move it). */
  now?: () => number;
}

export interface AuditLogEvents {
  /** A write failed; the events stay queued and the next record() or flush() retries. */
  error: [Error];
}

/** The InfluxDB point of an entry (measurement `audit`). */
export function auditPoint(entry: AuditEntry, ts = entry.ts): Point {
  const fields: Point['fields'] = { actor: entry.actor, hash: entry.hash, seq: entry.seq };
  if (entry.target !== undefined) fields.target = entry.target;
  if (entry.detail !== undefined) fields.detail = canonicalJSON(entry.detail);
  return { measurement: 'audit', tags: { action: entry.action, outcome: entry.outcome }, fields, ts };
}

const TAIL_BYTES = 64 * 1024;

export class AuditLog extends EventEmitter<AuditLogEvents> implements AuditSink {
  private last: Pick<AuditEntry, 'seq' | 'hash'> | undefined;
  private queue: string[] = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private lastMirrorTs = 0;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    private readonly options: AuditLogOptions,
  ) {
    super();
  }

  /** Open (or create) the log, recovering from a torn last line. */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const recovered = await recoverTail(options.file);
    const fh = await open(options.file, 'a', 0o600);
    const log = new AuditLog(fh, options);
    log.last = recovered.last;
    if (recovered.tornBytes > 0) {
      log.record({
        ts: (options.now ?? Date.now)(),
        actor: 'system',
        action: 'audit.recover',
        target: options.file,
        outcome: 'error',
        detail: { tornBytes: recovered.tornBytes, savedTo: recovered.savedTo ?? '' },
      });
      await log.flush();
    }
    return log;
  }

  /** Entries written or queued so far (the seq of the last one). */
  get lastSeq(): number {
    return this.last?.seq ?? 0;
  }
  get lastHash(): string {
    return this.last?.hash ?? GENESIS_HASH;
  }

  record(event: AuditEvent): void {
    if (this.closed) throw new Error('audit log is closed');
    const entry = nextEntry(this.last, event);
    this.last = entry;
    this.queue.push(entryLine(entry));
    this.mirror(entry);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush().catch(() => undefined);
      });
    }
  }

  /** Resolve once everything recorded so far is fsync'd (rejects when the disk refuses; events stay queued). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    if (this.queue.length === 0) return;
    const group = this.queue;
    this.queue = [];
    this.flushing = (async () => {
      try {
        await this.fh.appendFile(group.join(''));
        await this.fh.datasync();
      } catch (err) {
        // Put the group back in front: the chain is already extended in memory, so order must hold.
        this.queue = group.concat(this.queue);
        const e = err instanceof Error ? err : new Error(String(err));
        if (this.listenerCount('error') > 0) this.emit('error', e);
        throw e;
      } finally {
        this.flushing = undefined;
      }
    })();
    await this.flushing;
    // Records made while this group was written.
    if (this.queue.length > 0) await this.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      await this.fh.close();
    }
  }

  private mirror(entry: AuditEntry): void {
    if (!this.options.mirror) return;
    // InfluxDB keeps one point per series and ms: nudge bursts forward so none overwrites another
    // (the exact time stays in the file and in the hashed entry).
    const ts = Math.max(entry.ts, this.lastMirrorTs + 1);
    this.lastMirrorTs = ts;
    try {
      this.options.mirror.write([auditPoint(entry, ts)], 'audit');
    } catch (err) {
      // The file is the record; a full mirror spool must not stop auditing.
      if (this.listenerCount('error') > 0)
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/** The last entry of a log file, cutting off (and saving) a torn last line. */
async function recoverTail(
  file: string,
): Promise<{ last: Pick<AuditEntry, 'seq' | 'hash'> | undefined; tornBytes: number; savedTo?: string }> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { last: undefined, tornBytes: 0 };
    throw err;
  }
  if (size === 0) return { last: undefined, tornBytes: 0 };
  const fh = await open(file, 'r');
  let tail: string;
  let start: number;
  try {
    for (let want = TAIL_BYTES; ; want *= 4) {
      start = Math.max(0, size - want);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      tail = buf.toString('utf8');
      // Enough when the window holds the whole file or two newlines (so the last complete line is whole).
      const lastNl = tail.lastIndexOf('\n');
      if (start === 0 || (lastNl > 0 && tail.lastIndexOf('\n', lastNl - 1) >= 0)) break;
    }
  } finally {
    await fh.close();
  }
  let tornBytes = 0;
  let savedTo: string | undefined;
  if (!tail.endsWith('\n')) {
    const cut = tail.lastIndexOf('\n') + 1;
    const torn = tail.slice(cut);
    tornBytes = Buffer.byteLength(torn);
    savedTo = `${file}.torn-${Date.now()}`;
    await writeFile(savedTo, torn, { mode: 0o600 });
    await truncate(file, size - tornBytes);
    tail = tail.slice(0, cut);
  }
  const lines = tail.split('\n');
  lines.pop();
  const lastLine = lines[lines.length - 1];
  if (lastLine === undefined) return { last: undefined, tornBytes, ...(savedTo ? { savedTo } : {}) };
  const entry = parseEntry(lastLine);
  if (typeof entry === 'string')
    throw new Error(`${file}: the last line is not an audit entry (${entry}); run \`evtwin audit verify\``);
  if (checkLine(lastLine, entry.prev, entry.seq) !== undefined)
    throw new Error(`${file}: the last line does not hash to itself; run \`evtwin audit verify\``);
  return { last: { seq: entry.seq, hash: entry.hash }, tornBytes, ...(savedTo ? { savedTo } : {}) };
}

/** Verify a whole audit file (see verifyChain). */
export async function verifyAuditFile(file: string): Promise<ChainVerdict> {
  return verifyChain(await readFile(file, 'utf8'));
}

// ---- Auth rejections, aggregated per device and minute ----

export interface RejectionAggregatorOptions {
  sink: AuditSink;
  /** Actor of the summary events, e.g. `node:<id>` of the auth node. */
  actor?: string;
  /** Window length, ms (default one minute). */
  windowMs?: number;
  /** Devices tracked per window; the rest are summed under `*` (an attacker can invent device names). */
  maxDevices?: number;
  now?: () => number;
  /** Flush on a timer (default true); tests call flush(now) themselves. */
  timer?: boolean;
}

interface Bucket {
  count: number;
  first: number;
  last: number;
  reasons: Map<string, number>;
}

/**
 * recordRejection(device, reason) counts; at the end of each window one `auth.reject` event per device
 * says how many and why (detail: count, first, last, reasons as "reason=n,..."), so a flood of bad messages
 * costs one audit line per device per minute.
 */
export class RejectionAggregator {
  private readonly windowMs: number;
  private readonly maxDevices: number;
  private readonly now: () => number;
  private window = -1;
  private buckets = new Map<string, Bucket>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RejectionAggregatorOptions) {
    this.windowMs = options.windowMs ?? 60_000;
    this.maxDevices = options.maxDevices ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  recordRejection(device: string, reason: string): void {
    const now = this.now();
    const w = Math.floor(now / this.windowMs);
    if (w !== this.window) {
      this.flush(now);
      this.window = w;
    }
    const key = this.buckets.has(device) || this.buckets.size < this.maxDevices ? device : '*';
    let b = this.buckets.get(key);
    if (!b) {
      b = { count: 0, first: now, last: now, reasons: new Map() };
      this.buckets.set(key, b);
    }
    b.count++;
    b.last = now;
    b.reasons.set(reason, (b.reasons.get(reason) ?? 0) + 1);
    if (this.options.timer !== false && !this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.flush();
        },
        (w + 1) * this.windowMs - now + 5,
      );
      this.timer.unref();
    }
  }

  /** Emit the summaries of windows that ended before `now` (all of them when called from close()). */
  flush(now = this.now(), all = false): void {
    if (this.buckets.size === 0) return;
    if (!all && Math.floor(now / this.windowMs) === this.window) return;
    const buckets = this.buckets;
    this.buckets = new Map();
    for (const [device, b] of buckets) {
      this.options.sink.record({
        ts: b.last,
        actor: this.options.actor ?? 'system',
        action: 'auth.reject',
        target: device,
        outcome: 'denied',
        detail: {
          count: b.count,
          first: b.first,
          last: b.last,
          reasons: [...b.reasons].map(([r, n]) => `${r}=${n}`).join(','),
        },
      });
    }
  }

  /** Emit what is counted so far and stop the timer. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush(this.now(), true);
  }
}
