/**
 * The HTTP shell of `evtwin grafana sync-permissions`: read Grafana's teams, users, members, folders and
 * folder permissions through its HTTP API, plan (permissions.ts), apply, then read and plan again to
 * check that nothing is left. Endpoints and status codes as Grafana's HTTP API documents them (team,
 * user, admin and folder-permission APIs); user creation needs basic auth of a Grafana server admin.
 */
import { randomBytes } from 'node:crypto';
import type { User } from 'node-red-contrib-evtwin';
import {
  changes,
  desiredState,
  planSync,
  type CurrentState,
  type DesiredState,
  type Operation,
  type PermissionItem,
} from './permissions';

export interface GrafanaAuth {
  token?: string;
  user?: string;
  password?: string;
}

export class GrafanaError extends Error {
  override name = 'GrafanaError';
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    message: string,
  ) {
    super(`${method} ${path}: HTTP ${status}${message ? ` ${message}` : ''}`);
  }
}

export class GrafanaApi {
  private readonly authHeader: string;
  constructor(
    readonly baseUrl: string,
    auth: GrafanaAuth,
    readonly pageSize = 100,
  ) {
    if (auth.token) this.authHeader = `Bearer ${auth.token}`;
    else if (auth.user && auth.password !== undefined)
      this.authHeader = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
    else
      throw new Error(
        'Grafana credentials missing: --token, or EVTWIN_GRAFANA_USER and EVTWIN_GRAFANA_PASSWORD',
      );
  }

  /** JSON request; returns status and body for 2xx and the statuses in `ok`, throws GrafanaError otherwise. */
  async call<T>(
    method: string,
    path: string,
    body?: unknown,
    ok: number[] = [],
  ): Promise<{ status: number; body: T }> {
    const res = await fetch(new URL(path, this.baseUrl), {
      method,
      headers: {
        Authorization: this.authHeader,
        Accept: 'application/json',
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if ((res.status < 200 || res.status > 299) && !ok.includes(res.status)) {
      const msg =
        typeof parsed === 'object' && parsed !== null && 'message' in parsed
          ? String((parsed as { message: unknown }).message)
          : text.slice(0, 200);
      throw new GrafanaError(res.status, method, path, msg);
    }
    return { status: res.status, body: parsed as T };
  }
}

interface TeamSearch {
  totalCount: number;
  teams: { id: number; name: string }[];
}

/** Every team, page by page (GET /api/teams/search; totalCount tells how many pages). */
export async function allTeams(api: GrafanaApi): Promise<{ id: number; name: string }[]> {
  const out: { id: number; name: string }[] = [];
  for (let page = 1; ; page++) {
    const { body } = await api.call<TeamSearch>(
      'GET',
      `/api/teams/search?perpage=${api.pageSize}&page=${page}`,
    );
    out.push(...body.teams.map((t) => ({ id: t.id, name: t.name })));
    if (body.teams.length === 0 || out.length >= body.totalCount) return out;
  }
}

async function allFolders(api: GrafanaApi): Promise<{ uid: string; title: string }[]> {
  const out: { uid: string; title: string }[] = [];
  for (let page = 1; ; page++) {
    const { body } = await api.call<{ uid: string; title: string }[]>(
      'GET',
      `/api/folders?limit=${api.pageSize}&page=${page}`,
    );
    out.push(...body.map((f) => ({ uid: f.uid, title: f.title })));
    if (body.length < api.pageSize) return out;
  }
}

interface Ids {
  teams: Map<string, number>;
  users: Map<string, number>;
}

export async function readCurrent(
  api: GrafanaApi,
  desired: DesiredState,
): Promise<{ current: CurrentState; ids: Ids }> {
  const teams = await allTeams(api);
  const ids: Ids = { teams: new Map(teams.map((t) => [t.name, t.id])), users: new Map() };
  const members: Record<string, string[]> = {};
  for (const name of desired.teams) {
    const id = ids.teams.get(name);
    if (id === undefined) continue;
    const { body } = await api.call<{ userId: number; login: string }[]>('GET', `/api/teams/${id}/members`);
    members[name] = body.map((m) => m.login);
    for (const m of body) ids.users.set(m.login, m.userId);
  }
  const users: string[] = [];
  for (const u of desired.users) {
    const r = await api.call<{ id: number }>(
      'GET',
      `/api/users/lookup?loginOrEmail=${encodeURIComponent(u.login)}`,
      undefined,
      [404],
    );
    if (r.status === 404) continue;
    users.push(u.login);
    ids.users.set(u.login, r.body.id);
  }
  const folders = await allFolders(api);
  const permissions: Record<string, PermissionItem[]> = {};
  for (const f of desired.folders) {
    const found = f.uid ? folders.find((x) => x.uid === f.uid) : folders.find((x) => x.title === f.title);
    if (!found) continue;
    const { body } = await api.call<PermissionItem[]>(
      'GET',
      `/api/folders/${encodeURIComponent(found.uid)}/permissions`,
    );
    permissions[found.uid] = body;
  }
  return { current: { teams, members, users, folders, permissions }, ids };
}

const need = (m: Map<string, number>, k: string, what: string): number => {
  const v = m.get(k);
  if (v === undefined) throw new Error(`${what} ${k} has no id in Grafana`);
  return v;
};

/** Apply operations in plan order (teams and users first, so later steps find their ids). */
export async function applyPlan(
  api: GrafanaApi,
  ops: readonly Operation[],
  ids: Ids,
  onUserCreated: (login: string, password: string) => void,
): Promise<void> {
  for (const o of ops) {
    switch (o.op) {
      case 'create-team': {
        const r = await api.call<{ teamId: number }>('POST', '/api/teams', { name: o.team }, [409]);
        if (r.status === 409) {
          // Created meanwhile (another run): look it up by name.
          const s = await api.call<TeamSearch>('GET', `/api/teams/search?name=${encodeURIComponent(o.team)}`);
          const t = s.body.teams.find((x) => x.name === o.team);
          if (!t) throw new GrafanaError(409, 'POST', '/api/teams', `team ${o.team} is taken but not found`);
          ids.teams.set(o.team, t.id);
        } else ids.teams.set(o.team, r.body.teamId);
        break;
      }
      case 'create-user': {
        const password = randomBytes(18).toString('base64url');
        const r = await api.call<{ id: number }>(
          'POST',
          '/api/admin/users',
          { name: o.name, login: o.login, password },
          [409, 412],
        );
        if (r.status === 200) {
          ids.users.set(o.login, r.body.id);
          onUserCreated(o.login, password);
        } else {
          const l = await api.call<{ id: number }>(
            'GET',
            `/api/users/lookup?loginOrEmail=${encodeURIComponent(o.login)}`,
          );
          ids.users.set(o.login, l.body.id);
        }
        break;
      }
      case 'add-member':
        // 400: already a member (added meanwhile) — the state we want.
        await api.call(
          'POST',
          `/api/teams/${need(ids.teams, o.team, 'team')}/members`,
          { userId: need(ids.users, o.login, 'user') },
          [400],
        );
        break;
      case 'remove-member':
        await api.call(
          'DELETE',
          `/api/teams/${need(ids.teams, o.team, 'team')}/members/${need(ids.users, o.login, 'user')}`,
          undefined,
          [404],
        );
        break;
      case 'set-folder-permissions':
        await api.call('POST', `/api/folders/${encodeURIComponent(o.folderUid)}/permissions`, {
          items: o.items.map((i) =>
            'team' in i
              ? { teamId: need(ids.teams, i.team, 'team'), permission: i.permission }
              : { role: i.role, permission: i.permission },
          ),
        });
        break;
      case 'missing-folder':
        break;
    }
  }
}

export interface SyncResult {
  planned: Operation[];
  /** What was left after applying (should be nothing but missing folders). */
  remaining: Operation[];
  createdUsers: { login: string; password: string }[];
}

/** Plan and (unless dryRun) apply, then verify with a second read. */
export async function syncPermissions(
  api: GrafanaApi,
  users: readonly User[],
  dryRun = false,
): Promise<SyncResult> {
  const desired = desiredState(users);
  const { current, ids } = await readCurrent(api, desired);
  const planned = planSync(desired, current);
  const createdUsers: { login: string; password: string }[] = [];
  if (dryRun || changes(planned).length === 0) return { planned, remaining: planned, createdUsers };
  await applyPlan(api, planned, ids, (login, password) => createdUsers.push({ login, password }));
  const after = await readCurrent(api, desired);
  return { planned, remaining: planSync(desired, after.current), createdUsers };
}
