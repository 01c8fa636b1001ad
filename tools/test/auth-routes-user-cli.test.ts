/** `evtwin user add|passwd|list` on a copy of the provisioned users.yaml: comments kept, hashes only, validated. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseUsers } from 'node-red-contrib-evtwin';
import { verifyPassword } from 'node-red-contrib-evtwin/runtime';
import { run } from '../src/cli/users';

const PROV = join(__dirname, '..', '..', 'provisioning', 'evtwin');
const dir = mkdtempSync(join(tmpdir(), 'evtwin-user-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
copyFileSync(join(PROV, 'users.yaml'), join(dir, 'users.yaml'));
copyFileSync(join(PROV, 'assets.yaml'), join(dir, 'assets.yaml'));
const file = join(dir, 'users.yaml');

async function cli(args: string[], password = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run([...args, '--file', file], {
    out: (s) => (out += s + '\n'),
    err: (s) => (err += s + '\n'),
    readPassword: () => Promise.resolve(password),
  });
  return { code, out, err };
}

describe('evtwin user', () => {
  it('add, then passwd: the file keeps its comments, loads, and holds only a scrypt hash', async () => {
    const add = await cli([
      'add',
      'wendy',
      '--role',
      'worker',
      '--name',
      'Wendy W',
      '--assets',
      'plant-a/cnc-01,plant-a/cnc-02',
    ]);
    assert.deepEqual([add.code, add.out], [0, 'added wendy (worker)\n']);
    const pw = await cli(['passwd', 'wendy'], 's3cret pass');
    assert.deepEqual([pw.code, pw.out], [0, 'password set for wendy\n']);
    const admin = await cli(['passwd', 'admin'], 'admin pass');
    assert.equal(admin.code, 0);

    const text = readFileSync(file, 'utf8');
    assert.match(text, /^# Users of the demo twin/);
    assert.ok(!text.includes('s3cret') && !text.includes('admin pass'));
    const users = parseUsers(text, file);
    const wendy = users.find((u) => u.login === 'wendy');
    assert.deepEqual(wendy?.scope.assets, ['plant-a/cnc-01', 'plant-a/cnc-02']);
    assert.equal(wendy?.name, 'Wendy W');
    assert.equal(await verifyPassword('s3cret pass', wendy?.passwordHash ?? ''), true);
    assert.equal(
      await verifyPassword('admin pass', users.find((u) => u.login === 'admin')?.passwordHash ?? ''),
      true,
    );
    assert.equal(users.length, 9);

    const listed = await cli(['list', '--json']);
    const rows = JSON.parse(listed.out) as { login: string; hasPassword: boolean }[];
    assert.deepEqual(
      rows.filter((r) => r.hasPassword).map((r) => r.login),
      ['admin', 'wendy'],
    );
    assert.ok(!listed.out.includes('scrypt$'));
  });

  it('refuses bad input without touching the file', async () => {
    const before = readFileSync(file, 'utf8');
    const unknownAsset = await cli(['add', 'x1', '--role', 'worker', '--assets', 'plant-a/cnc-99']);
    assert.equal(unknownAsset.code, 1);
    assert.match(
      unknownAsset.err,
      /users\.yaml:\d+:\d+: users\[9\]\.scope\.assets\[0\]: no asset "plant-a\/cnc-99"/,
    );
    const wrongScope = await cli(['add', 'x2', '--role', 'worker', '--sites', 'plant-a']);
    assert.equal(wrongScope.code, 1);
    assert.match(wrongScope.err, /assets only/);
    assert.equal((await cli(['add', 'admin', '--role', 'admin'])).code, 2);
    assert.equal((await cli(['add', 'x3', '--role', 'boss'])).code, 2);
    assert.equal((await cli(['passwd', 'ghost'], 'pw')).code, 2);
    assert.equal((await cli(['passwd', 'head'], '')).code, 2);
    assert.equal((await cli(['remove', 'head'])).code, 2);
    assert.equal((await cli(['add'])).code, 2);
    assert.equal(readFileSync(file, 'utf8'), before);
  });
});
