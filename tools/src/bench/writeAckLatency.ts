/**
 * End-to-end latency measured where a point is stored: a proxy between a consumer and influxd that
 * passes every byte through unchanged and, when influxd answers a `POST /write` with 2xx (it does so only
 * once the points are in its WAL), records ack time − payload ts for each probe device's point in the
 * request. Any consumer that is given the proxy's address is measured the same way, with no polling
 * error and no query load on influxd.
 *
 * It works on the TCP stream, not through Node's HTTP server and client: the stock pipeline writes one
 * request per message, and a full HTTP proxy cost ~0.2 ms of CPU per request on the box under test.
 * Here a connection to the proxy is one connection to influxd; request heads are parsed only to find
 * where each request ends (Content-Length) and which ones are writes; a response is paired with the
 * request before it, as HTTP/1.1 clients that do not pipeline (Node's, undici) send the next request only
 * once the previous answer is complete. A request with a chunked body stops the measuring on that
 * connection, never the passing through.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { percentile } from './ingestKit';
import { bySecond, summarise, type LatencyMeter, type LatencyResult } from './latencyStats';

const gunzipAsync = promisify(gunzip);

/**
 * A /write `precision` as [multiply, divide] to milliseconds (dividing by 1e6 is exact where multiplying
 * by 1e-6 is not). influxd 1.x takes any other value, or none, as nanoseconds.
 */
const NS: readonly [number, number] = [1, 1e6];
const TO_MS = new Map<string, readonly [number, number]>([
  ['u', [1, 1e3]],
  ['ms', [1, 1]],
  ['s', [1000, 1]],
  ['m', [60_000, 1]],
  ['h', [3_600_000, 1]],
]);

const MEASUREMENT = 'telemetry,';
const ASSET = ',asset=';

/**
 * Calls `found(asset, tsMs)` for each line of measurement `telemetry` whose `asset` tag is a probe
 * (p followed by digits) and that carries a timestamp. String search only: this sees every line written.
 */
export function scanProbeLines(
  body: string,
  precision: readonly [number, number],
  found: (asset: string, tsMs: number) => void,
): void {
  const [mul, div] = precision;
  for (let pos = 0; pos < body.length;) {
    let eol = body.indexOf('\n', pos);
    if (eol < 0) eol = body.length;
    if (body.startsWith(MEASUREMENT, pos)) {
      // The tag set ends at the first unescaped space; the asset tag must be found inside it.
      let tagEnd = body.indexOf(' ', pos);
      while (tagEnd > 0 && tagEnd < eol && body.charCodeAt(tagEnd - 1) === BACKSLASH)
        tagEnd = body.indexOf(' ', tagEnd + 1);
      if (tagEnd < 0 || tagEnd > eol) tagEnd = eol;
      const tags = body.slice(pos, tagEnd);
      let at = tags.indexOf(ASSET, MEASUREMENT.length - 1);
      // `\,asset=` is inside an earlier tag's value.
      while (at > 0 && tags.charCodeAt(at - 1) === BACKSLASH) at = tags.indexOf(ASSET, at + 1);
      const v = at + ASSET.length;
      if (at > 0 && tags.charCodeAt(v) === P) {
        let end = v + 1;
        while (end < tags.length && isDigit(tags.charCodeAt(end))) end++;
        if (end > v + 1 && (end === tags.length || tags.charCodeAt(end) === COMMA)) {
          // The timestamp, when there is one, is the last space-separated token, after the fields.
          const lineEnd = body.charCodeAt(eol - 1) === CR ? eol - 1 : eol;
          const sp = body.lastIndexOf(' ', lineEnd - 1);
          if (sp > tagEnd) {
            const raw = body.slice(sp + 1, lineEnd);
            if (isInteger(raw)) found(tags.slice(v, end), (Number(raw) * mul) / div);
          }
        }
      }
    }
    pos = eol + 1;
  }
}

const BACKSLASH = 92;
const COMMA = 44;
const CR = 13;
const P = 112;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;

function isInteger(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = s.charCodeAt(0) === 45 /* - */ ? 1 : 0; i < s.length; i++)
    if (!isDigit(s.charCodeAt(i))) return false;
  return s !== '-';
}

/** A request seen going to influxd, until its answer's status line comes back. */
interface Sent {
  /** A write to the measured database: its body is kept to be scanned once acknowledged. */
  measured: boolean;
  query: string;
  gzip: boolean;
  body: Buffer[];
  /** influxd answered before the request was complete (an early error): no answer left to pair. */
  early?: boolean;
  /** When its last byte went to influxd (epoch ms). */
  sentAt?: number;
}

const HEAD_END = Buffer.from('\r\n\r\n');
/** A request head longer than this is not HTTP we understand: measuring stops on that connection. */
const MAX_HEAD = 64 * 1024;

export class WriteAckLatency implements LatencyMeter {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly upstream: { host: string; port: number };
  private readonly seen = new Set<string>();
  /** (publish ts, latency) of the current step. */
  private timeline: [number, number][] = [];
  /** (ack time, influxd's answer time) of every write to the measured database in the current step. */
  private writes: [number, number][] = [];
  private from = 0;
  /** Acks after this (epoch ms) do not count: Infinity while a step runs, -Infinity before the first. */
  private until = -Infinity;
  /** Acked writes not scanned yet: stop() waits for them so a step's last acks are counted. */
  private readonly pending = new Set<Promise<void>>();
  private port = 0;

  /** `influxUrl`: influxd's base URL (http); `database`: only writes to it count (all when omitted). */
  private constructor(
    influxUrl: string,
    private readonly database?: string,
  ) {
    const url = new URL(influxUrl);
    this.upstream = { host: url.hostname, port: Number(url.port || 80) };
    this.server = createServer((client) => this.relay(client));
  }

  /** A proxy to `influxUrl` listening on 127.0.0.1 on a free port. */
  static async listen(influxUrl: string, database?: string): Promise<WriteAckLatency> {
    const proxy = new WriteAckLatency(influxUrl, database);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => {
        proxy.server.off('error', reject);
        resolve();
      });
    });
    proxy.port = (proxy.server.address() as AddressInfo).port;
    return proxy;
  }

  /** The proxy's base URL, to give consumers instead of influxd's. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get listenPort(): number {
    return this.port;
  }

  start(from: number): void {
    this.from = from;
    this.until = Infinity;
    this.timeline = [];
    this.writes = [];
    // Points of earlier steps are older than `from`, so what they left in `seen` can go.
    this.seen.clear();
  }

  async stop(): Promise<LatencyResult> {
    this.until = Date.now();
    await Promise.all([...this.pending]);
    const answers = this.writes.map(([, ms]) => ms).sort((a, b) => a - b);
    return {
      ...summarise(this.timeline),
      influxWrite: {
        p50: percentile(answers, 50),
        p99: percentile(answers, 99),
        max: answers[answers.length - 1] ?? NaN,
        n: answers.length,
        bySecond: bySecond(this.writes),
      },
    };
  }

  async close(): Promise<void> {
    this.until = -Infinity;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** One client connection: its own connection to influxd, bytes piped both ways, requests watched. */
  private relay(client: Socket): void {
    const server = connect(this.upstream.port, this.upstream.host);
    for (const s of [client, server]) {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    }
    let answered = false;
    server.once('error', (err) => {
      // influxd unreachable before it said anything: answer like a gateway, then close.
      if (!answered && client.writable) {
        const text = `influxd proxy: ${err.message}\n`;
        client.end(
          `HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n` +
            `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
        );
      } else client.destroy();
    });
    client.once('error', () => server.destroy());
    // Piped first, so each chunk is passed on before it is looked at.
    client.pipe(server);
    server.pipe(client);

    const awaiting: Sent[] = [];
    let head: Buffer | undefined;
    let current: Sent | undefined;
    let bodyLeft = 0;
    let blind = false;

    const sent = (req: Sent): void => {
      if (!req.early) {
        req.sentAt = Date.now();
        awaiting.push(req);
      }
      current = undefined;
    };
    client.on('data', (chunk: Buffer) => {
      let off = 0;
      while (!blind && off < chunk.length) {
        if (current) {
          const n = Math.min(bodyLeft, chunk.length - off);
          if (current.measured) current.body.push(chunk.subarray(off, off + n));
          bodyLeft -= n;
          off += n;
          if (bodyLeft === 0) sent(current);
          continue;
        }
        const before = head?.length ?? 0;
        head = head ? Buffer.concat([head, chunk.subarray(off)]) : chunk.subarray(off);
        const end = head.indexOf(HEAD_END);
        if (end < 0) {
          if (head.length > MAX_HEAD) blind = true;
          break;
        }
        off += end + HEAD_END.length - before;
        const req = this.parseHead(head.toString('latin1', 0, end));
        head = undefined;
        if (!req) {
          blind = true;
          break;
        }
        current = req.sent;
        bodyLeft = req.length;
        if (bodyLeft === 0) sent(current);
      }
    });
    server.on('data', (chunk: Buffer) => {
      answered = true;
      // The first bytes after a request went out open its answer (see the header comment).
      const req = awaiting.shift();
      if (!req) {
        if (current) current.early = true;
        return;
      }
      if (!req.measured) return;
      const ackAt = Date.now();
      const ok = chunk.length > 12 && chunk[9] === 50; // "HTTP/1.1 2xx"
      if (!ok || ackAt > this.until) return;
      this.writes.push([ackAt, ackAt - (req.sentAt ?? ackAt)]);
      const scan = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => this.record(req, ackAt))
        .finally(() => this.pending.delete(scan));
      this.pending.add(scan);
    });
  }

  /** Method, target and framing of a request head; undefined when its body's end cannot be known. */
  private parseHead(text: string): { sent: Sent; length: number } | undefined {
    const lines = text.split('\r\n');
    const [method = '', target = ''] = (lines[0] ?? '').split(' ');
    let length = 0;
    let gzip = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] ?? '';
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding' && value.toLowerCase() !== 'identity') return undefined;
      else if (name === 'content-encoding') gzip = value.toLowerCase().includes('gzip');
    }
    if (!Number.isSafeInteger(length) || length < 0) return undefined;
    const q = target.indexOf('?');
    const query = q < 0 ? '' : target.slice(q + 1);
    const write = method === 'POST' && (q < 0 ? target : target.slice(0, q)) === '/write';
    const measured =
      write && (this.database === undefined || new URLSearchParams(query).get('db') === this.database);
    return { sent: { measured, query, gzip, body: [] }, length };
  }

  private async record(req: Sent, ackAt: number): Promise<void> {
    try {
      const precision = TO_MS.get(new URLSearchParams(req.query).get('precision') ?? '') ?? NS;
      let body = Buffer.concat(req.body);
      if (req.gzip) body = await gunzipAsync(body);
      // latin1: a char per byte, cheaper than UTF-8 decoding, and the ASCII looked for is unchanged.
      scanProbeLines(body.toString('latin1'), precision, (asset, ts) => {
        if (ts < this.from) return;
        const key = `${asset}@${ts}`;
        if (this.seen.has(key)) return;
        this.seen.add(key);
        this.timeline.push([ts, ackAt - ts]);
      });
    } catch {
      // A body that does not decode holds nothing to measure; influxd already judged it.
    }
  }
}
