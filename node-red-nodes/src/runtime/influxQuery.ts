/**
 * Read side of InfluxDB 1.x for the twin API: bound queries (core/influxql.ts) through the `influx`
 * package's queryRaw (which sends placeholders as InfluxDB's `params`), and a chunked stream for large
 * answers (`chunked=true`: InfluxDB sends one JSON object per chunk, newline-separated, so rows reach the
 * client as they come instead of after the whole answer is built in memory).
 */
import { InfluxDB } from 'influx';
import { ConstantBackoff } from 'influx/lib/src/backoff/constant';
import type { BoundQuery } from '../core/influxql';

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** What the twin API needs from InfluxDB (tests may hand in another implementation over a real server). */
export interface TwinQueryFn {
  /** Run one statement; the series of its result (epoch ms times). Throws InfluxQueryError. */
  query(q: BoundQuery): Promise<InfluxSeries[]>;
  /** Run one statement chunked, calling onSeries for each chunk's series as it arrives. */
  stream(
    q: BoundQuery,
    onSeries: (s: InfluxSeries) => Promise<void> | void,
    signal?: AbortSignal,
  ): Promise<void>;
  ping(): Promise<void>;
}

export interface InfluxQueryOptions {
  url: string;
  database: string;
  username?: string;
  password?: string;
  /** Per request (default 30 s; a stream is bounded only by its signal). */
  timeoutMs?: number;
  /** Rows per chunk of a stream (default 10,000). */
  chunkSize?: number;
}

export class InfluxQueryError extends Error {
  override name = 'InfluxQueryError';
  constructor(
    message: string,
    /** InfluxDB refused the statement (e.g. a retention policy missing), as opposed to being unreachable. */
    readonly refused: boolean,
  ) {
    super(message);
  }
}

interface RawResponse {
  results?: { series?: InfluxSeries[]; error?: string }[];
  error?: string;
}

function resultOf(body: RawResponse): InfluxSeries[] {
  if (body.error) throw new InfluxQueryError(body.error, true);
  const r = body.results?.[0];
  if (r?.error) throw new InfluxQueryError(r.error, true);
  return r?.series ?? [];
}

export function createInfluxQuery(o: InfluxQueryOptions): TwinQueryFn {
  const url = new URL(o.url);
  const https = url.protocol === 'https:';
  const timeoutMs = o.timeoutMs ?? 30_000;
  const client = new InfluxDB({
    host: url.hostname,
    port: url.port ? Number(url.port) : https ? 443 : 80,
    protocol: https ? 'https' : 'http',
    path: url.pathname === '/' ? '' : url.pathname.replace(/\/$/, ''),
    database: o.database,
    // Never let the pool disable the host for seconds after one failure (see influxWriter.ts).
    pool: { backoff: new ConstantBackoff({ delay: 0 }), maxRetries: 0, requestTimeout: timeoutMs },
    ...(o.username ? { username: o.username, password: o.password ?? '' } : {}),
  });
  const base = o.url.replace(/\/$/, '');
  const auth: Record<string, string> = o.username
    ? { Authorization: `Basic ${Buffer.from(`${o.username}:${o.password ?? ''}`).toString('base64')}` }
    : {};

  return {
    async query(q) {
      let body: RawResponse;
      try {
        body = (await client.queryRaw(q.text, {
          database: o.database,
          precision: 'ms',
          placeholders: q.params,
        })) as RawResponse;
      } catch (err) {
        const m = err instanceof Error ? err.message : String(err);
        // A 400 from InfluxDB is a refused statement; anything else is the server being unreachable.
        throw new InfluxQueryError(m, /\b400\b|error parsing|not found/.test(m));
      }
      return resultOf(body);
    },

    async stream(q, onSeries, signal) {
      const form = new URLSearchParams({
        db: o.database,
        q: q.text,
        params: JSON.stringify(q.params),
        epoch: 'ms',
        chunked: 'true',
        chunk_size: String(o.chunkSize ?? 10_000),
      });
      let res: Response;
      try {
        res = await fetch(`${base}/query`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...auth },
          body: form,
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        throw new InfluxQueryError(err instanceof Error ? err.message : String(err), false);
      }
      if (!res.ok || !res.body) {
        const text = await res.text().catch(() => '');
        throw new InfluxQueryError(`HTTP ${res.status}: ${text.slice(0, 200)}`, res.status === 400);
      }
      const decoder = new TextDecoder();
      let buffered = '';
      const handle = async (line: string): Promise<void> => {
        if (line.trim() === '') return;
        for (const s of resultOf(JSON.parse(line) as RawResponse)) await onSeries(s);
      };
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffered += decoder.decode(value, { stream: true });
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            await handle(line);
          }
        }
        await handle(buffered + decoder.decode());
      } catch (err) {
        await reader.cancel().catch(() => undefined);
        throw err instanceof InfluxQueryError ? err : new InfluxQueryError((err as Error).message, false);
      }
    },

    async ping() {
      const res = await fetch(`${base}/ping`, { headers: auth, signal: AbortSignal.timeout(2000) }).catch(
        (err: unknown) => {
          throw new InfluxQueryError(err instanceof Error ? err.message : String(err), false);
        },
      );
      if (res.status !== 204) throw new InfluxQueryError(`ping: HTTP ${res.status}`, false);
    },
  };
}
