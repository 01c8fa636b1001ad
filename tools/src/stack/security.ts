/**
 * Security of the local stack, provisioned once into the data folder:
 *   registry.json          the device registry (the flow's evtwin-registry node reads it), the demo assets
 *                          registered once; device-tokens.json (0600) keeps their tokens for the simulator
 *   jwt-secret             signs user access tokens (env EVTWIN_JWT_SECRET wins)
 *   mqtt-service-password  the Node-RED flow's own broker login (user evtwin-node-red)
 *   mosquitto/passwd, acl  Mosquitto files made from the registry (the `evtwin broker-files` code)
 *   node-red/<flow>_cred.json  the flow's broker credentials as ${VAR} references, never the secret itself
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import {
  entryId,
  mosquittoHash,
  register,
  rotateToken,
  type Asset,
  type RegistryState,
} from 'node-red-contrib-evtwin';
import { loadRegistry, updateRegistry } from 'node-red-contrib-evtwin/runtime';
import { writeBrokerFiles } from '../cli';
import { assetKey } from '../sim/faults';
import { userIds } from '../services';

export const SERVICE_USER = 'evtwin-node-red';
/** The flow's broker config node, whose credentials the stack provides. */
export const FLOW_BROKER_NODE = 'evtwin-stack-broker';

export interface StackSecurity {
  registryFile: string;
  tokensFile: string;
  /** Device tokens by "site/asset" (for the simulator). */
  tokens: Record<string, string>;
  /** Devices registered by this start (0 after the first). */
  registered: number;
  jwtSecret: string;
  serviceUser: string;
  servicePassword: string;
}

/** A secret from env, else one generated once and kept (0600) in `file`. */
function keptSecret(file: string, envName: string): string {
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

function writePrivateJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * Register every asset of the model that the registry lacks (owner "stack"), and give a new token to a
 * registered device whose token the tokens file lost. Revoked devices stay revoked (and rejected).
 */
export function provisionSecurity(dataDir: string, assets: readonly Asset[]): StackSecurity {
  mkdirSync(dataDir, { recursive: true });
  const registryFile = join(dataDir, 'registry.json');
  const tokensFile = join(dataDir, 'device-tokens.json');
  let tokens: Record<string, string> = {};
  if (existsSync(tokensFile)) tokens = JSON.parse(readFileSync(tokensFile, 'utf8')) as Record<string, string>;
  let state: RegistryState | undefined = existsSync(registryFile) ? loadRegistry(registryFile) : undefined;
  let registered = 0;
  const ctx = () => ({ now: Date.now(), actor: 'stack' });
  for (const a of assets) {
    const key = assetKey(a);
    const id = entryId(a.site, a.id);
    const entry = state?.entries.find((e) => e.id === id);
    if (entry?.revokedAt !== undefined) {
      delete tokens[key];
      continue;
    }
    if (entry && tokens[key]) continue;
    const r = entry
      ? updateRegistry(registryFile, (s) => rotateToken(s, id, ctx()))
      : updateRegistry(registryFile, (s) =>
          register(s, { site: a.site, asset: a.id, owner: 'stack', name: a.name }, ctx()),
        );
    if (!entry) registered++;
    state = r.state;
    tokens[key] = r.token;
  }
  writePrivateJson(tokensFile, tokens);
  return {
    registryFile,
    tokensFile,
    tokens,
    registered,
    jwtSecret: keptSecret(join(dataDir, 'jwt-secret'), 'EVTWIN_JWT_SECRET'),
    serviceUser: SERVICE_USER,
    servicePassword: keptSecret(join(dataDir, 'mqtt-service-password'), 'EVTWIN_MQTT_PASSWORD'),
  };
}

/**
 * The stack's water sensors may also publish on the legacy scheme jjm/sensors/{asset}/data (site
 * water-north, see the flow); the flow's service user reads it.
 */
function jjmAcl(state: RegistryState): string {
  const out = [`user ${SERVICE_USER}`, 'topic read jjm/#', ''];
  for (const e of state.entries)
    if (e.revokedAt === undefined && e.site === 'water-north')
      out.push(`user ${e.site}/${e.asset}`, `topic write jjm/sensors/${e.asset}/data`, '');
  return out.join('\n');
}

/**
 * The stack's Mosquitto passwd and acl: the registry's devices, the flow's service user and the legacy
 * jjm/ topics. The one writer of both `npm start` (brokerConfig) and docker compose's security-init job
 * (docker/init-security.js), so the two brokers accept the same clients and topics.
 */
export function writeStackBrokerFiles(
  registryFile: string,
  brokerDir: string,
  servicePassword: string,
): ReturnType<typeof writeBrokerFiles> {
  const state = loadRegistry(registryFile);
  return writeBrokerFiles(
    state,
    brokerDir,
    [{ username: SERVICE_USER, hash: mosquittoHash(servicePassword) }],
    jjmAcl(state),
  );
}

/**
 * Mosquitto passwd and acl from the registry, and the config lines that use them. Started as root,
 * Mosquitto drops to user "mosquitto" before it reads these files: they (and its persistence folder)
 * then belong to that user, and the data folder gets the execute bit for others (enter, not list).
 * Only when a folder above cannot be entered that way does the broker keep running as root.
 */
export function brokerConfig(
  sec: StackSecurity,
  brokerDir: string,
): { extraConfig: string[]; devices: number; note?: string } {
  const r = writeStackBrokerFiles(sec.registryFile, brokerDir, sec.servicePassword);
  const extraConfig = [
    `password_file ${r.passwd}`,
    `acl_file ${r.acl}`,
    'allow_anonymous false',
    // Mosquitto's default of 20 unacknowledged QoS 1 messages caps Node-RED's intake (npm run bench).
    'max_inflight_messages 1000',
  ];
  let note: string | undefined;
  const broker = process.getuid?.() === 0 ? userIds('mosquitto') : undefined;
  if (broker) {
    const blocked = ancestorsNotEnterable(dirname(brokerDir));
    if (blocked.length === 0) {
      chownSync(brokerDir, broker.uid, broker.gid);
      for (const f of readdirSync(brokerDir)) chownSync(join(brokerDir, f), broker.uid, broker.gid);
    } else {
      extraConfig.push('user root');
      note = `Mosquitto runs as root: user "mosquitto" cannot enter ${blocked.join(', ')}`;
    }
  }
  return { extraConfig, devices: r.devices, ...(note ? { note } : {}) };
}

/** Folders from `dir` up that others cannot enter; the data folder itself gets o+x when it lacks it. */
function ancestorsNotEnterable(dir: string): string[] {
  const blocked: string[] = [];
  const dataDir = dir;
  for (let d = dir; ; d = dirname(d)) {
    const mode = statSync(d).mode;
    if ((mode & 0o001) === 0) {
      if (d === dataDir) chmodSync(d, (mode & 0o777) | 0o001);
      else blocked.push(d);
    }
    if (dirname(d) === d) break;
  }
  return blocked;
}

/**
 * Node-RED keeps credentials in `<userDir>/<flow name>_cred.json`, encrypted with the credential secret
 * (aes-256-ctr, key sha256(secret), hex IV in front: Node-RED's own format). The broker node gets
 * ${EVTWIN_MQTT_USER} / ${EVTWIN_MQTT_PASSWORD}, which Node-RED substitutes from the environment.
 * Other nodes' credentials in the file are kept.
 */
export function writeFlowCredentials(
  userDir: string,
  flowFile: string,
  credentialSecret: string,
  /** More nodes' credentials (docker compose adds the InfluxDB login as ${VAR} references). */
  extra: Record<string, Record<string, string>> = {},
): void {
  const file = join(userDir, `${basename(flowFile, extname(flowFile))}_cred${extname(flowFile)}`);
  const key = createHash('sha256').update(credentialSecret).digest();
  let creds: Record<string, Record<string, string>> = {};
  if (existsSync(file)) {
    try {
      const enc = (JSON.parse(readFileSync(file, 'utf8')) as { $?: string }).$ ?? '';
      const d = createDecipheriv('aes-256-ctr', key, Buffer.from(enc.slice(0, 32), 'hex'));
      creds = JSON.parse(d.update(enc.slice(32), 'base64', 'utf8') + d.final('utf8')) as typeof creds;
    } catch {
      creds = {}; // another secret: Node-RED could not read it either
    }
  }
  creds[FLOW_BROKER_NODE] = {
    ...creds[FLOW_BROKER_NODE],
    user: '${EVTWIN_MQTT_USER}',
    password: '${EVTWIN_MQTT_PASSWORD}',
  };
  for (const [id, c] of Object.entries(extra)) creds[id] = { ...creds[id], ...c };
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-ctr', key, iv);
  const body = c.update(JSON.stringify(creds), 'utf8', 'base64') + c.final('base64');
  mkdirSync(userDir, { recursive: true });
  writePrivateJson(file, { $: iv.toString('hex') + body });
}
