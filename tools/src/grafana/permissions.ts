/**
 * Grafana teams, users, memberships and folder permissions from users.yaml: pure planning (desired state
 * vs what Grafana has → the API operations to make them equal). The HTTP shell (sync.ts) reads the
 * current state, applies the plan and reads again; an empty plan is "nothing to change", which makes the
 * command idempotent. Grafana OSS has no file provisioning for these (folder permissions are API-only).
 */
import type { User } from 'node-red-contrib-evtwin';
import {
  ALERT_FOLDER_TITLE,
  ALERT_FOLDER_VIEWERS,
  FOLDERS,
  PERMISSION,
  TEAM_ROLES,
  teamName,
  type TeamRole,
} from './model';

export interface DesiredUser {
  login: string;
  name: string;
  /** undefined: the user exists in Grafana but joins no team (admins). */
  team?: string;
}
export interface DesiredFolder {
  /** A fixed uid, or undefined when Grafana made the folder (alerting provisioning) and we match by title. */
  uid?: string;
  title: string;
  /** Team name → permission level. */
  teams: Record<string, number>;
}
export interface DesiredState {
  teams: string[];
  users: DesiredUser[];
  folders: DesiredFolder[];
}

/** One item of GET /api/folders/:uid/permissions (only what we compare). */
export interface PermissionItem {
  userId?: number;
  userLogin?: string;
  teamId?: number;
  team?: string;
  role?: string;
  permission: number;
  inherited?: boolean;
}
export interface CurrentState {
  teams: { id: number; name: string }[];
  /** Team name → member logins (for the teams that exist). */
  members: Record<string, string[]>;
  /** Logins (of the desired users) that exist in Grafana. */
  users: string[];
  folders: { uid: string; title: string }[];
  /** Folder uid → its permission items. */
  permissions: Record<string, PermissionItem[]>;
}

/** A permission item to send: by team name (the shell turns it into a teamId) or by org role. */
export type DesiredItem = { team: string; permission: number } | { role: 'Editor'; permission: number };

export type Operation =
  | { op: 'create-team'; team: string }
  | { op: 'create-user'; login: string; name: string }
  | { op: 'add-member'; team: string; login: string }
  | { op: 'remove-member'; team: string; login: string }
  | { op: 'set-folder-permissions'; folderUid: string; title: string; items: DesiredItem[] }
  | { op: 'missing-folder'; title: string };

/** What users.yaml asks for: a team per role, every user, folder permissions per role folder. */
export function desiredState(users: readonly User[]): DesiredState {
  const isTeamRole = (r: string): r is TeamRole => (TEAM_ROLES as readonly string[]).includes(r);
  const teamsOf = (
    viewers: readonly TeamRole[],
    operators: readonly TeamRole[] = [],
  ): Record<string, number> =>
    Object.fromEntries(
      viewers.map((r) => [teamName(r), operators.includes(r) ? PERMISSION.edit : PERMISSION.view]),
    );
  return {
    teams: TEAM_ROLES.map(teamName),
    users: users.map((u) => ({
      login: u.login,
      name: u.name,
      ...(isTeamRole(u.role) ? { team: teamName(u.role) } : {}),
    })),
    folders: [
      ...FOLDERS.map((f) => ({ uid: f.uid, title: f.title, teams: teamsOf(f.viewers, f.operators) })),
      { title: ALERT_FOLDER_TITLE, teams: teamsOf(ALERT_FOLDER_VIEWERS) },
    ],
  };
}

/** Editors keep editing; the Viewer role's default view is dropped, so viewers see a folder only through a team. */
const ROLE_ITEMS: DesiredItem[] = [{ role: 'Editor', permission: PERMISSION.edit }];

const key = (i: DesiredItem): string =>
  ('team' in i ? `team:${i.team}` : `role:${i.role}`) + `=${i.permission}`;

/** The comparable form of Grafana's items: Admin (implicit, cannot be set) and inherited ones left out. */
function currentKeys(items: readonly PermissionItem[]): string[] | undefined {
  const out: string[] = [];
  for (const i of items) {
    if (i.inherited) continue;
    if (i.role === 'Admin') continue;
    if (i.team) out.push(`team:${i.team}=${i.permission}`);
    else if (i.role) out.push(`role:${i.role}=${i.permission}`);
    else if (i.userLogin !== undefined) out.push(`user:${i.userLogin}=${i.permission}`);
    else return undefined;
  }
  return out.sort();
}

/** The operations that make Grafana match `desired`; empty when it already does. */
export function planSync(desired: DesiredState, current: CurrentState): Operation[] {
  const ops: Operation[] = [];
  const teams = new Set(current.teams.map((t) => t.name));
  for (const t of desired.teams) if (!teams.has(t)) ops.push({ op: 'create-team', team: t });

  const existingUsers = new Set(current.users);
  for (const u of desired.users)
    if (!existingUsers.has(u.login)) ops.push({ op: 'create-user', login: u.login, name: u.name });

  for (const t of desired.teams) {
    const want = new Set(desired.users.filter((u) => u.team === t).map((u) => u.login));
    const have = new Set(current.members[t] ?? []);
    for (const login of [...want].sort())
      if (!have.has(login)) ops.push({ op: 'add-member', team: t, login });
    // Only our own teams are managed, so removing a member nobody listed is safe.
    for (const login of [...have].sort())
      if (!want.has(login)) ops.push({ op: 'remove-member', team: t, login });
  }

  for (const f of desired.folders) {
    const found = f.uid
      ? current.folders.find((x) => x.uid === f.uid)
      : current.folders.find((x) => x.title === f.title);
    if (!found) {
      ops.push({ op: 'missing-folder', title: f.title });
      continue;
    }
    const items: DesiredItem[] = [
      ...ROLE_ITEMS,
      ...Object.entries(f.teams)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([team, permission]) => ({ team, permission })),
    ];
    const want = items.map(key).sort();
    const have = currentKeys(current.permissions[found.uid] ?? []);
    if (!have || have.join(',') !== want.join(','))
      ops.push({ op: 'set-folder-permissions', folderUid: found.uid, title: found.title, items });
  }
  return ops;
}

export function describeOperation(o: Operation): string {
  switch (o.op) {
    case 'create-team':
      return `create team ${o.team}`;
    case 'create-user':
      return `create user ${o.login} (${o.name})`;
    case 'add-member':
      return `add ${o.login} to team ${o.team}`;
    case 'remove-member':
      return `remove ${o.login} from team ${o.team}`;
    case 'set-folder-permissions':
      return `set permissions of folder "${o.title}": ${o.items
        .map(
          (i) =>
            `${'team' in i ? i.team : i.role} ${i.permission === PERMISSION.view ? 'view' : i.permission === PERMISSION.edit ? 'edit' : 'admin'}`,
        )
        .join(', ')}`;
    case 'missing-folder':
      return `folder "${o.title}" does not exist yet (is Grafana provisioned from provisioning/grafana?)`;
  }
}

/** Operations that change something (a missing folder is reported, not changed). */
export const changes = (ops: readonly Operation[]): Operation[] =>
  ops.filter((o) => o.op !== 'missing-folder');
