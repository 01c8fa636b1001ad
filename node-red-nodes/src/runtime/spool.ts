/**
 * An on-disk spool of line-protocol batches: a directory of numbered segment files, one batch each,
 * named `<seq>-<points>.lp` so the spool knows its order and size without reading them. Each segment is
 * written atomically (tmp file, fsync, rename, fsync of the directory): after a crash a segment is
 * either whole or absent, and whatever a previous run left is replayed by the next one.
 */
import { mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Segment {
  /** Order of the batch: segments are replayed lowest first. */
  readonly seq: number;
  readonly points: number;
  readonly bytes: number;
  readonly file: string;
}

const SEGMENT = /^(\d{16})-(\d+)\.lp$/;
export const segmentName = (seq: number, points: number): string =>
  `${String(seq).padStart(16, '0')}-${points}.lp`;

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write a file so that it is either absent or complete, even across a power cut. */
export async function writeFileAtomic(dir: string, name: string, data: string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncPath(dir); // makes the rename itself durable
}

export class Spool {
  readonly dir: string;
  /** Batches InfluxDB refused (HTTP 400): kept for a human, never retried. */
  readonly rejectedDir: string;
  private readonly segments: Segment[] = [];
  private totalBytes = 0;
  private totalPoints = 0;

  /** Opens (creating) the directory and indexes the segments a previous run left; removes torn tmp files. */
  constructor(dir: string) {
    this.dir = dir;
    this.rejectedDir = join(dir, 'rejected');
    mkdirSync(this.rejectedDir, { recursive: true });
    for (const name of readdirSync(dir)) {
      if (name.endsWith('.tmp')) {
        unlinkSync(join(dir, name)); // never renamed: its batch was not durable yet, so never acknowledged
        continue;
      }
      const m = SEGMENT.exec(name);
      if (!m) continue;
      const file = join(dir, name);
      this.insert({ seq: Number(m[1]), points: Number(m[2]), bytes: statSync(file).size, file });
    }
  }

  get bytes(): number {
    return this.totalBytes;
  }
  get points(): number {
    return this.totalPoints;
  }
  get size(): number {
    return this.segments.length;
  }
  /** Highest sequence number on disk (0 when empty): a new writer numbers its batches after it. */
  get lastSeq(): number {
    return this.segments.at(-1)?.seq ?? 0;
  }
  /** The oldest segment: the next to replay. */
  head(): Segment | undefined {
    return this.segments[0];
  }
  list(): readonly Segment[] {
    return this.segments;
  }

  /** Store a batch durably; segments stay sorted by seq whatever order they arrive in. */
  async append(seq: number, body: string, points: number): Promise<Segment> {
    const name = segmentName(seq, points);
    await writeFileAtomic(this.dir, name, body);
    const segment = { seq, points, bytes: Buffer.byteLength(body), file: join(this.dir, name) };
    this.insert(segment);
    return segment;
  }

  read(segment: Segment): Promise<string> {
    return readFile(segment.file, 'utf8');
  }

  /** Delete a segment once InfluxDB has acknowledged it. */
  async remove(segment: Segment): Promise<void> {
    await unlink(segment.file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    this.forget(segment);
  }

  /** Move a segment to rejected/ with the reason beside it. Returns the new path. */
  async reject(segment: Segment, reason: string): Promise<string> {
    const name = segmentName(segment.seq, segment.points);
    await writeFileAtomic(this.rejectedDir, `${name}.reason.txt`, reason + '\n');
    const to = join(this.rejectedDir, name);
    await rename(segment.file, to);
    this.forget(segment);
    return to;
  }

  /** Store a refused batch that never was a segment (it was written directly) in rejected/. */
  async rejectBody(seq: number, body: string, points: number, reason: string): Promise<string> {
    const name = segmentName(seq, points);
    await writeFile(join(this.rejectedDir, `${name}.reason.txt`), reason + '\n');
    await writeFileAtomic(this.rejectedDir, name, body);
    return join(this.rejectedDir, name);
  }

  private insert(segment: Segment): void {
    let i = this.segments.length;
    while (i > 0 && (this.segments[i - 1]?.seq ?? 0) > segment.seq) i--;
    this.segments.splice(i, 0, segment);
    this.totalBytes += segment.bytes;
    this.totalPoints += segment.points;
  }

  private forget(segment: Segment): void {
    const i = this.segments.findIndex((s) => s.seq === segment.seq);
    if (i < 0) return;
    this.segments.splice(i, 1);
    this.totalBytes -= segment.bytes;
    this.totalPoints -= segment.points;
  }
}
