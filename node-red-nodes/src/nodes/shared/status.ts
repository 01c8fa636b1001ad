/**
 * Node status without flooding the editor: at most one update per interval, and only when the
 * text or colour changed.
 */
import type { Node, NodeStatus } from 'node-red';

export class StatusReporter {
  private last = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly node: Node,
    private readonly compute: () => NodeStatus,
    intervalMs = 1000,
  ) {
    this.timer = setInterval(() => this.refresh(), intervalMs);
    this.timer.unref();
  }

  refresh(): void {
    const status = this.compute();
    const key = `${status.fill}|${status.shape}|${status.text}`;
    if (key === this.last) return;
    this.last = key;
    this.node.status(status);
  }

  /** Show a status now (errors and state changes should not wait for the next tick). */
  set(status: NodeStatus): void {
    this.last = `${status.fill}|${status.shape}|${status.text}`;
    this.node.status(status);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.node.status({});
  }
}

/** Everything thrown is reported as an Error with a message. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
