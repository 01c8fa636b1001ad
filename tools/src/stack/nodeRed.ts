/**
 * Embedded Node-RED for the local stack: one runtime in this process, editor and HTTP nodes on
 * 127.0.0.1, settings from provisioning/node-red/settings.js with the stack's overrides, and a check
 * that our node types really loaded (a missing type would leave the flow silently stopped).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface NodeRedOptions {
  userDir: string;
  /** Absolute path of the flow file to run. */
  flowFile: string;
  port: number;
  /** provisioning/node-red/settings.js */
  settingsFile: string;
  /** Directory of our node package, used as nodesDir only when Node-RED would not find it by itself. */
  nodePackageDir: string;
  log?: (line: string) => void;
}

export interface NodeRedHandle {
  url: string;
  port: number;
  /** Node types registered in the runtime, from the admin API. */
  nodeTypes(): Promise<string[]>;
  stop(): Promise<void>;
}

/** The credential secret: env EVTWIN_CREDENTIAL_SECRET, else one generated once and kept (0600) in userDir. */
export function credentialSecret(userDir: string): string {
  const fromEnv = process.env.EVTWIN_CREDENTIAL_SECRET;
  if (fromEnv) return fromEnv;
  const file = join(userDir, '.credential-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(userDir, { recursive: true });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

/**
 * Node-RED scans every node_modules folder above its own core nodes; from inside the monorepo that
 * includes the workspace symlink to our package. Only when it would not (an installed copy of the
 * tools elsewhere) do we point nodesDir at the package, since loading it twice is an error.
 */
function autoLoadsPackage(packageName: string): boolean {
  let dir = dirname(require.resolve('@node-red/nodes/package.json'));
  for (;;) {
    if (existsSync(join(dir, 'node_modules', packageName, 'package.json'))) return true;
    const up = dirname(dir);
    if (up === dir) return false;
    dir = up;
  }
}

/** The runtime's node registry (internal API: `RED.nodes`), as far as the shutdown below uses it. */
interface RuntimeNodes {
  eachNode(cb: (n: { id: string; type: string }) => void): void;
  getNode(id: string): { disconnect?: (done: () => void) => void } | null;
}

/**
 * Disconnect every `mqtt-broker` config node (persistent sessions keep their subscriptions: the broker
 * queues what arrives meanwhile), then give messages already inside the flow time to reach the writers.
 */
async function disconnectBrokers(nodes: RuntimeNodes, drainMs = 500): Promise<void> {
  const ids: string[] = [];
  nodes.eachNode((n) => {
    if (n.type === 'mqtt-broker') ids.push(n.id);
  });
  const live = ids.map((id) => nodes.getNode(id)).filter((n) => typeof n?.disconnect === 'function');
  if (live.length === 0) return;
  await Promise.all(
    live.map(
      (n) =>
        new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 3000);
          n?.disconnect?.(() => {
            clearTimeout(t);
            resolve();
          });
        }),
    ),
  );
  await new Promise((r) => setTimeout(r, drainMs));
}

/** Node types a flow file uses (tabs, subflow instances and groups excluded). */
export function flowNodeTypes(flowFile: string): string[] {
  const flow: unknown = JSON.parse(readFileSync(flowFile, 'utf8'));
  if (!Array.isArray(flow)) throw new Error(`${flowFile}: a flow file must be a JSON array of nodes`);
  const types = new Set<string>();
  for (const n of flow) {
    const type: unknown = typeof n === 'object' && n !== null ? (n as { type?: unknown }).type : undefined;
    if (
      typeof type === 'string' &&
      !['tab', 'group', 'junction'].includes(type) &&
      !type.startsWith('subflow')
    ) {
      types.add(type);
    }
  }
  return [...types].sort();
}

export async function startNodeRed(opts: NodeRedOptions): Promise<NodeRedHandle> {
  mkdirSync(opts.userDir, { recursive: true });
  // Node-RED is heavy to load: require it only when the stack starts it.
  const RED = (await import('node-red')).default;
  const base = ((await import(pathToFileURL(opts.settingsFile).href)) as { default: Record<string, unknown> })
    .default;
  const packageName = (
    JSON.parse(readFileSync(join(opts.nodePackageDir, 'package.json'), 'utf8')) as { name: string }
  ).name;
  const settings: Record<string, unknown> = {
    ...base,
    userDir: opts.userDir,
    flowFile: opts.flowFile,
    credentialSecret: credentialSecret(opts.userDir),
    // The local stack never listens beyond this machine, whatever the environment says.
    uiHost: '127.0.0.1',
    uiPort: opts.port,
    httpAdminRoot: '/',
    httpNodeRoot: '/',
    ...(autoLoadsPackage(packageName) ? {} : { nodesDir: [opts.nodePackageDir] }),
  };

  // Express apps are (req, res, next) handlers; their typings omit next. Both exist only after init.
  type Handler = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    // Admin (editor + API) first; whatever it does not handle goes to the HTTP-in nodes, then 404.
    (RED.httpAdmin as unknown as Handler)(req, res, () =>
      (RED.httpNode as unknown as Handler)(req, res, () => {
        res.statusCode = 404;
        res.end('Not found\n');
      }),
    );
  });
  RED.init(server, settings as unknown as Parameters<typeof RED.init>[1]);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${opts.port}/`;
  let started = false;
  const handle: NodeRedHandle = {
    url,
    port: opts.port,
    async nodeTypes() {
      const res = await fetch(`${url}nodes`, { headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(`GET ${url}nodes: HTTP ${res.status}`);
      const sets = (await res.json()) as { types?: string[]; enabled?: boolean; loaded?: boolean }[];
      return sets.filter((s) => s.enabled !== false && s.loaded !== false).flatMap((s) => s.types ?? []);
    },
    async stop() {
      // RED.stop() closes every node: writers flush their batches before it resolves. But it drops a
      // message still travelling between nodes, which the stock `mqtt in` has already acknowledged:
      // disconnect the brokers first and let what came in finish.
      if (started) {
        await disconnectBrokers(RED.nodes as unknown as RuntimeNodes);
        await RED.stop();
      }
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  // RED.start() resolves before the flows run: "ready" must mean the flow's HTTP routes answer.
  const flowsStarted = new Promise<void>((resolve) => RED.events.once('flows:started', () => resolve()));
  try {
    await RED.start();
    started = true;
    const registered = new Set(await handle.nodeTypes());
    const missing = flowNodeTypes(opts.flowFile).filter((t) => !registered.has(t));
    if (missing.length > 0) {
      throw new Error(
        `Node-RED did not load node type(s) ${missing.join(', ')} used by ${opts.flowFile}: ` +
          `is ${packageName} built (npm run build) and listed in its package.json "node-red".nodes?`,
      );
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      flowsStarted,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Node-RED did not start the flows of ${opts.flowFile} in 60 s`)),
          60_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  } catch (err) {
    await handle.stop().catch(() => undefined);
    throw err;
  }
  return handle;
}
