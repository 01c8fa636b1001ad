/**
 * `evtwin grafana sync-permissions`: the pure plan (permissions.ts) on its own, then the command against
 * FakeGrafana below. The fake exists because no Grafana server can run on this machine (no Docker engine,
 * no package): it is a STAND-IN, not Grafana. It implements only the endpoints the command uses, with the
 * semantics of Grafana's HTTP API docs (team, user, admin, folder-permission APIs): basic/bearer auth or
 * 401, paging of /api/teams/search (perpage, page, totalCount), 409 on a taken team name, 400 when a user
 * is already a team member, 412 on an existing login, 404 for a missing team or folder, and
 * POST /api/folders/:uid/permissions replacing all items. It records every call.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseUsers, type User } from 'node-red-contrib-evtwin';
import { main } from '../src/cli/index';
import { FOLDERS, ALERT_FOLDER_TITLE } from '../src/grafana/model';
import { changes, desiredState, planSync, type CurrentState } from '../src/grafana/permissions';
import { GrafanaApi, applyPlan } from '../src/grafana/sync';

const REPO = resolve(__dirname, '..', '..');
const USERS_FILE = join(REPO, 'provisioning/evtwin/users.yaml');
const USERS = parseUsers(readFileSync(USERS_FILE, 'utf8'), USERS_FILE);

// ---------------- unit tests of the plan ----------------

const empty = (): CurrentState => ({ teams: [], members: {}, users: [], folders: [], permissions: {} });

describe('planSync (pure)', () => {
  const desired = desiredState(USERS);

  test('from nothing: teams, users, members; missing folders reported, not invented', () => {
    const ops = planSync(desired, empty());
    assert.deepEqual(
      ops.filter((o) => o.op === 'create-team').map((o) => (o as { team: string }).team),
      ['evtwin-head', 'evtwin-lead', 'evtwin-worker', 'evtwin-citizen'],
    );
    assert.equal(ops.filter((o) => o.op === 'create-user').length, USERS.length);
    const adds = ops
      .filter((o) => o.op === 'add-member')
      .map((o) => `${(o as { team: string }).team}:${(o as { login: string }).login}`);
    assert.ok(adds.includes('evtwin-lead:lead-plant-a') && adds.includes('evtwin-worker:worker-assembly'));
    assert.ok(!adds.some((a) => a.endsWith(':admin')), 'admins join no team');
    assert.equal(ops.filter((o) => o.op === 'missing-folder').length, FOLDERS.length + 1);
  });

  test('what the desired state looks like once applied plans nothing', () => {
    const current: CurrentState = {
      teams: desired.teams.map((name, i) => ({ id: i + 1, name })),
      members: Object.fromEntries(
        desired.teams.map((t) => [t, desired.users.filter((u) => u.team === t).map((u) => u.login)]),
      ),
      users: desired.users.map((u) => u.login),
      folders: [
        ...FOLDERS.map((f) => ({ uid: f.uid, title: f.title })),
        { uid: 'x1', title: ALERT_FOLDER_TITLE },
      ],
      permissions: {},
    };
    for (const f of desired.folders) {
      const uid = f.uid ?? 'x1';
      current.permissions[uid] = [
        { role: 'Admin', permission: 4 },
        { role: 'Editor', permission: 2 },
        ...Object.entries(f.teams).map(([team, permission]) => ({ team, teamId: 1, permission })),
      ];
    }
    assert.deepEqual(planSync(desired, current), []);

    // One difference each: a stray member, a missing member, the default Viewer permission.
    current.members['evtwin-worker']?.push('intruder');
    current.members['evtwin-lead'] = (current.members['evtwin-lead'] ?? []).filter(
      (l) => l !== 'lead-zone-1',
    );
    current.permissions['evtwin-head']?.push({ role: 'Viewer', permission: 1 });
    assert.deepEqual(
      planSync(desired, current).map((o) => o.op),
      ['add-member', 'remove-member', 'set-folder-permissions'],
    );
  });

  test('the Head folder is for heads only; the Worker folder for workers and above', () => {
    const folder = (uid: string) => desired.folders.find((f) => f.uid === uid)?.teams;
    assert.deepEqual(folder('evtwin-head'), { 'evtwin-head': 1 });
    assert.deepEqual(Object.keys(folder('evtwin-worker') ?? {}).sort(), [
      'evtwin-head',
      'evtwin-lead',
      'evtwin-worker',
    ]);
  });
});

// ---------------- FakeGrafana (a stand-in: no Grafana server can run here) ----------------

interface FakeUser {
  id: number;
  login: string;
  name: string;
}
interface FakePerm {
  teamId?: number;
  userId?: number;
  role?: string;
  permission: number;
}

class FakeGrafana {
  readonly calls: string[] = [];
  users: FakeUser[] = [{ id: 1, login: 'admin', name: 'admin' }];
  teams: { id: number; name: string; members: number[] }[] = [];
  folders: { uid: string; title: string; perms: FakePerm[] }[];
  private nextId = 100;
  private server: Server | undefined;
  url = '';

  constructor(private readonly password: string) {
    // As Grafana has them after provisioning: the dashboard folders with fixed uids, the alert folder
    // with a generated uid, Grafana's default folder permissions (Viewer view, Editor edit).
    const defaults = (): FakePerm[] => [
      { role: 'Viewer', permission: 1 },
      { role: 'Editor', permission: 2 },
    ];
    this.folders = [
      ...FOLDERS.map((f) => ({ uid: f.uid, title: f.title, perms: defaults() })),
      { uid: 'aBcD3fGh', title: ALERT_FOLDER_TITLE, perms: defaults() },
    ];
  }

  mutations(): string[] {
    return this.calls.filter((c) => !c.startsWith('GET '));
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => this.send(res, 500, { message: String(err) }));
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server?.close(() => r()));
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? 'GET';
    this.calls.push(`${method} ${url.pathname}${url.search}`);
    const auth = req.headers.authorization ?? '';
    if (auth !== `Basic ${Buffer.from(`admin:${this.password}`).toString('base64')}`)
      return this.send(res, 401, { message: 'Unauthorized' });
    let body: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (chunks.length) body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const p = url.pathname;
    let m: RegExpExecArray | null;

    if (method === 'GET' && p === '/api/teams/search') {
      const name = url.searchParams.get('name');
      if (name !== null) {
        const t = this.teams.filter((x) => x.name === name);
        if (!t.length) return this.send(res, 404, { message: 'Team not found' });
        return this.send(res, 200, {
          totalCount: 1,
          teams: t.map((x) => this.teamJson(x)),
          page: 1,
          perPage: 1000,
        });
      }
      const perPage = Number(url.searchParams.get('perpage') ?? 1000);
      const page = Number(url.searchParams.get('page') ?? 1);
      const sorted = [...this.teams].sort((a, b) => a.name.localeCompare(b.name));
      return this.send(res, 200, {
        totalCount: sorted.length,
        teams: sorted.slice((page - 1) * perPage, page * perPage).map((x) => this.teamJson(x)),
        page,
        perPage,
      });
    }
    if (method === 'POST' && p === '/api/teams') {
      if (this.teams.some((t) => t.name === body.name))
        return this.send(res, 409, { message: 'Team name taken' });
      const id = this.nextId++;
      this.teams.push({ id, name: String(body.name), members: [] });
      return this.send(res, 200, { message: 'Team created', teamId: id, uid: `t${id}` });
    }
    if ((m = /^\/api\/teams\/(\d+)\/members(?:\/(\d+))?$/.exec(p))) {
      const team = this.teams.find((t) => t.id === Number(m?.[1]));
      if (!team) return this.send(res, 404, { message: 'Team not found' });
      if (method === 'GET')
        return this.send(
          res,
          200,
          team.members.map((id) => ({
            orgId: 1,
            teamId: team.id,
            userId: id,
            login: this.users.find((u) => u.id === id)?.login,
          })),
        );
      if (method === 'POST') {
        const userId = Number(body.userId);
        if (team.members.includes(userId))
          return this.send(res, 400, { message: 'User is already added to this team' });
        team.members.push(userId);
        return this.send(res, 200, { message: 'Member added to Team' });
      }
      if (method === 'DELETE' && m[2]) {
        const before = team.members.length;
        team.members = team.members.filter((id) => id !== Number(m?.[2]));
        if (team.members.length === before) return this.send(res, 404, { message: 'Team member not found' });
        return this.send(res, 200, { message: 'Team Member removed' });
      }
    }
    if (method === 'GET' && p === '/api/users/lookup') {
      const u = this.users.find((x) => x.login === url.searchParams.get('loginOrEmail'));
      return u
        ? this.send(res, 200, { id: u.id, login: u.login, name: u.name })
        : this.send(res, 404, { message: 'user not found' });
    }
    if (method === 'POST' && p === '/api/admin/users') {
      if (this.users.some((u) => u.login === body.login))
        return this.send(res, 412, { message: 'User already exists' });
      if (typeof body.password !== 'string' || body.password.length < 4)
        return this.send(res, 400, { message: 'password' });
      const id = this.nextId++;
      this.users.push({ id, login: String(body.login), name: String(body.name) });
      return this.send(res, 200, { id, message: 'User created' });
    }
    if (method === 'GET' && p === '/api/folders') {
      const limit = Number(url.searchParams.get('limit') ?? 1000);
      const page = Number(url.searchParams.get('page') ?? 1);
      return this.send(
        res,
        200,
        this.folders
          .slice((page - 1) * limit, page * limit)
          .map((f, i) => ({ id: i + 1, uid: f.uid, title: f.title })),
      );
    }
    if ((m = /^\/api\/folders\/([^/]+)\/permissions$/.exec(p))) {
      const folder = this.folders.find((f) => f.uid === decodeURIComponent(m?.[1] ?? ''));
      if (!folder) return this.send(res, 404, { message: 'Folder not found' });
      if (method === 'GET') {
        // Grafana lists the implicit Admin role too; the command must leave it alone.
        const items = [{ role: 'Admin', permission: 4 }, ...folder.perms].map((x) => ({
          ...x,
          uid: folder.uid,
          team: x.teamId ? (this.teams.find((t) => t.id === x.teamId)?.name ?? '') : '',
          teamId: x.teamId ?? 0,
          userId: x.userId ?? 0,
          userLogin: '',
          role: x.role ?? '',
        }));
        return this.send(res, 200, items);
      }
      if (method === 'POST') {
        const items = body.items as FakePerm[];
        for (const i of items)
          if (i.teamId !== undefined && !this.teams.some((t) => t.id === i.teamId))
            return this.send(res, 400, { message: 'team not found' });
        folder.perms = items.map((i) => ({ ...i }));
        return this.send(res, 200, { message: 'Folder permissions updated' });
      }
    }
    return this.send(res, 404, { message: 'Not found' });
  }

  private teamJson(t: { id: number; name: string; members: number[] }): Record<string, unknown> {
    return { id: t.id, orgId: 1, name: t.name, email: '', memberCount: t.members.length };
  }
}

// ---------------- the command against the stand-in ----------------

async function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s), env, now: Date.now });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('evtwin grafana sync-permissions against FakeGrafana', () => {
  const password = 'pw-' + Math.random().toString(36).slice(2);
  const env = { EVTWIN_GRAFANA_USER: 'admin', EVTWIN_GRAFANA_PASSWORD: password };
  const fake = new FakeGrafana(password);
  before(() => fake.start());
  after(() => fake.stop());
  const args = (...more: string[]) => [
    'grafana',
    'sync-permissions',
    '--url',
    fake.url,
    '--users',
    USERS_FILE,
    ...more,
  ];

  test('refuses without credentials and on wrong ones', async () => {
    const none = await cli(args(), {});
    assert.equal(none.code, 1);
    assert.match(none.err, /credentials missing/);
    const wrong = await cli(args(), { EVTWIN_GRAFANA_USER: 'admin', EVTWIN_GRAFANA_PASSWORD: 'nope' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /HTTP 401/);
  });

  test('a dry run plans and changes nothing', async () => {
    const before = fake.mutations().length;
    const r = await cli(args('--dry-run'), env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /would create team evtwin-head/);
    assert.equal(fake.mutations().length, before);
  });

  test('first run creates teams, users, memberships and folder permissions; second run changes nothing', async () => {
    // Stray teams first, so the team search takes several pages (page size 2).
    for (const name of ['alpha', 'beta', 'gamma'])
      fake.teams.push({ id: 900 + name.length, name, members: [] });
    // An intruder already in a managed team is removed.
    fake.users.push({ id: 50, login: 'intruder', name: 'Intruder' });
    const first = await cli(args('--page-size', '2'), env);
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /applied \d+ changes/);
    const searches = fake.calls.filter((c) => c.startsWith('GET /api/teams/search?perpage=2'));
    assert.ok(searches.length >= 4, `paged team search: ${searches.length} pages`);

    const team = (role: string) => fake.teams.find((t) => t.name === `evtwin-${role}`);
    const logins = (role: string) =>
      (team(role)?.members ?? []).map((id) => fake.users.find((u) => u.id === id)?.login).sort();
    assert.deepEqual(logins('lead'), ['lead-charging', 'lead-plant-a', 'lead-zone-1']);
    assert.deepEqual(logins('worker'), ['worker-assembly', 'worker-machining']);
    assert.deepEqual(logins('head'), ['head']);
    assert.deepEqual(logins('citizen'), ['citizen-1']);
    assert.equal(
      fake.users.filter((u) => u.login === 'admin').length,
      1,
      'the existing admin is not created again',
    );

    const perms = (uid: string) =>
      fake.folders
        .find((f) => f.uid === uid)
        ?.perms.map((p) =>
          p.teamId
            ? `${fake.teams.find((t) => t.id === p.teamId)?.name}=${p.permission}`
            : `${p.role}=${p.permission}`,
        )
        .sort();
    assert.deepEqual(perms('evtwin-head'), ['Editor=2', 'evtwin-head=1']);
    // Edit on the Lead folder: Grafana runs the charger-command actions only for users who may edit.
    assert.deepEqual(perms('evtwin-lead'), ['Editor=2', 'evtwin-head=2', 'evtwin-lead=2']);
    assert.deepEqual(perms('evtwin-worker'), [
      'Editor=2',
      'evtwin-head=1',
      'evtwin-lead=1',
      'evtwin-worker=1',
    ]);
    assert.deepEqual(
      perms('aBcD3fGh'),
      ['Editor=2', 'evtwin-head=1', 'evtwin-lead=1'],
      'the alert folder, found by title',
    );

    const mutationsAfterFirst = fake.mutations().length;
    const second = await cli(args(), env);
    assert.equal(second.code, 0, second.err);
    assert.match(second.out, /^no changes: /);
    assert.equal(fake.mutations().length, mutationsAfterFirst, 'the second run made no change');

    // A drift in Grafana (someone gave the Viewer role access again, removed a member) is put right.
    const head = fake.folders.find((f) => f.uid === 'evtwin-head');
    head?.perms.push({ role: 'Viewer', permission: 1 });
    const lead = team('lead');
    if (lead) lead.members = lead.members.slice(1);
    const third = await cli(args(), env);
    assert.equal(third.code, 0, third.err);
    assert.match(third.out, /set permissions of folder "EVTwin Head"/);
    assert.match(third.out, /add .* to team evtwin-lead/);
    assert.deepEqual(perms('evtwin-head'), ['Editor=2', 'evtwin-head=1']);
  });

  test('a team created by someone else between read and write (409) is looked up, not fatal', async () => {
    const other = new FakeGrafana(password);
    await other.start();
    try {
      // The plan sees no teams; the first POST /api/teams finds the name taken.
      const users: User[] = USERS.filter((u) => u.role === 'head');
      const api = new GrafanaApi(other.url, { user: 'admin', password });
      other.teams.push({ id: 7, name: 'evtwin-head', members: [] });
      const ids = { teams: new Map<string, number>(), users: new Map<string, number>() };
      await applyPlan(api, [{ op: 'create-team', team: 'evtwin-head' }], ids, () => undefined);
      assert.equal(ids.teams.get('evtwin-head'), 7);
      assert.equal(users.length, 1);
      assert.deepEqual(changes([{ op: 'missing-folder', title: 'x' }]), []);
    } finally {
      await other.stop();
    }
  });
});
