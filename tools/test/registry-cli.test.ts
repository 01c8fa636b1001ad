/** `evtwin registry …` on a real registry file: every command, usage errors (exit 2), bad files (exit 1). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOKEN_PATTERN, indexRegistry, verifyToken } from 'node-red-contrib-evtwin';
import { loadRegistry } from 'node-red-contrib-evtwin/runtime';
import { main } from '../src/cli';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, {
    out: (s) => (out += s + '\n'),
    err: (s) => (err += s + '\n'),
    env: {},
    now: Date.now,
  });
  return { code, out, err };
}

describe('evtwin registry CLI', () => {
  it('registers, lists, renames, rotates, rotates keys and revokes on the shared file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'evtwin-cli-')), 'registry.json');
    const base = ['--file', file, '--site', 's1', '--asset', 'cp1'];
    const reg = await cli([
      'registry',
      'register',
      ...base,
      '--owner',
      'ann',
      '--kind',
      'charge-point',
      '--json',
    ]);
    assert.equal(reg.code, 0, reg.err);
    const made = JSON.parse(reg.out) as { token: string; key: { kid: string } };
    assert.match(made.token, TOKEN_PATTERN);
    assert.ok(!readFileSync(file, 'utf8').includes(made.token), 'the file holds no token');
    assert.equal(verifyToken(indexRegistry(loadRegistry(file)), made.token, 's1', 'cp1').ok, true);
    const list = await cli(['registry', 'list', '--file', file]);
    assert.match(list.out, /^s1\/cp1\tcharge-point\tann\t"cp1"\tactive\tkey k/m);
    assert.ok(!list.out.includes(made.token));
    assert.equal((await cli(['registry', 'rename', ...base, '--name', 'Bay 1'])).code, 0);
    const rot = await cli(['registry', 'rotate', ...base]);
    const fresh = /\(shown once\): (evt_\S+)/.exec(rot.out)?.[1] as string;
    const idx = indexRegistry(loadRegistry(file));
    assert.equal(verifyToken(idx, made.token, 's1', 'cp1').ok, false);
    assert.equal(verifyToken(idx, fresh, 's1', 'cp1').ok, true);
    const rk = await cli(['registry', 'rotate-key', ...base, '--grace', '60', '--json']);
    assert.notEqual((JSON.parse(rk.out) as { key: { kid: string } }).key.kid, made.key.kid);
    assert.equal((await cli(['registry', 'revoke', ...base])).code, 0);
    assert.match((await cli(['registry', 'list', '--file', file, '--json'])).out, /"revokedAt": \d+/);
    const again = await cli(['registry', 'revoke', ...base]);
    assert.equal(again.code, 2);
    assert.match(again.err, /already revoked/);
  });

  it('exits 2 with a message on usage errors', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'evtwin-cli-')), 'registry.json');
    const cases: [string[], RegExp][] = [
      [[], /evtwin: registry and broker commands/],
      [['registry', 'list'], /--file is required/],
      [['registry', 'frobnicate', '--file', file], /unknown registry command "frobnicate"/],
      [['nope', '--file', file], /unknown command "nope"/],
      [['registry', 'register', '--file', file, '--site', 's1', '--asset', 'a'], /--owner is required/],
      [['registry', 'register', '--file', file, '--site', 's1', '--asset', 'a/b', '--owner', 'o'], /"asset"/],
      [
        [
          'registry',
          'register',
          '--file',
          file,
          '--site',
          's1',
          '--asset',
          'a',
          '--owner',
          'o',
          '--kind',
          'toaster',
        ],
        /"kind"/,
      ],
      [
        ['registry', 'rotate', '--file', file, '--site', 's1', '--asset', 'ghost'],
        /no device or charge point "s1\/ghost"/,
      ],
      [
        ['registry', 'rotate-key', '--file', file, '--site', 's1', '--asset', 'a', '--grace=-1'],
        /--grace -1/,
      ],
      [['registry', 'list', '--file', file, '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.out + r.err, message, args.join(' '));
    }
  });

  it('exits 1 with a clear error on a half-written registry file and does not touch it', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'evtwin-cli-')), 'registry.json');
    for (const asset of ['a', 'b'])
      await cli(['registry', 'register', '--file', file, '--site', 's', '--asset', asset, '--owner', 'o']);
    truncateSync(file, statSync(file).size - 40);
    const before = readFileSync(file);
    const r = await cli([
      'registry',
      'register',
      '--file',
      file,
      '--site',
      's',
      '--asset',
      'c',
      '--owner',
      'o',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /corrupt or half-written .*registry\.json\.bak/);
    assert.deepEqual(readFileSync(file), before);
    assert.equal((await cli(['registry', 'list', '--file', file])).code, 1);
  });
});
