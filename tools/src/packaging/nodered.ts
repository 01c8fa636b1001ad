/**
 * Run a stock Node-RED from its own CLI (`red.js`) against a user directory, the way a user runs it,
 * and talk to its admin HTTP API. Only the process started here is ever stopped, by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../services';

/** One entry of `GET /nodes` (Accept: application/json): a node set. */
export interface NodeSetInfo {
  id: string;
  name: string;
  types: string[];
  enabled: boolean;
  local?: boolean;
  user?: boolean;
  module: string;
  version: string;
  /** Why the set failed to load (a string, or an Error-like object such as {code: 'MODULE_NOT_FOUND'}). */
  err?: unknown;
}

export interface FlowNode {
  id: string;
  type: string;
  z?: string;
  wires?: string[][];
  [key: string]: unknown;
}

export interface NodeRedOptions {
  /** The node binary (Node 20 for Node-RED 4, Node 22 for Node-RED 5). */
  node: string;
  /** Path of Node-RED's `red.js`. */
  redJs: string;
  userDir: string;
  /** Extra lines for settings.js's exported object. */
  settings?: Record<string, unknown>;
  startTimeoutMs?: number;
}

export interface NodeRed {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Everything the process printed so far. */
  log(): string;
  /** Milliseconds from spawn until `GET /nodes` answered. */
  readonly startMs: number;
  getJson<T>(path: string): Promise<T>;
  /** Deploy a whole flow configuration (as the editor's Deploy > Full does). */
  deploy(flows: FlowNode[]): Promise<void>;
  /** Wait until the log, from `since` on, matches. */
  waitForLog(pattern: RegExp, since: number, timeoutMs?: number): Promise<string>;
  /** SIGINT, then SIGKILL after a grace period. */
  stop(): Promise<void>;
}

/** Write a settings.js for the user directory; 127.0.0.1 only, debug logs (they name the module paths). */
export function writeSettings(userDir: string, port: number, extra: Record<string, unknown> = {}): string {
  const settings = {
    uiHost: '127.0.0.1',
    uiPort: port,
    flowFile: 'flows.json',
    credentialSecret: 'evtwin-packaging-test',
    logging: { console: { level: 'debug', metrics: false, audit: false } },
    editorTheme: { tours: false },
    ...extra,
  };
  const file = join(userDir, 'settings.js');
  writeFileSync(file, `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  return file;
}

export async function startNodeRed(opts: NodeRedOptions): Promise<NodeRed> {
  const port = await freePort();
  const settingsFile = writeSettings(opts.userDir, port, opts.settings);
  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  // cwd outside the monorepo, and the chosen node first on PATH for anything Node-RED spawns (npm).
  const child = spawn(
    opts.node,
    [opts.redJs, '--userDir', opts.userDir, '--port', String(port), '--settings', settingsFile],
    {
      cwd: opts.userDir,
      env: { ...process.env, PATH: `${dirname(opts.node)}:${process.env.PATH ?? ''}`, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const getJson = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path, {
      headers: { Accept: 'application/json' },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = started + (opts.startTimeoutMs ?? 30_000);
  let ready = false;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Node-RED exited with code ${child.exitCode}:\n${output}`);
    try {
      await getJson('/nodes');
      ready = true;
      break;
    } catch {
      await sleep(100);
    }
  }
  if (!ready) {
    await stop();
    throw new Error(`Node-RED did not answer GET /nodes on ${url} within the timeout:\n${output}`);
  }
  const startMs = Date.now() - started;

  return {
    url,
    port,
    process: child,
    startMs,
    log: () => output,
    getJson,
    async deploy(flows) {
      const res = await fetch(`${url}/flows`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Node-RED-API-Version': 'v1',
          'Node-RED-Deployment-Type': 'full',
        },
        body: JSON.stringify(flows),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) throw new Error(`POST /flows: HTTP ${res.status} ${await res.text()}`);
    },
    async waitForLog(pattern, since, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        const m = pattern.exec(output.slice(since));
        if (m) return m[0];
        await sleep(50);
      }
      throw new Error(`log did not show ${pattern} within ${timeoutMs} ms:\n${output.slice(since)}`);
    },
    stop,
  };
}
