/** AckWindow (PUBACKs in arrival order) and ReceiptBook (when a message's source may acknowledge it). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AckWindow } from '../src/core/ackWindow';
import { ReceiptBook, receiptOf } from '../src/core/receipts';

/** A deterministic shuffle (xorshift32), so a failure can be reproduced. */
function shuffled(n: number, seed = 0x9e3779b9): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j] as number, a[i] as number];
  }
  return a;
}

describe('AckWindow', () => {
  it('releases packet ids in arrival order when settled out of order', () => {
    const w = new AckWindow();
    const s = [11, 12, 13, 14].map((id) => w.add(id, 0));
    assert.equal(w.pending, 4);
    assert.deepEqual(w.settle(s[2] as number), [], 'the third waits for the first two');
    assert.deepEqual(w.settle(s[1] as number), []);
    assert.deepEqual(w.settle(s[0] as number), [11, 12, 13]);
    assert.equal(w.pending, 1);
    assert.deepEqual(w.settle(s[3] as number), [14]);
    assert.equal(w.pending, 0);
    assert.equal(w.oldestAt, undefined);
  });

  it('ignores a second settle of the same slot and unknown slots', () => {
    const w = new AckWindow();
    const a = w.add(1, 0);
    const b = w.add(2, 0);
    assert.deepEqual(w.settle(b), []);
    assert.deepEqual(w.settle(b), [], 'settling twice does not release it early');
    assert.deepEqual(w.settle(a), [1, 2]);
    assert.deepEqual(w.settle(a), []);
    assert.deepEqual(w.settle(999), []);
    assert.deepEqual(w.settle(-1), []);
  });

  it('QoS 0 slots (id 0) hold back the ones after them but are never returned', () => {
    const w = new AckWindow();
    const q1 = w.add(5, 0);
    const q0 = w.add(0, 0);
    const q1b = w.add(6, 0);
    assert.deepEqual(w.settle(q1b), []);
    assert.deepEqual(w.settle(q1), [5], 'stops at the unsettled QoS 0 slot');
    assert.equal(w.pending, 2);
    assert.deepEqual(w.settle(q0), [6], 'the QoS 0 slot itself sends nothing');
    assert.equal(w.pending, 0);
  });

  it('expire() forces the old ones only, counts them, and releases in order', () => {
    const w = new AckWindow();
    const a = w.add(1, 100);
    w.add(2, 200);
    const c = w.add(3, 300);
    w.add(4, 400);
    w.settle(c);
    assert.equal(w.oldestAt, 100);
    // Before 350: slots 1 and 2 are forced (3 was settled by the flow, not counted); 4 is not old yet.
    assert.deepEqual(w.expire(350), { ids: [1, 2, 3], forced: 2 });
    assert.equal(w.pending, 1);
    assert.equal(w.oldestAt, 400);
    assert.deepEqual(w.settle(a), [], 'already released');
    assert.deepEqual(w.expire(350), { ids: [], forced: 0 }, 'nothing old left');
    assert.deepEqual(w.expire(401), { ids: [4], forced: 1 });
    assert.equal(w.pending, 0);
  });

  it('after clear(), slots of the old connection settle to nothing and new slots work', () => {
    const w = new AckWindow();
    const old = [1, 2, 3].map((id) => w.add(id, 0));
    w.settle(old[1] as number);
    w.clear();
    assert.equal(w.pending, 0);
    for (const s of old) assert.deepEqual(w.settle(s), [], `old slot ${s}`);
    const fresh = w.add(1, 0);
    assert.ok(!old.includes(fresh), 'a new slot number, never reused');
    assert.deepEqual(w.settle(old[0] as number), [], 'an old slot does not settle the new message');
    assert.equal(w.pending, 1);
    assert.deepEqual(w.settle(fresh), [1]);
  });

  it('keeps order across compaction: 20,000 messages settled in random order release each id once, in order', () => {
    const w = new AckWindow();
    const N = 20_000;
    const idOf = (i: number): number => (i % 65_535) + 1;
    const slots = Array.from({ length: N }, (_, i) => w.add(idOf(i), i));
    const released: number[] = [];
    const order = shuffled(N);
    for (const i of order) released.push(...w.settle(slots[i] as number));
    assert.equal(w.pending, 0);
    assert.deepEqual(
      released,
      Array.from({ length: N }, (_, i) => idOf(i)),
    );
  });

  it('keeps order across compaction while messages keep arriving', () => {
    const w = new AckWindow();
    const released: number[] = [];
    const open: number[] = [];
    let next = 0;
    // A sliding window of ~6000 in flight, settled out of order, so the head passes 4096 many times
    // with messages still held behind it.
    for (let round = 0; round < 40; round++) {
      for (let k = 0; k < 1000; k++) open.push(w.add((next++ % 65_535) + 1, next));
      if (open.length > 6000) {
        const take = open.splice(0, 1000);
        for (const i of shuffled(take.length, round + 1)) released.push(...w.settle(take[i] as number));
      }
    }
    for (const i of shuffled(open.length, 7)) released.push(...w.settle(open[i] as number));
    assert.equal(w.pending, 0);
    assert.equal(released.length, next);
    assert.deepEqual(
      released,
      Array.from({ length: next }, (_, i) => (i % 65_535) + 1),
    );
  });
});

describe('ReceiptBook', () => {
  it('calls back once when the receipt is settled; a second settle is harmless', () => {
    const book = new ReceiptBook();
    let calls = 0;
    const id = book.issue(() => calls++);
    assert.equal(book.size, 1);
    book.settle(id);
    assert.equal(calls, 1);
    assert.equal(book.size, 0);
    book.settle(id);
    book.settle(12345);
    assert.equal(calls, 1);
  });

  it('a receipt forked to 3 parts needs 3 settles', () => {
    const book = new ReceiptBook();
    let calls = 0;
    const id = book.issue(() => calls++);
    book.fork(id, 3);
    book.settle(id);
    book.settle(id);
    assert.equal(calls, 0, 'one part still open');
    assert.equal(book.size, 1);
    book.settle(id);
    assert.equal(calls, 1);
    book.settle(id);
    assert.equal(calls, 1);
  });

  it('fork to 0 parts settles at once; fork to 1 changes nothing', () => {
    const book = new ReceiptBook();
    let zero = 0;
    book.fork(
      book.issue(() => zero++),
      0,
    );
    assert.equal(zero, 1);
    let one = 0;
    const id = book.issue(() => one++);
    book.fork(id, 1);
    assert.equal(one, 0);
    book.settle(id);
    assert.equal(one, 1);
    assert.equal(book.size, 0);
    book.fork(id, 0);
    assert.equal(one, 1, 'forking a settled receipt does nothing');
  });

  it('discard forgets a receipt without ever calling back', () => {
    const book = new ReceiptBook();
    let calls = 0;
    const id = book.issue(() => calls++);
    book.fork(id, 2);
    book.discard(id);
    assert.equal(book.size, 0);
    book.settle(id);
    book.settle(id);
    book.fork(id, 0);
    assert.equal(calls, 0);
  });

  it('sweep removes only receipts issued before the cut, without calling back', () => {
    const book = new ReceiptBook();
    const called: string[] = [];
    const old1 = book.issue(() => called.push('old1'), 1000);
    const old2 = book.issue(() => called.push('old2'), 1500);
    const fresh = book.issue(() => called.push('fresh'), 2000);
    assert.equal(book.sweep(2000), 2);
    assert.equal(book.size, 1);
    book.settle(old1);
    book.settle(old2);
    assert.deepEqual(called, []);
    book.settle(fresh);
    assert.deepEqual(called, ['fresh']);
    assert.equal(book.sweep(Number.MAX_SAFE_INTEGER), 0);
  });

  it('issues distinct ids', () => {
    const book = new ReceiptBook();
    const ids = Array.from({ length: 100 }, () => book.issue(() => undefined));
    assert.equal(new Set(ids).size, 100);
    assert.ok(ids.every((id) => receiptOf({ evtwin: { receipt: id } }) === id));
  });
});

describe('receiptOf', () => {
  it('reads msg.evtwin.receipt', () => {
    assert.equal(receiptOf({ evtwin: { receipt: 7 } }), 7);
    assert.equal(receiptOf({ payload: 1, evtwin: { receipt: 1, other: 'x' } }), 1);
  });

  it('returns undefined for anything else', () => {
    const junk: object[] = [
      {},
      { evtwin: null },
      { evtwin: 7 },
      { evtwin: 'receipt' },
      { evtwin: {} },
      { evtwin: { receipt: '7' } },
      { evtwin: { receipt: 0 } },
      { evtwin: { receipt: -3 } },
      { evtwin: { receipt: 1.5 } },
      { evtwin: { receipt: Number.NaN } },
      { evtwin: { receipt: Number.POSITIVE_INFINITY } },
      { evtwin: { receipt: 2 ** 60 } },
      { evtwin: { receipt: null } },
      { evtwin: [7] },
      { receipt: 7 },
      [],
    ];
    for (const m of junk) assert.equal(receiptOf(m), undefined, JSON.stringify(m));
  });
  it('refuse() hands the message back to a source that can deliver it again, else settles it', () => {
    const book = new ReceiptBook();
    const events: string[] = [];
    const a = book.issue(
      () => events.push('a settled'),
      0,
      () => events.push('a refused'),
    );
    book.fork(a, 3);
    book.settle(a);
    assert.equal(book.refuse(a), true, 'one part refused: the whole message goes back');
    book.settle(a); // the other parts, later: the receipt is closed
    book.settle(a);
    const b = book.issue(() => events.push('b settled'));
    assert.equal(book.refuse(b), false, 'no way back: settled, as before');
    assert.equal(book.refuse(12345), false);
    assert.deepEqual(events, ['a refused', 'b settled']);
    assert.equal(book.size, 0);
  });
});
