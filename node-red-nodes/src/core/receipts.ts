/**
 * Receipts: how a message's source learns that the flow is done with it. An input node that can
 * acknowledge late (evtwin-mqtt-in) issues a receipt and puts its number on `msg.evtwin.receipt`;
 * nodes pass it on; the node where the message's path ends settles it: evtwin-influx-out once its
 * points are in InfluxDB or in the on-disk spool, evtwin-auth and evtwin-ingest when they dead-letter
 * it. A node that turns one message into several forks the receipt, so the source hears back only
 * when every part has been settled. Settling an unknown or already settled receipt does nothing.
 */
export type ReceiptId = number;

interface Open {
  holds: number;
  issuedAt: number;
  onSettled: () => void;
  onRefused: (() => void) | undefined;
}

export class ReceiptBook {
  private next = 1;
  private readonly open = new Map<ReceiptId, Open>();

  /** Receipts issued and not yet settled. */
  get size(): number {
    return this.open.size;
  }

  /** `onRefused`: a node could not keep the message now (a full spool); its source should deliver it again later. */
  issue(onSettled: () => void, now = Date.now(), onRefused?: () => void): ReceiptId {
    const id = this.next++;
    this.open.set(id, { holds: 1, issuedAt: now, onSettled, onRefused });
    return id;
  }

  /**
   * A part of the message could not be kept: the source is told to deliver it again (if it can; else
   * it is settled, as before receipts could be refused). The receipt is closed either way.
   */
  refuse(id: ReceiptId): boolean {
    const r = this.open.get(id);
    if (!r) return false;
    this.open.delete(id);
    if (r.onRefused) {
      r.onRefused();
      return true;
    }
    r.onSettled();
    return false;
  }

  /**
   * Forget receipts issued before `before` without calling back: their messages went where nothing
   * settles them (the source acknowledges those on its own timeout). Returns how many.
   */
  sweep(before: number): number {
    let n = 0;
    // A Map iterates in insertion order: the oldest first.
    for (const [id, r] of this.open) {
      if (r.issuedAt >= before) break;
      this.open.delete(id);
      n++;
    }
    return n;
  }

  /** The message carrying `id` became `parts` messages (0: it ended here, which settles it). */
  fork(id: ReceiptId, parts: number): void {
    const r = this.open.get(id);
    if (!r) return;
    r.holds += parts - 1;
    if (r.holds <= 0) this.finish(id, r);
  }

  settle(id: ReceiptId): void {
    const r = this.open.get(id);
    if (!r) return;
    r.holds--;
    if (r.holds <= 0) this.finish(id, r);
  }

  /** Forget a receipt without calling back (its source can no longer acknowledge it). */
  discard(id: ReceiptId): void {
    this.open.delete(id);
  }

  private finish(id: ReceiptId, r: Open): void {
    this.open.delete(id);
    r.onSettled();
  }
}

/**
 * The receipts a message carries: msg.evtwin.receipt (a message of its own) and msg.evtwin.receipts
 * (readings of several messages in one, after a batch).
 */
export function receiptsOf(msg: object): ReceiptId[] {
  const e = (msg as { evtwin?: unknown }).evtwin;
  if (typeof e !== 'object' || e === null) return [];
  const { receipt, receipts } = e as { receipt?: unknown; receipts?: unknown };
  const out: ReceiptId[] = [];
  if (isReceipt(receipt)) out.push(receipt);
  if (Array.isArray(receipts)) for (const r of receipts) if (isReceipt(r)) out.push(r);
  return out;
}

const isReceipt = (r: unknown): r is ReceiptId => typeof r === 'number' && Number.isSafeInteger(r) && r > 0;

/** The receipt a message carries on msg.evtwin.receipt, if any. */
export function receiptOf(msg: object): ReceiptId | undefined {
  const e = (msg as { evtwin?: unknown }).evtwin;
  if (typeof e !== 'object' || e === null) return undefined;
  const r = (e as { receipt?: unknown }).receipt;
  return typeof r === 'number' && Number.isSafeInteger(r) && r > 0 ? r : undefined;
}
