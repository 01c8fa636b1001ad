/**
 * The real stack command (`npm start`: tools/bin/evtwin-stack.js, compiled tools) in a child process,
 * on free ports with a temporary data folder, for the tests that drive it end to end.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../src/services';

const REPO = resolve(__dirname, '../../..');
const BIN = join(REPO, 'tools/bin/evtwin-stack.js');
const COMPILED = join(REPO, 'tools/dist/stack/index.js');

export interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  influxUrl: string;
  mqttUrl: string;
  redUrl: string;
  pids: number[];
  dataDir: string;
}

/** Start the stack with `args`; resolves once it printed "ready in … s" (its URLs parsed from its output). */
export async function startStack(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  assert.ok(existsSync(COMPILED), `${COMPILED} is missing: run npm run build -w tools (npm test does it)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'evtwin-stack-'));
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    EVTWIN_DATA_DIR: dataDir,
    EVTWIN_INFLUX_PORT: String(await freePort()),
    EVTWIN_MQTT_PORT: String(await freePort()),
    EVTWIN_NODE_RED_PORT: String(await freePort()),
    ...env,
  };
  // As from a clean shell: no credential secret inherited from the caller's environment.
  delete childEnv.EVTWIN_CREDENTIAL_SECRET;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: childEnv });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 40_000;
  while (!/^ready in [\d.]+ s/m.test(out)) {
    if (child.exitCode !== null) assert.fail(`stack exited with ${child.exitCode} before ready:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGINT');
      assert.fail(`stack not ready within 40 s:\n${out}`);
    }
    await sleep(50);
  }
  const find = (re: RegExp): string => {
    const m = re.exec(out);
    assert.ok(m?.[1], `${re} not in output:\n${out}`);
    return m[1];
  };
  return {
    child,
    output: () => out,
    exited,
    influxUrl: find(/InfluxDB\s+(http:\/\/127\.0\.0\.1:\d+)/),
    mqttUrl: find(/MQTT\s+(mqtt:\/\/127\.0\.0\.1:\d+)/),
    redUrl: find(/Node-RED\s+(http:\/\/127\.0\.0\.1:\d+\/)/),
    pids: [...out.matchAll(/(?:influxd|mosquitto) pid (\d+)/g)].map((m) => Number(m[1])),
    dataDir,
  };
}

/** Ctrl-C (SIGINT) the stack, SIGKILL it after 15 s, remove its data folder; its exit code ('killed' after SIGKILL). */
export async function stopStack(stack: Running): Promise<number | null | 'killed'> {
  stack.child.kill('SIGINT');
  const code = await Promise.race([
    stack.exited,
    sleep(15_000, undefined, { ref: false }).then(() => 'killed' as const),
  ]);
  if (code === 'killed') {
    stack.child.kill('SIGKILL');
    await stack.exited;
  }
  rmSync(stack.dataDir, { recursive: true, force: true });
  return code;
}
