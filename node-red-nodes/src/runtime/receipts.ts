/**
 * The process's one ReceiptBook: evtwin-mqtt-in issues receipts, the nodes where a message's path
 * ends settle them (see core/receipts.ts). One instance per Node-RED runtime, shared by module.
 */
import { ReceiptBook, receiptsOf } from '../core/receipts';

export const receipts = new ReceiptBook();

/** Longer than any source's acknowledge timeout (evtwin-mqtt-in: at most 10 min): it has acknowledged on its own. */
const FORGET_AFTER_MS = 15 * 60_000;
setInterval(() => receipts.sweep(Date.now() - FORGET_AFTER_MS), 60_000).unref();

/** Settle the receipts `msg` carries, if any. */
export function settleReceipts(msg: object): void {
  for (const id of receiptsOf(msg)) receipts.settle(id);
}
