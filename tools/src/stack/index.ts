/**
 * `npm start`: the whole EVTwin stack on one machine. influxd (provisioned), an MQTT broker
 * (Mosquitto, else embedded aedes), embedded Node-RED running flows/evtwin-stack.json with our nodes,
 * and the device simulator. Data under .data/ (or EVTWIN_DATA_DIR). Ctrl-C stops what it started.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { parseAssetModel, type Asset } from 'node-red-contrib-evtwin';
import { findExecutable, startInfluxd, INFLUXD_MISSING, type Service } from '../services';
import {
  FAULT_KINDS,
  FAULT_TYPES,
  FaultSpecError,
  parseFaultSpec,
  resolveFaults,
  startSimulator,
  type FaultSpec,
  type Simulator,
} from '../sim';
import { startBroker, type Broker } from './broker';
import {
  GRAFANA_MISSING,
  findGrafana,
  serviceToken,
  startGrafana,
  syncLocalPermissions,
  type GrafanaHandle,
} from './grafana';
import { describeProvisioning, provisionInfluxDB } from './influxProvision';
import { directoryBytes, recentTelemetryPoints } from './influxStats';
import { credentialSecret, startNodeRed, type NodeRedHandle } from './nodeRed';
import { choosePort } from './ports';
import { brokerConfig, provisionSecurity, writeFlowCredentials } from './security';

export interface StackArgs {
  sim: boolean;
  embeddedBroker: boolean;
  statsEveryS: number;
  /** Flow file to run instead of flows/evtwin-stack.json. */
  flow?: string;
  /** Scheduled simulator faults (`--fault=SPEC`, repeatable; evtwin-sim's syntax and parser). */
  faults: FaultSpec[];
  help: boolean;
}

/** A mistake on the command line: runStack prints it and returns 2 before it starts anything. */
export class StackUsageError extends Error {
  override name = 'StackUsageError';
}

const FAULT_SYNTAX = 'TYPE:ASSET:START_S:DURATION_S[:SEVERITY]';

export const USAGE = `Usage: npm start [-- options]   (or: node tools/bin/evtwin-stack.js [options])

Starts InfluxDB, an MQTT broker, Node-RED with the EVTwin nodes and flows/, the device simulator, and
Grafana with our plugins and provisioning/grafana when a grafana binary is on PATH.

Options:
  --no-sim            do not start the simulator (devices of your own publish to the broker)
  --embedded-broker   use the embedded aedes broker even when Mosquitto is installed
  --stats-every=S     seconds between "flowing" lines (default 5; 0 turns them off)
  --flow=FILE         run this flow file instead of flows/evtwin-stack.json
  --fault=SPEC        inject a fault into the simulator; repeatable. SPEC is TYPE:ASSET:START_S:DURATION_S
                      [:SEVERITY], as for evtwin-sim --fault: ASSET an id, SITE/ASSET or *; START_S seconds
                      after the simulator starts; SEVERITY in (0, 1], default 1. A bad SPEC exits with 2.
                      E.g. --fault=high_temperature:cnc-02:0:600. TYPE, and the asset kinds it applies to:
${FAULT_TYPES.map((t) => `                        ${t.padEnd(17)} ${FAULT_KINDS[t].join(', ')}`).join('\n')}
  -h, --help          this text

Environment:
  EVTWIN_DATA_DIR           data folder (default .data/ in the repository, git-ignored)
  EVTWIN_INFLUX_PORT, EVTWIN_MQTT_PORT, EVTWIN_NODE_RED_PORT, EVTWIN_GRAFANA_PORT
                            fixed ports (0 = any free port); by default 8086, 1883, 1880, 3000 unless taken
  EVTWIN_GRAFANA=off        do not start Grafana even when it is installed
  EVTWIN_SERVICE_TOKEN      Grafana's token for the twin API (default: generated once, <data>/service-token)
  EVTWIN_CREDENTIAL_SECRET  key for Node-RED credentials (default: generated once in the data folder)
  EVTWIN_JWT_SECRET         key for user access tokens (default: generated once, <data>/jwt-secret)
  EVTWIN_MQTT_PASSWORD      the flow's broker password, user evtwin-node-red (default: generated once)

Security (provisioned once in the data folder): registry.json registers the demo assets; their tokens are in
device-tokens.json (0600) for the simulator; Mosquitto gets passwd/acl made from the registry (a device logs
in as "<site>/<asset>" with its token and may publish only its own topics); evtwin-auth in the flow checks
every message's token; users from provisioning/evtwin/users.yaml log in at /evtwin/api/v1/auth/login; the
audit log is registry.json.audit.jsonl (check: evtwin audit verify FILE).
`;

/** The command line; throws StackUsageError on a mistake. */
export function parseStackArgs(argv: string[]): StackArgs {
  const args: StackArgs = { sim: true, embeddedBroker: false, statsEveryS: 5, faults: [], help: false };
  for (const a of argv) {
    if (a === '--no-sim') args.sim = false;
    else if (a === '--embedded-broker') args.embeddedBroker = true;
    else if (a === '-h' || a === '--help') args.help = true;
    else if (a.startsWith('--stats-every=')) {
      const s = Number(a.slice('--stats-every='.length));
      if (!Number.isFinite(s) || s < 0) throw new StackUsageError(`${a}: expected a number of seconds`);
      args.statsEveryS = s;
    } else if (a.startsWith('--flow=')) args.flow = resolve(a.slice('--flow='.length));
    else if (a.startsWith('--fault=')) {
      try {
        args.faults.push(parseFaultSpec(a.slice('--fault='.length)));
      } catch (err) {
        if (!(err instanceof FaultSpecError)) throw err;
        throw new StackUsageError(`--fault: ${err.message}`);
      }
    } else if (a === '--fault') throw new StackUsageError(`--fault needs a spec: --fault=${FAULT_SYNTAX}`);
    else throw new StackUsageError(`unknown option ${a}\n\n${USAGE}`);
  }
  if (args.faults.length > 0 && !args.sim)
    throw new StackUsageError('--fault injects faults into the simulator: it does not go with --no-sim');
  return args;
}

/** Check the faults against the asset model (no such asset, a leak on a CNC machine…) before starting. */
export function checkStackFaults(faults: readonly FaultSpec[], assets: readonly Asset[]): void {
  try {
    resolveFaults(faults, assets);
  } catch (err) {
    if (!(err instanceof FaultSpecError)) throw err;
    throw new StackUsageError(`--fault: ${err.message}`);
  }
}

const describeFault = (f: FaultSpec): string =>
  `${f.type} on ${f.asset} from ${f.startS} s for ${f.durationS} s` +
  (f.severity === undefined ? '' : ` (severity ${f.severity})`);

const DATABASE = 'evtwin';
const say = (line: string): void => console.log(line);
const kib = (bytes: number): string =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1048576
      ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${(bytes / 1048576).toFixed(1)} MiB`;

/** Refuse to share a data folder with a running stack: influxd would block on its locked files. */
function takeLock(dataDir: string): () => void {
  const file = join(dataDir, 'stack.pid');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    let alive = false;
    try {
      if (pid > 0 && pid !== process.pid) alive = process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (alive) throw new Error(`another EVTwin stack (pid ${pid}) is using ${dataDir}; stop it first`);
  }
  writeFileSync(file, `${process.pid}\n`);
  return () => rmSync(file, { force: true });
}

/** Resolve within `ms` whatever the step does, so one stuck step cannot block Ctrl-C. */
async function bounded(name: string, ms: number, step: () => Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      say(`  ${name}: still stopping after ${ms / 1000} s, moving on`);
      resolve();
    }, ms);
  });
  try {
    await Promise.race([step().then(() => undefined), timeout]);
  } catch (err) {
    say(`  ${name}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

export async function runStack(argv: string[], repoRoot: string): Promise<number> {
  const assetsFile = join(repoRoot, 'provisioning', 'evtwin', 'assets.yaml');
  let args: StackArgs;
  let assets: Asset[];
  try {
    args = parseStackArgs(argv);
    if (args.help) {
      say(USAGE);
      return 0;
    }
    assets = parseAssetModel(readFileSync(assetsFile, 'utf8'), assetsFile).assets;
    checkStackFaults(args.faults, assets);
  } catch (err) {
    if (!(err instanceof StackUsageError)) throw err;
    console.error(`evtwin: ${err.message}`);
    return 2;
  }
  const t0 = performance.now();
  const dataDir = resolve(process.env.EVTWIN_DATA_DIR || join(repoRoot, '.data'));
  const flowFile = args.flow ?? join(repoRoot, 'flows', 'evtwin-stack.json');
  const provisioningFile = join(repoRoot, 'provisioning', 'influxdb', 'evtwin.yaml');
  mkdirSync(dataDir, { recursive: true });

  if (!findExecutable('influxd')) {
    console.error(`evtwin: ${INFLUXD_MISSING}`);
    return 1;
  }
  const releaseLock = takeLock(dataDir);
  const children: ChildProcess[] = [];
  // If this process dies without the orderly stop, take the children it started down with it.
  const killChildren = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.on('exit', killChildren);

  let influxd: Service | undefined;
  let broker: Broker | undefined;
  let red: NodeRedHandle | undefined;
  let grafana: GrafanaHandle | undefined;
  let sim: Simulator | undefined;
  let statsTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;

  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      if (statsTimer) clearInterval(statsTimer);
      say('evtwin: stopping…');
      if (sim) {
        const s = sim;
        await bounded('simulator', 5000, () => s.stop());
      }
      if (grafana) await bounded('Grafana', 10000, () => (grafana as GrafanaHandle).stop());
      if (red) await bounded('Node-RED', 15000, () => (red as NodeRedHandle).stop());
      if (broker) await bounded(`${broker.kind}`, 8000, () => (broker as Broker).stop());
      if (influxd) await bounded('influxd', 8000, () => (influxd as Service).stop());
      killChildren();
      releaseLock();
      say('stopped');
    })());

  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      say(`evtwin: ${signal} again: killing what is left`);
      killChildren();
      releaseLock();
      process.exit(1);
    }
    interrupted = true;
    void stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const shown = relative(process.cwd(), dataDir);
    say(`EVTwin local stack — data in ${shown && !shown.startsWith('..') ? shown : dataDir}`);

    const influxPort = await choosePort('InfluxDB', 8086, 'EVTWIN_INFLUX_PORT');
    if (influxPort.note) say(`  note: ${influxPort.note}`);
    // Detached: a terminal's Ctrl-C reaches only us, so Node-RED can flush into a running influxd.
    influxd = await startInfluxd({
      dataDir: join(dataDir, 'influxdb'),
      port: influxPort.port,
      detached: true,
    });
    children.push(influxd.process);
    const report = await provisionInfluxDB(influxd.url, provisioningFile);
    say(`  InfluxDB   ${influxd.url}  (influxd pid ${influxd.process.pid}, database ${DATABASE})`);
    say(
      `             provisioned from ${relative(repoRoot, provisioningFile)}: ${describeProvisioning(report)}`,
    );
    if (interrupted) return await stopAll().then(() => 0);

    const usersFile = join(repoRoot, 'provisioning', 'evtwin', 'users.yaml');
    const sec = provisionSecurity(dataDir, assets);
    let brokerNote: string | undefined;
    let brokerDevices = 0;

    const mqttPort = await choosePort('MQTT broker', 1883, 'EVTWIN_MQTT_PORT');
    if (mqttPort.note) say(`  note: ${mqttPort.note}`);
    broker = await startBroker({
      dataDir: join(dataDir, 'mosquitto'),
      port: mqttPort.port,
      embedded: args.embeddedBroker,
      mosquittoConfig: () => {
        const c = brokerConfig(sec, join(dataDir, 'mosquitto'));
        brokerNote = c.note;
        brokerDevices = c.devices;
        return c.extraConfig;
      },
    });
    if (broker.process) children.push(broker.process);
    say(
      `  MQTT       ${broker.url}  (` +
        (broker.kind === 'mosquitto'
          ? `mosquitto pid ${broker.process?.pid}, MQTT 5`
          : 'embedded aedes broker, MQTT 3.1.1; install mosquitto for MQTT 5 and shared subscriptions') +
        ')',
    );
    if (brokerNote) say(`  note: ${brokerNote}`);
    say(
      `  security   registry ${relative(repoRoot, sec.registryFile).startsWith('..') ? sec.registryFile : relative(repoRoot, sec.registryFile)} ` +
        `(${Object.keys(sec.tokens).length} device tokens in ${basename(sec.tokensFile)}, ${sec.registered} newly registered); ` +
        (broker.kind === 'mosquitto'
          ? `Mosquitto logins + ACLs for ${brokerDevices} devices and ${sec.serviceUser}`
          : 'aedes has no logins or ACLs: only evtwin-auth in the flow checks tokens (in the payload on MQTT 3.1.1)'),
    );
    if (interrupted) return await stopAll().then(() => 0);

    const redPort = await choosePort('Node-RED', 1880, 'EVTWIN_NODE_RED_PORT');
    if (redPort.note) say(`  note: ${redPort.note}`);
    const userDir = join(dataDir, 'node-red');
    // evtwin-influx spools under <userDir>/evtwin-spool/<config node id> unless told otherwise.
    const spoolDir = join(userDir, 'evtwin-spool');
    // The flow and settings read these as ${VAR}; set before Node-RED loads them.
    Object.assign(process.env, {
      EVTWIN_LOG_LEVEL: process.env.EVTWIN_LOG_LEVEL || 'warn',
      EVTWIN_INFLUX_URL: influxd.url,
      EVTWIN_MQTT_URL: broker.url,
      EVTWIN_MQTT_PROTOCOL: String(broker.protocolVersion),
      EVTWIN_ASSETS: assetsFile,
      EVTWIN_REGISTRY: sec.registryFile,
      EVTWIN_USERS: process.env.EVTWIN_USERS || usersFile,
      EVTWIN_JWT_SECRET: sec.jwtSecret,
      EVTWIN_MQTT_USER: sec.serviceUser,
      EVTWIN_MQTT_PASSWORD: sec.servicePassword,
      EVTWIN_SERVICE_TOKEN: serviceToken(dataDir),
    });
    // The flow's broker login: credentials that name the env vars above (Node-RED substitutes them).
    // evtwin-api's service token (Grafana's datasource route and alert webhook send it) the same way.
    writeFlowCredentials(userDir, flowFile, credentialSecret(userDir), {
      'evtwin-stack-api': { serviceToken: '${EVTWIN_SERVICE_TOKEN}' },
    });
    red = await startNodeRed({
      userDir,
      flowFile,
      port: redPort.port,
      settingsFile: join(repoRoot, 'provisioning', 'node-red', 'settings.js'),
      nodePackageDir: join(repoRoot, 'node-red-nodes'),
    });
    const ours = (await red.nodeTypes()).filter((t) => t.startsWith('evtwin-'));
    say(`  Node-RED   ${red.url}  (editor; flow ${relative(repoRoot, flowFile)}; nodes ${ours.join(', ')})`);
    if (interrupted) return await stopAll().then(() => 0);

    if (process.env.EVTWIN_GRAFANA === 'off') say('  Grafana    off (EVTWIN_GRAFANA=off)');
    else if (findGrafana()) {
      const grafanaPort = await choosePort('Grafana', 3000, 'EVTWIN_GRAFANA_PORT');
      if (grafanaPort.note) say(`  note: ${grafanaPort.note}`);
      const g = await startGrafana({
        dataDir: join(dataDir, 'grafana'),
        repoRoot,
        port: grafanaPort.port,
        // Read by provisioning/grafana/*.yaml; no InfluxDB login locally (influxd runs without auth).
        env: {
          EVTWIN_NODE_RED_URL: red.url.replace(/\/$/, ''),
          EVTWIN_SERVICE_TOKEN: serviceToken(dataDir),
          EVTWIN_INFLUX_URL: influxd.url,
          EVTWIN_INFLUX_READ_USER: '',
          EVTWIN_INFLUX_READ_PASSWORD: '',
        },
      });
      if (g) {
        grafana = g;
        children.push(g.process);
        const pwFile = relative(repoRoot, join(dataDir, 'grafana', 'admin-password'));
        say(
          `  Grafana    ${g.url}/  (login admin, ` +
            (g.firstStart
              ? `password ${g.adminPassword} — shown once, kept in ${pwFile})`
              : `password in ${pwFile})`),
        );
        say(`             ${await syncLocalPermissions(g, process.env.EVTWIN_USERS || usersFile)}`);
      }
    } else say(`  ${GRAFANA_MISSING}`);
    if (interrupted) return await stopAll().then(() => 0);

    if (args.sim) {
      sim = startSimulator({
        url: broker.url,
        assets,
        rate: 1,
        seed: 42,
        qos: 1,
        batch: 1,
        // On Mosquitto each device logs in with its own name and token (the ACL allows only its topics).
        connectionPerDevice: broker.kind === 'mosquitto',
        brokerLogin: broker.kind === 'mosquitto',
        tokens: sec.tokens,
        faults: args.faults,
        // The embedded aedes broker speaks MQTT 3.1.1 only.
        protocolVersion: broker.protocolVersion,
      });
      sim.done.catch((err: unknown) => say(`evtwin: simulator stopped: ${(err as Error).message}`));
      say(
        `  simulator  ${assets.length} devices, 1 message/s each, seed 42, QoS 1, MQTT ${broker.protocolVersion === 5 ? '5' : '3.1.1'} → ${broker.url}` +
          (broker.kind === 'mosquitto' ? ', one login per device' : ''),
      );
      if (args.faults.length > 0) say(`             faults: ${args.faults.map(describeFault).join('; ')}`);
    } else {
      say('  simulator  off (--no-sim): publish to evtwin/v1/{site}/{asset}/telemetry yourself');
    }

    const q = 'SELECT count(*) FROM telemetry WHERE time > now() - 1m';
    say('');
    say('Query the data:');
    say(
      `  influx -port ${influxd.port} -database ${DATABASE} -execute '${q}'` +
        (findExecutable('influx') ? '' : '   (CLI: apt-get install influxdb-client)'),
    );
    say(`  curl -sG ${influxd.url}/query --data-urlencode db=${DATABASE} --data-urlencode "q=${q}"`);
    say('');
    say(`ready in ${((performance.now() - t0) / 1000).toFixed(1)} s — Ctrl-C stops everything it started`);

    if (args.statsEveryS > 0) {
      const everyMs = args.statsEveryS * 1000;
      let lastSent = 0;
      const influxUrl = influxd.url;
      statsTimer = setInterval(() => {
        void (async () => {
          const stats = sim?.stats();
          const sent = stats ? stats.acked : 0;
          const delta = sent - lastSent;
          lastSent = sent;
          let points: string;
          try {
            points = String(await recentTelemetryPoints(influxUrl, DATABASE, everyMs));
          } catch (err) {
            points = `? (${(err as Error).message})`;
          }
          const time = new Date().toISOString().slice(11, 19);
          say(
            `[${time}] flowing: ` +
              (stats ? `simulator sent ${delta} readings (${sent} total), ` : '') +
              (stats && args.faults.length > 0
                ? `faults active on ${stats.faultsActive} of ${assets.length} devices, `
                : '') +
              `InfluxDB ${points} points in the last ${args.statsEveryS} s, spool ${kib(directoryBytes(spoolDir))}`,
          );
        })();
      }, everyMs);
    }
    return await new Promise<number>(() => undefined);
  } catch (err) {
    console.error(`evtwin: ${(err as Error).message}`);
    await stopAll();
    return 1;
  }
}
