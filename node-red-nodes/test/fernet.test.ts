/** Fernet: the spec's own test vector, interop with Python's `cryptography` both ways, bad tokens. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  FernetError,
  b64urlDecode,
  b64urlEncode,
  fernetDecrypt,
  fernetEncrypt,
  generateFernetKey,
} from '../src/core/fernet';

const python = (code: string, input: string): string =>
  execFileSync('python3', ['-c', code], { input, encoding: 'utf8' }).trim();

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FernetError, `expected a FernetError, got ${String(err)}`);
    return err.code;
  }
  return 'no error';
};

describe('fernet', () => {
  // https://github.com/fernet/spec/blob/master/generate.json
  it('reproduces the spec test vector byte for byte', () => {
    const key = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
    const now = Date.parse('1985-10-26T01:20:00-07:00');
    const iv = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const token = fernetEncrypt(key, 'hello', now, iv);
    assert.equal(
      token,
      'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==',
    );
    assert.equal(fernetDecrypt(key, token, 60, now + 1000).plaintext.toString(), 'hello');
  });

  it('Python decrypts our tokens', () => {
    const key = generateFernetKey();
    const token = fernetEncrypt(key, '{"ts":1,"values":{"t":21.5}}');
    const out = python(
      'import sys;from cryptography.fernet import Fernet;k,t=sys.stdin.read().split();print(Fernet(k.encode()).decrypt(t.encode(),ttl=60).decode())',
      `${key} ${token}`,
    );
    assert.equal(out, '{"ts":1,"values":{"t":21.5}}');
  });

  it('we decrypt Python tokens, with Python keys', () => {
    const [key, token] = python(
      'from cryptography.fernet import Fernet;k=Fernet.generate_key();print(k.decode(),Fernet(k).encrypt(b"{\\"seq\\":7}").decode())',
      '',
    ).split(' ') as [string, string];
    assert.equal(fernetDecrypt(key, token, 60).plaintext.toString(), '{"seq":7}');
  });

  it('refuses tampered, wrong-key, expired, future, truncated, oversized and non-base64 tokens', () => {
    const key = generateFernetKey();
    const now = Date.now();
    const token = fernetEncrypt(key, 'x'.repeat(40), now);
    const raw = b64urlDecode(token) as Buffer;
    for (const i of [0, 5, 20, 40, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[i] = (bad[i] as number) ^ 1;
      // Byte 0 is the version: malformed; anything else fails the HMAC.
      assert.equal(
        code(() => fernetDecrypt(key, b64urlEncode(bad), 60, now)),
        i === 0 ? 'malformed' : 'tampered',
      );
    }
    assert.equal(
      code(() => fernetDecrypt(generateFernetKey(), token, 60, now)),
      'tampered',
    );
    assert.equal(
      code(() => fernetDecrypt(key, token, 60, now + 61_000)),
      'expired',
    );
    assert.equal(
      code(() => fernetDecrypt(key, token, undefined, now + 10 * 86_400_000)),
      'no error',
    );
    assert.equal(
      code(() => fernetDecrypt(key, fernetEncrypt(key, 'x', now + 120_000), 60, now)),
      'future',
    );
    assert.equal(
      code(() => fernetDecrypt(key, token.slice(0, 60), 60, now)),
      'malformed',
    );
    assert.equal(
      code(() => fernetDecrypt(key, '', 60, now)),
      'malformed',
    );
    assert.equal(
      code(() => fernetDecrypt(key, 'A'.repeat(70_000), 60, now)),
      'malformed',
    );
    assert.equal(
      code(() => fernetDecrypt(key, token.replace(/.$/, '*'), 60, now)),
      'malformed',
    );
    assert.equal(
      code(() => fernetDecrypt(key, 42 as unknown as string, 60, now)),
      'malformed',
    );
    assert.throws(() => fernetDecrypt('short', token), /32 bytes/);
  });

  it('Python refuses a token we tampered with', () => {
    const key = generateFernetKey();
    const raw = b64urlDecode(fernetEncrypt(key, 'hello')) as Buffer;
    raw[30] = (raw[30] as number) ^ 0x40;
    const out = python(
      'import sys;from cryptography.fernet import Fernet,InvalidToken\nk,t=sys.stdin.read().split()\ntry:\n  Fernet(k.encode()).decrypt(t.encode());print("accepted")\nexcept InvalidToken:\n  print("refused")',
      `${key} ${b64urlEncode(raw)}`,
    );
    assert.equal(out, 'refused');
  });
});
