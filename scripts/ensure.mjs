#!/usr/bin/env node
/**
 * Runs before `npm start` (and `npm test` with --for-tests) on any checkout, even a fresh clone
 * without node_modules: plain Node, no dependencies. Makes sure that
 *   1. dependencies are installed (`npm ci` when node_modules is missing or older than package-lock.json),
 *   2. every workspace is built (`npm run build -w <ws>` when dist/ is missing or older than its sources),
 *   3. the system services exist: influxd always; mosquitto for tests (start falls back to aedes).
 *      Missing on Debian as root: apt-get installs them. Elsewhere: say what to install, exit 1.
 * Fast when everything is in place: it only reads directory timestamps.
 *
 * Options: --for-tests (mosquitto required), --dry-run (say what would run, run nothing).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = new Set(process.argv.slice(2));
const forTests = args.has('--for-tests');
const dryRun = args.has('--dry-run');
const t0 = performance.now();
const say = (line) => console.log(`ensure: ${line}`);

function run(why, command, argv, extraEnv = {}) {
  say(`${why} → ${command} ${argv.join(' ')}${dryRun ? ' (dry run: skipped)' : ''}`);
  if (dryRun) return 0;
  const res = spawnSync(command, argv, { cwd: root, stdio: 'inherit', env: { ...process.env, ...extraEnv } });
  if (res.error) throw res.error;
  return res.status ?? 1;
}

function mtime(path) {
  return statSync(path, { throwIfNoEntry: false })?.mtimeMs;
}

/** Newest modification time of any file under dir (0 when it does not exist). */
function newest(dir) {
  let best = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    best = Math.max(best, e.isDirectory() ? newest(p) : (mtime(p) ?? 0));
  }
  return best;
}

// 1. Dependencies.
const hidden = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
let installReason;
if (!existsSync(join(root, 'node_modules'))) installReason = 'node_modules is missing';
else if (!existsSync(hidden)) installReason = 'node_modules was not installed by npm from package-lock.json';
else if ((mtime(lock) ?? 0) > (mtime(hidden) ?? 0))
  installReason = 'package-lock.json is newer than node_modules';
if (installReason) {
  if (run(installReason, 'npm', ['ci', '--no-audit', '--no-fund']) !== 0) {
    console.error('ensure: npm ci failed (see above)');
    process.exit(1);
  }
}

const STACK_WORKSPACES = ['node-red-nodes', 'tools'];
// 2. Builds, in workspace order (a workspace may import an earlier one's dist).
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const ws of pkg.workspaces ?? []) {
  const dir = join(root, ws);
  const wsPkgFile = join(dir, 'package.json');
  if (!existsSync(wsPkgFile)) continue;
  if (!JSON.parse(readFileSync(wsPkgFile, 'utf8')).scripts?.build) continue;
  const sources = Math.max(
    newest(join(dir, 'src')),
    ...readdirSync(dir)
      .filter((f) => /^tsconfig.*\.json$/.test(f))
      .map((f) => mtime(join(dir, f)) ?? 0),
  );
  const built = newest(join(dir, 'dist'));
  if (built === 0 || sources > built) {
    const why = built === 0 ? `${ws}/dist is missing` : `${ws}/dist is older than its sources`;
    if (run(why, 'npm', ['run', 'build', '-w', ws]) !== 0) {
      // The local stack needs only the node package and the tools; tests need everything.
      if (forTests || STACK_WORKSPACES.includes(ws)) {
        console.error(`ensure: building ${ws} failed (see above)`);
        process.exit(1);
      }
      say(`building ${ws} failed; npm start does not need it, continuing`);
    }
  }
}

// 3. System services.
const SEARCH = [
  ...(process.env.PATH ?? '').split(delimiter),
  '/usr/sbin',
  '/usr/bin',
  '/usr/local/sbin',
  '/usr/local/bin',
];
const which = (name) => SEARCH.some((d) => d && existsSync(join(d, name)));
const wanted = [{ bin: 'influxd', packages: ['influxdb'], why: 'InfluxDB 1.x' }];
if (forTests) {
  wanted.push({ bin: 'mosquitto', packages: ['mosquitto', 'mosquitto-clients'], why: 'the MQTT broker' });
  wanted.push({
    bin: 'chromium',
    packages: ['chromium'],
    why: 'headless Chromium for the panel rendering tests',
  });
}
const missing = wanted.filter((w) => !which(w.bin));
if (missing.length > 0) {
  const packages = missing.flatMap((w) => w.packages);
  const debian = existsSync('/etc/debian_version') && which('apt-get');
  const rootUser = typeof process.getuid === 'function' && process.getuid() === 0;
  if (debian && rootUser) {
    const env = { DEBIAN_FRONTEND: 'noninteractive' };
    const why = `${missing.map((m) => m.bin).join(' and ')} not installed`;
    let status = run(why, 'apt-get', ['install', '-y', '--no-install-recommends', ...packages], env);
    if (status !== 0 && !dryRun) {
      // A fresh image often has no package lists yet.
      run('package lists may be missing', 'apt-get', ['update'], env);
      status = run(
        `retry: ${why}`,
        'apt-get',
        ['install', '-y', '--no-install-recommends', ...packages],
        env,
      );
    }
    if (status !== 0) {
      console.error(`ensure: apt-get install ${packages.join(' ')} failed (see above)`);
      process.exit(1);
    }
  } else {
    const lines = missing.map((m) => `  - ${m.bin} (${m.why})`);
    console.error(
      [
        `ensure: missing: ${missing.map((m) => m.bin).join(', ')}`,
        ...lines,
        debian
          ? `Install with: sudo apt-get install -y ${packages.join(' ')}   (then run the command again)`
          : 'Install InfluxDB 1.8 (https://www.influxdata.com/downloads/, "InfluxDB 1.x")' +
            (forTests ? ', Mosquitto (https://mosquitto.org/download/) and Chromium' : '') +
            ', make sure influxd' +
            (forTests ? ', mosquitto and chromium are' : ' is') +
            ' on PATH, then run the command again.',
      ].join('\n'),
    );
    process.exit(1);
  }
}
if (!forTests && !which('mosquitto')) {
  say('mosquitto not installed: npm start uses the embedded aedes broker (MQTT 3.1.1 only)');
}
say(`ready (${((performance.now() - t0) / 1000).toFixed(2)} s)`);
