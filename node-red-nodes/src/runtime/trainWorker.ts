/**
 * Retraining off the event loop: a worker_thread that runs the learned detector's pure trainModel
 * (core/scoring/learned.ts) on rows it is sent and answers with the trained, serialisable state.
 * The same file is the worker (when loaded in a worker thread) and the client (TrainPool).
 */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { trainModel, type LearnedDetectorOptions, type TrainingRow } from '../core/scoring/learned';
import type { DetectorState } from '../core/scoring/detector';

interface TrainRequest {
  id: number;
  rows: TrainingRow[];
  options: LearnedDetectorOptions;
}
type TrainReply =
  { id: number; ok: true; state: DetectorState; ms: number } | { id: number; ok: false; error: string };

if (!isMainThread && parentPort) {
  const port = parentPort;
  port.on('message', (req: TrainRequest) => {
    const t0 = performance.now();
    try {
      const state = trainModel(req.rows, req.options);
      port.postMessage({ id: req.id, ok: true, state, ms: performance.now() - t0 } satisfies TrainReply);
    } catch (err) {
      port.postMessage({
        id: req.id,
        ok: false,
        error: err instanceof Error ? err.message : String(err),
      } satisfies TrainReply);
    }
  });
}

export interface TrainResult {
  state: DetectorState;
  /** Time the worker spent training. */
  ms: number;
}

/**
 * One worker thread, started on first use and kept; requests run one after another. Needs the compiled
 * file (dist/runtime/trainWorker.js) beside this one: a worker cannot load TypeScript.
 */
export class TrainPool {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (r: TrainResult) => void; reject: (e: Error) => void }
  >();

  constructor(private readonly file: string = __filename.replace(/\.ts$/, '.js')) {}

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.file);
    w.unref();
    w.on('message', (reply: TrainReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve({ state: reply.state, ms: reply.ms });
      else p.reject(new Error(reply.error));
    });
    const fail = (err: Error): void => {
      this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => {
      if (this.worker === w) fail(new Error(`training worker exited with code ${code}`));
    });
    this.worker = w;
    return w;
  }

  /** Train a detector state from rows in the worker thread. */
  train(rows: TrainingRow[], options: LearnedDetectorOptions = {}): Promise<TrainResult> {
    const id = this.nextId++;
    return new Promise<TrainResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.start().postMessage({ id, rows, options } satisfies TrainRequest);
      } catch (err) {
        this.pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
    for (const p of this.pending.values()) p.reject(new Error('training worker closed'));
    this.pending.clear();
  }
}
