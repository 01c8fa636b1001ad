import { setTimeout as sleep } from 'node:timers/promises';

/** Poll `cond` every 10 ms until it holds; fail naming `what` after `timeoutMs`. */
export async function until(what: string, cond: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
