/**
 * Per-asset model states on disk: one JSON file per asset in a directory, written atomically
 * (runtime/spool.ts writeFileAtomic) and debounced, so a restart resumes scoring where it stopped.
 * A file that does not parse is reported and skipped: that asset trains again.
 */
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './spool';

const SUFFIX = '.json';

/** `site/asset` → file name; ids are plain (core ID_PATTERN) but encode anyway: a key is never a path. */
export const modelFileName = (key: string): string => {
  const i = key.indexOf('/');
  const site = i < 0 ? '' : key.slice(0, i);
  const asset = i < 0 ? key : key.slice(i + 1);
  return `${encodeURIComponent(site)}~${encodeURIComponent(asset)}${SUFFIX}`;
};

export interface LoadedModels {
  /** Parsed JSON by asset key (validated by the scorer). */
  states: Map<string, unknown>;
  /** One line per file that could not be read or parsed. */
  warnings: string[];
}

export interface ModelStoreOptions {
  /** Write dirty states at most this often. */
  debounceMs: number;
  onError?: (err: Error) => void;
  onSaved?: (count: number) => void;
}

export class ModelStore {
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    readonly dir: string,
    /** The state of an asset as a JSON-able value, or undefined if it is gone. */
    private readonly snapshot: (key: string) => unknown,
    private readonly opts: ModelStoreOptions = { debounceMs: 30_000 },
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** Read every state file (synchronously: once, at start, before the first reading). */
  load(): LoadedModels {
    const states = new Map<string, unknown>();
    const warnings: string[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(SUFFIX)) continue;
      const sep = name.indexOf('~');
      if (sep < 0) continue;
      let key: string;
      try {
        key = `${decodeURIComponent(name.slice(0, sep))}/${decodeURIComponent(name.slice(sep + 1, -SUFFIX.length))}`;
      } catch {
        warnings.push(`${name}: not a model file name, ignored`);
        continue;
      }
      try {
        states.set(key, JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as unknown);
      } catch (err) {
        warnings.push(
          `${name}: unreadable (${err instanceof Error ? err.message : String(err)}): retraining ${key}`,
        );
      }
    }
    return { states, warnings };
  }

  /** The asset changed: save it within debounceMs. */
  touch(key: string): void {
    if (this.closed) return;
    this.dirty.add(key);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.opts.debounceMs);
      this.timer.unref();
    }
  }

  /** Write every dirty state now (one write at a time; calls queue behind each other). */
  flush(): Promise<void> {
    const keys = [...this.dirty];
    this.dirty.clear();
    this.writing = this.writing.then(async () => {
      let saved = 0;
      for (const key of keys) {
        try {
          const value = this.snapshot(key);
          if (value === undefined) continue;
          await writeFileAtomic(this.dir, modelFileName(key), JSON.stringify(value));
          saved++;
        } catch (err) {
          this.opts.onError?.(err instanceof Error ? err : new Error(String(err)));
        }
      }
      if (saved > 0) this.opts.onSaved?.(saved);
    });
    return this.writing;
  }

  /** Forget an asset's file (its state was refused). */
  async remove(key: string): Promise<void> {
    await rm(join(this.dir, modelFileName(key)), { force: true });
  }

  /** Flush and stop: called from the node's close handler. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    this.closed = true;
  }
}
