/** scrypt password hashes: format, verify, bad hashes, and equal cost for unknown users. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD_HASH_PATTERN } from '../src/core';
import {
  DEFAULT_SCRYPT,
  PasswordHashError,
  dummyVerify,
  hashPassword,
  needsRehash,
  parsePasswordHash,
  verifyPassword,
  verifyUserPassword,
} from '../src/runtime/passwords';

const FAST = { N: 1024, r: 8, p: 1 };

describe('passwords', () => {
  it('hashes to scrypt$N$r$p$salt$hash with a fresh salt, and verifies', async () => {
    const h1 = await hashPassword('correct horse', FAST);
    const h2 = await hashPassword('correct horse', FAST);
    assert.match(h1, /^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.match(h1, PASSWORD_HASH_PATTERN);
    assert.notEqual(h1, h2);
    assert.equal(await verifyPassword('correct horse', h1), true);
    assert.equal(await verifyPassword('correct horse!', h1), false);
    assert.equal(await verifyPassword('Correct horse', h1), false);
    assert.equal(await verifyPassword('', h1), false);
  });

  it('defaults to N=2^15 r=8 p=1 and verifies with the parameters in the hash', async () => {
    const h = await hashPassword('pw');
    assert.deepEqual(parsePasswordHash(h).params, DEFAULT_SCRYPT);
    assert.equal(needsRehash(h), false);
    assert.equal(needsRehash(await hashPassword('pw', FAST)), true);
    assert.equal(await verifyPassword('pw', h), true);
  });

  it('normalises Unicode (NFC), so the same password typed two ways matches', async () => {
    const h = await hashPassword('caf\u00e9', FAST);
    assert.equal(await verifyPassword('cafe\u0301', h), true);
  });

  it('refuses broken or hostile hashes as "no", never as an exception', async () => {
    const good = await hashPassword('pw', FAST);
    const parts = good.split('$');
    const variants = [
      'pw',
      '',
      'bcrypt$10$abc',
      good.replace('scrypt', 'scrypT'),
      ['scrypt', '1000', ...parts.slice(2)].join('$'), // N not a power of two
      ['scrypt', String(2 ** 24), ...parts.slice(2)].join('$'), // would allocate 16 GiB
      ['scrypt', parts[1], '999', ...parts.slice(3)].join('$'),
      [...parts.slice(0, 5), 'short'].join('$'),
      `${good}$extra`,
    ];
    for (const v of variants) assert.equal(await verifyPassword('pw', v), false, v);
    assert.throws(() => parsePasswordHash(variants[5] ?? ''), PasswordHashError);
  });

  it('refuses empty and over-long passwords when hashing', async () => {
    await assert.rejects(hashPassword('', FAST), PasswordHashError);
    await assert.rejects(hashPassword('x'.repeat(1025), FAST), PasswordHashError);
    assert.equal(await verifyPassword('x'.repeat(1025), await hashPassword('x', FAST)), false);
  });

  it('an unknown user or one without a password costs about as much as a wrong password', async () => {
    const user = { passwordHash: await hashPassword('pw') };
    await dummyVerify(); // first call makes the dummy hash
    const time = async (fn: () => Promise<boolean>): Promise<number> => {
      const t = process.hrtime.bigint();
      for (let i = 0; i < 5; i++) assert.equal(await fn(), false);
      return Number(process.hrtime.bigint() - t) / 5e6;
    };
    const wrong = await time(() => verifyUserPassword(user, 'nope'));
    const unknown = await time(() => verifyUserPassword(undefined, 'nope'));
    const noHash = await time(() => verifyUserPassword({}, 'nope'));
    // Same scrypt work either way: within a factor 2 (the difference without the dummy would be ~1000x).
    for (const t of [unknown, noHash]) assert.ok(t > wrong / 2 && t < wrong * 2, `${wrong} vs ${t} ms`);
    assert.equal(await verifyUserPassword(user, 'pw'), true);
  });
});
