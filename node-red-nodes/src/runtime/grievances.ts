/**
 * Citizen grievances, kept in one JSON file written atomically (tmp, fsync, rename, fsync dir) and
 * serialised: a crash never leaves half a file, and two requests never lose each other's change.
 * A grievance is placed at the nearest asset with a location (within 5 km), which puts it in the scope
 * of that asset's lead (core/access.ts canSeeGrievance decides who sees it).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Grievance, GrievanceSubmit } from '../core/api';
import type { AssetModel, GeoLocation } from '../core/assetModel';
import { writeFileAtomic } from './spool';

interface StoreFile {
  version: 1;
  grievances: Grievance[];
}

/** Nearest asset within this distance places a grievance. */
export const PLACE_WITHIN_M = 5_000;

/** Great-circle distance in metres. */
export function distanceM(a: GeoLocation, b: GeoLocation): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.min(1, Math.sqrt(h)));
}

export class GrievanceStore {
  private items: Grievance[] = [];
  private queue: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string | undefined) {}

  /** Open the store (a missing file is an empty store; no file: memory only). */
  static async open(file?: string): Promise<GrievanceStore> {
    const s = new GrievanceStore(file);
    if (file) {
      await mkdir(dirname(file), { recursive: true });
      try {
        const data = JSON.parse(await readFile(file, 'utf8')) as StoreFile;
        if (data.version !== 1 || !Array.isArray(data.grievances))
          throw new Error(`${file}: not an EVTwin grievance store (version 1)`);
        s.items = data.grievances;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return s;
  }

  all(): readonly Grievance[] {
    return this.items;
  }

  get(id: string): Grievance | undefined {
    return this.items.find((g) => g.id === id);
  }

  async submit(reporter: string, body: GrievanceSubmit, model: AssetModel, now: number): Promise<Grievance> {
    const g: Grievance = {
      id: randomUUID(),
      reporter,
      text: body.text,
      location: body.location,
      status: 'open',
      createdAt: now,
    };
    let best: { d: number; site: string; line?: string; asset: string } | undefined;
    for (const a of model.assets) {
      if (!a.location) continue;
      const d = distanceM(body.location, a.location);
      if (d <= PLACE_WITHIN_M && (!best || d < best.d))
        best = { d, site: a.site, asset: a.id, ...(a.line ? { line: a.line } : {}) };
    }
    if (best) {
      g.site = best.site;
      if (best.line) g.line = best.line;
      g.asset = best.asset;
    }
    return this.change(() => {
      this.items.push(g);
      return g;
    });
  }

  async resolve(id: string, by: string, resolution: string | undefined, now: number): Promise<Grievance> {
    return this.change(() => {
      const g = this.items.find((x) => x.id === id);
      if (!g) throw new Error(`no grievance ${id}`);
      g.status = 'resolved';
      g.resolvedAt = now;
      g.resolvedBy = by;
      if (resolution !== undefined) g.resolution = resolution;
      return g;
    });
  }

  /** Apply a change and resolve once the file holding it is durable (changes are written in order). */
  private change<T>(fn: () => T): Promise<T> {
    const run = this.queue.then(async () => {
      const out = fn();
      if (this.file) {
        const data: StoreFile = { version: 1, grievances: this.items };
        await writeFileAtomic(dirname(this.file), basename(this.file), JSON.stringify(data, null, 1));
      }
      return out;
    });
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async close(): Promise<void> {
    await this.queue;
  }
}
