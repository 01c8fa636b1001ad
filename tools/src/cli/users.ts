/**
 * `evtwin user add|passwd|list`: edit provisioning/evtwin/users.yaml in place (comments kept), validated
 * with the same loader the nodes use (against assets.yaml beside it), written atomically.
 * Passwords are read from stdin (without echo on a terminal) and stored only as scrypt hashes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { isMap, isSeq, parseDocument } from 'yaml';
import {
  AssetModelError,
  ROLES,
  isRole,
  parseAssetModel,
  parseUsers,
  type AssetModel,
  type User,
} from 'node-red-contrib-evtwin';
import { hashPassword, writeFileAtomic } from 'node-red-contrib-evtwin/runtime';

export const USERS_HELP = `evtwin user: users and roles (users.yaml)

  evtwin user list    [--file F] [--json]
  evtwin user add     LOGIN --role ROLE [--name N] [--sites S,..] [--lines SITE/LINE,..] [--assets SITE/ASSET,..] [--file F]
  evtwin user passwd  LOGIN [--file F]          (reads the password from stdin; twice, unechoed, on a terminal)

--file defaults to $EVTWIN_USERS or provisioning/evtwin/users.yaml; --assets-file (default: assets.yaml beside it)
checks scope references. Roles: ${ROLES.join(', ')} (lead: --sites/--lines; worker: --assets).
Only scrypt hashes are stored. Sessions already open stay valid until they expire or the user logs out:
restart Node-RED (or revoke sessions in the admin API) after a password change that must bite at once.
Exit codes: 0 ok, 1 failure, 2 usage error.`;

export interface UserCliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** The password: from stdin, or a prompt on a terminal. */
  readPassword: (prompt: string) => Promise<string>;
}

class UsageError extends Error {}

const list = (v: string | undefined): string[] | undefined =>
  v === undefined
    ? undefined
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

function loadModel(usersFile: string, assetsFile: string | undefined): AssetModel | undefined {
  const file = assetsFile ?? join(dirname(usersFile), 'assets.yaml');
  if (!existsSync(file)) {
    if (assetsFile) throw new UsageError(`--assets-file ${assetsFile}: no such file`);
    return undefined;
  }
  return parseAssetModel(readFileSync(file, 'utf8'), file);
}

/** `evtwin user ...` with the arguments after "user". */
export async function run(args: string[], io: UserCliIo = defaultIo()): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        file: { type: 'string' },
        'assets-file': { type: 'string' },
        role: { type: 'string' },
        name: { type: 'string' },
        sites: { type: 'string' },
        lines: { type: 'string' },
        assets: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out(USERS_HELP);
      return 0;
    }
    const [command, login, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0] ?? ''}`);
    const file = values.file ?? process.env.EVTWIN_USERS ?? join('provisioning', 'evtwin', 'users.yaml');
    const model = loadModel(file, values['assets-file']);
    const text = existsSync(file) ? readFileSync(file, 'utf8') : 'users: []\n';
    const users = parseUsers(text, file, model);

    if (command === 'list') {
      if (login) throw new UsageError('list takes no login');
      if (values.json)
        io.out(
          JSON.stringify(users.map(({ passwordHash, ...u }) => ({ ...u, hasPassword: !!passwordHash }))),
        );
      else
        for (const u of users) {
          const scope = [...u.scope.sites, ...u.scope.lines, ...u.scope.assets].join(',');
          io.out(
            `${u.login}\t${u.role}\t${scope || '-'}\t${u.passwordHash ? 'password' : 'no password'}\t${u.name}`,
          );
        }
      return 0;
    }
    if (command !== 'add' && command !== 'passwd') throw new UsageError('expected list, add or passwd');
    if (!login) throw new UsageError(`${command} needs a LOGIN`);
    // An empty file parses to no mapping: start one (parseUsers above refused anything else).
    const doc = parseDocument(isMap(parseDocument(text).contents) ? text : `${text}users: []\n`);
    let seq = doc.get('users', true);
    if (!isSeq(seq)) {
      doc.set('users', doc.createNode([]));
      seq = doc.get('users', true);
    }
    if (!isSeq(seq)) throw new Error('users is not a list');
    const index = users.findIndex((u) => u.login === login);

    if (command === 'add') {
      if (index >= 0) throw new UsageError(`user "${login}" exists already`);
      if (!isRole(values.role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
      const entry: Record<string, unknown> = { login, role: values.role };
      if (values.name) entry.name = values.name;
      const scope: Record<string, string[]> = {};
      for (const k of ['sites', 'lines', 'assets'] as const) {
        const v = list(values[k]);
        if (v) scope[k] = v;
      }
      if (Object.keys(scope).length > 0) entry.scope = scope;
      seq.add(doc.createNode(entry));
    } else {
      if (index < 0) throw new UsageError(`no user "${login}" in ${file}`);
      const password = await io.readPassword(`Password for ${login}: `);
      if (password.length === 0) throw new UsageError('empty password');
      doc.setIn(['users', index, 'password'], await hashPassword(password));
    }
    const out = doc.toString();
    // The same loader as the nodes: a file this command writes always loads.
    const after: User[] = parseUsers(out, file, model);
    await writeFileAtomic(dirname(file) || '.', basename(file), out);
    const u = after.find((x) => x.login === login);
    io.out(command === 'add' ? `added ${login} (${u?.role ?? ''})` : `password set for ${login}`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`evtwin user: ${(err as Error).message}\n\n${USERS_HELP}`);
      return 2;
    }
    if (err instanceof AssetModelError) {
      io.err(`evtwin user: ${err.message}`);
      return 1;
    }
    io.err(`evtwin user: ${(err as Error).message}`);
    return 1;
  }
}

function defaultIo(): UserCliIo {
  return {
    out: (s) => process.stdout.write(s + '\n'),
    err: (s) => process.stderr.write(s + '\n'),
    readPassword: (prompt) => (process.stdin.isTTY ? promptTwice(prompt) : firstLineOfStdin()),
  };
}

async function firstLineOfStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trimEnd();
}

async function promptOnce(prompt: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  const answer = new Promise<string>((resolve) => rl.question(prompt, resolve));
  muted = true;
  const value = await answer;
  rl.close();
  process.stderr.write('\n');
  return value;
}

async function promptTwice(prompt: string): Promise<string> {
  const a = await promptOnce(prompt);
  const b = await promptOnce('Again: ');
  if (a !== b) throw new UsageError('the passwords differ');
  return a;
}
