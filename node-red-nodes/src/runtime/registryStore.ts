/**
 * The registry on disk: one JSON file, written atomically (temp file, fsync, rename, fsync of the
 * directory) so a crash leaves either the old or the new file, never half of one. The previous
 * good file is kept as `<file>.bak`. A corrupt file is an error, never silently replaced by the
 * backup: falling back could bring revoked devices back.
 * Several writers (Node-RED instances, the CLI) serialise through a lock file and re-read before
 * every change, so no change is lost.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { emptyRegistry, validateRegistry, type RegistryState } from '../core/registry';

export class RegistryFileError extends Error {
  override name = 'RegistryFileError';
}

/** Read and validate; a missing file is an empty registry. */
export function loadRegistry(file: string): RegistryState {
  if (!existsSync(file)) return emptyRegistry();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RegistryFileError(`registry ${file}: cannot read: ${(err as Error).message}`);
  }
  const backup = existsSync(`${file}.bak`) ? ` (the previous good version is ${file}.bak)` : '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new RegistryFileError(
      `registry ${file} is corrupt or half-written (${text.length} bytes, ${(err as Error).message})${backup}`,
    );
  }
  try {
    return validateRegistry(parsed);
  } catch (err) {
    throw new RegistryFileError(`registry ${file}: ${(err as Error).message}${backup}`);
  }
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function saveRegistry(file: string, state: RegistryState): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  // 0600: the file holds Fernet keys.
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(state, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (existsSync(file)) {
    try {
      validateRegistry(JSON.parse(readFileSync(file, 'utf8')));
      copyFileSync(file, `${file}.bak`);
    } catch {
      // Never overwrite a good backup with a bad current file.
    }
  }
  renameSync(tmp, file);
  fsyncDir(dir);
}

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/**
 * Run `fn` holding `<file>.lock` (O_EXCL). A lock older than `staleMs` is from a crashed writer and
 * is taken over. Synchronous on purpose: a registry change is a few ms of local disk work.
 */
export function withRegistryLock<T>(file: string, fn: () => T, timeoutMs = 3000, staleMs = 10_000): T {
  const lock = `${file}.lock`;
  mkdirSync(dirname(file), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(lock).mtimeMs > staleMs) rmSync(lock, { force: true });
      } catch {
        // Released meanwhile.
      }
      if (Date.now() > deadline)
        throw new RegistryFileError(`registry ${file} is locked by another writer (${lock})`);
      sleepSync(10);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Read the latest file, apply a change, write it: the one way every writer changes the registry. */
export function updateRegistry<T extends { state: RegistryState }>(
  file: string,
  change: (s: RegistryState) => T,
): T {
  return withRegistryLock(file, () => {
    const result = change(loadRegistry(file));
    saveRegistry(file, result.state);
    return result;
  });
}
