/**
 * `evtwin`: operator commands on the same registry file the Node-RED nodes use.
 *   evtwin registry register|list|rename|rotate|revoke|rotate-key --file F ...
 *   evtwin broker-files --file F --out DIR [--service-user U --service-password-env VAR]
 *   evtwin audit verify FILE            (cli/audit.ts)
 *   evtwin user list|add|passwd ...     (cli/users.ts)
 *   evtwin grafana sync-permissions ... (cli/grafana.ts)
 * Exit codes: 0 ok, 1 failure (file, registry), 2 usage error.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  RegistryError,
  aclFile,
  entryId,
  mosquittoHash,
  passwordFile,
  publicEntry,
  register,
  rename,
  revoke,
  rotateKey,
  rotateToken,
  type RegistryEntry,
  type RegistryState,
} from 'node-red-contrib-evtwin';
import { loadRegistry, updateRegistry, eventFor, REGISTRY_EVENT_ROOT } from 'node-red-contrib-evtwin/runtime';
import { run as auditRun } from './audit';
import { run as grafanaRun } from './grafana';
import { run as usersRun } from './users';

export class UsageError extends Error {
  override name = 'UsageError';
}

export const HELP = `evtwin: registry and broker commands, users and the audit log

  evtwin registry list        --file F [--json]
  evtwin registry register    --file F --site S --asset A --owner O [--kind device|charge-point] [--name N] [--with-key] [--json]
  evtwin registry rename      --file F --site S --asset A --name N
  evtwin registry rotate      --file F --site S --asset A [--json]       (new token; the old one stops working)
  evtwin registry revoke      --file F --site S --asset A
  evtwin registry rotate-key  --file F --site S --asset A [--grace SECONDS] [--json]
  evtwin broker-files         --file F --out DIR [--service-user U --service-password-env VAR]
  evtwin user list|add|passwd ...   users.yaml: logins, roles, scopes, password hashes (evtwin user --help)
  evtwin audit verify FILE [--json] check an audit log's hash chain (evtwin audit --help)
  evtwin grafana sync-permissions --url URL --users FILE   Grafana teams, users, folder permissions (evtwin grafana --help)

Tokens and keys are printed once; the registry keeps only hashes of tokens.
--broker mqtt://HOST:PORT on registry changes also publishes the change to running Node-RED instances
(otherwise they notice the file change within about a second).
broker-files writes DIR/passwd and DIR/acl for Mosquitto 2.0 (password_file, acl_file); a device logs in
as "<site>/<asset>" with its token as password. Reload Mosquitto (SIGHUP) after writing them.
`;

const OPTIONS = {
  file: { type: 'string' },
  site: { type: 'string' },
  asset: { type: 'string' },
  owner: { type: 'string' },
  kind: { type: 'string' },
  name: { type: 'string' },
  'with-key': { type: 'boolean' },
  grace: { type: 'string' },
  json: { type: 'boolean' },
  out: { type: 'string' },
  broker: { type: 'string' },
  'service-user': { type: 'string' },
  'service-password-env': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  now: () => number;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
  env: process.env,
  now: Date.now,
};

function need(v: Record<string, unknown>, name: string): string {
  const x = v[name];
  if (typeof x !== 'string' || x === '') throw new UsageError(`--${name} is required`);
  return x;
}

async function publish(brokerUrl: string | undefined, entries: RegistryEntry[], now: number): Promise<void> {
  if (!brokerUrl) return;
  const { connectAsync } = await import('mqtt');
  const client = await connectAsync(brokerUrl, {
    protocolVersion: 5,
    connectTimeout: 5000,
    reconnectPeriod: 0,
  });
  try {
    for (const e of entries) {
      await client.publishAsync(
        `${REGISTRY_EVENT_ROOT}/${e.site}/${e.asset}`,
        JSON.stringify(eventFor(e, 'cli', now)),
        {
          qos: 1,
          retain: true,
        },
      );
    }
  } finally {
    await client.endAsync();
  }
}

function describeEntry(e: ReturnType<typeof publicEntry>): string {
  const state = e.revokedAt ? `revoked ${new Date(e.revokedAt).toISOString()}` : 'active';
  const keys = e.keys.filter((k) => k.acceptUntil === undefined).map((k) => k.kid);
  return `${e.id}\t${e.kind}\t${e.owner}\t${JSON.stringify(e.name)}\t${state}${keys.length ? `\tkey ${keys.join(',')}` : ''}`;
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  // These parse their own options.
  if (argv[0] === 'audit') return auditRun(argv.slice(1), io);
  if (argv[0] === 'grafana') return grafanaRun(argv.slice(1), io);
  // Passwords are read from the terminal or stdin, so `user` always uses the process's own io.
  if (argv[0] === 'user' || argv[0] === 'users') return usersRun(argv.slice(1));
  try {
    return await run(argv, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`evtwin: ${err.message}\n(see evtwin --help)`);
      return 2;
    }
    io.err(`evtwin: ${(err as Error).message}`);
    return 1;
  }
}

async function run(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values as Record<string, unknown>;
  const [group, command, ...extra] = parsed.positionals;
  if (v.help || group === undefined || group === 'help') {
    io.out(HELP);
    return group === undefined && !v.help ? 2 : 0;
  }
  const file = need(v, 'file');
  const ctx = () => ({ now: io.now(), actor: `cli:${safeUser()}` });
  const json = v.json === true;

  if (group === 'broker-files') {
    if (command !== undefined)
      throw new UsageError(`broker-files takes no further arguments (got "${command}")`);
    return brokerFiles(loadRegistry(file), need(v, 'out'), v, io);
  }
  if (group !== 'registry') throw new UsageError(`unknown command "${group}"`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const id = (): string => entryId(need(v, 'site'), need(v, 'asset'));
  const broker = typeof v.broker === 'string' ? v.broker : undefined;
  switch (command) {
    case 'list': {
      const entries = loadRegistry(file).entries.map(publicEntry);
      if (json) io.out(JSON.stringify(entries, null, 2));
      else for (const e of entries) io.out(describeEntry(e));
      return 0;
    }
    case 'register': {
      const req = {
        site: need(v, 'site'),
        asset: need(v, 'asset'),
        owner: need(v, 'owner'),
        ...(v.kind !== undefined ? { kind: v.kind } : {}),
        ...(v.name !== undefined ? { name: v.name } : {}),
        ...(v['with-key'] ? { withKey: true } : {}),
      };
      const r = guard(() => updateRegistry(file, (s) => register(s, req, ctx())));
      await publish(broker, [r.entry], io.now());
      if (json)
        io.out(
          JSON.stringify({ device: publicEntry(r.entry), token: r.token, ...(r.key ? { key: r.key } : {}) }),
        );
      else {
        io.out(`registered ${r.entry.id} (${r.entry.kind}, owner ${r.entry.owner})`);
        io.out(`token (shown once): ${r.token}`);
        if (r.key) io.out(`fernet key ${r.key.kid} (shown once): ${r.key.key}`);
      }
      return 0;
    }
    case 'rename': {
      const r = guard(() => updateRegistry(file, (s) => rename(s, id(), need(v, 'name'), ctx())));
      await publish(broker, [r.entry], io.now());
      io.out(`renamed ${r.entry.id} to ${JSON.stringify(r.entry.name)}`);
      return 0;
    }
    case 'rotate': {
      const r = guard(() => updateRegistry(file, (s) => rotateToken(s, id(), ctx())));
      await publish(broker, [r.entry], io.now());
      io.out(
        json
          ? JSON.stringify({ device: publicEntry(r.entry), token: r.token })
          : `new token for ${r.entry.id} (shown once): ${r.token}`,
      );
      return 0;
    }
    case 'revoke': {
      const r = guard(() => updateRegistry(file, (s) => revoke(s, id(), ctx())));
      await publish(broker, [r.entry], io.now());
      io.out(`revoked ${r.entry.id}`);
      return 0;
    }
    case 'rotate-key': {
      const raw = typeof v.grace === 'string' ? v.grace : '86400';
      const grace = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(grace) || grace < 0)
        throw new UsageError(`--grace ${raw}: expected seconds >= 0`);
      const r = guard(() => updateRegistry(file, (s) => rotateKey(s, id(), grace * 1000, ctx())));
      await publish(broker, [r.entry], io.now());
      io.out(
        json
          ? JSON.stringify({ device: publicEntry(r.entry), key: r.key })
          : `new fernet key ${r.key.kid} for ${r.entry.id} (shown once): ${r.key.key}`,
      );
      return 0;
    }
    default:
      throw new UsageError(
        command === undefined
          ? 'registry needs a command: register, list, rename, rotate, revoke, rotate-key'
          : `unknown registry command "${command}"`,
      );
  }
}

/** Registry refusals (bad id, conflict, not found) are the caller's mistake: usage errors. */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RegistryError) throw new UsageError(err.message);
    throw err;
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

function brokerFiles(state: RegistryState, out: string, v: Record<string, unknown>, io: Io): number {
  const services: { username: string; hash: string }[] = [];
  const user = v['service-user'];
  if (user !== undefined) {
    const envName = need(v, 'service-password-env');
    const password = io.env[envName];
    if (!password) throw new UsageError(`environment variable ${envName} (the service password) is empty`);
    services.push({ username: String(user), hash: mosquittoHash(password) });
  }
  const r = writeBrokerFiles(state, out, services);
  io.out(`wrote ${r.passwd} and ${r.acl}: ${r.devices} devices, ${services.length} service users`);
  if (r.missing.length)
    io.err(`warning: no broker password for ${r.missing.join(', ')} (rotate their tokens)`);
  return 0;
}

/**
 * Mosquitto's passwd (0600) and acl (0644) files in `out` for the registry's active devices and the
 * given service users (also used by the local stack). `extraAcl` is appended to the ACL file.
 */
export function writeBrokerFiles(
  state: RegistryState,
  out: string,
  services: { username: string; hash: string }[],
  extraAcl = '',
): { passwd: string; acl: string; devices: number; missing: string[] } {
  const active = state.entries.filter((e) => e.revokedAt === undefined);
  const missing = active.filter((e) => !e.brokerHash).map((e) => e.id);
  const devices = active
    .filter((e) => e.brokerHash)
    .map((e) => ({ site: e.site, asset: e.asset, brokerHash: e.brokerHash as string }));
  mkdirSync(out, { recursive: true });
  const passwd = join(out, 'passwd');
  const acl = join(out, 'acl');
  writeFileSync(passwd, passwordFile(devices, services), { mode: 0o600 });
  writeFileSync(
    acl,
    aclFile(
      devices,
      services.map((s) => s.username),
    ) + extraAcl,
    { mode: 0o644 },
  );
  return { passwd, acl, devices: devices.length, missing };
}
