/** Registry core (operations, verification), the auth gate's replay rules, and the store on a real disk. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TOKEN_PATTERN,
  emptyRegistry,
  indexRegistry,
  keyFor,
  register,
  rename,
  revoke,
  rotateKey,
  rotateToken,
  verifyToken,
  type RegistryState,
} from '../src/core/registry';
import { mosquittoVerify } from '../src/core/mosquittoAuth';
import { ReplayGuard, FailureThrottle, DEFAULT_REPLAY } from '../src/core/replay';
import { RegistryFileError, loadRegistry, saveRegistry, updateRegistry } from '../src/runtime/registryStore';

const ctx = (now = 1_700_000_000_000) => ({ now, actor: 'test' });

function twoDevices(): { state: RegistryState; a: string; b: string } {
  const r1 = register(emptyRegistry(), { site: 's1', asset: 'a', owner: 'ann' }, ctx());
  const r2 = register(r1.state, { site: 's1', asset: 'b', owner: 'bob', kind: 'charge-point' }, ctx());
  return { state: r2.state, a: r1.token, b: r2.token };
}

describe('registry core', () => {
  it('registers with a one-time token, stores only hashes, audits every change', () => {
    const r = register(emptyRegistry(), { site: 's1', asset: 'a', owner: 'ann', name: 'Pump A' }, ctx());
    assert.match(r.token, TOKEN_PATTERN);
    const text = JSON.stringify(r.state);
    assert.ok(!text.includes(r.token), 'the token itself is not in the state');
    assert.ok(mosquittoVerify(r.token, r.entry.brokerHash as string), 'broker hash is of the token');
    assert.equal(r.entry.keys.length, 0, 'plain devices get no Fernet key by default');
    assert.deepEqual(
      r.events.map((e) => [e.action, e.target, e.outcome]),
      [['registry.register', 's1/a', 'ok']],
    );
    assert.ok(!JSON.stringify(r.events).includes(r.token.slice(4)), 'audit events carry no secrets');
    const cp = register(r.state, { site: 's1', asset: 'cp1', owner: 'ann', kind: 'charge-point' }, ctx());
    assert.equal(cp.entry.keys.length, 1);
    assert.equal(cp.key?.kid, cp.entry.keys[0]?.kid);
    assert.throws(
      () => register(cp.state, { site: 's1', asset: 'a', owner: 'x' }, ctx()),
      /already registered/,
    );
    for (const bad of [
      {},
      { site: 's1', asset: 'bad/id', owner: 'x' },
      { site: 's1', asset: 'z', owner: 5 },
      null,
    ])
      assert.throws(
        () => register(cp.state, bad as never, ctx()),
        (e: Error) => e.name === 'RegistryError',
      );
    const renamed = rename(cp.state, 's1/a', 'Pump A2', ctx());
    assert.equal(renamed.entry.name, 'Pump A2');
    assert.equal(renamed.state.revision, cp.state.revision + 1);
  });

  it('verifies tokens: ok, missing, malformed, truncated, oversized, wrong type, another device, unknown, revoked, rotated', () => {
    const { state, a, b } = twoDevices();
    const idx = indexRegistry(state);
    const reason = (t: unknown, asset = 'a') => {
      const v = verifyToken(idx, t, 's1', asset);
      return v.ok ? 'ok' : v.reason;
    };
    assert.equal(reason(a), 'ok');
    assert.equal(reason(undefined), 'missing');
    assert.equal(reason(''), 'missing');
    assert.equal(reason('evt_short'), 'malformed');
    assert.equal(reason(a.slice(0, -1)), 'malformed');
    assert.equal(reason(a + 'x'.repeat(1_000_000)), 'malformed');
    assert.equal(reason(12345), 'malformed');
    assert.equal(reason({ token: a }), 'malformed');
    assert.equal(reason(b), 'wrong-device');
    assert.equal(reason(a, 'nope'), 'wrong-device');
    assert.equal(reason('evt_' + 'A'.repeat(43)), 'unknown');
    const revoked = revoke(state, 's1/a', ctx()).state;
    assert.equal(verifyToken(indexRegistry(revoked), a, 's1', 'a').ok ? 'ok' : 'no', 'no');
    assert.deepEqual(verifyToken(indexRegistry(revoked), a, 's1', 'a'), { ok: false, reason: 'revoked' });
    const rotated = rotateToken(state, 's1/a', ctx());
    assert.deepEqual(verifyToken(indexRegistry(rotated.state), a, 's1', 'a'), {
      ok: false,
      reason: 'unknown',
    });
    assert.equal(verifyToken(indexRegistry(rotated.state), rotated.token, 's1', 'a').ok, true);
  });

  it('rotates Fernet keys with a grace period, then refuses the old key', () => {
    const { state } = twoDevices();
    const old = state.entries[1]?.keys[0]?.kid as string;
    const t0 = 1_700_000_100_000;
    const r = rotateKey(state, 's1/b', 60_000, ctx(t0));
    const idx = indexRegistry(r.state);
    const at = (kid: string, now: number, asset = 'b') => {
      const v = keyFor(idx, kid, 's1', asset, now);
      return v.ok ? 'ok' : v.reason;
    };
    assert.equal(at(r.key.kid, t0), 'ok');
    assert.equal(at(old, t0 + 59_000), 'ok');
    assert.equal(at(old, t0 + 60_000), 'expired-key');
    assert.equal(at('nosuchkid', t0), 'unknown-key');
    assert.equal(at(r.key.kid, t0, 'a'), 'wrong-device');
    // A later rotation wipes the expired key's secret but keeps its id.
    const r2 = rotateKey(r.state, 's1/b', 0, ctx(t0 + 120_000));
    const entry = r2.state.entries[1];
    assert.equal(entry?.keys.find((k) => k.kid === old)?.key, '');
    assert.equal(keyFor(indexRegistry(r2.state), r.key.kid, 's1', 'b', t0 + 120_000).ok, false);
    assert.equal(
      keyFor(indexRegistry(revoke(r2.state, 's1/b', ctx()).state), r2.key.kid, 's1', 'b', t0).ok,
      false,
    );
  });
});

describe('replay guard and failure throttle', () => {
  it('refuses seen seqs, seqs behind the window and seen Fernet tokens; accepts a reboot', () => {
    const g = new ReplayGuard({ ...DEFAULT_REPLAY, seqWindow: 10 });
    const ok = (items: { seq?: number; ts?: number }[], mac?: string) => {
      const facts = mac ? { items, fernet: { mac, tsMs: 1000 } } : { items };
      const r = g.check('d', facts, 1000);
      if (!r) g.commit('d', facts, 1000);
      return r === undefined;
    };
    assert.ok(ok([{ seq: 1, ts: 100 }]));
    assert.ok(ok([{ seq: 3, ts: 300 }]));
    assert.ok(ok([{ seq: 2, ts: 200 }]), 'out of order within the window');
    assert.ok(!ok([{ seq: 2, ts: 200 }]), 'exact replay');
    assert.ok(
      !ok([
        { seq: 4, ts: 400 },
        { seq: 4, ts: 400 },
      ]),
      'same seq twice in a batch',
    );
    assert.ok(ok([{ seq: 30, ts: 3000 }]));
    assert.ok(!ok([{ seq: 15, ts: 1500 }]), 'behind the window, old ts');
    assert.ok(ok([{ seq: 0, ts: 5000 }]), 'device rebooted: seq restarts with a newer ts');
    assert.ok(!ok([{ seq: 30, ts: 3000 }]), 'the pre-reboot message replayed');
    assert.ok(ok([{ ts: 5000 }], 'mac1'));
    assert.ok(!ok([{ ts: 5000 }], 'mac1'), 'same Fernet token');
    assert.ok(!ok([{ ts: 1000 }]), 'no seq and far behind the newest ts');
  });

  it('throttles a device after its failure burst and lets it back as the budget refills', () => {
    const t = new FailureThrottle({ burst: 3, perMinute: 60, maxDevices: 10 });
    for (let i = 0; i < 3; i++) t.failure('d', 0);
    assert.ok(t.throttled('d', 0));
    assert.ok(!t.throttled('other', 0));
    assert.ok(!t.throttled('d', 1000), 'one failure forgiven per second at 60/min');
  });
});

describe('registry store', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'evtwin-reg-'));

  it('writes atomically with 0600, keeps a .bak, and reads back what it wrote', () => {
    const file = join(dir(), 'registry.json');
    assert.deepEqual(loadRegistry(file), emptyRegistry(), 'missing file = empty registry');
    const r1 = updateRegistry(file, (s) => register(s, { site: 's', asset: 'a', owner: 'o' }, ctx()));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!existsSync(`${file}.bak`));
    updateRegistry(file, (s) => register(s, { site: 's', asset: 'b', owner: 'o' }, ctx()));
    assert.equal(loadRegistry(file).entries.length, 2);
    assert.deepEqual(JSON.parse(readFileSync(`${file}.bak`, 'utf8')), r1.state);
    assert.ok(!existsSync(`${file}.lock`), 'lock released');
  });

  it('reports a truncated, corrupt or foreign file clearly and never overwrites the good backup', () => {
    const file = join(dir(), 'registry.json');
    updateRegistry(file, (s) => register(s, { site: 's', asset: 'a', owner: 'o' }, ctx()));
    updateRegistry(file, (s) => register(s, { site: 's', asset: 'b', owner: 'o' }, ctx()));
    const good = readFileSync(`${file}.bak`, 'utf8');
    truncateSync(file, Math.floor(statSync(file).size / 2)); // a half-written file
    assert.throws(
      () => loadRegistry(file),
      (e: Error) =>
        e instanceof RegistryFileError &&
        /corrupt or half-written/.test(e.message) &&
        e.message.includes('.bak'),
    );
    assert.throws(
      () => updateRegistry(file, (s) => register(s, { site: 's', asset: 'c', owner: 'o' }, ctx())),
      RegistryFileError,
      'no change is written on top of a corrupt file',
    );
    assert.equal(readFileSync(`${file}.bak`, 'utf8'), good, 'backup untouched');
    writeFileSync(file, '{"format":"something-else"}');
    assert.throws(() => loadRegistry(file), /"format" must be "evtwin-registry"/);
    writeFileSync(file, JSON.stringify({ ...emptyRegistry(), version: 99 }));
    assert.throws(() => loadRegistry(file), /unsupported version 99/);
    writeFileSync(file, JSON.stringify({ ...emptyRegistry(), entries: [{ id: 'x' }] }));
    assert.throws(() => loadRegistry(file), /entries\[0\]\.site must be a string/);
    // Recovery is explicit: the operator restores the backup.
    writeFileSync(file, good);
    assert.equal(loadRegistry(file).entries.length, 1);
    saveRegistry(file, loadRegistry(file));
  });
});
