/**
 * Several Node-RED instances in one test: Node-RED is a singleton per process, so each instance
 * runs in its own child process. The child side (`serveNodeRed`) starts a runtime on a flow and
 * prints READY; the parent side (`spawnNodeRedChild`) starts the child and waits for that line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';

export interface ChildRuntime {
  /** A throwaway directory: flows.json and a plain flows_cred.json are written there. */
  userDir: string;
  /** Admin HTTP port (the nodes' HTTP APIs), 127.0.0.1 only. */
  port: number;
  flow: unknown[];
  creds: Record<string, unknown>;
}

/** Child side: run Node-RED on `flow`, print READY once it listens, stop cleanly on SIGTERM. */
export async function serveNodeRed(c: ChildRuntime): Promise<void> {
  writeFileSync(join(c.userDir, 'flows.json'), JSON.stringify(c.flow));
  // credentialSecret false: the credentials file is plain JSON (a throwaway test userDir).
  writeFileSync(join(c.userDir, 'flows_cred.json'), JSON.stringify(c.creds));
  const RED = (await import('node-red')).default;
  type Handler = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;
  const server = createServer((req, res) =>
    (RED.httpAdmin as unknown as Handler)(req, res, () => {
      res.statusCode = 404;
      res.end();
    }),
  );
  const settings = {
    userDir: c.userDir,
    flowFile: join(c.userDir, 'flows.json'),
    credentialSecret: false,
    uiHost: '127.0.0.1',
    uiPort: c.port,
    httpAdminRoot: '/',
    httpNodeRoot: false,
    disableEditor: true,
    logging: { console: { level: 'warn' } },
  };
  RED.init(server, settings as unknown as Parameters<typeof RED.init>[1]);
  await new Promise<void>((resolve) => server.listen(c.port, '127.0.0.1', () => resolve()));
  await RED.start();
  process.stdout.write('READY\n');
  process.on('SIGTERM', () => {
    void RED.stop().finally(() => process.exit(0));
  });
}

/**
 * Parent side: run `script` (TypeScript, through tsx) with `config` as JSON in the environment
 * variable `envVar`; resolves once the child printed READY, rejects if it exits or times out first.
 * The child is added to `children` at once, so the caller's clean-up stops it whatever happens.
 */
export async function spawnNodeRedChild(
  script: string,
  envVar: string,
  config: { name: string },
  timeoutMs: number,
  children: ChildProcess[],
): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, [envVar]: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(p);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${config.name} did not start`)), timeoutMs);
    p.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('READY')) {
        clearTimeout(timer);
        resolve();
      }
    });
    p.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${config.name} exited ${code}`));
    });
  });
  return p;
}

/** SIGTERM each child (only those this test started) and wait for it to exit. */
export async function stopChildren(children: readonly ChildProcess[]): Promise<void> {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r)));
  }
}
