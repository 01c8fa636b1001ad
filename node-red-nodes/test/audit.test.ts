/**
 * The hash-chained audit log: canonical JSON, chain verification (a byte changed in the middle names its
 * line; a torn last line is "truncated"), the append-only file (restart, crash mid-write, concurrent
 * records) and the per-device-per-minute aggregation of auth rejections.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GENESIS_HASH,
  canonicalJSON,
  encodePoint,
  entryLine,
  nextEntry,
  verifyChain,
  type AuditEntry,
  type AuditEvent,
} from '../src/core';
import { AuditLog, RejectionAggregator, auditPoint, verifyAuditFile } from '../src/runtime/auditLog';

const T0 = 1_767_225_600_000;
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmpFile = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'evtwin-audit-'));
  dirs.push(d);
  return join(d, 'audit.jsonl');
};
const ev = (i: number, extra: Partial<AuditEvent> = {}): AuditEvent => ({
  ts: T0 + i,
  actor: i % 2 ? 'ana' : 'device:plant-a/cnc-01',
  action: i % 3 ? 'user.login' : 'registry.revoke',
  target: `t${i}`,
  outcome: i % 5 ? 'ok' : 'denied',
  detail: { n: i, why: 'a "quoted" \\ text\nwith ünïcode', flag: i % 2 === 0 },
  ...extra,
});
function chainText(n: number): string {
  let prev: AuditEntry | undefined;
  let text = '';
  for (let i = 0; i < n; i++) {
    prev = nextEntry(prev, ev(i));
    text += entryLine(prev);
  }
  return text;
}

describe('audit chain (core)', () => {
  it('canonical JSON sorts keys at every level and drops undefined', () => {
    assert.equal(
      canonicalJSON({ b: 1, a: { d: [1, 'x'], c: true }, u: undefined }),
      '{"a":{"c":true,"d":[1,"x"]},"b":1}',
    );
    assert.throws(() => canonicalJSON({ x: NaN }), TypeError);
  });

  it('links each entry to the previous hash, from GENESIS', () => {
    const a = nextEntry(undefined, ev(0));
    const b = nextEntry(a, ev(1));
    assert.equal(a.prev, GENESIS_HASH);
    assert.equal(a.seq, 1);
    assert.equal(b.prev, a.hash);
    assert.equal(b.seq, 2);
    assert.match(b.hash, /^[0-9a-f]{64}$/);
    const v = verifyChain(chainText(50));
    assert.deepEqual(v.ok && { entries: v.entries, lastSeq: v.lastSeq }, { entries: 50, lastSeq: 50 });
    assert.deepEqual(verifyChain(''), { ok: true, entries: 0, lastHash: GENESIS_HASH, lastSeq: 0 });
  });

  it('one byte changed in the middle: verify names that line', () => {
    const text = chainText(20);
    const lines = text.split('\n');
    for (const [lineNo, from, to] of [
      [10, '"ok"', '"no"'],
      [11, 'user.login', 'user.logim'],
      [7, '"n":6', '"n":7'],
      [16, 'ana', 'anb'],
    ] as const) {
      const copy = lines.slice();
      const target = copy[lineNo - 1] ?? '';
      assert.ok(target.includes(from), `${from} in line ${lineNo}: ${target}`);
      copy[lineNo - 1] = target.replace(from, to);
      const v = verifyChain(copy.join('\n'));
      assert.equal(v.ok, false);
      assert.deepEqual(
        !v.ok && [v.line, v.kind, v.entries],
        [lineNo, 'tampered', lineNo - 1],
        JSON.stringify(v),
      );
    }
    // Flip one byte at the middle of the file, wherever it lands.
    const buf = Buffer.from(text);
    const mid = Math.floor(buf.length / 2);
    buf[mid] = (buf[mid] ?? 0) ^ 0x01;
    const expectedLine = text.slice(0, mid).split('\n').length;
    const v = verifyChain(buf.toString('utf8'));
    assert.deepEqual(!v.ok && [v.line, v.kind], [expectedLine, 'tampered']);
  });

  it('deleted, inserted, reordered and re-spaced lines are caught at the first wrong line', () => {
    const lines = chainText(10).split('\n').slice(0, -1);
    const check = (ls: string[], line: number): void => {
      const v = verifyChain(ls.join('\n') + '\n');
      assert.deepEqual(!v.ok && v.line, line, JSON.stringify(v));
    };
    check([...lines.slice(0, 4), ...lines.slice(5)], 5); // deleted line 5
    check([...lines.slice(0, 3), lines[3] ?? '', ...lines.slice(3)], 5); // duplicated line 4
    check([...lines.slice(0, 2), lines[3] ?? '', lines[2] ?? '', ...lines.slice(4)], 3); // swapped 3 and 4
    check([...lines.slice(0, 6), ' ' + (lines[6] ?? ''), ...lines.slice(7)], 7); // same JSON, other bytes
    const extra = JSON.parse(lines[1] ?? '') as Record<string, unknown>;
    check([lines[0] ?? '', JSON.stringify({ ...extra, note: 'x' }), ...lines.slice(2)], 2); // added field
    check([lines[0] ?? '', '', ...lines.slice(1)], 2); // blank line
  });

  it('a torn last line (crash mid-write) is reported as truncated, after the good entries', () => {
    const text = chainText(5);
    const cut = text.slice(0, text.length - 20);
    const v = verifyChain(cut);
    assert.deepEqual(!v.ok && [v.line, v.kind, v.entries], [5, 'truncated', 4]);
    // A complete line without its newline is still a torn write.
    const v2 = verifyChain(text.slice(0, -1));
    assert.deepEqual(!v2.ok && [v2.line, v2.kind], [5, 'truncated']);
  });

  it('mirrors to InfluxDB `audit` with low-cardinality tags only', () => {
    const e = nextEntry(undefined, ev(3));
    const line = encodePoint(auditPoint(e));
    assert.equal(
      line,
      `audit,action=registry.revoke,outcome=ok actor="ana",hash="${e.hash}",seq=1i,target="t3",detail=${JSON.stringify(
        canonicalJSON(e.detail ?? {}),
      )} ${T0 + 3}`,
    );
  });
});

describe('audit log file', () => {
  it('appends fsynced groups, keeps order under bursts, and resumes the chain after a restart', async () => {
    const file = tmpFile();
    const log = await AuditLog.open({ file });
    for (let i = 0; i < 500; i++) log.record(ev(i));
    await log.close();
    const log2 = await AuditLog.open({ file });
    assert.equal(log2.lastSeq, 500);
    log2.record(ev(500));
    await log2.flush();
    log2.record(ev(501));
    await log2.close();
    const v = await verifyAuditFile(file);
    assert.deepEqual(v.ok && v.entries, 502, JSON.stringify(v));
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as AuditEntry).target),
      Array.from({ length: 502 }, (_, i) => `t${i}`),
    );
  });

  it('after a crash mid-write: the torn line is saved aside, an audit.recover entry says so, appends resume', async () => {
    const file = tmpFile();
    const log = await AuditLog.open({ file });
    for (let i = 0; i < 10; i++) log.record(ev(i));
    await log.close();
    // Simulate the crash: half of an 11th line reached the disk.
    const eleventh = entryLine(nextEntry({ seq: 10, hash: 'x'.repeat(64) }, ev(10)));
    appendFileSync(file, eleventh.slice(0, 40));
    const torn = await verifyAuditFile(file);
    assert.deepEqual(!torn.ok && [torn.line, torn.kind], [11, 'truncated']);

    const again = await AuditLog.open({ file, now: () => T0 + 99 });
    again.record(ev(11));
    await again.close();
    const v = await verifyAuditFile(file);
    assert.deepEqual(v.ok && v.entries, 12, JSON.stringify(v));
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const recover = JSON.parse(lines[10] ?? '') as AuditEntry;
    assert.equal(recover.action, 'audit.recover');
    assert.equal(recover.detail?.tornBytes, 40);
    const saved = readdirSync(join(file, '..')).filter((f) => f.includes('.torn-'));
    assert.equal(saved.length, 1);
    assert.equal(readFileSync(join(file, '..', saved[0] ?? ''), 'utf8'), eleventh.slice(0, 40));
  });

  it('refuses to continue a file whose last line was altered', async () => {
    const file = tmpFile();
    writeFileSync(file, chainText(3).replace(/"t2"/, '"tX"'));
    await assert.rejects(AuditLog.open({ file }), /does not hash to itself/);
    writeFileSync(file, chainText(3) + 'garbage\n');
    await assert.rejects(AuditLog.open({ file }), /not an audit entry/);
  });

  it('finds the last hash in a file larger than its tail window', async () => {
    const file = tmpFile();
    const log = await AuditLog.open({ file });
    const big = 'y'.repeat(30_000);
    for (let i = 0; i < 8; i++) log.record(ev(i, { detail: { big } }));
    await log.close();
    const log2 = await AuditLog.open({ file });
    log2.record(ev(8));
    await log2.close();
    const v = await verifyAuditFile(file);
    assert.deepEqual(v.ok && v.entries, 9);
  });

  it('mirrors each entry to a writer, nudging same-ms bursts apart; a failing mirror never stops the file', async () => {
    const file = tmpFile();
    const points: unknown[] = [];
    const log = await AuditLog.open({ file, mirror: { write: (p) => points.push(...p) } });
    for (let i = 0; i < 3; i++) log.record(ev(0));
    await log.close();
    assert.deepEqual(
      points.map((p) => (p as { ts: number }).ts),
      [T0, T0 + 1, T0 + 2],
    );
    const errors: Error[] = [];
    const file2 = tmpFile();
    const log2 = await AuditLog.open({
      file: file2,
      mirror: {
        write: () => {
          throw new Error('spool full');
        },
      },
    });
    log2.on('error', (e) => errors.push(e));
    log2.record(ev(1));
    await log2.close();
    assert.equal(errors.length, 1);
    assert.ok(existsSync(file2));
    assert.deepEqual((await verifyAuditFile(file2)).ok, true);
  });
});

describe('rejection aggregation', () => {
  it('one auth.reject event per device per minute, with counts per reason', () => {
    const events: AuditEvent[] = [];
    let now = T0 + 5_000;
    const agg = new RejectionAggregator({
      sink: { record: (e) => events.push(e) },
      actor: 'node:auth1',
      now: () => now,
      timer: false,
    });
    for (let i = 0; i < 1000; i++) agg.recordRejection('plant-a/cnc-01', i % 4 ? 'bad-token' : 'replay');
    agg.recordRejection('plant-a/cnc-02', 'revoked');
    assert.equal(events.length, 0);
    now = T0 + 59_999;
    agg.flush();
    assert.equal(events.length, 0, 'the minute is not over');
    now = T0 + 61_000;
    agg.recordRejection('plant-a/cnc-01', 'bad-token'); // next minute: closes the first window
    assert.equal(events.length, 2);
    assert.deepEqual(events[0], {
      ts: T0 + 5_000,
      actor: 'node:auth1',
      action: 'auth.reject',
      target: 'plant-a/cnc-01',
      outcome: 'denied',
      detail: { count: 1000, first: T0 + 5_000, last: T0 + 5_000, reasons: 'replay=250,bad-token=750' },
    });
    assert.equal(events[1]?.target, 'plant-a/cnc-02');
    agg.close();
    assert.equal(events.length, 3);
    assert.equal(events[2]?.detail?.count, 1);
  });

  it('bounds the devices tracked per window (invented device names go to "*")', () => {
    const events: AuditEvent[] = [];
    const agg = new RejectionAggregator({
      sink: { record: (e) => events.push(e) },
      maxDevices: 3,
      now: () => T0,
      timer: false,
    });
    for (let i = 0; i < 100; i++) agg.recordRejection(`dev-${i}`, 'unknown');
    agg.close();
    assert.deepEqual(
      events.map((e) => [e.target, e.detail?.count]),
      [
        ['dev-0', 1],
        ['dev-1', 1],
        ['dev-2', 1],
        ['*', 97],
      ],
    );
  });

  it('flushes on its own at the end of the minute (timer)', async () => {
    const events: AuditEvent[] = [];
    // A 200 ms window stands in for the minute.
    const agg = new RejectionAggregator({ sink: { record: (e) => events.push(e) }, windowMs: 200 });
    agg.recordRejection('d', 'x');
    await new Promise((r) => setTimeout(r, 450));
    assert.equal(events.length, 1);
    agg.close();
  });
});
