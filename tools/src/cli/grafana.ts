/**
 * `evtwin grafana sync-permissions`: Grafana teams (evtwin-head, -lead, -worker, -citizen), users,
 * memberships from users.yaml, and folder permissions per role folder, through Grafana's HTTP API.
 * Idempotent: a second run changes nothing and says so. Exit codes: 0 ok, 1 failure, 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseUsers } from 'node-red-contrib-evtwin';
import { changes, describeOperation } from '../grafana/permissions';
import { GrafanaApi, syncPermissions } from '../grafana/sync';

export const GRAFANA_HELP = `evtwin grafana sync-permissions --url URL --users FILE [--token T] [--dry-run] [--print-passwords]

Creates the teams evtwin-head, evtwin-lead, evtwin-worker and evtwin-citizen, the users of FILE (users.yaml)
that Grafana lacks, puts each user in the team of their role, and sets the permissions of the EVTwin
folders (each role's folder, the shared ones and "EVTwin Alerts"): teams view, Editors edit, the Viewer
role's default view removed. Run it again after every change to users.yaml; a run with nothing to do
says so and changes nothing.

Credentials: --token T or EVTWIN_GRAFANA_TOKEN (a service account token: teams and folders only), or basic
auth of a Grafana server admin from EVTWIN_GRAFANA_USER and EVTWIN_GRAFANA_PASSWORD (needed to create users).
New users get a random password (Grafana > Administration > Users to set one; --print-passwords shows them once).
`;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

export async function run(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        users: { type: 'string' },
        token: { type: 'string' },
        'dry-run': { type: 'boolean' },
        'print-passwords': { type: 'boolean' },
        'page-size': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    io.err(`evtwin grafana: ${(err as Error).message}\n\n${GRAFANA_HELP}`);
    return 2;
  }
  const v = parsed.values;
  const [command, ...extra] = parsed.positionals;
  if (v.help || command === undefined) {
    io.out(GRAFANA_HELP);
    return v.help ? 0 : 2;
  }
  if (command !== 'sync-permissions' || extra.length > 0) {
    io.err(`evtwin grafana: unknown command "${[command, ...extra].join(' ')}"\n\n${GRAFANA_HELP}`);
    return 2;
  }
  if (!v.url || !v.users) {
    io.err(`evtwin grafana: --url and --users are required\n\n${GRAFANA_HELP}`);
    return 2;
  }
  const pageSize = v['page-size'] === undefined ? 100 : Number(v['page-size']);
  if (!Number.isInteger(pageSize) || pageSize < 1) {
    io.err('evtwin grafana: --page-size must be a positive whole number');
    return 2;
  }
  try {
    const users = parseUsers(readFileSync(v.users, 'utf8'), v.users);
    const token = v.token ?? io.env.EVTWIN_GRAFANA_TOKEN;
    const api = new GrafanaApi(
      v.url,
      token
        ? { token }
        : {
            ...(io.env.EVTWIN_GRAFANA_USER ? { user: io.env.EVTWIN_GRAFANA_USER } : {}),
            ...(io.env.EVTWIN_GRAFANA_PASSWORD !== undefined
              ? { password: io.env.EVTWIN_GRAFANA_PASSWORD }
              : {}),
          },
      pageSize,
    );
    const r = await syncPermissions(api, users, v['dry-run'] === true);
    const planned = changes(r.planned);
    const notes = r.planned.filter((o) => o.op === 'missing-folder');
    for (const n of notes) io.err(`warning: ${describeOperation(n)}`);
    if (planned.length === 0) {
      io.out(`no changes: Grafana at ${v.url} already matches ${v.users} (${users.length} users, 4 teams)`);
      return 0;
    }
    for (const o of planned) io.out(`${v['dry-run'] ? 'would ' : ''}${describeOperation(o)}`);
    if (v['dry-run']) {
      io.out(`dry run: ${planned.length} changes not made`);
      return 0;
    }
    for (const u of r.createdUsers)
      io.out(
        v['print-passwords']
          ? `initial Grafana password of ${u.login} (shown once): ${u.password}`
          : `user ${u.login} has a random password: set one in Grafana > Administration > Users`,
      );
    const left = changes(r.remaining);
    if (left.length > 0) {
      for (const o of left) io.err(`still different after applying: ${describeOperation(o)}`);
      return 1;
    }
    io.out(`applied ${planned.length} changes; Grafana now matches ${v.users}`);
    return 0;
  } catch (err) {
    io.err(`evtwin grafana: ${(err as Error).message}`);
    return 1;
  }
}
