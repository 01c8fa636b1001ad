/**
 * Start and stop the real services the stack and the tests use: Debian's `influxd` and Mosquitto,
 * bound to 127.0.0.1 on free ports with their own data directories. Only processes started here are
 * ever stopped, by their pid.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function findExecutable(
  name: string,
  extraDirs: string[] = ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin'],
): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...extraDirs].filter(Boolean);
  for (const dir of dirs) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

export interface Service {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** Stop the process (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
  /** Kill it hard, as a crash would, keeping its data directory. */
  kill(): Promise<void>;
  /** Start it again on the same port and data (after kill or stop). */
  restart(): Promise<void>;
}

interface Spec {
  name: string;
  command: string;
  args: string[];
  port: number;
  dataDir: string;
  ready: () => Promise<boolean>;
  url: string;
  keepData: boolean;
  log?: (line: string) => void;
  detached?: boolean;
}

async function launch(spec: Spec): Promise<Service> {
  let child: ChildProcess;
  let exited: Promise<void>;
  let output = '';
  const start = async (): Promise<void> => {
    child = spawn(spec.command, spec.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: spec.detached === true,
    });
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-8000);
      if (spec.log) for (const l of chunk.toString().split('\n')) if (l.trim()) spec.log(l);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null)
        throw new Error(`${spec.name} exited with code ${child.exitCode}:\n${output}`);
      if (await spec.ready()) return;
      await sleep(50);
    }
    child.kill('SIGKILL');
    throw new Error(`${spec.name} did not become ready on 127.0.0.1:${spec.port} within 15 s:\n${output}`);
  };
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    name: spec.name,
    url: spec.url,
    port: spec.port,
    dataDir: spec.dataDir,
    get process() {
      return child;
    },
    async stop() {
      await end('SIGTERM');
      if (!spec.keepData) rmSync(spec.dataDir, { recursive: true, force: true });
    },
    kill: () => end('SIGKILL'),
    restart: async () => {
      await end('SIGTERM');
      await start();
    },
  };
}

export interface ServiceOptions {
  /** Data directory; a fresh temporary one (removed on stop) when omitted. */
  dataDir?: string;
  port?: number;
  log?: (line: string) => void;
  /** Own process group: a terminal's Ctrl-C then reaches only the parent, which stops this in order. */
  detached?: boolean;
}

function dataDirFor(name: string, opts: ServiceOptions): { dir: string; keep: boolean } {
  if (opts.dataDir) {
    mkdirSync(opts.dataDir, { recursive: true });
    return { dir: opts.dataDir, keep: true };
  }
  return { dir: mkdtempSync(join(tmpdir(), `evtwin-${name}-`)), keep: false };
}

export const INFLUXD_MISSING =
  'InfluxDB 1.x (influxd) is not installed. On Debian/Ubuntu: sudo apt-get install -y influxdb ' +
  '(the service need not run: EVTwin starts its own influxd). Elsewhere install InfluxDB 1.8 from influxdata.com.';
export const MOSQUITTO_MISSING =
  'Mosquitto is not installed. On Debian/Ubuntu: sudo apt-get install -y mosquitto mosquitto-clients';

/**
 * A port found free can be taken by another process before the service binds it (parallel test runs,
 * benchmarks): on "address already in use" try again with newly chosen ports.
 */
async function retryOnPortClash(attempt: () => Promise<Service>): Promise<Service> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (i >= 4 || !/address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

/** Start Debian's influxd (1.x) on 127.0.0.1 with its own config, data and a free port. */
export async function startInfluxd(opts: ServiceOptions = {}): Promise<Service> {
  const bin = findExecutable('influxd');
  if (!bin) throw new Error(INFLUXD_MISSING);
  const { dir, keep } = dataDirFor('influxd', opts);
  return retryOnPortClash(() => launchInfluxd(bin, dir, keep, opts));
}

async function launchInfluxd(
  bin: string,
  dir: string,
  keep: boolean,
  opts: ServiceOptions,
): Promise<Service> {
  const port = opts.port ?? (await freePort());
  const backupPort = await freePort();
  const conf = join(dir, 'influxd.conf');
  // The top-level bind-address is the backup/RPC port: without it influxd listens on every interface.
  writeFileSync(
    conf,
    [
      'reporting-disabled = true',
      `bind-address = "127.0.0.1:${backupPort}"`,
      '[meta]',
      `  dir = "${join(dir, 'meta')}"`,
      '[data]',
      `  dir = "${join(dir, 'data')}"`,
      `  wal-dir = "${join(dir, 'wal')}"`,
      '  query-log-enabled = false',
      '[http]',
      `  bind-address = "127.0.0.1:${port}"`,
      '  log-enabled = false',
      '[logging]',
      '  level = "warn"',
      '[monitor]',
      '  store-enabled = false',
      '[continuous_queries]',
      '  run-interval = "10s"',
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${port}`;
  return launch({
    name: 'influxd',
    command: bin,
    args: ['-config', conf],
    port,
    dataDir: dir,
    url,
    keepData: keep,
    ...(opts.log ? { log: opts.log } : {}),
    detached: opts.detached === true,
    ready: async () => {
      try {
        const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(500) });
        return res.status === 204;
      } catch {
        return false;
      }
    },
  });
}

/**
 * Started as root, Mosquitto drops to user "mosquitto" and then cannot write its persistence file into a
 * root-owned 0700 folder: it would lose its queues on restart without a word. The folder is handed to
 * that user (when it exists; otherwise the broker keeps running as root and can write it).
 */
function giveToMosquittoUser(dir: string): void {
  const ids = process.getuid?.() === 0 ? userIds('mosquitto') : undefined;
  if (ids) chownSync(dir, ids.uid, ids.gid);
}

/** uid and gid of a system user, or undefined when it does not exist. */
export function userIds(user: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/** Start Mosquitto on 127.0.0.1 with a free port (MQTT v5, shared subscriptions). */
export async function startMosquitto(
  opts: ServiceOptions & { extraConfig?: string[] } = {},
): Promise<Service> {
  const bin = findExecutable('mosquitto');
  if (!bin) throw new Error(MOSQUITTO_MISSING);
  const { dir, keep } = dataDirFor('mosquitto', opts);
  giveToMosquittoUser(dir);
  return retryOnPortClash(() => launchMosquitto(bin, dir, keep, opts));
}

async function launchMosquitto(
  bin: string,
  dir: string,
  keep: boolean,
  opts: ServiceOptions & { extraConfig?: string[] },
): Promise<Service> {
  const port = opts.port ?? (await freePort());
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 100000',
      'set_tcp_nodelay true',
      'log_type error',
      'log_type warning',
      ...(opts.extraConfig ?? []),
      '',
    ].join('\n'),
  );
  return launch({
    name: 'mosquitto',
    command: bin,
    args: ['-c', conf],
    port,
    dataDir: dir,
    url: `mqtt://127.0.0.1:${port}`,
    keepData: keep,
    ...(opts.log ? { log: opts.log } : {}),
    detached: opts.detached === true,
    ready: () =>
      new Promise<boolean>((resolve) => {
        import('node:net').then(
          ({ connect }) => {
            const sock = connect(port, '127.0.0.1');
            sock.once('connect', () => {
              sock.destroy();
              resolve(true);
            });
            sock.once('error', () => resolve(false));
          },
          () => resolve(false),
        );
      }),
  });
}
