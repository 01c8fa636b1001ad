/**
 * Writes points to InfluxDB 1.x without losing one: batches by size and time, ms precision, field
 * types from the core schema, gzip for bodies worth it; during an outage batches go to a bounded
 * on-disk spool that is replayed in order once InfluxDB answers again; a full spool refuses new points
 * with an error (never a silent drop); a batch InfluxDB refuses (HTTP 400) is moved to rejected/ and
 * reported, never retried forever.
 *
 * Order: every sealed batch gets a sequence number; in memory or on disk, the lowest is always sent
 * next. While InfluxDB answers and nothing waits on disk, a second fresh batch may go out while the first
 * is in flight (maxInFlight): under load a request waits on InfluxDB's CPU and disk, and one at a time
 * would cap the rate at batchSize per request time. Replay from the spool is one request at a time, in
 * order. Order between requests does not change what is stored: InfluxDB keys a point by series and
 * timestamp. Replaying a batch whose first attempt had an unknown outcome (timeout,
 * reset, crash before the segment was deleted) creates no duplicate: InfluxDB keys a point by series
 * and timestamp, so writing it again overwrites it with the same values.
 */
import { EventEmitter } from 'node:events';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { InfluxDB } from 'influx';
import { ConstantBackoff } from 'influx/lib/src/backoff/constant';
import { Pool, RequestError, ServiceNotAvailableError, type IPoolRequestOptions } from 'influx/lib/src/pool';
import {
  PRECISION,
  SCHEMA,
  encodeBatch,
  type MeasurementSchema,
  type RefusedPoint,
} from '../core/lineProtocol';
import { Spool, type Segment } from './spool';

const gzip = promisify(gzipCallback);

export interface InfluxWriterOptions {
  url: string;
  database: string;
  retentionPolicy?: string;
  username?: string;
  password?: string;
  /** Directory of the spool (created if missing; a spool left there is replayed). */
  spoolDir: string;
  /** Bound of everything held and not yet acknowledged (memory and spool), in bytes of line protocol. */
  spoolMaxBytes: number;
  /** Points per request (default 5000). */
  batchSize?: number;
  /** Longest a point waits in memory before its batch is sent (default 1000 ms). */
  flushMs?: number;
  /**
   * Send the open batch as soon as no write is in flight instead of after flushMs (default false).
   * A batch then holds what arrived while the previous request was in flight (group commit): one
   * point per request when idle, larger batches under load, and no point waits for a timer.
   */
  flushWhenFree?: boolean;
  /** gzip request bodies larger than gzipMinBytes (default true, 1024). */
  gzip?: boolean;
  gzipMinBytes?: number;
  /** CREATE DATABASE before the first write and after a "database not found" (default true). */
  createDatabase?: boolean;
  requestTimeoutMs?: number;
  /** Cap of the exponential retry delay (default 2000 ms). */
  retryMaxMs?: number;
  /** Write requests in flight at once for fresh batches (default 2; 1: strictly one at a time). */
  maxInFlight?: number;
  /** How long close() tries to write what is in memory before spooling it (default 3000 ms). */
  closeTimeoutMs?: number;
  schemas?: Readonly<Record<string, MeasurementSchema>>;
}

export interface WriterStats {
  /** Points held in memory (open batch, sealed batches, the request in flight). */
  queued: number;
  /** Points in the on-disk spool. */
  spooled: number;
  spoolBytes: number;
  /** Bytes held (memory and spool) against spoolMaxBytes. */
  heldBytes: number;
  spoolMaxBytes: number;
  /** Points InfluxDB acknowledged since start. */
  written: number;
  /** Duration of the last successful write request, ms. */
  lastWriteMs?: number;
  rejectedBatches: number;
  rejectedPoints: number;
  /** Points refused because the spool was full. */
  refusedPoints: number;
  /** The last write failed with a retryable error; batches go to the spool until one succeeds. */
  down: boolean;
  /** The last write() was refused because the spool is full. */
  full: boolean;
  lastError?: string;
  lastErrorAt?: number;
  lastRejected?: string;
  lastRejectedAt?: number;
}

/** A batch InfluxDB refused: kept in `file` for a human. `sources` are the writers' source ids, when known. */
export interface RejectedBatch {
  file?: string;
  points: number;
  reason: string;
  sources?: string[];
}

export interface WriteResult {
  accepted: number;
  /** Points the schema refused, by index in the input; the others were accepted. */
  refused: RefusedPoint[];
}

export class SpoolFullError extends Error {
  override name = 'SpoolFullError';
}

export interface WriteFailure {
  retryable: boolean;
  status?: number;
  message: string;
  databaseMissing: boolean;
}

/**
 * What a failed write means. Only a definite refusal of the data (4xx other than auth, missing
 * database, timeout, rate limit) is final; everything else (network, timeout, 5xx, 401/403, 404) may
 * heal, so the batch is kept and retried.
 */
export function classifyWriteError(err: unknown): WriteFailure {
  if (err instanceof RequestError) {
    const status = err.res.statusCode ?? 0;
    const m = /error occurred: (.*)$/s.exec(err.message);
    let detail = m?.[1] ?? err.message;
    try {
      const parsed = JSON.parse(detail) as { error?: unknown };
      if (typeof parsed.error === 'string') detail = parsed.error;
    } catch {
      // not JSON: keep the body as it is
    }
    const retryable = [401, 403, 404, 408, 429].includes(status) || status >= 500;
    return {
      retryable,
      status,
      message: `HTTP ${status}: ${detail.trim()}`,
      databaseMissing: status === 404,
    };
  }
  if (err instanceof ServiceNotAvailableError) {
    return { retryable: true, message: `InfluxDB unavailable: ${err.message}`, databaseMissing: false };
  }
  const e = err as NodeJS.ErrnoException;
  const message = e instanceof Error ? (e.code ? `${e.code}: ${e.message}` : e.message) : String(err);
  return { retryable: true, message, databaseMissing: false };
}

interface Batch {
  seq: number;
  body: string;
  points: number;
  /** What this batch counts against the bound while in memory. */
  bytes: number;
  sources: Set<string>;
  /** Called once the batch is safe: in InfluxDB, in the on-disk spool, or rejected to rejected/. */
  onSafe: (() => void)[];
}

type Item = { kind: 'memory'; batch: Batch } | { kind: 'segment'; segment: Segment };

// The pool types its body as a string; it writes it with req.write and measures it with
// Buffer.from(body).length, both of which take a Buffer (the gzip body) as well.
type WriteRequest = Omit<IPoolRequestOptions, 'body'> & { body: string | Buffer };

const MAX_MEMORY_BATCHES = 2;
const RETRY_MIN_MS = 100;

export interface InfluxWriterEvents {
  rejected: [RejectedBatch];
  warning: [string];
}

export class InfluxWriter extends EventEmitter<InfluxWriterEvents> {
  readonly spool: Spool;
  private readonly opts: Required<Omit<InfluxWriterOptions, 'username' | 'password' | 'retentionPolicy'>> &
    Pick<InfluxWriterOptions, 'username' | 'password' | 'retentionPolicy'>;
  private readonly pool: Pool;
  private readonly discard: (req: WriteRequest) => Promise<void>;
  private readonly admin: InfluxDB;

  private current: string[] = [];
  private currentBytes = 0;
  private currentSources = new Set<string>();
  private currentSafe: (() => void)[] = [];
  /** Collects the batches sealed during one write() (see onSafe). */
  private sealedNow: Batch[] | undefined;
  private readonly memQueue: Batch[] = [];
  private memPoints = 0;
  private memBytes = 0;
  private nextSeq: number;
  private readonly segmentSources = new Map<number, string[]>();

  private flushTimer: NodeJS.Timeout | undefined;
  private freeSeal: NodeJS.Immediate | undefined;
  /** Write requests waiting on InfluxDB now. */
  private sending = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  private pumpRun: Promise<void> | undefined;
  private spillChain: Promise<void> = Promise.resolve();
  private pendingSpills = 0;
  private readonly aborts = new Set<AbortController>();
  /** Requests in flight besides the pump's own (see maxInFlight). */
  private readonly extraRuns = new Set<Promise<void>>();
  private databaseReady: boolean;
  private closed = false;
  private stopping = false;
  private closeRun: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];

  private written = 0;
  private lastWriteMs: number | undefined;
  private rejectedBatches = 0;
  private rejectedPoints = 0;
  private refusedPoints = 0;
  private down = false;
  private full = false;
  private lastError: string | undefined;
  private lastErrorAt: number | undefined;
  private lastRejected: string | undefined;
  private lastRejectedAt: number | undefined;

  constructor(options: InfluxWriterOptions) {
    super();
    this.opts = {
      batchSize: 5000,
      flushMs: 1000,
      gzip: true,
      gzipMinBytes: 1024,
      createDatabase: true,
      requestTimeoutMs: 10_000,
      retryMaxMs: 2000,
      closeTimeoutMs: 3000,
      maxInFlight: 2,
      flushWhenFree: false,
      schemas: SCHEMA,
      ...options,
    };
    this.spool = new Spool(options.spoolDir);
    this.nextSeq = this.spool.lastSeq + 1;
    this.databaseReady = !this.opts.createDatabase;
    // The pool must never disable the host on its own (it would refuse every request for up to 10 s
    // after one failure): a constant backoff of 0 keeps it available (Pool._disableHost only disables
    // for a delay > 0) and maxRetries 0 hands every failure straight back; our loop decides.
    const poolOptions = {
      backoff: new ConstantBackoff({ delay: 0 }),
      maxRetries: 0,
      requestTimeout: this.opts.requestTimeoutMs,
    };
    this.pool = new Pool(poolOptions);
    this.pool.addHost(this.opts.url);
    this.discard = this.pool.discard.bind(this.pool) as (req: WriteRequest) => Promise<void>;
    const url = new URL(this.opts.url);
    const https = url.protocol === 'https:';
    this.admin = new InfluxDB({
      host: url.hostname,
      port: url.port ? Number(url.port) : https ? 443 : 80,
      protocol: https ? 'https' : 'http',
      path: url.pathname === '/' ? '' : url.pathname,
      pool: poolOptions,
      ...(this.opts.username ? { username: this.opts.username, password: this.opts.password ?? '' } : {}),
    });
    if (this.spool.size > 0) this.kick(); // replay what a previous run left
  }

  /**
   * Accept points (Points or anything else, which is refused by index). Throws SpoolFullError, accepting
   * none of them, when they would not fit in the spool's bound. `onSafe` is called once the accepted
   * points are safe (written to InfluxDB, fsynced to the spool, or moved to rejected/ and reported);
   * at once when none was accepted; never when write() throws.
   */
  write(points: readonly unknown[], source?: string, onSafe?: () => void): WriteResult {
    if (this.closed) throw new Error('InfluxDB writer is closed');
    const { lines, refused } = encodeBatch(points, this.opts.schemas);
    let bytes = 0;
    for (const line of lines) bytes += Buffer.byteLength(line) + 1;
    if (lines.length > 0 && this.heldBytes() + bytes > this.opts.spoolMaxBytes) {
      this.full = true;
      this.refusedPoints += lines.length;
      throw new SpoolFullError(
        `spool full: ${mb(this.heldBytes())} of ${mb(this.opts.spoolMaxBytes)} MB held` +
          (this.lastError ? ` (InfluxDB: ${this.lastError})` : '') +
          `; ${lines.length} points refused, not written` +
          (refused.length ? `; ${refused.length} more refused by the schema` : ''),
      );
    }
    if (lines.length > 0) this.full = false;
    const touched: Batch[] = [];
    this.sealedNow = touched;
    for (const line of lines) {
      this.current.push(line);
      const b = Buffer.byteLength(line) + 1;
      this.currentBytes += b;
      this.memBytes += b;
      this.memPoints++;
      if (source !== undefined) this.currentSources.add(source);
      if (this.current.length >= this.opts.batchSize) this.seal();
    }
    this.sealedNow = undefined;
    if (onSafe) {
      // Safe once every batch holding one of these lines is: those sealed meanwhile and the open one.
      const parts = touched.length + (lines.length > 0 && this.current.length > 0 ? 1 : 0);
      if (parts === 0) onSafe();
      else {
        let left = parts;
        const one = (): void => {
          if (--left === 0) onSafe();
        };
        for (const b of touched) b.onSafe.push(one);
        if (parts > touched.length) this.currentSafe.push(one);
      }
    }
    if (this.current.length > 0) {
      // Sealed on the next turn of the event loop, so the writes of this turn share one request.
      if (this.opts.flushWhenFree && !this.freeSeal && this.slotFree())
        this.freeSeal = setImmediate(() => {
          this.freeSeal = undefined;
          this.sealIfFree();
        });
      if (!this.flushTimer) this.armFlush();
    }
    return { accepted: lines.length, refused };
  }

  /**
   * Seal the open batch after flushMs. While a sealed batch already waits behind the request in flight
   * (InfluxDB slower than the flush interval), keep filling the open batch instead (up to batchSize):
   * one larger request instead of many small ones that would overflow to the disk spool.
   */
  private armFlush(): void {
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      if (this.memQueue.length > 0 && !this.down && !this.closed) this.armFlush();
      else this.seal();
    }, this.opts.flushMs);
  }

  /**
   * Whether InfluxDB is free for the open batch: it answers, nothing waits, no write is in flight. One at
   * a time, not maxInFlight: a request costs influxd far more CPU than a point, and on a shared machine
   * two in flight at all times doubled influxd's CPU and worsened the tail (measured at 10,000/s); the
   * timed flush still fills the second slot under load.
   */
  private slotFree(): boolean {
    return (
      !this.down &&
      !this.closed &&
      this.spool.size === 0 &&
      this.pendingSpills === 0 &&
      this.memQueue.length === 0 &&
      this.sending === 0
    );
  }

  private sealIfFree(): void {
    if (this.opts.flushWhenFree && this.current.length > 0 && this.slotFree()) this.seal();
  }

  stats(): WriterStats {
    return {
      queued: this.memPoints,
      spooled: this.spool.points,
      spoolBytes: this.spool.bytes,
      heldBytes: this.heldBytes(),
      spoolMaxBytes: this.opts.spoolMaxBytes,
      written: this.written,
      ...(this.lastWriteMs !== undefined ? { lastWriteMs: this.lastWriteMs } : {}),
      rejectedBatches: this.rejectedBatches,
      rejectedPoints: this.rejectedPoints,
      refusedPoints: this.refusedPoints,
      down: this.down,
      full: this.full,
      ...(this.lastError !== undefined ? { lastError: this.lastError, lastErrorAt: this.lastErrorAt } : {}),
      ...(this.lastRejected !== undefined
        ? { lastRejected: this.lastRejected, lastRejectedAt: this.lastRejectedAt }
        : {}),
    };
  }

  /** Send the open batch now instead of waiting for flushMs. */
  flush(): void {
    this.seal();
  }

  /** Resolves once everything accepted so far is in InfluxDB (or rejected): nothing in memory or spool. */
  whenIdle(): Promise<void> {
    this.seal();
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.checkIdle();
    });
  }

  /**
   * Stop: write what is in memory if InfluxDB answers within closeTimeoutMs, else spool it (fsync).
   * The spool stays on disk for the next start.
   */
  close(): Promise<void> {
    this.closeRun ??= this.doClose();
    return this.closeRun;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.freeSeal) clearImmediate(this.freeSeal);
    this.freeSeal = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.seal();
    const deadline = setTimeout(() => {
      this.stopping = true;
      for (const a of this.aborts) a.abort(new Error('closing'));
    }, this.opts.closeTimeoutMs);
    if (!this.down) this.kick();
    await this.pumpRun;
    await Promise.all(this.extraRuns);
    clearTimeout(deadline);
    this.stopping = true;
    if (this.memQueue.length > 0) await this.spill(this.memQueue.splice(0));
    await this.spillChain;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private heldBytes(): number {
    return this.memBytes + this.spool.bytes;
  }

  private seal(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.current.length === 0) return;
    const batch: Batch = {
      seq: this.nextSeq++,
      body: this.current.join('\n'),
      points: this.current.length,
      bytes: this.currentBytes,
      sources: this.currentSources,
      onSafe: this.currentSafe,
    };
    this.current = [];
    this.currentBytes = 0;
    this.currentSources = new Set();
    this.currentSafe = [];
    this.sealedNow?.push(batch);
    // Straight to InfluxDB only while nothing older waits on disk; otherwise to the spool's tail.
    const direct =
      !this.down &&
      this.spool.size === 0 &&
      this.pendingSpills === 0 &&
      this.memQueue.length < MAX_MEMORY_BATCHES;
    if (direct) this.memQueue.push(batch);
    else void this.spill([batch]);
    this.kick();
  }

  /** Move batches to the spool, in order. A batch the disk refuses stays in memory (still bounded). */
  private spill(batches: Batch[]): Promise<void> {
    this.pendingSpills += batches.length;
    this.spillChain = this.spillChain.then(async () => {
      for (const batch of batches) {
        try {
          await this.spool.append(batch.seq, batch.body, batch.points);
          this.memBytes -= batch.bytes;
          this.memPoints -= batch.points;
          if (batch.sources.size > 0) this.segmentSources.set(batch.seq, [...batch.sources]);
          this.safe(batch);
        } catch (err) {
          this.noteError(`spool write failed, batch kept in memory: ${errorText(err)}`);
          this.emit('warning', this.lastError ?? '');
          insertBySeq(this.memQueue, batch);
        } finally {
          this.pendingSpills--;
        }
      }
      this.kick();
      this.checkIdle();
    });
    return this.spillChain;
  }

  private kick(): void {
    if (!this.pumpRun && !this.retryTimer && !this.stopping)
      this.pumpRun = this.pump().finally(() => {
        this.pumpRun = undefined;
        this.checkIdle();
      });
    this.kickExtra();
  }

  /**
   * More requests while the pump waits on one: fresh memory batches only, and only while InfluxDB
   * answers and nothing older waits on disk (so nothing overtakes the spool's replay).
   */
  private kickExtra(): void {
    while (
      this.extraRuns.size < this.opts.maxInFlight - 1 &&
      this.pumpRun &&
      !this.retryTimer &&
      !this.stopping &&
      !this.down &&
      this.spool.size === 0 &&
      this.pendingSpills === 0 &&
      this.memQueue[0]
    ) {
      const batch = this.memQueue[0];
      const run: Promise<void> = this.deliver({ kind: 'memory', batch })
        .then((delivered) => {
          // Failed: deliver() spilled the batch; the pump (or a retry) replays it from the spool.
          if (!delivered && !this.pumpRun && !this.retryTimer && !this.closed) this.scheduleRetry();
        })
        .catch((err: unknown) => {
          this.noteError(`write: ${errorText(err)}`);
          this.emit('warning', this.lastError ?? '');
        })
        .finally(() => {
          this.extraRuns.delete(run);
          this.kickExtra();
          this.checkIdle();
        });
      this.extraRuns.add(run);
    }
  }

  /** The lowest sequence number, in memory or on disk. */
  private next(): Item | undefined {
    const mem = this.memQueue[0];
    const seg = this.spool.head();
    if (mem && (!seg || mem.seq < seg.seq)) return { kind: 'memory', batch: mem };
    return seg ? { kind: 'segment', segment: seg } : undefined;
  }

  private async pump(): Promise<void> {
    for (;;) {
      if (this.stopping) return;
      const item = this.next();
      if (!item) return;
      if (this.closed && item.kind === 'segment') return; // the spool waits for the next start
      let delivered: boolean;
      try {
        delivered = await this.deliver(item);
      } catch (err) {
        // A disk error around a segment (read, delete, move): report and retry later.
        this.noteError(`spool: ${errorText(err)}`);
        this.emit('warning', this.lastError ?? '');
        delivered = false;
      }
      if (!delivered) {
        if (!this.closed) this.scheduleRetry();
        return;
      }
    }
  }

  private scheduleRetry(): void {
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.opts.retryMaxMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, delay);
  }

  /** Send one batch; true when it left our hands (acknowledged or rejected), false to retry later. */
  private async deliver(item: Item): Promise<boolean> {
    let body: string;
    let points: number;
    let seq: number;
    if (item.kind === 'memory') {
      this.memQueue.shift();
      ({ body, points, seq } = item.batch);
    } else {
      body = await this.spool.read(item.segment);
      ({ points, seq } = item.segment);
    }
    const started = performance.now();
    this.sending++;
    let failure: WriteFailure | undefined;
    try {
      failure = await this.send(body);
    } finally {
      this.sending--;
    }
    if (!failure) {
      this.lastWriteMs = Math.round(performance.now() - started);
      if (item.kind === 'memory') {
        this.memBytes -= item.batch.bytes;
        this.memPoints -= points;
        this.safe(item.batch);
      } else {
        await this.spool.remove(item.segment);
        this.segmentSources.delete(seq);
      }
      this.written += points;
      this.down = false;
      this.full = false; // space was freed: the next write tells whether it fits
      this.retryDelay = RETRY_MIN_MS;
      // This write is answered: if no other is in flight, what arrived meanwhile goes now.
      this.sealIfFree();
      return true;
    }
    if (failure.retryable) {
      this.noteError(failure.message);
      this.down = true;
      if (failure.databaseMissing && this.opts.createDatabase) this.databaseReady = false;
      // During an outage everything in memory goes to disk, oldest first, to survive a crash.
      if (item.kind === 'memory') await this.spill([item.batch, ...this.memQueue.splice(0)]);
      return false;
    }
    const sources = item.kind === 'memory' ? [...item.batch.sources] : this.segmentSources.get(seq);
    let file: string | undefined;
    let reason = failure.message;
    if (item.kind === 'memory') {
      this.memBytes -= item.batch.bytes;
      this.memPoints -= points;
      try {
        file = await this.spool.rejectBody(seq, body, points, failure.message);
      } catch (err) {
        reason += ` (and the batch could not be saved to ${this.spool.rejectedDir}: ${errorText(err)})`;
      }
      this.safe(item.batch); // reported below: the points are no longer ours to keep
    } else {
      // If the move fails the segment stays in the spool and the pump retries it later.
      file = await this.spool.reject(item.segment, failure.message);
      this.segmentSources.delete(seq);
    }
    this.rejectedBatches++;
    this.rejectedPoints += points;
    this.lastRejected = failure.message;
    this.lastRejectedAt = Date.now();
    this.emit('rejected', { file, points, reason, ...(sources?.length ? { sources } : {}) });
    return true;
  }

  /** One write request; undefined on success, else what went wrong. */
  private async send(body: string): Promise<WriteFailure | undefined> {
    let signal: AbortController | undefined;
    try {
      await this.ensureDatabase();
      const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
      let payload: string | Buffer = body;
      if (this.opts.gzip && body.length > this.opts.gzipMinBytes) {
        // Level 1: most of the size win (line protocol repeats itself) for a fraction of the CPU.
        payload = await gzip(body, { level: 1 });
        headers['Content-Encoding'] = 'gzip';
      }
      const query: Record<string, string> = { db: this.opts.database, precision: PRECISION };
      if (this.opts.retentionPolicy) query.rp = this.opts.retentionPolicy;
      const abort = new AbortController();
      this.aborts.add(abort);
      signal = abort;
      await this.discard({
        method: 'POST',
        path: '/write',
        query,
        body: payload,
        headers,
        signal: abort.signal,
        ...(this.opts.username ? { auth: `${this.opts.username}:${this.opts.password ?? ''}` } : {}),
      });
      return undefined;
    } catch (err) {
      return classifyWriteError(err);
    } finally {
      if (signal) this.aborts.delete(signal);
    }
  }

  private async ensureDatabase(): Promise<void> {
    if (this.databaseReady) return;
    try {
      await this.admin.createDatabase(this.opts.database);
    } catch (err) {
      const failure = classifyWriteError(err);
      // A user without admin rights may still write to an existing database: go on and let the write tell.
      if (failure.status !== 401 && failure.status !== 403) throw err;
      this.emit(
        'warning',
        `CREATE DATABASE ${this.opts.database} refused (${failure.message}); writing anyway`,
      );
    }
    this.databaseReady = true;
  }

  private safe(batch: Batch): void {
    for (const f of batch.onSafe.splice(0)) {
      try {
        f();
      } catch (err) {
        this.emit('warning', `onSafe callback failed: ${errorText(err)}`);
      }
    }
  }

  private noteError(message: string): void {
    this.lastError = message;
    this.lastErrorAt = Date.now();
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0) return;
    const idle =
      this.current.length === 0 &&
      this.memQueue.length === 0 &&
      this.pendingSpills === 0 &&
      this.spool.size === 0 &&
      this.pumpRun === undefined &&
      this.extraRuns.size === 0;
    if (idle) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

function insertBySeq(queue: Batch[], batch: Batch): void {
  let i = queue.length;
  while (i > 0 && (queue[i - 1]?.seq ?? 0) > batch.seq) i--;
  queue.splice(i, 0, batch);
}

const mb = (bytes: number): string => (bytes / 1_048_576).toFixed(bytes < 1_048_576 ? 3 : 1);

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
