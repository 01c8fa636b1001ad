/** users.yaml loading (errors name file:line:field) and who may see what, per role, over the demo model. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AssetModelError,
  canAdminister,
  canSee,
  canSeeGrievance,
  hasRole,
  lineVisibility,
  parseAssetModel,
  parseUsers,
  principalOf,
  scopeFilter,
  siteVisibility,
  type Principal,
  type User,
} from '../src/core';

const PROV = join(__dirname, '..', '..', 'provisioning', 'evtwin');
const model = parseAssetModel(readFileSync(join(PROV, 'assets.yaml'), 'utf8'), 'assets.yaml');
const users = parseUsers(readFileSync(join(PROV, 'users.yaml'), 'utf8'), 'users.yaml', model);
const byLogin = (login: string): Principal => {
  const u = users.find((x) => x.login === login);
  if (!u) throw new Error(`no user ${login}`);
  return principalOf(u);
};
const ids = (p: Principal): string[] => scopeFilter(p, model.assets).map((a) => `${a.site}/${a.id}`);
const ALL = model.assets.map((a) => `${a.site}/${a.id}`);

describe('users.yaml', () => {
  it('loads the provisioned users against the asset model, no password hashes', () => {
    assert.deepEqual(
      users.map((u) => [u.login, u.role]),
      [
        ['admin', 'admin'],
        ['head', 'head'],
        ['lead-plant-a', 'lead'],
        ['lead-zone-1', 'lead'],
        ['lead-charging', 'lead'],
        ['worker-machining', 'worker'],
        ['worker-assembly', 'worker'],
        ['citizen-1', 'citizen'],
      ],
    );
    assert.ok(users.every((u) => u.passwordHash === undefined));
    assert.deepEqual(byLogin('lead-zone-1').scope, { sites: [], lines: ['water-north/zone-1'], assets: [] });
  });

  const bad = (text: string, model_ = model): AssetModelError => {
    try {
      parseUsers(text, 'u.yaml', model_);
    } catch (err) {
      assert.ok(err instanceof AssetModelError, String(err));
      return err;
    }
    assert.fail('expected an AssetModelError');
  };
  const HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

  it('names file, line and field of each mistake', () => {
    const cases: [string, number, string, RegExp][] = [
      ['users:\n  - { login: a, role: boss }\n', 2, 'users[0].role', /admin, head, lead, worker, citizen/],
      ['users:\n  - login: a\n    role: lead\n', 3, 'users[0].role', /needs a scope/],
      [
        'users:\n  - login: a\n    role: worker\n    scope: { sites: [plant-a] }\n',
        4,
        'users[0].scope.sites',
        /assets only/,
      ],
      [
        'users:\n  - login: a\n    role: head\n    scope: { sites: [plant-a] }\n',
        4,
        'users[0].scope.sites',
        /has no scope/,
      ],
      [
        'users:\n  - login: a\n    role: lead\n    scope: { sites: [nowhere] }\n',
        4,
        'users[0].scope.sites[0]',
        /no site "nowhere"/,
      ],
      [
        'users:\n  - login: a\n    role: lead\n    scope:\n      lines: [plant-a/painting]\n',
        5,
        'users[0].scope.lines[0]',
        /no line/,
      ],
      [
        'users:\n  - login: a\n    role: lead\n    scope:\n      lines: [machining]\n',
        5,
        'users[0].scope.lines[0]',
        /site\/line/,
      ],
      [
        'users:\n  - login: a\n    role: worker\n    scope: { assets: [plant-a/cnc-99] }\n',
        4,
        'users[0].scope.assets[0]',
        /no asset/,
      ],
      [
        'users:\n  - { login: a, role: admin, password: hunter2 }\n',
        2,
        'users[0].password',
        /never a plain password/,
      ],
      ['users:\n  - { login: a, role: admin }\n  - { login: a, role: head }\n', 3, 'users[1].login', /twice/],
      ['users:\n  - { login: "a b", role: admin }\n', 2, 'users[0].login', /expected a login/],
      ['users:\n  - { login: a, role: admin, email: x }\n', 2, 'users[0].email', /unknown field/],
      ['people: []\n', 1, 'people', /unknown field/],
      ['users:\n  - { login: a, role: admin\n', 3, '(syntax)', /./],
    ];
    for (const [text, line, field, problem] of cases) {
      const err = bad(text);
      assert.equal(err.file, 'u.yaml');
      assert.equal(err.line, line, `${field}: ${err.message}`);
      assert.equal(err.field, field, err.message);
      assert.match(err.problem, problem);
      assert.match(err.message, new RegExp(`^u\\.yaml:${line}:\\d+: `));
    }
  });

  it('accepts a scrypt hash, and scope references without a model only by shape', () => {
    const [u] = parseUsers(`users:\n  - { login: a@b.org, role: admin, password: "${HASH}" }\n`);
    assert.equal(u?.passwordHash, HASH);
    const [l] = parseUsers('users:\n  - { login: l, role: lead, scope: { lines: [x/y] } }\n');
    assert.deepEqual(l?.scope.lines, ['x/y']);
  });
});

describe('access per role', () => {
  it('admin and head see every asset, site and line; only admin administers', () => {
    for (const login of ['admin', 'head']) {
      const p = byLogin(login);
      assert.deepEqual(ids(p), ALL);
      for (const a of model.assets) assert.equal(canSee(p, a), true);
      for (const s of model.sites) {
        assert.equal(siteVisibility(p, s.id), 'all');
        for (const l of s.lines) assert.equal(lineVisibility(p, s.id, l.id), 'all');
      }
    }
    assert.equal(canAdminister(byLogin('admin')), true);
    for (const login of ['head', 'lead-plant-a', 'worker-machining', 'citizen-1'])
      assert.equal(canAdminister(byLogin(login)), false);
  });

  it('a lead of a site sees all of it and nothing else', () => {
    const p = byLogin('lead-plant-a');
    assert.deepEqual(ids(p), [
      'plant-a/cnc-01',
      'plant-a/cnc-02',
      'plant-a/cnc-03',
      'plant-a/robot-01',
      'plant-a/robot-02',
    ]);
    assert.equal(siteVisibility(p, 'plant-a'), 'all');
    assert.equal(siteVisibility(p, 'water-north'), 'none');
    assert.equal(lineVisibility(p, 'plant-a', 'assembly'), 'all');
    assert.equal(lineVisibility(p, 'water-north', 'zone-1'), 'none');
    // Site ids are compared whole: a site named like a prefix is another site.
    assert.equal(canSee(p, { site: 'plant-ab', id: 'cnc-01' }), false);
  });

  it('a lead of a line sees that line only; the site is partly visible', () => {
    const p = byLogin('lead-zone-1');
    assert.deepEqual(ids(p), [
      'water-north/flow-01',
      'water-north/pres-01',
      'water-north/level-01',
      'water-north/chlor-01',
      'water-north/turb-01',
    ]);
    assert.equal(siteVisibility(p, 'water-north'), 'some');
    assert.equal(lineVisibility(p, 'water-north', 'zone-1'), 'all');
    assert.equal(lineVisibility(p, 'water-north', 'zone-2'), 'none');
    // An asset of the same site on no line, or on another line, stays hidden.
    assert.equal(canSee(p, { site: 'water-north', id: 'x' }), false);
    assert.equal(canSee(p, { site: 'water-north', line: 'zone-2', id: 'x' }), false);
    // The same line name in another site is not theirs.
    assert.equal(canSee(p, { site: 'water-south', line: 'zone-1', id: 'flow-01' }), false);
  });

  it('a worker sees exactly their assets', () => {
    const p = byLogin('worker-assembly');
    assert.deepEqual(ids(p), ['plant-a/robot-01', 'plant-a/robot-02']);
    assert.equal(siteVisibility(p, 'plant-a'), 'some');
    assert.equal(siteVisibility(p, 'charging-hub'), 'none');
    assert.equal(lineVisibility(p, 'plant-a', 'assembly', model.assets), 'some');
    assert.equal(lineVisibility(p, 'plant-a', 'machining', model.assets), 'none');
    // Same asset id in another site is another asset.
    assert.equal(canSee(p, { site: 'plant-b', line: 'assembly', id: 'robot-01' }), false);
  });

  it('a citizen sees no asset, only their own grievances', () => {
    const p = byLogin('citizen-1');
    assert.deepEqual(ids(p), []);
    assert.equal(siteVisibility(p, 'water-north'), 'none');
    assert.equal(lineVisibility(p, 'water-north', 'zone-1', model.assets), 'none');
    const own = { reporter: 'citizen-1', site: 'water-north', asset: 'pres-01' };
    const other = { reporter: 'citizen-2', site: 'water-north', asset: 'pres-01' };
    assert.equal(canSeeGrievance(p, own), true);
    assert.equal(canSeeGrievance(p, other), false);
    assert.equal(canSeeGrievance(p, { reporter: 'citizen-2' }), false);
  });

  it('grievances for staff follow their scope', () => {
    const g = { reporter: 'citizen-1', site: 'water-north', line: 'zone-1', asset: 'pres-01' };
    assert.equal(canSeeGrievance(byLogin('head'), g), true);
    assert.equal(canSeeGrievance(byLogin('lead-zone-1'), g), true);
    assert.equal(canSeeGrievance(byLogin('lead-zone-1'), { reporter: 'c', site: 'water-north' }), false);
    assert.equal(
      canSeeGrievance(byLogin('lead-zone-1'), { reporter: 'c', site: 'water-north', line: 'zone-1' }),
      true,
    );
    assert.equal(canSeeGrievance(byLogin('lead-plant-a'), g), false);
    assert.equal(canSeeGrievance(byLogin('worker-machining'), g), false);
    assert.equal(canSeeGrievance(byLogin('head'), { reporter: 'c' }), true);
    assert.equal(canSeeGrievance(byLogin('lead-zone-1'), { reporter: 'c' }), false);
  });

  it('role order: admin > head > lead > worker > citizen', () => {
    const order = ['admin', 'head', 'lead', 'worker', 'citizen'] as const;
    order.forEach((role, i) =>
      order.forEach((min, j) => assert.equal(hasRole({ role }, min), i <= j, `${role} vs ${min}`)),
    );
  });

  it('every provisioned user sees exactly the union their scope names', () => {
    for (const u of users as User[]) {
      const p = principalOf(u);
      for (const a of model.assets) {
        const expected =
          u.role === 'admin' ||
          u.role === 'head' ||
          (u.role === 'lead' &&
            (u.scope.sites.includes(a.site) || u.scope.lines.includes(`${a.site}/${a.line ?? ''}`))) ||
          (u.role === 'worker' && u.scope.assets.includes(`${a.site}/${a.id}`));
        assert.equal(canSee(p, a), expected, `${u.login} ${a.site}/${a.id}`);
      }
    }
  });
});
